"""Validation, calendar and matrix helpers shared by the estimators (private)."""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np
import pandas as pd

from optimizer import validation
from optimizer.errors import InputError

#: Machine epsilon of float64, the unit of the rounding tolerances.
EPS = float(np.finfo(float).eps)

#: Periods per year by observation spacing; the keys are median spacings in days.
_FREQUENCIES = (
    (1.0, 5.0, 252, "daily"),
    (5.0, 10.0, 52, "weekly"),
    (25.0, 35.0, 12, "monthly"),
    (85.0, 95.0, 4, "quarterly"),
    (360.0, 370.0, 1, "annual"),
)


def infer_periods_per_year(index: pd.Index) -> int:
    """Infer observations per year from a DatetimeIndex.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        Observation dates, at least two.

    Returns
    -------
    int
        252 for daily (business-day) data, 52 weekly, 12 monthly, 4 quarterly,
        1 annual.

    Raises
    ------
    InputError
        If the index is not a DatetimeIndex or its spacing matches none of
        these frequencies; pass ``periods_per_year=`` explicitly then.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise InputError(
            "cannot infer periods per year: the index is not a DatetimeIndex; "
            "pass periods_per_year= explicitly"
        )
    if len(index) < 2:
        raise InputError("cannot infer periods per year from fewer than 2 dates")
    days = np.diff(index.values).astype("timedelta64[s]").astype(float) / 86_400.0
    median = float(np.median(days))
    for low, high, periods, _ in _FREQUENCIES:
        if low <= median <= high:
            return periods
    raise InputError(
        f"cannot infer periods per year: median spacing of the dates is {median:.1f} days, "
        "which is not daily, weekly, monthly, quarterly or annual; pass periods_per_year="
    )


def resolve_periods(returns: pd.DataFrame, periods_per_year: float | None) -> float:
    """Return ``periods_per_year`` if given (validated), else infer it from the index."""
    if periods_per_year is None:
        return float(infer_periods_per_year(returns.index))
    value = float(periods_per_year)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    return value


def validate_returns(returns: pd.DataFrame, *, min_obs: int = 2) -> np.ndarray:
    """Check a returns table and return its values as a float array.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), dates by asset ids.
    min_obs : int
        Fewest rows accepted.

    Returns
    -------
    numpy.ndarray, shape (T, n)

    Raises
    ------
    InputError
        Not a DataFrame, no columns, duplicate asset ids, non-numeric
        columns, too few rows, or NaN / inf values (naming the assets).
    """
    if not isinstance(returns, pd.DataFrame):
        raise InputError(f"returns must be a pandas DataFrame, got {type(returns).__name__}")
    if returns.shape[1] == 0:
        raise InputError("returns has no columns (assets)")
    validation.labels(returns.columns, what="returns")
    bad = [
        str(c)
        for c, dtype in returns.dtypes.items()
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    ]
    if bad:
        raise InputError(f"returns has non-numeric columns: {', '.join(bad)}")
    if len(returns) < min_obs:
        raise InputError(f"returns has {len(returns)} observations; at least {min_obs} are needed")
    values = returns.to_numpy(dtype=float)
    finite = np.isfinite(values)
    if not finite.all():
        cols = returns.columns[~finite.all(axis=0)]
        raise InputError(
            "returns has NaN or inf values for assets: "
            + ", ".join(map(str, cols))
            + " (clean them with returns.from_prices(missing=...))"
        )
    return values


def frame(values: np.ndarray, labels: pd.Index) -> pd.DataFrame:
    """A square DataFrame labelled by asset on both axes."""
    return pd.DataFrame(values, index=labels.copy(), columns=labels.copy())


def name_list(labels: Iterable[object], limit: int = 8) -> str:
    """Comma-separated labels, at most ``limit`` of them."""
    items = [str(x) for x in labels]
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def prepare_returns(
    returns: pd.DataFrame, periods_per_year: float | None
) -> tuple[np.ndarray, pd.Index, float]:
    """Validated values (T, n), asset labels and periods per year."""
    values = validate_returns(returns, min_obs=2)
    return values, returns.columns, resolve_periods(returns, periods_per_year)


def demean(x: np.ndarray) -> np.ndarray:
    """Columns minus their means."""
    return x - x.mean(axis=0)


def symmetrize(a: np.ndarray) -> np.ndarray:
    """The symmetric part ``(A + A') / 2``."""
    return (a + a.T) / 2.0


def positive_number(value: object, name: str) -> float:
    """``value`` as a float, or an InputError naming ``name`` unless it is finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    out = float(value)
    if not (np.isfinite(out) and out > 0):
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return out


def checked_eigh(a: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.linalg.eigh``, a LAPACK failure raised as an InputError naming ``what``."""
    try:
        return np.linalg.eigh(a)
    except np.linalg.LinAlgError as exc:  # pragma: no cover - LAPACK failure on finite input
        raise InputError(f"{what}: eigendecomposition failed ({exc})") from exc
