"""Tax lots, recent trades and ``[tax]``: what a taxable account's rebalance needs.

``[holdings]`` gains the account's tax lots and its recent trades (for the
wash-sale window), each inline or as a CSV file relative to the scenario::

    [holdings]
    quantities = { US_EQ = 120, ... }
    prices = { US_EQ = 412.5, ... }      # lots need prices (gains are per unit)
    lots = [                             # or lots_file = "lots.csv" (the same columns)
      { asset = "US_EQ", lot_id = "u1", quantity = 80, basis = 210.0, acquired = 2019-03-01 },
      { asset = "US_EQ", lot_id = "u2", quantity = 40, basis = 455.0, acquired = "2024-02-01" },
    ]
    recent = [                           # or recent_file = "recent.csv"
      { asset = "INTL_EQ", date = 2024-06-10, side = "buy", quantity = 50 },
      { asset = "REITS", date = 2024-06-03, side = "sell", quantity = 90, gain = -1200.0 },
    ]

    [tax]
    short_rate = 0.37          # short-term gains (decimal)        [0]
    long_rate = 0.20           # long-term gains (decimal)         [0]
    long_after_days = 365      # a lot held more than this is long-term   [365]
    loss_rate = 0.20           # value of a net loss carried forward [none: 0]
    gains_budget = 25_000      # cap on net realized gains (currency)      [none]
    short_budget = 0           # cap on net short-term gains (currency)    [none]
    wash_days = 30             # the wash-sale window (days)       [30]
    exact_assets = 10          # exact directions up to this many undecided assets [10]
    harvest = true             # realize losses worth their tracking error  [false]
    substitutes = { US_EQ = ["US_EQ_ALT"] }   # what may replace an asset sold at a loss

A lot's quantity is in units, its ``basis`` per unit (currency) and
``acquired`` a date (unquoted TOML date or ``"YYYY-MM-DD"``); the lots of an
asset must add up to the units held. A recent trade's ``side`` is "buy" or
"sell"; a sell gives its realized ``gain`` (currency, a loss negative). Every
problem names the file and the key path (``holdings.lots[3].basis``) or, in a
CSV, the file, row and column. Lots without ``[tax]`` plan with all rates 0
(the tax-blind trades, with the lots each sell comes from); ``[tax]`` needs
lots (or a batch, whose lots come from ``trimtab batch --lots``).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from scenarios.loader import MAX_DATA_VALUE, Table, closest, frozen_mapping, is_number, join
from scenarios.schema.common import PCT, Names, listing

_TAX = (
    "short_rate",
    "long_rate",
    "long_after_days",
    "loss_rate",
    "gains_budget",
    "short_budget",
    "wash_days",
    "exact_assets",
    "harvest",
    "substitutes",
)
#: Columns of a lots table (inline or CSV).
LOT_COLUMNS = ("asset", "lot_id", "quantity", "basis", "acquired")
#: Columns of a recent-trades table; ``gain`` only for sells.
RECENT_COLUMNS = ("asset", "date", "side", "quantity", "gain")
#: Units of two lots' sum and the holding that may differ (relative, for rounding).
QUANTITY_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class TaxSpec:
    """The ``[tax]`` section.

    Attributes
    ----------
    model : dict
        Keyword arguments of :class:`optimizer.rebalance.taxlots.TaxModel`
        (the keys given; the model's defaults for the rest).
    harvest : bool
        Realize losses worth more than their tracking-error cost.
    substitutes : mapping asset id -> tuple of asset ids
        What may be bought in place of an asset sold at a loss.
    """

    model: Mapping[str, Any] = field(default_factory=dict)
    harvest: bool = False
    substitutes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def tax_model(self):
        """The :class:`~optimizer.rebalance.taxlots.TaxModel` of these rates and limits."""
        from optimizer.rebalance.taxlots import TaxModel

        return TaxModel(**dict(self.model))

    def plan_kwargs(self) -> dict[str, Any]:
        """``tax``, ``harvest`` and ``substitutes`` for ``Rebalancer.plan``."""
        subs = {a: list(s) for a, s in self.substitutes.items()} or None
        return {"tax": self.tax_model(), "harvest": self.harvest, "substitutes": subs}


# ----------------------------------------------------------------------------- cells


def _date(value: object) -> dt.date | None:
    """A TOML date, a datetime's date, or an ISO ``YYYY-MM-DD`` string; None otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _cell(kind: str, value: object, names: Names) -> tuple[Any, str | None]:
    """``(parsed, problem)`` of one cell; ``problem`` None when it is good."""
    if kind == "asset":
        if not isinstance(value, str) or value not in names.asset_set:
            return None, f"unknown asset {value!r}{closest(str(value), names.assets)}"
        return value, None
    if kind == "id":
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
            return None, f"expected a non-empty lot id (text), got {value!r}"
        return str(value).strip(), None
    if kind == "side":
        if value not in ("buy", "sell"):
            return None, f"expected 'buy' or 'sell', got {value!r}"
        return value, None
    if kind == "date":
        day = _date(value)
        if day is None:
            return None, f"expected a date (YYYY-MM-DD), got {value!r}"
        return day, None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None, f"expected a number, got {value!r}"
    if not is_number(value) or not np.isfinite(float(value)) or abs(value) > MAX_DATA_VALUE:
        return None, f"expected a finite number, got {value!r}"
    v = float(value)
    if kind == "positive" and not v > 0:
        return None, f"must be > 0, got {value!r} (units held in the lot)"
    if kind == "nonnegative" and v < 0:
        return None, f"must be >= 0, got {value!r} (cost basis per unit, currency)"
    return v, None


_LOT_KINDS = {
    "asset": "asset",
    "lot_id": "id",
    "quantity": "positive",
    "basis": "nonnegative",
    "acquired": "date",
}
_RECENT_KINDS = {
    "asset": "asset",
    "date": "date",
    "side": "side",
    "quantity": "positive",
    "gain": "number",
}


def _records(
    records: list[dict],
    kinds: Mapping[str, str],
    names: Names,
    fail: Callable[[int, str | None, str], InputError],
    optional: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Typed rows (each cell checked; ``fail(i, column, problem)`` locates a bad one)."""
    out: dict[str, list] = {c: [] for c in kinds}
    for i, rec in enumerate(records):
        for col, kind in kinds.items():
            value = rec.get(col)
            if value is None or (isinstance(value, str) and not value.strip()):
                if col in optional:
                    out[col].append(np.nan)
                    continue
                raise fail(i, col, "missing (required)")
            parsed, problem = _cell(kind, value, names)
            if problem is not None:
                raise fail(i, col, problem)
            out[col].append(parsed)
    return pd.DataFrame(out, columns=list(kinds))


def _inline(t: Table, key: str, kinds: Mapping[str, str], names: Names, optional=()):
    """An inline array of tables at ``t.key`` as typed rows (key paths in every message)."""
    raw = t.raw(key)
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        raise t.error(
            key,
            f"expected an array of tables ({{ {', '.join(f'{c} = ...' for c in kinds)} }}), "
            f"got {type(raw).__name__}",
        )
    if not raw:
        raise t.error(key, "is empty: give at least one row, or leave the key out")
    for i, rec in enumerate(raw):
        Table(t.r, rec, f"{t.path(key)}[{i}]", tuple(kinds))  # unknown keys, named

    def fail(i: int, col: str | None, problem: str) -> InputError:
        row = f"{t.path(key)}[{i}]"
        return t.r.error(join(row, col) if col else row, problem)

    return _records(raw, kinds, names, fail, optional), fail


def _csv(t: Table, key: str, kinds: Mapping[str, str], names: Names, optional=()):
    """A CSV file named at ``t.key`` as typed rows (file, row and column in every message)."""
    where = t.path(key)
    path = t.r.file(where, t.raw(key))
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise t.r.error(where, f"cannot read CSV file {path.name!r}: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for c in frame.columns:
        if c not in kinds:
            hint = closest(c, kinds) or "; columns: " + ", ".join(kinds)
            raise t.r.error(where, f"{path.name}: unknown column {c!r}{hint}")
    for c in kinds:
        if c not in frame.columns and c not in optional:
            raise t.r.error(
                where, f"{path.name}: missing column {c!r} (columns: {', '.join(kinds)})"
            )
    if frame.empty:
        raise t.r.error(where, f"{path.name}: no rows")
    records = frame.to_dict(orient="records")

    def fail(i: int, col: str | None, problem: str) -> InputError:
        at = f"row {i + 2}" + (f", column {col!r}" if col else "")
        return t.r.error(where, f"{path.name}: {at}: {problem}")

    return _records(records, kinds, names, fail, optional), fail


def _table(t: Table, key: str, file_key: str, kinds, names: Names, optional=()):
    """``(rows, where, fail)`` given inline (``key``) or as a CSV file (``file_key``).

    ``rows`` None when neither is given; ``fail(i, column, problem)`` locates a
    problem of row ``i`` (key path inline; file, row and column in a CSV).
    """
    if key in t and file_key in t:
        raise t.error(file_key, f"give {key} (inline) or {file_key} (a CSV file), not both")
    if key in t:
        return (*_inline(t, key, kinds, names, optional), t.path(key))
    if file_key in t:
        return (*_csv(t, file_key, kinds, names, optional), t.path(file_key))
    return None, None, None


# ----------------------------------------------------------------------------- lots and recent


def read_lots(t: Table, names: Names, values: pd.Series, quantities, prices):
    """``holdings.lots`` / ``holdings.lots_file`` as a TaxLots, or None.

    Parameters
    ----------
    t : Table
        The ``[holdings]`` table.
    names : Names
    values : pandas.Series
        Market value by asset (currency), every asset.
    quantities, prices : pandas.Series or None
        As given in ``[holdings]``.

    Raises
    ------
    InputError
        A bad cell (key path, or file, row and column), a duplicate lot id, lots
        without ``holdings.prices``, an asset whose lots do not add up to the
        units held (both numbers named).
    """
    frame, fail, where = _table(t, "lots", "lots_file", _LOT_KINDS, names)
    if frame is None:
        return None
    dup = frame.duplicated(["asset", "lot_id"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise fail(
            i,
            "lot_id",
            f"duplicate lot_id {frame['lot_id'].iloc[i]!r} for {frame['asset'].iloc[i]!r}: "
            "give each lot of an asset its own id",
        )
    assets = list(dict.fromkeys(frame["asset"]))
    unpriced = [a for a in assets if prices is None or a not in prices.index]
    if unpriced:
        raise t.error(
            "prices",
            f"missing for {listing(unpriced)}: tax lots need a price per unit (gains are "
            "price minus basis)",
        )
    held_units = (
        quantities.reindex(names.assets).fillna(0.0)
        if quantities is not None
        else values / prices.reindex(names.assets)
    )
    total = frame.groupby("asset", sort=False)["quantity"].sum()
    for a, q in total.items():
        h = float(held_units.get(a, 0.0))
        if not np.isfinite(h) or abs(q - h) > QUANTITY_TOL * max(1.0, abs(h)):
            given = "holdings.quantities" if quantities is not None else "holdings values / prices"
            raise t.r.error(
                where,
                f"asset {a!r}: the lots hold {q:,.6g} units but {given} gives {h:,.6g}: the "
                "lots of an asset must add up to the units held",
            )
    held = values[values.abs() > 0].index
    bare = [a for a in held if a not in total.index]
    if bare:
        warnings.warn(
            f"{t.r.path}: {where}: no lots for {listing(bare)} (held): each is treated as one "
            "lot bought at today's price (no gain or loss when sold)",
            UserWarning,
            stacklevel=3,
        )
    from optimizer.rebalance.taxlots import TaxLots

    with t.r.wrap(where):
        return TaxLots.from_frame(frame)


def read_recent(t: Table, names: Names):
    """``holdings.recent`` / ``holdings.recent_file`` as a RecentTrades, or None.

    Raises
    ------
    InputError
        A bad cell (key path, or file, row and column); a sell without its ``gain``.
    """
    frame, fail, where = _table(t, "recent", "recent_file", _RECENT_KINDS, names, ("gain",))
    if frame is None:
        return None
    sells = (frame["side"] == "sell").to_numpy() & frame["gain"].isna().to_numpy()
    if sells.any():
        i = int(np.flatnonzero(sells)[0])
        raise fail(
            i,
            "gain",
            f"missing for the sell of {frame['asset'].iloc[i]!r} on {frame['date'].iloc[i]}: a "
            "recent sell gives its realized gain (currency, a loss negative)",
        )
    from optimizer.rebalance.taxlots import RecentTrades

    with t.r.wrap(where):
        return RecentTrades.from_frame(frame)


# ----------------------------------------------------------------------------- [tax]


def read_tax(top: Table, names: Names, *, lots: bool, batch: bool) -> TaxSpec | None:
    """The ``[tax]`` section, or None.

    Parameters
    ----------
    top : Table
        The document.
    names : Names
    lots : bool
        ``[holdings]`` gives lots.
    batch : bool
        The file has ``[batch]`` (the lots come from the batch's lots file).

    Raises
    ------
    InputError
        A rate outside 0..1, a window or threshold not a whole number >= 0, a
        budget < 0, unknown assets in ``substitutes`` (an asset its own
        substitute), rates out of order (the model's own check, at ``tax``),
        ``[tax]`` without lots.
    """
    t = top.table("tax", _TAX)
    if t is None:
        return None
    if not lots and not batch:
        raise t.error(
            None,
            "needs tax lots: give holdings.lots (inline) or holdings.lots_file (a CSV of "
            "asset, lot_id, quantity, basis, acquired)",
        )
    model: dict[str, Any] = {}
    for key in ("short_rate", "long_rate", "loss_rate"):
        if key in t:
            model[key] = t.number(key, low=0, high=1, hint=PCT)
    for key in ("long_after_days", "wash_days", "exact_assets"):
        if key in t:
            model[key] = t.integer(key, low=0)
    for key in ("gains_budget", "short_budget"):
        if key in t:
            model[key] = t.number(key, low=0, hint=" (currency)")
    harvest = t.boolean("harvest", False)
    subs: dict[str, tuple[str, ...]] = {}
    raw = t.raw("substitutes", None)
    if raw is not None:
        if not isinstance(raw, dict):
            raise t.error("substitutes", f"expected a table asset -> [substitutes], got {raw!r}")
        for a, items in raw.items():
            where = join(t.path("substitutes"), a)
            names.asset(t.r, where, a)
            items = [items] if isinstance(items, str) else items
            if not isinstance(items, list) or not items:
                raise t.r.error(where, f"expected a non-empty array of asset ids, got {items!r}")
            for i, s in enumerate(items):
                names.asset(t.r, f"{where}[{i}]", s)
                if s == a:
                    raise t.r.error(f"{where}[{i}]", f"{a!r} cannot substitute for itself")
            subs[str(a)] = tuple(dict.fromkeys(items))
    spec = TaxSpec(model=frozen_mapping(model), harvest=harvest, substitutes=frozen_mapping(subs))
    with t.r.wrap("tax"):
        spec.tax_model()  # the model's own checks (rates in order), located at [tax]
    return spec
