"""``[costs]`` and ``[rebalance]``: what trading costs, and how to trade toward the target."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optimizer.costs import CostModel
from scenarios.loader import Table, frozen_mapping, join
from scenarios.schema.common import PCT, Names, by_asset, listing
from scenarios.schema.portfolio import Holdings, Portfolio

_COSTS = ("bps", "buy_bps", "sell_bps", "fixed_per_trade", "impact", "adv")
_REBALANCE = (
    "tracking_weight",
    "threshold",
    "min_trade",
    "lot_size",
    "untradeable",
    "cash_flow",
    "max_turnover",
    "no_trade_band",
)


def _rate(t: Table, key: str, names: Names) -> Any:
    """A cost rate in basis points: one number, or a table by asset, tag or 'default'."""
    raw = t.raw(key, None)
    if raw is None or not isinstance(raw, dict):
        return t.number(key, None, low=0, high=10_000, hint=" (basis points: 10 is 0.1%)")
    if not raw:
        raise t.error(key, "is empty")
    for k in raw:
        if k != "default":
            names.asset_or_tag(t.r, join(t.path(key), k), k)
    return t.numbers(key, low=0, high=10_000, hint=" (basis points: 10 is 0.1%)")


def read_costs(top: Table, names: Names) -> CostModel | None:
    """The ``[costs]`` section as a :class:`~optimizer.costs.CostModel`, or None."""
    t = top.table("costs", _COSTS)
    if t is None:
        return None
    bps = _rate(t, "bps", names)
    buy, sell = _rate(t, "buy_bps", names), _rate(t, "sell_bps", names)
    fixed = t.number("fixed_per_trade", 0.0, low=0)
    impact = t.number("impact", 0.0, low=0)
    adv = by_asset(t, "adv", names, every=False, default=None, low=0, strict_low=True)
    if impact > 0 and adv is None:
        raise t.error("impact", "needs costs.adv (average daily traded value by asset)")
    with t.r.wrap(t.where):
        model = CostModel(
            bps=0.0 if bps is None else bps,
            buy_bps=buy,
            sell_bps=sell,
            fixed=fixed,
            impact=impact,
            adv=None if adv is None else dict(adv),
        )
        # cheap: checks every asset gets a rate and, with impact, an adv
        model.resolve(names.universe.index, names.universe, np.ones(len(names.assets)))
    return model


@dataclass(frozen=True, eq=False)
class RebalanceSpec:
    """How to trade toward the target: ``[rebalance]`` with what the holdings and portfolio add.

    Every option the file leaves out is None (or empty), and the rebalance then
    uses its own default. :meth:`kwargs` turns the spec into the keyword
    arguments of :func:`optimizer.rebalance.rebalance`.

    Attributes
    ----------
    cash_flow : float
        Currency to invest (> 0) or to raise (< 0): the holdings' cash plus
        ``[rebalance].cash_flow`` (cash held is invested). Minus the whole
        portfolio (positions plus cash withdrawn) is a liquidation.
    pending_flow : float
        ``[rebalance].cash_flow`` alone: the deposit (> 0) or withdrawal (< 0)
        pending, which makes any rebalance trigger trade.
    threshold : float or None
        Trade only when some weight drifts more than this from its target
        (decimal); None: always rebalance.
    tracking_weight : float or None
        Weight of the tracking error against the target in the rebalance's
        objective.
    min_trade : float or None
        Smallest trade (currency); smaller trades are dropped.
    max_turnover : float or None
        Cap on two-way turnover (decimal of the portfolio value).
    lot_size : float or mapping asset id -> float or None
        Trade quantities in multiples of this (one size, or by asset).
    no_trade_bands : float or mapping asset id -> float or None
        No trade while a weight is within this of its target (the file's
        ``no_trade_band``).
    untradeable : tuple of str
        Asset ids that do not trade (tags in the file expanded to their members).
    prices : pandas.Series or None
        Price per unit by asset, from ``[holdings].prices``: trades become quantities.
    as_of : datetime.date or None
        ``portfolio.as_of``, stamped on the orders.
    portfolio_id : str or None
        ``portfolio.id``, stamped on the orders.
    currency : str or None
        ``portfolio.currency``, stamped on the orders.
    """

    cash_flow: float = 0.0
    pending_flow: float = 0.0
    threshold: float | None = None
    tracking_weight: float | None = None
    min_trade: float | None = None
    max_turnover: float | None = None
    lot_size: float | Mapping[str, float] | None = None
    no_trade_bands: float | Mapping[str, float] | None = None
    untradeable: tuple[str, ...] = ()
    prices: pd.Series | None = None
    as_of: dt.date | None = None
    portfolio_id: str | None = None
    currency: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`optimizer.rebalance.rebalance`.

        Returns
        -------
        dict
            The options given (``tracking_weight``, ``min_trade``,
            ``max_turnover``, ``untradeable``, ``lot_size``, ``no_trade_bands``;
            per-asset values as plain dicts), ``cash_flow``, ``prices`` when
            known, ``as_of``, ``portfolio_id`` and ``currency``: everything but
            ``holdings``, ``target``, ``cov``, ``costs``, ``constraints`` and
            ``universe``. ``threshold`` is not a rebalance argument: the caller
            checks the drift first.
        """
        out: dict[str, Any] = {}
        for key in ("tracking_weight", "min_trade", "max_turnover"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.untradeable:
            out["untradeable"] = self.untradeable
        for key in ("lot_size", "no_trade_bands"):
            value = getattr(self, key)
            if value is not None:
                out[key] = dict(value) if isinstance(value, Mapping) else value
        out["cash_flow"] = self.cash_flow
        if self.prices is not None:
            out["prices"] = self.prices
        out["as_of"] = self.as_of
        out["portfolio_id"] = self.portfolio_id
        out["currency"] = self.currency
        return out


def read_rebalance(
    top: Table,
    names: Names,
    holdings: Holdings | None,
    portfolio: Portfolio,
    *,
    batch: bool = False,
    batch_prices: pd.Series | None = None,
) -> RebalanceSpec | None:
    """The ``[rebalance]`` section (defaults when absent), or None without ``[holdings]``.

    With ``batch`` (the file has ``[batch]``) and no ``[holdings]``, the
    options are the ones every account of the batch shares, priced by
    ``batch_prices``; ``cash_flow`` and ``threshold`` are per account there.
    """
    t = top.table("rebalance", _REBALANCE)
    if holdings is None and not batch:
        if t is not None:
            raise t.error(None, "needs [holdings] (the current portfolio to rebalance)")
        return None
    if t is None:
        t = Table(top.r, {}, "rebalance", _REBALANCE)
    if holdings is None:
        t.not_with(
            ("cash_flow", "threshold"),
            "in a batch scenario without [holdings] (each account's cash flow is in the "
            "accounts file)",
        )
    opts: dict[str, Any] = {}
    if "tracking_weight" in t:
        opts["tracking_weight"] = t.number("tracking_weight", low=0)
    if "min_trade" in t:
        opts["min_trade"] = t.number("min_trade", low=0)
    if "max_turnover" in t:
        opts["max_turnover"] = t.number(
            "max_turnover", low=0, hint=" (two-way turnover, decimal: 0.2 is 20%)"
        )
    untradeable: list[str] = []
    for i, key in enumerate(t.strings("untradeable", [])):
        names.asset_or_tag(t.r, f"{t.path('untradeable')}[{i}]", key)
        untradeable += [a for a in names.members(key) if a not in untradeable]
    for key, kwarg in (("lot_size", "lot_size"), ("no_trade_band", "no_trade_bands")):
        if key not in t:
            continue
        if isinstance(t.raw(key), dict):
            limits = {"low": 0, "strict_low": key == "lot_size"}
            per = by_asset(t, key, names, every=False, **limits)
            opts[kwarg] = frozen_mapping({a: float(v) for a, v in per.items()})
        elif key == "lot_size":
            opts[kwarg] = t.number(key, low=0, strict_low=True)
        else:
            opts[kwarg] = t.number(key, low=0, high=1, hint=PCT)
    prices = batch_prices if holdings is None else holdings.prices
    priced = set() if prices is None else set(prices.index)
    if "lot_size" in opts:
        lots = opts["lot_size"]
        sized = list(lots) if isinstance(lots, Mapping) else names.assets
        unpriced = [a for a in sized if a not in priced and a not in untradeable]
        if unpriced:
            where = "holdings.prices" if holdings is not None else "batch.prices"
            raise t.error("lot_size", f"needs {where} for {listing(unpriced)}")
    if priced:
        # the rebalance turns every trade into a quantity once prices are given
        unpriced = [a for a in names.assets if a not in priced and a not in untradeable]
        if unpriced:
            raise t.r.error(
                "holdings.prices" if holdings is not None else "batch.prices",
                f"missing for {listing(unpriced)}: with prices, every tradeable asset needs one "
                "(or list it in rebalance.untradeable)",
            )
    if holdings is None:  # a batch: the options every account shares
        return RebalanceSpec(
            untradeable=tuple(untradeable),
            prices=prices,
            as_of=portfolio.as_of,
            currency=portfolio.currency,
            **opts,
        )
    flow = t.number("cash_flow", 0.0)
    total = holdings.total
    # exactly the whole portfolio (to a cent's rounding) is a liquidation: every position sold
    if total + flow < -1e-9 * max(1.0, total):
        raise t.error(
            "cash_flow",
            f"withdraws {-flow:,.2f}, more than the portfolio's {total:,.2f} (positions plus "
            f"cash): at most {total:,.2f} can be withdrawn, which sells everything",
        )
    if total <= 0 and flow <= 0:
        raise t.r.error(
            "holdings",
            f"the account is empty (positions plus cash {total:,.2f}) and nothing is deposited: "
            "give holdings values, holdings.cash, or a positive rebalance.cash_flow to invest",
        )
    return RebalanceSpec(
        cash_flow=holdings.cash + flow,
        pending_flow=flow,
        threshold=t.number("threshold", None, low=0, high=1, strict_low=True, hint=PCT),
        untradeable=tuple(untradeable),
        prices=holdings.prices,
        as_of=portfolio.as_of,
        portfolio_id=portfolio.id,
        currency=portfolio.currency,
        **opts,
    )
