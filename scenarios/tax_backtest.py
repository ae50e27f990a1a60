"""A taxable account rebalanced monthly: tax-blind, tax-aware, and tax-aware with harvesting.

The account holds tax lots (quantity, basis per unit, acquisition date) and cash (no interest).
It is bought into the target from cash at the first date's close (a tax-blind plan, costs
paid); at every later month-end close but the last (the liquidation) a
:class:`~optimizer.rebalance.Rebalancer` plans the trades with the covariance of the trailing
``window`` months (:func:`models.covariance.ledoit_wolf`, re-estimated every month) and the
trades happen at that close. Strategies (:data:`STRATEGIES`):

* ``tax_blind``: ``plan`` without lots: it ignores taxes when deciding, but its sales still
  realize gains: the bookkeeping sells **highest basis first** (HIFO; ties: oldest first), the
  convention that realizes the least gain per unit sold, so the baseline is a careful one.
* ``tax_aware``: ``plan(lots=, tax=, recent=)``; sales come from the lots in ``plan.lot_sales``.
  ``recent``: the purchases and sales of the last ``wash_days + 1`` days, a sale as one row per
  asset and date with the net gain of its lots (a sale is "at a loss" when the lots net a loss).
* ``tax_aware_harvest``: also ``substitutes=`` and ``harvest=True`` (losses valued at
  ``tax.loss_rate``). The substitutes (:func:`substitutes`): each asset's most correlated other
  asset over the first covariance window (monthly returns; no look-ahead).

Bookkeeping (every strategy alike; the plans only decide the trades)
-------------------------------------------------------------------
* Sells remove lot quantities; buys create a lot (basis = price, acquired = date). A lot held
  more than ``tax.long_after_days`` days is long-term. Gains are ``(price - basis) * quantity``.
* Wash sales (``tax.wash_days``, both directions): a loss is disallowed for the units matched by
  a purchase of the same asset within the window before the sale (units still held after it)
  or after it; the disallowed loss is added to the basis of the replacement units (which
  become a lot of their own) and each unit is matched once. The replacement's holding period is
  not carried over (a simplification).
* Taxes of calendar year ``Y`` follow the netting rules: net short-term and net long-term gains
  with the losses carried forward by character; a net loss of one term offsets a net gain of the
  other; a loss left over is carried forward (no $3,000 ordinary-income offset; a loss still
  carried at the end is worth nothing). They are paid in cash, a withdrawal (``cash_flow``
  negative) at the first rebalance more than ``wash_days`` after 31 December (so every wash sale
  of year ``Y`` is known): usually the late-January or the February close.
* Costs (``costs``, in currency) are paid from cash at the trade; the cash then carries this
  small debit, raised at the next rebalance with any tax due (``cash_flow = cash - tax``).
* At the end the account is liquidated at the last close: costs and the tax still owed (the
  open years and the liquidation's gains) are paid: the after-tax terminal value.

Metrics (:func:`summary`): after-tax terminal value, pre-liquidation value (assets plus cash
at the last close, before that tax), taxes paid (and those paid at the end: the open years and
the liquidation's gains), annualized ex-post tracking error of the monthly returns (net of costs,
tax withdrawals excluded) against the target held exactly, average annual turnover (traded
notional over the value before trading, summed over months, per year; the initial purchase and
the liquidation excluded), wash-sale blocks (assets ``plan.tax`` says it did not buy because of
the rule) and the losses the wash-sale rule disallowed (deferred into replacement bases).

The tax-aware plans use ``exact_assets=0`` (:data:`US_TAX`): the two-solve relaxation method
decides every direction (the branch and bound is far too slow for 240 months of ~500 lots).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.covariance import ledoit_wolf
from models.returns import from_prices
from optimizer.costs import CostModel
from optimizer.errors import InputError, SolverError
from optimizer.rebalance import Rebalancer
from optimizer.rebalance.taxlots import RecentTrades, TaxLots, TaxModel
from optimizer.validation import real_number
from scenarios.backtest import _whole, metrics

#: The strategies, in the order of the table.
STRATEGIES = ("tax_blind", "tax_aware", "tax_aware_harvest")
#: The default tax model of the study: US-style federal rates, losses valued at the long rate.
US_TAX = TaxModel(short_rate=0.37, long_rate=0.20, loss_rate=0.20, exact_assets=0)
#: Quantities below this (units) are rounding dust: the lot is closed.
DUST = 1e-9
#: The columns of :attr:`TaxBacktestResult.sales`.
SALE_COLUMNS = [
    *("date", "asset", "lot_id", "quantity", "basis", "acquired", "proceeds", "gain"),
    *("term", "disallowed"),
]


@dataclass(frozen=True)
class TaxBacktestResult:
    """One strategy's path through a taxable backtest.

    Attributes
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    values : pandas.Series
        Account value (assets plus cash, currency) at each close after trading, the first date
        (the initial purchase) included; the last is the pre-liquidation value.
    returns, target_returns : pandas.Series
        Monthly returns of the account (net of costs, tax withdrawals excluded) and of the
        target held exactly (decimals), from the second date on.
    ledger : pandas.DataFrame
        One row per date (currency): ``cash_before``, ``value_before`` (before trading),
        ``tax_paid``, ``proceeds``, ``purchases``, ``costs``, ``cash_after``, ``assets`` (the
        lots after trading), ``traded``; ``min_lot`` (units), ``blocked`` (wash-sale blocks).
    sales : pandas.DataFrame
        Every lot sale, the liquidation's included (:data:`SALE_COLUMNS`; ``gain`` a loss
        negative; ``disallowed`` >= 0, the part of a loss the wash-sale rule disallowed).
    taxes : pandas.Series
        Tax paid by calendar year (currency), the final settlement included.
    lots : pandas.DataFrame
        The lots held at the last close, before the liquidation.
    metrics : dict
        See the module docstring.
    """

    strategy: str
    values: pd.Series
    returns: pd.Series
    target_returns: pd.Series
    ledger: pd.DataFrame
    sales: pd.DataFrame
    taxes: pd.Series
    lots: pd.DataFrame
    metrics: dict = field(default_factory=dict)


def month_end_prices(daily: pd.DataFrame) -> pd.DataFrame:
    """The last row of each calendar month of ``daily`` (T x n closes): shape (months, n)."""
    if not isinstance(daily, pd.DataFrame) or not isinstance(daily.index, pd.DatetimeIndex):
        raise InputError("prices must be a DataFrame with a DatetimeIndex (dates x assets)")
    daily = daily.sort_index()
    last = daily.index.to_series().groupby(daily.index.to_period("M")).max()
    return daily.loc[last.to_numpy()]


def substitutes(returns: pd.DataFrame) -> dict[str, list[str]]:
    """asset -> [the other asset with the highest correlation of ``returns`` (T x n)]."""
    corr = returns.corr().to_numpy(copy=True)
    np.fill_diagonal(corr, -np.inf)
    cols = returns.columns
    return {str(a): [str(cols[int(np.argmax(corr[i]))])] for i, a in enumerate(cols)}


def year_tax(short: float, long: float, carry: tuple[float, float], tax: TaxModel):
    """One calendar year's tax by the netting rules, with losses carried forward by character.

    Parameters
    ----------
    short, long : float
        The year's realized short- and long-term gains (currency, losses negative, wash-sale
        disallowed losses excluded).
    carry : tuple of float
        Short- and long-term losses carried in (currency, >= 0).
    tax : TaxModel
        ``short_rate`` and ``long_rate``.

    Returns
    -------
    tuple
        ``(tax, (short_carry, long_carry))``: the tax (currency, >= 0) and the losses carried out.
    """
    s, lg = short - carry[0], long - carry[1]
    if s < 0 <= lg or lg < 0 <= s:  # a net loss of one term offsets the other's net gain
        net = s + lg
        if net >= 0:
            s, lg = (net, 0.0) if s > 0 else (0.0, net)
        else:
            s, lg = (net, 0.0) if s < 0 else (0.0, net)
    due = tax.short_rate * max(s, 0.0) + tax.long_rate * max(lg, 0.0)
    return due, (max(-s, 0.0), max(-lg, 0.0))


class _Account:
    """Lots, cash and the sales ledger of one account; the bookkeeping rules of the module."""

    def __init__(self, tax: TaxModel) -> None:
        self.tax = tax
        self.lots: list[dict] = []  # asset, lot_id, quantity, basis, acquired, replaced
        self.sales: list[dict] = []  # SALE_COLUMNS plus open (loss units not yet matched)
        self.buys: list[dict] = []  # date, asset, quantity: for the recent-trades table
        self.cash = 0.0
        self.ids = 0

    def quantities(self, assets: pd.Index) -> pd.Series:
        q = pd.Series(0.0, index=assets)
        for lot in self.lots:
            q[lot["asset"]] += lot["quantity"]
        return q

    def frame(self) -> pd.DataFrame:
        cols = ["asset", "lot_id", "quantity", "basis", "acquired"]
        return pd.DataFrame([{k: lot[k] for k in cols} for lot in self.lots], columns=cols)

    def _new_lot(self, asset, quantity, basis, date, replaced=False) -> dict:
        self.ids += 1
        lot = {"asset": asset, "lot_id": f"{asset}-{date:%Y%m%d}-{self.ids}", "quantity": quantity}
        lot.update(basis=basis, acquired=date, replaced=replaced)
        self.lots.append(lot)
        return lot

    def sell(self, date, asset, price, picks) -> float:
        """Sell ``picks`` [(lot, quantity)]; the proceeds (currency)."""
        proceeds = 0.0
        for lot, qty in picks:
            qty = min(qty, lot["quantity"])
            lot["quantity"] -= qty
            held = (date - lot["acquired"]).days
            gain = (price - lot["basis"]) * qty
            sale = {"date": date, "asset": asset, "lot_id": lot["lot_id"], "quantity": qty}
            sale.update(basis=lot["basis"], acquired=lot["acquired"], proceeds=price * qty)
            sale.update(gain=gain, term="long" if held > self.tax.long_after_days else "short")
            sale.update(disallowed=0.0, open=qty if gain < 0 else 0.0)
            self.sales.append(sale)
            proceeds += price * qty
        self.lots = [lot for lot in self.lots if lot["quantity"] > DUST]
        return proceeds

    def hifo(self, asset, quantity) -> list[tuple[dict, float]]:
        """Highest basis first (ties: oldest first) for ``quantity`` units of ``asset``."""
        mine = sorted(
            (lot for lot in self.lots if lot["asset"] == asset),
            key=lambda lot: (-lot["basis"], lot["acquired"]),
        )
        picks, left = [], quantity
        for lot in mine:
            if left <= DUST:
                break
            take = min(left, lot["quantity"])
            picks.append((lot, take))
            left -= take
        return picks

    def _match(self, sale: dict, lot: dict, units: float) -> None:
        """Disallow ``units`` of ``sale``'s loss; ``units`` of ``lot`` replace them.

        The replacement units carry the disallowed loss in their basis: ``lot`` itself when
        all of it replaces, else a new lot split off it (``lot`` keeps the rest, unmatched).
        """
        per_unit = -sale["gain"] / sale["quantity"]
        sale["disallowed"] += per_unit * units
        sale["open"] -= units
        if units < lot["quantity"] - DUST:
            lot["quantity"] -= units
            self._new_lot(lot["asset"], units, lot["basis"] + per_unit, lot["acquired"], True)
        else:
            lot["basis"] += per_unit
            lot["replaced"] = True

    def wash_before(self, date, start: int) -> None:
        """Losses sold at ``date`` (sales from index ``start``) against purchases before it."""
        cutoff = date - pd.Timedelta(days=self.tax.wash_days)
        for sale in self.sales[start:]:
            if sale["open"] <= DUST:
                continue
            for lot in [
                x
                for x in self.lots
                if x["asset"] == sale["asset"] and not x["replaced"] and cutoff <= x["acquired"]
            ]:
                if sale["open"] > DUST:
                    self._match(sale, lot, min(sale["open"], lot["quantity"]))

    def buy(self, date, asset, price, quantity) -> float:
        """A purchase: a new lot (replacing earlier losses in the window); its cost (currency)."""
        lot = self._new_lot(asset, quantity, price, date)
        self.buys.append({"date": date, "asset": asset, "quantity": quantity})
        for sale in self._since(self.sales, date - pd.Timedelta(days=self.tax.wash_days)):
            if lot["replaced"]:
                break
            if sale["asset"] == asset and sale["open"] > DUST:
                self._match(sale, lot, min(sale["open"], lot["quantity"]))
        return price * quantity

    @staticmethod
    def _since(rows: list, cutoff) -> list:
        """The tail of ``rows`` (in date order) dated ``cutoff`` or later."""
        k = len(rows)
        while k and rows[k - 1]["date"] >= cutoff:
            k -= 1
        return rows[k:]

    def recent(self, date) -> pd.DataFrame:
        """Purchases and sales (one row per asset and date, the lots' net gain) in the window."""
        since = date - pd.Timedelta(days=self.tax.wash_days + 1)
        rows = [b | {"side": "buy", "gain": 0.0} for b in self._since(self.buys, since)]
        sold = pd.DataFrame(self._since(self.sales, since), columns=[*SALE_COLUMNS, "open"])
        sold = sold.groupby(["asset", "date"], as_index=False)[["quantity", "gain"]].sum()
        rows += sold.assign(side="sell").to_dict("records")
        return pd.DataFrame(rows, columns=["asset", "date", "side", "quantity", "gain"])

    def taxes_for(self, years: list[int], carry: tuple[float, float]):
        """The tax of each of ``years`` (in order) from the sales; the carry out."""
        out = {}
        sales = pd.DataFrame(self.sales, columns=[*SALE_COLUMNS, "open"])
        for y in years:
            mine = sales[sales["date"].map(lambda d: d.year) == y] if len(sales) else sales
            allowed = mine["gain"] + mine["disallowed"]
            short = float(allowed[mine["term"] == "short"].sum())
            long_ = float(allowed[mine["term"] == "long"].sum())
            out[y], carry = year_tax(short, long_, carry, self.tax)
        return out, carry


# ----------------------------------------------------------------------------- the driver


def _window_start(index: pd.DatetimeIndex, start, window: int) -> int:
    """Position of the first date (at or after ``start``) with ``window`` returns up to it."""
    first = window  # ``window`` returns need ``window + 1`` prices
    if start is None:
        return first
    pos = int(index.searchsorted(pd.Timestamp(start)))
    if pos < first:
        raise InputError(
            f"start {pd.Timestamp(start).date()} leaves fewer than window={window} monthly "
            f"returns before it (the prices begin {index[0].date()}); start at "
            f"{index[first].date()} or later, or shorten window"
        )
    return pos


def tax_backtest(
    prices: pd.DataFrame,
    strategy: str = "tax_aware",
    *,
    tax: TaxModel = US_TAX,
    costs: CostModel | None = None,
    start=None,
    end=None,
    window: int = 36,
    initial_value: float = 1_000_000.0,
    tracking_weight: float = 100.0,
    substitutes_map: Mapping[str, list[str]] | None = None,
    lot_size: float | None = None,
) -> TaxBacktestResult:
    """Run one strategy of the taxable backtest (module docstring) on month-end prices.

    Parameters
    ----------
    prices : pandas.DataFrame, shape (months, n)
        Month-end prices (adjusted closes; :func:`month_end_prices` of daily ones).
    strategy : {"tax_blind", "tax_aware", "tax_aware_harvest"}
    tax : TaxModel
        Rates, holding period and wash-sale window, for the plans (tax-aware strategies) and
        for the bookkeeping (every strategy). Default :data:`US_TAX`.
    costs : CostModel, optional
        Transaction costs; default 5 bps a side.
    start, end : date-like, optional
        The first date (the initial purchase, needs ``window`` monthly returns up to it) and
        the last (the liquidation); default: the first date the window allows, the last date.
    window : int
        Months of returns in each covariance estimate (Ledoit-Wolf, re-estimated monthly).
    initial_value : float
        Cash invested at the first close (currency).
    tracking_weight : float
        As for :class:`~optimizer.rebalance.Rebalancer`.
    substitutes_map : mapping, optional
        asset -> substitutes for harvesting; default :func:`substitutes` of the first window.
    lot_size : float, optional
        1 for whole shares; fractional by default.

    Returns
    -------
    TaxBacktestResult

    Raises
    ------
    InputError
        An unknown strategy, prices that are not positive and finite, a start without
        ``window`` returns before it, fewer than two dates between start and end.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    window = _whole(window, "window", 2)
    rets = from_prices(prices)  # validates: positive, finite, dated (errors name asset, date)
    prices = prices.sort_index()
    i0 = _window_start(prices.index, start, window)
    stop = (
        len(prices) if end is None else int(prices.index.searchsorted(pd.Timestamp(end), "right"))
    )
    if stop - i0 < 2:
        raise InputError(
            f"the backtest from {prices.index[min(i0, len(prices) - 1)].date()} to "
            f"{pd.Timestamp(end if end is not None else prices.index[-1]).date()} has fewer "
            "than two month-ends: widen start..end"
        )
    costs = CostModel(bps=5) if costs is None else costs
    assets = prices.columns
    target = pd.Series(1.0 / len(assets), index=assets)
    aware = strategy != "tax_blind"
    harvest = strategy == "tax_aware_harvest"
    first = rets.iloc[i0 - window : i0]  # the returns up to the first date
    subs = (substitutes_map or substitutes(first)) if harvest else None

    def rebalancer(i: int) -> Rebalancer:
        cov = ledoit_wolf(rets.iloc[i - window : i], periods_per_year=12)
        return Rebalancer(
            cov,
            costs=costs,
            tracking_weight=tracking_weight,
            holdings_as="quantity",
            lot_size=lot_size,
        )

    acct = _Account(tax)
    acct.cash = real_number(initial_value, what="initial_value")
    if not (math.isfinite(acct.cash) and acct.cash > 0):
        raise InputError(f"initial_value must be positive, got {initial_value!r}")
    dates = prices.index[i0:stop]
    rows: list[dict] = []
    carry, settled, taxes = (0.0, 0.0), dates[0].year - 1, {}
    for k, d in enumerate(dates):
        i, p = i0 + k, prices.iloc[i0 + k]
        q = acct.quantities(assets)
        row = {"date": d, "cash_before": acct.cash, "value_before": float(q @ p) + acct.cash}
        due = [
            y
            for y in range(settled + 1, d.year)
            if (d - pd.Timestamp(y, 12, 31)).days > tax.wash_days
        ]
        paid, carry = acct.taxes_for(due, carry)
        taxes |= paid
        settled = due[-1] if due else settled
        row["tax_paid"] = sum(paid.values())
        flow = acct.cash - row["tax_paid"]
        if k == len(dates) - 1:  # the liquidation: every lot sold, costs and the tax owed paid
            flow = -float(q @ p)
        kw = {}
        if aware and 0 < k < len(dates) - 1:
            recent = acct.recent(d)
            kw = dict(
                lots=TaxLots.from_frame(acct.frame()),
                tax=tax,
                recent=RecentTrades.from_frame(recent) if len(recent) else None,
                substitutes=subs,
                harvest=harvest,
            )
        plan = rebalancer(i).plan(q, target, prices=p, cash_flow=flow, as_of=d.date(), **kw)
        start_sales = len(acct.sales)
        proceeds = _sell(acct, plan, d, p)
        acct.wash_before(d, start_sales)
        purchases = sum(
            acct.buy(d, a, float(p[a]), float(t["quantity"]))
            for a, t in plan.trades[plan.trades["side"] == "buy"].iterrows()
        )
        acct.cash += proceeds - purchases - plan.total_cost - row["tax_paid"]
        lots = acct.frame()
        row |= {
            "proceeds": proceeds,
            "purchases": purchases,
            "costs": plan.total_cost,
            "cash_after": acct.cash,
            "assets": float((lots["quantity"] * p[lots["asset"]].to_numpy()).sum()),
            "traded": proceeds + purchases,
            "min_lot": float(lots["quantity"].min()) if len(lots) else 0.0,
            "blocked": len(plan.tax["blocked"]) if plan.tax else 0,
        }
        rows.append(row)
        if k == len(dates) - 2:
            held = lots
    final, carry = acct.taxes_for(list(range(settled + 1, dates[-1].year + 1)), carry)
    acct.cash -= sum(final.values())
    rows[-1]["tax_paid"] += sum(final.values())
    rows[-1]["cash_after"] = acct.cash
    taxes |= final
    return _result(strategy, acct, prices.iloc[i0:stop], rows, taxes, held, target)


def _sell(acct: _Account, plan, date, prices: pd.Series) -> float:
    """Book the plan's sales: its ``lot_sales`` (tax-aware), else highest basis first."""
    sells = plan.trades[plan.trades["side"] == "sell"]
    proceeds = 0.0
    by_id = {lot["lot_id"]: lot for lot in acct.lots}
    for asset, t in sells.iterrows():
        qty = float(t["quantity"])
        if plan.lot_sales is None:
            picks = acct.hifo(asset, qty)
        else:
            mine = plan.lot_sales[plan.lot_sales["asset"] == asset]
            picks = [
                (by_id[i], float(x)) for i, x in zip(mine["lot_id"], mine["quantity"], strict=True)
            ]
            # the lots sold are booked; they may differ from the trade by the solver's tolerance
            if abs(sum(x for _, x in picks) - qty) * prices[asset] > 1e-6 * plan.value_after:
                raise SolverError(
                    f"plan at {date.date()}: the lot sales of {asset} total "
                    f"{sum(x for _, x in picks):.9g} units but the trade sells {qty:.9g}: "
                    "report this plan (its lot_sales and trades disagree)"
                )
        proceeds += acct.sell(date, asset, float(prices[asset]), picks)
    return proceeds


def _result(strategy, acct, prices, rows, taxes, held, target) -> TaxBacktestResult:
    """Assemble the result and its metrics."""
    ledger = pd.DataFrame(rows).set_index("date")
    value = ledger["cash_after"] + ledger["assets"]
    value.iloc[-1] = ledger["value_before"].iloc[-1]  # the last: before the liquidation
    growth = (value + ledger["tax_paid"]).iloc[1:-1] / value.shift(1).iloc[1:-1]
    last = ledger["value_before"].iloc[-1] / value.iloc[-2]
    returns = pd.Series([*(growth - 1.0), last - 1.0], index=ledger.index[1:], name="return")
    bench = (prices.pct_change().iloc[1:] @ target).rename("target")
    sales = pd.DataFrame(acct.sales, columns=[*SALE_COLUMNS, "open"]).drop(columns="open")
    years = (ledger.index[-1] - ledger.index[0]).days / 365.25
    traded = ledger["traded"].iloc[1:-1] / ledger["value_before"].iloc[1:-1]
    stats = {
        "after_tax_value": float(ledger["cash_after"].iloc[-1]),
        "pre_liquidation_value": float(value.iloc[-1]),
        "taxes_paid": float(sum(taxes.values())),
        "taxes_at_end": float(ledger["tax_paid"].iloc[-1]),
        "tracking_error": metrics(returns, periods_per_year=12, benchmark=bench)["tracking_error"],
        "turnover": float(traded.sum() / years),
        "wash_blocks": int(ledger["blocked"].sum()),
        "wash_sales": int((sales["disallowed"] > 0).sum()),
        "disallowed": float(sales["disallowed"].sum()),
        "realized_gains": float(sales["gain"].sum() + sales["disallowed"].sum()),
        "costs": float(ledger["costs"].sum()),
    }
    return TaxBacktestResult(
        strategy=strategy,
        values=value.rename("value"),
        returns=returns,
        target_returns=bench,
        ledger=ledger,
        sales=sales,
        taxes=pd.Series(taxes, dtype=float, name="tax"),
        lots=held,
        metrics=stats,
    )


# ----------------------------------------------------------------------------- the study

#: The table's columns: metric key -> (heading, format).
COLUMNS = {
    "after_tax_value": ("after-tax terminal value", "{:,.0f}"),
    "pre_liquidation_value": ("pre-liquidation value", "{:,.0f}"),
    "taxes_paid": ("taxes paid", "{:,.0f}"),
    "taxes_at_end": ("of which at the end", "{:,.0f}"),
    "tracking_error": ("tracking error (ann.)", "{:.2%}"),
    "turnover": ("turnover (a year)", "{:.1%}"),
    "wash_blocks": ("wash-sale blocks", "{:d}"),
    "disallowed": ("losses disallowed (wash sales)", "{:,.0f}"),
}


def study(
    daily: pd.DataFrame,
    *,
    first: str = "2002-12",
    last: str = "2022-12",
    strategies=STRATEGIES,
    **options,
) -> dict[str, TaxBacktestResult]:
    """The three strategies on month-end prices of ``daily`` from ``first`` to ``last``.

    Parameters
    ----------
    daily : pandas.DataFrame
        Daily adjusted closes (e.g. ../shared/data/sp500_prices.csv.gz).
    first, last : str
        The months of the initial purchase and of the liquidation. The default: the purchase
        at the close of 2002-12, 239 monthly rebalances, the liquidation at the close of
        2022-12: 240 monthly returns, 2003-01..2022-12.
    strategies : sequence of str
    **options
        As for :func:`tax_backtest` (``tax``, ``costs``, ``window``, ...).

    Returns
    -------
    dict
        strategy -> :class:`TaxBacktestResult`.
    """
    monthly = month_end_prices(daily)
    months = monthly.index.to_period("M")
    try:
        inside = monthly.index[(months >= pd.Period(first, "M")) & (months <= pd.Period(last, "M"))]
    except (ValueError, TypeError):
        raise InputError(
            f"first={first!r} and last={last!r} must be months like '2002-12'"
        ) from None
    if len(inside) < 2:
        raise InputError(
            f"first={first!r} .. last={last!r} hold fewer than two month-ends of the prices "
            f"({monthly.index[0].date()} .. {monthly.index[-1].date()}): pick months inside them"
        )
    return {
        s: tax_backtest(monthly, s, start=inside[0], end=inside[-1], **options) for s in strategies
    }


def summary(results: Mapping[str, TaxBacktestResult]) -> pd.DataFrame:
    """The metrics of several strategies, one row each (:data:`COLUMNS` first)."""
    table = pd.DataFrame({name: r.metrics for name, r in results.items()}).T
    return table[[*COLUMNS, *(c for c in table.columns if c not in COLUMNS)]]


def markdown(table: pd.DataFrame) -> str:
    """:func:`summary`'s :data:`COLUMNS` as a markdown table."""
    head = "| strategy | " + " | ".join(h for h, _ in COLUMNS.values()) + " |"
    lines = [head, "|---" + "|---:" * len(COLUMNS) + "|"]
    for name, row in table.iterrows():
        cells = [
            fmt.format(int(row[k]) if fmt == "{:d}" else float(row[k]))
            for k, (_, fmt) in COLUMNS.items()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
