"""Validation and calendar helpers shared by the estimators (private)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer import validation
from optimizer.errors import InputError

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
