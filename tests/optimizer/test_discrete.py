"""Whole lots, exactly: optimizer.rebalance.discrete against brute force, and its fallback."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rebalance_cases import ASSETS, COV, HOLDINGS, PRICES, TARGET

from optimizer.errors import InputError
from optimizer.rebalance import rebalance
from optimizer.rebalance.discrete import LotProblem, discrete_allocation, solve_lots


def _random_cov(rng, n):
    vol = rng.uniform(0.1, 0.4, n)
    g = rng.normal(size=(n, n + 2))
    c = g @ g.T
    d = np.sqrt(np.diag(c))
    return np.outer(vol, vol) * c / np.outer(d, d)


def _brute(p: LotProblem, box: int = 60) -> float:
    """Least F over every feasible lot vector in the (clipped) box."""
    ranges = [range(int(max(p.zlo[i], -box)), int(min(p.zhi[i], box)) + 1) for i in range(len(p.a))]
    best = np.inf
    for z in itertools.product(*ranges):
        z = np.array(z, dtype=float)
        if p.feasible(z):
            best = min(best, p.value(z))
    return best


# ---------------------------------------------------------------------------- from cash


def test_the_issue_case_spends_the_cash() -> None:
    ids = pd.Index(["A", "B"])
    cov = pd.DataFrame([[0.04, 0.01], [0.01, 0.09]], ids, ids)
    r = discrete_allocation(
        pd.Series([0.5, 0.5], ids), pd.Series([1000.0, 10.0], ids), 1500, cov=cov
    )
    assert r.shares.to_dict() == {"A": 1.0, "B": 50.0}
    assert r.leftover == 0.0 and r.exact
    assert r.weights.sum() == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 4), lot=st.sampled_from([1, 5]))
def test_discrete_allocation_equals_brute_force(seed, n, lot) -> None:
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"S{i}" for i in range(n)])
    cov = pd.DataFrame(_random_cov(rng, n), ids, ids)
    w = pd.Series(rng.dirichlet(np.ones(n)), ids)
    prices = pd.Series(rng.uniform(5, 300, n).round(2), ids)
    cash = float(rng.uniform(200, 3000))
    r = discrete_allocation(w, prices, cash, cov=cov, lot_size=lot)
    unit = prices.to_numpy() * lot
    assert r.exact
    assert 0 <= r.leftover <= cash
    assert r.leftover < unit.min()  # no further lot fits
    tops = [int(cash // u) for u in unit]
    best = np.inf
    for z in itertools.product(*[range(t + 1) for t in tops]):
        z = np.array(z, dtype=float)
        if unit.min() > cash - unit @ z >= -1e-9:  # within the cash, no further lot fits
            d = z * unit / cash - w.to_numpy()
            best = min(best, float(d @ cov.to_numpy() @ d))
    assert r.tracking_error**2 == pytest.approx(best, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "culprit"),
    [
        ({"weights": pd.Series([0.6, -0.1, 0.5], list("ABC"))}, "B"),
        ({"weights": pd.Series([0.6, 0.3, 0.3], list("ABC"))}, "scale them"),
        (
            {"prices": pd.Series([10.0, 20.0], list("AB"))},
            "prices missing for assets of weights: C",
        ),
        ({"prices": pd.Series([10.0, 0.0, 5.0], list("ABC"))}, "prices must be positive: B"),
        ({"cash": 0.0}, "cash"),
        (
            {"cov": pd.DataFrame(np.eye(2), list("AB"), list("AB"))},
            "cov is missing assets of weights: C",
        ),
        ({"lot_size": {"Z": 10}}, "Z"),
    ],
)
def test_discrete_allocation_names_bad_input(kwargs, culprit) -> None:
    args = {
        "weights": pd.Series([0.5, 0.3, 0.2], list("ABC")),
        "prices": pd.Series([10.0, 20.0, 5.0], list("ABC")),
        "cash": 1000.0,
    }
    args.update(kwargs)
    weights, prices, cash = args.pop("weights"), args.pop("prices"), args.pop("cash")
    with pytest.raises(InputError, match=culprit):
        discrete_allocation(weights, prices, cash, **args)


# ---------------------------------------------------------------------------- the rebalance form


def _problem(seed: int, n: int, *, cap: bool, costs: bool) -> tuple[LotProblem, np.ndarray]:
    rng = np.random.default_rng(seed)
    v1 = 10_000.0
    unit = rng.uniform(200, 1500, n).round(2)
    h = rng.dirichlet(np.ones(n)) * v1 * 0.97
    tau = rng.dirichlet(np.ones(n))
    held = np.floor(h / unit)
    p = LotProblem(
        Q=100.0 * _random_cov(rng, n),
        a=h / v1 - tau,
        unit=unit,
        v1=v1,
        zlo=np.maximum(-held, -15.0),
        zhi=np.full(n, 15.0),
        net=v1 - h.sum(),
        cap=rng.uniform(0.05, 0.4) * v1 if cap else np.inf,
        buy=np.full(n, 0.001) if costs else None,
        sell=np.full(n, 0.002) if costs else None,
        ticket=np.full(n, 25.0 / v1) if costs else None,
    )
    return p, np.zeros(n)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 3), cap=st.booleans(), costs=st.booleans())
def test_solve_lots_equals_brute_force(seed, n, cap, costs) -> None:
    p, start = _problem(seed, n, cap=cap, costs=costs)
    sol = solve_lots(p, start)
    assert p.feasible(sol.z)
    if sol.exact:
        assert sol.objective == pytest.approx(_brute(p, 15), rel=1e-9, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 8), cap=st.booleans())
def test_the_fallback_leaves_less_than_the_cheapest_lot_that_fits(seed, n, cap) -> None:
    p, start = _problem(seed, n, cap=cap, costs=False)
    sol = solve_lots(p, start, exact=False)
    assert not sol.exact and p.feasible(sol.z)
    assert not p.fits(sol.z).any()  # no further lot fits in the cash left
    left = p.net - p.unit @ sol.z
    assert left >= -1e-9


def test_the_issue_rebalance_cases() -> None:
    """The issue's cases: $1,500 into A at 1,000 and B at 10 buys 1 A + 50 B (not 75 B and
    $750 idle); the adviser case in 100-share lots reaches the brute force's tracking error."""
    ids = pd.Index(["A", "B"])
    cov = pd.DataFrame([[0.04, 0.01], [0.01, 0.09]], ids, ids)
    p = rebalance(
        pd.Series(0.0, index=ids),
        pd.Series([0.5, 0.5], ids),
        cov=cov,
        prices=pd.Series([1000.0, 10.0], ids),
        lot_size=1,
        cash_flow=1500,
    )
    assert p.cash_residual == 0.0
    assert p.trades["quantity"].to_dict() == {"A": 1.0, "B": 50.0}
    # the adviser case in 100-share lots: the brute force's tracking error
    plan = rebalance(HOLDINGS, TARGET, cov=COV, prices=PRICES, lot_size=100)
    unit = (100 * PRICES).to_numpy()
    v1 = float(HOLDINGS.sum())
    grid = np.arange(-12, 13, dtype=float)
    z = np.stack(np.meshgrid(*[grid] * 4, indexing="ij"), -1).reshape(-1, 4)
    idle = -(z @ unit)  # no cash flow: the cash the trades leave idle
    ok = (idle >= -1e-9) & (idle < unit.min()) & (HOLDINGS.to_numpy() + z * unit >= 0).all(axis=1)
    d = (HOLDINGS.to_numpy() + z[ok] * unit) / v1 - TARGET.to_numpy()
    best = float(np.sqrt(np.einsum("ij,jk,ik->i", d, COV.to_numpy(), d).min()))
    assert plan.tracking_error_after == pytest.approx(best, rel=1e-9)
    assert plan.tracking_error_after < 0.0023
    assert list(plan.trades.index) and set(ASSETS) >= set(plan.trades.index)
