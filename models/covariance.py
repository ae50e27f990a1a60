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

The numerical kernels live in :mod:`models._shrinkage`.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Hashable, Iterable, Mapping
from typing import Literal, overload

import numpy as np
import pandas as pd
import sklearn.covariance

from models import _shrinkage
from models._common import frame, resolve_periods, validate_returns
from optimizer import validation
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance

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
_KINDS = ("covariance", "correlation")
_EPS = float(np.finfo(float).eps)


# --------------------------------------------------------------------------- helpers


def _names(labels: Iterable[object], limit: int = 8) -> str:
    """Comma-separated labels, at most ``limit`` of them."""
    items = [str(x) for x in labels]
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _prepare(
    returns: pd.DataFrame, periods_per_year: float | None
) -> tuple[np.ndarray, pd.Index, float]:
    """Validated values (T, n), asset labels and periods per year."""
    values = validate_returns(returns, min_obs=2)
    return values, returns.columns, resolve_periods(returns, periods_per_year)


def _demean(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=0)


def _reject_constant(x: np.ndarray, labels: pd.Index, why: str) -> None:
    """Raise naming the assets whose returns never change."""
    flat = np.ptp(x, axis=0) == 0.0
    if flat.any():
        raise InputError(
            f"returns are constant (zero variance) for assets: {_names(labels[flat])}; {why}"
        )


def _symmetric(a: np.ndarray) -> np.ndarray:
    return (a + a.T) / 2.0


def _square_values(matrix: object, what: str) -> tuple[np.ndarray, pd.Index]:
    """Check a square matrix labelled by asset on both axes.

    Columns in another order than the rows are reordered to the rows' order.
    Returns the values (a fresh float array) and the labels.
    """
    if not isinstance(matrix, pd.DataFrame):
        raise InputError(
            f"{what} must be a pandas DataFrame labelled by asset on both axes, "
            f"got {type(matrix).__name__}"
        )
    rows, cols = matrix.shape
    if rows != cols:
        raise InputError(f"{what} is not square: {rows} rows x {cols} columns")
    if rows == 0:
        raise InputError(f"{what} is empty")
    validation.labels(matrix.index, what=f"{what} (rows)")
    validation.labels(matrix.columns, what=f"{what} (columns)")
    if not matrix.index.equals(matrix.columns):
        only_rows = matrix.index.difference(matrix.columns, sort=False)
        only_cols = matrix.columns.difference(matrix.index, sort=False)
        if len(only_rows) or len(only_cols):
            raise InputError(
                f"{what} has different row and column labels: rows only: "
                f"{_names(only_rows) or '-'}; columns only: {_names(only_cols) or '-'}"
            )
        matrix = matrix.loc[:, matrix.index]
    try:
        values = np.array(matrix.to_numpy(dtype=float), dtype=float, copy=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} has non-numeric entries ({exc})") from exc
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        i, j = bad[0]
        raise InputError(
            f"{what} has NaN or inf values ({len(bad)} entries), first at "
            f"({matrix.index[i]}, {matrix.index[j]})"
        )
    return values, matrix.index


def _positive_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    out = float(value)
    if not (np.isfinite(out) and out > 0):
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return out


def _eigh(a: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return np.linalg.eigh(a)
    except np.linalg.LinAlgError as exc:  # pragma: no cover - LAPACK failure on finite input
        raise InputError(f"{what}: eigendecomposition failed ({exc})") from exc


# --------------------------------------------------------------------------- estimators


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
    x, labels, periods = _prepare(returns, periods_per_year)
    y = _demean(x)
    return frame(_symmetric(y.T @ y) / (len(x) - 1) * periods, labels)


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
    hl = _positive_number(halflife, "halflife")
    x, labels, periods = _prepare(returns, periods_per_year)
    age = np.arange(len(x) - 1, -1, -1, dtype=float)
    w = np.exp(-np.log(2.0) * age / hl)
    w /= w.sum()
    z = (x - w @ x) * np.sqrt(w)[:, None]
    return frame(_symmetric(z.T @ z) * periods, labels)


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
    x, labels, periods = _prepare(returns, periods_per_year)
    if target == "identity":
        cov, _ = sklearn.covariance.ledoit_wolf(x, assume_centered=False)
        return frame(np.asarray(cov, dtype=float) * periods, labels)
    if target == "constant_correlation":
        _reject_constant(x, labels, "the constant-correlation target needs every correlation")
        cov, _ = _shrinkage.lw_constant_correlation(_demean(x))
    else:
        y = _demean(x)
        market = y.mean(axis=1)
        largest = float(np.einsum("ti,ti->i", y, y).max())
        if not float(market @ market) > max(x.shape) * _EPS * largest:
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
    x, labels, periods = _prepare(returns, periods_per_year)
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
    x, labels, periods = _prepare(returns, periods_per_year)
    _reject_constant(x, labels, "nonlinear shrinkage needs positive sample eigenvalues")
    t, p = x.shape
    n_eff = t - 1
    y = _demean(x)
    lam, u = _eigh(y.T @ y / n_eff, "nonlinear_shrinkage")
    r = min(p, n_eff)
    floor = float(lam[-1]) * max(p, t) * _EPS
    if not float(lam[p - r]) > floor:
        if p <= n_eff:
            v = u[:, 0]
            involved = labels[np.argsort(-np.abs(v), kind="stable")]
            involved = involved[: int(np.sum(np.abs(v) >= 0.1))]
            where = f": a combination of assets {_names(involved)} has no variance"
        else:
            where = f" beyond the n - (T - 1) = {p - n_eff} expected"
        raise InputError(
            f"returns are rank-deficient (sample covariance has a zero eigenvalue{where}); "
            "drop duplicated or linearly dependent assets before nonlinear shrinkage"
        )
    d = _shrinkage.nonlinear_shrinkage_eigenvalues(lam, n_eff)
    root = u * np.sqrt(d * periods)
    return frame(root @ root.T, labels)  # G G' by a symmetric update: exactly symmetric


# --------------------------------------------------------------------------- factor models


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
        Invalid returns, or ``n_factors`` not an int in ``1..min(n, T - 1)``.

    Notes
    -----
    ``diag(cov)`` equals the sample variances for every k; with
    ``k = n`` (or ``k`` = rank) ``cov`` reproduces the sample covariance.
    Residual variances below the rounding level ``max(n, T) * eps *
    largest eigenvalue`` are set to exactly zero.
    """
    x, labels, periods = _prepare(returns, periods_per_year)
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
    y = _demean(x)
    s = _symmetric(y.T @ y) / (t - 1)
    lam, u = _eigh(s, "factor_model")
    vals = np.clip(lam[::-1][:k], 0.0, None)
    vecs = u[:, ::-1][:, :k].copy()
    lead = vecs[np.argmax(np.abs(vecs), axis=0), np.arange(k)]
    vecs *= np.where(lead < 0, -1.0, 1.0)
    specific = np.diag(s) - (vecs * vecs) @ vals
    specific[specific <= float(lam[-1]) * max(n, t) * _EPS] = 0.0
    names = pd.Index([f"PC{i + 1}" for i in range(k)])
    return FactorCovariance(
        loadings=pd.DataFrame(vecs, index=labels.copy(), columns=names),
        factor_cov=pd.DataFrame(np.diag(vals * periods), index=names, columns=names.copy()),
        specific=pd.Series(specific * periods, index=labels.copy()),
    )


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
            raise InputError(f"factors has duplicate dates: {_names(dup, 5)}")
        missing = dates.difference(factors.index, sort=False)
        extra = factors.index.difference(dates, sort=False)
        if len(missing) or len(extra) or len(factors) != len(dates):
            raise InputError(
                "factors and returns must have the same dates: "
                f"{len(missing)} returns dates missing from factors ({_names(missing, 5) or '-'}); "
                f"{len(extra)} factor dates not in returns ({_names(extra, 5) or '-'})"
            )
        factors = factors.loc[dates]
    values = factors.to_numpy(dtype=float)
    finite = np.isfinite(values)
    if not finite.all():
        cols = factors.columns[~finite.all(axis=0)]
        raise InputError(f"factors has NaN or inf values for: {_names(cols)}")
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
        ``T <= k + 1``, or constant / collinear factors.
    """
    x, labels, periods = _prepare(returns, periods_per_year)
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
            f"factors are constant (collinear with the intercept): {_names(names[flat])}"
        )
    design = np.column_stack([np.ones(t), f])
    coef, _, rank, _ = np.linalg.lstsq(design, x, rcond=None)
    if rank < k + 1:
        raise InputError(
            f"factors are linearly dependent (rank {rank - 1} < {k} after the intercept): "
            f"{_names(names)}"
        )
    resid = x - design @ coef
    specific = np.einsum("ti,ti->i", resid, resid) / (t - 1 - k)
    g = _demean(f)
    fcov = _symmetric(g.T @ g) / (t - 1)
    return FactorCovariance(
        loadings=pd.DataFrame(coef[1:].T, index=labels.copy(), columns=names.copy()),
        factor_cov=frame(fcov * periods, names),
        specific=pd.Series(specific * periods, index=labels.copy()),
    )


# --------------------------------------------------------------------------- repair and CMA


def _is_psd(a: np.ndarray, tol: float) -> bool:
    """Smallest eigenvalue ``>= -tol`` times the largest absolute one."""
    w = np.linalg.eigvalsh(_symmetric(a))
    return bool(w.min() >= -tol * float(np.abs(w).max()))


def _nearest_correlation(a: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    out, iterations, residual = _shrinkage.higham_correlation(a, tol=tol, max_iter=max_iter)
    if residual > tol:
        warnings.warn(
            f"nearest correlation matrix: no convergence after {iterations} iterations "
            f"(residual {residual:.3g} > tol {tol:.3g}); the result is PSD with a unit diagonal "
            "but may not be the nearest one",
            RuntimeWarning,
            stacklevel=3,
        )
    return out


@overload
def nearest_psd(
    matrix: pd.DataFrame,
    *,
    kind: str = ...,
    return_distance: Literal[False] = ...,
    tol: float = ...,
    max_iter: int = ...,
) -> pd.DataFrame: ...


@overload
def nearest_psd(
    matrix: pd.DataFrame,
    *,
    kind: str = ...,
    return_distance: Literal[True],
    tol: float = ...,
    max_iter: int = ...,
) -> tuple[pd.DataFrame, float]: ...


def nearest_psd(
    matrix: pd.DataFrame,
    *,
    kind: str = "covariance",
    return_distance: bool = False,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> pd.DataFrame | tuple[pd.DataFrame, float]:
    """Nearest positive semidefinite covariance or correlation matrix.

    Parameters
    ----------
    matrix : pandas.DataFrame, shape (n, n)
        Square matrix labelled by asset on both axes (columns in another
        order are aligned to the rows).
    kind : {"covariance", "correlation"}
        ``"covariance"``: nearest symmetric PSD matrix (eigenvalue clipping
        at 0 of the symmetric part). ``"correlation"``: nearest correlation
        matrix (PSD with unit diagonal) by Higham's alternating projections.
    return_distance : bool
        Also return the Frobenius norm of the change.
    tol : float
        A symmetric input whose smallest eigenvalue is ``>= -tol`` times its
        largest absolute eigenvalue (and, for correlations, whose diagonal is
        within ``tol`` of 1) is returned unchanged. Also the convergence
        tolerance of Higham's iteration.
    max_iter : int
        Iteration cap for ``"correlation"``; a RuntimeWarning is issued if it
        is reached.

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, float)
        The repaired matrix (same labels, same units as the input) and, with
        ``return_distance=True``, ``||matrix - result||_F``.

    Raises
    ------
    InputError
        Not a labelled square DataFrame, row and column labels that differ,
        non-finite entries (naming the first one), or an unknown ``kind``.

    Notes
    -----
    The symmetric part is the nearest symmetric matrix, and the skew part is
    orthogonal to every symmetric matrix, so both repairs start from
    ``(A + A') / 2``. Eigenvalue clipping is Higham (1988). The correlation
    result is finished so that it is exactly PSD up to rounding and has an
    exact unit diagonal; the nearest correlation matrix of a non-PSD input
    is singular (its smallest eigenvalue is 0).

    References
    ----------
    .. [1] Higham, N. J. (1988). Computing a nearest symmetric positive
       semidefinite matrix. *Linear Algebra and its Applications* 103,
       103-118.
    .. [2] Higham, N. J. (2002). Computing the nearest correlation matrix, a
       problem from finance. *IMA Journal of Numerical Analysis* 22(3),
       329-343.
    """
    if not isinstance(kind, str) or kind not in _KINDS:
        raise InputError(
            f"unknown nearest_psd kind {kind!r}; valid kinds: " + ", ".join(map(repr, _KINDS))
        )
    tol = _positive_number(tol, "tol")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise InputError(f"max_iter must be a positive int, got {max_iter!r}")
    a, labels = _square_values(matrix, "matrix")
    scale = max(float(np.abs(a).max()), _EPS)
    symmetric = bool(np.abs(a - a.T).max() <= tol * scale)
    unit = kind == "covariance" or bool(np.abs(np.diag(a) - 1.0).max() <= tol)
    if symmetric and unit and _is_psd(a, tol):
        out = a.copy()
    elif kind == "covariance":
        out = _shrinkage.clip_eigenvalues(_symmetric(a))
    else:
        out = _nearest_correlation(_symmetric(a), tol, int(max_iter))
    result = frame(out, labels)
    if return_distance:
        return result, float(np.linalg.norm(a - out))
    return result


def _volatility_values(volatility: object) -> pd.Series:
    if isinstance(volatility, Mapping) and not isinstance(volatility, pd.Series):
        volatility = pd.Series(dict(volatility), dtype=object)
    if not isinstance(volatility, pd.Series):
        raise InputError(
            f"volatility must be a pandas Series by asset, got {type(volatility).__name__}"
        )
    if len(volatility) == 0:
        raise InputError("volatility is empty")
    validation.labels(volatility.index, what="volatility")
    values = pd.to_numeric(volatility, errors="coerce").astype(float)
    bad = values.index[~np.isfinite(values.to_numpy())]
    if len(bad):
        raise InputError(f"volatility is missing, non-numeric or infinite for: {_names(bad)}")
    bad = values.index[values.to_numpy() <= 0]
    if len(bad):
        raise InputError(
            f"volatility must be > 0 (annualized, decimals); not so for: {_names(bad)}"
        )
    return values


def from_cma(
    volatility: pd.Series | Mapping[Hashable, float],
    correlation: pd.DataFrame,
    *,
    strict: bool = False,
    tol: float = 1e-10,
) -> pd.DataFrame:
    """Covariance from capital-market assumptions: ``diag(vol) R diag(vol)``.

    Parameters
    ----------
    volatility : pandas.Series, shape (n,)
        Annualized volatilities (decimals, > 0) by asset id; a mapping is
        accepted too. Its order is the order of the result.
    correlation : pandas.DataFrame, shape (n, n)
        Correlation matrix labelled by the same assets on both axes, in any
        order.
    strict : bool
        If True, a correlation matrix that is not positive semidefinite is an
        error; if False (default) it is repaired to the nearest correlation
        matrix with a RuntimeWarning.
    tol : float
        Tolerance for symmetry, unit diagonal, ``|rho| <= 1`` and the
        smallest eigenvalue (``>= -tol``).

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        Annualized covariance, labelled in the order of ``volatility``.
        ``sqrt(diag)`` gives back the volatilities and
        ``cov / outer(vol, vol)`` the (symmetrized, repaired if needed)
        correlations.

    Raises
    ------
    InputError
        Volatility not positive or not finite (naming the asset); assets in
        one input but not the other (naming them); non-finite correlations;
        a diagonal entry not 1 (naming the asset); an asymmetric pair or
        ``|rho| > 1`` (naming the pair); with ``strict=True``, a correlation
        matrix that is not PSD (with its smallest eigenvalue).

    Warns
    -----
    RuntimeWarning
        When a non-PSD correlation matrix is repaired, with the smallest
        eigenvalue before and the Frobenius distance moved.

    References
    ----------
    Higham, N. J. (2002). Computing the nearest correlation matrix, a problem
    from finance. *IMA Journal of Numerical Analysis* 22(3), 329-343.
    """
    tol = _positive_number(tol, "tol")
    vol = _volatility_values(volatility)
    if not isinstance(correlation, pd.DataFrame):
        raise InputError(
            "correlation must be a pandas DataFrame labelled by asset on both axes, "
            f"got {type(correlation).__name__}"
        )
    validation.labels(correlation.index, what="correlation (rows)")
    validation.labels(correlation.columns, what="correlation (columns)")
    assets = vol.index
    for axis, labels in (("rows", correlation.index), ("columns", correlation.columns)):
        missing = assets.difference(labels, sort=False)
        extra = labels.difference(assets, sort=False)
        if len(missing) or len(extra):
            raise InputError(
                f"correlation {axis} do not match the volatility assets: missing "
                f"{_names(missing) or '-'}; extra {_names(extra) or '-'}"
            )
    r, _ = _square_values(correlation.loc[assets, assets], "correlation")
    n = len(assets)
    off = np.abs(np.diag(r) - 1.0) > tol
    if off.any():
        i = int(np.argmax(off))
        raise InputError(
            f"correlation diagonal must be 1; {assets[i]} has {r[i, i]:.6g}"
            + (f" ({int(off.sum())} assets in all)" if off.sum() > 1 else "")
        )
    gap = np.abs(r - r.T)
    if gap.max() > tol:
        i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
        i, j = min(i, j), max(i, j)
        raise InputError(
            f"correlation is not symmetric: ({assets[i]}, {assets[j]}) = {r[i, j]:.6g} but "
            f"({assets[j]}, {assets[i]}) = {r[j, i]:.6g}"
        )
    r = _symmetric(r)
    big = np.abs(r) > 1.0 + tol
    if big.any():
        i, j = np.argwhere(big)[0]
        raise InputError(
            f"correlation must be in [-1, 1]; ({assets[i]}, {assets[j]}) = {r[i, j]:.6g}"
        )
    np.fill_diagonal(r, 1.0)
    w_min = float(np.linalg.eigvalsh(r).min()) if n else 0.0
    if w_min < -tol:
        if strict:
            raise InputError(
                f"correlation matrix is not positive semidefinite (smallest eigenvalue "
                f"{w_min:.6g}); fix it or pass strict=False to repair it"
            )
        repaired = _nearest_correlation(r, tol, 1000)
        distance = float(np.linalg.norm(repaired - r))
        warnings.warn(
            f"correlation matrix is not positive semidefinite (smallest eigenvalue {w_min:.6g}); "
            f"replaced by the nearest correlation matrix (Higham 2002), Frobenius distance "
            f"moved {distance:.6g}",
            RuntimeWarning,
            stacklevel=2,
        )
        r = repaired
    v = vol.to_numpy()
    cov = r * np.outer(v, v)
    np.fill_diagonal(cov, v * v)
    return frame(_symmetric(cov), assets)
