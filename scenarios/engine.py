"""The main job: estimate, allocate, tilt, rebalance, stress and validate one scenario.

:func:`run_scenario` turns a :class:`~scenarios.schema.Scenario` into a
:class:`RunResult` (with a Monte Carlo of the target when the scenario has a
``[montecarlo]`` section). Its files are written by
:func:`scenarios.outputs.write_outputs`; the ``[backtest]`` policies are run by
:mod:`scenarios.backtest_run`. No file is read or written here.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from models import mean_variance as mv
from models.black_litterman import black_litterman
from models.cvar import min_cvar
from models.estimates import Estimates
from models.expected_returns import equilibrium
from models.risk_parity import risk_parity
from optimizer.allocation import Allocation, Frontier
from optimizer.compiled import Compiled
from optimizer.constraints import ExposureLimit
from optimizer.errors import InputError
from optimizer.rebalance import rebalance, shared
from optimizer.trades import RebalancePlan, drift
from optimizer.triggers import Cash, Decision, Threshold, Trigger
from scenarios import stress as stress_mod
from scenarios.export import to_jsonable
from scenarios.montecarlo import MonteCarloResult, simulate
from scenarios.schema import Scenario, load_scenario
from scenarios.tactical import Overlay, Rule, overlay

Progress = Callable[[int, int], None]

#: Most points of an efficient frontier (``trimtab frontier --points``,
#: ``run_scenario(frontier_points=)``): each is one optimization.
MAX_FRONTIER_POINTS = 1000


def report_header(scn: Scenario) -> dict[str, Any]:
    """The keys that open every report.json: ``scenario`` (name, id, file), ``as_of``, ``model``."""
    return {
        "scenario": {"name": scn.portfolio.name, "id": scn.portfolio.id, "file": scn.path.name},
        "as_of": None if scn.portfolio.as_of is None else scn.portfolio.as_of.isoformat(),
        "model": {"kind": scn.model.kind, "objective": scn.model.objective},
    }


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
    montecarlo: MonteCarloResult | None = None

    @property
    def passed(self) -> bool:
        """True when every validation check passed (checks that could not run do not count)."""
        return all(c["passed"] is not False for c in self.checks)

    def report(self) -> dict[str, Any]:
        scn = self.scenario
        a = self.allocation
        policy = scn.policy
        out: dict[str, Any] = {
            **report_header(scn),
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
                "relaxed": relaxed_of(a),
            },
            "policy": policy,
            "validation": list(self.checks),
            "passed": self.passed,
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
            out["rebalance"] = {**self.plan.to_dict(), "relaxed": relaxed_of(self.plan)}
            if self.plan.lot_sales is not None:
                out["tax"] = self.plan.tax_summary()
        if self.frontier is not None:
            out["frontier"] = self.frontier.to_dict()
        if self.montecarlo is not None:
            out["montecarlo"] = self.montecarlo.to_dict()
        return to_jsonable(out)


def sharpe(a: Allocation, rf: float) -> float | None:
    """The Sharpe ratio at the scenario's rate; None without returns or for a riskless portfolio."""
    value = a.sharpe_ratio(rf)
    return None if value is None or not math.isfinite(value) else value


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


def relaxed_of(result: Any) -> list[dict[str, Any]]:
    """What an allocation or a rebalance plan had to give, JSON-ready.

    Parameters
    ----------
    result : Allocation, RebalancePlan or None
        Anything with a ``relaxed`` attribute (none, or None: nothing was
        relaxed). Each entry is a mapping with ``name``, ``priority`` and
        ``amount``, an object with those attributes, or such a triple.

    Returns
    -------
    list of dict
        One ``{"name": str, "priority": int, "amount": float}`` per relaxed
        soft constraint, ``amount`` in the constraint's own units (decimals of
        weight for a group limit, of volatility for a tracking-error limit, ...).
    """
    out = []
    for r in getattr(result, "relaxed", None) or ():
        if isinstance(r, Mapping):
            name, priority, amount = r.get("name"), r.get("priority"), r.get("amount")
        elif isinstance(r, tuple | list):
            name, priority, amount = r
        else:
            name, priority, amount = r.name, r.priority, r.amount
        out.append(
            {
                "name": str(name),
                "priority": None if priority is None else int(priority),
                "amount": None if amount is None else float(amount),
            }
        )
    return out


def relaxations(res: RunResult | None) -> list[dict[str, Any]]:
    """Every relaxed soft constraint of a run, each with ``where`` ("allocation" or "rebalance")."""
    if not isinstance(res, RunResult):
        return []
    return [{"where": "allocation", **r} for r in relaxed_of(res.allocation)] + [
        {"where": "rebalance", **r} for r in relaxed_of(res.plan)
    ]


def allocation_of(weights: pd.Series, est: Estimates, scn: Scenario, **fields: Any) -> Allocation:
    """An :class:`~optimizer.Allocation` of given weights (no optimization).

    Parameters
    ----------
    weights : pandas.Series, shape (n,)
        Weights by asset (decimals); assets of the estimates missing here weigh 0.
    est : Estimates
        ``mu`` (annualized decimals) and ``cov`` (annualized decimals squared).
    scn : Scenario
        Its constraints and universe, which the weights are checked against
        (unless ``checks`` is given).
    **fields
        The Allocation's other fields (``status``, ``solver``, ``relaxed``, ...).

    Returns
    -------
    Allocation
        Expected return ``w' mu``, volatility ``sqrt(w' C w)``, Euler risk
        contributions and a check of every constraint by name, as
        :meth:`optimizer.Compiled.allocation` makes them.
    """
    problem = Compiled(est.cov, constraints=list(scn.constraints), universe=scn.universe)
    w = weights.reindex(problem.assets).fillna(0.0).to_numpy(dtype=float)
    mu = est.mu.reindex(problem.assets).to_numpy(dtype=float)
    return problem.allocation(w, mu, **fields)


def evaluate(weights: pd.Series, est: Estimates, scn: Scenario, *, status: str) -> Allocation:
    """Analytics and constraint checks of given weights (no optimization)."""
    return allocation_of(weights, est, scn, status=status, solver="none")


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
    kw["l2_gamma"] = p.get("l2_gamma", 0.0)  # [model] l2_gamma: L2 regularization, 0 = off
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

    No optimization of its own: a rebalance without costs, from holdings equal
    to ``target`` (at the portfolio's value), minimizes the ex-ante tracking
    variance ``(w - t)' C (w - t)`` under the scenario's constraints, and its
    post-trade weights are the answer.

    Parameters
    ----------
    target : pandas.Series, shape (n,)
        Weights by asset (decimals) summing to the budget; assets of the
        estimates missing here weigh 0.
    est : Estimates
        The covariance the tracking error is measured with, and ``mu`` for
        the expected return.
    scn : Scenario
        Its constraints and universe.

    Returns
    -------
    Allocation
        The weights and their analytics; ``status``, ``solver``, ``attempts``,
        ``checks``, ``timings`` and ``notes`` of the rebalance; ``objective``
        the tracking variance (annualized decimals squared); ``binding`` and
        ``relaxed`` as the rebalance plan reports them (empty when it does not).

    Raises
    ------
    InputError, InfeasibleError, SolverError
        As :func:`optimizer.rebalance.rebalance` raises them.
    """
    t = target.reindex(est.cov.index).fillna(0.0).astype(float)
    value = float(scn.portfolio.value or 1.0)
    plan = rebalance(
        t * value,
        t,
        cov=est.cov,
        costs=None,
        constraints=list(scn.constraints),
        universe=scn.universe,
    )
    return allocation_of(
        plan.weights_after,
        est,
        scn,
        status=plan.status,
        solver=plan.solver,
        attempts=tuple(plan.attempts),
        binding=tuple(getattr(plan, "binding", ())),
        checks=plan.checks,
        timings=plan.timings,
        objective=plan.tracking_error_after**2,
        notes=tuple(plan.notes),
        relaxed=tuple(getattr(plan, "relaxed", ())),
    )


def rebalance_decision(
    holdings: pd.Series,
    target: pd.Series,
    trigger: Trigger,
    scn: Scenario,
    *,
    cash: float | None = None,
    cash_flow: float | None = None,
) -> Decision:
    """Whether ``trigger`` says to trade the holdings back to ``target`` today.

    Cash counts (:class:`optimizer.triggers.Cash`): the weights are of the
    account including its idle cash, the idle cash is a drift from its 0%
    target, and a pending deposit or withdrawal trades whatever the drift.

    Parameters
    ----------
    holdings : pandas.Series
        Market values by asset (currency).
    target : pandas.Series
        Target weights by asset (decimals), summing to 1 (no cash in the target).
    trigger : optimizer.triggers trigger
        ``Threshold``, ``Calendar``, ``Hybrid`` or ``BuyAndHold``; a calendar
        schedule counts from the scenario's ``as_of``.
    scn : Scenario
        Its ``as_of``, universe (for bands given by tag) and currency.
    cash : float, optional
        Idle cash (currency); by default the scenario's ``holdings.cash``.
    cash_flow : float, optional
        Pending deposit (> 0) or withdrawal (< 0), currency; by default the
        scenario's ``rebalance.cash_flow``.
    """
    if cash is None:
        cash = scn.holdings.cash if scn.holdings is not None else 0.0
    if cash_flow is None:
        cash_flow = scn.rebalance.pending_flow if scn.rebalance is not None else 0.0
    if float(holdings.sum()) + cash > 0:
        table = drift(holdings, target, cash=cash)
        weights, idle = table["weight"], cash / (float(table["value"].sum()) + cash)
    else:  # an empty account with a deposit: nothing held yet, the flow decides
        weights, idle = holdings * 0.0, 0.0
    return trigger.check(
        weights,
        target,
        as_of=scn.portfolio.as_of,
        universe=scn.universe,
        cash=Cash(weight=idle, flow=cash_flow, currency=scn.portfolio.currency),
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
    scn: Scenario | str | os.PathLike,
    *,
    progress: Progress | None = None,
    frontier_points: int = 0,
) -> RunResult:
    """Run the main job on a scenario (loaded, or the path of its file).

    Steps: estimates; the model's allocation; the tactical overlay (its tilt
    applied to the target, then the nearest portfolio that meets every policy
    constraint); the rebalance when holdings are given (only when the
    threshold trigger fires, if one is set; tax-aware with ``holdings.lots``:
    :func:`plan_rebalance`); stress tests on the target;
    validation checks. ``frontier_points`` > 0 adds an efficient frontier
    (at most :data:`MAX_FRONTIER_POINTS`).

    Parameters
    ----------
    scn : Scenario, str or os.PathLike
        A scenario from :func:`scenarios.load_scenario`, or the path of a
        scenario file (loaded here).
    progress : Progress, optional
        Progress reports of the frontier.
    frontier_points : int
        Points of the efficient frontier (0: none).

    Returns
    -------
    RunResult

    Raises
    ------
    InputError
        ``scn`` neither a Scenario nor a path; the file's errors; too many
        frontier points.
    InfeasibleError, SolverError
        As the model and the rebalance raise them.
    """
    if isinstance(scn, str | os.PathLike):
        scn = load_scenario(scn)
    elif not isinstance(scn, Scenario):
        raise InputError(
            "run_scenario takes a Scenario (from scenarios.load_scenario) or the path of a "
            f"scenario file, got {type(scn).__name__}"
        )
    if frontier_points:
        frontier_points = check_frontier_points(frontier_points)
    t0 = time.perf_counter()
    est = scn.estimates.build()
    t1 = time.perf_counter()
    alloc, ov = target_allocation(scn, est)
    target = alloc.weights.copy()
    t2 = time.perf_counter()
    decision = plan = None
    if scn.holdings is not None:
        if scn.rebalance.threshold is not None:
            trigger = Threshold(scn.rebalance.threshold)
            decision = rebalance_decision(scn.holdings.values, target, trigger, scn)
        if decision is None or decision.trade:
            plan = plan_rebalance(scn, target, est.cov)
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
    mc = montecarlo(scn, est, target) if scn.montecarlo is not None else None
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
        mc,
    )


def plan_rebalance(scn: Scenario, target: pd.Series, cov) -> RebalancePlan:
    """The scenario's rebalance of its holdings toward ``target``; tax-aware with lots.

    With ``holdings.lots`` the plan is ``Rebalancer.plan(..., lots=, recent=,
    tax=, harvest=, substitutes=)`` of :mod:`scenarios.schema.tax` (all rates
    0 without ``[tax]``); without them, :func:`optimizer.rebalance.rebalance`.
    """
    kw = scn.rebalance.kwargs()
    common = {"costs": scn.costs, "constraints": list(scn.constraints), "universe": scn.universe}
    if not scn.taxable:
        return rebalance(scn.holdings.values, target, cov=cov, **common, **kw)
    per_plan = {k: kw.pop(k) for k in ("prices", "cash_flow", "as_of", "portfolio_id") if k in kw}
    rb = shared(cov, **common, **kw)
    tax = scn.tax.plan_kwargs() if scn.tax is not None else {}
    h = scn.holdings
    return rb.plan(h.values, target, **per_plan, lots=h.lots, recent=h.recent, **tax)


def target_allocation(scn: Scenario, est: Estimates) -> tuple[Allocation, Overlay | None]:
    """The model's allocation, tilted by the tactical overlay when there is one.

    With an overlay, the allocation returned is the portfolio nearest the
    tilted target that meets every policy constraint.
    """
    alloc = allocate(scn, est)
    if scn.tactical is None:
        return alloc, None
    tac = scn.tactical
    ov = overlay(
        alloc.weights,
        dict(tac.indicators),
        [Rule(r.name, r.when, r.equity) for r in tac.rules],
        universe=scn.universe,
        band=tac.band,
        offset=dict(tac.offset),
    )
    return closest_feasible(ov.target, est, scn), ov


def montecarlo(scn: Scenario, est: Estimates, target: pd.Series) -> MonteCarloResult:
    """The ``[montecarlo]`` simulation of ``target`` from the portfolio's value.

    Normal and Student t draws use the estimates' ``mu`` and ``cov``;
    ``bootstrap`` resamples calendar years of ``scn.estimates.returns``.
    """
    spec = scn.montecarlo
    if spec is None:
        raise ValueError("the scenario has no [montecarlo] section")
    return simulate(
        target,
        est.mu,
        est.cov,
        value=scn.portfolio.value,
        history=scn.estimates.returns if spec.distribution == "bootstrap" else None,
        **spec.kwargs(),
    )


def check_frontier_points(points: object, what: str = "frontier points") -> int:
    """``points`` when it is at most :data:`MAX_FRONTIER_POINTS`, else an InputError.

    Parameters
    ----------
    points : int
        Points asked for (the rest of the checks, ``>= 2``, are the frontier's own).
    what : str
        Its name in the message (``"--points"`` on the command line).

    Returns
    -------
    int or object
        ``points`` unchanged.
    """
    if isinstance(points, numbers.Integral) and points > MAX_FRONTIER_POINTS:
        raise InputError(
            f"{what}: {points:,} asked for; the limit is {MAX_FRONTIER_POINTS:,} (each point "
            "is one optimization, and its weights are kept): ask for fewer points"
        )
    return points


def frontier(scn: Scenario, est: Estimates, points: int, progress: Progress | None) -> Frontier:
    """The efficient frontier under the scenario's constraints (at most
    :data:`MAX_FRONTIER_POINTS` points)."""
    points = check_frontier_points(points)
    return mv.efficient_frontier(
        est.mu,
        est.cov,
        points=points,
        risk_free_rate=scn.estimates.risk_free_rate,
        constraints=list(scn.constraints),
        universe=scn.universe,
        progress=progress,
    )
