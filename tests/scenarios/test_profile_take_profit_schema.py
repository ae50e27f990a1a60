"""Scenario keys of issue 11 item 6: ``[policy] profile`` / ``horizon`` (investor profiles)
and ``[backtest] take_profit`` (the take-profit rule), loaded, run and refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_cases import call, small_scenario

from models.profiles import policy
from optimizer.errors import InputError
from scenarios.backtest import TakeProfitRule
from scenarios.backtest_run import run_backtest
from scenarios.schema import load_scenario

SMALL = """
[portfolio]
name = "Small"
value = 1_000_000

[[assets]]
id = "A"
[[assets]]
id = "B"
[[assets]]
id = "C"

[estimates]
source = "returns"
file = "returns.csv"

[model]
kind = "policy"

[policy]
weights = { A = 0.5, B = 0.3, C = 0.2 }

[backtest]
policies = [{ kind = "buy_and_hold" }, { kind = "calendar", every = 12 }]
take_profit = { threshold = 0.15, safer = { C = 1.0 }, reset = 0.02 }
"""


def small(folder: Path, text: str = SMALL) -> Path:
    """A 3-asset scenario over 120 months of seeded returns."""
    return small_scenario(folder, text)


def edited(path: Path, old: str, new: str) -> Path:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


# ============================================================================ take_profit


def test_take_profit_is_loaded_run_and_reported(tmp_path) -> None:
    path = small(tmp_path)
    scn = load_scenario(path)
    rule = scn.backtest.take_profit
    assert isinstance(rule, TakeProfitRule)
    assert (rule.threshold, rule.reset) == (0.15, 0.02)
    assert rule.safer.to_dict() == {"A": 0.0, "B": 0.0, "C": 1.0}
    run = run_backtest(scn)
    notes = run.results["buy and hold"].notes
    assert any("took profits to the safer weights" in n for n in notes)
    report = run.report()
    assert report["backtest"]["take_profit"] == {
        "threshold": 0.15,
        "safer": {"A": 0.0, "B": 0.0, "C": 1.0},
        "reset": 0.02,
    }
    # the CLI backtest writes it too
    out = tmp_path / "out"
    code, _, err = call(["backtest", str(path), "--out", str(out)])
    assert code == 0, err
    written = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert written["backtest"]["take_profit"]["threshold"] == 0.15


def test_take_profit_without_safer_rebalances_to_target(tmp_path) -> None:
    path = edited(
        small(tmp_path),
        "take_profit = { threshold = 0.15, safer = { C = 1.0 }, reset = 0.02 }",
        "take_profit = { threshold = 0.15 }",
    )
    scn = load_scenario(path)
    assert scn.backtest.take_profit == TakeProfitRule(0.15)
    run = run_backtest(scn)
    notes = run.results["buy and hold"].notes
    assert notes and all("took profits to the target" in n for n in notes)
    assert run.report()["backtest"]["take_profit"] == {
        "threshold": 0.15,
        "safer": None,
        "reset": None,
    }


TP = "take_profit = { threshold = 0.15, safer = { C = 1.0 }, reset = 0.02 }"


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (
            "take_profit = { threshold = 0.15, saver = { C = 1 } }",
            "backtest.take_profit.saver: unknown key (did you mean 'safer'?)",
        ),
        (
            "take_profit = { safer = { C = 1.0 } }",
            "backtest.take_profit.threshold: missing (required)",
        ),
        ("take_profit = { threshold = 0 }", "backtest.take_profit.threshold: must be > 0"),
        (
            "take_profit = { threshold = '15%' }",
            "backtest.take_profit.threshold: expected a number",
        ),
        (
            "take_profit = { threshold = 0.15, safer = { C = 0.9 } }",
            "backtest.take_profit.safer: safer weights sum to 0.9",
        ),
        (
            "take_profit = { threshold = 0.15, safer = { D = 1.0 } }",
            "backtest.take_profit.safer.D: unknown asset 'D'",
        ),
        (
            "take_profit = { threshold = 0.15, reset = 0.02 }",
            "backtest.take_profit.reset: not used without take_profit.safer",
        ),
        (
            "take_profit = { threshold = 0.15, safer = { C = 1.0 }, reset = 0.15 }",
            "backtest.take_profit.reset: 0.15 must be below threshold 0.15",
        ),
        ("take_profit = 0.15", "backtest.take_profit: expected a table, got float 0.15"),
    ],
)
def test_take_profit_schema_errors(tmp_path, new, message) -> None:
    path = edited(small(tmp_path), TP, new)
    assert message in refused(path)
    code, stdout, err = call(["backtest", str(path)])
    assert (code, stdout) == (2, "")
    assert message in err


# ============================================================================ [policy] profile

CLASSES = ["US_EQ", "INTL_EQ", "FIXED_INCOME", "REAL_ESTATE", "COMMODITIES", "CASH"]
ASSETS = "".join(f'[[assets]]\nid = "{c}"\n' for c in CLASSES)
IDENTITY = [[float(i == j) for j in range(len(CLASSES))] for i in range(len(CLASSES))]
PROFILE = f"""
[portfolio]
name = "Profile"
value = 1_000_000

{ASSETS}
[estimates]
source = "cma"
expected_return = {{ US_EQ = 0.08, INTL_EQ = 0.085, FIXED_INCOME = 0.04, REAL_ESTATE = 0.07, COMMODITIES = 0.05, CASH = 0.03 }}
volatility = {{ US_EQ = 0.16, INTL_EQ = 0.18, FIXED_INCOME = 0.05, REAL_ESTATE = 0.19, COMMODITIES = 0.20, CASH = 0.01 }}
correlation = {IDENTITY}

[model]
kind = "policy"

[policy]
profile = "aggressive"
horizon = 30
"""


def test_profile_policy_is_the_profiles_weights(tmp_path) -> None:
    path = tmp_path / "profile.toml"
    path.write_text(PROFILE, encoding="utf-8")
    scn = load_scenario(path)
    expected = policy("aggressive", 30)
    assert scn.policy.to_dict() == expected.to_dict()
    assert scn.policy.name == "policy"
    # a horizon that is a float works, and the bands are inclusive: 20 years is the base
    path.write_text(PROFILE.replace("horizon = 30", "horizon = 20.0"), encoding="utf-8")
    assert load_scenario(path).policy.to_dict() == policy("aggressive", 20).to_dict()


def test_profile_classes_may_be_a_subset_of_the_assets(tmp_path) -> None:
    # an extra asset gets 0; a class with 0 weight (aggressive over 20 years: CASH) may be absent
    text = PROFILE.replace('[[assets]]\nid = "CASH"\n', '[[assets]]\nid = "GOLD"\n')
    text = text.replace("CASH = 0.03 }", "GOLD = 0.03 }").replace("CASH = 0.01 }", "GOLD = 0.01 }")
    path = tmp_path / "profile.toml"
    path.write_text(text, encoding="utf-8")
    scn = load_scenario(path)
    assert scn.policy["GOLD"] == 0.0
    assert scn.policy.sum() == pytest.approx(1.0, abs=1e-11)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'profile = "aggressive"',
            'profile = "agressive"',
            "policy.profile: unknown value 'agressive' (did you mean 'aggressive'?); "
            "valid: 'conservative', 'moderate', 'aggressive'",
        ),
        ("horizon = 30", "", "policy.horizon: missing (required with profile 'aggressive')"),
        ("horizon = 30", "horizon = 0", "policy.horizon: must be > 0"),
        ("horizon = 30", "horizon = -3", "policy.horizon: must be > 0"),
        ("horizon = 30", 'horizon = "30y"', "policy.horizon: expected a number"),
        ("horizon = 30", "horizon = nan", "policy.horizon"),
        ("horizon = 30", "horizn = 30", "policy.horizn: unknown key (did you mean 'horizon'?)"),
        (
            'profile = "aggressive"\nhorizon = 30',
            "",
            "policy: give weights (by asset) or a profile with a horizon",
        ),
        ('profile = "aggressive"\n', "", "policy.horizon: needs policy.profile"),
        (
            "horizon = 30",
            "horizon = 30\nweights = { CASH = 1.0 }",
            "policy.profile: not used with policy.weights",
        ),
        ('profile = "aggressive"', "profile = 3", "policy.profile: expected a string"),
    ],
)
def test_profile_schema_errors(tmp_path, old, new, message) -> None:
    assert old in PROFILE
    path = tmp_path / "profile.toml"
    path.write_text(PROFILE.replace(old, new, 1), encoding="utf-8")
    assert message in refused(path)
    code, _, err = call(["validate", str(path)])
    assert code == 2 and message in err


def test_profile_needs_its_asset_classes(tmp_path) -> None:
    message = refused(
        edited(
            small(tmp_path),
            "weights = { A = 0.5, B = 0.3, C = 0.2 }",
            'profile = "moderate"\nhorizon = 10',
        )
    )
    assert "policy.profile: 'moderate' allocates to US_EQ, INTL_EQ, FIXED_INCOME" in message
    assert "add [[assets]] with these ids" in message
