"""Factor covariance models: statistical (PCA) and regression on given factors (private).

Public through :mod:`models.covariance` as ``factor_model`` and
``factor_regression``; both return an :class:`optimizer.riskmodel.FactorCovariance`.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from models._common import (
    EPS,
    SINGULAR_RTOL,
    checked_eigh,
    demean,
    fmt_date,
    frame,
    name_list,
    prepare_returns,
    reject_constant,
    symmetrize,
)
from optimizer import validation
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance

_FIX = "use fewer factors, a shrinkage estimator such as ledoit_wolf or oas, or more history"
_CONSTANT = "{} would give them no risk (a stale price?): drop them or fix the data"


def _check_structure(
    loadings: np.ndarray, fcov: np.ndarray, specific: np.ndarray, labels: pd.Index, what: str
) -> None:
    """Refuse a factor covariance ``B F B' + D`` that is singular.

    ``B F B' + D`` (periodic, n x n) is singular exactly when the assets Z
    with no specific variance are more than the rank of their (scaled)
    loadings ``B_Z F^(1/2)``: only then is there a combination of them that
    neither the factors nor the specific risks see. "No specific variance"
    is a share of at most :data:`SINGULAR_RTOL` of the asset's variance, and
    the rank counts the singular values above that fraction of the largest.
    O(n k + |Z| k^2), never an n x n eigendecomposition.
    """
    lam, vec = np.linalg.eigh(symmetrize(fcov))
    root = vec * np.sqrt(np.clip(lam, 0.0, None))  # F = root root'
    scaled = loadings @ root  # (n, k): B F^(1/2)
    var = np.einsum("ik,ik->i", scaled, scaled) + specific
    z = np.flatnonzero(specific <= SINGULAR_RTOL * var)
    if not len(z):
        return
    g = scaled[z] / np.sqrt(var[z])[:, None]
    sv = np.linalg.svd(g, compute_uv=False)
    rank = int(np.sum(sv * sv > SINGULAR_RTOL * max(float(sv[0] ** 2), 1.0))) if len(sv) else 0
    if len(z) > rank:
        k = loadings.shape[1]
        raise InputError(
            f"covariance.{what}: the estimate is singular: {name_list(labels[z])} "
            f"{'has' if len(z) == 1 else 'have'} no specific variance left after {k} "
            f"factor(s), and {len(z) - rank} combination(s) of them no variance at all; {_FIX}"
        )


def factor_model(
    returns: pd.DataFrame, *, n_factors: int, periods_per_year: float | None = None
) -> FactorCovariance:
    """Statistical factor model from the principal components, annualized.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids.
    n_factors : int
        Number of principal components k, ``1 <= k <= min(n, T - 1)``.
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.

    Returns
    -------
    optimizer.riskmodel.FactorCovariance
        ``loadings`` (n, k): the top-k unit eigenvectors of the sample
        covariance (ddof = 1), columns ``"PC1"`` .. ``"PCk"`` by decreasing
        eigenvalue, each signed so its largest-magnitude entry is positive;
        ``factor_cov`` (k, k): ``diag(eigenvalues)`` annualized (the factor
        returns are the eigen-portfolio returns ``Y @ loadings``);
        ``specific`` (n,): diagonal of the residual ``S - B F B'``
        annualized, clipped at 0.

    Raises
    ------
    InputError
        Invalid returns, ``n_factors`` not an int in ``1..min(n, T - 1)``,
        constant assets (named), or a singular result: assets with no
        specific variance left that the factors cannot tell apart (e.g.
        ``n_factors = T - 1 < n``, which reproduces the singular sample
        covariance).

    Notes
    -----
    ``diag(cov)`` equals the sample variances for every k; with
    ``k = n`` (or ``k`` = rank) ``cov`` reproduces the sample covariance.
    Residual variances below the rounding level ``max(n, T) * eps *
    largest eigenvalue`` are set to exactly zero.
    """
    x, labels, periods = prepare_returns(returns, periods_per_year)
    t, n = x.shape
    top = min(n, t - 1)
    if (
        isinstance(n_factors, bool)
        or not isinstance(n_factors, numbers.Integral)
        or not 1 <= int(n_factors) <= top
    ):
        raise InputError(
            f"n_factors must be an int in 1..{top} (min of n = {n} assets and T - 1 = {t - 1}), "
            f"got {n_factors!r}"
        )
    k = int(n_factors)
    reject_constant(x, labels, _CONSTANT.format("factor_model"))
    y = demean(x)
    s = symmetrize(y.T @ y) / (t - 1)
    lam, u = checked_eigh(s, "factor_model")
    vals = np.clip(lam[::-1][:k], 0.0, None)
    vecs = u[:, ::-1][:, :k].copy()
    lead = vecs[np.argmax(np.abs(vecs), axis=0), np.arange(k)]
    vecs *= np.where(lead < 0, -1.0, 1.0)
    specific = np.diag(s) - (vecs * vecs) @ vals
    specific[specific <= float(lam[-1]) * max(n, t) * EPS] = 0.0
    _check_structure(vecs, np.diag(vals), specific, labels, "factor_model")
    names = pd.Index([f"PC{i + 1}" for i in range(k)])
    return FactorCovariance(
        loadings=pd.DataFrame(vecs, index=labels.copy(), columns=names),
        factor_cov=pd.DataFrame(np.diag(vals * periods), index=names, columns=names.copy()),
        specific=pd.Series(specific * periods, index=labels.copy()),
    )


def _dates(index: pd.Index) -> str:
    """At most 5 dates, ``2020-01-31`` (not ``2020-01-31 00:00:00``); other labels as text."""
    labels = [fmt_date(d) for d in index] if isinstance(index, pd.DatetimeIndex) else index
    return name_list(labels, 5)


def _factor_values(factors: object, dates: pd.Index) -> tuple[np.ndarray, pd.Index]:
    """Check the factor returns and align them to the returns' dates."""
    if not isinstance(factors, pd.DataFrame):
        raise InputError(f"factors must be a pandas DataFrame, got {type(factors).__name__}")
    if factors.shape[1] == 0:
        raise InputError("factors has no columns")
    validation.labels(factors.columns, what="factors")
    bad = [str(c) for c in factors.columns if not pd.api.types.is_numeric_dtype(factors[c])]
    if bad:
        raise InputError(f"factors has non-numeric columns: {', '.join(bad)}")
    if not factors.index.equals(dates):
        dup = factors.index[factors.index.duplicated()].unique()
        if len(dup):
            raise InputError(f"factors has duplicate dates: {_dates(dup)}")
        missing = dates.difference(factors.index, sort=False)
        extra = factors.index.difference(dates, sort=False)
        if len(missing) or len(extra) or len(factors) != len(dates):
            raise InputError(
                "factors and returns must have the same dates: "
                f"{len(missing)} returns dates missing from factors ({_dates(missing) or '-'}); "
                f"{len(extra)} factor dates not in returns ({_dates(extra) or '-'})"
            )
        factors = factors.loc[dates]
    values = factors.to_numpy(dtype=float)
    finite = np.isfinite(values)
    if not finite.all():
        cols = factors.columns[~finite.all(axis=0)]
        raise InputError(f"factors has NaN or inf values for: {name_list(cols)}")
    return values, factors.columns


def factor_regression(
    returns: pd.DataFrame,
    factors: pd.DataFrame,
    *,
    periods_per_year: float | None = None,
) -> FactorCovariance:
    """Factor model from time-series regressions on given factor returns.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic asset returns (decimals), DatetimeIndex x asset ids.
    factors : pandas.DataFrame, shape (T, k)
        Periodic factor returns (decimals) on the same dates (any order;
        aligned to ``returns``), one column per factor.
    periods_per_year : float, optional
        Observations per year; inferred from the returns' index when omitted.

    Returns
    -------
    optimizer.riskmodel.FactorCovariance
        ``loadings`` (n, k): OLS slopes of each asset on the factors (with an
        intercept); ``factor_cov`` (k, k): sample covariance of the factors
        (ddof = 1), annualized; ``specific`` (n,): residual variances with
        ``ddof = 1 + k``, annualized.

    Raises
    ------
    InputError
        Invalid returns or factors, dates that do not match (naming them),
        ``T <= k + 1``, constant / collinear factors, constant assets
        (named), or a singular result (assets the factors explain exactly,
        more of them than the factors can tell apart).
    """
    x, labels, periods = prepare_returns(returns, periods_per_year)
    reject_constant(x, labels, _CONSTANT.format("factor_regression"))
    f, names = _factor_values(factors, returns.index)
    t, k = f.shape
    if t <= k + 1:
        raise InputError(
            f"factor_regression needs more than k + 1 = {k + 1} observations for {k} factors, "
            f"got T = {t}"
        )
    flat = np.ptp(f, axis=0) == 0.0
    if flat.any():
        raise InputError(
            f"factors are constant (collinear with the intercept): {name_list(names[flat])}"
        )
    design = np.column_stack([np.ones(t), f])
    coef, _, rank, _ = np.linalg.lstsq(design, x, rcond=None)
    if rank < k + 1:
        raise InputError(
            f"factors are linearly dependent (rank {rank - 1} < {k} after the intercept): "
            f"{name_list(names)}"
        )
    resid = x - design @ coef
    specific = np.einsum("ti,ti->i", resid, resid) / (t - 1 - k)
    g = demean(f)
    fcov = symmetrize(g.T @ g) / (t - 1)
    _check_structure(coef[1:].T, fcov, specific, labels, "factor_regression")
    return FactorCovariance(
        loadings=pd.DataFrame(coef[1:].T, index=labels.copy(), columns=names.copy()),
        factor_cov=frame(fcov * periods, names),
        specific=pd.Series(specific * periods, index=labels.copy()),
    )
