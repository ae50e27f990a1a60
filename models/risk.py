"""Risk analytics of a given portfolio: volatility, Euler risk contributions, VaR and CVaR.

Every function takes the weights as a Series labelled by asset and aligns
them by label with the covariance, expected returns or returns table it is
given: the order does not matter, but a missing or extra asset is an
:class:`~optimizer.errors.InputError` naming it. Inputs are checked by
:mod:`optimizer.validation`, with the same rules as everywhere else.

Units follow the inputs. With an annualized covariance (as every trimtab
estimator returns) the volatility is annualized; value at risk computed from
a table of daily returns is a one-day figure, from annualized ``mu`` and
``cov`` a one-year figure. Losses are reported as positive decimals
(0.05 is a 5% loss).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models._common import validate_returns
from models.mean_risk import confidence
from optimizer import validation
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance

__all__ = [
    "conditional_value_at_risk",
    "expected_shortfall",
    "portfolio_return",
    "portfolio_volatility",
    "risk_contributions",
    "value_at_risk",
]

#: Methods accepted by :func:`value_at_risk` and :func:`conditional_value_at_risk`.
VAR_METHODS = ("historical", "gaussian", "cornish_fisher")

#: Lowest standard normal quantile (tail level about 1e-12) over which the Cornish-Fisher
#: expansion must be increasing to be used: a negative excess kurtosis makes it turn back
#: only far out in the tail, where levels are too small to matter.
_CF_LOWEST_Z = -7.0
#: A portfolio variance below this fraction of sum |w_i| |C_ij| |w_j| is zero.
_ZERO_VARIANCE_RTOL = 1e-12


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _variance(w: np.ndarray, c: np.ndarray) -> float:
    """Portfolio variance ``w' C w``, zero when it is zero up to rounding; raises if negative."""
    var = float(w @ c @ w)
    gross = float(np.abs(w) @ np.abs(c) @ np.abs(w))
    if var <= _ZERO_VARIANCE_RTOL * gross:
        if var < -1e-10 * gross:
            raise InputError(
                f"cov is not positive semidefinite: the portfolio variance is {var:.3g} < 0; "
                "repair it with models.covariance.nearest_psd"
            )
        return 0.0
    return var


# --------------------------------------------------------------------------------------------
# Volatility, return, risk contributions
# --------------------------------------------------------------------------------------------


def portfolio_volatility(weights: pd.Series, cov: pd.DataFrame | FactorCovariance) -> float:
    """Volatility ``sqrt(w' C w)`` of a portfolio.

    Parameters
    ----------
    weights : pandas.Series, shape (n,)
        Portfolio weights (decimals of portfolio value), labelled by asset;
        aligned to ``cov`` by label. They need not sum to 1.
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Covariance of asset returns, annualized, labelled by asset on both axes.

    Returns
    -------
    float
        Volatility in the units of ``cov`` (annualized decimals for an
        annualized covariance). A variance that is zero up to rounding gives 0.

    Raises
    ------
    InputError
        Weights or covariance malformed (the rules of
        :mod:`optimizer.validation`: not pandas, NaN/inf, duplicate or
        mismatched assets, a covariance that is asymmetric or not positive
        semidefinite beyond its tolerance), or a clearly negative portfolio
        variance.
    """
    assets, c = validation.covariance_values(cov)
    w = validation.vector(weights, assets, what="weights", against="cov")
    return math.sqrt(_variance(w, c))


def portfolio_return(weights: pd.Series, mu: pd.Series) -> float:
    """Expected return ``w' mu`` of a portfolio.

    Parameters
    ----------
    weights : pandas.Series, shape (n,)
        Portfolio weights, labelled by asset; aligned to ``mu`` by label.
    mu : pandas.Series, shape (n,)
        Expected returns (annualized decimals), labelled by asset.

    Returns
    -------
    float
        Expected return in the units of ``mu``.

    Raises
    ------
    InputError
        Either input not a Series, NaN/inf values, duplicate or mismatched assets.
    """
    m = validation.series(mu, what="mu")
    w = validation.vector(weights, m.index, what="weights", against="mu")
    return float(w @ m.to_numpy())


def risk_contributions(
    weights: pd.Series, cov: pd.DataFrame | FactorCovariance, *, relative: bool = False
) -> pd.Series:
    """Euler risk contributions ``w_i (C w)_i / sigma`` of each asset to the volatility.

    Volatility is homogeneous of degree one in the weights, so by Euler's
    theorem ``sigma = sum_i w_i d sigma / d w_i``; the i-th term,
    ``w_i (C w)_i / sigma``, is the asset's contribution (Litterman 1996;
    Tasche 1999). Contributions can be negative (hedges).

    Parameters
    ----------
    weights : pandas.Series, shape (n,)
        Portfolio weights, labelled by asset; aligned to ``cov`` by label.
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Covariance of asset returns, annualized, labelled by asset on both axes.
    relative : bool, default False
        If True, divide by the volatility: fractions of risk that sum to 1.

    Returns
    -------
    pandas.Series, shape (n,)
        Contributions labelled by asset, in the order of ``weights``; they
        sum to the volatility (annualized decimals), or to 1 when ``relative``.

    Raises
    ------
    InputError
        Inputs malformed (see :func:`portfolio_volatility`), or the portfolio
        has zero volatility (contributions are undefined).

    References
    ----------
    .. [1] Litterman, R. (1996). Hot Spots and Hedges. Journal of Portfolio
       Management 23(Special issue), 52-75.
    .. [2] Tasche, D. (1999). Risk Contributions and Performance Measurement.
       Working paper, Technische Universitaet Muenchen.
    """
    assets, cv = validation.covariance_values(cov)
    w = validation.vector(weights, assets, what="weights", against="cov")
    var = _variance(w, cv)
    if var == 0.0:
        raise InputError(
            "risk contributions are undefined for a portfolio with zero volatility "
            "(all weights zero or fully hedged)"
        )
    sigma = math.sqrt(var)
    contrib = w * (cv @ w) / sigma
    if relative:
        contrib = contrib / sigma
    out = pd.Series(contrib, index=assets.copy(), name="risk_contribution")
    return out.reindex(weights.index)


# --------------------------------------------------------------------------------------------
# Value at risk and expected shortfall
# --------------------------------------------------------------------------------------------


def _sample_moments(r: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, standard deviation (ddof=1), skewness and excess kurtosis (moment estimators)."""
    m = float(r.mean())
    s = float(r.std(ddof=1))
    d = r - m
    m2 = float(np.mean(d**2))
    if math.sqrt(m2) <= 64 * np.finfo(float).eps * float(np.abs(r).max()):
        return m, 0.0, 0.0, 0.0  # constant up to rounding: no dispersion, no shape
    skew = float(np.mean(d**3)) / m2**1.5
    kurt = float(np.mean(d**4)) / m2**2 - 3.0
    return m, s, skew, kurt


def _cornish_fisher_coefficients(skew: float, kurt: float) -> np.ndarray:
    """Coefficients c0..c3 of the Cornish-Fisher quantile ``g(z) = sum c_j z^j``."""
    return np.array(
        [
            -skew / 6.0,
            1.0 - kurt / 8.0 + 5.0 * skew**2 / 36.0,
            skew / 6.0,
            kurt / 24.0 - skew**2 / 18.0,
        ]
    )


def _cf_increasing_on_tail(coef: np.ndarray, z: float) -> bool:
    """Whether the Cornish-Fisher quantile ``g`` increases over the tail ``[_CF_LOWEST_Z, z]``.

    ``g' = c1 + 2 c2 t + 3 c3 t^2`` is a quadratic: its minimum over an
    interval is at an end or at the vertex.
    """
    a, b, c = coef[1], 2.0 * coef[2], 3.0 * coef[3]
    lo = min(_CF_LOWEST_Z, z)
    points = [lo, z]
    if c != 0 and lo <= -b / (2 * c) <= z:
        points.append(-b / (2 * c))
    return min(a + b * t + c * t * t for t in points) >= -1e-12


def _tail(
    weights: pd.Series,
    returns: pd.DataFrame | None,
    *,
    alpha: float,
    method: str,
    mu: pd.Series | None,
    cov: pd.DataFrame | FactorCovariance | None,
    what: str,
) -> tuple[float, float]:
    """(VaR, CVaR) as positive losses, for the public wrappers."""
    a = confidence(alpha)
    if method not in VAR_METHODS:
        raise InputError(
            f"unknown method {method!r}; valid methods: " + ", ".join(map(repr, VAR_METHODS))
        )
    from scipy.stats import norm  # lazily: ~0.5 s of import time the CLI start does not need

    p = 1.0 - a  # tail probability
    if returns is None:
        if method != "gaussian":
            raise InputError(
                f"{what} with method={method!r} needs returns= (a DataFrame, dates x assets); "
                "only method='gaussian' can use mu= and cov= instead"
            )
        if mu is None or cov is None:
            raise InputError(
                f"{what} needs returns= (dates x assets) or, for method='gaussian', "
                "both mu= and cov="
            )
        assets, c = validation.covariance_values(cov)
        w = validation.vector(weights, assets, what="weights", against="cov")
        mv = validation.vector(mu, assets, what="mu", against="cov")
        m, s = float(w @ mv), math.sqrt(_variance(w, c))
    else:
        if mu is not None or cov is not None:
            raise InputError(
                f"{what}: give either returns= or mu=/cov=, not both "
                "(with returns, the moments are estimated from the sample)"
            )
        values = validate_returns(returns)
        w = validation.vector(weights, returns.columns, what="weights", against="returns")
        r = values @ w
        if method == "historical":
            ordered = np.sort(r)
            # inverted empirical CDF (Hyndman & Fan type 1): the k-th smallest return,
            # k = ceil(T p); the rounding guards against T p = 5.000000000000004
            k = max(1, math.ceil(round(len(r) * p, 9)))
            q = float(ordered[k - 1])
            return -q, -float(r[r <= q].mean())
        m, s, skew, kurt = _sample_moments(r)
        if method == "cornish_fisher":
            z = float(norm.ppf(p))
            coef = _cornish_fisher_coefficients(skew, kurt)
            if s > 0 and not _cf_increasing_on_tail(coef, z):
                raise InputError(
                    f"{what}: the Cornish-Fisher expansion is not monotone over the "
                    f"{p:.1%} tail for skewness {skew:.3g} and excess kurtosis {kurt:.3g} "
                    "(outside its domain of validity, Maillard 2012); use a higher alpha "
                    "or method='historical'"
                )
            zcf = float(coef @ z ** np.arange(4))
            phi = float(norm.pdf(z))
            # integral over the tail of z^j phi(z), j = 0..3, divided by p
            moments = np.array([p, -phi, p - z * phi, -(z * z + 2.0) * phi]) / p
            return -(m + zcf * s), -(m + s * float(coef @ moments))
    z = float(norm.ppf(p))
    return -(m + z * s), -(m - s * float(norm.pdf(z)) / p)


def value_at_risk(
    weights: pd.Series,
    returns: pd.DataFrame | None = None,
    *,
    alpha: float = 0.95,
    method: str = "historical",
    mu: pd.Series | None = None,
    cov: pd.DataFrame | FactorCovariance | None = None,
) -> float:
    """Value at risk: the loss the portfolio exceeds with probability ``1 - alpha``.

    Parameters
    ----------
    weights : pandas.Series, shape (n,)
        Portfolio weights, labelled by asset; aligned by label to the columns
        of ``returns`` (or to ``cov`` and ``mu``).
    returns : pandas.DataFrame, shape (T, n), optional
        Periodic asset returns (decimals), dates x assets. The portfolio
        return of each date is ``returns @ weights`` (constant weights).
        Required for ``"historical"`` and ``"cornish_fisher"``.
    alpha : float, default 0.95
        Confidence level, in (0, 1); the tail has probability ``1 - alpha``.
    method : {"historical", "gaussian", "cornish_fisher"}, default "historical"
        ``"historical"``: minus the empirical ``(1 - alpha)``-quantile of the
        portfolio returns, using the inverted empirical distribution function
        (Hyndman & Fan type 1, no interpolation): with ``T`` returns sorted
        ascending, the ``k``-th smallest, ``k = ceil(T (1 - alpha))``; the VaR
        is always an observed loss.
        ``"gaussian"``: ``-(m + z s)`` with ``z`` the standard normal
        ``(1 - alpha)``-quantile, ``m`` and ``s`` the portfolio mean and
        standard deviation (sample mean and ``ddof=1`` deviation of the
        portfolio returns, or ``w' mu`` and ``sqrt(w' C w)`` from ``mu`` and
        ``cov``).
        ``"cornish_fisher"``: the modified VaR of Zangari (1996) and Favre and
        Galeano (2002), ``-(m + z_cf s)`` with
        ``z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3 z) K / 24 - (2 z^3 - 5 z) S^2 / 36``,
        ``S`` and ``K`` the sample skewness and excess kurtosis of the
        portfolio returns (moment estimators ``m3 / m2^1.5`` and
        ``m4 / m2^2 - 3``, without small-sample correction). The expansion is
        a quantile only where ``z_cf`` increases with ``z``; it must increase
        over the whole tail, from ``z = -7`` (a tail level of about 1e-12) to
        ``z``, else an InputError is raised (Maillard 2012 maps the skewness
        and kurtosis for which it does).
    mu : pandas.Series, shape (n,), optional
        Expected returns (annualized decimals), for ``"gaussian"`` without ``returns``.
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance, optional
        Covariance (annualized), for ``"gaussian"`` without ``returns``.

    Returns
    -------
    float
        The VaR as a positive loss (decimal of portfolio value), in the units
        of the inputs: per period of ``returns`` (one day for daily returns),
        or over one year from annualized ``mu`` and ``cov`` (no square-root-of
        time scaling is applied). Negative when even the tail quantile is a gain.

    Raises
    ------
    InputError
        ``alpha`` outside (0, 1); unknown ``method`` (the message lists the
        valid ones); neither ``returns`` nor ``mu`` and ``cov`` given, or
        both; ``returns`` missing for a sample-based method; malformed or
        misaligned inputs; Cornish-Fisher expansion not increasing over the
        tail (skewness and kurtosis outside its domain of validity).

    See Also
    --------
    conditional_value_at_risk : the mean loss beyond the VaR.

    References
    ----------
    .. [1] Zangari, P. (1996). A VaR Methodology for Portfolios that Include
       Options. RiskMetrics Monitor, First Quarter, 4-12.
    .. [2] Favre, L. and Galeano, J.-A. (2002). Mean-Modified Value-at-Risk
       Optimization with Hedge Funds. Journal of Alternative Investments 5(2), 21-25.
    .. [3] Maillard, D. (2012). A User's Guide to the Cornish Fisher
       Expansion. SSRN 1997178.
    .. [4] Hyndman, R. J. and Fan, Y. (1996). Sample Quantiles in Statistical
       Packages. The American Statistician 50(4), 361-365.
    """
    var, _ = _tail(
        weights, returns, alpha=alpha, method=method, mu=mu, cov=cov, what="value_at_risk"
    )
    return var


def conditional_value_at_risk(
    weights: pd.Series,
    returns: pd.DataFrame | None = None,
    *,
    alpha: float = 0.95,
    method: str = "historical",
    mu: pd.Series | None = None,
    cov: pd.DataFrame | FactorCovariance | None = None,
) -> float:
    """Conditional value at risk (expected shortfall): the mean loss in the ``1 - alpha`` tail.

    Takes the same arguments as :func:`value_at_risk`.

    Parameters
    ----------
    weights, returns, alpha, method, mu, cov
        See :func:`value_at_risk`. Per method:
        ``"historical"``: the mean of the sample losses at or beyond the
        historical VaR (every return ``<= -VaR``, ties included).
        ``"gaussian"``: ``-(m - s phi(z) / (1 - alpha))``, ``phi`` the normal density.
        ``"cornish_fisher"``: minus ``m + s`` times the average of the
        Cornish-Fisher quantile ``z_cf(u)`` over the tail levels ``u`` in
        ``(0, 1 - alpha]``. With ``u = Phi(t)`` the average is
        ``(1 / (1 - alpha)) * integral_{-inf}^{z} z_cf(t) phi(t) dt``; as
        ``z_cf`` is a cubic in ``t``, the integral is evaluated exactly from
        the truncated normal moments ``integral t^j phi(t) dt`` (``Phi(z)``,
        ``-phi(z)``, ``Phi(z) - z phi(z)``, ``-(z^2 + 2) phi(z)``) rather
        than by quadrature.

    Returns
    -------
    float
        The CVaR as a positive loss, in the units of the inputs; never less
        than the VaR of the same method and ``alpha``.

    Raises
    ------
    InputError
        As :func:`value_at_risk`.

    References
    ----------
    .. [1] Acerbi, C. and Tasche, D. (2002). On the Coherence of Expected
       Shortfall. Journal of Banking and Finance 26(7), 1487-1503.
    .. [2] Favre, L. and Galeano, J.-A. (2002). Mean-Modified Value-at-Risk
       Optimization with Hedge Funds. Journal of Alternative Investments 5(2), 21-25.
    """
    _, cvar = _tail(
        weights,
        returns,
        alpha=alpha,
        method=method,
        mu=mu,
        cov=cov,
        what="conditional_value_at_risk",
    )
    return cvar


#: Expected shortfall is another name for the conditional value at risk.
expected_shortfall = conditional_value_at_risk
