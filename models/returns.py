"""Periodic returns from prices, and back.

``from_prices`` is the front door for market data: it validates a price table
(dates by asset ids), deals with missing prices in one of four explicit ways
and returns simple or log returns. Every problem is reported as an
:class:`~optimizer.errors.InputError` that names the asset, the date or the
option at fault.

Examples
--------
>>> rets = from_prices(prices)                      # doctest: +SKIP
>>> rets = from_prices(prices, missing="ffill")     # doctest: +SKIP
>>> rets = from_prices(prices, missing="keep")      # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from models._common import fmt_date as _fmt_date
from models._common import infer_periods_per_year, validate_returns
from optimizer import validation
from optimizer.errors import InputError

__all__ = ["from_prices", "periods_per_year", "to_prices"]

KINDS = ("simple", "log")
MISSING = ("raise", "drop", "ffill", "keep")

#: How many gaps per asset, and how many assets, a message spells out.
_MAX_GAPS_SHOWN = 5
_MAX_ASSETS_SHOWN = 20
_MAX_DATES_SHOWN = 5


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------


def check_option(name: str, value: object, valid: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``valid``, else raise naming the option and the choices."""
    if not isinstance(value, str) or value not in valid:
        choices = ", ".join(repr(v) for v in valid)
        raise InputError(f"unknown {name}={value!r}; valid options are {choices}")
    return value


def _fmt_list(items: Sequence[str], limit: int, what: str, sep: str = ", ") -> str:
    shown = sep.join(items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more {what}"
    return shown


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start and end (inclusive) positions of the runs of True in a 1-d boolean array."""
    padded = np.concatenate(([0], mask.astype(np.int8), [0]))
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _fmt_run(index: pd.DatetimeIndex, start: int, end: int) -> str:
    if start == end:
        return _fmt_date(index[start])
    return f"{_fmt_date(index[start])}..{_fmt_date(index[end])}"


def _gap_report(values: np.ndarray, index: pd.DatetimeIndex, columns: pd.Index) -> str:
    """``"MSFT: 2020-03-02..2020-03-04; JPM: 1990-01-02..1995-06-30"`` for the NaN runs."""
    entries = []
    for j, col in enumerate(columns):
        runs = _runs(np.isnan(values[:, j]))
        if not runs:
            continue
        text = ", ".join(_fmt_run(index, s, e) for s, e in runs[:_MAX_GAPS_SHOWN])
        if len(runs) > _MAX_GAPS_SHOWN:
            text += f" and {len(runs) - _MAX_GAPS_SHOWN} more gaps"
        entries.append(f"{col}: {text}")
    return _fmt_list(entries, _MAX_ASSETS_SHOWN, "assets with gaps", sep="; ")


def _validate_prices(prices: object) -> tuple[np.ndarray, pd.DatetimeIndex, pd.Index]:
    """Check a price table; return its float values (rows sorted by date), dates and asset ids."""
    if not isinstance(prices, pd.DataFrame):
        raise InputError(
            f"prices must be a pandas DataFrame (dates x assets), got {type(prices).__name__}"
        )
    if prices.shape[1] == 0:
        raise InputError("prices has no columns (assets)")
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise InputError(
            "prices must have a DatetimeIndex (one row per date), got "
            f"{type(prices.index).__name__}; convert it with pd.to_datetime(prices.index)"
        )
    if prices.index.hasnans:
        pos = np.flatnonzero(prices.index.isna())
        raise InputError(
            f"prices has missing dates (NaT) in the index at rows {', '.join(map(str, pos[:5]))}"
        )
    validation.labels(prices.columns, what="prices")
    dup_dates = prices.index[prices.index.duplicated()].unique()
    if len(dup_dates):
        shown = [_fmt_date(d) for d in dup_dates]
        raise InputError(
            "prices has duplicate dates: " + _fmt_list(shown, _MAX_DATES_SHOWN, "dates")
        )
    bad = [
        str(c)
        for c in prices.columns
        if not pd.api.types.is_numeric_dtype(prices[c]) or pd.api.types.is_bool_dtype(prices[c])
    ]
    if bad:
        raise InputError(f"prices has non-numeric columns: {', '.join(bad)}")
    if not prices.index.is_monotonic_increasing:
        prices = prices.sort_index(kind="stable")
    index = prices.index
    columns = prices.columns
    values = prices.to_numpy(dtype=float, na_value=np.nan, copy=True)

    inf = np.isinf(values)
    if inf.any():
        parts = [
            f"{col} on {_fmt_date(index[np.argmax(inf[:, j])])}"
            for j, col in enumerate(columns)
            if inf[:, j].any()
        ]
        raise InputError("prices has infinite values: " + "; ".join(parts))
    with np.errstate(invalid="ignore"):
        nonpos = values <= 0
    if nonpos.any():
        parts = []
        for j, col in enumerate(columns):
            if nonpos[:, j].any():
                i = int(np.argmax(nonpos[:, j]))
                parts.append(f"{col} first on {_fmt_date(index[i])} ({values[i, j]:g})")
        raise InputError("prices must be positive; non-positive prices for " + "; ".join(parts))
    if len(index) < 2:
        raise InputError(
            f"prices has {len(index)} observation(s); at least 2 dates are needed for a return"
        )
    empty = [str(c) for j, c in enumerate(columns) if np.isnan(values[:, j]).all()]
    if empty:
        raise InputError(f"prices has no values at all for: {', '.join(empty)}")
    return values, index, columns


# ----------------------------------------------------------------------------------------------
# missing-value policies
# ----------------------------------------------------------------------------------------------


def _first_last(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row position of each column's first and last valid value (every column has one)."""
    first = np.argmax(valid, axis=0)
    last = valid.shape[0] - 1 - np.argmax(valid[::-1], axis=0)
    return first, last


def _leading_note(first: np.ndarray, start: int, index: pd.DatetimeIndex, columns: pd.Index) -> str:
    late = [str(columns[j]) for j in np.flatnonzero(first == start)]
    return (
        f"the common window starts on {_fmt_date(index[start])} instead of "
        f"{_fmt_date(index[0])} because {', '.join(late)} "
        f"{'has' if len(late) == 1 else 'have'} no earlier prices"
    )


def _drop(
    values: np.ndarray, index: pd.DatetimeIndex, columns: pd.Index
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    valid = ~np.isnan(values)
    first, last = _first_last(valid)
    start, end = int(first.max()), int(last.min())
    if start > end:
        late = columns[int(np.argmax(first))]
        early = columns[int(np.argmin(last))]
        raise InputError(
            "missing='drop' leaves no common dates: "
            f"{early} has no prices after {_fmt_date(index[end])} and "
            f"{late} none before {_fmt_date(index[start])}"
        )
    notes = []
    if start > 0:
        notes.append(_leading_note(first, start, index, columns))
    if end < len(index) - 1:
        gone = [str(columns[j]) for j in np.flatnonzero(last == end)]
        notes.append(
            f"it ends on {_fmt_date(index[end])} instead of {_fmt_date(index[-1])} because "
            f"{', '.join(gone)} {'has' if len(gone) == 1 else 'have'} no later prices"
        )
    window = values[start : end + 1]
    dates = index[start : end + 1]
    keep = ~np.isnan(window).any(axis=1)
    if not keep.all():
        counts = np.isnan(window).sum(axis=0)
        who = [f"{columns[j]} ({int(counts[j])})" for j in np.flatnonzero(counts)]
        notes.append(
            f"dropped {int((~keep).sum())} date(s) inside it where an asset had no price "
            f"(missing dates per asset: {_fmt_list(who, _MAX_ASSETS_SHOWN, 'assets')}); "
            "the return after a dropped date spans the gap"
        )
    if notes:
        warnings.warn("from_prices(missing='drop'): " + "; ".join(notes), UserWarning, stacklevel=3)
    return window[keep], dates[keep]


def _ffill(
    values: np.ndarray, index: pd.DatetimeIndex, columns: pd.Index
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    valid = ~np.isnan(values)
    first, last = _first_last(valid)
    start = int(first.max())
    # Carry the last valid row position forward, column by column.
    rows = np.where(valid, np.arange(len(index))[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    filled = np.take_along_axis(values, rows, axis=0)
    notes = []
    if start > 0:
        notes.append(_leading_note(first, start, index, columns))
    stale = [
        f"{columns[j]} after {_fmt_date(index[last[j]])} ({len(index) - 1 - int(last[j])} dates)"
        for j in np.flatnonzero(last < len(index) - 1)
    ]
    if stale:
        notes.append(
            "the last price was carried forward to the end (zero returns) for "
            + _fmt_list(stale, _MAX_ASSETS_SHOWN, "assets")
        )
    if notes:
        warnings.warn(
            "from_prices(missing='ffill'): " + "; ".join(notes), UserWarning, stacklevel=3
        )
    return filled[start:], index[start:]


def _keep(
    values: np.ndarray, index: pd.DatetimeIndex, columns: pd.Index
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Each asset from its own first to its own last price; NaN outside, interior gaps dropped."""
    valid = ~np.isnan(values)
    first, last = _first_last(valid)
    rows = np.arange(len(index))[:, None]
    inside = (rows >= first) & (rows <= last)
    gap = inside & ~valid
    keep = ~gap.any(axis=1)
    # rows before every asset's first price or after every asset's last one carry nothing
    keep &= (rows[:, 0] >= first.min()) & (rows[:, 0] <= last.max())
    if gap.any():
        counts = gap.sum(axis=0)
        who = [f"{columns[j]} ({int(counts[j])})" for j in np.flatnonzero(counts)]
        warnings.warn(
            f"from_prices(missing='keep'): dropped {int(gap.any(axis=1).sum())} date(s) on "
            "which an asset had no price inside its own history (missing dates per asset: "
            f"{_fmt_list(who, _MAX_ASSETS_SHOWN, 'assets')}); the return after a dropped date "
            "spans the gap, for every asset",
            UserWarning,
            stacklevel=3,
        )
    values, index = values[keep], index[keep]
    counts = (~np.isnan(values)).sum(axis=0)
    lonely = [
        f"{columns[j]} (on {_fmt_date(index[np.argmax(~np.isnan(values[:, j]))])})"
        if counts[j]
        else f"{columns[j]} (none left: its prices fell on the dropped dates)"
        for j in np.flatnonzero(counts < 2)
    ]
    if lonely:
        raise InputError(
            "from_prices(missing='keep'): fewer than 2 prices for "
            + _fmt_list(lonely, _MAX_ASSETS_SHOWN, "assets")
            + "; an asset needs at least 2 prices for a return: drop it or add history"
        )
    return values, index


# ----------------------------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------------------------


def from_prices(
    prices: pd.DataFrame, *, kind: str = "simple", missing: str = "raise"
) -> pd.DataFrame:
    """Periodic returns from a table of prices.

    Parameters
    ----------
    prices : pandas.DataFrame, shape (T, n)
        Prices (positive, adjusted for splits and dividends), one row per
        date (``DatetimeIndex``) and one column per asset id. NaN marks a
        missing price. Unsorted dates are sorted (ascending) first; duplicate
        dates are an error.
    kind : {"simple", "log"}, keyword-only
        ``"simple"``: ``r_t = P_t / P_{t-1} - 1``; ``"log"``:
        ``r_t = log(P_t / P_{t-1})`` (so ``log = log1p(simple)``).
    missing : {"raise", "drop", "ffill", "keep"}, keyword-only
        What to do with missing prices:

        * ``"raise"`` (default): raise an :class:`InputError` listing, for
          each asset with missing prices, the date ranges of its gaps
          (including a leading gap before an asset's first price).
        * ``"drop"``: keep the common window, from the first date on which
          every asset has a price to the last such date, and drop the dates
          inside it on which any asset has no price. The return on the date
          after a dropped date then spans the gap (two or more periods, for
          every asset). A ``UserWarning`` names the assets that shortened the
          window, the new start (and end) date and the number of dates
          dropped.
        * ``"ffill"``: carry the last price forward over interior and
          trailing gaps (a stale price gives a zero return); dates before
          the latest first price are still dropped, with a ``UserWarning``
          as for ``"drop"``. Trailing fills are mentioned in the warning too
          (an asset that stopped trading would otherwise look riskless).
        * ``"keep"``: histories of different lengths. Each asset's returns
          run from its own first price to its own last one, NaN before and
          after (the table spans every asset's history), for the estimators'
          ``overlap="pairwise"`` (:mod:`models.covariance`,
          :mod:`models.expected_returns`). Gaps inside an asset's history
          are dropped as ``"drop"`` drops them (the date goes for every
          asset, the next return spans the gap, a ``UserWarning`` counts
          them). An asset left with a single price is an error.

    Returns
    -------
    pandas.DataFrame, shape (T' - 1, n)
        Returns (decimals, per period, not annualized) labelled by the same
        asset ids in the same order; the first remaining date has no return
        and is dropped, so each row is dated at the end of its period.

    Raises
    ------
    InputError
        Unknown ``kind`` or ``missing`` (listing the valid options); not a
        DataFrame; no columns; index not a DatetimeIndex or containing NaT;
        duplicate dates or asset ids (named); non-numeric columns (named);
        infinite or non-positive prices (naming the asset and first date);
        an asset with no price at all; fewer than 2 dates before or after
        the missing values are handled; missing prices with
        ``missing="raise"`` (naming each asset and its gaps); with
        ``"keep"``, an asset with a single price (named, with its date).

    Warns
    -----
    UserWarning
        When ``missing="drop"`` or ``"ffill"`` shortens the sample or fills
        trailing prices, or ``"drop"`` / ``"keep"`` drop dates inside it.

    Notes
    -----
    Log returns add up over time, simple returns add up across assets (the
    return of a portfolio is the weighted sum of simple returns): the
    mean-variance models expect simple returns.
    """
    check_option("kind", kind, KINDS)
    check_option("missing", missing, MISSING)
    values, index, columns = _validate_prices(prices)

    if np.isnan(values).any():
        if missing == "raise":
            raise InputError(
                "prices has missing values (NaN) for "
                + _gap_report(values, index, columns)
                + ". Pass missing='drop' to keep only the dates on which every asset has a "
                "price, missing='ffill' to carry the last price forward (a zero return), or "
                "missing='keep' to keep each asset's own history (NaN before its first price) "
                "for the estimators' overlap='pairwise'"
            )
        policy = {"drop": _drop, "ffill": _ffill, "keep": _keep}[missing]
        values, index = policy(values, index, columns)
        if len(index) < 2:
            raise InputError(
                f"only {len(index)} date(s) left after missing={missing!r} "
                f"(common window of {', '.join(map(str, columns))}); "
                "at least 2 are needed for a return"
            )

    ratio = values[1:] / values[:-1]
    out = np.log(ratio) if kind == "log" else ratio - 1.0
    return pd.DataFrame(out, index=index[1:], columns=columns.copy())


def to_prices(
    returns: pd.DataFrame, *, start: float | pd.Series = 1.0, kind: str = "simple"
) -> pd.DataFrame:
    """Cumulative value (a price index) from periodic returns.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), dates by asset ids, no NaN.
    start : float or pandas.Series, keyword-only
        Value before the first return (positive); a Series gives one value
        per asset (aligned by label).
    kind : {"simple", "log"}, keyword-only
        How the returns were computed.

    Returns
    -------
    pandas.DataFrame, shape (T, n)
        ``start * prod_{s <= t} (1 + r_s)`` (or ``start * exp(sum r_s)``),
        dated like ``returns``: the value at the end of each period. The
        starting value itself is not a row (its date is unknown), so
        ``from_prices(to_prices(r))`` equals ``r`` without its first row.

    Raises
    ------
    InputError
        Bad returns (see :func:`models._common.validate_returns`, which
        also refuses a simple return of -100% or less, naming asset and
        date), unknown ``kind``, or a non-positive or misaligned ``start``.
    """
    check_option("kind", kind, KINDS)
    values = validate_returns(returns, min_obs=1, simple=kind == "simple")
    if isinstance(start, pd.Series):
        missing_assets = returns.columns.difference(start.index)
        if len(missing_assets):
            raise InputError(f"start has no value for: {', '.join(map(str, missing_assets))}")
        try:
            base = start.reindex(returns.columns).to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise InputError(f"start values must be numbers, got dtype {start.dtype}") from None
    else:
        try:
            base = np.full(values.shape[1], float(start))
        except (TypeError, ValueError):
            raise InputError(f"start must be a number or a Series, got {start!r}") from None
    if not (np.isfinite(base) & (base > 0)).all():
        raise InputError(f"start values must be positive and finite, got {start!r}")
    if kind == "log":
        growth = np.exp(np.cumsum(values, axis=0))
    else:
        growth = np.exp(np.cumsum(np.log1p(values), axis=0))
    return pd.DataFrame(growth * base, index=returns.index.copy(), columns=returns.columns.copy())


def periods_per_year(data: pd.DataFrame | pd.Series | pd.DatetimeIndex) -> int:
    """Observations per year implied by the spacing of the dates.

    Parameters
    ----------
    data : pandas.DataFrame, pandas.Series or pandas.DatetimeIndex
        Returns or prices with a ``DatetimeIndex``, or the index itself.

    Returns
    -------
    int
        252 daily (business days), 52 weekly, 12 monthly, 4 quarterly,
        1 annual; decided by the median spacing of the dates (see
        :func:`models._common.infer_periods_per_year` for the rule).

    Raises
    ------
    InputError
        Not a DatetimeIndex, fewer than 2 dates, dates not strictly
        increasing, an irregular spacing, or mixed frequencies (naming the
        date where the spacing changes and both spacings).
    """
    if isinstance(data, pd.Index):
        index = data
    elif isinstance(data, pd.Series | pd.DataFrame):
        index = data.index
    else:
        raise InputError(
            "periods_per_year needs a DataFrame, Series or DatetimeIndex, "
            f"got {type(data).__name__}"
        )
    return infer_periods_per_year(index)
