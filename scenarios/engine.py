"""The main job: estimate, allocate, tilt, rebalance, stress and validate one scenario.

:func:`run_scenario` turns a :class:`~scenarios.schema.Scenario` into a
:class:`RunResult`; :func:`write_outputs` writes its files atomically. No file
is read or written here other than through :mod:`scenarios.export`.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from models import mean_variance as mv
from models.black_litterman import black_litterman
from models.cvar import min_cvar
from models.estimates import Estimates
from models.expected_returns import equilibrium
from models.risk_parity import risk_parity
from optimizer.allocation import Allocation, Frontier
from optimizer.constraints import ExposureLimit
from optimizer.core import Objective, make_allocation, resolved, risk_model, solve_portfolio, verify
from optimizer.rebalance import rebalance
from optimizer.trades import RebalancePlan, drift, threshold_check
from scenarios import stress as stress_mod
from scenarios.export import OutputSet, to_jsonable
from scenarios.schema import Scenario
from scenarios.tactical import Overlay, Rule, overlay

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced (``report()`` is its JSON-ready form)."""

    scenario: Scenario
    estimates: Estimates
    allocation: Allocation
    target: pd.Series
    overlay: Overlay | None = None
    decision: Any = None
    plan: RebalancePlan | None = None
    stress: tuple = ()
    checks: tuple = ()
    frontier: Frontier | None = None
    timings: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every validation check passed (checks that could not run do not count)."""
        return all(c["passed"] is not False for c in self.checks)

    def report(self) -> dict[str, Any]:
        scn = self.scenario
        a = self.allocation
        policy = scn.policy
        out: dict[str, Any] = {
            "scenario": {"name": scn.portfolio.name, "id": scn.portfolio.id, "file": scn.path.name},
            "as_of": None if scn.portfolio.as_of is None else scn.portfolio.as_of.isoformat(),
            "model": {"kind": scn.model.kind, "objective": scn.model.objective},
            "targets": targets_table(self).reset_index().to_dict(orient="records"),
            "expected_return": a.expected_return,
            "volatility": a.volatility,
            "sharpe": sharpe(a, scn.estimates.risk_free_rate),
            "risk_free_rate": scn.estimates.risk_free_rate,
            "risk_contributions": a.risk_contributions,
            "binding": list(a.binding),
            "constraint_checks": a.checks,
            "allocation": {
                "status": a.status,
                "solver": a.solver,
                "attempts": list(a.attempts),
                "notes": list(a.notes),
            },
            "policy": policy,
            "validation": list(self.checks),
            "stress": [s.to_dict() for s in self.stress],
            "timings": self.timings,
        }
        if self.overlay is not None:
            out["tactical"] = {
                "rules": list(self.overlay.fired),
                "equity_tilt": self.overlay.equity_tilt,
                "uncapped_tilt": self.overlay.uncapped_tilt,
                "tilted_target": self.overlay.target,
            }
        if self.decision is not None:
            out["trigger"] = {"trade": self.decision.trade, "reasons": list(self.decision.reasons)}
        if self.plan is not None:
            out["rebalance"] = self.plan.to_dict()
        if self.frontier is not None:
            out["frontier"] = self.frontier.to_dict()
        return to_jsonable(out)


def sharpe(a: Allocation, rf: float) -> float | None:
    if a.expected_return is None or a.volatility <= 0:
        return None
    return (a.expected_return - rf) / a.volatility


def targets_table(res: RunResult) -> pd.DataFrame:
    """Target against policy with the band used, by asset (decimals)."""
    scn = res.scenario
    t = pd.DataFrame({"name": pd.Series(dict(scn.asset_names)), "target": res.target})
    t.index.name = "asset"
    if scn.policy is not None:
        t["policy"] = scn.policy
        t["active"] = t["target"] - t["policy"]
    t["risk_contribution"] = res.allocation.risk_contributions
    return t.loc[scn.assets]


def evaluate(weights: pd.Series, est: Estimates, scn: Scenario, *, status: str) -> Allocation:
    """Analytics and constraint checks of given weights (no optimization)."""
    rm = risk_model(est.cov)
    w = weights.reindex(rm.assets).fillna(0.0).to_numpy(dtype=float)
    cset = resolved(list(scn.constraints), rm.assets, scn.universe)
    checks = verify(list(cset.pieces), w, rm)
    mu = est.mu.reindex(rm.assets).to_numpy(dtype=float)
    return make_allocation(w, rm.assets, rm, mu, status=status, solver="none", checks=checks)


def allocate(scn: Scenario, est: Estimates) -> Allocation:
    """The model's allocation (for kind "policy": the policy weights, evaluated)."""
    kind, obj, p = scn.model.kind, scn.model.objective, scn.model.params
    cons = list(scn.constraints)
    kw = {"constraints": cons, "universe": scn.universe}
    rf = scn.estimates.risk_free_rate
    mu, cov = est.mu, est.cov
    if kind == "policy":
        return evaluate(scn.policy, est, scn, status="policy")
    if kind == "risk_parity":
        return risk_parity(cov, p.get("budgets"), **kw)
    if kind == "min_cvar":
        return min_cvar(
            scn.estimates.returns,
            p.get("alpha", 0.95),
            mu=mu,
            target_return=p.get("target_return"),
            **kw,
        )
    if kind == "black_litterman":
        prior_w = (
            scn.policy
            if p.get("prior") == "policy"
            else pd.Series(1.0 / len(scn.assets), index=scn.assets)
        )
        prior = equilibrium(cov, prior_w, risk_aversion=p["risk_aversion"], risk_free_rate=rf)
        mu, cov = black_litterman(
            prior, cov, views=list(scn.model.views), tau=p.get("tau", 0.05), universe=scn.universe
        )
    if obj == "max_sharpe":
        return mv.max_sharpe(mu, cov, risk_free_rate=rf, **kw)
    if obj == "min_variance":
        return mv.min_variance(cov, mu=mu, **kw)
    if obj == "target_return":
        return mv.efficient_return(mu, cov, target_return=p["target_return"], **kw)
    if obj == "target_risk":
        return mv.efficient_risk(mu, cov, target_volatility=p["target_volatility"], **kw)
    return mv.max_utility(mu, cov, risk_aversion=p["risk_aversion"], **kw)


def closest_feasible(target: pd.Series, est: Estimates, scn: Scenario) -> Allocation:
    """The portfolio nearest ``target`` in tracking error that meets every policy constraint.

    Minimizes ``(w - t)' C (w - t) = w'Cw - 2 t'Cw + const``.
    """
    rm = risk_model(est.cov)
    t = target.reindex(rm.assets).fillna(0.0).to_numpy(dtype=float)
    pull = pd.Series(rm.times(t), index=rm.assets)
    a = solve_portfolio(
        Objective(variance=1.0, mu_weight=2.0),
        cov=est.cov,
        mu=pull,
        constraints=list(scn.constraints),
        universe=scn.universe,
    )
    mu = est.mu.reindex(rm.assets).to_numpy(dtype=float)
    return make_allocation(
        a.weights.to_numpy(),
        rm.assets,
        rm,
        mu,
        status=a.status,
        solver=a.solver,
        attempts=a.attempts,
        binding=a.binding,
        checks=a.checks,
        timings=a.timings,
        objective=a.objective,
        notes=a.notes,
    )


def validation_checks(scn: Scenario, a: Allocation, stress: tuple) -> tuple[dict, ...]:
    """Pass/fail checks with their figures: constraints, return target, spending rule, ESG, survival."""
    v = dict(scn.validation)
    out: list[dict] = []
    for name, c in a.checks.items():
        out.append(
            {
                "check": f"constraint: {name}",
                "passed": bool(c["ok"]),
                "figure": c["max_violation"],
                "detail": "max violation",
            }
        )
    er = a.expected_return
    if "return_target" in v and er is not None:
        out.append(
            {
                "check": "return target",
                "passed": er >= v["return_target"] - 1e-12,
                "figure": er,
                "detail": f"expected return vs target {v['return_target']:.4f}",
            }
        )
    if "spending_rate" in v and "inflation" in v and er is not None:
        need = v["spending_rate"] + v["inflation"]
        out.append(
            {
                "check": "spending rule",
                "passed": er >= need - 1e-12,
                "figure": er,
                "detail": f"expected return vs spending {v['spending_rate']:.4f} + "
                f"inflation {v['inflation']:.4f} = {need:.4f}",
            }
        )
    if "esg_floor" in v:
        scores = [
            c for c in scn.constraints if isinstance(c, ExposureLimit) and "esg" in c.name.lower()
        ]
        if scores:
            s = scores[0].scores.reindex(a.weights.index).fillna(0.0)
            esg = float(s @ a.weights)
            out.append(
                {
                    "check": "ESG floor",
                    "passed": esg >= v["esg_floor"] - 1e-9,
                    "figure": esg,
                    "detail": f"weighted ESG score vs floor {v['esg_floor']}",
                }
            )
        else:
            out.append(
                {
                    "check": "ESG floor",
                    "passed": None,
                    "figure": None,
                    "detail": "not checked: no exposure constraint with 'esg' in its name",
                }
            )
    for s in stress:
        if s.survives is not None:
            out.append(
                {
                    "check": f"survival: {s.name}",
                    "passed": s.survives,
                    "figure": s.value_after / s.value_before,
                    "detail": f"value after the shock vs floor {s.floor:.2f} of today's",
                }
            )
    return tuple(out)


def run_scenario(
    scn: Scenario, *, progress: Progress | None = None, frontier_points: int = 0
) -> RunResult:
    """Run the main job on a loaded scenario.

    Steps: estimates; the model's allocation; the tactical overlay (its tilt
    applied to the target, then the nearest portfolio that meets every policy
    constraint); the rebalance when holdings are given (only when the
    threshold trigger fires, if one is set); stress tests on the target;
    validation checks. ``frontier_points`` > 0 adds an efficient frontier.
    """
    t0 = time.perf_counter()
    est = scn.estimates.build()
    t1 = time.perf_counter()
    alloc = allocate(scn, est)
    ov = None
    if scn.tactical is not None:
        tac = scn.tactical
        ov = overlay(
            alloc.weights,
            dict(tac.indicators),
            [Rule(r.name, r.when, r.equity) for r in tac.rules],
            universe=scn.universe,
            band=tac.band,
            offset=dict(tac.offset),
        )
        alloc = closest_feasible(ov.target, est, scn)
    target = alloc.weights.copy()
    t2 = time.perf_counter()
    decision = plan = None
    if scn.holdings is not None:
        if scn.rebalance_threshold is not None:
            decision = threshold_check(drift(scn.holdings.values, target), scn.rebalance_threshold)
        if decision is None or decision.trade:
            plan = rebalance(
                scn.holdings.values,
                target,
                cov=est.cov,
                costs=scn.costs,
                constraints=list(scn.constraints),
                universe=scn.universe,
                **dict(scn.rebalance),
            )
    t3 = time.perf_counter()
    value = scn.portfolio.value
    floor = scn.validation.get("survival_floor")
    stressed = tuple(
        stress_mod.apply(
            target, dict(shocks), name=name, universe=scn.universe, value=value, floor=floor
        )
        for name, shocks in scn.stress
    )
    checks = validation_checks(scn, alloc, stressed)
    front = None
    if frontier_points:
        front = frontier(scn, est, frontier_points, progress)
    t4 = time.perf_counter()
    return RunResult(
        scn,
        est,
        alloc,
        target,
        ov,
        decision,
        plan,
        stressed,
        checks,
        front,
        {"estimate": t1 - t0, "allocate": t2 - t1, "rebalance": t3 - t2, "other": t4 - t3},
    )


def frontier(scn: Scenario, est: Estimates, points: int, progress: Progress | None) -> Frontier:
    """The efficient frontier under the scenario's constraints."""
    return mv.efficient_frontier(
        est.mu,
        est.cov,
        points=points,
        risk_free_rate=scn.estimates.risk_free_rate,
        constraints=list(scn.constraints),
        universe=scn.universe,
        progress=progress,
    )


def manifest(scn: Scenario, res: RunResult | None, files: list[str], command: str) -> dict:
    """What an auditor needs to reproduce a run."""
    versions = {}
    for dist in (
        "trimtab",
        "numpy",
        "pandas",
        "scipy",
        "cvxpy",
        "clarabel",
        "osqp",
        "scs",
        "proxsuite",
        "scikit-learn",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return to_jsonable(
        {
            "command": command,
            "scenario_file": str(scn.path),
            "scenario_sha256": scn.sha256,
            "versions": versions,
            "python": platform.python_version(),
            "timings": None if res is None else res.timings,
            "files": files,
        }
    )


def write_outputs(res: RunResult, out_dir: str | Path, *, command: str = "run") -> list[str]:
    """Write targets, orders (with holdings), report and manifest atomically into ``out_dir``."""
    scn = res.scenario
    with OutputSet(out_dir) as out:
        table = targets_table(res)
        out.write_csv("targets.csv", table)
        out.write_json(
            "targets.json",
            {
                "as_of": res.report()["as_of"],
                "portfolio_id": scn.portfolio.id,
                "targets": res.target,
            },
        )
        if res.plan is not None:
            out.write_json("orders.json", res.plan.to_orders())
            out.write_text("orders.csv", res.plan.orders_csv())
        if res.frontier is not None:
            pts = res.frontier.points.join(res.frontier.weights)
            out.write_csv("frontier.csv", pts)
        out.write_json("report.json", res.report())
        files = list(out.files) + ["manifest.json"]
        out.write_json("manifest.json", manifest(scn, res, files, command))
    return files
