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
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from optimizer.allocation import to_jsonable
from optimizer.errors import InputError
from optimizer.triggers import Calendar, Decision, Hybrid, Threshold
from optimizer.validation import series

ORDERS_SCHEMA = "trimtab.orders/1"
ORDER_FIELDS = ("asset", "side", "quantity", "notional", "price", "est_cost")


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

    def to_orders(self) -> dict[str, Any]:
        """The orders as a JSON-ready dict (schema ``trimtab.orders/1``).

        Built from the trade table's columns (one pass of plain floats): the
        HTTP service returns it for every rebalance request.
        """
        t = self.trades
        side = [str(x) for x in t["side"].tolist()]
        columns = {k: _nums(t[k]) for k in ("quantity", "notional", "price", "est_cost")}
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
        notional = np.nan_to_num(t["notional"].to_numpy(dtype=float))
        buy = np.array([sd == "buy" for sd in side], dtype=bool)
        sell = np.array([sd == "sell" for sd in side], dtype=bool)
        return {
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

    def orders_csv(self) -> str:
        """The orders as CSV text: a header row, then one row per order."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(("schema", "as_of", "portfolio_id", *ORDER_FIELDS))
        for order in self.to_orders()["orders"]:
            writer.writerow(
                (
                    ORDERS_SCHEMA,
                    self.as_of or "",
                    self.portfolio_id or "",
                    *("" if order[f] is None else order[f] for f in ORDER_FIELDS),
                )
            )
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
