"""The price search of a pooled rebalance (optimizer.rebalance.pooled_prices), and the way
pooled_rebalance goes on by ADMM when the search stops short."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pooled_cases import make_accounts

from optimizer.errors import InputError
from optimizer.rebalance import AccountBook, PooledLimits, pooled_prices, pooled_rebalance
from optimizer.rebalance.pooled import POOLED_TOL
from optimizer.rebalance.pooled_prices import PriceSearch, supply


def _search(kind, g0, slope, cross, cap, impact, steps=40):
    """Run the search on a known affine pooled trade ``G(y) = g0 + J y``; the last prices."""
    jac = np.diag(slope) + cross
    search = PriceSearch(cap, impact, kind, slope * 0.5)  # a poor guess of the slope
    y = np.zeros(len(g0))
    for _ in range(steps):
        g = g0 + jac @ y
        if np.all(np.abs(search.residual(y, g)) <= 1e-9 * np.maximum(np.abs(g0), 1.0)):
            break
        y = search.next(y, g)
    return y, g0 + jac @ y


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-5e6, 5e6), min_size=3, max_size=3),
    st.lists(st.floats(1e-3, 1.0), min_size=3, max_size=3),
    st.sampled_from(["gross", "net"]),
    st.floats(0.0, 0.2),
    st.sampled_from([0.0, 5e-7]),
)
def test_search_finds_the_prices_of_an_affine_pooled_trade(g0, frac, kind, mix, impact):
    g0 = np.abs(g0) if kind == "gross" else np.array(g0)
    slope = -np.array([2e9, 3e9, 1e9])
    cross = mix * np.array([[0, 1, 0.5], [1, 0, 0.5], [0.5, 0.5, 0]]) * 1e9
    cap = np.abs(g0) * np.array(frac)
    cap[2] = np.inf if impact else cap[2]  # an asset priced by its impact alone
    imp = np.full(3, impact)
    y, g = _search(kind, g0, slope, cross, cap, imp)
    # the pooled trade is what the desk supplies at the prices, within its cap
    np.testing.assert_allclose(g, supply(y, g, cap, 1.5 * imp), rtol=1e-6, atol=1e-3)
    assert np.all(np.abs(g) <= cap * (1 + 1e-6) + 1e-3)
    if kind == "gross":
        assert np.all(y >= 0)


def test_supply_is_the_inverse_marginal_impact_clipped_to_the_cap() -> None:
    cap, a = np.array([1e6, 1e6, np.inf, 1e6]), np.array([1e-6, 1e-6, 1e-6, 0.0])
    y = np.array([5e-4, -5e-3, 5e-3, 0.0])
    d = supply(y, np.array([0.0, 0.0, 0.0, 3e6]), cap, a)
    # (5e-4 / 1e-6)^2 = 2.5e5 under the cap; the second is past it; no cap; a free price
    np.testing.assert_allclose(d, [2.5e5, -1e6, 2.5e7, 1e6])


@pytest.fixture(scope="module")
def small():
    rb, ids, holdings, targets, flows = make_accounts(40, seed=3)
    return rb, AccountBook(rb, ids, holdings, targets, flows)


def test_a_search_that_stops_short_goes_on_by_admm(small, monkeypatch) -> None:
    rb, book = small
    cap = pd.Series({"A00": 2e5, "A09": 3e5})
    lim = PooledLimits(cap=cap, kind="gross", impact={"A05": 1e-6})
    want = pooled_rebalance([book], lim, tol=1e-6)
    assert want.method == "dual"
    monkeypatch.setattr(pooled_prices, "DUAL_MAX", 2)
    monkeypatch.setattr("optimizer.rebalance.pooled.DUAL_MAX", 2)
    out = pooled_rebalance([book], lim, tol=1e-6)
    assert out.method == "admm" and out.iterations > 2
    assert (out.residuals["rho"].iloc[:2] == 0).all() and (out.residuals["rho"].iloc[2:] > 0).all()
    for a in cap.index:
        assert out.pooled.loc[a, "gross"] <= cap[a] * (1 + POOLED_TOL)
    assert out.objective == pytest.approx(want.objective, rel=1e-4)


def test_max_iter_stops_the_search_with_a_warning(small) -> None:
    rb, book = small
    cap = pd.Series({"A00": 2e5, "A09": 3e5})
    with pytest.warns(UserWarning, match="max_iter=1"):
        out = pooled_rebalance([book], PooledLimits(cap=cap), max_iter=1)
    assert out.method == "dual" and out.iterations == 1
    for a in cap.index:
        assert out.pooled.loc[a, "gross"] <= cap[a] * (1 + POOLED_TOL)


def test_unknown_method_names_it(small) -> None:
    rb, book = small
    with pytest.raises(InputError, match=r"method must be 'dual' or 'admm', got 'newton'"):
        pooled_rebalance([book], PooledLimits(cap={"A00": 1e5}), method="newton")
