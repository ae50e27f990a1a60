"""Answers that do not depend on units (issue 10): the core scales every program internally.

``min_variance(c * cov)`` equals ``min_variance(cov)`` and ``max_sharpe(a * mu, a**2 * cov)``
equals ``max_sharpe(mu, cov)`` over many decades, while every reported figure (objective,
shadow prices, volatility, risk contributions) stays in the caller's units. A riskless
portfolio never gets a Sharpe ratio: max_sharpe refuses it, min_variance warns, and
``Allocation.sharpe`` is NaN below the volatility floor.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import mean_variance as mv
from models import risk_parity as rp
from optimizer.allocation import RISKLESS_RTOL, Allocation
from optimizer.constraints import Bounds, GroupLimit, TrackingErrorLimit
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance

W_TOL = 1e-6  # weights (unit-free)

#: Constraint sets: long-only and fully invested (the default), per-asset caps, a group cap.
CONSTRAINT_SETS = {
    "long-only budget": [],
    "bounds": [Bounds(upper=0.4, name="cap")],
    "group cap": [
        Bounds(upper=0.6, name="cap"),
        GroupLimit(assets=["A0", "A1"], max=0.3, name="pair cap"),
    ],
}


def problem(n: int, seed: int) -> tuple[pd.Series, pd.DataFrame]:
    """Annualized mu and a well-conditioned covariance (vols 5%-40%, mixed correlations)."""
    rng = np.random.default_rng(seed)
    ids = [f"A{i}" for i in range(n)]
    load = rng.normal(size=(n, 2))
    corr = load @ load.T + np.diag(rng.uniform(0.5, 2.0, n))
    d = 1 / np.sqrt(np.diag(corr))
    vol = rng.uniform(0.05, 0.4, n)
    cov = np.outer(vol, vol) * (corr * np.outer(d, d))
    mu = rng.uniform(0.01, 0.12, n)
    return pd.Series(mu, ids), pd.DataFrame((cov + cov.T) / 2, ids, ids)


def assert_holds(alloc: Allocation, constraints: list) -> None:
    """Every constraint of a set re-checked from its definition (weights are unit-free)."""
    w = alloc.weights
    assert w.sum() == pytest.approx(1.0, abs=W_TOL)
    assert w.min() >= -W_TOL
    for k in constraints:
        if isinstance(k, Bounds):
            assert w.max() <= k.upper + W_TOL, k.name
        elif isinstance(k, GroupLimit):
            assert w[list(k.assets)].sum() <= k.max + W_TOL, k.name
    assert all(v["ok"] for v in alloc.checks.values()), alloc.checks


def assert_reported_risk(alloc: Allocation, cov: pd.DataFrame) -> None:
    """The reported risk is the risk of the weights under the caller's covariance."""
    w = alloc.weights.to_numpy()
    var = float(w @ cov.loc[alloc.weights.index, alloc.weights.index].to_numpy() @ w)
    assert alloc.volatility**2 == pytest.approx(var, rel=1e-9)
    assert alloc.risk_contributions.sum() == pytest.approx(alloc.volatility, rel=1e-9)


decades = st.floats(min_value=-12.0, max_value=12.0)
sets = st.sampled_from(sorted(CONSTRAINT_SETS))


# ----------------------------------------------------------------------------- the two invariances


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 7), seed=st.integers(0, 10_000), k=decades, name=sets)
def test_min_variance_does_not_depend_on_the_units_of_cov(n, seed, k, name) -> None:
    _, cov = problem(n, seed)
    cons = CONSTRAINT_SETS[name]
    c = 10.0**k
    base = mv.min_variance(cov, constraints=cons)
    scaled = mv.min_variance(cov * c, constraints=cons)
    np.testing.assert_allclose(scaled.weights, base.weights, atol=W_TOL)
    assert_holds(scaled, cons)
    assert_reported_risk(scaled, cov * c)
    assert scaled.volatility == pytest.approx(base.volatility * math.sqrt(c), rel=1e-5)
    assert scaled.objective == pytest.approx(base.objective * c, rel=1e-5)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 7), seed=st.integers(0, 10_000), k=st.floats(-6.0, 6.0), name=sets)
def test_max_sharpe_does_not_depend_on_the_units_of_mu_and_cov(n, seed, k, name) -> None:
    mu, cov = problem(n, seed)
    cons = CONSTRAINT_SETS[name]
    a = 10.0**k
    base = mv.max_sharpe(mu, cov, constraints=cons)
    scaled = mv.max_sharpe(mu * a, cov * a**2, constraints=cons)
    np.testing.assert_allclose(scaled.weights, base.weights, atol=W_TOL)
    assert_holds(scaled, cons)
    assert_reported_risk(scaled, cov * a**2)
    assert scaled.expected_return == pytest.approx(float(mu @ scaled.weights) * a, rel=1e-9)
    assert scaled.sharpe == pytest.approx(base.sharpe, rel=1e-6)


@pytest.mark.parametrize("k", [-150, -100, 100, 150])
def test_the_documented_range_reaches_float64s_far_decades(k) -> None:
    mu, cov = problem(5, 3)
    base = mv.min_variance(cov)
    np.testing.assert_allclose(mv.min_variance(cov * 10.0**k).weights, base.weights, atol=W_TOL)
    a = 10.0 ** (k / 2)
    sharpe = mv.max_sharpe(mu, cov)
    np.testing.assert_allclose(
        mv.max_sharpe(mu * a, cov * a**2).weights, sharpe.weights, atol=W_TOL
    )


# ----------------------------------------------------------------------------- the other objectives

SCALES = [1e-12, 1e-6, 1e6, 1e12]


@pytest.mark.parametrize("c", SCALES)
def test_max_utility_return_targets_and_risk_limits_are_invariant(c) -> None:
    mu, cov = problem(6, 7)
    cons = CONSTRAINT_SETS["group cap"]
    bench = pd.Series(1 / 6, cov.index)
    te = [*cons, TrackingErrorLimit(bench, max=0.02, name="te")]
    te_scaled = [*cons, TrackingErrorLimit(bench, max=0.02 * math.sqrt(c), name="te")]
    cases = [
        (
            mv.max_utility(mu, cov, risk_aversion=3, constraints=cons),
            mv.max_utility(mu * c, cov * c, risk_aversion=3, constraints=cons),
        ),
        (mv.max_return(mu, cov, constraints=cons), mv.max_return(mu * c, cov, constraints=cons)),
        (
            mv.efficient_return(mu, cov, target_return=0.07, constraints=cons),
            mv.efficient_return(mu * c, cov * c, target_return=0.07 * c, constraints=cons),
        ),
        (
            mv.efficient_risk(mu, cov, target_volatility=0.12, constraints=cons),
            mv.efficient_risk(
                mu * c, cov * c, target_volatility=0.12 * math.sqrt(c), constraints=cons
            ),
        ),
        (
            mv.max_utility(mu, cov, risk_aversion=3, constraints=te),
            mv.max_utility(mu * c, cov * c, risk_aversion=3, constraints=te_scaled),
        ),
    ]
    for base, scaled in cases:
        np.testing.assert_allclose(scaled.weights, base.weights, atol=W_TOL)
        assert_holds(scaled, cons)
        assert all(v["ok"] for v in scaled.checks.values())


@pytest.mark.parametrize("c", SCALES)
def test_risk_parity_is_invariant_with_and_without_binding_constraints(c) -> None:
    _, cov = problem(6, 2)
    cons = [Bounds(upper=0.2, name="cap")]
    for constraints in ([], cons):
        base = rp.risk_parity(cov, constraints=constraints)
        scaled = rp.risk_parity(cov * c, constraints=constraints)
        np.testing.assert_allclose(scaled.weights, base.weights, atol=W_TOL)
        # the objective 1/2 y'Cy - b'log y at its minimizer moves by log(c)/2
        assert scaled.objective == pytest.approx(base.objective + 0.5 * math.log(c), abs=1e-6)
    assert "CLARABEL" in scaled.solver  # the cap binds: the convex core solved it


@pytest.mark.parametrize("c", SCALES)
def test_a_factor_covariance_is_invariant(c) -> None:
    rng = np.random.default_rng(4)
    ids, fac = [f"A{i}" for i in range(8)], ["F0", "F1"]
    loadings = pd.DataFrame(rng.normal(1.0, 0.4, (8, 2)), ids, fac)
    fcov = pd.DataFrame([[0.02, 0.004], [0.004, 0.01]], fac, fac)
    spec = pd.Series(rng.uniform(0.01, 0.04, 8), ids)
    base = mv.min_variance(FactorCovariance(loadings, fcov, spec), constraints=[Bounds(upper=0.3)])
    scaled = mv.min_variance(
        FactorCovariance(loadings, fcov * c, spec * c), constraints=[Bounds(upper=0.3)]
    )
    np.testing.assert_allclose(scaled.weights, base.weights, atol=W_TOL)
    assert scaled.objective == pytest.approx(base.objective * c, rel=1e-5)


# ----------------------------------------------------------------------------- the caller's units


@pytest.mark.parametrize("c", [1e-10, 1.0, 1e10])
def test_objective_and_shadow_prices_are_in_the_callers_units(c) -> None:
    _, cov = problem(5, 1)
    cap = Bounds(upper=0.3, name="cap")
    alloc = mv.min_variance(cov * c, constraints=[cap])
    w = alloc.weights.to_numpy()
    assert alloc.objective == pytest.approx(float(w @ (cov * c).to_numpy() @ w), rel=1e-6)
    caps = [b for b in alloc.binding if b["name"] == "cap"]
    assert caps, alloc.binding
    # the shadow price predicts the change of the variance when the cap moves (finite difference)
    eps = 1e-4
    looser = mv.min_variance(cov * c, constraints=[Bounds(upper=0.3 + eps, name="cap")])
    price = sum(b["shadow_price"] for b in caps)
    assert (alloc.objective - looser.objective) / eps == pytest.approx(price, rel=1e-2)


@pytest.mark.parametrize("c", [1e-10, 1.0, 1e10])
def test_a_volatility_limits_shadow_price_is_in_variance_per_volatility(c) -> None:
    _, cov = problem(5, 1)
    bench = pd.Series(0.0, cov.index)
    bench[cov.index[int(np.argmax(np.diag(cov)))]] = 1.0  # the most volatile asset

    def solve(limit: float) -> Allocation:
        te = TrackingErrorLimit(bench, max=limit * math.sqrt(c), name="te")
        return mv.min_variance(cov * c, constraints=[te])

    alloc, eps = solve(0.1), 1e-4
    (te,) = [b for b in alloc.binding if b["name"] == "te"]
    slope = (alloc.objective - solve(0.1 + eps).objective) / (eps * math.sqrt(c))
    assert te["shadow_price"] == pytest.approx(slope, rel=1e-2)


@pytest.mark.parametrize("c", [1e-10, 1e10])
def test_utility_return_and_frontier_figures_scale_with_the_data(c) -> None:
    mu, cov = problem(5, 5)
    cons = [Bounds(upper=0.5, name="cap")]
    base = mv.max_utility(mu, cov, risk_aversion=2, constraints=cons)
    scaled = mv.max_utility(mu * c, cov * c, risk_aversion=2, constraints=cons)
    assert scaled.objective == pytest.approx(base.objective * c, rel=1e-5)
    for b0, b1 in zip(base.binding, scaled.binding, strict=True):
        assert b1["shadow_price"] == pytest.approx(b0["shadow_price"] * c, rel=1e-4, abs=1e-9 * c)
    top0, top1 = mv.max_return(mu, cov), mv.max_return(mu * c, cov)
    assert top1.objective == pytest.approx(top0.objective * c, rel=1e-9)
    assert top1.expected_return == pytest.approx(top0.expected_return * c, rel=1e-9)
    # the target return's shadow price: variance per unit of return, both scaled by c
    r0 = mv.efficient_return(mu, cov, target_return=0.08)
    r1 = mv.efficient_return(mu * c, cov * c, target_return=0.08 * c)
    p0 = next(b["shadow_price"] for b in r0.binding if b["name"] == "target return")
    p1 = next(b["shadow_price"] for b in r1.binding if b["name"] == "target return")
    assert p1 == pytest.approx(p0, rel=1e-4)
    assert r1.checks["target return"]["ok"]
    # every frontier point (the warm-started sweep included) reports its variance as objective
    front = mv.efficient_frontier(mu * c, cov * c, points=6, constraints=cons)
    assert front.failed.empty
    for a in front.allocations:
        assert a.objective == pytest.approx(a.volatility**2, rel=1e-5)
    base_front = mv.efficient_frontier(mu, cov, points=6, constraints=cons)
    np.testing.assert_allclose(front.weights, base_front.weights, atol=W_TOL)
    sharpe = base_front.points["sharpe"] * math.sqrt(c)  # (c mu) / sqrt(c w'Cw)
    np.testing.assert_allclose(front.points["sharpe"], sharpe, rtol=1e-5)


# ----------------------------------------------------------------------------- riskless portfolios


def rank_deficient(n: int = 12, obs: int = 4, seed: int = 0) -> pd.DataFrame:
    """An annualized sample covariance of ``obs`` daily returns: rank ``obs - 1`` (demeaned)."""
    r = np.random.default_rng(seed).normal(0.0005, 0.01, (obs, n)) * math.sqrt(252)
    ids = [f"S{i}" for i in range(n)]
    return pd.DataFrame(np.cov(r, rowvar=False), ids, ids)


def test_max_sharpe_refuses_a_zero_covariance() -> None:
    mu, cov = problem(4, 0)
    with pytest.raises(InputError) as info:
        mv.max_sharpe(mu, cov * 0)
    msg = str(info.value)
    assert msg.startswith("max_sharpe: the Sharpe ratio is unbounded")
    assert "cov is zero (every one of the 4 assets has zero variance)" in msg
    assert "shrinkage estimator" in msg and "more history" in msg


def test_max_sharpe_refuses_a_riskless_optimum_naming_the_rank() -> None:
    cov = rank_deficient()
    mu = pd.Series(np.linspace(0.02, 0.1, 12), cov.index)
    with pytest.raises(InputError) as info:
        mv.max_sharpe(mu, cov)
    msg = str(info.value)
    assert "is riskless under cov" in msg and "more than the risk-free rate 0" in msg
    assert "cov is singular (rank 3 of 12)" in msg
    assert "covariance.ledoit_wolf" in msg and "more history" in msg


def test_max_sharpe_names_the_zero_variance_assets() -> None:
    mu, cov = problem(4, 0)
    cov.loc["A2", :] = 0.0
    cov.loc[:, "A2"] = 0.0
    with pytest.raises(InputError, match=r"rank 3 of 4; zero variance for: A2\)"):
        mv.max_sharpe(mu, cov)
    # earning no more than the risk-free rate, the riskless asset is no arbitrage
    alloc = mv.max_sharpe(mu.drop("A2"), cov.drop(index="A2", columns="A2"))
    assert not alloc.riskless and math.isfinite(alloc.sharpe)


def test_min_variance_warns_on_a_riskless_answer_and_keeps_it() -> None:
    cov = rank_deficient()
    with pytest.warns(UserWarning) as caught:
        alloc = mv.min_variance(cov, mu=pd.Series(0.05, cov.index))
    msg = str(caught[0].message)
    assert msg.startswith("min_variance: the least-risk portfolio (of ")
    assert "cov is singular (rank 3 of 12)" in msg and "shrinkage estimator" in msg
    assert alloc.riskless and alloc.volatility <= alloc.volatility_floor
    assert math.isnan(alloc.sharpe) and math.isnan(alloc.sharpe_ratio(0.01))
    assert alloc.to_dict()["volatility_floor"] == pytest.approx(alloc.volatility_floor)


def test_a_full_rank_covariance_gives_no_warning_and_a_finite_sharpe() -> None:
    mu, cov = problem(5, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alloc = mv.min_variance(cov, mu=mu)
    assert not alloc.riskless
    assert alloc.sharpe == pytest.approx(alloc.expected_return / alloc.volatility)
    assert alloc.sharpe_ratio(0.02) == pytest.approx(
        (alloc.expected_return - 0.02) / alloc.volatility
    )
    root_mean_var = math.sqrt(float(np.trace(cov.to_numpy())) / 5)
    assert alloc.volatility_floor == pytest.approx(RISKLESS_RTOL * root_mean_var)


def test_the_frontier_gives_no_sharpe_to_a_riskless_point() -> None:
    cov = rank_deficient()
    mu = pd.Series(np.linspace(0.02, 0.1, 12), cov.index)
    with pytest.warns(UserWarning, match="rank 3 of 12"):
        front = mv.efficient_frontier(mu, cov, points=3)
    sharpe = front.points["sharpe"]
    assert math.isnan(sharpe.iloc[0])
    assert sharpe.dropna().abs().max() < 1e4
