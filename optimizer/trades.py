"""Trades, rebalance plans, orders for trading systems, and one-date triggers.

The orders schema ``trimtab.orders/1`` (JSON; the same rows as CSV):

``schema`` ("trimtab.orders/1"), ``as_of`` (ISO date or null), ``portfolio_id``
(string or null), ``currency`` (string or null), ``value_before`` and
``value_after`` (portfolio value, currency), ``cash_flow`` (currency, > 0 a
contribution), ``targets`` (asset -> target weight, decimals), ``orders``: one
per traded asset with ``asset``, ``side`` ("buy" or "sell"), ``quantity``
(units, positive; null without prices), ``notional`` (currency, positive),
``price`` (null without prices), ``est_cost`` (currency), ``totals``
(``notional_buy``, ``notional_sell``, ``est_cost``), and ``relaxed`` (the soft
constraints that had to give, each ``name``, ``priority`` and ``amount``;
empty when none did).

``trimtab.orders/2`` (tax-aware plans only: ``lots=`` given; a tax-blind plan
still writes /1, byte for byte as before) is /1 plus: each sell order has
``lots``, one entry per lot sold from (``lot_id``, ``quantity`` (units),
``basis`` (per unit), ``acquired`` (ISO date), ``term`` ("short"/"long"),
``gain`` (currency, a loss negative)), empty for an asset sold without lots;
and a top-level ``tax`` (``short_gains``, ``long_gains``, ``net_gains`` and
``estimated_tax``, currency; a negative tax is a credit). Its CSV has /1's
columns plus ``lot_id``, ``lot_quantity``, ``basis``, ``acquired``, ``term``
and ``gain``: one row per lot for a sell with lots, one row (lot columns
empty) otherwise. :func:`read_orders` reads either version.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer.allocation import to_jsonable
from optimizer.errors import InputError
from optimizer.triggers import Calendar, Decision, Hybrid, Threshold
from optimizer.validation import series

ORDERS_SCHEMA = "trimtab.orders/1"
#: The tax-aware orders schema: /1 plus the lots of each sell and the tax.
ORDERS_SCHEMA_2 = "trimtab.orders/2"
#: Versions :func:`read_orders` reads.
ORDERS_SCHEMAS = (ORDERS_SCHEMA, ORDERS_SCHEMA_2)
ORDER_FIELDS = ("asset", "side", "quantity", "notional", "price", "est_cost")
#: Fields of each lot of a sell order (``trimtab.orders/2``).
LOT_FIELDS = ("lot_id", "quantity", "basis", "acquired", "term", "gain")
#: Columns /2's CSV adds to /1's (``lot_quantity`` is the lot's ``quantity``).
LOT_COLUMNS = ("lot_id", "lot_quantity", "basis", "acquired", "term", "gain")


@dataclass(frozen=True)
class RebalancePlan:
    """The result of :func:`optimizer.rebalance.rebalance`.

    Attributes
    ----------
    trades : pandas.DataFrame
        One row per traded asset (index: asset id) with ``side`` ("buy"/"sell"),
        ``notional`` (currency, positive), ``quantity`` (units, positive; NaN
        without prices), ``price``, ``cost_proportional``, ``cost_impact``,
        ``cost_fixed`` and ``est_cost`` (currency).
    weights_before, weights_after, target : pandas.Series
        Weights before trading (of the value before), after trading (of the
        value after) and the target.
    drift : pandas.Series
        ``weights_before - target`` (decimals; 0.0224 is 2.24 points).
    tracking_error_before, tracking_error_after : float
        Ex-ante annualized tracking error against the target.
    turnover : float
        Traded notional, buys plus sells, over the account's value before
        trading, ``value_before``; an account that holds only cash
        (``value_before`` 0) is measured against the cash it invests,
        ``value_after`` (buying an all-cash account into the target is 100%).
        Always finite.
    total_cost : float
        Estimated cost (currency); ``costs`` splits it into proportional,
        impact and fixed.
    value_before, value_after, cash_flow, cash_residual : float
        Portfolio values (currency); ``cash_residual`` is cash left uninvested
        by rounding to whole lots (non-negative).
    status, solver, attempts, notes, timings
        How it was solved (``status`` ``"liquidation"``, solver ``"none"``: the
        whole portfolio withdrawn, every position sold without a solve). The
        notes name what moved the plan off its target besides costs: dropped
        tickets and small trades, untradeable assets held off their target, a
        binding turnover cap, rounding to lots.
    checks : dict
        Verification of the final trades (after rounding to lots) against every
        constraint by name: ``{name: {"ok", "max_violation"[, "worst"]}}``, the
        trade limits (``"turnover cap"``, ``"participation limit"``) included.
    relaxed : tuple of dict
        Soft constraints that had to give, each ``{"name", "priority",
        "amount"}`` (amount in the constraint's own units), highest priority
        number first; empty when every constraint held as given.
    binding : tuple of dict
        Policy constraints binding at the post-trade weights: ``name``,
        ``label``, ``side`` (``"min"``, ``"max"``, ``"equal"``) and
        ``shadow_price`` (None: a rebalance reports no prices).
    lot_sales : pandas.DataFrame or None
        Tax-aware plans only (``lots=`` given): one row per lot sold, columns
        ``asset``, ``lot_id``, ``quantity`` (units), ``basis`` (per unit),
        ``acquired`` (date), ``term`` (``"short"``/``"long"``), ``proceeds`` and
        ``gain`` (currency, a loss negative), ``wash`` (True: a loss disallowed by
        the wash-sale rule). None for a tax-blind plan.
    tax : dict or None
        Tax-aware plans only: ``short_gains``, ``long_gains``, ``net_gains``
        (currency), ``tax`` (estimated tax, currency; negative: a credit),
        ``method`` (``"relaxation"`` or ``"exact"``) and ``blocked`` (assets not
        bought because of the wash-sale rule). None for a tax-blind plan.
    """

    trades: pd.DataFrame
    weights_before: pd.Series
    weights_after: pd.Series
    target: pd.Series
    drift: pd.Series
    tracking_error_before: float
    tracking_error_after: float
    turnover: float
    total_cost: float
    costs: dict
    value_before: float
    value_after: float
    cash_flow: float
    cash_residual: float = 0.0
    status: str = "optimal"
    solver: str = ""
    attempts: tuple = ()
    notes: tuple = ()
    checks: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    as_of: str | None = None
    portfolio_id: str | None = None
    currency: str | None = None
    relaxed: tuple = ()
    binding: tuple = ()
    lot_sales: pd.DataFrame | None = None
    tax: dict | None = None

    @property
    def schema(self) -> str:
        """The orders schema of this plan: /2 for a tax-aware plan, else /1."""
        return ORDERS_SCHEMA if self.lot_sales is None else ORDERS_SCHEMA_2

    def tax_summary(self) -> dict[str, Any] | None:
        """Tax paid against tracking error removed (None for a tax-blind plan).

        Returns
        -------
        dict or None
            ``short_gains``, ``long_gains``, ``net_gains`` and ``estimated_tax``
            (currency; a negative tax is a credit), ``method``, ``blocked``
            (assets not bought: wash sales), ``lots_sold`` (count),
            ``wash_sales`` (lots whose loss the wash-sale rule disallowed),
            ``tracking_error_before``, ``tracking_error_after`` and
            ``tracking_error_removed`` (annualized decimals), and
            ``tax_per_te_point`` (estimated tax per point, 0.01, of tracking
            error removed; None when no tax is paid or no tracking error removed).
        """
        if self.lot_sales is None:
            return None
        tax = self.tax or {}
        removed = float(self.tracking_error_before) - float(self.tracking_error_after)
        paid = _num(tax.get("tax", 0.0))
        sales = self.lot_sales
        wash = int(sales["wash"].astype(bool).sum()) if "wash" in sales else 0
        return {
            "short_gains": _num(tax.get("short_gains", 0.0)),
            "long_gains": _num(tax.get("long_gains", 0.0)),
            "net_gains": _num(tax.get("net_gains", 0.0)),
            "estimated_tax": paid,
            "method": tax.get("method"),
            "blocked": [str(a) for a in tax.get("blocked", ()) or ()],
            "lots_sold": len(sales),
            "wash_sales": wash,
            "tracking_error_before": _num(self.tracking_error_before),
            "tracking_error_after": _num(self.tracking_error_after),
            "tracking_error_removed": _num(removed),
            "tax_per_te_point": (
                None if paid is None or paid <= 0 or not removed > 1e-12 else paid / (removed * 100)
            ),
        }

    def to_orders(self) -> dict[str, Any]:
        """The orders as a JSON-ready dict (schema ``trimtab.orders/1``, or /2 when tax-aware).

        Built from the trade table's columns (one pass of plain floats): the
        HTTP service returns it for every rebalance request. A tax-aware plan
        (``lot_sales`` not None) gives ``trimtab.orders/2``: each sell order
        with its ``lots`` and a top-level ``tax`` (module docs).
        """
        t = self.trades
        # the table as one object array: far cheaper than a Series per column
        cells = t.to_numpy()
        at = {
            k: t.columns.get_loc(k) for k in ("side", "quantity", "notional", "price", "est_cost")
        }
        side = [str(x) for x in cells[:, at.pop("side")].tolist()]
        floats = {k: np.asarray(cells[:, j], dtype=float) for k, j in at.items()}
        columns = {
            k: [v if math.isfinite(v) else None for v in a.tolist()] for k, a in floats.items()
        }
        orders = [
            {
                "asset": str(asset),
                "side": sd,
                "quantity": q,
                "notional": v,
                "price": p,
                "est_cost": c,
            }
            for asset, sd, q, v, p, c in zip(t.index, side, *columns.values(), strict=True)
        ]
        notional = np.nan_to_num(floats["notional"])
        buy = np.array([sd == "buy" for sd in side], dtype=bool)
        sell = np.array([sd == "sell" for sd in side], dtype=bool)
        out = {
            "schema": ORDERS_SCHEMA,
            "as_of": self.as_of,
            "portfolio_id": self.portfolio_id,
            "currency": self.currency,
            "value_before": _num(self.value_before),
            "value_after": _num(self.value_after),
            "cash_flow": _num(self.cash_flow),
            "targets": dict(zip(map(str, self.target.index), _nums(self.target), strict=True)),
            "orders": orders,
            "totals": {
                "notional_buy": float(notional[buy].sum()),
                "notional_sell": float(notional[sell].sum()),
                "est_cost": _num(self.total_cost),
            },
            "relaxed": to_jsonable([dict(r) for r in self.relaxed]),
        }
        if self.lot_sales is None:
            return out
        by_asset = lot_rows(self.lot_sales)
        for order in orders:
            if order["side"] == "sell":
                order["lots"] = by_asset.get(order["asset"], [])
        tax = self.tax or {}
        out["schema"] = ORDERS_SCHEMA_2
        out["tax"] = {
            "short_gains": _num(tax.get("short_gains", 0.0)),
            "long_gains": _num(tax.get("long_gains", 0.0)),
            "net_gains": _num(tax.get("net_gains", 0.0)),
            "estimated_tax": _num(tax.get("tax", 0.0)),
        }
        return out

    def orders_csv(self) -> str:
        """The orders as CSV text: a header row, then one row per order.

        A tax-aware plan (``trimtab.orders/2``) adds the columns
        :data:`LOT_COLUMNS`: one row per lot of a sell with lots (the order's
        own columns repeated), one row with empty lot columns otherwise.
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        doc = self.to_orders()
        schema = doc["schema"]
        lots = schema == ORDERS_SCHEMA_2
        writer.writerow(
            ("schema", "as_of", "portfolio_id", *ORDER_FIELDS, *(LOT_COLUMNS if lots else ()))
        )
        for order in doc["orders"]:
            head = (
                schema,
                self.as_of or "",
                self.portfolio_id or "",
                *("" if order[f] is None else order[f] for f in ORDER_FIELDS),
            )
            if not lots:
                writer.writerow(head)
                continue
            for lot in order.get("lots") or [None]:
                cells = ("",) * len(LOT_FIELDS) if lot is None else _lot_cells(lot)
                writer.writerow((*head, *cells))
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        """Everything in the plan, JSON-ready."""
        return to_jsonable(
            {
                "orders": self.to_orders(),
                "weights_before": self.weights_before,
                "weights_after": self.weights_after,
                "drift": self.drift,
                "tracking_error_before": self.tracking_error_before,
                "tracking_error_after": self.tracking_error_after,
                "turnover": self.turnover,
                "total_cost": self.total_cost,
                "costs": self.costs,
                "cash_residual": self.cash_residual,
                "status": self.status,
                "solver": self.solver,
                "attempts": list(self.attempts),
                "notes": list(self.notes),
                "checks": self.checks,
                "relaxed": list(self.relaxed),
                "binding": list(self.binding),
                "timings": self.timings,
                **(
                    {}
                    if self.lot_sales is None
                    else {"tax": self.tax, "lot_sales": _lot_records(self.lot_sales)}
                ),
            }
        )


def _num(value) -> float | None:
    """A finite float, else None (JSON has no NaN or infinity)."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _nums(column: pd.Series) -> list[float | None]:
    """A column as finite floats, None where NaN or infinite."""
    values = column.to_numpy(dtype=float)
    return [v if math.isfinite(v) else None for v in values.tolist()]


def lot_rows(lot_sales: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The lots sold by asset, each ``{lot_id, quantity, basis, acquired, term, gain}``.

    Parameters
    ----------
    lot_sales : pandas.DataFrame
        :attr:`RebalancePlan.lot_sales` (one row per lot sold).

    Returns
    -------
    dict
        Asset id -> its lots in the table's order, JSON-ready (``acquired`` an
        ISO date, numbers finite floats or None).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    if lot_sales is None or len(lot_sales) == 0:
        return out
    t = lot_sales
    quantity, basis, gain = (_nums(t[c]) for c in ("quantity", "basis", "gain"))
    rows = zip(
        t["asset"], t["lot_id"], quantity, basis, t["acquired"], t["term"], gain, strict=True
    )
    for asset, lot_id, q, b, acquired, term, g in rows:
        out.setdefault(str(asset), []).append(
            {
                "lot_id": str(lot_id),
                "quantity": q,
                "basis": b,
                "acquired": _iso(acquired),
                "term": str(term),
                "gain": g,
            }
        )
    return out


def _lot_records(lot_sales: pd.DataFrame) -> list[dict[str, Any]]:
    """``lot_sales`` as JSON-ready records (``acquired`` an ISO date)."""
    records = lot_sales.to_dict(orient="records")
    for r in records:
        if "acquired" in r:
            r["acquired"] = _iso(r["acquired"])
    return records


def _lot_cells(lot: dict[str, Any]) -> tuple:
    return tuple("" if lot.get(f) is None else lot[f] for f in LOT_FIELDS)


def read_orders(source: str | os.PathLike | dict) -> dict[str, Any]:
    """Orders of ``trimtab.orders/1`` or ``/2``, checked.

    Parameters
    ----------
    source : str, os.PathLike or dict
        A JSON file's path, JSON text (starting with ``{``), or the parsed dict.

    Returns
    -------
    dict
        The orders as written (``schema`` says the version); a /1 document
        has no ``lots`` and no ``tax``.

    Raises
    ------
    InputError
        A file that cannot be read, text that is not JSON, another schema (named),
        or orders without their fields (the order and field named).
    """
    where = "orders"
    if isinstance(source, dict):
        doc: Any = source
    elif isinstance(source, str) and source.lstrip().startswith("{"):
        doc = _json(source, "the orders text")
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"{path}: cannot read the orders file: {exc.strerror or exc}"
            ) from None
        doc = _json(text, str(path))
    else:
        raise InputError(
            f"read_orders takes a path, JSON text or a dict, got {type(source).__name__}"
        )
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a JSON object with a schema, got {type(doc).__name__}")
    schema = doc.get("schema")
    if schema not in ORDERS_SCHEMAS:
        raise InputError(
            f"{where}: unknown orders schema {schema!r}: trimtab reads "
            f"{' and '.join(ORDERS_SCHEMAS)}; write the orders with a trimtab that makes one"
        )
    orders = doc.get("orders")
    if not isinstance(orders, list):
        raise InputError(f"{where}: 'orders' missing or not a list ({schema})")
    for i, order in enumerate(orders):
        if not isinstance(order, dict):
            raise InputError(f"{where}: orders[{i}]: expected an object")
        for f in ORDER_FIELDS:
            if f not in order:
                raise InputError(f"{where}: orders[{i}]: missing field {f!r} ({schema})")
        if schema == ORDERS_SCHEMA_2 and order["side"] == "sell":
            lots = order.get("lots")
            if not isinstance(lots, list):
                raise InputError(
                    f"{where}: orders[{i}] (sell {order['asset']!r}): 'lots' missing or not a "
                    f"list ({schema})"
                )
            for j, lot in enumerate(lots):
                missing = [f for f in LOT_FIELDS if not isinstance(lot, dict) or f not in lot]
                if missing:
                    raise InputError(
                        f"{where}: orders[{i}].lots[{j}] (asset {order['asset']!r}): missing "
                        f"field {missing[0]!r} ({schema})"
                    )
    if schema == ORDERS_SCHEMA_2 and not isinstance(doc.get("tax"), dict):
        raise InputError(f"{where}: 'tax' missing or not an object ({schema})")
    return doc


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what}: not JSON: {exc}") from None


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date | pd.Timestamp):
        return pd.Timestamp(value).date().isoformat()
    return str(value)


# ----------------------------------------------------------------------------- drift and triggers


def drift(holdings: pd.Series, target: pd.Series, *, cash: float = 0.0) -> pd.DataFrame:
    """Current weights against target.

    Parameters
    ----------
    holdings : pandas.Series
        Market values by asset (currency).
    target : pandas.Series
        Target weights by asset (decimals); assets missing from one side count as 0.
    cash : float
        Idle cash in the account (currency): the weights are of the account's
        value including it, so they sum to ``1 - cash / (holdings + cash)``.

    Returns
    -------
    pandas.DataFrame
        Index asset; columns ``value``, ``weight``, ``target``, ``drift``
        (``weight - target``, decimals) and ``relative_drift``
        (``drift / target``, NaN where the target is 0).

    Raises
    ------
    InputError
        NaN values, or an account (holdings plus cash) whose value is not positive.
    """
    h = series(holdings, what="holdings")
    t = series(target, what="target")
    assets = h.index.union(t.index, sort=False)
    h = h.reindex(assets, fill_value=0.0)
    t = t.reindex(assets, fill_value=0.0)
    try:
        idle = float(cash)
    except (TypeError, ValueError):
        raise InputError(f"cash must be a number, got {cash!r}") from None
    total = float(h.sum()) + idle
    if not total > 0:
        raise InputError(
            f"holdings must have a positive total value: positions {float(h.sum()):,.2f} plus "
            f"cash {idle:,.2f} is {total:,.2f}; an empty account has no weights to drift"
        )
    w = h / total
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(t.to_numpy() != 0, (w - t).to_numpy() / t.to_numpy(), np.nan)
    return pd.DataFrame(
        {"value": h, "weight": w, "target": t, "drift": w - t, "relative_drift": rel}
    )


def threshold_check(table: pd.DataFrame, band: float | dict, *, relative: bool = False) -> Decision:
    """Trade when any asset drifts more than ``band`` from its target.

    A wrapper of :class:`optimizer.triggers.Threshold` for a :func:`drift` table.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`drift`.
    band : float or mapping asset -> float
        Absolute drift in weight (0.05 is 5 points), or relative to the target
        with ``relative=True`` (0.25 is 25% of the target weight).
    """
    return Threshold(band, relative=relative).check(table["weight"], table["target"])


def calendar_check(as_of, last_rebalance, *, months: int) -> Decision:
    """Trade when at least ``months`` calendar months have passed since the last rebalance.

    A wrapper of :class:`optimizer.triggers.Calendar` with ``months=``.
    """
    return Calendar(months=months).due(as_of=as_of, last=last_rebalance)


def hybrid_check(table, band, as_of, last_rebalance, *, months: int) -> Decision:
    """Trade on a calendar review date only when some drift exceeds the band.

    A wrapper of :class:`optimizer.triggers.Hybrid` with ``months=``.
    """
    return Hybrid(months=months, band=band).check(
        table["weight"], table["target"], as_of=as_of, last=last_rebalance
    )
