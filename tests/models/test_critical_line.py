"""The exact frontier by the critical line (models/_critical_line.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models._critical_line import critical_line
from models.mean_variance import efficient_frontier, efficient_return
from optimizer.constraints import Bounds, Budget, GroupLimit, LeverageLimit, LinearConstraint
from optimizer.errors import InfeasibleError, InputError
from optimizer.riskmodel import FactorCovariance

KKT_TOL = 1e-10


def problem(seed: int, n: int = 15, k: int = 3):
    """A random factor-ish PD covariance and spread-out expected returns."""
    rng = np.random.default_rng(seed)
    ids = [f"A{i:02d}" for i in range(n)]
    g = rng.normal(0.0, 0.12, (n, k))
    cov = g @ g.T + np.diag(rng.uniform(0.01, 0.06, n))
    mu = pd.Series(rng.uniform(-0.02, 0.16, n), index=ids)
    return mu, pd.DataFrame(cov, index=ids, columns=ids)


def policy(mu: pd.Series) -> list:
    """Long-only, bounds, a group cap (budget by default)."""
    ids = list(mu.index)
    return [Bounds(0.0, 0.3), GroupLimit(assets=ids[: len(ids) // 3], max=0.25, name="group cap")]


def assert_same_weights(w: np.ndarray, ref: np.ndarray, c: np.ndarray) -> None:
    """Weights to 1e-6, or a gap the reference's own excess variance accounts for.

    ``w`` is the exact optimum, so for a feasible ``ref``: ``ref'C ref - w'Cw >= d'Cd`` with
    ``d = ref - w`` (the gradient term is non-negative at the optimum). A reference solved to
    an interior-point tolerance can be 1e-6 away in weights; the certificate shows the gap is
    the reference's, not ours (slack 1e-7 of the variance: the reference may break a binding
    constraint by up to the 1e-7 verification tolerance, which buys it variance in proportion to
    that constraint's multiplier; seen: a group cap exceeded by 1.5e-8).
    """
    d = ref - w
    if np.abs(d).max() <= 1e-6:
        return
    excess = ref @ c @ ref - w @ c @ w
    assert d @ c @ d <= excess * (1 + 1e-3) + 1e-7 * (w @ c @ w), (d, excess)


def assert_kkt(cl) -> None:
    res = cl.kkt_residuals()
    assert (res.to_numpy() < KKT_TOL).all(), res


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_efficient_return_at_random_targets(seed: int) -> None:
    mu, cov = problem(seed)
    cons = policy(mu)
    cl = critical_line(mu, cov, constraints=cons)
    assert_kkt(cl)
    low, top = cl.return_range
    targets = np.random.default_rng(seed).uniform(low, top, 10)
    ours = cl.interpolate(targets)
    for t in targets:
        ref = efficient_return(mu, cov, target_return=float(t), constraints=cons)
        alloc = cl.allocation(float(t))
        assert alloc.status == "optimal" and all(c["ok"] for c in alloc.checks.values())
        assert alloc.volatility <= ref.volatility * (1 + 1e-6)
        assert_same_weights(ours.loc[t].to_numpy(), ref.weights.to_numpy(), cov.to_numpy())
        assert alloc.expected_return >= t - 1e-12


def test_corners_are_exact_and_stationary_by_hand() -> None:
    mu, cov = problem(7, n=10)
    cons = policy(mu)
    cl = critical_line(mu, cov, constraints=cons)
    assert len(cl.corners) >= 3
    r = cl.corners["expected_return"].to_numpy()
    assert (np.diff(r) >= -1e-14).all() and (np.diff(cl.corners["volatility"]) >= -1e-14).all()
    # stationarity recomputed here from the two rows (budget, group) and the bounds
    a = np.vstack([np.ones(10), np.r_[np.ones(3), np.zeros(7)]])
    for k in cl.corners.index:
        w = cl.weights.loc[k].to_numpy()
        lam = cl.corners.loc[k, "risk_tolerance"]
        nu = cl.row_multipliers.loc[k, ["budget", "group cap"]].to_numpy()
        pi = cl.bound_multipliers.loc[k].to_numpy()
        grad = cov.to_numpy() @ w - lam * mu.to_numpy() + a.T @ nu + pi
        assert np.abs(grad).max() < 1e-12
        assert (pi[w < 0.3 - 1e-12] <= 1e-14).all() and (pi[w > 1e-12] >= -1e-14).all()
        assert w.min() >= -1e-15 and w.max() <= 0.3 + 1e-15 and abs(w.sum() - 1) < 1e-13
    assert_kkt(cl)


def test_frontier_is_no_worse_than_efficient_frontier() -> None:
    mu, cov = problem(11, n=30, k=4)
    cons = policy(mu)
    cl = critical_line(mu, cov, constraints=cons)
    ours = cl.frontier(points=12, risk_free_rate=0.01)
    ref = efficient_frontier(mu, cov, points=12, constraints=cons)
    assert ours.failed.empty and len(ours.points) == 12
    # the least-variance return is the solver's to ~1e-8; the frontier's ends are ours exactly
    np.testing.assert_allclose(ours.points["target_return"], ref.points["target_return"], rtol=1e-6)
    assert all(a.solver == "CRITICAL_LINE" for a in ours.allocations)
    for t, vol in zip(ref.points["target_return"], ref.points["volatility"], strict=True):
        assert cl.allocation(t).volatility <= vol * (1 + 1e-6)


def test_factor_covariance_equals_dense() -> None:
    rng = np.random.default_rng(5)
    n, k = 40, 4
    ids = [f"S{i}" for i in range(n)]
    names = [f"F{j}" for j in range(k)]
    loadings = pd.DataFrame(rng.normal(0.0, 0.5, (n, k)), index=ids, columns=names)
    fcov = pd.DataFrame(np.diag([0.03, 0.01, 0.008, 0.005]), index=names, columns=names)
    fc = FactorCovariance(loadings, fcov, pd.Series(rng.uniform(0.01, 0.09, n), index=ids))
    mu = pd.Series(rng.uniform(0.0, 0.2, n), index=ids)
    cons = [Bounds(0.0, 0.15)]
    factor, dense = (
        critical_line(mu, fc, constraints=cons),
        critical_line(mu, fc.cov, constraints=cons),
    )
    assert len(factor.corners) == len(dense.corners)
    np.testing.assert_allclose(factor.weights, dense.weights, atol=1e-12)
    assert_kkt(factor)


def test_general_linear_constraint_and_shorts() -> None:
    mu, cov = problem(9, n=8)
    ids = list(mu.index)
    row = LinearConstraint(pd.Series([1.0, -1.0], index=ids[:2]), lower=-0.05, upper=0.05)
    cons = [Bounds(-0.2, 0.5), row]
    cl = critical_line(mu, cov, constraints=cons)
    assert_kkt(cl)
    t = float(np.mean(cl.return_range))
    ref = efficient_return(mu, cov, target_return=t, constraints=cons)
    assert cl.allocation(t).volatility <= ref.volatility * (1 + 1e-6)


def test_equal_expected_returns_give_one_corner() -> None:
    _, cov = problem(4, n=6)
    mu = pd.Series(0.05, index=cov.index)
    cl = critical_line(mu, cov)
    assert len(cl.corners) == 1
    low, top = cl.return_range
    assert low == pytest.approx(0.05) and top == pytest.approx(0.05)
    w = cl.interpolate([0.0, 0.05]).to_numpy()
    np.testing.assert_allclose(w[0], w[1])
    with pytest.raises(InfeasibleError, match=r"target_return 0\.06 .*0\.05"):
        cl.interpolate([0.06])


def test_tied_expected_returns_at_the_top() -> None:
    mu, cov = problem(6, n=6)
    mu.iloc[:2] = mu.max() + 0.02  # two assets share the top return
    cl = critical_line(mu, cov, constraints=[Bounds(0.0, 0.4)])
    assert_kkt(cl)
    top = cl.return_range[1]
    ref = efficient_return(mu, cov, target_return=top, constraints=[Bounds(0.0, 0.4)])
    assert cl.allocation(top).volatility <= ref.volatility * (1 + 1e-6)


def test_unbounded_return_is_an_input_error() -> None:
    mu, cov = problem(8, n=5)
    with pytest.raises(InputError, match="expected return is unbounded.*add finite bounds"):
        critical_line(mu, cov, constraints=[Bounds(-math.inf, math.inf)])


def test_non_linear_and_soft_constraints_are_refused() -> None:
    mu, cov = problem(8, n=5)
    cons = [Bounds(-1.0, 1.0), LeverageLimit(1.5)]
    with pytest.raises(InputError, match="'leverage limit' is not linear.*efficient_frontier"):
        critical_line(mu, cov, constraints=cons)
    soft = GroupLimit(assets=list(mu.index[:2]), max=0.3, name="cap", priority=1)
    with pytest.raises(InputError, match="'cap' is soft.*drop its priority"):
        critical_line(mu, cov, constraints=[soft])


def test_singular_covariance_names_assets() -> None:
    ids = ["A", "B", "C"]
    cov = pd.DataFrame(np.ones((3, 3)) * 0.04, index=ids, columns=ids)
    mu = pd.Series([0.05, 0.06, 0.07], index=ids)
    with pytest.raises(InputError, match=r"singular on the assets.*A.*shrinkage"):
        critical_line(mu, cov, constraints=[Budget(1.0), Bounds(-1.0, 1.0)])


def test_bad_targets() -> None:
    mu, cov = problem(3, n=5)
    cl = critical_line(mu, cov)
    with pytest.raises(InputError, match="targets must be finite"):
        cl.interpolate([float("nan")])
    with pytest.raises(InputError, match="points must be an integer >= 2"):
        cl.frontier(points=1)
    low = cl.return_range[0]
    np.testing.assert_allclose(cl.interpolate([low - 1.0]).to_numpy(), cl.weights.iloc[[0]])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 7),
    cap=st.floats(0.35, 1.0),
    short=st.booleans(),
    ties=st.booleans(),
    group=st.one_of(st.none(), st.floats(0.2, 0.9)),
)
def test_random_small_problems(seed, n, cap, short, ties, group) -> None:
    mu, cov = problem(seed, n=n, k=2)
    if ties:  # rounded to whole percent: equal expected returns are common
        mu = mu.round(2)
    cons = [Bounds(-0.3 if short else 0.0, max(cap, 1.0 / n + 0.05))]
    if group is not None and n >= 3:
        cons.append(GroupLimit(assets=list(mu.index[:2]), max=group))
    try:
        cl = critical_line(mu, cov, constraints=cons)
    except InfeasibleError as exc:  # the conflict is named, as min_variance names it
        assert "group" in str(exc) and "relax" in str(exc)
        return
    assert_kkt(cl)
    low, top = cl.return_range
    for t in (low, low + 0.37 * (top - low), top):
        ref = efficient_return(mu, cov, target_return=t, constraints=cons)
        ours = cl.allocation(t)
        assert ours.volatility <= ref.volatility * (1 + 1e-6)
        assert_same_weights(ours.weights.to_numpy(), ref.weights.to_numpy(), cov.to_numpy())


# ----------------------------------------------------------------------------- efficient_frontier


def prices_of(alloc) -> dict:
    return {(b["label"], b["side"]): b["shadow_price"] for b in alloc.binding}


def test_efficient_frontier_is_the_critical_line() -> None:
    mu, cov = problem(11, n=30, k=4)
    cons = policy(mu)
    front = efficient_frontier(mu, cov, points=12, risk_free_rate=0.01, constraints=cons)
    assert front.failed.empty and len(front.points) == 12
    assert {a.solver for a in front.allocations} == {"CRITICAL_LINE"}
    assert all(a.status == "optimal" for a in front.allocations)
    cl = critical_line(mu, cov, constraints=cons)
    np.testing.assert_allclose(
        front.weights, cl.interpolate(front.points["target_return"]), atol=1e-9
    )
    for alloc, t in zip(front.allocations, front.points["target_return"], strict=True):
        assert all(c["ok"] for c in alloc.checks.values())
        assert alloc.risk_free_rate == 0.01
        ref = efficient_return(mu, cov, target_return=float(t), constraints=cons)
        assert alloc.volatility <= ref.volatility * (1 + 1e-6)


def test_efficient_frontier_shadow_prices_are_exact() -> None:
    """Multipliers interpolated like the weights: the reported shadow prices make the gradient
    of ``w'Cw`` vanish exactly (budget, group row, bounds shared by two pieces, the target), and
    agree with the chain's duals to the chain's accuracy."""
    mu, cov = problem(12, n=10)
    ids = list(mu.index)
    group = np.r_[np.ones(3), np.zeros(7)]
    cons = [Bounds(0.0, 0.35, name="caps"), GroupLimit(assets=ids[:3], max=0.3, name="group cap")]
    front = efficient_frontier(mu, cov, points=7, constraints=cons)
    checked = set()
    for i in range(1, 6):  # the ends are degenerate (their multipliers are not unique)
        alloc = front.allocations[i]
        assert alloc.solver == "CRITICAL_LINE"
        grad = 2.0 * cov.to_numpy() @ alloc.weights.to_numpy()
        for b in alloc.binding:
            sign = -1.0 if b["side"] == "min" else 1.0
            if b["label"] == "target return":
                row = mu.to_numpy()
            elif b["label"] == "budget":
                row = np.ones(10)
            elif b["label"] == "group cap":
                row = group
            else:
                row = (np.array(ids) == b["label"].split("[")[1][:-1]).astype(float)
            grad += sign * b["shadow_price"] * row
            checked.add(b["label"].split(" [")[0])
        assert np.abs(grad).max() < 1e-12
        t = float(front.points["target_return"].iloc[i])
        want = prices_of(efficient_return(mu, cov, target_return=t, constraints=cons))
        got = prices_of(alloc)
        # a weight the chain leaves at 1.6e-6 is 0 here (binding): compare the common sides
        for key in got.keys() & want.keys():
            assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-8), key
    assert {"budget", "target return", "long-only", "caps"} <= checked


def test_efficient_frontier_long_only_has_exact_zeros() -> None:
    mu, cov = problem(13, n=25)
    front = efficient_frontier(mu, cov, points=20)
    w = front.weights.to_numpy()
    assert (w >= 0.0).all() and (w == 0.0).any()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)


def test_efficient_frontier_factor_covariance_no_failed_point() -> None:
    rng = np.random.default_rng(14)
    n, k = 60, 5
    ids = [f"S{i}" for i in range(n)]
    names = [f"F{j}" for j in range(k)]
    loadings = pd.DataFrame(rng.normal(0.0, 0.5, (n, k)), index=ids, columns=names)
    fcov = pd.DataFrame(np.diag(rng.uniform(0.005, 0.03, k)), index=names, columns=names)
    fc = FactorCovariance(loadings, fcov, pd.Series(rng.uniform(0.01, 0.09, n), index=ids))
    mu = pd.Series(rng.uniform(0.0, 0.2, n), index=ids)
    front = efficient_frontier(mu, fc, points=15, constraints=[Bounds(0.0, 0.1)])
    assert front.failed.empty and {a.solver for a in front.allocations} == {"CRITICAL_LINE"}
    dense = efficient_frontier(mu, fc.cov, points=15, constraints=[Bounds(0.0, 0.1)])
    np.testing.assert_allclose(front.weights, dense.weights, atol=1e-10)


def test_soft_constraint_falls_back_to_the_sweep() -> None:
    mu, cov = problem(15, n=12)
    soft = GroupLimit(assets=list(mu.index[:3]), max=0.2, name="soft cap", priority=1)
    front = efficient_frontier(mu, cov, points=6, constraints=[soft])
    assert front.failed.empty and len(front.points) == 6
    assert "CRITICAL_LINE" not in {a.solver for a in front.allocations}


def test_non_linear_constraint_falls_back_to_the_sweep() -> None:
    mu, cov = problem(16, n=8)
    cons = [Bounds(-0.5, 1.0), LeverageLimit(1.6)]
    front = efficient_frontier(mu, cov, points=6, constraints=cons)
    assert front.failed.empty and len(front.points) == 6
    assert "CRITICAL_LINE" not in {a.solver for a in front.allocations}
    for alloc in front.allocations:
        assert alloc.weights.abs().sum() <= 1.6 + 1e-7


def test_unsettled_critical_line_falls_back_silently(monkeypatch) -> None:
    import models.mean_variance as mv
    from optimizer.errors import SolverError

    mu, cov = problem(17, n=10)
    cons = policy(mu)
    exact = efficient_frontier(mu, cov, points=6, constraints=cons)

    def unsettled(*args, **kwargs):
        raise SolverError("the critical line could not settle", [])

    monkeypatch.setattr(mv, "corners", unsettled)
    front = efficient_frontier(mu, cov, points=6, constraints=cons)
    assert front.failed.empty and "CRITICAL_LINE" not in {a.solver for a in front.allocations}
    np.testing.assert_allclose(front.points["volatility"], exact.points["volatility"], rtol=1e-6)


def test_singular_covariance_falls_back_to_the_sweep() -> None:
    ids = ["A", "B", "C"]
    cov = pd.DataFrame(np.ones((3, 3)) * 0.04, index=ids, columns=ids)
    mu = pd.Series([0.05, 0.06, 0.07], index=ids)
    front = efficient_frontier(mu, cov, points=4, constraints=[Budget(1.0), Bounds(-1.0, 1.0)])
    assert front.failed.empty and "CRITICAL_LINE" not in {a.solver for a in front.allocations}


def test_a_point_that_does_not_verify_is_solved_by_the_chain(monkeypatch) -> None:
    from dataclasses import replace

    from models._frontier import CriticalLine

    mu, cov = problem(18, n=10)
    original = CriticalLine.allocations

    def one_inaccurate(self, targets):
        out = original(self, targets)
        out[2] = replace(out[2], status="inaccurate")
        return out

    monkeypatch.setattr(CriticalLine, "allocations", one_inaccurate)
    front = efficient_frontier(mu, cov, points=5)
    solvers = [a.solver for a in front.allocations]
    assert front.failed.empty and solvers[2] == "CLARABEL"
    assert solvers.count("CRITICAL_LINE") == 4


def test_frontier_failed_point_is_reported(monkeypatch) -> None:
    """``CriticalLine.frontier`` reports a point that does not verify in ``failed``."""
    from dataclasses import replace

    from models._frontier import CriticalLine

    mu, cov = problem(19, n=6)
    cl = critical_line(mu, cov)
    original = CriticalLine.allocations

    def one_inaccurate(self, targets):
        out = original(self, targets)
        bad = {**out[1].checks, "budget": {**out[1].checks["budget"], "ok": False}}
        out[1] = replace(out[1], status="inaccurate", checks=bad)
        return out

    monkeypatch.setattr(CriticalLine, "allocations", one_inaccurate)
    front = cl.frontier(points=4)
    assert list(front.failed.index) == [1] and list(front.points.index) == [0, 2, 3]
    assert front.failed.loc[1, "reason"].startswith("verification failed: {'budget'")
