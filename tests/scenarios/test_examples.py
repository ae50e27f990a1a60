"""The shipped example scenarios, end to end through the command line.

Each example is written with ``trimtab example NAME --dir DIR`` and run with
``trimtab run`` (in process through :func:`scenarios.cli.main`, once through a
real subprocess of the installed console script); the outputs are parsed and
checked against the figures the example files state in their headers,
recomputed here from the TOML's own numbers.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.covariance import from_cma
from optimizer.costs import CostModel
from optimizer.rebalance import rebalance
from scenarios import stress as stress_mod
from scenarios.cli import examples, main, version
from scenarios.schema import load_scenario

SHIPPED = Path(__file__).resolve().parents[2] / "scenarios" / "examples"
DATA_FILES = {
    "riverside_endowment": [],
    "ria_q1_2024": [],
    "profile_conservative": ["multi_asset_correlation.csv"],
    "profile_moderate": ["multi_asset_correlation.csv"],
    "profile_aggressive": ["multi_asset_correlation.csv"],
    "tactical_overlay": ["multi_asset_correlation.csv"],
    "sp500_frontier": ["sp500_prices.csv.gz"],
    "french_industries_backtest": ["french_industries.csv"],
    "taxable_account": ["taxable_account_lots.csv", "taxable_account_recent.csv"],
}
EXAMPLES = list(DATA_FILES)
WITH_HOLDINGS = {"riverside_endowment", "ria_q1_2024", "taxable_account"}
TAXABLE = {"taxable_account"}  # tax lots: orders trimtab.orders/2 and lot_sales.csv
WITH_MONTECARLO = {"riverside_endowment"}
BASE_OUTPUTS = {"targets.csv", "targets.json", "report.json", "report.html", "manifest.json"}
ORDER_OUTPUTS = {"orders.json", "orders.csv"}
TOL = 1e-6  # solver feasibility tolerance on weights (decimals)


def call(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` with stdout and stderr captured (usable from module fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def toml_of(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def targets_of(out: Path) -> pd.Series:
    return pd.read_csv(out / "targets.csv", index_col=0)["target"]


def signed_orders(orders: dict) -> dict[str, float]:
    """Asset -> signed notional (buys positive, sells negative)."""
    sign = {"buy": 1.0, "sell": -1.0}
    return {o["asset"]: sign[o["side"]] * o["notional"] for o in orders["orders"]}


def tag_members(doc: dict, tag: str) -> list[str]:
    return [a["id"] for a in doc["assets"] if tag in a.get("tags", [])]


def leftovers(folder: Path) -> list[str]:
    """Temporary files an atomic write could leave behind."""
    staged = [p.name for p in folder.parent.glob(".trimtab-*")]
    tmp = [p.name for p in folder.glob(".*.tmp")] if folder.exists() else []
    return staged + tmp


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("examples")


@pytest.fixture(scope="module")
def ran(workdir):
    """name -> (scenario path, output folder, stdout of ``run``); each example runs once."""
    cache: dict[str, tuple[Path, Path, str]] = {}

    def get(name: str) -> tuple[Path, Path, str]:
        if name not in cache:
            folder = workdir / name
            code, _, err = call(["example", name, "--dir", str(folder)])
            assert code == 0, err
            path = folder / f"{name}.toml"
            out = folder / "out"
            code, stdout, err = call(["run", str(path), "--out", str(out)])
            assert code == 0, err
            cache[name] = (path, out, stdout)
        return cache[name]

    return get


# ============================================================================ every example


def test_every_shipped_example_is_listed() -> None:
    assert sorted(examples()) == sorted(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_writes_the_scenario_and_its_data(name, tmp_path, capsys) -> None:
    folder = tmp_path / "new"
    assert main(["example", name, "--dir", str(folder)]) == 0
    written = sorted(p.name for p in folder.iterdir())
    assert written == sorted([f"{name}.toml", *DATA_FILES[name]])
    assert (folder / f"{name}.toml").read_bytes() == (SHIPPED / f"{name}.toml").read_bytes()
    for data in DATA_FILES[name]:
        assert (folder / data).read_bytes() == (SHIPPED / data).read_bytes()
    assert str(folder / f"{name}.toml") in capsys.readouterr().out
    assert leftovers(folder) == []


def test_example_json_names_what_it_wrote(tmp_path, capsys) -> None:
    assert main(["example", "tactical_overlay", "--dir", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload == {
        "scenario": str(tmp_path / "tactical_overlay.toml"),
        "data": [str(tmp_path / "multi_asset_correlation.csv")],
    }


@pytest.mark.parametrize("name", EXAMPLES)
def test_run_writes_every_output(name, ran) -> None:
    path, out, stdout = ran(name)
    expected = BASE_OUTPUTS | (ORDER_OUTPUTS if name in WITH_HOLDINGS else set())
    expected |= {"montecarlo.csv"} if name in WITH_MONTECARLO else set()
    expected |= {"lot_sales.csv"} if name in TAXABLE else set()
    assert {p.name for p in out.iterdir()} == expected
    assert leftovers(out) == []
    assert f"outputs written to {out}" in stdout

    doc = toml_of(path)
    targets = targets_of(out)
    assets = [a["id"] for a in doc["assets"]]
    assert list(targets.index) == assets
    assert targets.sum() == pytest.approx(1.0, abs=1e-8)
    assert (targets >= -TOL).all()

    tj = read_json(out / "targets.json")
    assert tj["portfolio_id"] == doc["portfolio"]["id"]
    assert tj["targets"] == pytest.approx(targets.to_dict(), abs=1e-12)

    report = read_json(out / "report.json")
    for key in ("targets", "validation", "stress", "expected_return", "volatility", "timings"):
        assert key in report
    assert [r["asset"] for r in report["targets"]] == assets
    assert [r["target"] for r in report["targets"]] == pytest.approx(list(targets), abs=1e-12)
    assert report["scenario"]["file"] == f"{name}.toml"
    assert all(c["passed"] is not False for c in report["validation"]), report["validation"]
    assert len(report["stress"]) == len(doc.get("stress", []))

    manifest = read_json(out / "manifest.json")
    assert manifest["command"] == "run"
    assert manifest["scenario_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["versions"]["trimtab"] == version()
    for dist in ("numpy", "pandas", "scipy", "cvxpy"):
        assert manifest["versions"][dist]
    assert set(manifest["timings"]) == {"estimate", "allocate", "rebalance", "other"}
    assert all(t >= 0 for t in manifest["timings"].values())
    assert sorted(manifest["files"]) == sorted(expected)

    if name in WITH_HOLDINGS:
        orders = read_json(out / "orders.json")
        schema = "trimtab.orders/2" if name in TAXABLE else "trimtab.orders/1"
        assert orders["schema"] == schema
        assert orders["portfolio_id"] == doc["portfolio"]["id"]
        assert orders["as_of"] == doc["portfolio"]["as_of"].isoformat()
        rows = list(csv.DictReader(io.StringIO((out / "orders.csv").read_text())))
        if name in TAXABLE:  # one row per lot of a sell: one per order here (one lot each)
            assert all(len(o.get("lots", [None])) == 1 for o in orders["orders"])
        assert [r["asset"] for r in rows] == [o["asset"] for o in orders["orders"]]
        assert {r["schema"] for r in rows} == {schema}
        for row, order in zip(rows, orders["orders"], strict=True):
            assert row["side"] == order["side"]
            assert float(row["notional"]) == pytest.approx(order["notional"], rel=1e-12)


@pytest.mark.parametrize("name", EXAMPLES)
def test_run_json_on_stdout(name, ran) -> None:
    path, out, _ = ran(name)
    code, stdout, _ = call(["run", str(path), "--json"])
    assert code == 0
    payload = json.loads(stdout)
    report = read_json(out / "report.json")
    assert [r["asset"] for r in payload["targets"]] == [r["asset"] for r in report["targets"]]
    assert [r["target"] for r in payload["targets"]] == pytest.approx(
        [r["target"] for r in report["targets"]], abs=1e-7
    )
    assert ("rebalance" in payload) == (name in WITH_HOLDINGS)


def console_script() -> list[str]:
    """The installed ``trimtab`` console script (or the module, when it is not installed)."""
    found = shutil.which("trimtab") or shutil.which(
        "trimtab", path=str(Path(sys.executable).parent)
    )
    return [found] if found else [sys.executable, "-m", "scenarios.cli"]


def test_installed_console_script_runs_an_example(tmp_path) -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    cmd = console_script()
    done = subprocess.run(
        [*cmd, "example", "ria_q1_2024", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    done = subprocess.run(
        [*cmd, "run", str(tmp_path / "ria_q1_2024.toml"), "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["scenario"]["id"] == "client-0042"
    assert {p.name for p in out.iterdir()} == BASE_OUTPUTS | ORDER_OUTPUTS
    assert read_json(out / "orders.json")["schema"] == "trimtab.orders/1"

    # the process's exit status is main()'s return value
    bad = tmp_path / "bad.toml"
    bad.write_text("[portfolio\n", encoding="utf-8")
    done = subprocess.run(
        [*cmd, "run", str(bad)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 2
    assert "invalid TOML" in done.stderr and done.stdout == ""


# ============================================================================ the endowment


def test_endowment_targets_meet_caps_floors_bands_and_esg(ran) -> None:
    path, out, _ = ran("riverside_endowment")
    doc = toml_of(path)
    w = targets_of(out)
    groups = {g["name"]: g for g in doc["constraints"]["group"]}
    assert groups["equity cap"]["max"] == 0.70
    assert groups["liquidity floor"]["min"] == 0.20
    assert groups["alternatives cap"]["max"] == 0.30
    for g in groups.values():
        total = w[tag_members(doc, g["tag"])].sum()
        assert total <= g.get("max", np.inf) + TOL, g["name"]
        assert total >= g.get("min", -np.inf) - TOL, g["name"]

    policy = pd.Series(doc["policy"]["weights"])
    (band,) = doc["constraints"]["band"]
    assert ((w - policy).abs() <= band["width"] + TOL).all()

    (esg,) = doc["constraints"]["exposure"]
    score = float(pd.Series(esg["scores"]) @ w)
    assert score >= esg["min"] - TOL
    report = read_json(out / "report.json")
    checks = {c["check"]: c for c in report["validation"]}
    assert checks["ESG floor"]["figure"] == pytest.approx(score, abs=1e-9)
    assert checks["ESG floor"]["passed"] is True
    # the header's policy ESG figure and its claim that the policy itself is feasible
    assert float(pd.Series(esg["scores"]) @ policy) == pytest.approx(6.91)

    # spending rule: return target 0.04 + 0.025, met by the target's expected return
    mu = pd.Series(doc["estimates"]["expected_return"])
    assert checks["spending rule"]["figure"] == pytest.approx(float(mu @ w), abs=1e-9)
    assert float(mu @ w) >= 0.065
    for name in groups:
        assert checks[f"constraint: {name}"]["passed"] is True
    assert checks["constraint: policy bands"]["passed"] is True


def hand_stress(doc: dict, weights: pd.Series, shocks: dict) -> float:
    """Each asset's shock from its tag (or its own id), times its weight."""
    total = 0.0
    for asset in doc["assets"]:
        if asset["id"] in shocks:
            hit = [shocks[asset["id"]]]
        else:
            hit = [shocks[t] for t in asset.get("tags", []) if t in shocks]
        assert len(hit) <= 1
        total += weights[asset["id"]] * (hit[0] if hit else 0.0)
    return total


def test_endowment_stress_by_hand_and_survival(ran) -> None:
    path, out, _ = ran("riverside_endowment")
    doc = toml_of(path)
    w = targets_of(out)
    value = doc["portfolio"]["value"]
    floor = doc["validation"]["survival_floor"]
    report = read_json(out / "report.json")
    checks = {c["check"]: c for c in report["validation"]}
    assert [s["name"] for s in report["stress"]] == [
        "2008 crisis",
        "tech bubble",
        "inflation spike",
    ]
    for spec, got in zip(doc["stress"], report["stress"], strict=True):
        r = hand_stress(doc, w, spec["shocks"])
        assert got["portfolio_return"] == pytest.approx(r, abs=1e-9)
        assert sum(got["contributions"].values()) == pytest.approx(r, abs=1e-12)
        assert got["value_before"] == value
        assert got["value_after"] == pytest.approx(value * (1 + r), rel=1e-12)
        assert got["floor"] == floor
        assert got["survives"] is bool(1 + r >= floor)
        check = checks[f"survival: {spec['name']}"]
        assert check["passed"] is got["survives"]
        assert check["figure"] == pytest.approx(1 + r, abs=1e-9)

    # the header's worked figure: the policy portfolio loses 22.5% in 2008 and fails the floor
    policy = pd.Series(doc["policy"]["weights"])
    crisis = dict(doc["stress"][0]["shocks"])
    assert hand_stress(doc, policy, crisis) == pytest.approx(-0.225)
    scn = load_scenario(path)
    res = stress_mod.apply(
        policy, crisis, universe=scn.universe, value=value, floor=floor, name="2008 crisis"
    )
    assert res.portfolio_return == pytest.approx(-0.225)
    assert res.survives is False


def test_endowment_orders_leave_the_illiquid_assets_alone(ran) -> None:
    path, out, _ = ran("riverside_endowment")
    orders = read_json(out / "orders.json")
    traded = {o["asset"] for o in orders["orders"]}
    assert traded and not traded & {"PRIVATE_EQUITY", "HEDGE_FUNDS"}
    assert orders["value_before"] == pytest.approx(500_000_000)
    flows = signed_orders(orders)
    assert sum(flows.values()) == pytest.approx(0.0, abs=1e-3)  # self-funding


# ============================================================================ the adviser's rebalance

RIA_HOLDINGS = pd.Series(
    {"US_EQ": 460_000.0, "INTL_EQ": 230_000.0, "BONDS": 291_000.0, "REITS": 108_000.0}
)
RIA_POLICY = pd.Series({"US_EQ": 0.40, "INTL_EQ": 0.20, "BONDS": 0.30, "REITS": 0.10})


def ria_cov() -> pd.DataFrame:
    """The example's covariance, typed in from its header (not read from the file)."""
    assets = list(RIA_POLICY.index)
    vol = pd.Series({"US_EQ": 0.16, "INTL_EQ": 0.18, "BONDS": 0.05, "REITS": 0.19})
    pairs = {
        ("US_EQ", "INTL_EQ"): 0.8,
        ("US_EQ", "BONDS"): 0.1,
        ("US_EQ", "REITS"): 0.6,
        ("INTL_EQ", "BONDS"): 0.1,
        ("INTL_EQ", "REITS"): 0.6,
        ("BONDS", "REITS"): 0.2,
    }
    corr = pd.DataFrame(np.eye(4), index=assets, columns=assets)
    for (a, b), rho in pairs.items():
        corr.loc[a, b] = corr.loc[b, a] = rho
    return from_cma(vol, corr)


def test_ria_orders_are_the_known_trades(ran) -> None:
    path, out, stdout = ran("ria_q1_2024")
    orders = read_json(out / "orders.json")
    sides = {o["asset"]: o["side"] for o in orders["orders"]}
    assert sides == {"US_EQ": "sell", "INTL_EQ": "sell", "BONDS": "buy"}  # no REITS ticket
    assert orders["targets"] == pytest.approx(RIA_POLICY.to_dict(), abs=1e-12)
    assert orders["value_before"] == pytest.approx(1_089_000)

    report = read_json(out / "report.json")
    assert report["trigger"]["trade"] is True
    assert any("BONDS" in r for r in report["trigger"]["reasons"])
    assert any("REITS" in n for n in report["rebalance"]["notes"])
    assert "not worth a ticket of 25.00: REITS" in stdout

    direct = rebalance(
        RIA_HOLDINGS,
        RIA_POLICY,
        cov=ria_cov(),
        costs=CostModel(bps=10, fixed=25.0),
        as_of="2024-03-31",
        portfolio_id="client-0042",
        currency="USD",
    )
    expected = signed_orders(direct.to_orders())
    got = signed_orders(orders)
    assert got.keys() == expected.keys()
    for asset in got:
        assert got[asset] == pytest.approx(expected[asset], rel=1e-6, abs=0.01)
    # the header's "about 23,700 / 11,800 sold and 35,500 of bonds bought"
    assert got["US_EQ"] == pytest.approx(-23_700, abs=100)
    assert got["INTL_EQ"] == pytest.approx(-11_800, abs=100)
    assert got["BONDS"] == pytest.approx(35_500, abs=100)
    for o in orders["orders"]:
        assert o["est_cost"] == pytest.approx(o["notional"] * 10e-4 + 25.0, rel=1e-9)


def test_ria_without_costs_trades_the_full_gap_to_the_cent(ran, tmp_path) -> None:
    path, _, _ = ran("ria_q1_2024")
    text = path.read_text(encoding="utf-8")
    start, end = text.index("[costs]"), text.index("[rebalance]")
    free = tmp_path / "ria_no_costs.toml"
    free.write_text(text[:start] + text[end:], encoding="utf-8")
    assert "[costs]" not in free.read_text()
    out = tmp_path / "out"
    code, _, err = call(["run", str(free), "--out", str(out)])
    assert code == 0, err
    got = signed_orders(read_json(out / "orders.json"))
    # 40/20/30/10 of 1,089,000 minus the holdings
    known = {"US_EQ": -24_400.0, "INTL_EQ": -12_200.0, "BONDS": 35_700.0, "REITS": 900.0}
    assert (RIA_POLICY * RIA_HOLDINGS.sum() - RIA_HOLDINGS).to_dict() == pytest.approx(known)
    assert got.keys() == known.keys()
    for asset, amount in known.items():
        assert abs(got[asset] - amount) < 0.005, (asset, got[asset])


# ============================================================================ tactical overlay


def test_tactical_overlay_fires_every_rule_and_caps_the_tilt(ran) -> None:
    path, out, stdout = ran("tactical_overlay")
    doc = toml_of(path)
    report = read_json(out / "report.json")
    tac = report["tactical"]
    assert [r["name"] for r in tac["rules"]] == [
        "valuation rich",
        "volatility spike",
        "recession risk",
    ]
    assert all(r["fired"] for r in tac["rules"])
    assert tac["uncapped_tilt"] == pytest.approx(-0.13)
    assert tac["equity_tilt"] == pytest.approx(-0.10)
    assert stdout.count("FIRED") == 3

    # the header's tilted target 28 / 12 / 37 / 10 / 5 / 8, derived from the policy
    policy = pd.Series(doc["policy"]["weights"])
    equity = tag_members(doc, "equity")
    tilt = -0.10
    tilted = policy.copy()
    tilted[equity] += tilt * policy[equity] / policy[equity].sum()
    for tag, share in doc["tactical"]["offset"].items():
        members = tag_members(doc, tag)
        tilted[members] -= tilt * share * policy[members] / policy[members].sum()
    assert tilted.to_dict() == pytest.approx(
        {
            "US_EQ": 0.28,
            "INTL_EQ": 0.12,
            "FIXED_INCOME": 0.37,
            "REAL_ESTATE": 0.10,
            "COMMODITIES": 0.05,
            "CASH": 0.08,
        }
    )
    assert tac["tilted_target"] == pytest.approx(tilted.to_dict(), abs=1e-12)

    w = targets_of(out)
    assert w.to_dict() == pytest.approx(tilted.to_dict(), abs=1e-5)
    (band,) = doc["constraints"]["band"]
    assert ((w - policy).abs() <= band["width"] + TOL).all()
    (cap,) = doc["constraints"]["group"]
    assert w[equity].sum() <= cap["max"] + TOL
    assert w[equity].sum() == pytest.approx(policy[equity].sum() - 0.10, abs=1e-5)


# ============================================================================ risk profiles

BASES = {
    "profile_conservative": (3, [20, 10, 50, 10, 5, 5]),
    "profile_moderate": (10, [35, 15, 30, 10, 5, 5]),
    "profile_aggressive": (25, [45, 25, 15, 8, 5, 2]),
}
PROFILE_ASSETS = ["US_EQ", "INTL_EQ", "FIXED_INCOME", "REAL_ESTATE", "COMMODITIES", "CASH"]
#: The [policy] weights the examples wrote by hand before they used profile and horizon.
HAND_WRITTEN = {
    "profile_conservative": "{ US_EQ = 0.11, INTL_EQ = 0.04, FIXED_INCOME = 0.605, "
    "REAL_ESTATE = 0.10, COMMODITIES = 0.05, CASH = 0.095 }",
    "profile_moderate": "{ US_EQ = 0.35, INTL_EQ = 0.15, FIXED_INCOME = 0.30, "
    "REAL_ESTATE = 0.10, COMMODITIES = 0.05, CASH = 0.05 }",
    "profile_aggressive": "{ US_EQ = 0.514285714, INTL_EQ = 0.285714286, FIXED_INCOME = 0.07, "
    "REAL_ESTATE = 0.08, COMMODITIES = 0.05, CASH = 0.0 }",
}


def horizon_adjusted(horizon: int, base: list[float]) -> pd.Series:
    """The headers' rule, in points: over 20 years +10 equity, under 5 years +15 bonds/cash."""
    w = pd.Series(base, index=PROFILE_ASSETS, dtype=float)
    eq = ["US_EQ", "INTL_EQ"]
    if horizon > 20:
        w[eq] += 10 * w[eq] / w[eq].sum()
        w["FIXED_INCOME"] -= 8
        w["CASH"] -= 2
    elif horizon < 5:
        w["FIXED_INCOME"] += 10.5
        w["CASH"] += 4.5
        w["US_EQ"] -= 9
        w["INTL_EQ"] -= 6
    return w / 100


@pytest.mark.parametrize("name", list(BASES))
def test_profile_policy_is_the_adjusted_base_and_targets_stay_in_bands(name, ran) -> None:
    path, out, _ = ran(name)
    doc = toml_of(path)
    horizon, base = BASES[name]
    assert doc["policy"] == {"profile": name.removeprefix("profile_"), "horizon": horizon}
    policy = load_scenario(path).policy[PROFILE_ASSETS]
    expected = horizon_adjusted(horizon, base)
    assert policy.to_dict() == pytest.approx(expected.to_dict(), abs=1e-12)
    assert policy.sum() == pytest.approx(1.0, abs=1e-12)

    report = read_json(out / "report.json")
    assert report["policy"] == pytest.approx(policy.to_dict(), abs=1e-12)
    w = targets_of(out)
    (band,) = doc["constraints"]["band"]
    assert band["width"] == 0.05
    assert ((w - policy).abs() <= 0.05 + TOL).all()
    assert (w >= -TOL).all()


@pytest.mark.parametrize("name", list(BASES))
def test_profile_keys_give_the_hand_written_policy_and_the_same_targets(name, ran) -> None:
    path, out, _ = ran(name)
    horizon = BASES[name][0]
    keys = f'profile = "{name.removeprefix("profile_")}"\nhorizon = {horizon}\n'
    text = path.read_text(encoding="utf-8")
    assert keys in text
    by_hand = path.with_name(f"{name}_by_hand.toml")
    by_hand.write_text(text.replace(keys, f"weights = {HAND_WRITTEN[name]}\n"), encoding="utf-8")
    computed, written = load_scenario(path).policy, load_scenario(by_hand).policy
    # equal to the hand-written decimals (the aggressive equity was written to 9 decimals)
    abs_tol = 5e-10 if name == "profile_aggressive" else 0.0
    assert computed.to_dict() == pytest.approx(written.to_dict(), abs=abs_tol, rel=0)
    hand_out = by_hand.with_name("out_by_hand")
    code, _, err = call(["run", str(by_hand), "--out", str(hand_out)])
    assert code == 0, err
    pd.testing.assert_series_equal(targets_of(out), targets_of(hand_out), rtol=0, atol=1e-8)


# ============================================================================ S&P 500 frontier


def test_sp500_frontier_command(ran, tmp_path) -> None:
    path, out, _ = ran("sp500_frontier")
    doc = toml_of(path)
    fout = tmp_path / "frontier"
    code, stdout, err = call(["frontier", str(path), "--points", "10", "--out", str(fout)])
    assert code == 0, err
    assert {p.name for p in fout.iterdir()} == {
        "frontier.csv",
        "frontier_failed.json",
        "report.json",
        "report.html",
        "manifest.json",
    }
    report = read_json(fout / "report.json")
    assert report["command"] == "frontier" and len(report["charts"]["frontier"]["policy"]) == 10
    assert "<svg" in (fout / "report.html").read_text(encoding="utf-8")
    table = pd.read_csv(fout / "frontier.csv", index_col=0)
    assert len(table) == 10
    assert read_json(fout / "frontier_failed.json") == []
    vol = table["volatility"].to_numpy()
    assert (np.diff(vol) >= -1e-9).all()
    assert (np.diff(table["expected_return"].to_numpy()) > 0).all()
    assets = [a["id"] for a in doc["assets"]]
    weights = table[assets]
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    assert (weights.to_numpy() <= 0.15 + TOL).all()
    for g in doc["constraints"]["group"]:
        assert (weights[tag_members(doc, g["tag"])].sum(axis=1) <= g["max"] + TOL).all()
    manifest = read_json(fout / "manifest.json")
    assert manifest["command"] == "frontier"
    assert manifest["scenario_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "volatility" in stdout

    # the run's max-Sharpe target meets the same limits
    w = targets_of(out)
    assert (w <= 0.15 + TOL).all()
    for g in doc["constraints"]["group"]:
        assert w[tag_members(doc, g["tag"])].sum() <= g["max"] + TOL
