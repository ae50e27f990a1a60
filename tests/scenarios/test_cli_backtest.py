"""``trimtab backtest``, the ``[backtest]`` and ``[montecarlo]`` sections, and their outputs.

The shipped example ``french_industries_backtest`` runs end to end (its
buy-and-hold path is recomputed here from the CSV); small scenarios written
into a temporary folder check the schema's messages, the options and the
progress bar; the endowment example's Monte Carlo is checked against a direct
call of :func:`scenarios.montecarlo.simulate` and for reproducibility.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_cases import call, read_json, small_scenario

from scenarios.backtest_run import run_backtest
from scenarios.cli import main
from scenarios.montecarlo import simulate
from scenarios.schema import load_scenario

BACKTEST_OUTPUTS = {
    "backtest.csv",
    "backtest_values.csv",
    "report.json",
    "report.html",
    "manifest.json",
}


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

[costs]
bps = 10
"""

POLICIES = """
[backtest]
policies = [
    { kind = "calendar", every = 3 },
    { kind = "threshold", band = 0.05 },
    { kind = "hybrid", every = 3, band = 0.02 },
    { kind = "buy_and_hold" },
    { kind = "optimized", every = 1, tracking_weight = 100 },
]
"""


def small(folder: Path, extra: str = POLICIES, base: str = SMALL) -> Path:
    """A 3-asset scenario over 120 months of seeded returns, with ``extra`` appended."""
    return small_scenario(folder, base + extra)


@pytest.fixture(scope="module")
def french(tmp_path_factory):
    """The shipped example, written by ``trimtab example`` and backtested once."""
    folder = tmp_path_factory.mktemp("french")
    code, _, err = call(["example", "french_industries_backtest", "--dir", str(folder)])
    assert code == 0, err
    path = folder / "french_industries_backtest.toml"
    out = folder / "out"
    code, stdout, err = call(["backtest", str(path), "--out", str(out)])
    assert code == 0, err
    return path, out, stdout


# ============================================================================ the shipped example


def test_example_copies_its_returns_file(french) -> None:
    path, _, _ = french
    assert (path.parent / "french_industries.csv").is_file()
    data = pd.read_csv(path.parent / "french_industries.csv", index_col=0, parse_dates=True)
    assert data.shape == (567, 12)
    assert data.index[0] == pd.Timestamp("1970-01-01")
    assert data.index[-1] == pd.Timestamp("2017-03-01")


def test_backtest_writes_the_files_and_prints_the_table(french) -> None:
    path, out, stdout = french
    assert {p.name for p in out.iterdir()} == BACKTEST_OUTPUTS
    assert list(out.parent.glob(".trimtab-*")) == []
    for head in ("CAGR", "volatility", "Sharpe", "max drawdown", "tracking error"):
        assert head in stdout
    for head in ("rebalances", "costs", "turnover", "rebalancing bonus"):
        assert head in stdout
    assert f"outputs written to {out}" in stdout

    names = ["monthly", "annual", "threshold 0.05", "hybrid every 3, band 0.05"]
    names += ["buy and hold", "optimized every 1"]
    table = pd.read_csv(out / "backtest.csv", index_col=0)
    assert list(table.index) == names
    values = pd.read_csv(out / "backtest_values.csv", index_col=0, parse_dates=True)
    assert list(values.columns) == names
    assert len(values) == 567
    assert (values.iloc[0] == 100_000_000).all()
    np.testing.assert_allclose(values.iloc[-1], table["final_value"], rtol=1e-12)

    assert table.loc["monthly", "rebalances"] == 566
    assert table.loc["annual", "rebalances"] == 47  # 566 periods, every 12th
    hold = table.loc["buy and hold"]
    assert hold["rebalances"] == 0 and hold["total_costs"] == 0
    assert hold["rebalancing_bonus"] == 0
    np.testing.assert_allclose(table["rebalancing_bonus"], table["cagr"] - hold["cagr"], atol=1e-15)
    assert (table.drop("buy and hold")["total_costs"] > 0).all()

    # buy and hold by hand: each industry's 1/12 grows with its own returns
    doc_rets = pd.read_csv(path.parent / "french_industries.csv", index_col=0)
    growth = (1 + doc_rets.iloc[1:]).prod()
    w = pd.Series(load_scenario(path).policy)
    assert hold["final_value"] == pytest.approx(1e8 * float((w * growth).sum()), rel=1e-9)

    manifest = read_json(out / "manifest.json")
    assert manifest["command"] == "backtest"
    assert manifest["scenario_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sorted(manifest["files"]) == sorted(BACKTEST_OUTPUTS)
    report = read_json(out / "report.json")
    assert [r["policy"] for r in report["comparison"]] == names
    assert report["backtest"]["periods"] == 566
    assert report["backtest"]["start"] == "1970-01-01"


def test_backtest_json(french) -> None:
    path, out, _ = french
    code, stdout, err = call(["backtest", str(path), "--json"])
    assert code == 0, err
    payload = json.loads(stdout)
    table = pd.read_csv(out / "backtest.csv", index_col=0)
    got = {r["policy"]: r for r in payload["comparison"]}
    assert list(got) == list(table.index)
    for name, row in got.items():
        assert row["cagr"] == pytest.approx(table.loc[name, "cagr"], rel=1e-12)
        assert row["rebalances"] == table.loc[name, "rebalances"]
    assert payload["target"] == pytest.approx({a: 1 / 12 for a in payload["target"]}, abs=1e-9)
    assert err == ""  # no progress bar with --json


# ============================================================================ options and API


def test_run_backtest_api_and_options(tmp_path) -> None:
    extra = """
[backtest]
policies = [{ kind = "calendar", every = 1, name = "monthly" }, { kind = "buy_and_hold" }]
initial_value = 2_000_000
start = 2002-01-01
end = 2007-12-31
spending_rate = 0.05
spending_window = 12
drawdown = { threshold = 0.10, recover = 0.02, defensive = { C = 1.0 } }
target = "policy"
"""
    scn = load_scenario(small(tmp_path, extra))
    results, table = run_backtest(scn)
    assert list(results) == ["monthly", "buy and hold"]
    assert list(table.index) == ["monthly", "buy and hold"]
    res = results["monthly"]
    assert res.values.index[0] == pd.Timestamp("2002-01-31")
    assert res.values.index[-1] == pd.Timestamp("2007-12-31")
    assert res.values.iloc[0] == pytest.approx(2_000_000)
    assert (res.cash_flows.iloc[1:] < 0).all()  # the spending rule withdraws every month
    np.testing.assert_allclose(res.weights.iloc[0], [0.5, 0.3, 0.2])


def test_progress_bar_on_a_terminal_only(tmp_path, monkeypatch) -> None:
    path = small(tmp_path)
    err = io.StringIO()
    err.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stderr", err)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["backtest", str(path)]) == 0
    assert "backtest [" in err.getvalue() and "5/5" in err.getvalue()
    err.seek(0)
    err.truncate()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["backtest", str(path), "--json"]) == 0
    assert err.getvalue() == ""
    json.loads(out.getvalue())


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[backtest]", "[backtest]\nevry = 3", "backtest.evry: unknown key"),
        ("policies =", "polices =", "backtest.polices: unknown key (did you mean 'policies'?)"),
        (
            '"calendar", every = 3',
            '"calender", every = 3',
            "backtest.policies[0].kind: unknown value 'calender' (did you mean 'calendar'?)",
        ),
        ("every = 3 }", "evry = 3 }", "policies[0].evry: unknown key (did you mean 'every'?)"),
        (
            "every = 3 }",
            "every = 3, band = 0.1 }",
            "policies[0].band: not used with kind = 'calendar'",
        ),
        ("every = 3 }", "every = 0 }", "policies[0].every: must be >= 1"),
        ("every = 3 }", "every = 2.5 }", "policies[0].every: expected a whole number"),
        ("band = 0.05 }", "band = { A = 0.05 } }", "policies[1].band: missing for B, C"),
        ("band = 0.05 }", "band = 5 }", "policies[1].band: must be > 0 and <= 1, got 5"),
        ('"buy_and_hold" }', '"calendar", every = 3 }', "duplicate policy name 'calendar every 3'"),
        ("[backtest]", "[backtest]\ntarget = 'models'", "backtest.target: unknown value 'models'"),
        ("[backtest]", "[backtest]\nspending_window = 4", "needs backtest.spending_rate"),
        ("[backtest]", "[backtest]\nstart = 2030-01-01", "backtest.start: leaves 0 return(s)"),
        (
            "[backtest]",
            "[backtest]\ndrawdown = { threshold = 0.2, defensive = { C = 0.9 } }",
            "backtest.drawdown.defensive: defensive weights sum to 0.9",
        ),
        (
            "[backtest]",
            "[backtest]\ndrawdown = { threshold = 0.2, recover = 0.3, defensive = { C = 1 } }",
            "backtest.drawdown.recover: 0.3 must be below threshold 0.2",
        ),
    ],
)
def test_backtest_schema_errors_exit_2(tmp_path, old, new, message) -> None:
    path = small(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, stdout, err = call(["backtest", str(path)])
    assert code == 2
    assert stdout == ""
    assert err.startswith(f"trimtab: error: {path}: ")
    assert message in err


def test_backtest_needs_a_returns_history(tmp_path) -> None:
    code, _, err = call(["example", "riverside_endowment", "--dir", str(tmp_path)])
    assert code == 0, err
    path = tmp_path / "riverside_endowment.toml"
    with path.open("a", encoding="utf-8") as f:
        f.write('\n[backtest]\npolicies = [{ kind = "buy_and_hold" }]\n')
    for command in ("backtest", "run"):  # rejected at load time, whatever the command
        code, _, err = call([command, str(path)])
        assert code == 2
        assert f"{path}: backtest: " in err
        assert 'a backtest needs [estimates] source = "prices" or "returns"' in err


def test_backtest_command_without_a_section_or_policies(tmp_path) -> None:
    path = small(tmp_path, extra="")
    code, _, err = call(["backtest", str(path)])
    assert code == 2
    assert "has no [backtest] section" in err
    path = small(tmp_path, extra="\n[backtest]\npolicies = []\n")
    code, _, err = call(["backtest", str(path)])
    assert code == 2
    assert "backtest.policies: expected a non-empty array of policy tables" in err


# ============================================================================ Monte Carlo


@pytest.fixture(scope="module")
def endowment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("endowment")
    code, _, err = call(["example", "riverside_endowment", "--dir", str(folder)])
    assert code == 0, err
    path = folder / "riverside_endowment.toml"
    out = folder / "out"
    code, stdout, err = call(["run", str(path), "--out", str(out)])
    assert code == 0, err
    return path, out, stdout


def test_endowment_monte_carlo_in_report_and_csv(endowment) -> None:
    path, out, stdout = endowment
    report = read_json(out / "report.json")
    mc = report["montecarlo"]
    assert (mc["paths"], mc["years"], mc["seed"], mc["distribution"]) == (10_000, 30, 7, "normal")
    # spending rate and inflation from [validation]
    assert mc["settings"]["spending_rate"] == 0.04 and mc["inflation"] == 0.025
    assert 0 <= mc["summary"]["prob_preserve_real_value"] <= 1
    assert "Monte Carlo (10,000 paths, 30 years, normal, seed 7" in stdout
    assert "P(real value preserved" in stdout

    fan = pd.read_csv(out / "montecarlo.csv", index_col=0)
    assert fan.index.name == "year" and list(fan.index) == list(range(31))
    assert (fan.iloc[0] == 500_000_000).all()
    cols = ["p5", "p25", "p50", "p75", "p95"]
    assert (fan[cols].diff(axis=1).iloc[:, 1:] >= 0).all().all()
    assert fan["p50"].tolist() == pytest.approx(mc["value_percentiles"]["p50"], rel=1e-12)
    assert "montecarlo.csv" in read_json(out / "manifest.json")["files"]

    # the same figures from a direct call on the run's target
    scn = load_scenario(path)
    est = scn.estimates.build()
    target = pd.read_csv(out / "targets.csv", index_col=0)["target"]
    direct = simulate(
        target,
        est.mu,
        est.cov,
        years=30,
        paths=10_000,
        value=500_000_000,
        seed=7,
        spending_rate=0.04,
        inflation=0.025,
    )
    for key, value in direct.summary.items():
        assert mc["summary"][key] == pytest.approx(value, rel=1e-6, abs=1e-6), key


def test_monte_carlo_is_reproducible_with_a_seed(endowment, tmp_path) -> None:
    path, out, _ = endowment
    again = tmp_path / "again"
    assert call(["run", str(path), "--out", str(again)])[0] == 0
    assert (again / "montecarlo.csv").read_bytes() == (out / "montecarlo.csv").read_bytes()
    other = path.with_name("seed8.toml")
    other.write_text(path.read_text().replace("seed = 7", "seed = 8"), encoding="utf-8")
    code, stdout, err = call(["run", str(other), "--json"])
    assert code == 0, err
    assert json.loads(stdout)["montecarlo"]["seed"] == 8
    assert (
        json.loads(stdout)["montecarlo"]["summary"]
        != read_json(out / "report.json")["montecarlo"]["summary"]
    )


def test_monte_carlo_bootstrap_from_the_returns_history(tmp_path) -> None:
    extra = '\n[montecarlo]\nyears = 10\npaths = 500\nseed = 1\ndistribution = "bootstrap"\n'
    path = small(tmp_path, extra)
    code, stdout, err = call(["run", str(path), "--json"])
    assert code == 0, err
    mc = json.loads(stdout)["montecarlo"]
    assert mc["distribution"] == "bootstrap" and mc["paths"] == 500
    assert mc["settings"]["spending_rate"] == 0.04  # no [validation]: the default


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "[montecarlo]",
            "[montecarlo]\npath = 10",
            "montecarlo.path: unknown key (did you mean 'paths'?)",
        ),
        ("paths = 10_000", "paths = 0", "montecarlo.paths: must be >= 1"),
        ("seed = 7", "seed = -1", "montecarlo.seed: expected a non-negative integer"),
        (
            "[montecarlo]",
            "[montecarlo]\ndistribution = 'lognormal'",
            "montecarlo.distribution: unknown value 'lognormal'",
        ),
        (
            "[montecarlo]",
            "[montecarlo]\ndof = 4",
            "montecarlo.dof: not used with distribution = 'normal'",
        ),
        (
            "[montecarlo]",
            "[montecarlo]\ndistribution = 'student_t'\ndof = 2",
            "montecarlo.dof: must be > 2",
        ),
        (
            "[montecarlo]",
            "[montecarlo]\nspending_rule = 'trailing'\nsmoothing = 0.5",
            "montecarlo.smoothing: not used",
        ),
        (
            "[montecarlo]",
            "[montecarlo]\nspending_rate = 4",
            "montecarlo.spending_rate: must be >= 0 and <= 1, got 4",
        ),
        (
            "[montecarlo]",
            "[montecarlo]\ndistribution = 'bootstrap'",
            'needs [estimates] source = "prices" or "returns"',
        ),
    ],
)
def test_monte_carlo_schema_errors_exit_2(endowment, tmp_path, old, new, message) -> None:
    path, _, _ = endowment
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, _, err = call(["run", str(bad)])
    assert code == 2
    assert message in err, err
