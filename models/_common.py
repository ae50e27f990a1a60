"""Validation, calendar and matrix helpers shared by the estimators (private)."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from optimizer import validation
from optimizer.errors import InputError

#: Machine epsilon of float64, the unit of the rounding tolerances.
EPS = float(np.finfo(float).eps)

#: The frequencies that can be inferred: name, periods per year, the band of the MEDIAN spacing
#: (days) that selects it, and the wider band of a single GAP counted as that spacing (holiday
#: shifts, month ends of 27 to 34 days, business quarter and year ends).
_FREQUENCIES = (
    ("daily", 252, (1.0, 5.0), (0.5, 5.5)),
    ("weekly", 52, (5.0, 10.0), (5.5, 10.5)),
    ("monthly", 12, (25.0, 35.0), (24.5, 35.5)),
    ("quarterly", 4, (85.0, 95.0), (80.0, 100.0)),
    ("annual", 1, (360.0, 370.0), (350.0, 380.0)),
)
#: Consecutive gaps of one spacing that make a sustained run (shorter runs are isolated gaps:
#: a market closure, a missing month).
MIN_RUN = 3
#: Largest share of gaps outside the inferred frequency's band (isolated or not).
MAX_OFF_BAND = 0.25
#: Fewest returns a covariance estimator accepts (fewer say nothing about a covariance).
MIN_OBSERVATIONS = 3
#: Median absolute return above which an asset's returns look like percent (50% a period).
PERCENT_MEDIAN = 0.5
#: ... or the share of returns of 100% or more in magnitude (at least PERCENT_COUNT of them)
#: from which they do.
PERCENT_SHARE = 0.1
PERCENT_COUNT = 3
#: A combination of assets counts as having no variance when its variance, in the units of the
#: correlation matrix, is at most this fraction of the largest eigenvalue (numerically singular).
SINGULAR_RTOL = 1e-10


def fmt_date(ts: object) -> str:
    """``YYYY-MM-DD`` for midnight timestamps, the ISO form otherwise."""
    ts = pd.Timestamp(ts)
    if ts == ts.normalize():
        return ts.strftime("%Y-%m-%d")
    return ts.isoformat()


def where(index: pd.Index, pos: int) -> str:
    """``"on 2024-01-31"`` for a DatetimeIndex, ``"at row 3"`` otherwise."""
    if isinstance(index, pd.DatetimeIndex):
        return f"on {fmt_date(index[pos])}"
    return f"at row {pos}"


def _gap_class(days: np.ndarray) -> np.ndarray:
    """Index into :data:`_FREQUENCIES` of each gap's band, -1 for none (irregular)."""
    out = np.full(days.shape, -1)
    for k, (_, _, _, (low, high)) in enumerate(_FREQUENCIES):
        out[(out < 0) & (days >= low) & (days <= high)] = k
    return out


def _class_runs(cls: np.ndarray) -> list[tuple[int, int, int]]:
    """``(first gap, last gap, class)`` of the runs of equal classes, in order."""
    edges = np.flatnonzero(np.diff(cls)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [len(cls)])) - 1
    return [(int(a), int(b), int(cls[a])) for a, b in zip(starts, ends, strict=True)]


def _spacing(cls: int, days: np.ndarray) -> str:
    """``"monthly (28 to 31 days apart)"`` for the gaps of one run."""
    name = _FREQUENCIES[cls][0] if cls >= 0 else "irregular"
    lo, hi = float(days.min()), float(days.max())
    span = f"{lo:g} days" if lo == hi else f"{lo:g} to {hi:g} days"
    return f"{name} ({span} apart)"


def _check_spacing(index: pd.DatetimeIndex, days: np.ndarray) -> None:
    """Raise when the dates change spacing for a sustained run (mixed frequencies)."""
    cls = _gap_class(days)
    runs = [r for r in _class_runs(cls) if r[1] - r[0] + 1 >= MIN_RUN]
    for (a0, a1, ca), (b0, b1, cb) in zip(runs, runs[1:], strict=False):
        if ca == cb:
            continue
        changes = sum(1 for x, y in zip(runs, runs[1:], strict=False) if x[2] != y[2])
        more = f" (and {changes - 1} more changes)" if changes > 1 else ""
        start = fmt_date(index[b0 + 1])
        raise InputError(
            "cannot infer periods per year: the spacing of the dates changes: they are "
            f"{_spacing(ca, days[a0 : a1 + 1])} up to {fmt_date(index[a1 + 1])} and "
            f"{_spacing(cb, days[b0 : b1 + 1])} from {start}{more}; one periods_per_year "
            f"cannot annualize both: split the history at {start}, resample it to one "
            "frequency (e.g. month ends), or pass periods_per_year= explicitly"
        )


def infer_periods_per_year(index: pd.Index) -> int:
    """Infer observations per year from a DatetimeIndex.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        Observation dates, at least two, strictly increasing.

    Returns
    -------
    int
        252 for daily (business-day) data, 52 weekly, 12 monthly, 4 quarterly,
        1 annual.

    Raises
    ------
    InputError
        If the index is not a DatetimeIndex, has fewer than 2 dates, is not
        strictly increasing (naming the date), mixes frequencies (naming the
        date where the spacing changes and both spacings), is irregular, or
        its spacing matches none of these frequencies; pass
        ``periods_per_year=`` explicitly then.

    Notes
    -----
    Each gap between consecutive dates is put in a band: daily 0.5-5.5
    days (weekends and holidays), weekly 5.5-10.5, monthly 24.5-35.5,
    quarterly 80-100, annual 350-380, or none. A run of at least
    :data:`MIN_RUN` consecutive gaps in one band is a sustained spacing;
    two sustained spacings one after the other (monthly, then daily) are an
    error naming the first date of the new spacing. Shorter runs are
    isolated gaps (a market closed for a week, a missing month) and are
    accepted. The frequency is the band of the median gap; more than
    :data:`MAX_OFF_BAND` of the gaps outside that band is an error too.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise InputError(
            "cannot infer periods per year: the index is not a DatetimeIndex; "
            "pass periods_per_year= explicitly"
        )
    if len(index) < 2:
        raise InputError("cannot infer periods per year from fewer than 2 dates")
    days = np.diff(index.values).astype("timedelta64[s]").astype(float) / 86_400.0
    if (days <= 0).any():
        i = int(np.argmax(days <= 0)) + 1
        what = "repeats" if days[i - 1] == 0 else f"comes after {fmt_date(index[i - 1])}"
        raise InputError(
            f"the dates must be strictly increasing: {fmt_date(index[i])} (row {i}) {what}; "
            "sort the rows by date and remove duplicates"
        )
    _check_spacing(index, days)
    median = float(np.median(days))
    for k, (name, periods, (low, high), _) in enumerate(_FREQUENCIES):
        if low <= median <= high:
            off = _gap_class(days) != k
            if off.mean() > MAX_OFF_BAND:
                i = int(np.argmax(off))
                raise InputError(
                    f"cannot infer periods per year: the dates are irregular: {int(off.sum())} "
                    f"of {len(days)} gaps are not {name}, e.g. {days[i]:g} days from "
                    f"{fmt_date(index[i])} to {fmt_date(index[i + 1])}; resample to one "
                    "frequency or pass periods_per_year= explicitly"
                )
            return periods
    raise InputError(
        f"cannot infer periods per year: median spacing of the dates is {median:.1f} days, "
        "which is not daily, weekly, monthly, quarterly or annual; pass periods_per_year="
    )


def resolve_periods(returns: pd.DataFrame, periods_per_year: float | None) -> float:
    """Return ``periods_per_year`` if given (validated, no inference), else infer it from the index."""
    if periods_per_year is None:
        return float(infer_periods_per_year(returns.index))
    try:  # bool and text are refused (True is not 1 observation a year)
        return validation.finite_number(periods_per_year, what="periods_per_year", positive=True)
    except InputError:
        raise InputError(
            f"periods_per_year must be a positive number (observations a year: 12 for monthly "
            f"returns, 252 for daily), got {periods_per_year!r}"
        ) from None


def _percent_like(values: np.ndarray) -> np.ndarray:
    """Per column: do these returns look like percent (see :func:`validate_returns`)?"""
    size = np.abs(values)
    big = (size >= 1.0).sum(axis=0)
    return (np.median(size, axis=0) > PERCENT_MEDIAN) | (
        (big >= PERCENT_COUNT) & (big >= PERCENT_SHARE * len(values))
    )


def _check_simple(values: np.ndarray, index: pd.Index, columns: pd.Index) -> None:
    """Returns at or below -100% are errors; returns that look like percent a warning."""
    percent = _percent_like(values)
    hint = ""
    if percent.any():
        cols = columns[percent]
        size = np.abs(values[:, percent])
        typical = float(np.median(size))
        big = int((size >= 1.0).sum())
        hint = (
            f"the returns of {name_list(cols)} look like percent (median absolute return "
            f"{typical:.3g}, i.e. {typical:.0%} a period; {big} of {size.size} returns at "
            "+/-100% or more): divide them by 100"
        )
    bad = values <= -1.0
    if bad.any():
        hit = np.flatnonzero(bad.any(axis=0))
        parts = []
        for j in hit[:3]:
            i = int(np.argmax(bad[:, j]))
            more = int(bad[:, j].sum()) - 1
            also = f" (and {more} more dates)" if more else ""
            parts.append(f"{columns[j]} {where(index, i)} is {values[i, j]:.2%}{also}")
        others = f"; and {len(hit) - 3} more assets" if len(hit) > 3 else ""
        fix = hint or (
            "check the data (if these are percent, divide them by 100; if they are log "
            "returns, convert them with numpy.expm1)"
        )
        raise InputError(
            "the return of " + "; ".join(parts) + others + ": a simple return cannot be -100% "
            f"or below (the asset would be worth nothing or less); {fix}"
        )
    if hint:
        warnings.warn(
            f"{hint}; they are used as decimals (the rule: a median absolute return above "
            f"{PERCENT_MEDIAN:g}, or a tenth of the returns, at least {PERCENT_COUNT}, at "
            "+/-100% or more)",
            UserWarning,
            stacklevel=4,
        )


def validate_returns(returns: pd.DataFrame, *, min_obs: int = 2, simple: bool = True) -> np.ndarray:
    """Check a returns table and return its values as a float array.

    The one validation of returns: every estimator, the expected-return and
    risk functions and the backtest call it.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), dates by asset ids.
    min_obs : int
        Fewest rows accepted (the estimators use :data:`MIN_OBSERVATIONS`).
    simple : bool
        The returns are simple returns (not log returns): a value at or
        below -1 (-100%) is an error.

    Returns
    -------
    numpy.ndarray, shape (T, n)

    Raises
    ------
    InputError
        Not a DataFrame, no columns, duplicate asset ids, non-numeric
        columns, too few rows, NaN / inf values (naming the assets), or a
        simple return at or below -100% (naming the asset and date, with the
        hint "divide them by 100" when the returns look like percent).

    Warns
    -----
    UserWarning
        When an asset's returns look like percent but none is at or below
        -100%: their median absolute value is above
        :data:`PERCENT_MEDIAN` (0.5, i.e. 50% a period, which no asset's
        decimal returns reach at any frequency up to annual), or at least
        :data:`PERCENT_SHARE` of them (and at least :data:`PERCENT_COUNT`)
        are +/-100% or more. They are used as given (decimals).
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
        raise InputError(
            f"returns has {len(returns)} observations; at least {min_obs} are needed "
            "(use a longer history)"
        )
    values = returns.to_numpy(dtype=float)
    finite = np.isfinite(values)
    if not finite.all():
        cols = returns.columns[~finite.all(axis=0)]
        ragged = (
            "; for histories of different lengths (NaN before an asset's first return), "
            "covariance.sample, ewma and ledoit_wolf and expected_returns.historical_mean and "
            "ewma_mean take overlap='pairwise'"
            if np.isnan(values).any()
            else ""
        )
        raise InputError(
            "returns has NaN or inf values for assets: "
            + ", ".join(map(str, cols))
            + f" (clean them with returns.from_prices(missing=...){ragged})"
        )
    if simple and len(values):
        _check_simple(values, returns.index, returns.columns)
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
    values = validate_returns(returns, min_obs=MIN_OBSERVATIONS)
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


def constant_assets(x: np.ndarray) -> np.ndarray:
    """Boolean mask (n,) of the columns of ``x`` (T, n) whose values never change."""
    return np.ptp(x, axis=0) == 0.0


def reject_constant(x: np.ndarray, labels: pd.Index, why: str) -> None:
    """Raise naming the assets whose returns never change, with ``why`` that is an error."""
    flat = constant_assets(x)
    if flat.any():
        raise InputError(
            f"returns are constant (zero variance) for assets: {name_list(labels[flat])}; {why}"
        )


def degeneracy(
    x: np.ndarray, labels: pd.Index, cov: np.ndarray | None = None, *, pairs_only: bool = False
) -> str:
    """What makes a covariance estimate singular, or ``""``.

    Parameters
    ----------
    x : numpy.ndarray, shape (T, n)
        Periodic returns.
    labels : pandas.Index, shape (n,)
        Asset ids.
    cov : numpy.ndarray, shape (n, n), optional
        The (periodic) covariance to examine; the sample covariance of ``x``
        by default.
    pairs_only : bool
        Look only for pairs of perfectly correlated assets (cheaper, and all
        that can be told apart when ``T - 1 < n``), not for every linear
        combination.

    Returns
    -------
    str
        ``""`` when nothing is wrong; otherwise a description naming the
        constant assets (zero variance, e.g. a stale price) and the assets
        in combinations with no variance (duplicated or linearly dependent
        returns). A combination has "no variance" when its eigenvalue of the
        correlation matrix is at most :data:`SINGULAR_RTOL` times the
        largest.
    """
    if cov is None:
        y = demean(x)
        cov = symmetrize(y.T @ y)
    flat = constant_assets(x) | ~(np.diag(cov) > 0)
    parts = []
    if flat.any():
        parts.append(
            f"returns are constant (zero variance) for assets: {name_list(labels[flat])} "
            "(a stale price?)"
        )
    keep = np.flatnonzero(~flat)
    if len(keep) >= 2:
        sd = np.sqrt(np.diag(cov)[keep])
        corr = symmetrize(cov[np.ix_(keep, keep)] / np.outer(sd, sd))
        if pairs_only:
            gap = 1.0 - np.abs(corr[np.triu_indices(len(keep), 1)])
            rows, cols = np.triu_indices(len(keep), 1)
            hit = np.flatnonzero(gap <= 2.0 * SINGULAR_RTOL)
            if len(hit):
                shown = [f"{labels[keep[rows[h]]]}-{labels[keep[cols[h]]]}" for h in hit[:8]]
                more = f" (and {len(hit) - 8} more)" if len(hit) > 8 else ""
                parts.append(
                    "perfectly correlated pairs of assets (duplicated returns?): "
                    + ", ".join(shown)
                    + more
                )
        else:
            lam, vec = checked_eigh(corr, "the correlation of the returns")
            null = lam <= SINGULAR_RTOL * lam[-1]
            if null.any():
                weight = (vec[:, null] ** 2).sum(axis=1)
                order = np.argsort(-weight, kind="stable")
                involved = labels[keep[order[weight[order] >= 1e-4]]]
                k = int(null.sum())
                what = "a combination" if k == 1 else f"{k} independent combinations"
                parts.append(
                    f"{what} of assets {name_list(involved)} "
                    f"{'has' if k == 1 else 'have'} no variance (duplicated or linearly "
                    "dependent returns; smallest correlation eigenvalue "
                    f"{lam[0] / lam[-1]:.2g} x the largest)"
                )
    return "; ".join(parts)


def is_singular(cov: np.ndarray) -> bool:
    """Is the covariance (n, n) singular: a zero variance, or a correlation eigenvalue at most
    :data:`SINGULAR_RTOL` times the largest?"""
    d = np.diag(cov)
    if not (d > 0).all():
        return True
    sd = np.sqrt(d)
    lam = np.linalg.eigvalsh(symmetrize(cov / np.outer(sd, sd)))
    return bool(lam[0] <= SINGULAR_RTOL * lam[-1])


def full_rank_count(t: int, n: int, what: str) -> None:
    """Refuse ``t`` returns of ``n`` assets for an estimator without shrinkage when ``t - 1 < n``."""
    if t - 1 < n:
        raise InputError(
            f"covariance.{what}: {t} observations of {n} assets give a singular covariance "
            f"(its rank is at most T - 1 = {t - 1} < {n} assets); use a shrinkage estimator "
            f"such as ledoit_wolf or oas, or more history (at least {n + 1} observations)"
        )
