"""Covariance estimators: sample, EWMA, shrinkage, factor models, CMA, repair.

Every estimator takes periodic returns (a DataFrame, DatetimeIndex x asset
ids, decimals) and returns an **annualized** covariance: the periodic
estimate times ``periods_per_year``, which is inferred from the index (daily
252, weekly 52, monthly 12) unless given. Results are labelled by asset on
both axes, in the order of the input's columns.

========================  ======================================================
``sample``                unbiased sample covariance (ddof = 1)
``ewma``                  exponentially weighted, half-life in periods
``ledoit_wolf``           linear shrinkage to the identity, constant-correlation
                          or single-factor target
``oas``                   oracle approximating shrinkage
``nonlinear_shrinkage``   analytical nonlinear shrinkage (Ledoit-Wolf 2020)
``factor_model``          statistical (PCA) factor model -> FactorCovariance
``factor_regression``     time-series regression on given factors
``nearest_psd``           nearest PSD covariance / nearest correlation matrix
``from_cma``              covariance from capital-market assumptions
========================  ======================================================

The numerical kernels live in :mod:`models._shrinkage`; the factor models in
:mod:`models._factors`, the repair and CMA functions in :mod:`models._repair`
(public here), the shared helpers in :mod:`models._common`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sklearn.covariance

from models import _shrinkage
from models._common import (
    EPS,
    checked_eigh,
    demean,
    frame,
    name_list,
    positive_number,
    prepare_returns,
    symmetrize,
)
from models._factors import factor_model, factor_regression
from models._repair import from_cma, nearest_psd
from optimizer.errors import InputError

__all__ = [
    "TARGETS",
    "ewma",
    "factor_model",
    "factor_regression",
    "from_cma",
    "ledoit_wolf",
    "nearest_psd",
    "nonlinear_shrinkage",
    "oas",
    "sample",
]

#: Shrinkage targets accepted by :func:`ledoit_wolf`.
TARGETS = ("identity", "constant_correlation", "single_factor")


def _reject_constant(x: np.ndarray, labels: pd.Index, why: str) -> None:
    """Raise naming the assets whose returns never change."""
    flat = np.ptp(x, axis=0) == 0.0
    if flat.any():
        raise InputError(
            f"returns are constant (zero variance) for assets: {name_list(labels[flat])}; {why}"
        )


def sample(returns: pd.DataFrame, *, periods_per_year: float | None = None) -> pd.DataFrame:
    """Sample covariance (ddof = 1), annualized.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids, T >= 2.
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        ``periods_per_year * Y'Y / (T - 1)`` with ``Y`` the demeaned returns,
        labelled by asset on both axes.

    Raises
    ------
    InputError
        Invalid returns (see :func:`models._common.validate_returns`) or
        periods per year that cannot be inferred.
    """
    x, labels, periods = prepare_returns(returns, periods_per_year)
    y = demean(x)
    return frame(symmetrize(y.T @ y) / (len(x) - 1) * periods, labels)


def ewma(
    returns: pd.DataFrame, *, halflife: float, periods_per_year: float | None = None
) -> pd.DataFrame:
    """Exponentially weighted covariance, annualized.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids, oldest first.
    halflife : float
        Half-life of the weights in periods (> 0): an observation ``halflife``
        periods older than the latest one weighs half as much.
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        ``periods_per_year * sum_t w_t (r_t - m)(r_t - m)'``.

    Raises
    ------
    InputError
        Invalid returns or a ``halflife`` that is not a positive number.

    Notes
    -----
    Weights ``w_t ∝ 2^(-(T - 1 - t) / halflife)`` are normalized to sum to 1,
    and the mean ``m = sum_t w_t r_t`` uses the same weights (RiskMetrics
    style, no small-sample correction: with a very long half-life the
    estimate tends to the ddof = 0 sample covariance).

    References
    ----------
    J.P. Morgan / Reuters (1996). *RiskMetrics - Technical Document*, 4th
    edition, section 5.2 (exponentially weighted moving average).
    """
    hl = positive_number(halflife, "halflife")
    x, labels, periods = prepare_returns(returns, periods_per_year)
    age = np.arange(len(x) - 1, -1, -1, dtype=float)
    w = np.exp(-np.log(2.0) * age / hl)
    w /= w.sum()
    z = (x - w @ x) * np.sqrt(w)[:, None]
    return frame(symmetrize(z.T @ z) * periods, labels)


def ledoit_wolf(
    returns: pd.DataFrame,
    *,
    target: str = "identity",
    periods_per_year: float | None = None,
) -> pd.DataFrame:
    """Ledoit-Wolf linear shrinkage of the sample covariance, annualized.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids.
    target : {"identity", "constant_correlation", "single_factor"}
        Shrinkage target. ``"identity"``: a multiple of the identity (computed
        by :func:`sklearn.covariance.ledoit_wolf`). ``"constant_correlation"``:
        sample variances with the average sample correlation.
        ``"single_factor"``: a one-factor model on the equal-weighted average
        of the assets' returns (the "market").
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        ``periods_per_year * (delta F + (1 - delta) S)``, with ``S`` the
        ddof = 0 covariance of the demeaned returns, ``F`` the target and
        ``delta`` in [0, 1] the estimated optimal intensity.

    Raises
    ------
    InputError
        Invalid returns, unknown ``target`` (the message lists the valid
        ones), constant returns for ``"constant_correlation"`` (naming the
        assets) or a constant market for ``"single_factor"``.

    Notes
    -----
    All three follow the papers' conventions: returns demeaned, second
    moments divided by T. The two structured targets are computed in
    ``O(T n^2)`` by a single ``Y'Y`` product plus ``O(T n)`` work; see
    :func:`models._shrinkage.lw_constant_correlation` and
    :func:`models._shrinkage.lw_single_factor` for the formulas.

    References
    ----------
    .. [1] Ledoit, O. and Wolf, M. (2004). A well-conditioned estimator for
       large-dimensional covariance matrices. *Journal of Multivariate
       Analysis* 88(2), 365-411.
    .. [2] Ledoit, O. and Wolf, M. (2004). Honey, I shrunk the sample
       covariance matrix. *Journal of Portfolio Management* 30(4), 110-119.
    .. [3] Ledoit, O. and Wolf, M. (2003). Improved estimation of the
       covariance matrix of stock returns with an application to portfolio
       selection. *Journal of Empirical Finance* 10(5), 603-621.
    """
    if not isinstance(target, str) or target not in TARGETS:
        raise InputError(
            f"unknown ledoit_wolf target {target!r}; valid targets: "
            + ", ".join(repr(t) for t in TARGETS)
        )
    x, labels, periods = prepare_returns(returns, periods_per_year)
    if target == "identity":
        cov, _ = sklearn.covariance.ledoit_wolf(x, assume_centered=False)
        return frame(np.asarray(cov, dtype=float) * periods, labels)
    if target == "constant_correlation":
        _reject_constant(x, labels, "the constant-correlation target needs every correlation")
        cov, _ = _shrinkage.lw_constant_correlation(demean(x))
    else:
        y = demean(x)
        market = y.mean(axis=1)
        largest = float(np.einsum("ti,ti->i", y, y).max())
        if not float(market @ market) > max(x.shape) * EPS * largest:
            raise InputError(
                "the equal-weighted market of these returns is constant (zero variance); "
                "the single_factor target needs a market with positive variance"
            )
        cov, _ = _shrinkage.lw_single_factor(y)
    return frame(cov * periods, labels)


def oas(returns: pd.DataFrame, *, periods_per_year: float | None = None) -> pd.DataFrame:
    """Oracle approximating shrinkage towards a scaled identity, annualized.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids.
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        :func:`sklearn.covariance.oas` of the returns (centered) times
        ``periods_per_year``.

    Raises
    ------
    InputError
        Invalid returns or periods per year.

    References
    ----------
    Chen, Y., Wiesel, A., Eldar, Y. C. and Hero, A. O. (2010). Shrinkage
    algorithms for MMSE covariance estimation. *IEEE Transactions on Signal
    Processing* 58(10), 5016-5029.
    """
    x, labels, periods = prepare_returns(returns, periods_per_year)
    cov, _ = sklearn.covariance.oas(x, assume_centered=False)
    return frame(np.asarray(cov, dtype=float) * periods, labels)


def nonlinear_shrinkage(
    returns: pd.DataFrame, *, periods_per_year: float | None = None
) -> pd.DataFrame:
    """Analytical nonlinear shrinkage (Ledoit and Wolf 2020), annualized.

    Keeps the eigenvectors of the sample covariance and replaces each sample
    eigenvalue by a kernel estimate of its oracle value; works for T > n and
    T <= n alike.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids, T >= 2.
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        ``periods_per_year * U diag(d) U'``, with ``U`` the eigenvectors of
        the sample covariance ``S = Y'Y / (T - 1)`` and ``d > 0`` the shrunk
        eigenvalues. Positive definite.

    Raises
    ------
    InputError
        Invalid returns, constant assets (named), or returns whose sample
        covariance has a zero eigenvalue beyond the ``n - (T - 1)`` expected
        when n > T - 1 (duplicated or linearly dependent assets; the assets
        involved are named when n < T).

    Notes
    -----
    The returns are demeaned, so the effective sample size is ``T - 1``
    (the paper's ``n``). One symmetric eigendecomposition and ``O(n^2)``
    vectorized kernel work; the formulas are in
    :func:`models._shrinkage.nonlinear_shrinkage_eigenvalues`. When
    ``n > T - 1`` the ``n - T + 1`` null eigenvalues of ``S`` share one
    positive value (equation C.5 of the paper).

    References
    ----------
    Ledoit, O. and Wolf, M. (2020). Analytical nonlinear shrinkage of
    large-dimensional covariance matrices. *Annals of Statistics* 48(5),
    3043-3065.
    """
    x, labels, periods = prepare_returns(returns, periods_per_year)
    _reject_constant(x, labels, "nonlinear shrinkage needs positive sample eigenvalues")
    t, p = x.shape
    n_eff = t - 1
    y = demean(x)
    lam, u = checked_eigh(y.T @ y / n_eff, "nonlinear_shrinkage")
    r = min(p, n_eff)
    floor = float(lam[-1]) * max(p, t) * EPS
    if not float(lam[p - r]) > floor:
        if p <= n_eff:
            v = u[:, 0]
            involved = labels[np.argsort(-np.abs(v), kind="stable")]
            involved = involved[: int(np.sum(np.abs(v) >= 0.1))]
            where = f": a combination of assets {name_list(involved)} has no variance"
        else:
            where = f" beyond the n - (T - 1) = {p - n_eff} expected"
        raise InputError(
            f"returns are rank-deficient (sample covariance has a zero eigenvalue{where}); "
            "drop duplicated or linearly dependent assets before nonlinear shrinkage"
        )
    d = _shrinkage.nonlinear_shrinkage_eigenvalues(lam, n_eff)
    root = u * np.sqrt(d * periods)
    return frame(root @ root.T, labels)  # G G' by a symmetric update: exactly symmetric
