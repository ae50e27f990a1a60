"""Tests of models.mean_variance: the five allocation functions, the frontier, max Sharpe.

Every constraint is re-checked here from its own definition (not from the core's pieces), on
random problems, on real prices and on hypothesis-generated feasible policies.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import mean_variance as mv
from optimizer.allocation import Allocation, Frontier
from optimizer.compiled import Compiled
from optimizer.constraints import (
    Bounds,
    Budget,
    DeviationBand,
    ExposureLimit,
    GroupLimit,
    LeverageLimit,
    LinearConstraint,
    LongOnly,
    TrackingErrorLimit,
    TurnoverLimit,
)
from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.program import Outcome
from optimizer.solvers import ProxQP
from optimizer.universe import Universe

TOL = 1e-6  # independent re-checks, in weight units


# ----------------------------------------------------------------------------- helpers


def random_problem(n: int = 8, seed: int = 0) -> tuple[pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 3 * n))
    c = a @ a.T / (3 * n) * 0.04 + np.diag(rng.uniform(0.002, 0.01, n))
    labels = [f"A{i}" for i in range(n)]
    cov = pd.DataFrame(c, index=labels, columns=labels)
    mu = pd.Series(rng.uniform(0.02, 0.12, n), index=labels)
    return mu, cov


def as_vec(values, assets: pd.Index, default: float) -> np.ndarray:
    if isinstance(values, int | float):
        return np.full(len(assets), float(values))
    return pd.Series(values, dtype=float).reindex(assets).fillna(default).to_numpy()


def members(group, universe: Universe | None, assets: pd.Index) -> np.ndarray:
    names = universe.members(group.tag) if group.tag is not None else list(group.assets)
    return assets.isin(names)


def assert_holds(alloc: Allocation, constraints, cov: pd.DataFrame, universe=None) -> None:
    """Re-check every constraint (and the defaults) from its definition, independently."""
    w = alloc.weights.to_numpy()
    assets = alloc.weights.index
    c = cov.loc[assets, assets].to_numpy()
    cons = list(constraints or [])
    budgets = [k for k in cons if isinstance(k, Budget)]
    total = budgets[0].total if budgets else 1.0
    assert w.sum() == pytest.approx(total, abs=TOL)
    shorts = any(isinstance(k, Bounds) and k.allows_short for k in cons)
    if not shorts or any(isinstance(k, LongOnly) for k in cons):
        assert w.min() >= -TOL
    for k in cons:
        if isinstance(k, Bounds):
            if k.lower is not None:
                lo = as_vec(k.lower, assets, -np.inf)
                assert (w >= lo - TOL).all(), k.name
            if k.upper is not None:
                hi = as_vec(k.upper, assets, np.inf)
                assert (w <= hi + TOL).all(), k.name
        elif isinstance(k, GroupLimit):
            g = w[members(k, universe, assets)].sum()
            if k.min is not None:
                assert g >= k.min - TOL, k.name
            if k.max is not None:
                assert g <= k.max + TOL, k.name
        elif isinstance(k, DeviationBand):
            ref = as_vec(k.reference, assets, 0.0)
            if k.tag is not None:
                inside = assets.isin(universe.members(k.tag))
                assert abs(w[inside].sum() - ref[inside].sum()) <= k.width + TOL, k.name
            else:
                width = as_vec(k.width, assets, np.inf)
                assert (np.abs(w - ref) <= width + TOL).all(), k.name
        elif isinstance(k, TurnoverLimit):
            assert np.abs(w - as_vec(k.current, assets, 0.0)).sum() <= k.max + TOL, k.name
        elif isinstance(k, LeverageLimit):
            assert np.abs(w).sum() <= k.max + TOL, k.name
        elif isinstance(k, TrackingErrorLimit):
            d = w - as_vec(k.benchmark, assets, 0.0)
            assert math.sqrt(max(d @ c @ d, 0.0)) <= k.max + TOL, k.name
        elif isinstance(k, ExposureLimit):
            e = as_vec(k.scores, assets, np.nan) @ w
            if k.min is not None:
                assert e >= k.min - TOL, k.name
            if k.max is not None:
                assert e <= k.max + TOL, k.name
        elif isinstance(k, LinearConstraint):
            coef = k.coefficients.reindex(columns=assets).fillna(0.0).to_numpy()
            v = coef @ w
            if k.lower is not None:
                assert (v >= np.asarray(k.lower) - TOL).all(), k.name
            if k.upper is not None:
                assert (v <= np.asarray(k.upper) + TOL).all(), k.name
    # the core's own verification agrees
    assert alloc.checks and all(v["ok"] for v in alloc.checks.values()), alloc.checks


def assert_consistent(alloc: Allocation, cov: pd.DataFrame, mu: pd.Series | None = None) -> None:
    w = alloc.weights.to_numpy()
    c = cov.loc[alloc.weights.index, alloc.weights.index].to_numpy()
    # compare variances: a square root amplifies rounding noise near a riskless portfolio
    assert alloc.volatility**2 == pytest.approx(max(w @ c @ w, 0.0), rel=1e-9, abs=1e-15)
    assert alloc.risk_contributions.sum() == pytest.approx(alloc.volatility, rel=1e-9, abs=1e-12)
    if mu is not None:
        assert alloc.expected_return == pytest.approx(float(mu @ alloc.weights), abs=1e-12)


def sharpe(alloc: Allocation, rf: float) -> float:
    return (alloc.expected_return - rf) / alloc.volatility


@pytest.fixture
def problem():
    mu, cov = random_problem(8, seed=11)
    uni = Universe(
        list(cov.index),
        tags={
            "A0": ["equity", "liquid"],
            "A1": ["equity", "liquid"],
            "A2": ["equity"],
            "A3": ["bonds", "liquid"],
            "A4": ["bonds", "liquid"],
            "A5": ["alternatives"],
            "A6": ["alternatives"],
            "A7": ["liquid"],
        },
    )
    return mu, cov, uni


def policy(mu: pd.Series) -> list:
    """A typical policy: caps, group limits, a tactical band and an exposure range."""
    ref = pd.Series(1 / len(mu), index=mu.index)
    beta = pd.Series(np.linspace(0.2, 1.4, len(mu)), index=mu.index)
    return [
        Bounds(upper=0.3, name="single-asset cap"),
        GroupLimit(tag="equity", max=0.45, name="equity cap"),
        GroupLimit(tag="liquid", min=0.5, name="liquidity floor"),
        DeviationBand(ref, width=0.15, name="tactical band"),
        DeviationBand(ref, width=0.1, tag="alternatives", name="alts band"),
        ExposureLimit(beta, min=0.6, max=0.9, name="beta range"),
    ]


# ----------------------------------------------------------------------------- the five functions


def test_min_variance_under_a_policy(problem) -> None:
    mu, cov, uni = problem
    cons = policy(mu)
    alloc = mv.min_variance(cov, mu=mu, constraints=cons, universe=uni)
    assert_holds(alloc, cons, cov, uni)
    assert_consistent(alloc, cov, mu)
    free = mv.min_variance(cov)
    assert alloc.volatility >= free.volatility - 1e-12
    assert mv.min_variance(cov).expected_return is None


def test_max_utility_under_a_policy(problem) -> None:
    mu, cov, uni = problem
    cons = policy(mu)
    alloc = mv.max_utility(mu, cov, risk_aversion=3.0, constraints=cons, universe=uni)
    assert_holds(alloc, cons, cov, uni)
    assert_consistent(alloc, cov, mu)
    w = alloc.weights.to_numpy()
    utility = mu.to_numpy() @ w - 1.5 * w @ cov.to_numpy() @ w
    assert -alloc.objective == pytest.approx(utility, abs=1e-9)


def test_max_utility_risk_aversion_moves_along_the_frontier(problem) -> None:
    mu, cov, _ = problem
    allocs = [mv.max_utility(mu, cov, risk_aversion=d) for d in (1.0, 3.0, 10.0, 100.0)]
    vols = [a.volatility for a in allocs]
    rets = [a.expected_return for a in allocs]
    assert vols == sorted(vols, reverse=True)
    assert rets == sorted(rets, reverse=True)


def test_efficient_return_under_a_policy(problem) -> None:
    mu, cov, uni = problem
    cons = policy(mu)
    low = mv.min_variance(cov, mu=mu, constraints=cons, universe=uni)
    top = mv.max_return(mu, cov, constraints=cons, universe=uni)
    target = 0.5 * (low.expected_return + top.expected_return)
    alloc = mv.efficient_return(mu, cov, target_return=target, constraints=cons, universe=uni)
    assert_holds(alloc, cons, cov, uni)
    assert_consistent(alloc, cov, mu)
    assert alloc.expected_return == pytest.approx(target, abs=1e-8)
    assert "target return" in {b["name"] for b in alloc.binding}
    assert alloc.volatility > low.volatility
    # efficient_risk at that volatility gives the same return back (the frontier is one curve)
    back = mv.efficient_risk(
        mu, cov, target_volatility=alloc.volatility, constraints=cons, universe=uni
    )
    assert back.expected_return == pytest.approx(target, abs=1e-6)
    assert_holds(back, cons, cov, uni)


def test_efficient_return_below_the_min_variance_return(problem) -> None:
    mu, cov, _ = problem
    low = mv.min_variance(cov, mu=mu)
    alloc = mv.efficient_return(mu, cov, target_return=low.expected_return - 0.01)
    np.testing.assert_allclose(alloc.weights, low.weights, atol=1e-6)


def test_efficient_risk_under_a_policy(problem) -> None:
    mu, cov, uni = problem
    cons = policy(mu)
    low = mv.min_variance(cov, mu=mu, constraints=cons, universe=uni)
    top = mv.max_return(mu, cov, constraints=cons, universe=uni)
    assert top.volatility > low.volatility
    target = 0.5 * (low.volatility + top.volatility)
    alloc = mv.efficient_risk(mu, cov, target_volatility=target, constraints=cons, universe=uni)
    assert_holds(alloc, cons, cov, uni)
    assert_consistent(alloc, cov, mu)
    assert alloc.volatility == pytest.approx(target, abs=1e-7)
    assert low.expected_return < alloc.expected_return < top.expected_return
    # above the highest-return portfolio's volatility the limit is slack
    loose = mv.efficient_risk(
        mu, cov, target_volatility=top.volatility * 1.5, constraints=cons, universe=uni
    )
    assert loose.expected_return == pytest.approx(top.expected_return, abs=1e-7)


def test_max_sharpe_under_a_policy(problem) -> None:
    mu, cov, uni = problem
    cons = policy(mu)
    rf = 0.02
    alloc = mv.max_sharpe(mu, cov, risk_free_rate=rf, constraints=cons, universe=uni)
    assert_holds(alloc, cons, cov, uni)
    assert_consistent(alloc, cov, mu)
    assert alloc.notes == ()
    frontier = mv.efficient_frontier(
        mu, cov, points=60, risk_free_rate=rf, constraints=cons, universe=uni
    )
    assert sharpe(alloc, rf) >= frontier.points["sharpe"].max() - 1e-9


def test_turnover_limit_binds(problem) -> None:
    mu, cov, _ = problem
    current = pd.Series(1 / 8, index=mu.index)
    cons = [TurnoverLimit(current, 0.2, name="turnover")]
    alloc = mv.max_utility(mu, cov, risk_aversion=2.0, constraints=cons)
    assert_holds(alloc, cons, cov)
    assert np.abs(alloc.weights - current).sum() == pytest.approx(0.2, abs=1e-7)
    assert "turnover" in {b["name"] for b in alloc.binding}


def test_tracking_error_limit_binds(problem) -> None:
    mu, cov, _ = problem
    bench = pd.Series(1 / 8, index=mu.index)
    cons = [TrackingErrorLimit(bench, 0.02, name="TE")]
    alloc = mv.max_utility(mu, cov, risk_aversion=2.0, constraints=cons)
    assert_holds(alloc, cons, cov)
    d = (alloc.weights - bench).to_numpy()
    assert math.sqrt(d @ cov.to_numpy() @ d) == pytest.approx(0.02, abs=1e-7)
    assert "TE" in {b["name"] for b in alloc.binding}


def test_leverage_limit_with_shorts(problem) -> None:
    mu, cov, _ = problem
    cons = [Bounds(lower=-0.3, upper=0.6, name="long-short bounds"), LeverageLimit(1.5)]
    alloc = mv.max_utility(mu, cov, risk_aversion=1.0, constraints=cons)
    assert_holds(alloc, cons, cov)
    assert (alloc.weights < -1e-6).any()
    assert np.abs(alloc.weights).sum() == pytest.approx(1.5, abs=1e-7)
    ms = mv.max_sharpe(mu, cov, constraints=cons)
    assert_holds(ms, cons, cov)
    top = mv.max_return(mu, cov, constraints=cons)
    assert np.abs(top.weights).sum() <= 1.5 + 1e-7
    target = 0.5 * (alloc.expected_return + top.expected_return)
    er = mv.efficient_return(mu, cov, target_return=target, constraints=cons)
    assert_holds(er, cons, cov)
    assert er.expected_return == pytest.approx(target, abs=1e-8)


def test_group_limits_by_assets_and_linear_constraint(problem) -> None:
    mu, cov, _ = problem
    cons = [
        GroupLimit(assets=["A0", "A1", "A2"], min=0.2, max=0.3, name="first three"),
        LinearConstraint({"A3": 1.0, "A4": -1.0}, lower=0.05, name="A3 over A4"),
    ]
    for alloc in (
        mv.min_variance(cov, constraints=cons),
        mv.max_utility(mu, cov, risk_aversion=5, constraints=cons),
        mv.max_sharpe(mu, cov, constraints=cons),
    ):
        assert_holds(alloc, cons, cov)


def test_a_budget_below_one(problem) -> None:
    mu, cov, _ = problem
    cons = [Budget(0.9, name="invested"), Bounds(upper=0.2)]
    for alloc in (
        mv.min_variance(cov, constraints=cons),
        mv.max_utility(mu, cov, risk_aversion=5, constraints=cons),
        mv.max_sharpe(mu, cov, constraints=cons),
        mv.efficient_risk(mu, cov, target_volatility=0.15, constraints=cons),
    ):
        assert alloc.weights.sum() == pytest.approx(0.9, abs=1e-8)
        assert_holds(alloc, cons, cov)


def test_mu_as_a_dict_and_unsorted(problem) -> None:
    mu, cov, _ = problem
    a = mv.max_utility(mu.to_dict(), cov, risk_aversion=4)
    b = mv.max_utility(mu.sample(frac=1.0, random_state=0), cov, risk_aversion=4)
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-9)


# ----------------------------------------------------------------------------- errors


def test_target_return_above_the_max(problem) -> None:
    mu, cov, uni = problem
    cons = policy(mu)
    top = mv.max_return(mu, cov, constraints=cons, universe=uni)
    low = mv.min_variance(cov, mu=mu, constraints=cons, universe=uni).expected_return
    with pytest.raises(InfeasibleError) as info:
        mv.efficient_return(mu, cov, target_return=0.5, constraints=cons, universe=uni)
    msg, err = str(info.value), info.value
    assert (
        rf"target_return 0.5 is outside the achievable range: at most {top.expected_return:.6g}"
        in msg
    )
    assert f"efficient range of target_return: {low:.6g} (least risk) to" in msg
    binding = list(dict.fromkeys(b["name"] for b in top.binding))
    assert binding and all(f"'{name}'" in msg for name in binding)
    assert "binding at the highest-return portfolio" in msg
    assert err.diagnosis[0]["name"] == "target_return"
    assert err.diagnosis[0]["relax_by"] == pytest.approx(0.5 - top.expected_return)
    assert err.diagnosis[0]["reachable"] == pytest.approx([low, top.expected_return])
    assert [d["name"] for d in err.diagnosis[1:]] == binding


def test_target_return_above_the_max_when_caught_by_arithmetic(problem) -> None:
    mu, cov, _ = problem
    top = float(mu.max())
    with pytest.raises(InfeasibleError, match=rf"target_return .* at most {top:.6g}") as info:
        mv.efficient_return(mu, cov, target_return=top + 0.01, constraints=[Bounds(upper=1.0)])
    # how much each binding constraint must give alone, checked by solving with it relaxed
    relax = {d["name"]: d["relax_by"] for d in info.value.diagnosis[1:]}
    assert relax["long-only"] > 0
    assert f"'long-only' by {relax['long-only']:.4g}" in str(info.value)
    lower = -relax["long-only"] * (1 + 1e-6)
    reached = mv.max_return(mu, cov, constraints=[Bounds(lower=lower, upper=1.0)])
    assert reached.expected_return >= top + 0.01 - 1e-7


def test_target_volatility_below_the_min(problem) -> None:
    mu, cov, uni = problem
    cons = policy(mu)
    floor = mv.min_variance(cov, constraints=cons, universe=uni)
    top = mv.max_return(mu, cov, constraints=cons, universe=uni)
    with pytest.raises(InfeasibleError) as info:
        mv.efficient_risk(mu, cov, target_volatility=0.01, constraints=cons, universe=uni)
    msg, err = str(info.value), info.value
    assert (
        f"target_volatility 0.01 is outside the achievable range: at least {floor.volatility:.6g}"
        in msg
    )
    assert f"to {top.volatility:.6g} (the highest-return portfolio's)" in msg
    assert "binding at the least-risk portfolio" in msg
    binding = list(dict.fromkeys(b["name"] for b in floor.binding))
    assert all(f"'{name}'" in msg for name in binding)
    assert err.diagnosis[0]["name"] == "target_volatility"
    assert err.diagnosis[0]["relax_by"] == pytest.approx(floor.volatility - 0.01)
    assert [d["name"] for d in err.diagnosis[1:]] == binding


def test_max_sharpe_when_nothing_beats_the_risk_free_rate(problem) -> None:
    mu, cov, _ = problem
    top = float(mu.max())
    with pytest.raises(InputError, match=rf"risk-free rate 0.2.*highest .* is {top:.6g}"):
        mv.max_sharpe(mu, cov, risk_free_rate=0.2)


def test_infeasible_policy_is_not_an_input_error(problem) -> None:
    mu, cov, uni = problem
    cons = [GroupLimit(tag="equity", min=0.6, name="equity floor"), Bounds(upper=0.15)]
    with pytest.raises(InfeasibleError, match="'equity floor'"):
        mv.efficient_return(mu, cov, target_return=0.05, constraints=cons, universe=uni)
    with pytest.raises(InfeasibleError, match="'equity floor'"):
        mv.max_sharpe(mu, cov, constraints=cons, universe=uni)


@pytest.mark.parametrize(
    "call, words",
    [
        (
            lambda mu, cov: mv.max_utility(mu, cov, risk_aversion=0),
            "risk_aversion must be positive",
        ),
        (lambda mu, cov: mv.max_utility(mu, cov, risk_aversion="high"), "must be a number"),
        (lambda mu, cov: mv.efficient_return(mu, cov, target_return=np.nan), "must be finite"),
        (lambda mu, cov: mv.efficient_risk(mu, cov, target_volatility=-0.1), "non-negative"),
        (lambda mu, cov: mv.max_sharpe(mu, cov, risk_free_rate=None), "risk_free_rate must be"),
        (
            lambda mu, cov: mv.efficient_frontier(mu, cov, points=1),
            "points must be an integer >= 2",
        ),
        (lambda mu, cov: mv.efficient_frontier(mu, cov, points=2.5), "points must be an integer"),
        (lambda mu, cov: mv.efficient_frontier(mu, cov, points=True), "points must be an integer"),
        (
            lambda mu, cov: mv.max_sharpe(mu.iloc[:-1], cov),
            "missing from expected returns .mu.: A7",
        ),
        (
            lambda mu, cov: mv.min_variance(cov, mu=mu.iloc[:-1]),
            "missing from expected returns .mu.: A7",
        ),
    ],
)
def test_bad_arguments(problem, call, words: str) -> None:
    mu, cov, _ = problem
    with pytest.raises(InputError, match=words):
        call(mu, cov)


# ----------------------------------------------------------------------------- max Sharpe exact


CONSTRAINT_SETS = {
    "long-only+group": lambda mu: [GroupLimit(tag="equity", max=0.3, name="equity cap")],
    "+tracking-error": lambda mu: [
        GroupLimit(tag="equity", max=0.3, name="equity cap"),
        TrackingErrorLimit(pd.Series(1 / len(mu), index=mu.index), 0.03, name="TE"),
    ],
    "+turnover": lambda mu: [
        GroupLimit(tag="equity", max=0.3, name="equity cap"),
        TurnoverLimit(pd.Series(1 / len(mu), index=mu.index), 0.4, name="turnover"),
    ],
}


@pytest.mark.parametrize("name", list(CONSTRAINT_SETS))
def test_max_sharpe_beats_a_brute_force_frontier_scan(problem, name: str) -> None:
    mu, cov, uni = problem
    rf = 0.02
    cons = CONSTRAINT_SETS[name](mu)
    alloc = mv.max_sharpe(mu, cov, risk_free_rate=rf, constraints=cons, universe=uni)
    assert_holds(alloc, cons, cov, uni)
    scan = mv.efficient_frontier(
        mu, cov, points=400, risk_free_rate=rf, constraints=cons, universe=uni
    )
    assert scan.failed.empty
    best = scan.points["sharpe"].max()
    assert sharpe(alloc, rf) >= best - 1e-6
    assert sharpe(alloc, rf) <= best + 1e-3  # and the scan is fine enough to come close
    # the golden-section fallback agrees
    top = mv.max_return(mu, cov, constraints=cons, universe=uni)
    cm = mv.compile("max_sharpe", cov, constraints=cons, universe=uni)
    searched = mv._sharpe_search(cm, mu.reindex(cm.assets).to_numpy(), rf, top)
    assert sharpe(searched, rf) == pytest.approx(sharpe(alloc, rf), abs=1e-6)
    assert searched.notes[-1].startswith("max Sharpe found by a golden-section search")
    assert_holds(searched, cons, cov, uni)


def test_max_sharpe_falls_back_to_the_search_when_the_solver_fails(problem, monkeypatch) -> None:
    mu, cov, uni = problem
    cons = [GroupLimit(tag="equity", max=0.3, name="equity cap")]
    exact = mv.max_sharpe(mu, cov, risk_free_rate=0.01, constraints=cons, universe=uni)
    original = Compiled.run

    def no_sharpe(self, objective, **kwargs):
        if objective.sharpe:
            raise SolverError("forced", [{"solver": "CLARABEL", "status": "error"}])
        return original(self, objective, **kwargs)

    monkeypatch.setattr(Compiled, "run", no_sharpe)
    alloc = mv.max_sharpe(mu, cov, risk_free_rate=0.01, constraints=cons, universe=uni)
    assert "golden-section" in alloc.notes[-1]
    assert sharpe(alloc, 0.01) == pytest.approx(sharpe(exact, 0.01), abs=1e-6)


def test_max_sharpe_without_a_positive_budget_uses_the_search(problem) -> None:
    mu, cov, _ = problem
    cons = [Budget(1.0, name="budget a"), Budget(1.0, name="budget b"), Bounds(upper=0.4)]
    alloc = mv.max_sharpe(mu, cov, constraints=cons)
    assert "golden-section" in alloc.notes[-1]
    exact = mv.max_sharpe(mu, cov, constraints=cons[1:])
    assert sharpe(alloc, 0.0) == pytest.approx(sharpe(exact, 0.0), abs=1e-6)


# ----------------------------------------------------------------------------- frontier


@pytest.fixture
def sweep_only(monkeypatch):
    """``efficient_frontier`` without the critical line: its point-by-point sweep."""

    def unsettled(*args, **kwargs):
        raise SolverError("forced: the critical line did not settle", [])

    monkeypatch.setattr(mv, "corners", unsettled)


def assert_monotone(front: Frontier) -> None:
    pts = front.points
    assert np.diff(pts["volatility"].to_numpy()).min() >= -1e-9
    assert np.diff(pts["expected_return"].to_numpy()).min() >= -1e-9


def test_frontier_shape_and_ends(problem) -> None:
    mu, cov, uni = problem
    cons = policy(mu)
    rf = 0.01
    front = mv.efficient_frontier(
        mu, cov, points=25, risk_free_rate=rf, constraints=cons, universe=uni
    )
    assert isinstance(front, Frontier)
    assert front.failed.empty
    assert len(front.points) == len(front.weights) == len(front.allocations) == 25
    assert list(front.points.columns) == [
        "target_return",
        "expected_return",
        "volatility",
        "sharpe",
    ]
    assert list(front.weights.columns) == list(mu.index)
    assert_monotone(front)
    low = mv.min_variance(cov, mu=mu, constraints=cons, universe=uni)
    top = mv.max_return(mu, cov, constraints=cons, universe=uni)
    first, last = front.points.iloc[0], front.points.iloc[-1]
    assert first["volatility"] == pytest.approx(low.volatility, abs=1e-9)
    assert first["volatility"] <= low.volatility * (1 + 1e-12)  # the exact corner
    # the variance is flat at its minimum: the solver's return is off by ~1e-9, the corner's not
    assert first["expected_return"] == pytest.approx(low.expected_return, abs=1e-7)
    assert last["expected_return"] == pytest.approx(top.expected_return, abs=1e-7)
    np.testing.assert_allclose(
        front.points["expected_return"], front.points["target_return"], atol=1e-7
    )
    np.testing.assert_allclose(
        front.points["sharpe"], (front.points["expected_return"] - rf) / front.points["volatility"]
    )
    for alloc, (_, row) in zip(front.allocations, front.weights.iterrows(), strict=True):
        np.testing.assert_allclose(alloc.weights.to_numpy(), row.to_numpy())
        assert_holds(alloc, cons, cov, uni)
        assert_consistent(alloc, cov, mu)
    json.dumps(front.to_dict())


def test_frontier_sweep_matches_the_solver_chain(problem, sweep_only) -> None:
    mu, cov, uni = problem
    cons = policy(mu)
    front = mv.efficient_frontier(mu, cov, points=8, constraints=cons, universe=uni)
    assert {a.solver for a in front.allocations[1:]} == {"PROXQP"}
    for i in (2, 5, 7):
        target = float(front.points["target_return"].iloc[i])
        ref = mv.efficient_return(mu, cov, target_return=target, constraints=cons, universe=uni)
        assert ref.solver == "CLARABEL"
        assert front.points["volatility"].iloc[i] == pytest.approx(ref.volatility, abs=1e-8)
        np.testing.assert_allclose(front.weights.iloc[i], ref.weights, atol=1e-5)


def prices_of(alloc: Allocation) -> dict:
    return {(b["label"], b["side"]): b["shadow_price"] for b in alloc.binding}


def test_frontier_sweep_shadow_prices_match_the_chain(problem, sweep_only) -> None:
    """The warm-started sweep reports the same shadow prices as a full solve, including an
    equality (the budget) and a one-asset row with a coefficient other than 1."""
    mu, cov, _ = problem
    best = mu.idxmax()
    cons = [
        LinearConstraint({best: 2.0}, upper=0.4, name="double cap"),
        GroupLimit(assets=["A0", "A2", "A3"], max=0.3, name="group cap"),
        Bounds(upper=0.35, name="caps"),
    ]
    front = mv.efficient_frontier(mu, cov, points=6, constraints=cons)
    checked = set()
    for i in range(1, 5):  # the last point is degenerate (its duals are not unique)
        alloc = front.allocations[i]
        assert alloc.solver == "PROXQP"
        target = float(front.points["target_return"].iloc[i])
        ref = mv.efficient_return(mu, cov, target_return=target, constraints=cons)
        got, want = prices_of(alloc), prices_of(ref)
        assert got.keys() == want.keys()
        for key, price in want.items():
            assert got[key] == pytest.approx(price, rel=1e-4, abs=1e-8), key
            checked.add(key[0])
    assert {"budget", "double cap", "target return"} <= checked


def test_frontier_reports_failed_points(problem, monkeypatch, sweep_only) -> None:
    mu, cov, _ = problem
    monkeypatch.setattr(mv, "qp_sweep", lambda *args, **kwargs: {})
    original = mv._solve_efficient_return
    seen = []

    def flaky(cm, *, target_return, **kwargs):
        seen.append(target_return)
        if len(seen) == 3:
            raise SolverError("forced failure", [{"solver": "CLARABEL", "status": "max_iter"}])
        return original(cm, target_return=target_return, **kwargs)

    monkeypatch.setattr(mv, "_solve_efficient_return", flaky)
    calls = []
    front = mv.efficient_frontier(mu, cov, points=6, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 6) for i in range(1, 7)]
    assert len(front.points) == 5
    assert list(front.failed.index) == [3]
    row = front.failed.loc[3]
    assert row["target_return"] == pytest.approx(seen[2])
    assert "SolverError" in row["reason"] and "forced failure" in row["reason"]
    assert 3 not in front.points.index and 3 not in front.weights.index
    assert list(front.points.index) == [0, 1, 2, 4, 5]
    json.dumps(front.to_dict())


def test_frontier_reports_infeasible_points(problem, monkeypatch, sweep_only) -> None:
    mu, cov, _ = problem
    monkeypatch.setattr(mv, "qp_sweep", lambda *args, **kwargs: {})
    original = mv._solve_efficient_return
    top = mv.max_return(mu, cov).expected_return

    def infeasible_at_the_top(cm, *, target_return, **kwargs):
        if target_return > top - 1e-9:
            raise InfeasibleError("'target return' cannot hold", [{"name": "target return"}])
        return original(cm, target_return=target_return, **kwargs)

    monkeypatch.setattr(mv, "_solve_efficient_return", infeasible_at_the_top)
    front = mv.efficient_frontier(mu, cov, points=5)
    assert list(front.failed.index) == [4]
    assert front.failed.loc[4, "reason"].startswith("InfeasibleError: 'target return'")


def test_frontier_point_failing_in_the_sweep_is_resolved_by_the_chain(
    problem, monkeypatch, sweep_only
) -> None:
    mu, cov, _ = problem
    calls = []

    class FlakyProxQP(ProxQP):
        def solve(self) -> Outcome:
            calls.append(1)
            if len(calls) == 2:
                return Outcome("PROXQP", "max_iter")
            return super().solve()

    import models._frontier as frontier_module

    monkeypatch.setattr(frontier_module, "ProxQP", FlakyProxQP)
    front = mv.efficient_frontier(mu, cov, points=6)
    assert front.failed.empty and len(front.points) == 6
    solvers = [a.solver for a in front.allocations]
    assert solvers[2] == "CLARABEL"
    assert solvers.count("PROXQP") == 4
    assert_monotone(front)


def test_frontier_progress_is_called_once_per_point(problem) -> None:
    mu, cov, _ = problem
    calls = []
    mv.efficient_frontier(mu, cov, points=7, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 7) for i in range(1, 8)]


def test_frontier_with_a_tracking_error_limit(problem) -> None:
    """A second-order cone: no ProxQP sweep, every point through the solver chain."""
    mu, cov, uni = problem
    cons = [
        TrackingErrorLimit(pd.Series(1 / 8, index=mu.index), 0.04, name="TE"),
        GroupLimit(tag="equity", max=0.4, name="equity cap"),
    ]
    front = mv.efficient_frontier(mu, cov, points=12, constraints=cons, universe=uni)
    assert front.failed.empty and len(front.points) == 12
    assert_monotone(front)
    assert "PROXQP" not in {a.solver for a in front.allocations}
    for alloc in front.allocations:
        assert_holds(alloc, cons, cov, uni)


def test_frontier_two_points(problem) -> None:
    mu, cov, _ = problem
    front = mv.efficient_frontier(mu, cov, points=2)
    assert len(front.points) == 2
    assert front.points["expected_return"].iloc[-1] == pytest.approx(mu.max(), abs=1e-8)


def test_frontier_when_one_asset_has_all_the_return() -> None:
    """Only one non-zero expected return: the target row is a single-variable bound."""
    _, cov = random_problem(5, seed=2)
    mu = pd.Series([0.0, 0.0, 0.0, 0.0, 0.08], index=cov.index)
    front = mv.efficient_frontier(mu, cov, points=6)
    assert front.failed.empty and len(front.points) == 6
    assert_monotone(front)
    assert front.weights["A4"].iloc[-1] == pytest.approx(1.0, abs=1e-7)


# ----------------------------------------------------------------------------- real data

SECTORS = {
    "tech": ["AAPL", "AMD", "MSFT"],
    "financials": ["BAC", "JPM"],
    "energy": ["CVX", "XOM", "RRC"],
    "health": ["JNJ", "LLY", "MRK", "PFE", "UNH"],
    "staples": ["KO", "PEP", "PG", "WMT"],
    "consumer": ["BBY", "HD"],
    "industrial": ["GE"],
}


@pytest.fixture(scope="module")
def sp500(sp500_prices):
    from sklearn.covariance import LedoitWolf

    rets = sp500_prices.loc["2015":"2022"].pct_change().dropna()
    cov = pd.DataFrame(
        LedoitWolf().fit(rets.to_numpy()).covariance_ * 252,
        index=rets.columns,
        columns=rets.columns,
    )
    mu = rets.mean() * 252
    return mu, cov


def test_sp500_frontier_is_monotone(sp500) -> None:
    mu, cov = sp500
    front = mv.efficient_frontier(mu, cov, points=40)
    assert front.failed.empty and len(front.points) == 40
    assert_monotone(front)
    assert front.points["volatility"].iloc[0] == pytest.approx(
        mv.min_variance(cov).volatility, rel=1e-7
    )
    assert front.points["expected_return"].iloc[-1] == pytest.approx(mu.max(), abs=1e-7)
    for alloc in front.allocations:
        assert_holds(alloc, [], cov)


def test_sp500_max_sharpe_under_sector_caps(sp500) -> None:
    mu, cov = sp500
    uni = Universe(list(cov.index), tags={a: [s] for s, names in SECTORS.items() for a in names})
    cons = [GroupLimit(tag=s, max=0.3, name=f"{s} cap") for s in SECTORS]
    cons.append(Bounds(upper=0.15, name="single-stock cap"))
    alloc = mv.max_sharpe(mu, cov, constraints=cons, universe=uni)
    assert_holds(alloc, cons, cov, uni)
    assert_consistent(alloc, cov, mu)
    for s, names in SECTORS.items():
        assert alloc.weights[names].sum() <= 0.3 + 1e-7, s
    assert alloc.weights.max() <= 0.15 + 1e-7
    equal = pd.Series(1 / len(mu), index=mu.index)
    equal_sharpe = float(mu @ equal) / math.sqrt(equal @ cov @ equal)
    assert alloc.sharpe > equal_sharpe
    binding = {b["name"] for b in alloc.binding}
    assert binding & ({f"{s} cap" for s in SECTORS} | {"single-stock cap"})
    front = mv.efficient_frontier(mu, cov, points=100, constraints=cons, universe=uni)
    assert alloc.sharpe >= front.points["sharpe"].max() - 1e-9


# ----------------------------------------------------------------------------- properties

KINDS = (
    "bounds",
    "group",
    "group_assets",
    "band",
    "tag_band",
    "exposure",
    "turnover",
    "te",
    "leverage",
    "linear",
)


def feasible_case(seed: int, n: int, shorts: bool, kinds: frozenset, *, singular: bool = True):
    """A random PSD covariance (singular ones too) and a constraint set built around a known
    feasible ``w0``."""
    rng = np.random.default_rng(seed)
    assets = pd.Index([f"X{i}" for i in range(n)])
    k = int(rng.integers(1, n + 3))
    a = rng.normal(size=(n, k))
    g = a @ a.T / k + (0.0 if singular and rng.random() < 0.3 else 0.05) * np.eye(n)
    d = np.sqrt(np.diag(g))
    vols = rng.uniform(0.05, 0.35, n)
    c = np.outer(vols, vols) * g / np.outer(d, d)
    cov = pd.DataFrame((c + c.T) / 2, index=assets, columns=assets)
    mu = pd.Series(rng.uniform(-0.02, 0.15, n), index=assets)
    w0 = rng.dirichlet(np.ones(n))
    if shorts:
        w0 = w0 + rng.normal(0, 0.2, n)
        w0 += (1 - w0.sum()) / n
    gap = lambda size=None: rng.uniform(0.002, 0.15, size)  # noqa: E731
    subset = rng.permutation(n)[: int(rng.integers(1, n))]
    tags = {assets[i]: ["grp"] for i in subset}
    uni = Universe(list(assets), tags=tags)
    inside = assets.isin(list(tags))
    cons: list = []
    if shorts or "bounds" in kinds:
        lower = w0 - gap(n)
        if not shorts:
            lower = np.maximum(lower, 0.0)
        upper = w0 + gap(n)
        if rng.random() < 0.5:
            cons.append(Bounds(lower=pd.Series(lower, assets), upper=pd.Series(upper, assets)))
        else:
            cons.append(Bounds(lower=float(lower.min()), upper=float(upper.max())))
    if "group" in kinds:
        g0 = float(w0[inside].sum())
        cons.append(GroupLimit(tag="grp", min=g0 - gap(), max=g0 + gap(), name="grp limit"))
    if "group_assets" in kinds:
        pick = list(assets[rng.permutation(n)[:2]])
        cons.append(GroupLimit(assets=pick, max=float(w0[assets.isin(pick)].sum() + gap())))
    if "band" in kinds:
        ref = pd.Series(w0 + rng.normal(0, 0.05, n), index=assets)
        width = pd.Series(np.abs(w0 - ref.to_numpy()) + gap(n), index=assets)
        cons.append(DeviationBand(ref, width, name="asset band"))
    if "tag_band" in kinds:
        ref = pd.Series(rng.dirichlet(np.ones(n)), index=assets)
        width = abs(float(w0[inside].sum() - ref[inside].sum())) + float(gap())
        cons.append(DeviationBand(ref, width, tag="grp", name="grp band"))
    if "exposure" in kinds:
        scores = pd.Series(rng.normal(1.0, 0.5, n), index=assets)
        e0 = float(scores @ w0)
        cons.append(ExposureLimit(scores, min=e0 - gap(), max=e0 + gap(), name="beta"))
    if "turnover" in kinds:
        cur = pd.Series(rng.dirichlet(np.ones(n)), index=assets)
        cons.append(TurnoverLimit(cur, float(np.abs(w0 - cur).sum() + gap()), name="turnover"))
    if "te" in kinds:
        bench = pd.Series(rng.dirichlet(np.ones(n)), index=assets)
        dd = w0 - bench.to_numpy()
        te0 = math.sqrt(max(dd @ c @ dd, 0.0))
        cons.append(TrackingErrorLimit(bench, te0 + float(rng.uniform(0.002, 0.05)), name="TE"))
    if "leverage" in kinds and shorts:
        cons.append(LeverageLimit(float(np.abs(w0).sum() + gap()), name="gross"))
    if "linear" in kinds:
        row = pd.Series(rng.normal(size=n), index=assets)
        cons.append(LinearConstraint(row, lower=float(row @ w0 - gap()), name="row"))
    return mu, cov, uni, cons, w0


CASES = dict(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 8),
    shorts=st.booleans(),
    kinds=st.frozensets(st.sampled_from(KINDS)),
)
PROPERTY = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@PROPERTY
@given(**CASES)
def test_property_min_variance(seed: int, n: int, shorts: bool, kinds: frozenset) -> None:
    mu, cov, uni, cons, w0 = feasible_case(seed, n, shorts, kinds)
    alloc = mv.min_variance(cov, mu=mu, constraints=cons, universe=uni)
    assert_holds(alloc, cons, cov, uni)
    assert_consistent(alloc, cov, mu)
    c = cov.to_numpy()
    w = alloc.weights.to_numpy()
    assert w @ c @ w <= w0 @ c @ w0 + 1e-9


@PROPERTY
@given(**CASES, risk_aversion=st.floats(0.5, 20.0))
def test_property_max_utility(
    seed: int, n: int, shorts: bool, kinds: frozenset, risk_aversion: float
) -> None:
    mu, cov, uni, cons, w0 = feasible_case(seed, n, shorts, kinds)
    alloc = mv.max_utility(mu, cov, risk_aversion=risk_aversion, constraints=cons, universe=uni)
    assert_holds(alloc, cons, cov, uni)
    assert_consistent(alloc, cov, mu)
    c, m = cov.to_numpy(), mu.to_numpy()

    def utility(w):
        return m @ w - risk_aversion / 2 * w @ c @ w

    assert utility(alloc.weights.to_numpy()) >= utility(w0) - 1e-9


@PROPERTY
@given(**CASES)
def test_property_max_sharpe(seed: int, n: int, shorts: bool, kinds: frozenset) -> None:
    # a singular covariance can hold a riskless portfolio with an infinite Sharpe ratio
    mu, cov, uni, cons, w0 = feasible_case(seed, n, shorts, kinds, singular=False)
    rf = 0.01
    c, m = cov.to_numpy(), mu.to_numpy()
    top = mv.max_return(mu, cov, constraints=cons, universe=uni).expected_return
    if top <= rf:
        with pytest.raises(InputError, match="no feasible portfolio earns more than the risk-free"):
            mv.max_sharpe(mu, cov, risk_free_rate=rf, constraints=cons, universe=uni)
        return
    alloc = mv.max_sharpe(mu, cov, risk_free_rate=rf, constraints=cons, universe=uni)
    assert_holds(alloc, cons, cov, uni)
    assert_consistent(alloc, cov, mu)
    assert alloc.expected_return > rf
    if m @ w0 > rf:
        assert sharpe(alloc, rf) >= (m @ w0 - rf) / math.sqrt(w0 @ c @ w0) - 1e-7


@PROPERTY
@given(**CASES)
def test_property_frontier(seed: int, n: int, shorts: bool, kinds: frozenset) -> None:
    mu, cov, uni, cons, _ = feasible_case(seed, n, shorts, kinds)
    front = mv.efficient_frontier(mu, cov, points=6, constraints=cons, universe=uni)
    assert front.failed.empty, front.failed.to_dict()
    assert_monotone(front)
    for alloc in front.allocations:
        assert_holds(alloc, cons, cov, uni)
        assert_consistent(alloc, cov, mu)
