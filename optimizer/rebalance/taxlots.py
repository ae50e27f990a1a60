"""Tax lots, recent trades and the tax model of a tax-aware rebalance (value types).

:class:`TaxLots` holds the lots of one account (quantity, cost basis per unit and
acquisition date of each), :class:`RecentTrades` the trades made before the plan
(for the wash-sale window) and :class:`TaxModel` the rates, the holding period,
the budgets on realized gains and the options of the direction search. All three
are frozen dataclasses, equal and hashable by content, and picklable; every
check raises an :class:`~optimizer.errors.InputError` naming the row, lot, asset,
column or field at fault and the fix.

The tax itself and the lot-level program are in :mod:`optimizer.rebalance.tax`.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from optimizer.errors import InputError

LOT_COLUMNS = ("asset", "lot_id", "quantity", "basis", "acquired")
TRADE_COLUMNS = ("asset", "date", "side", "quantity", "gain")


def as_date(value, what: str) -> dt.date:
    """A date from a str, ``datetime``, ``date``, Timestamp or ``datetime64``.

    Raises
    ------
    InputError
        ``"{what}: cannot read 'x' as a date; write it as YYYY-MM-DD"``.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise ValueError
        ts = pd.Timestamp(value)
        if ts is pd.NaT or pd.isna(ts):
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        raise InputError(
            f"{what}: cannot read {value!r} as a date; write it as YYYY-MM-DD"
        ) from None
    return ts.date()


def _columns(frame, need: tuple[str, ...], what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} must be a DataFrame with columns {', '.join(need)}")
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what} is missing the column {missing[0]!r}: give columns {', '.join(need)}"
        )
    return frame.reset_index(drop=True)


def _number(value, where: str, column: str) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if not ok or not math.isfinite(float(value)):
        raise InputError(f"{where}: {column} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class TaxLots:
    """The tax lots of one account.

    Parameters
    ----------
    asset, lot_id : tuple of str
        The asset of each lot and its id (unique within the asset).
    quantity : tuple of float
        Units held in each lot (> 0).
    basis : tuple of float
        Cost basis per unit (currency, >= 0).
    acquired : tuple of datetime.date
        Acquisition date of each lot.

    Use :meth:`from_frame` to build one from a DataFrame (columns ``asset, lot_id,
    quantity, basis, acquired``); the constructor checks the same things.
    """

    asset: tuple
    lot_id: tuple
    quantity: tuple
    basis: tuple
    acquired: tuple
    _arrays: dict = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        cols = (self.asset, self.lot_id, self.quantity, self.basis, self.acquired)
        if len({len(c) for c in cols}) != 1:
            raise InputError(
                "TaxLots: asset, lot_id, quantity, basis and acquired differ in length"
            )
        assets = tuple(str(a) for a in self.asset)
        ids = tuple(str(i) for i in self.lot_id)
        qty, basis, dates = [], [], []
        seen: set = set()
        for r, (a, lid) in enumerate(zip(assets, ids, strict=True)):
            where = f"lots row {r} (asset {a}, lot_id {lid})"
            q = _number(self.quantity[r], where, "quantity")
            if q <= 0:
                raise InputError(f"{where}: quantity must be positive, got {q:g}; drop empty lots")
            c = _number(self.basis[r], where, "basis")
            if c < 0:
                raise InputError(f"{where}: basis must be non-negative, got {c:g}")
            if (a, lid) in seen:
                raise InputError(f"{where}: duplicate lot_id {lid!r} for {a}; give each lot its id")
            seen.add((a, lid))
            qty.append(q)
            basis.append(c)
            dates.append(as_date(self.acquired[r], f"{where}, column acquired"))
        for name, val in (
            ("asset", assets),
            ("lot_id", ids),
            ("quantity", tuple(qty)),
            ("basis", tuple(basis)),
            ("acquired", tuple(dates)),
        ):
            object.__setattr__(self, name, val)
        arrays = {
            "quantity": np.array(qty, dtype=float),
            "basis": np.array(basis, dtype=float),
            "acquired": np.array(dates, dtype="datetime64[D]"),
        }
        for v in arrays.values():
            v.setflags(write=False)
        object.__setattr__(self, "_arrays", arrays)

    def __getstate__(self) -> dict:
        return {k: getattr(self, k) for k in LOT_COLUMNS}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
        self.__post_init__()

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> TaxLots:
        """The lots of a DataFrame with columns ``asset, lot_id, quantity, basis, acquired``.

        Raises
        ------
        InputError
            A missing column, NaN, a quantity <= 0, a negative basis, an unreadable
            date or a duplicate lot_id, naming the row, lot and asset.
        """
        if isinstance(frame, TaxLots):
            return frame
        f = _columns(frame, LOT_COLUMNS, "lots")
        return cls(*(tuple(f[c].tolist()) for c in LOT_COLUMNS))

    def to_frame(self) -> pd.DataFrame:
        """The lots as a DataFrame (``acquired`` as ``datetime64[ns]``)."""
        return pd.DataFrame(
            {
                "asset": list(self.asset),
                "lot_id": list(self.lot_id),
                "quantity": np.array(self.quantity, dtype=float),
                "basis": np.array(self.basis, dtype=float),
                "acquired": pd.to_datetime(list(self.acquired)).astype("datetime64[ns]"),
            }
        )

    def __len__(self) -> int:
        return len(self.asset)

    @property
    def assets(self) -> tuple[str, ...]:
        """The assets that have lots (first-seen order)."""
        return tuple(dict.fromkeys(self.asset))

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """Read-only ``quantity``, ``basis`` (float) and ``acquired`` (datetime64[D]) arrays."""
        return self._arrays

    def positions(self, assets: pd.Index) -> np.ndarray:
        """Position in ``assets`` of each lot's asset (-1 when not there), shape (lots,)."""
        return assets.get_indexer(pd.Index(self.asset, dtype=object))

    def quantities(self, assets: pd.Index) -> np.ndarray:
        """Total quantity per asset of ``assets`` (0 for an asset without lots), shape (n,)."""
        pos = self.positions(assets)
        out = np.zeros(len(assets))
        ok = pos >= 0
        np.add.at(out, pos[ok], self._arrays["quantity"][ok])
        return out


@dataclass(frozen=True)
class RecentTrades:
    """Trades made before the plan (for the wash-sale window).

    Parameters
    ----------
    asset : tuple of str
    date : tuple of datetime.date
    side : tuple of str
        ``"buy"`` or ``"sell"``.
    quantity : tuple of float
        Units (> 0).
    gain : tuple of float or None
        Realized gain of a sell (currency, a loss negative); None for a buy.
    """

    asset: tuple
    date: tuple
    side: tuple
    quantity: tuple
    gain: tuple

    def __post_init__(self) -> None:
        cols = (self.asset, self.date, self.side, self.quantity, self.gain)
        if len({len(c) for c in cols}) != 1:
            raise InputError("RecentTrades: asset, date, side, quantity and gain differ in length")
        assets = tuple(str(a) for a in self.asset)
        dates, sides, qty, gains = [], [], [], []
        for r, a in enumerate(assets):
            where = f"recent trades row {r} (asset {a})"
            side = str(self.side[r]).strip().lower()
            if side not in ("buy", "sell"):
                raise InputError(f"{where}: side must be 'buy' or 'sell', got {self.side[r]!r}")
            q = _number(self.quantity[r], where, "quantity")
            if q <= 0:
                raise InputError(f"{where}: quantity must be positive, got {q:g}")
            g = self.gain[r]
            if side == "sell":
                if g is None or (isinstance(g, float) and math.isnan(g)):
                    raise InputError(
                        f"{where}: a sell needs its realized gain (column gain, negative "
                        "for a loss)"
                    )
                g = _number(g, where, "gain")
            else:
                g = None
            dates.append(as_date(self.date[r], f"{where}, column date"))
            sides.append(side)
            qty.append(q)
            gains.append(g)
        for name, val in (
            ("asset", assets),
            ("date", tuple(dates)),
            ("side", tuple(sides)),
            ("quantity", tuple(qty)),
            ("gain", tuple(gains)),
        ):
            object.__setattr__(self, name, val)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> RecentTrades:
        """Recent trades from a DataFrame with columns ``asset, date, side, quantity, gain``.

        ``gain`` may be left out when every row is a buy.

        Raises
        ------
        InputError
            A missing column, a bad side, a quantity <= 0, an unreadable date or a
            sell without its gain, naming the row and asset.
        """
        if isinstance(frame, RecentTrades):
            return frame
        f = _columns(frame, TRADE_COLUMNS[:4], "recent trades")
        gain = f["gain"].tolist() if "gain" in f.columns else [None] * len(f)
        return cls(*(tuple(f[c].tolist()) for c in TRADE_COLUMNS[:4]), tuple(gain))

    def to_frame(self) -> pd.DataFrame:
        """The trades as a DataFrame (``date`` as ``datetime64[ns]``, ``gain`` NaN for buys)."""
        return pd.DataFrame(
            {
                "asset": list(self.asset),
                "date": pd.to_datetime(list(self.date)).astype("datetime64[ns]"),
                "side": list(self.side),
                "quantity": np.array(self.quantity, dtype=float),
                "gain": np.array([np.nan if g is None else g for g in self.gain], dtype=float),
            }
        )

    def within(self, as_of: dt.date, days: int) -> tuple[set[str], set[str]]:
        """Assets bought, and assets sold at a loss, in the ``days`` before ``as_of``.

        A trade dated ``as_of - days`` up to ``as_of`` counts (the window is inclusive).
        """
        start = as_of - dt.timedelta(days=int(days))
        bought, lost = set(), set()
        for a, d, s, g in zip(self.asset, self.date, self.side, self.gain, strict=True):
            if start <= d <= as_of:
                if s == "buy":
                    bought.add(a)
                elif g is not None and g < 0:
                    lost.add(a)
        return bought, lost


def _rate(value, name: str) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if not ok or not (0.0 <= float(value) <= 1.0):
        raise InputError(
            f"TaxModel: {name} must be a decimal rate in [0, 1] (0.2 for 20%), got {value!r}"
        )
    return float(value)


def _count(value, name: str) -> int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
    if not ok or int(value) < 0:
        raise InputError(f"TaxModel: {name} must be a non-negative whole number, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TaxModel:
    """The taxes of one account and the options of the tax-aware plan.

    Parameters
    ----------
    short_rate, long_rate : float
        Tax rates on short-term and long-term gains (decimals, 0..1).
    long_after_days : int
        A lot held *more* than this many days (as of the plan) is long-term.
    loss_rate : float or None
        Value of a net realized loss (carried forward), decimal; None is 0
        (losses are worth only the gains they offset in this plan). Used only with
        ``harvest=True``. At most the lower of the two rates.
    gains_budget : float or None
        Cap on net realized gains, short plus long (currency, >= 0).
    short_budget : float or None
        Cap on net short-term gains (currency, >= 0).
    wash_days : int
        The wash-sale window, days.
    exact_assets : int
        Decide the directions exactly (branch and bound) when at most this many
        assets could go either way; 0: always the two-solve relaxation method.

    Raises
    ------
    InputError
        A field out of range, named with its fix.
    """

    short_rate: float = 0.0
    long_rate: float = 0.0
    long_after_days: int = 365
    loss_rate: float | None = None
    gains_budget: float | None = None
    short_budget: float | None = None
    wash_days: int = 30
    exact_assets: int = 10

    def __post_init__(self) -> None:
        short = _rate(self.short_rate, "short_rate")
        long_ = _rate(self.long_rate, "long_rate")
        loss = None if self.loss_rate is None else _rate(self.loss_rate, "loss_rate")
        lower, which = (long_, "long_rate") if long_ <= short else (short, "short_rate")
        if loss is not None and loss > lower:
            raise InputError(
                f"TaxModel: loss_rate {loss:g} is above {which} {lower:g}: a realized loss "
                f"cannot be worth more than the gains it offsets; lower loss_rate to at "
                f"most {lower:g}"
            )
        budgets = {}
        for name in ("gains_budget", "short_budget"):
            v = getattr(self, name)
            if v is not None:
                ok = isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)
                if not ok or not math.isfinite(float(v)) or float(v) < 0:
                    raise InputError(
                        f"TaxModel: {name} must be a non-negative amount of currency "
                        f"(or None for no cap), got {v!r}"
                    )
                v = float(v)
            budgets[name] = v
        values = {
            "short_rate": short,
            "long_rate": long_,
            "loss_rate": loss,
            "long_after_days": _count(self.long_after_days, "long_after_days"),
            "wash_days": _count(self.wash_days, "wash_days"),
            "exact_assets": _count(self.exact_assets, "exact_assets"),
            **budgets,
        }
        for name, v in values.items():
            object.__setattr__(self, name, v)

    @property
    def zero(self) -> bool:
        """True when no rate, loss value or budget is set (the plan is the tax-blind one)."""
        return (
            self.short_rate == 0
            and self.long_rate == 0
            and not self.loss_rate
            and self.gains_budget is None
            and self.short_budget is None
        )
