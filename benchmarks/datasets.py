"""Seeded synthetic inputs shared by the benchmarks (cached: each is built once per process)."""

from __future__ import annotations

import itertools
import math
from functools import cache

import numpy as np
import pandas as pd
import sklearn.covariance

PERIODS = 252  # daily data, annualized figures
_CONTENT = itertools.count(1)


def fresh_scale() -> float:
    """``1 + k 1e-12`` for k = 1, 2, ... across the process: a factor never returned before."""
    return 1.0 + next(_CONTENT) * 1e-12


def new_content(frame: pd.DataFrame) -> pd.DataFrame:
    """A new copy of ``frame`` whose values differ from every earlier call's.

    ``frame x fresh_scale()``: thousands of ulps away from the original in every nonzero entry,
    so a cache keyed by content (issue 9) cannot recognise it, while symmetry, definiteness and
    the argmin of every scale-invariant problem (minimum variance, a return target, risk parity)
    are unchanged. Benchmarks that time the cold cost (validation and compilation) give trimtab
    one of these per run.
    """
    return frame * fresh_scale()


@cache
def daily_returns(t: int, n: int, seed: int, k: int = 5) -> pd.DataFrame:
    """Daily returns, T x n, from a k-factor model (a market and k - 1 styles).

    Annualized: market volatility about 17%, specific volatility 10% to 32%, drifts spread from
    -5% to +25% a year, so the covariance has a realistic spectrum (a few large eigenvalues over
    a bulk) and the means have spread.

    Parameters
    ----------
    t, n : int
        Business days and assets.
    seed : int
        Seed of the generator.
    k : int, default 5
        Factors.

    Returns
    -------
    DataFrame
        Business-day ``DatetimeIndex`` named "date"; columns ``EQ0000``, ``EQ0001``, ...
    """
    rng = np.random.default_rng(seed)
    factor_vol = 0.011 * 0.6 ** np.arange(k)
    factors = rng.standard_normal((t, k)) * factor_vol
    loadings = np.column_stack([rng.normal(1.0, 0.3, n), rng.normal(0.0, 0.6, (n, k - 1))])
    specific = rng.uniform(0.10, 0.32, n) / math.sqrt(PERIODS)
    drift = rng.uniform(-0.05, 0.25, n) / PERIODS
    values = drift + factors @ loadings.T + rng.standard_normal((t, n)) * specific
    index = pd.bdate_range("2015-01-02", periods=t, name="date")
    return pd.DataFrame(values, index=index, columns=[f"EQ{i:04d}" for i in range(n)])


@cache
def lw_inputs(t: int, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """``(returns, mu, cov)``: annualized mean and scikit-learn Ledoit-Wolf times 252."""
    rets = daily_returns(t, n, seed)
    lw, _ = sklearn.covariance.ledoit_wolf(rets.to_numpy())
    cov = pd.DataFrame(lw * PERIODS, index=rets.columns, columns=rets.columns)
    return rets, rets.mean() * PERIODS, cov


@cache
def factor_inputs(
    n: int, k: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """``(loadings n x k, factor_cov k x k, specific n, mu n)``, annualized.

    The factor covariance is the sample covariance of five years of simulated daily factor
    returns (a market, then styles of falling volatility, mixed so that the factors correlate);
    expected returns are factor premia plus noise.
    """
    rng = np.random.default_rng(seed)
    assets = pd.Index([f"S{i:04d}" for i in range(n)])
    names = pd.Index([f"F{j:02d}" for j in range(k)])
    vol = np.r_[0.16, 0.08 * 0.95 ** np.arange(k - 1)] / math.sqrt(PERIODS)
    mix = np.eye(k) + 0.15 * rng.standard_normal((k, k))
    daily = (rng.standard_normal((5 * PERIODS, k)) @ mix) * vol
    factor_cov = np.cov(daily, rowvar=False) * PERIODS
    loadings = rng.normal(0.0, 0.4, (n, k))
    loadings[:, 0] = rng.normal(1.0, 0.25, n)
    specific = rng.uniform(0.12, 0.40, n) ** 2
    premia = np.r_[0.05, rng.normal(0.0, 0.02, k - 1)]
    mu = 0.02 + loadings @ premia + rng.normal(0.0, 0.03, n)
    return (
        pd.DataFrame(loadings, index=assets, columns=names),
        pd.DataFrame((factor_cov + factor_cov.T) / 2, index=names, columns=names.copy()),
        pd.Series(specific, index=assets.copy()),
        pd.Series(mu, index=assets.copy()),
    )


@cache
def small_inputs(n: int, calls: int, seed: int) -> tuple[pd.DataFrame, list[pd.Series]]:
    """A policy-sized (n-asset) covariance and ``calls + 1`` expected-return vectors."""
    rng = np.random.default_rng(seed)
    names = [f"AC{i:02d}" for i in range(n)]
    load = rng.normal(0.0, 0.1, (n, 3))
    load[:, 0] = rng.uniform(0.05, 0.18, n)
    cov = load @ load.T + np.diag(rng.uniform(0.02, 0.08, n) ** 2)
    base = rng.uniform(0.02, 0.09, n)
    mus = [pd.Series(base + rng.normal(0.0, 0.01, n), index=names) for _ in range(calls + 1)]
    return pd.DataFrame(cov, index=names, columns=names), mus


def tiny_inputs(n: int = 12) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """A small problem of the same kind as :func:`lw_inputs`, for warm-up calls."""
    return lw_inputs(260, n, 99)
