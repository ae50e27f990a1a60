"""When to trade back to target: the one implementation of the rebalance triggers.

A trigger has a schedule (which points are reviews) and a condition (whether
a review trades):

=====================================  ==================================  =========================
trigger                                reviews                             trades at a review
=====================================  ==================================  =========================
``BuyAndHold()``                       never                               --
``Calendar(every)``                    every ``every``-th period of the    always
                                       data (period 0 is the start)
``Calendar(months=m)``                 once ``m`` calendar months have     always
                                       passed since the last rebalance
``Threshold(band)``                    at every point                      when a weight drifts
                                                                           beyond ``band``
``Hybrid(every, band)``,               as ``Calendar``                     as ``Threshold``
``Hybrid(months=m, band=b)``
=====================================  ==================================  =========================

Weights and targets are decimals of portfolio value (0.05 is five points).
A band is absolute (0.05: five points of weight) or, with ``relative=True``,
a fraction of the target weight (0.25: a quarter of it); a mapping gives one
band per asset or per tag (tags need a :class:`~optimizer.universe.Universe`;
an asset's own key wins over its tags'). An asset with a zero target breaches
a relative band only when held above :data:`ZERO_TARGET_DUST`.

Cash counts (the explained check only, with ``cash=Cash(...)``): a pending
cash flow (a deposit to invest or a withdrawal to fund) makes any trigger
trade at once, review or not, since the money must move; and idle cash is a
drift like any other: its weight in the account (``Cash.weight``, with the
assets' weights summing to ``1 - Cash.weight``) is compared with its target
(``Cash.target``, 0 when the target is fully invested) under the scalar band,
or the tightest band of a mapping, by the banded triggers (``Threshold``, and
``Hybrid`` at a review).

There are two ways to ask, and both give the same answer:

* explained, on Series labelled by asset (a rebalance check):
  ``trigger.check(weights, target, period=, as_of=, last=, universe=, cash=)``
  returns a :class:`Decision` with its reasons;
* fast, on arrays aligned by asset (a backtest's inner loop):
  ``trigger.reviews(period, as_of=, last=)``, ``trigger.bands(assets, universe)``
  once, then ``trigger.decide(weights, target, bands)``.

The objects are frozen values: equal by content, hashable and picklable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.universe import Universe, namespace_clash
from optimizer.validation import series

__all__ = [
    "ZERO_TARGET_DUST",
    "BuyAndHold",
    "Calendar",
    "Cash",
    "Decision",
    "Hybrid",
    "Threshold",
    "Trigger",
    "drift_size",
]

#: Weight below which an asset with a zero target counts as not held (relative bands);
#: an interior-point solve leaves about 1e-5 in such assets.
ZERO_TARGET_DUST = 1e-4
#: A drift must exceed its band by more than this to breach it (decimals of weight).
_BAND_TOL = 1e-12


@dataclass(frozen=True)
class Decision:
    """Whether to trade at a point, and why.

    Attributes
    ----------
    trade : bool
        True when the portfolio should trade back to target.
    reasons : tuple of str
        One sentence per fact behind the decision (a review date, each asset
        over its band, or the largest drift when none is).
    """

    trade: bool
    reasons: tuple[str, ...]

    def __bool__(self) -> bool:
        return self.trade


@dataclass(frozen=True)
class Cash:
    """The account's cash, as the explained check of a trigger sees it.

    Parameters
    ----------
    weight : float
        Idle cash over the account's value including the cash (decimal: 0.25
        is a quarter of the account); the assets' weights then sum to
        ``1 - weight``.
    target : float
        The cash weight of the target (decimal; 0 when the target is fully
        invested).
    flow : float
        A pending cash flow (currency): > 0 a deposit to invest, < 0 a
        withdrawal to fund. Any flow makes the trigger trade.
    currency : str, optional
        ISO code for the reasons ("USD" or None: ``$``).

    Raises
    ------
    InputError
        A figure that is not a finite number (named).
    """

    weight: float = 0.0
    target: float = 0.0
    flow: float = 0.0
    currency: str | None = None

    def __post_init__(self) -> None:
        for what in ("weight", "target", "flow"):
            value = getattr(self, what)
            try:
                v = float(value)
                ok = not isinstance(value, bool) and math.isfinite(v)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InputError(f"Cash {what} must be a finite number, got {value!r}")
            object.__setattr__(self, what, v)

    def flow_reason(self) -> str | None:
        """Why a pending flow trades (``"cash flow of -$500,000 to fund"``), or None."""
        if self.flow == 0:
            return None
        size = abs(self.flow)
        figure = f"{size:,.0f}" if size == round(size) else f"{size:,.2f}"
        money = f"${figure}" if self.currency in (None, "USD") else f"{figure} {self.currency}"
        sign, what = ("+", "to invest") if self.flow > 0 else ("-", "to fund")
        return f"cash flow of {sign}{money} {what}"


def _checked_cash(cash: Any) -> Cash | None:
    """``cash`` when it is None or a :class:`Cash`, else an InputError naming its type."""
    if cash is not None and not isinstance(cash, Cash):
        raise InputError(f"cash= must be an optimizer.triggers.Cash, got {type(cash).__name__}")
    return cash


def _with_flow(decision: Decision, cash: Cash | None) -> Decision:
    """``decision``, made to trade (its reason first) when ``cash`` has a pending flow."""
    reason = None if cash is None else cash.flow_reason()
    return decision if reason is None else Decision(True, (reason, *decision.reasons))


# ----------------------------------------------------------------------------- validation


def _count(value: Any, what: str) -> int:
    """A whole number >= 1 (a review interval), or an InputError naming ``what``."""
    try:
        n = int(value)
        whole = not isinstance(value, bool) and n == value
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise InputError(f"{what} must be a whole number, got {value!r}")
    if n < 1:
        raise InputError(f"{what} must be at least 1, got {value!r}")
    return n


def _band_value(value: Any, what: str) -> float:
    """A finite non-negative band, or an InputError naming ``what``."""
    try:
        b = float(value)
        ok = not isinstance(value, bool) and math.isfinite(b) and b >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"{what} band must be a non-negative number, got {value!r}")
    return b


def _frozen_band(band: Any, what: str) -> float | Mapping[str, float]:
    """A validated copy of a band: a float, or a read-only mapping key -> float."""
    if isinstance(band, pd.Series):
        band = band.to_dict()
    if isinstance(band, Mapping):
        return _BandMap({str(k): _band_value(v, what) for k, v in band.items()})
    return _band_value(band, what)


class _BandMap(dict):
    """A read-only dict of bands by asset or tag: equal and hashable by content."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("trigger bands are read-only; build a new trigger instead")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self):
        return (_BandMap, (dict(self),))


def _schedule(
    every: Any, months: Any, owner: str, default_every: int
) -> tuple[int | None, int | None]:
    """Validated ``(every, months)``: exactly one is set (``every`` by default)."""
    if every is not None and months is not None:
        raise InputError(f"{owner}: give every (periods) or months (calendar months), not both")
    if months is not None:
        return None, _count(months, f"{owner} months")
    return _count(default_every if every is None else every, f"{owner} every"), None


# ----------------------------------------------------------------------------- drift


def drift_size(weights: np.ndarray, target: np.ndarray, *, relative: bool = False) -> np.ndarray:
    """How far each weight is from its target, the measure a band is compared with.

    Parameters
    ----------
    weights, target : numpy.ndarray, shape (n,)
        Current and target weights, aligned by asset (decimals).
    relative : bool
        False: ``|w - t|`` (decimals of weight). True: ``|w - t| / |t|``
        (fractions of the target); where ``t`` is 0 the size is 0 while
        ``|w| <= ZERO_TARGET_DUST`` and infinite above it.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Non-negative drift sizes.
    """
    gap = np.abs(weights - target)
    if not relative:
        return gap
    scale = np.abs(target)
    has = scale > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            has, gap / np.where(has, scale, 1.0), np.where(gap > ZERO_TARGET_DUST, np.inf, 0.0)
        )


def _aligned(weights: Any, target: Any) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """Weights and target on the union of their labels (missing counts as 0)."""
    pair = [series(weights, what="weights"), series(target, what="target")]
    w, t = pair
    assets = w.index.union(t.index, sort=False)
    return (
        assets,
        w.reindex(assets, fill_value=0.0).to_numpy(),
        t.reindex(assets, fill_value=0.0).to_numpy(),
    )


# ----------------------------------------------------------------------------- schedules


class _Scheduled:
    """Reviews every ``every``-th period, or ``months`` calendar months after the last rebalance."""

    every: int | None
    months: int | None
    name: str | None

    def due(self, period: int | None = None, *, as_of: Any = None, last: Any = None) -> Decision:
        """Whether this point is a review, and why.

        Parameters
        ----------
        period : int, optional
            Periods since the start of the data (0 is the start); needed by a
            schedule of ``every`` periods.
        as_of : date-like, optional
            The date of this point; needed by a schedule of ``months``.
        last : date-like, optional
            The date of the last rebalance (None: there was none, so a review
            is due); used by a schedule of ``months``.

        Raises
        ------
        InputError
            The point lacks what the schedule counts, or ``as_of`` is before ``last``.
        """
        if self.months is None:
            every = int(self.every)  # type: ignore[arg-type]
            if period is None:
                raise InputError(f"{self.name}: a review every {every} periods needs period=")
            if period % every == 0:
                return Decision(True, (f"review at period {period} (every {every} periods)",))
            return Decision(False, (f"next review at period {period - period % every + every}",))
        if as_of is None:
            raise InputError(f"{self.name}: a review every {self.months} months needs as_of=")
        today = pd.Timestamp(as_of)
        if last is None:
            return Decision(True, ("no earlier rebalance on record",))
        prev = pd.Timestamp(last)
        if today < prev:
            raise InputError(f"as_of {today.date()} is before the last rebalance {prev.date()}")
        when = prev + pd.DateOffset(months=self.months)
        if today >= when:
            return Decision(
                True, (f"calendar review due on {when.date()} (every {self.months} months)",)
            )
        return Decision(False, (f"next calendar review on {when.date()}",))

    def reviews(self, period: int | None = None, *, as_of: Any = None, last: Any = None) -> bool:
        """True when this point is a review (see :meth:`due`)."""
        if self.months is None and period is not None:
            return period % int(self.every) == 0  # type: ignore[arg-type]
        return self.due(period, as_of=as_of, last=last).trade


class _Banded:
    """Trades when some weight drifts beyond its band (absolute or relative)."""

    band: float | Mapping[str, float]
    relative: bool

    def bands(self, assets: pd.Index, universe: Universe | None = None) -> np.ndarray:
        """The band of each asset, in the order of ``assets``.

        Parameters
        ----------
        assets : pandas.Index, shape (n,)
            Asset ids.
        universe : Universe, optional
            Needed when the band names tags.

        Returns
        -------
        numpy.ndarray, shape (n,)
            Bands (decimals of weight, or fractions of the target when relative).

        Raises
        ------
        InputError
            A key that is neither an asset nor a tag, or an asset without a band.
        """
        kind = type(self).__name__
        if not isinstance(self.band, Mapping):
            return np.full(len(assets), float(self.band))
        known = set(map(str, assets))
        if universe is not None:
            clash = namespace_clash(known, universe.tags)
            if clash is not None:
                raise InputError(clash)
        out = pd.Series(np.nan, index=pd.Index(assets, dtype=object), dtype=float)
        for key, value in self.band.items():
            if key in known:
                continue
            if universe is None or key not in universe.all_tags:
                raise InputError(
                    f"{kind} band names {key!r}, which is neither an asset nor a tag"
                    + ("" if universe is not None else " (pass universe= to use tags)")
                )
            for member in universe.members(key):
                if member in known and np.isnan(out[member]):
                    out[member] = value
        for key, value in self.band.items():
            if key in known:
                out[key] = value
        missing = [str(a) for a in out.index[out.isna().to_numpy()]]
        if missing:
            raise InputError(f"{kind} band missing for {', '.join(missing)}")
        return out.to_numpy()

    def decide(
        self, weights: np.ndarray, target: np.ndarray, bands: np.ndarray | None = None
    ) -> bool:
        """True when some asset drifts beyond its band (arrays aligned by asset, shape (n,)).

        ``bands`` comes from :meth:`bands` (computed once per asset list); without
        it a single band is spread over the assets.
        """
        if bands is None:
            bands = self.bands(pd.RangeIndex(len(weights)))
        return bool(self.breached(weights, target, bands).any())

    def breached(self, weights: np.ndarray, target: np.ndarray, bands: np.ndarray) -> np.ndarray:
        """Which assets drift beyond their band (arrays aligned by asset, shape (n,))."""
        return drift_size(weights, target, relative=self.relative) > bands + _BAND_TOL

    def drifted(
        self,
        weights: Any,
        target: Any,
        *,
        universe: Universe | None = None,
        cash: Cash | None = None,
    ) -> Decision:
        """The band condition alone, explained: every asset over its band, or the largest drift.

        With ``cash``, idle cash is one more line: its weight against its target,
        under the scalar band (the tightest band of a mapping).
        """
        cash = _checked_cash(cash)
        assets, w, t = _aligned(weights, target)
        if not len(assets):
            raise InputError("no assets to check: weights and target are both empty")
        bands = self.bands(assets, universe)
        labels = [str(a) for a in assets]
        cash_row = None
        if cash is not None and (cash.weight != 0 or cash.target != 0):
            cash_row = len(labels)
            band = float(bands.min()) if isinstance(self.band, Mapping) else float(self.band)
            w, t, bands = (
                np.append(w, cash.weight),
                np.append(t, cash.target),
                np.append(bands, band),
            )
            labels.append("cash")
        size = drift_size(w, t, relative=self.relative)
        over = size > bands + _BAND_TOL
        with np.errstate(divide="ignore", invalid="ignore"):
            signed = (w - t) / np.abs(t) if self.relative else w - t
        of_target = " of target" if self.relative else ""
        reasons = []
        for i in np.flatnonzero(over):
            if i == cash_row:
                side = "idle cash" if w[i] > t[i] else "cash"
                where = "above" if w[i] > t[i] else "below"
                reasons.insert(  # the cash first: the cause of the assets' drift
                    0,
                    f"{side} {w[i]:.1%} of the account {where} its {100 * t[i]:.4g}% target "
                    f"(band {bands[i]:.2%}{of_target})",
                )
            elif self.relative and t[i] == 0:
                reasons.append(
                    f"{labels[i]} is held at {w[i]:.2%} with a target of 0 "
                    f"(band {bands[i]:.2%} of target)"
                )
            else:
                reasons.append(
                    f"{labels[i]} drifted {signed[i]:+.2%} from target (band {bands[i]:.2%})"
                )
        if reasons:
            return Decision(True, tuple(reasons))
        worst = int(np.argmax(size))
        figure = 0.0 if not np.isfinite(signed[worst]) else signed[worst]
        return Decision(
            False, (f"largest drift {figure:+.2%} ({labels[worst]}) is within the band",)
        )


# ----------------------------------------------------------------------------- triggers


class _Explained:
    """The explained check every trigger shares (a pending cash flow trades at once)."""

    def check(
        self,
        weights: Any = None,
        target: Any = None,
        *,
        period: int | None = None,
        as_of: Any = None,
        last: Any = None,
        universe: Universe | None = None,
        cash: Cash | None = None,
    ) -> Decision:
        """Whether to trade at this point, and why (see the class for the rule).

        Parameters
        ----------
        weights, target : pandas.Series, optional
            Current and target weights by asset (decimals); an asset missing
            from one side counts as 0 there. Needed by the banded triggers.
        period, as_of, last
            The point, as for a schedule's ``due``.
        universe : Universe, optional
            Needed when a band names tags.
        cash : Cash, optional
            Idle cash (a drift like any asset's, for a banded trigger) and a
            pending cash flow (trades at once, whatever the trigger); the
            reasons name each, the flow first.

        Returns
        -------
        Decision
        """
        cash = _checked_cash(cash)
        point = {"period": period, "as_of": as_of, "last": last}
        return _with_flow(self._explain(weights, target, point, universe, cash), cash)

    def _explain(self, weights, target, point: dict, universe, cash) -> Decision:
        raise NotImplementedError


@dataclass(frozen=True)
class BuyAndHold(_Explained):
    """Never trade after the first allocation.

    Parameters
    ----------
    name : str
        A label for reports.
    """

    name: str = "buy and hold"

    def due(self, period: int | None = None, *, as_of: Any = None, last: Any = None) -> Decision:
        """Never a review."""
        return Decision(False, ("buy and hold: no review after the first allocation",))

    def reviews(self, period: int | None = None, *, as_of: Any = None, last: Any = None) -> bool:
        """Always False."""
        return False

    def bands(self, assets: pd.Index, universe: Universe | None = None) -> None:
        """No bands."""
        return None

    def decide(self, weights: np.ndarray, target: np.ndarray, bands: Any = None) -> bool:
        """Always False."""
        return False

    def _explain(self, weights, target, point: dict, universe, cash) -> Decision:
        # never trade, and say so (a pending cash flow still trades: the money must move)
        return self.due(**point)


@dataclass(frozen=True)
class Calendar(_Scheduled, _Explained):
    """Trade back to target at every review of a fixed schedule.

    Parameters
    ----------
    every : int, optional
        Review every ``every``-th period of the data (3: quarterly on monthly
        data); 1 when neither this nor ``months`` is given.
    months : int, optional
        Instead: review once ``months`` calendar months have passed since the
        last rebalance.
    name : str, optional
        A label for reports (derived when not given).

    Raises
    ------
    InputError
        ``every`` or ``months`` not a whole number >= 1, or both given.
    """

    every: int | None = None
    months: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        every, months = _schedule(self.every, self.months, "Calendar", 1)
        object.__setattr__(self, "every", every)
        object.__setattr__(self, "months", months)
        if self.name is None:
            when = f"{every}" if months is None else f"{months} months"
            object.__setattr__(self, "name", f"calendar every {when}")

    def bands(self, assets: pd.Index, universe: Universe | None = None) -> None:
        """No bands."""
        return None

    def decide(self, weights: np.ndarray, target: np.ndarray, bands: Any = None) -> bool:
        """Always True: every review trades."""
        return True

    def _explain(self, weights, target, point: dict, universe, cash) -> Decision:
        # a review trades; the weights (and idle cash) do not matter
        return self.due(**point)


@dataclass(frozen=True)
class Threshold(_Banded, _Explained):
    """Trade back to target when any weight drifts beyond its band (reviewed at every point).

    Parameters
    ----------
    band : float or mapping str -> float
        Absolute drift in weight (0.05: five points) or, with ``relative``, a
        fraction of the target weight; a mapping gives one band per asset or
        per tag (every asset must be covered).
    relative : bool
        Bands are fractions of the target weight.
    name : str, optional
        A label for reports (derived when not given).

    Raises
    ------
    InputError
        A band that is negative, NaN or not a number.
    """

    band: float | Mapping[str, float] = 0.05
    relative: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "band", _frozen_band(self.band, "Threshold"))
        object.__setattr__(self, "relative", bool(self.relative))
        object.__setattr__(self, "name", self.name or f"threshold {self.band}")

    def due(self, period: int | None = None, *, as_of: Any = None, last: Any = None) -> Decision:
        """Every point is a review."""
        return Decision(True, ())

    def reviews(self, period: int | None = None, *, as_of: Any = None, last: Any = None) -> bool:
        """Always True."""
        return True

    def _explain(self, weights, target, point: dict, universe, cash) -> Decision:
        # every asset (and idle cash) over its band, or the largest drift
        return self.drifted(weights, target, universe=universe, cash=cash)


@dataclass(frozen=True)
class Hybrid(_Scheduled, _Banded, _Explained):
    """At each review of a fixed schedule, trade only when some weight drifts beyond its band.

    Parameters
    ----------
    every : int, optional
        Review every ``every``-th period of the data; 3 when neither this nor
        ``months`` is given.
    band : float or mapping str -> float
        As for :class:`Threshold`.
    months : int, optional
        Instead of ``every``: review once ``months`` calendar months have
        passed since the last rebalance.
    relative : bool
        Bands are fractions of the target weight.
    name : str, optional
        A label for reports (derived when not given).

    Raises
    ------
    InputError
        A bad schedule (see :class:`Calendar`) or band (see :class:`Threshold`).
    """

    every: int | None = None
    band: float | Mapping[str, float] = 0.05
    months: int | None = None
    relative: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        every, months = _schedule(self.every, self.months, "Hybrid", 3)
        object.__setattr__(self, "every", every)
        object.__setattr__(self, "months", months)
        object.__setattr__(self, "band", _frozen_band(self.band, "Hybrid"))
        object.__setattr__(self, "relative", bool(self.relative))
        if self.name is None:
            when = f"{every}" if months is None else f"{months} months"
            object.__setattr__(self, "name", f"hybrid every {when}, band {self.band}")

    def _explain(self, weights, target, point: dict, universe, cash) -> Decision:
        # not a review: no trade; a review: the bands decide (the schedule's reasons first)
        review = self.due(**point)
        if not review:
            return review
        band = self.drifted(weights, target, universe=universe, cash=cash)
        return Decision(band.trade, review.reasons + band.reasons)


#: Any trigger of this module.
Trigger = BuyAndHold | Calendar | Threshold | Hybrid
