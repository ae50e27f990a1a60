"""Expected-return estimators, all annualized.

Historical estimators (:func:`historical_mean`, :func:`ewma_mean`,
:func:`shrunk_mean`) take periodic returns (a DataFrame, dates by asset ids,
with a ``DatetimeIndex`` unless ``periods_per_year=`` is given) and return a
Series of annualized expected returns (decimals) labelled by asset.
:func:`equilibrium` reverses a market portfolio into the returns that make it
optimal, the prior of Black-Litterman; :func:`implied_risk_aversion` gives the
market's risk aversion for it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Literal, overload

import numpy as np
import pandas as pd

from models import _ragged
from models._common import resolve_periods, validate_returns
from models.returns import check_option
from optimizer import validation
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance

__all__ = [
    "equilibrium",
    "ewma_mean",
    "historical_mean",
    "implied_risk_aversion",
    "shrunk_mean",
]

METHODS = ("arithmetic", "geometric")
SHRINK_TARGETS = ("grand_mean", "min_variance")


def _series(values: np.ndarray, labels: pd.Index) -> pd.Series:
    return pd.Series(values, index=labels.copy(), dtype=float)


# ----------------------------------------------------------------------------------------------
# historical estimators
# ----------------------------------------------------------------------------------------------


def historical_mean(
    returns: pd.DataFrame,
    *,
    method: str = "arithmetic",
    periods_per_year: float | None = None,
    overlap: str = "full",
) -> pd.Series:
    """Annualized historical mean return of each asset.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic simple returns (decimals), dates by asset ids, no NaN.
    method : {"arithmetic", "geometric"}, keyword-only
        ``"arithmetic"``: ``P * mean(r)``. ``"geometric"`` (compound annual
        growth rate): ``prod(1 + r) ** (P / T) - 1``.
    periods_per_year : float, optional, keyword-only
        ``P``; inferred from the dates when None (daily 252, weekly 52,
        monthly 12).
    overlap : {"full", "pairwise", "stambaugh"}, keyword-only
        ``"full"`` (default): NaN refused. ``"pairwise"``: histories of
        different lengths (NaN where an asset has no return, e.g. from
        ``returns.from_prices(missing="keep")``): each asset's mean over its
        own returns (``T_i`` of them, at least 2; ``T_i`` replaces ``T`` in
        the geometric formula). ``"stambaugh"`` (arithmetic only): nested
        start dates, the maximum-likelihood means of Stambaugh (1997), the
        short histories' means corrected by their regression on the long
        ones (:func:`models._ragged.stambaugh`). Without NaN both equal
        ``"full"``.

    Returns
    -------
    pandas.Series, shape (n,)
        Annualized expected returns (decimals), labelled by asset.

    Raises
    ------
    InputError
        Bad returns (not a DataFrame, NaN, duplicate ids, fewer than 2
        rows, a return of -100% or less naming the asset and date, ...:
        :func:`models._common.validate_returns`), an unknown ``method`` or
        ``overlap``, periods that cannot be inferred, or with ``"pairwise"``
        an asset with fewer than 2 returns (named); with ``"stambaugh"``,
        ``method="geometric"`` or a pattern it cannot take (see
        :func:`models.covariance.sample`).

    Notes
    -----
    The arithmetic mean is the unbiased estimate of the one-period expected
    return that mean-variance optimization needs, annualized by simple
    scaling (no compounding), the same convention as the annualized
    covariance. The geometric mean is a compound annual growth rate and
    describes realized growth. Per period, the geometric mean
    ``(1 + g) ** (1 / P) - 1`` is never above the arithmetic ``a / P``
    (lower by about half the periodic variance); the annual figures are
    not directly comparable since only ``g`` compounds.
    """
    check_option("method", method, METHODS)
    what = "expected_returns.historical_mean"
    how = _ragged.use_ragged(overlap, returns, what, _ragged.OVERLAPS_ML)
    if how == "stambaugh":
        if method != "arithmetic":
            raise InputError(
                f"{what}(overlap='stambaugh') gives the maximum-likelihood arithmetic mean; "
                f"method={method!r} is not available with it: use method='arithmetic', or "
                "overlap='pairwise' for each asset's own geometric mean"
            )
        mu, _, _, _, periods = _ragged.stambaugh_inputs(returns, periods_per_year, what)
        return _series(mu * periods, returns.columns)
    if how == "pairwise":
        x, valid, _ = _ragged.ragged_values(returns, what, min_obs=2)
        periods = resolve_periods(returns, periods_per_year)
        count = valid.sum(axis=0)
        if method == "arithmetic":
            return _series(np.nansum(x, axis=0) / count * periods, returns.columns)
        log_growth = np.nansum(np.log1p(x), axis=0) * (periods / count)
        return _series(np.expm1(log_growth), returns.columns)
    values = validate_returns(returns)
    periods = resolve_periods(returns, periods_per_year)
    if method == "arithmetic":
        return _series(values.mean(axis=0) * periods, returns.columns)
    log_growth = np.log1p(values).sum(axis=0) * (periods / len(values))
    return _series(np.expm1(log_growth), returns.columns)


def ewma_mean(
    returns: pd.DataFrame,
    *,
    halflife: float,
    periods_per_year: float | None = None,
    overlap: str = "full",
) -> pd.Series:
    """Annualized exponentially weighted mean return of each asset.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), dates by asset ids, no NaN, oldest first.
    halflife : float, keyword-only
        Half-life in periods (rows), positive: a return ``halflife`` periods
        older than the latest one gets half its weight.
    periods_per_year : float, optional, keyword-only
        Inferred from the dates when None.
    overlap : {"full", "pairwise"}, keyword-only
        ``"full"`` (default): NaN refused. ``"pairwise"``: histories of
        different lengths; the weights are set by each date's age in the
        whole table and renormalised over each asset's own returns (at least
        2). Without NaN it equals ``"full"``.

    Returns
    -------
    pandas.Series, shape (n,)
        ``P * sum_t w_t r_t`` (decimals, annualized) with
        ``w_t proportional to 0.5 ** ((T - 1 - t) / halflife)`` and
        ``sum_t w_t = 1``; the most recent row has the largest weight.

    Raises
    ------
    InputError
        Bad returns, a non-positive or non-finite ``halflife``, periods that
        cannot be inferred, an unknown ``overlap``; with ``"pairwise"`` an
        asset with fewer than 2 returns (named).

    Notes
    -----
    As ``halflife`` grows the weights flatten and the estimate tends to the
    arithmetic :func:`historical_mean`.
    """
    h = validation.finite_number(halflife, what="halflife", positive=True)
    if _ragged.use_pairwise(overlap, returns, "expected_returns.ewma_mean"):
        x, valid, rows = _ragged.ragged_values(returns, "expected_returns.ewma_mean", min_obs=2)
        periods = resolve_periods(returns, periods_per_year)
        weights = np.exp2(-(len(returns) - 1 - rows.astype(float)) / h)
        return _series(_ragged.own_weighted_mean(x, valid, weights) * periods, returns.columns)
    values = validate_returns(returns)
    periods = resolve_periods(returns, periods_per_year)
    age = np.arange(len(values) - 1, -1, -1, dtype=float)
    weights = np.exp2(-age / h)
    weights /= weights.sum()
    return _series(weights @ values * periods, returns.columns)


@overload
def shrunk_mean(
    returns: pd.DataFrame,
    *,
    target: str = ...,
    periods_per_year: float | None = ...,
    return_intensity: Literal[False] = ...,
) -> pd.Series: ...


@overload
def shrunk_mean(
    returns: pd.DataFrame,
    *,
    target: str = ...,
    periods_per_year: float | None = ...,
    return_intensity: Literal[True],
) -> tuple[pd.Series, float]: ...


def shrunk_mean(
    returns: pd.DataFrame,
    *,
    target: str = "grand_mean",
    periods_per_year: float | None = None,
    return_intensity: bool = False,
) -> pd.Series | tuple[pd.Series, float]:
    r"""Annualized sample means shrunk towards a common mean (James-Stein / Bayes-Stein).

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), dates by asset ids, no NaN; more rows
        than assets plus 2 (``T > n + 2``).
    target : {"grand_mean", "min_variance"}, keyword-only
        The common mean ``m`` shrunk towards:

        * ``"grand_mean"``: the cross-sectional average of the sample means
          (positive-part James-Stein estimator);
        * ``"min_variance"``: the sample mean of the global minimum-variance
          portfolio, ``1' S^{-1} y / 1' S^{-1} 1`` (Jorion's Bayes-Stein
          estimator; Jorion calls this target the grand mean too).
    periods_per_year : float, optional, keyword-only
        Inferred from the dates when None.
    return_intensity : bool, keyword-only
        Also return the shrinkage intensity.

    Returns
    -------
    mu : pandas.Series, shape (n,)
        ``P * ((1 - w) y + w m)``, annualized (decimals), labelled by asset.
    intensity : float
        ``w`` in [0, 1], only when ``return_intensity`` is True.

    Raises
    ------
    InputError
        Bad returns, an unknown ``target``, ``T <= n + 2``, or a singular
        sample covariance (collinear or constant assets, named when
        constant).

    Notes
    -----
    With ``y`` the vector of sample means (per period), ``S`` the unbiased
    sample covariance and ``Sigma = S (T - 1) / (T - n - 2)`` (whose
    inverse is unbiased for the inverse covariance), let

    .. math:: d = T (y - m 1)' \Sigma^{-1} (y - m 1),

    the squared distance of the means from the target in units of their
    sampling noise. The intensity is

    * ``"grand_mean"``: :math:`w = \min(1, \max(0, (n - 3) / d))`, the
      positive-part James-Stein rule for a target estimated from the data
      (one degree of freedom used up by ``m``; for ``n <= 3`` it is 0 and the
      sample means are returned) (James and Stein 1961; Efron and Morris
      1973);
    * ``"min_variance"``: :math:`w = (n + 2) / (n + 2 + d)` (Jorion 1986),
      in (0, 1] by construction.

    Both shrink more when the means are close together relative to their
    noise (short samples, volatile assets) and less when they are far apart.
    When ``d = 0`` the means already equal the target and the estimate is
    the same whatever ``w``; the intensity reported is then the limit, 1
    (0 for James-Stein with ``n <= 3``).

    References
    ----------
    .. [1] James, W. and Stein, C. (1961). "Estimation with quadratic loss."
       Proc. Fourth Berkeley Symp. Math. Statist. Prob. 1, 361-379.
    .. [2] Efron, B. and Morris, C. (1973). "Stein's estimation rule and its
       competitors: an empirical Bayes approach." JASA 68(341), 117-130.
    .. [3] Jorion, P. (1986). "Bayes-Stein estimation for portfolio
       analysis." Journal of Financial and Quantitative Analysis 21(3),
       279-292.
    """
    check_option("target", target, SHRINK_TARGETS)
    values = validate_returns(returns)
    periods = resolve_periods(returns, periods_per_year)
    t, n = values.shape
    if t <= n + 2:
        raise InputError(
            f"shrunk_mean needs more observations than assets + 2: got T={t} rows for n={n} "
            "assets; use historical_mean, or more data"
        )
    y = values.mean(axis=0)
    s = np.cov(values, rowvar=False, ddof=1).reshape(n, n)
    constant = returns.columns[np.ptp(values, axis=0) == 0]
    if len(constant):
        raise InputError(
            "shrunk_mean needs a non-singular covariance; these assets have constant returns: "
            + ", ".join(map(str, constant))
        )
    sigma = s * (t - 1) / (t - n - 2)
    # Scale to a correlation-like matrix before factorizing: better conditioned.
    sd = np.sqrt(np.diag(sigma))
    corr = sigma / np.outer(sd, sd)
    eig = np.linalg.eigvalsh(corr)
    if eig[0] <= 1e-12 * max(1.0, eig[-1]):
        raise InputError(
            "shrunk_mean needs a non-singular covariance; the sample covariance of the returns "
            f"is singular (smallest correlation eigenvalue {eig[0]:.3g}): some assets are "
            "collinear"
        )

    def inv_times(x: np.ndarray) -> np.ndarray:
        return np.linalg.solve(corr, x / sd) / sd

    ones = np.ones(n)
    if target == "grand_mean":
        m = float(y.mean())
    else:
        a = inv_times(ones)
        m = float(a @ y / (a @ ones))
    dev = y - m
    d = float(t * dev @ inv_times(dev))
    if target == "grand_mean":
        if d <= 0:
            w = 1.0 if n > 3 else 0.0
        else:
            w = min(1.0, max(0.0, (n - 3) / d))
    else:
        w = (n + 2) / (n + 2 + d)
    mu = _series(((1.0 - w) * y + w * m) * periods, returns.columns)
    if return_intensity:
        return mu, float(w)
    return mu


# ----------------------------------------------------------------------------------------------
# equilibrium (reverse optimization)
# ----------------------------------------------------------------------------------------------


def equilibrium(
    cov: pd.DataFrame | FactorCovariance,
    market_weights: pd.Series | Mapping[str, float],
    *,
    risk_aversion: float,
    risk_free_rate: float = 0.0,
) -> pd.Series:
    """Equilibrium (implied) expected returns by reverse optimization.

    Parameters
    ----------
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Annualized covariance of returns, labelled by asset on both axes
        (columns may be in another order than rows); a
        :class:`~optimizer.riskmodel.FactorCovariance` is used through its
        dense ``.cov``.
    market_weights : pandas.Series or mapping, shape (n,)
        Market (benchmark) weights by asset, in any order; aligned to
        ``cov``'s labels. Used exactly as given: they are not rescaled to
        sum to one, and negative weights are allowed. Pass market
        capitalizations divided by their total if that is what you hold.
    risk_aversion : float, keyword-only
        ``delta``, positive; see :func:`implied_risk_aversion`. Values of 2
        to 4 are usual for equity markets.
    risk_free_rate : float, keyword-only
        Annual risk-free rate (decimal), added to every asset.

    Returns
    -------
    pandas.Series, shape (n,)
        ``pi = risk_free_rate + delta * C w``: annualized expected returns
        (decimals) in ``cov``'s asset order.

    Raises
    ------
    InputError
        A malformed ``cov`` (naming the assets at fault; asymmetric or not
        positive semidefinite beyond the tolerances of
        :mod:`optimizer.validation`), weights missing for some assets or
        given for assets not in ``cov`` (naming them), NaN weights, or a non-positive / non-finite ``risk_aversion`` or
        non-finite ``risk_free_rate``.

    Notes
    -----
    A mean-variance investor with risk aversion ``delta`` maximizing
    ``w' (mu - rf) - delta / 2 w' C w`` holds ``w = C^{-1} (mu - rf) / delta``;
    solving for ``mu`` when ``w`` is the market portfolio gives the excess
    returns ``delta C w`` that make the market optimal (Sharpe 1974). Black
    and Litterman (1992) use them as the neutral prior to which views are
    added.

    References
    ----------
    .. [1] Sharpe, W. F. (1974). "Imputing expected security returns from
       portfolio composition." Journal of Financial and Quantitative
       Analysis 9(3), 463-472.
    .. [2] Black, F. and Litterman, R. (1992). "Global portfolio
       optimization." Financial Analysts Journal 48(5), 28-43.
    """
    delta = validation.finite_number(risk_aversion, what="risk_aversion", positive=True)
    rf = validation.finite_number(risk_free_rate, what="risk_free_rate")
    assets, c = validation.covariance_values(cov)
    w = validation.vector(market_weights, assets, what="market_weights", against="cov")
    pi = rf + delta * (c @ w)
    return _series(pi, assets)


def implied_risk_aversion(
    market_returns: pd.Series | pd.DataFrame,
    risk_free_rate: float = 0.0,
    *,
    periods_per_year: float | None = None,
) -> float:
    """Market-implied risk aversion ``delta = (E[r_m] - r_f) / Var(r_m)``.

    Parameters
    ----------
    market_returns : pandas.Series, shape (T,)
        Periodic simple returns (decimals) of the market portfolio, with a
        ``DatetimeIndex`` unless ``periods_per_year`` is given; a one-column
        DataFrame is accepted too.
    risk_free_rate : float
        Annual risk-free rate (decimal).
    periods_per_year : float, optional, keyword-only
        Inferred from the dates when None.

    Returns
    -------
    float
        ``delta = (P * mean(r_m) - r_f) / (P * var(r_m))`` with the
        unbiased (``ddof=1``) variance, both annualized, so ``delta`` is in
        units of 1 / (annual variance); typically 1 to 5. Negative when the
        market earned less than ``risk_free_rate`` over the sample (a
        ``UserWarning`` says so).

    Raises
    ------
    InputError
        Not a Series (or one-column DataFrame), NaN values, fewer than 2
        observations, periods that cannot be inferred, a non-finite
        ``risk_free_rate``, or constant returns (zero variance).

    References
    ----------
    .. [1] Black, F. and Litterman, R. (1992). "Global portfolio
       optimization." Financial Analysts Journal 48(5), 28-43.
    """
    if isinstance(market_returns, pd.Series):
        name = market_returns.name if market_returns.name is not None else "market"
        frame = market_returns.to_frame(name=name)
    elif isinstance(market_returns, pd.DataFrame):
        if market_returns.shape[1] != 1:
            raise InputError(
                "market_returns must be a Series or a one-column DataFrame; got columns "
                + ", ".join(map(str, market_returns.columns))
            )
        frame = market_returns
    else:
        raise InputError(
            f"market_returns must be a pandas Series, got {type(market_returns).__name__}"
        )
    rf = validation.finite_number(risk_free_rate, what="risk_free_rate")
    x = validate_returns(frame)[:, 0]
    periods = resolve_periods(frame, periods_per_year)
    if np.all(x == x[0]):
        raise InputError(
            f"market returns {frame.columns[0]} are constant (zero variance); "
            "the risk aversion is undefined"
        )
    var = float(np.var(x, ddof=1)) * periods
    delta = (float(x.mean()) * periods - rf) / var
    if delta < 0:
        warnings.warn(
            f"implied risk aversion is negative ({delta:.3g}): the market earned less than the "
            "risk-free rate over the sample",
            UserWarning,
            stacklevel=2,
        )
    return delta
