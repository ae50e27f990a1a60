"""max_sharpe with unlimited shorts (issue 11, item 1) and the Sharpe ratio at the model's rate.

With the budget alone the tangency portfolio has the closed form
``w = C^-1 (mu - rf) / 1'C^-1 (mu - rf)`` when ``rf`` is below the least-risk
portfolio's expected return; at or above it the ratio has no maximum. The
Black-Litterman case is PyPortfolioOpt's ``test_bl_weights`` (tests/test_black_litterman.py):
``bl_weights`` is this closed form (rf = 0) on the posterior returns and the sample covariance.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_data import load

from models import mean_variance as mv
from models.black_litterman import View, black_litterman
from optimizer.allocation import clean_weights
from optimizer.constraints import Bounds
from optimizer.errors import InputError

SHORTS = [Bounds(lower=-math.inf)]


def problem(n: int, seed: int) -> tuple[pd.Series, pd.DataFrame]:
    """A random positive definite covariance (annualized) and expected returns."""
    rng = np.random.default_rng(seed)
    ids = [f"S{i}" for i in range(n)]
    a = rng.normal(size=(n, 2 * n))
    c = a @ a.T / (2 * n) * 0.04 + np.diag(rng.uniform(0.002, 0.02, n))
    mu = rng.uniform(0.03, 0.15, n)
    return pd.Series(mu, ids), pd.DataFrame(c, ids, ids)


def closed_form(mu: pd.Series, cov: pd.DataFrame, rf: float) -> tuple[np.ndarray, float]:
    """Tangency weights and the largest Sharpe ratio ``sqrt(e'C^-1 e)`` (e = mu - rf)."""
    e = mu.to_numpy() - rf
    x = np.linalg.solve(cov.to_numpy(), e)
    return x / x.sum(), float(math.sqrt(e @ x))


def gmv_return(mu: pd.Series, cov: pd.DataFrame) -> float:
    x = np.linalg.solve(cov.to_numpy(), np.ones(len(mu)))
    return float(mu.to_numpy() @ x / x.sum())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [3, 8, 20])
def test_unlimited_shorts_equal_the_closed_form(n: int, seed: int) -> None:
    mu, cov = problem(n, seed)
    rf = min(0.02, gmv_return(mu, cov) - 0.01)
    w, best = closed_form(mu, cov, rf)
    alloc = mv.max_sharpe(mu, cov, risk_free_rate=rf, constraints=SHORTS)
    np.testing.assert_allclose(alloc.weights.to_numpy(), w, atol=1e-6 * max(1.0, abs(w).max()))
    assert alloc.sharpe == pytest.approx(best, rel=1e-8)
    assert alloc.weights.sum() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_wide_bounds_give_the_textbook_answer_too(seed: int) -> None:
    mu, cov = problem(6, seed)
    w, _ = closed_form(mu, cov, 0.02)
    assert abs(w).max() < 100  # the bounds do not bind
    boxed = mv.max_sharpe(mu, cov, risk_free_rate=0.02, constraints=[Bounds(-100, 100)])
    free = mv.max_sharpe(mu, cov, risk_free_rate=0.02, constraints=SHORTS)
    np.testing.assert_allclose(boxed.weights.to_numpy(), w, atol=1e-6)
    np.testing.assert_allclose(free.weights.to_numpy(), boxed.weights.to_numpy(), atol=1e-6)


def test_compiled_problem_solves_with_shorts() -> None:
    mu, cov = problem(5, 11)
    cm = mv.compile("max_sharpe", cov, constraints=SHORTS)
    for rf in (0.0, 0.01, 0.02):
        w, best = closed_form(mu, cov, rf)
        alloc = cm.solve(mu=mu, risk_free_rate=rf)
        np.testing.assert_allclose(alloc.weights.to_numpy(), w, atol=1e-6)
        assert alloc.risk_free_rate == rf and alloc.sharpe == pytest.approx(best, rel=1e-8)


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 10),
    gap=st.floats(0.005, 0.05),
)
@settings(max_examples=30, deadline=None)
def test_property_closed_form(seed: int, n: int, gap: float) -> None:
    mu, cov = problem(n, seed)
    rf = gmv_return(mu, cov) - gap
    w, best = closed_form(mu, cov, rf)
    alloc = mv.max_sharpe(mu, cov, risk_free_rate=rf, constraints=SHORTS)
    scale = max(1.0, float(abs(w).max()))
    np.testing.assert_allclose(alloc.weights.to_numpy(), w, atol=1e-5 * scale)
    assert alloc.sharpe == pytest.approx(best, rel=1e-7)


@pytest.mark.parametrize("above", [0.0, 1e-4, 0.01, 0.2])
def test_no_maximum_when_rf_is_at_or_above_the_least_risk_return(above: float) -> None:
    mu, cov = problem(5, 0)
    low = gmv_return(mu, cov)
    rf = low + above
    with pytest.raises(InputError) as err:
        mv.max_sharpe(mu, cov, risk_free_rate=rf, constraints=SHORTS)
    msg = str(err.value)
    assert "no portfolio has the highest Sharpe ratio" in msg
    assert f"risk_free_rate {rf:.6g}" in msg and "least-risk portfolio" in msg
    assert f"lower risk_free_rate below {low:.6g}" in msg and "leverage limit" in msg


def test_rf_above_every_return_long_only_names_the_rate() -> None:
    mu, cov = problem(4, 3)
    with pytest.raises(InputError, match=r"earns more than the risk-free rate 0\.5.*lower risk"):
        mv.max_sharpe(mu, cov, risk_free_rate=0.5)


def test_unbudgeted_shorts_still_name_the_unbounded_return() -> None:
    from optimizer.constraints import Budget

    mu, cov = problem(4, 3)
    with pytest.raises(InputError, match="expected return is unbounded.*leverage limit"):
        mv.max_sharpe(mu, cov, constraints=[Budget(0.0), *SHORTS])


# ----------------------------------------------------------------------------- item 3


def test_sharpe_uses_the_models_risk_free_rate() -> None:
    mu, cov = problem(6, 2)
    alloc = mv.max_sharpe(mu, cov, risk_free_rate=0.02)
    assert alloc.risk_free_rate == 0.02
    assert alloc.sharpe == pytest.approx((alloc.expected_return - 0.02) / alloc.volatility)
    assert alloc.sharpe == alloc.sharpe_ratio(0.02) != alloc.sharpe_ratio(0.0)
    assert alloc.to_dict()["risk_free_rate"] == 0.02
    # the ratio maximized: no frontier point beats it at that rate
    front = mv.efficient_frontier(mu, cov, points=25, risk_free_rate=0.02)
    assert all(a.risk_free_rate == 0.02 for a in front.allocations)
    assert front.points["sharpe"].tolist() == [a.sharpe for a in front.allocations]
    assert alloc.sharpe >= front.points["sharpe"].max() - 1e-9
    # a model given no rate reports it at 0
    assert mv.min_variance(cov, mu=mu).risk_free_rate == 0.0


# ----------------------------------------------------------------------------- Black-Litterman


PYPFOPT_BL_WEIGHTS = {
    "GOOG": 0.0,
    "AAPL": 1.40675,
    "FB": 0.0,
    "BABA": 0.0,
    "AMZN": 0.0,
    "GE": 0.0,
    "AMD": 0.0,
    "WMT": 0.0,
    "BAC": 0.02651,
    "GM": 0.0,
    "T": 2.81117,
    "UAA": 0.0,
    "SHLD": 0.0,
    "XOM": 0.0,
    "RRC": 0.0,
    "BBY": -1.44667,
    "MA": 0.0,
    "PFE": 0.0,
    "JPM": 0.0,
    "SBUX": -1.79776,
}


def test_black_litterman_weights_match_pypfopt() -> None:
    """PyPortfolioOpt ``test_bl_weights``: absolute views, no prior, sample covariance."""
    prices = load("peer_suite/stock_prices.csv.gz")
    cov = prices.pct_change(fill_method=None).dropna(how="all").cov() * 252
    views = {"AAPL": 0.20, "BBY": -0.30, "BAC": 0, "SBUX": -0.2, "T": 0.131321}
    prior = pd.Series(0.0, index=cov.index)
    post_mu, _ = black_litterman(prior, cov, views=[View.absolute(a, q) for a, q in views.items()])
    alloc = mv.max_sharpe(post_mu, cov, constraints=SHORTS)
    w = clean_weights(alloc, tol=1e-4).round(5)
    assert w.to_dict() == pytest.approx(PYPFOPT_BL_WEIGHTS, abs=1e-5)
    assert abs(w.sum() - 1) < 1e-5
    assert all(q * w[a] >= 0 for a, q in views.items())
