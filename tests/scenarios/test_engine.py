"""scenarios.engine: the nearest feasible portfolio through the rebalance, the rebalance
trigger, and what soft constraints gave up in report.json, manifest.json and the CLI.

``closest_feasible`` is checked against an independent formulation of the same problem
(``max_utility`` with ``mu = risk_aversion * C t`` maximizes ``-(risk_aversion / 2) (w - t)' C
(w - t)`` plus a constant). Relaxations are checked with stub results (an allocation or plan
carrying ``relaxed``) so that the reporting works before and after soft constraints land.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import scenarios.backtest_run as backtest_run
import scenarios.engine as engine
import scenarios.outputs as outputs
from models import mean_variance as mv
from optimizer.allocation import Allocation
from optimizer.trades import drift, threshold_check
from optimizer.triggers import Hybrid, Threshold
from scenarios import load_scenario
from scenarios.cli import examples, main
from scenarios.display import relaxed_lines

RELAXED_ALLOCATION = ({"name": "equity cap", "priority": 2, "amount": 0.05},)
RELAXED_PLAN = ({"name": "turnover cap", "priority": 1, "amount": 0.01},)


@pytest.fixture(scope="module")
def tactical():
    scn = load_scenario(examples()["tactical_overlay"])
    return scn, scn.estimates.build()


@pytest.fixture(scope="module")
def ria():
    scn = load_scenario(examples()["ria_q1_2024"])
    return scn, engine.run_scenario(scn)


def tracking_variance(w: pd.Series, t: pd.Series, cov: pd.DataFrame) -> float:
    d = (w - t.reindex(w.index)).to_numpy()
    return float(d @ cov.loc[w.index, w.index].to_numpy() @ d)


# ============================================================================ closest feasible


@pytest.mark.parametrize("where", ["first asset", "equal weights"])
def test_closest_feasible_is_the_nearest_policy_portfolio(tactical, where) -> None:
    scn, est = tactical
    t = pd.Series(0.0, index=est.cov.index)
    if where == "first asset":
        t.iloc[0] = 1.0  # far outside the bands and the equity cap
    else:
        t[:] = 1.0 / len(t)
    got = engine.closest_feasible(t, est, scn)
    ref = mv.max_utility(
        est.cov @ t * 2.0,
        est.cov,
        risk_aversion=2.0,
        constraints=list(scn.constraints),
        universe=scn.universe,
    )
    np.testing.assert_allclose(got.weights, ref.weights.reindex(got.weights.index), atol=1e-6)
    te2 = tracking_variance(got.weights, t, est.cov)
    assert te2 <= tracking_variance(ref.weights, t, est.cov) + 1e-10
    assert got.objective == pytest.approx(te2, rel=1e-9, abs=1e-14)
    assert got.checks and all(c["ok"] for c in got.checks.values())
    assert set(got.checks) == set(ref.checks)
    # analytics of the weights against the estimates, not against the tracking objective
    w = got.weights
    assert got.expected_return == pytest.approx(float(w @ est.mu), abs=1e-14)
    assert got.volatility == pytest.approx(float(np.sqrt(w @ est.cov @ w)), rel=1e-12)
    assert got.risk_contributions.sum() == pytest.approx(got.volatility, rel=1e-12)
    assert list(got.weights.index) == list(est.cov.index)


def test_closest_feasible_of_a_feasible_target_is_the_target(tactical) -> None:
    scn, est = tactical
    alloc, ov = engine.target_allocation(scn, est)
    assert ov is not None
    np.testing.assert_allclose(alloc.weights, ov.target.reindex(alloc.weights.index), atol=1e-6)
    assert alloc.objective < 1e-12


def test_the_scenario_layer_solves_nothing() -> None:
    source = "\n".join(inspect.getsource(m) for m in (engine, backtest_run, outputs))
    from_optimizer = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module.split(".")[0] == "optimizer"
    }
    internals = {"optimizer.core", "optimizer.solve", "optimizer.objective", "optimizer.program"}
    assert not from_optimizer & internals
    assert "Objective(" not in source and "solve_portfolio" not in source


def test_allocation_of_a_riskless_portfolio(tactical) -> None:
    scn, est = tactical
    cash = pd.Series(0.0, index=est.cov.index)
    zero = engine.allocation_of(cash, est, scn, status="given", solver="none")
    assert zero.volatility == 0.0 and (zero.risk_contributions == 0.0).all()
    assert zero.expected_return == 0.0


# ============================================================================ rebalance trigger


def test_rebalance_decision_is_the_threshold_trigger(ria) -> None:
    scn, res = ria
    assert res.decision == threshold_check(
        drift(scn.holdings.values, res.target), scn.rebalance.threshold
    )
    assert res.decision == engine.rebalance_decision(
        scn.holdings.values, res.target, Threshold(scn.rebalance.threshold), scn
    )
    # any trigger of optimizer.triggers serves; a calendar counts from the scenario's as_of
    hybrid = Hybrid(months=3, band=0.5)
    decision = engine.rebalance_decision(scn.holdings.values, res.target, hybrid, scn)
    assert not decision and "within the band" in decision.reasons[-1]


# ============================================================================ relaxed soft constraints


class PlanWithRelaxed:
    """A rebalance plan that says what it relaxed (before RebalancePlan has the field)."""

    def __init__(self, plan, relaxed) -> None:
        self._plan = plan
        self.relaxed = relaxed

    def __getattr__(self, name):
        return getattr(self._plan, name)


def with_relaxed(res):
    alloc = dataclasses.replace(res.allocation, relaxed=RELAXED_ALLOCATION)
    return dataclasses.replace(res, allocation=alloc, plan=PlanWithRelaxed(res.plan, RELAXED_PLAN))


def test_relaxed_of_reads_every_shape() -> None:
    want = [{"name": "equity cap", "priority": 2, "amount": 0.05}]
    assert engine.relaxed_of(SimpleNamespace(relaxed=RELAXED_ALLOCATION)) == want
    assert engine.relaxed_of(SimpleNamespace(relaxed=[("equity cap", 2, 0.05)])) == want
    entry = SimpleNamespace(name="equity cap", priority=2, amount=0.05)
    assert engine.relaxed_of(SimpleNamespace(relaxed=(entry,))) == want
    for nothing in (None, object(), SimpleNamespace(relaxed=None), SimpleNamespace(relaxed=())):
        assert engine.relaxed_of(nothing) == []


def test_report_says_nothing_was_relaxed(ria) -> None:
    _, res = ria
    report = res.report()
    assert report["allocation"]["relaxed"] == []
    assert report["rebalance"]["relaxed"] == []
    assert engine.relaxations(res) == []


def test_report_and_manifest_carry_the_relaxations(ria, tmp_path) -> None:
    _, res = ria
    stub = with_relaxed(res)
    report = json.loads(json.dumps(stub.report()))
    assert report["allocation"]["relaxed"] == list(RELAXED_ALLOCATION)
    assert report["rebalance"]["relaxed"] == list(RELAXED_PLAN)
    outputs.write_outputs(stub, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["allocation"]["relaxed"] == list(RELAXED_ALLOCATION)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["relaxations"] == [
        {"where": "allocation", **RELAXED_ALLOCATION[0]},
        {"where": "rebalance", **RELAXED_PLAN[0]},
    ]


def test_an_allocation_with_relaxed_set(ria) -> None:
    if "relaxed" not in {f.name for f in dataclasses.fields(Allocation)}:
        pytest.skip("Allocation has no relaxed field yet (soft constraints not landed)")
    _, res = ria
    alloc = dataclasses.replace(res.allocation, relaxed=RELAXED_ALLOCATION)
    report = dataclasses.replace(res, allocation=alloc).report()
    assert report["allocation"]["relaxed"] == list(RELAXED_ALLOCATION)
    kept = engine.allocation_of(
        alloc.weights,
        res.estimates,
        res.scenario,
        status="x",
        solver="y",
        relaxed=RELAXED_ALLOCATION,
    )
    assert engine.relaxed_of(kept) == list(RELAXED_ALLOCATION)


def test_relaxed_lines() -> None:
    assert relaxed_lines(
        [
            {"name": "equity cap", "priority": 2, "amount": 0.05},
            {"name": "esg floor", "priority": None, "amount": 2.5e-5},
            {"name": "tracking error", "priority": 3, "amount": None},
        ]
    ) == [
        "relaxed: 'equity cap' (priority 2) by 0.0500",
        "relaxed: 'esg floor' by 2.500e-05",
        "relaxed: 'tracking error' (priority 3) by an unknown amount",
    ]


def test_cli_prints_each_relaxation_and_puts_them_in_json(ria, monkeypatch, capsys) -> None:
    scn, res = ria
    stub = with_relaxed(res)
    monkeypatch.setattr(engine, "run_scenario", lambda *a, **k: stub)
    assert main(["run", str(scn.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "relaxed: 'equity cap' (priority 2) by 0.0500" in lines
    assert "rebalance relaxed: 'turnover cap' (priority 1) by 0.0100" in lines
    assert main(["run", str(scn.path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["allocation"]["relaxed"] == list(RELAXED_ALLOCATION)
    assert doc["rebalance"]["relaxed"] == list(RELAXED_PLAN)


def test_cli_prints_no_relaxed_line_when_nothing_gave(ria, monkeypatch, capsys) -> None:
    scn, res = ria
    monkeypatch.setattr(engine, "run_scenario", lambda *a, **k: res)
    assert main(["run", str(scn.path)]) == 0
    assert "relaxed:" not in capsys.readouterr().out
