"""One set of input checks for covariances, asset labels, vectors by asset and numbers.

Every package checks its inputs here, so that a matrix or a Series gets the
same verdict, and the same message, wherever it is passed. One rule each:

* **labels** are unique, and two sets of labels are matched *by name*,
  whatever their order; the ids missing from one side or unknown to the
  other are named (at most :data:`NAMES_SHOWN` of each, then a count).
* **numbers** are real (not bool, not text) and finite; NaN and inf are
  named by asset.
* a **covariance** is a DataFrame labelled by the same asset ids on both
  axes (columns in any order: they are put in the rows' order, or in the
  order asked for), numeric, finite, symmetric and positive semidefinite,
  both to a tolerance relative to its scale ``s = max_ij |C_ij|`` (for a
  positive semidefinite matrix, its largest variance):

  - symmetric: ``max_ij |C_ij - C_ji| <= SYMMETRY_RTOL * s``; the matrix
    returned is ``(C + C') / 2``;
  - variances: ``C_ii >= -PSD_RTOL * s`` (a variance between that bound and
    zero, a rounding error, is returned as zero);
  - positive semidefinite: ``lambda_min >= -PSD_RTOL * s``.

  Both tolerances are relative, so multiplying a matrix by any positive
  number (annualizing it, expressing it in percent squared) never changes the
  verdict, and neither does listing its assets in another order.

A :class:`~optimizer.riskmodel.FactorCovariance` is validated when it is made
(with the same rules on its factor covariance) and is accepted wherever a
covariance is.

This module imports nothing from ``models`` or ``scenarios``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.linalg import lapack

from optimizer.errors import InputError

if TYPE_CHECKING:  # imported lazily at run time: optimizer.riskmodel imports this module
    from optimizer.riskmodel import FactorCovariance

__all__ = [
    "NAMES_SHOWN",
    "PSD_RTOL",
    "SYMMETRY_RTOL",
    "covariance",
    "covariance_or_factors",
    "covariance_values",
    "finite_frame",
    "finite_number",
    "is_numeric",
    "is_real",
    "labels",
    "names",
    "real_number",
    "series",
    "vector",
]

#: Largest asymmetry ``|C_ij - C_ji|`` accepted, relative to the covariance's
#: scale ``s = max |C_ij|`` (dimensionless). Round-off in an estimator is ~1e-16.
SYMMETRY_RTOL = 1e-8
#: Most negative eigenvalue (and variance) accepted, relative to the same scale
#: ``s``: ``lambda_min >= -PSD_RTOL * s``. Well above the round-off of an
#: eigenvalue solver (~ n * 1e-16 * s), well below any real modelling error.
PSD_RTOL = 1e-8
#: Asset ids listed in a message before the rest are counted ("and 12 more").
NAMES_SHOWN = 20


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def names(ids: Iterable[Hashable], limit: int = NAMES_SHOWN) -> str:
    """``"A, B, C"``; past ``limit`` ids, ``"A, B and 7 more"``.

    Parameters
    ----------
    ids : iterable of hashable
        Asset ids (or any labels).
    limit : int
        Most ids written out.

    Returns
    -------
    str
    """
    items = [str(i) for i in ids]
    text = ", ".join(items[:limit])
    if len(items) > limit:
        text += f" and {len(items) - limit} more"
    return text


def _mismatch(what: str, have: pd.Index, against: str, want: pd.Index) -> InputError | None:
    """The error for labels ``have`` (of ``what``) that are not the set ``want`` (of ``against``)."""
    missing = want.difference(have, sort=False)
    extra = have.difference(want, sort=False)
    if not (len(missing) or len(extra)):
        return None
    parts = []
    if len(missing):
        parts.append(f"missing from {what}: {names(missing)}")
    if len(extra):
        parts.append(f"in {what} but not in {against}: {names(extra)}")
    return InputError(f"{what} and {against} name different assets: " + "; ".join(parts))


# --------------------------------------------------------------------------------------------
# Labels and numbers
# --------------------------------------------------------------------------------------------


def labels(
    index: Iterable[Hashable],
    *,
    what: str,
    assets: pd.Index | None = None,
    against: str = "the assets",
) -> pd.Index:
    """Check asset ids: no duplicates and, with ``assets``, the same ids in any order.

    Parameters
    ----------
    index : pandas.Index or iterable of hashable, shape (n,)
        The ids to check.
    what : str, keyword-only
        What they label, for the message (``"weights"``, ``"cov rows"``).
    assets : pandas.Index, optional, keyword-only
        The ids expected (unique), in any order.
    against : str, keyword-only
        What ``assets`` label, for the message (``"cov"``, ``"mu"``).

    Returns
    -------
    pandas.Index, shape (n,)
        ``index`` as an Index, in its own order.

    Raises
    ------
    InputError
        ``"{what} has duplicate asset ids: A"``, or ``"{what} and {against}
        name different assets: missing from {what}: C; in {what} but not in
        {against}: D"``.
    """
    idx = index if isinstance(index, pd.Index) else pd.Index(list(index))
    if not idx.is_unique:
        dup = idx[idx.duplicated()].unique()
        raise InputError(f"{what} has duplicate asset ids: {names(dup)}")
    if assets is not None and not idx.equals(assets):
        err = _mismatch(what, idx, against, pd.Index(assets))
        if err is not None:
            raise err
    return idx


def real_number(value: object, *, what: str) -> float:
    """A real number as a float, NaN and inf included (the caller checks its range).

    Parameters
    ----------
    value : object
        An int, float or numpy scalar; bool, text and None are refused.
    what : str, keyword-only
        Its name, for the message.

    Returns
    -------
    float

    Raises
    ------
    InputError
        ``"{what} must be a number, got '0.5'"``.
    """
    if value is None or not is_real(value):
        raise InputError(f"{what} must be a number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def finite_number(value: object, *, what: str, positive: bool = False) -> float:
    """A real, finite number (positive if asked) as a float.

    Parameters
    ----------
    value : object
        An int, float or numpy scalar; bool and text are refused.
    what : str, keyword-only
        Its name, for the message (``"risk_aversion"``).
    positive : bool, keyword-only
        Require ``value > 0``.

    Returns
    -------
    float

    Raises
    ------
    InputError
        ``"{what} must be a number, got 'x'"`` (``"a positive number"`` when
        ``positive``); ``"{what} must be finite, got nan"``; or, when
        ``positive``, ``"{what} must be a positive finite number, got 0.0"``.
    """
    kind = "a positive number" if positive else "a number"
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InputError(f"{what} must be {kind}, got {value!r}")
    out = float(value)
    if positive and not (math.isfinite(out) and out > 0):
        raise InputError(f"{what} must be a positive finite number, got {value!r}")
    if not math.isfinite(out):
        raise InputError(f"{what} must be finite, got {value!r}")
    return out


def is_real(value: object) -> bool:
    """True for None (a missing number) and real numbers; False for bool and text."""
    return value is None or (
        isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    )


def is_numeric(values: pd.Series) -> bool:
    """Numbers (not bool): a numeric dtype, or an object column of reals (None is NaN).

    Parameters
    ----------
    values : pandas.Series, shape (n,)

    Returns
    -------
    bool
        False for text, bool or mixed values (``pd.Series(["0.1"])`` is not numeric).
    """
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return False
    if pd.api.types.is_numeric_dtype(dtype):
        return True
    return pd.api.types.is_object_dtype(dtype) and all(is_real(v) for v in values)


def _non_finite(what: str, values: np.ndarray, rows: pd.Index, cols: pd.Index) -> InputError:
    bad = ~np.isfinite(values)
    i, j = np.argwhere(bad)[0]
    return InputError(
        f"{what} has NaN or inf values for assets: {names(rows[bad.any(axis=1)])} "
        f"(first at ({rows[i]}, {cols[j]}))"
    )


def finite_frame(frame: pd.DataFrame, *, what: str) -> np.ndarray:
    """The values of a numeric, finite DataFrame (rows by asset), as a fresh float array.

    Parameters
    ----------
    frame : pandas.DataFrame, shape (n, k)
        Rows labelled by asset (e.g. factor loadings).
    what : str, keyword-only
        Its name, for the message.

    Returns
    -------
    numpy.ndarray, shape (n, k)

    Raises
    ------
    InputError
        Not a DataFrame; non-numeric columns (named); NaN or inf (naming the
        rows and the first entry).
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    bad = [str(c) for c, col in frame.items() if not is_numeric(col)]
    if bad:
        raise InputError(f"{what} must be numeric; non-numeric columns: {names(bad)}")
    values = np.array(frame.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    if not np.isfinite(values).all():
        raise _non_finite(what, values, frame.index, frame.columns)
    return values


# --------------------------------------------------------------------------------------------
# Vectors by asset
# --------------------------------------------------------------------------------------------


def _as_series(values: object, what: str) -> pd.Series:
    if isinstance(values, pd.Series):
        return values
    if isinstance(values, Mapping):
        out = pd.Series(dict(values), dtype=object)
        if not is_numeric(out):  # text ("0.5") and bool are refused, not converted
            raise InputError(f"{what} must map asset ids to numbers, got {dict(values)!r}")
        return out.astype(float)
    raise InputError(
        f"{what} must be a pandas Series labelled by asset (or a mapping), "
        f"got {type(values).__name__}"
    )


def _vector(s: pd.Series, assets: pd.Index | None, what: str, against: str) -> np.ndarray:
    """The checks of :func:`vector` on a Series."""
    raw = s.to_numpy()
    numeric = raw.dtype.kind in "fiu" or is_numeric(s)
    if numeric and assets is not None and s.index.equals(assets):
        out = np.array(raw, dtype=float)
        if np.isfinite(out).all():  # the common case: nothing to reorder or name
            return out
    labels(s.index, what=what)
    if not numeric:
        raise InputError(f"{what} must be numeric, got dtype {s.dtype}")
    out = np.array(s.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    order = s.index
    if assets is not None and not s.index.equals(assets):
        order = pd.Index(assets)
        err = _mismatch(what, s.index, against, order)
        if err is not None:
            raise err
        out = out[s.index.get_indexer(order)]
    bad = ~np.isfinite(out)
    if bad.any():
        raise InputError(f"{what} has NaN or inf values for assets: {names(order[bad])}")
    return out


def vector(
    values: pd.Series | Mapping[Hashable, float],
    assets: pd.Index | None = None,
    *,
    what: str,
    against: str = "cov",
) -> np.ndarray:
    """A Series (or mapping) by asset as a float vector, matched to ``assets`` by name.

    Parameters
    ----------
    values : pandas.Series or mapping, shape (n,)
        Numbers by asset id (weights, expected returns, budgets), in any order.
    assets : pandas.Index, shape (n,), optional
        The unique asset ids wanted, in the order wanted; ``None`` keeps the
        order of ``values``.
    what : str, keyword-only
        The name of ``values``, for the message (``"weights"``).
    against : str, keyword-only
        Where ``assets`` come from, for the message (``"cov"``).

    Returns
    -------
    numpy.ndarray, shape (n,)
        A fresh float array in the order of ``assets``.

    Raises
    ------
    InputError
        Not a Series or mapping; duplicate ids; non-numeric values; ids
        missing from ``values`` or not in ``assets`` (both named); NaN or inf
        (naming the assets).
    """
    return _vector(_as_series(values, what), assets, what, against)


def series(
    values: pd.Series | Mapping[Hashable, float],
    assets: pd.Index | None = None,
    *,
    what: str,
    against: str = "cov",
) -> pd.Series:
    """Like :func:`vector`, as a float Series labelled by ``assets`` (a copy).

    Parameters
    ----------
    values : pandas.Series or mapping, shape (n,)
        Numbers by asset id, in any order.
    assets : pandas.Index, shape (n,), optional
        The asset ids wanted, in the order wanted; ``None`` keeps the order of
        ``values``.
    what, against : str, keyword-only
        Names for the messages (see :func:`vector`).

    Returns
    -------
    pandas.Series, shape (n,)
        Float values indexed by ``assets`` (or by the ids of ``values``), with
        the name of ``values``.

    Raises
    ------
    InputError
        As :func:`vector`.
    """
    s = _as_series(values, what)
    out = _vector(s, assets, what, against)
    index = s.index if assets is None else pd.Index(assets)
    return pd.Series(out, index=index.copy(), name=s.name)


# --------------------------------------------------------------------------------------------
# Covariances
# --------------------------------------------------------------------------------------------


def _factor_type() -> type:
    from optimizer.riskmodel import FactorCovariance

    return FactorCovariance


def _dense_values(
    cov: pd.DataFrame, what: str, assets: pd.Index | None, against: str, psd: bool
) -> tuple[pd.Index, np.ndarray]:
    """The checks of :func:`covariance` on a DataFrame: (asset order, fresh symmetric values)."""
    rows, cols = cov.shape
    if rows != cols:
        raise InputError(f"{what} must be square, got shape {cov.shape}")
    if rows == 0:
        raise InputError(f"{what} is empty (no assets)")
    index, columns = cov.index, cov.columns
    if assets is None:
        labels(index, what=f"{what} rows")
        if not columns.equals(index):
            labels(columns, what=f"{what} columns")
            only_rows = index.difference(columns, sort=False)
            only_cols = columns.difference(index, sort=False)
            if len(only_rows) or len(only_cols):
                raise InputError(
                    f"{what} rows and columns name different assets: only in rows: "
                    f"{names(only_rows) or '-'}; only in columns: {names(only_cols) or '-'}"
                )
        order = index
    else:
        order = assets if isinstance(assets, pd.Index) else pd.Index(assets)
        labels(index, what=f"{what} rows", assets=order, against=against)
        labels(columns, what=f"{what} columns", assets=order, against=against)
    raw = cov.to_numpy()
    if raw.dtype.kind not in "fiu":  # object, bool or mixed columns: name the culprits
        bad = [str(c) for c, col in cov.items() if not is_numeric(col)]
        if bad:
            raise InputError(f"{what} must be numeric; non-numeric columns: {names(bad)}")
        raw = cov.to_numpy(dtype=float, na_value=np.nan)
    if index.equals(order) and columns.equals(order):
        values = np.array(raw, dtype=float, order="C")  # our own copy
    else:
        values = np.asarray(raw, dtype=float)[
            np.ix_(index.get_indexer(order), columns.get_indexer(order))
        ]
    if not np.isfinite(values).all():
        raise _non_finite(what, values, order, order)
    scale = max(float(values.max()), -float(values.min()))
    if not np.array_equal(values, values.T):  # exact symmetry is the common case
        asym = np.abs(values - values.T)
        if float(asym.max()) > SYMMETRY_RTOL * scale:
            i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
            raise InputError(
                f"{what} is not symmetric: entry ({order[i]}, {order[j]}) = {values[i, j]:.6g} "
                f"but ({order[j]}, {order[i]}) = {values[j, i]:.6g} (tolerance "
                f"{SYMMETRY_RTOL:g} x the largest |entry| {scale:.3g})"
            )
        values = np.ascontiguousarray((values + values.T) / 2.0)
    tol = PSD_RTOL * scale
    diag = np.diag(values)
    if (diag < 0).any():
        neg = diag < -tol
        if neg.any():
            raise InputError(
                f"{what} has negative variances for assets: {names(order[neg])}, so it is "
                "not positive semidefinite; repair it with models.covariance.nearest_psd"
            )
        np.fill_diagonal(values, np.maximum(diag, 0.0))  # rounding: a zero variance
    if psd:
        # a Cholesky factorization is the cheap proof of definiteness; a matrix that is
        # only semidefinite (or not at all) gets the eigenvalue test
        _, info = lapack.dpotrf(values, lower=1, clean=0, overwrite_a=0)
        if info != 0:
            lam = float(np.linalg.eigvalsh(values)[0])
            if lam < -tol:
                raise InputError(
                    f"{what} is not positive semidefinite: smallest eigenvalue {lam:.3g} "
                    f"(tolerance {-tol:.3g}, that is {PSD_RTOL:g} x the largest |entry| "
                    f"{scale:.3g}); repair it with models.covariance.nearest_psd"
                )
    return order, values


def covariance_or_factors(
    cov: pd.DataFrame | FactorCovariance,
    *,
    what: str = "cov",
    assets: pd.Index | None = None,
    against: str = "the assets",
) -> pd.DataFrame | FactorCovariance:
    """A validated covariance, a factor model kept in factor form.

    What the convex core needs: a :class:`~optimizer.riskmodel.FactorCovariance`
    (validated when it was made) is returned as it is, or in the order of
    ``assets``; a DataFrame goes through :func:`covariance`.

    Parameters
    ----------
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Covariance of asset returns (annualized, decimals squared), labelled
        by asset on both axes, columns in any order.
    what : str, keyword-only
        Its name, for the messages.
    assets : pandas.Index, shape (n,), optional, keyword-only
        Unique asset ids wanted, in the order wanted; the covariance must name
        exactly these. ``None``: the order of its rows.
    against : str, keyword-only
        Where ``assets`` come from, for the messages.

    Returns
    -------
    pandas.DataFrame, shape (n, n), or FactorCovariance
        The DataFrame's index and columns are equal (the order of ``assets``
        or of the rows); a factor model's ``assets`` are in that order.
        Its asset ids are ``result.index`` or ``result.assets``.

    Raises
    ------
    InputError
        As :func:`covariance`; for a factor model, assets differing from
        ``assets`` (named).
    """
    factor = _factor_type()
    if isinstance(cov, factor):
        if assets is None or cov.assets.equals(assets):
            return cov
        labels(cov.assets, what=f"{what} assets", assets=pd.Index(assets), against=against)
        return cov.reindex(pd.Index(assets))
    return covariance(cov, what=what, assets=assets, against=against)


def covariance(
    cov: pd.DataFrame | FactorCovariance,
    *,
    what: str = "cov",
    assets: pd.Index | None = None,
    against: str = "the assets",
    psd: bool = True,
) -> pd.DataFrame:
    """A validated covariance matrix, rows and columns in one order.

    Parameters
    ----------
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Covariance of asset returns (annualized, decimals squared, though the
        checks hold at any scale), labelled by the same asset ids on both
        axes, columns in any order. A factor model gives its dense form.
    what : str, keyword-only
        Its name, for the messages (``"cov"``, ``"factor_cov"``).
    assets : pandas.Index, shape (n,), optional, keyword-only
        Unique asset ids wanted, in the order wanted: rows and columns must
        each name exactly these (in any order). ``None``: the order of the
        rows, and the columns must name the same ids.
    against : str, keyword-only
        Where ``assets`` come from, for the messages (``"mu"``, ``"weights"``).
    psd : bool, keyword-only
        Check positive semidefiniteness (eigenvalues). ``False`` for a caller
        that repairs the matrix itself; negative variances are refused anyway.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        A fresh float copy, ``(C + C') / 2``, indexed by ``assets`` (or by the
        rows' ids) on both axes; a variance within the tolerance below zero
        is set to zero. For exactly symmetric input the numbers are the
        input's.

    Raises
    ------
    InputError
        Each naming the culprit: not a DataFrame (or FactorCovariance); not
        square; empty; duplicate ids (``"{what} rows has duplicate asset ids:
        A"``); rows and columns on different ids (``"only in rows: D; only in
        columns: E"``) or, with ``assets``, ids missing or unknown (``"missing
        from {what} rows: C; in {what} rows but not in {against}: G"``);
        non-numeric columns; NaN or inf (the assets and the first entry);
        asymmetry beyond :data:`SYMMETRY_RTOL` (the worst pair and both
        values); a variance below ``-PSD_RTOL * s`` (the assets); a smallest
        eigenvalue below ``-PSD_RTOL * s`` (the figure and the tolerance,
        suggesting ``models.covariance.nearest_psd``).

    Notes
    -----
    ``s = max_ij |C_ij|``. A Cholesky factorization that succeeds proves
    the matrix positive definite; only when it fails (a singular or
    indefinite matrix) are the eigenvalues computed. Scaling the matrix by
    any positive factor, or permuting its assets (rows, columns or both),
    never changes the verdict.
    """
    order, values = covariance_values(cov, what=what, assets=assets, against=against, psd=psd)
    return pd.DataFrame(values, index=order.copy(), columns=order.copy(), copy=False)


def covariance_values(
    cov: pd.DataFrame | FactorCovariance,
    *,
    what: str = "cov",
    assets: pd.Index | None = None,
    against: str = "the assets",
    psd: bool = True,
) -> tuple[pd.Index, np.ndarray]:
    """:func:`covariance` as its asset ids and a fresh array, without building a DataFrame.

    Parameters
    ----------
    cov, what, assets, against, psd
        As :func:`covariance`.

    Returns
    -------
    assets : pandas.Index, shape (n,)
        The order of the rows and columns (``assets`` if given).
    values : numpy.ndarray, shape (n, n)
        A fresh, C-contiguous, symmetric float array (units of ``cov``).

    Raises
    ------
    InputError
        As :func:`covariance`.
    """
    if isinstance(cov, _factor_type()):
        model = covariance_or_factors(cov, what=what, assets=assets, against=against)
        return model.assets, np.array(model.cov.to_numpy(), dtype=float, order="C")
    if not isinstance(cov, pd.DataFrame):
        raise InputError(
            f"{what} must be a pandas DataFrame labelled by asset on both axes or a "
            f"FactorCovariance, got {type(cov).__name__}"
        )
    return _dense_values(cov, what, assets, against, psd)
