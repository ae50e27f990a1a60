"""Matrix repair and capital-market assumptions: ``nearest_psd`` and ``from_cma`` (private).

Public through :mod:`models.covariance`. The numerical kernels (eigenvalue
clipping, Higham's alternating projections) live in :mod:`models._shrinkage`.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Hashable, Mapping
from typing import Literal, overload

import numpy as np
import pandas as pd

from models import _shrinkage
from models._common import EPS, frame, name_list, positive_number, symmetrize
from optimizer import validation
from optimizer.errors import InputError

_KINDS = ("covariance", "correlation")

#: A pairwise covariance whose smallest eigenvalue is below ``-REPAIR_TOL`` times its largest
#: absolute eigenvalue is repaired (rounding of a PSD matrix stays well inside this).
REPAIR_TOL = 1e-10
#: Floor of the repaired eigenvalues, relative to the largest one: the repaired matrix is
#: positive definite (as R's ``Matrix::nearPD`` with ``posd.tol``), not singular.
REPAIR_FLOOR = 1e-8


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
                f"{name_list(only_rows) or '-'}; columns only: {name_list(only_cols) or '-'}"
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


def _is_psd(a: np.ndarray, tol: float) -> bool:
    """Smallest eigenvalue ``>= -tol`` times the largest absolute one."""
    w = np.linalg.eigvalsh(symmetrize(a))
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
    tol = positive_number(tol, "tol")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise InputError(f"max_iter must be a positive int, got {max_iter!r}")
    a, labels = _square_values(matrix, "matrix")
    scale = max(float(np.abs(a).max()), EPS)
    symmetric = bool(np.abs(a - a.T).max() <= tol * scale)
    unit = kind == "covariance" or bool(np.abs(np.diag(a) - 1.0).max() <= tol)
    if symmetric and unit and _is_psd(a, tol):
        out = a.copy()
    elif kind == "covariance":
        out = _shrinkage.clip_eigenvalues(symmetrize(a))
    else:
        out = _nearest_correlation(symmetrize(a), tol, int(max_iter))
    result = frame(out, labels)
    if return_distance:
        return result, float(np.linalg.norm(a - out))
    return result


def repair_pairwise(cov: np.ndarray, what: str) -> np.ndarray:
    """Repair a pairwise covariance that is not positive semidefinite, with a warning.

    Parameters
    ----------
    cov : numpy.ndarray, shape (n, n)
        Symmetric covariance (annualized, decimals squared) estimated pair by
        pair (:mod:`models._ragged`).
    what : str
        The estimator, for the warning (``"covariance.sample(overlap='pairwise')"``).

    Returns
    -------
    numpy.ndarray, shape (n, n)
        ``cov`` itself when its smallest eigenvalue is at least
        ``-REPAIR_TOL`` times its largest absolute one; otherwise the nearest
        symmetric matrix (Frobenius norm) whose eigenvalues are at least
        ``REPAIR_FLOOR`` times the largest: :func:`nearest_psd`'s eigenvalue
        clipping (Higham 1988) with a positive floor, so that the repaired
        estimate is positive definite.

    Warns
    -----
    UserWarning
        When repaired: the smallest eigenvalue before (the largest clip), how
        many eigenvalues were clipped, the Frobenius distance moved (absolute
        and relative to the matrix's norm), all in the units of ``cov``. The
        scenario runs record it under ``repairs`` in report.json and
        manifest.json (``scenarios.outputs.run_notes``).
    """
    w = np.linalg.eigvalsh(cov)
    top = float(np.abs(w).max())
    if not float(w[0]) < -REPAIR_TOL * top:
        return cov
    floor = REPAIR_FLOOR * float(w[-1])
    out = _shrinkage.clip_eigenvalues(cov, floor)
    distance = float(np.linalg.norm(cov - out))
    share = distance / float(np.linalg.norm(cov))
    k = int((w < floor).sum())
    warnings.warn(
        f"{what}: the pairwise covariance is not positive semidefinite (smallest eigenvalue "
        f"{float(w[0]):.6g}, largest {float(w[-1]):.6g}; {k} of {len(w)} eigenvalues below "
        f"the floor {floor:.3g}); repaired to the nearest positive definite matrix by clipping "
        f"them to the floor ({REPAIR_FLOOR:g} x the largest; Higham 1988), Frobenius distance "
        f"moved {distance:.6g} ({share:.3g} of its norm); the clipped directions are nearly "
        "riskless in the repaired estimate: prefer longer common histories or "
        "covariance.ledoit_wolf(overlap='pairwise'), which shrinks toward a target",
        UserWarning,
        stacklevel=3,
    )
    return out


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
    text = [str(a) for a, v in volatility.items() if not validation.is_real(v)]
    if text:  # text is not a number, even when it reads as one ("0.1")
        raise InputError(
            f"volatility must be numbers by asset; not a number for: {name_list(text)}"
        )
    values = volatility.astype(float)
    bad = values.index[~np.isfinite(values.to_numpy())]
    if len(bad):
        raise InputError(f"volatility is missing, non-numeric or infinite for: {name_list(bad)}")
    bad = values.index[values.to_numpy() <= 0]
    if len(bad):
        raise InputError(
            f"volatility must be > 0 (annualized, decimals); not so for: {name_list(bad)}"
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
    tol = positive_number(tol, "tol")
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
                f"{name_list(missing) or '-'}; extra {name_list(extra) or '-'}"
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
    r = symmetrize(r)
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
    return frame(symmetrize(cov), assets)
