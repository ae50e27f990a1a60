"""What a worker does with one partition of accounts: one plan per account, failures kept apart.

:func:`solve_partition` runs where Dask puts it (or in-process). It takes the
partition's rows (:mod:`scenarios.batch.accounts`) and the :class:`BatchContext`
every partition shares (sent to each worker once), and returns a
:class:`PartResult`: the orders of every account that could be planned, one
status row per account, and the partition's sums per asset for the pooled
orders. An account that fails (an unknown asset, a negative quantity, an
infeasible restriction, a solver failure) gets its status row with the reason,
which names the culprit; the other accounts of the partition are unaffected.

Each worker process keeps the :class:`~optimizer.rebalance.Rebalancer` of each
structure it meets (the scenario's content plus the account's untradeable
assets) in :data:`REBALANCERS`, a cache bounded in bytes and keyed by content:
a hit is a rebalancer built from equal inputs, so it never changes an answer.
An account with ``restricted`` assets (no buying) gets a rebalancer of its own,
its bounds being the account's current weights.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optimizer.compiled import ContentCache
from optimizer.constraints import Bounds
from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.rebalance import Rebalancer
from optimizer.trades import LOT_COLUMNS, ORDERS_SCHEMA
from scenarios.batch.accounts import SETTINGS, amount_column, split_lists

#: Rebalancers of this worker process by content (bounded; never changes an answer).
REBALANCERS = ContentCache(max_bytes=128 * 2**20, max_items=64)
#: Name of the bound a ``restricted`` list adds (each asset at most its current weight).
RESTRICTION = "no-buy restriction"
#: Columns of the orders table: the ``trimtab.orders/1`` rows, with the account first.
ORDER_COLUMNS = (
    "account",
    "schema",
    "as_of",
    "portfolio_id",
    "asset",
    "side",
    "quantity",
    "notional",
    "price",
    "est_cost",
)
#: Columns of the status table.
STATUS_COLUMNS = (
    "account",
    "model",
    "status",
    "reason",
    "value_before",
    "value_after",
    "cash_flow",
    "turnover",
    "total_cost",
    "tracking_error_before",
    "tracking_error_after",
    "plan_status",
    "solver",
)
#: Columns a taxable batch (``--lots``) adds to the orders: one row per lot of a sell.
TAX_ORDER_COLUMNS = ORDER_COLUMNS + LOT_COLUMNS
#: Columns a taxable batch adds to the status (currency; NaN for an account without lots).
TAX_STATUS_COLUMNS = STATUS_COLUMNS + ("short_gains", "long_gains", "net_gains", "estimated_tax")
#: Statuses of an account: planned, infeasible (with the diagnosis), failed (with the reason).
STATUSES = ("ok", "infeasible", "failed")
#: Sums per asset of one partition, for the pooled orders.
POOLED_SUMS = ("buy_notional", "sell_notional", "buy_quantity", "sell_quantity", "est_cost")


@dataclass(frozen=True, eq=False)
class BatchContext:
    """What every account of a batch shares: the rebalance's structure, the models, the prices.

    Attributes
    ----------
    cov : pandas.DataFrame (n x n) or FactorCovariance
        Annualized covariance (fixes the assets and their order).
    costs : CostModel or None
    constraints : tuple
        Policy constraints on the post-trade weights.
    universe : Universe
    options : dict
        The :class:`Rebalancer` options of ``[rebalance]`` (tracking_weight,
        min_trade, max_turnover, lot_size, no_trade_bands, untradeable).
    models : dict model id -> pandas.Series
        Target weights (decimals), in the covariance's asset order.
    prices : pandas.Series or None
        Price per unit, in the covariance's asset order (NaN where not given).
    holdings_as : {"value", "quantity"}
        What the accounts file's amount column holds.
    as_of, currency
        Stamped on the orders.
    tax : dict or None
        A taxable batch's ``tax`` (TaxModel), ``harvest`` and ``substitutes``
        (keyword arguments of ``Rebalancer.plan`` for an account with lots);
        None: every account is planned tax-blind.
    key : str
        SHA-256 of the content above (the worker caches are keyed by it).
    """

    cov: Any
    costs: Any
    constraints: tuple
    universe: Any
    options: dict
    models: dict
    prices: pd.Series | None
    holdings_as: str
    as_of: Any = None
    currency: str | None = None
    tax: dict | None = None
    key: str = field(default="")

    @property
    def assets(self) -> pd.Index:
        """Asset ids in the covariance's order."""
        return self.cov.index if isinstance(self.cov, pd.DataFrame) else self.cov.assets

    def keyed(self) -> BatchContext:
        """This context with :attr:`key` set from its content."""
        blob = pickle.dumps(
            (
                self.cov,
                self.costs,
                self.constraints,
                self.universe,
                sorted(self.options.items()),
                sorted((k, v.to_numpy().tobytes()) for k, v in self.models.items()),
                None if self.prices is None else self.prices.to_numpy().tobytes(),
                self.holdings_as,
                self.as_of,
                self.currency,
                None if self.tax is None else sorted(self.tax.items()),
            )
        )
        key = hashlib.sha256(blob).hexdigest()
        return BatchContext(**{**self.__dict__, "key": key})

    def rebalancer(self, untradeable: tuple[str, ...] = (), extra: tuple = ()) -> Rebalancer:
        """A :class:`Rebalancer` of this structure (more assets untradeable, more constraints)."""
        options = dict(self.options)
        base = tuple(options.pop("untradeable", ()))
        frozen = tuple(dict.fromkeys(base + tuple(untradeable)))
        return Rebalancer(
            self.cov,
            costs=self.costs,
            constraints=self.constraints + tuple(extra),
            universe=self.universe,
            untradeable=frozen,
            holdings_as=self.holdings_as,
            currency=self.currency,
            **options,
        )


@dataclass
class PartResult:
    """One partition's results (picklable: it travels back from the worker).

    Attributes
    ----------
    pid : int
        Partition number (0 for the first in the file).
    orders : pandas.DataFrame
        :data:`ORDER_COLUMNS`, one row per planned account and asset.
    status : pandas.DataFrame
        :data:`STATUS_COLUMNS`, one row per account.
    pooled : pandas.DataFrame
        Sums per asset (:data:`POOLED_SUMS`, plus ``accounts_buying`` and
        ``accounts_selling``), indexed by asset.
    seconds : float
        Time the worker spent on the partition.
    worker : dict
        ``pid`` and ``peak_rss_mb`` of the worker process.
    """

    pid: int
    orders: pd.DataFrame
    status: pd.DataFrame
    pooled: pd.DataFrame
    seconds: float
    worker: dict


def _rebalancer_for(
    ctx: BatchContext, untradeable: tuple[str, ...], restricted: tuple[str, ...], values, flow
) -> Rebalancer:
    """The account's rebalancer: cached by structure, or its own with a restriction."""
    if restricted:
        v1 = float(np.nansum(values)) + flow
        where = [ctx.assets.get_loc(a) for a in restricted]
        if v1 > 0 and np.isfinite(values[where]).all():
            upper = {
                a: max(float(values[i]), 0.0) / v1 for a, i in zip(restricted, where, strict=True)
            }
            bound = Bounds(upper=upper, name=RESTRICTION)
            return ctx.rebalancer(untradeable, (bound,))
    return REBALANCERS.get(("batch", ctx.key, untradeable), lambda: ctx.rebalancer(untradeable))


def _check_assets(names, known, what: str) -> None:
    for a in names:
        if a not in known:
            raise InputError(f"{what}: unknown asset {a!r} (not in the scenario's [[assets]])")


def account_inputs(ctx: BatchContext, cols: dict, lo: int, hi: int, known: dict):
    """``(rebalancer, holdings, target, cash_flow)`` of the account in rows ``lo:hi`` of ``cols``.

    ``cols`` holds the partition's columns as arrays (``amount``: the
    quantity or value column). Raises InputError naming an unknown asset.
    """
    flow = float(cols["cash_flow"][lo])
    names = cols["asset"][lo:hi]
    held = [i for i, a in enumerate(names) if a is not None]
    _check_assets([names[i] for i in held], known, "the holdings")
    untradeable = split_lists(cols["untradeable"][lo])
    restricted = split_lists(cols["restricted"][lo])
    _check_assets(untradeable, known, "untradeable")
    _check_assets(restricted, known, "restricted")
    h = np.zeros(len(known))
    h[[known[names[i]] for i in held]] = cols["amount"][lo:hi][held]
    values = h if ctx.holdings_as == "value" else h * ctx.prices.to_numpy()
    rb = _rebalancer_for(ctx, untradeable, restricted, values, flow)
    return rb, pd.Series(h, index=rb.assets), ctx.models[cols["model"][lo]], flow


def failure(exc: BaseException) -> tuple[str, str]:
    """``(status, reason)`` of an account that could not be planned."""
    if isinstance(exc, InfeasibleError):
        return "infeasible", _diagnosed(exc)
    if isinstance(exc, InputError | SolverError):
        return "failed", str(exc)
    return "failed", f"unexpected error: {type(exc).__name__}: {exc}"


def account_lots(rows: pd.DataFrame, known: dict):
    """The :class:`~optimizer.rebalance.taxlots.TaxLots` of one account's rows of the lots file.

    Raises
    ------
    InputError
        ``"lots file row N: lot 'L' of 'A': column 'basis': ..."`` for a bad
        cell (an unknown asset, an empty lot id, a quantity not > 0, a negative
        basis, a date that does not parse), or a duplicate lot id.
    """
    from optimizer.rebalance.taxlots import TaxLots

    asset = rows["asset"].to_numpy(dtype=object)
    lot = np.array(
        [None if v is None or v != v else str(v).strip() or None for v in rows["lot_id"]],
        dtype=object,
    )
    file_row = rows["row"].to_numpy()

    def where(i: int) -> str:
        return f"lots file row {file_row[i]}: lot {lot[i]!r} of {asset[i]!r}"

    for i, a in enumerate(asset):
        if a not in known:
            raise InputError(f"{where(i)}: unknown asset {a!r} (not in the scenario's [[assets]])")
        if lot[i] is None:
            raise InputError(f"lots file row {file_row[i]} ({a!r}): column 'lot_id' is empty")
    numbers = {}
    for col, need in (("quantity", "a number > 0 (units)"), ("basis", "a number >= 0 (per unit)")):
        raw = rows[col]
        v = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | ((v <= 0) if col == "quantity" else (v < 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{where(i)}: column {col!r}: expected {need}, got {raw.iloc[i]!r}")
        numbers[col] = v
    raw = rows["acquired"]
    days = pd.to_datetime(raw, errors="coerce", format="ISO8601")
    if days.isna().any():
        i = int(np.flatnonzero(days.isna().to_numpy())[0])
        raise InputError(
            f"{where(i)}: column 'acquired': cannot read {raw.iloc[i]!r} as a date; write it as "
            "YYYY-MM-DD"
        )
    frame = pd.DataFrame(
        {
            "asset": asset,
            "lot_id": lot,
            "quantity": numbers["quantity"],
            "basis": numbers["basis"],
            "acquired": days.dt.date.to_numpy(dtype=object),
        }
    )
    return TaxLots.from_frame(frame)


def _plan_one(ctx: BatchContext, account: str, cols: dict, lo: int, hi: int, known: dict):
    """``(status, reason, plan or None)`` of the account in rows ``lo:hi`` of ``cols``."""
    try:
        rb, holdings, target, flow = account_inputs(ctx, cols, lo, hi, known)
        lots = (cols.get("lots") or {}).get(account) if ctx.tax is not None else None
        extra = {} if lots is None else {"lots": account_lots(lots, known), **ctx.tax}
        plan = rb.plan(
            holdings,
            target,
            prices=ctx.prices,
            cash_flow=flow,
            as_of=ctx.as_of,
            portfolio_id=account,
            **extra,
        )
    except Exception as exc:  # one account's failure never stops the batch
        return (*failure(exc), None)
    return "ok", "", plan


def _diagnosed(exc: InfeasibleError) -> str:
    """The infeasibility's message, with what the diagnosis says to relax when not already there."""
    text = str(exc)
    extra = [
        f"relax {d['name']!r} by {d['relax_by']:.6g}"
        for d in exc.diagnosis
        if "name" in d and isinstance(d.get("relax_by"), int | float) and str(d["name"]) not in text
    ]
    return text + (f" (diagnosis: {'; '.join(extra)})" if extra else "")


def columns_of(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(accounts, bounds, cols)``: the account of each row, the row bounds of each account
    (``bounds[k]:bounds[k + 1]``), and the columns as arrays (``amount`` the quantity or value).
    """
    lots = frame.attrs.pop("lots", None)  # a taxable batch's (LotStream.attach); not copied
    acc = frame["account"].to_numpy(dtype=object)
    bounds = np.r_[np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]]), len(acc)]
    cols = {c: frame[c].to_numpy(dtype=object) for c in SETTINGS + ("asset",)}
    cols["amount"] = frame[amount_column(frame)].to_numpy(dtype=float)
    if lots is not None:
        frame.attrs["lots"] = lots
        cols["lots"] = {str(a): g for a, g in lots.groupby("account", sort=False)}
    return acc, bounds, cols


class Rows:
    """The orders and status rows of one partition, as its accounts are planned."""

    def __init__(self, ctx: BatchContext) -> None:
        self.ctx = ctx
        self.taxable = ctx.tax is not None
        self.known = {str(a): i for i, a in enumerate(ctx.assets)}
        self.cols: dict[str, list] = {c: [] for c in ("account", "asset_i", "side", "q", "n")}
        for c in ("p", "c", "schema"):
            self.cols[c] = []
        self.status: list[tuple] = []
        self.lots: list[pd.DataFrame] = []

    def failed(self, account: str, model: str, state: str, reason: str) -> None:
        """An account not planned: its status row only."""
        tax = (np.nan,) * 4 if self.taxable else ()
        self.status.append((account, model, state, reason, *([np.nan] * 7), "", "", *tax))

    def planned(self, account: str, model: str, plan) -> None:
        """A planned account: its orders (one row per asset) and its status row."""
        tr = plan.trades
        cols = self.cols
        cols["account"].append(np.full(len(tr), account, dtype=object))
        cols["asset_i"].append(np.array([self.known[str(a)] for a in tr.index], dtype=int))
        cols["side"].append(tr["side"].to_numpy(dtype=object))
        cols["q"].append(tr["quantity"].to_numpy(dtype=float))
        cols["n"].append(tr["notional"].to_numpy(dtype=float))
        cols["p"].append(tr["price"].to_numpy(dtype=float))
        cols["c"].append(tr["est_cost"].to_numpy(dtype=float))
        cols["schema"].append(np.full(len(tr), plan.schema, dtype=object))
        tax: tuple = ()
        if self.taxable:
            summary = plan.tax_summary() or {}
            keys = ("short_gains", "long_gains", "net_gains", "estimated_tax")
            tax = tuple(np.nan if summary.get(k) is None else summary[k] for k in keys)
            if plan.lot_sales is not None and len(plan.lot_sales):
                self.lots.append(_lot_table(account, plan.lot_sales))
        self.status.append(
            (
                account,
                model,
                "ok",
                "",
                plan.value_before,
                plan.value_after,
                plan.cash_flow,
                plan.turnover,
                plan.total_cost,
                plan.tracking_error_before,
                plan.tracking_error_after,
                plan.status,
                plan.solver,
                *tax,
            )
        )

    def result(self, pid: int, seconds: float) -> PartResult:
        """The partition's :class:`PartResult`."""
        assets = self.ctx.assets
        n = len(assets)
        if self.cols["account"]:
            cat = {k: np.concatenate(v) for k, v in self.cols.items()}
        else:
            cat = {
                "account": np.empty(0, dtype=object),
                "asset_i": np.empty(0, dtype=int),
                "side": np.empty(0, dtype=object),
                "schema": np.empty(0, dtype=object),
                **{k: np.empty(0) for k in ("q", "n", "p", "c")},
            }
        names = np.asarray(assets, dtype=object)
        orders = pd.DataFrame(
            {
                "account": cat["account"],
                "schema": ORDERS_SCHEMA,
                "as_of": None if self.ctx.as_of is None else str(self.ctx.as_of),
                "portfolio_id": cat["account"],
                "asset": names[cat["asset_i"]],
                "side": cat["side"],
                "quantity": cat["q"],
                "notional": cat["n"],
                "price": cat["p"],
                "est_cost": cat["c"],
            },
            columns=list(ORDER_COLUMNS),
        )
        if self.taxable:
            orders = _with_lots(orders, cat["schema"], self.lots)
        buy, sell = cat["side"] == "buy", cat["side"] == "sell"
        i = cat["asset_i"]

        def total(mask, what):
            return np.bincount(i[mask], weights=np.nan_to_num(what[mask]), minlength=n)

        pooled = pd.DataFrame(
            {
                "buy_notional": total(buy, cat["n"]),
                "sell_notional": total(sell, cat["n"]),
                "buy_quantity": total(buy, cat["q"]),
                "sell_quantity": total(sell, cat["q"]),
                "est_cost": total(buy | sell, cat["c"]),
                "accounts_buying": np.bincount(i[buy], minlength=n),
                "accounts_selling": np.bincount(i[sell], minlength=n),
            },
            index=pd.Index(names, name="asset"),
        )
        columns = TAX_STATUS_COLUMNS if self.taxable else STATUS_COLUMNS
        table = pd.DataFrame(self.status, columns=list(columns))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
        worker = {"pid": os.getpid(), "peak_rss_mb": peak, "rss_mb": _rss_mb()}
        return PartResult(pid, orders, table, pooled, seconds, worker)


def _lot_table(account: str, sales: pd.DataFrame) -> pd.DataFrame:
    """One account's lots sold as rows of the orders' lot columns, keyed by account and asset."""
    return pd.DataFrame(
        {
            "account": account,
            "asset": sales["asset"].astype(str).to_numpy(dtype=object),
            "lot_id": sales["lot_id"].astype(str).to_numpy(dtype=object),
            "lot_quantity": sales["quantity"].to_numpy(dtype=float),
            "basis": sales["basis"].to_numpy(dtype=float),
            "acquired": pd.to_datetime(sales["acquired"]).dt.strftime("%Y-%m-%d").to_numpy(),
            "term": sales["term"].astype(str).to_numpy(dtype=object),
            "gain": sales["gain"].to_numpy(dtype=float),
        }
    )


def _with_lots(orders: pd.DataFrame, schema: np.ndarray, lots: list) -> pd.DataFrame:
    """The orders of a taxable batch: each order's schema, one row per lot of a sell."""
    orders = orders.assign(schema=schema)
    if not lots:
        return orders.reindex(columns=list(TAX_ORDER_COLUMNS))
    merged = orders.merge(pd.concat(lots, ignore_index=True), on=["account", "asset"], how="left")
    return merged.reindex(columns=list(TAX_ORDER_COLUMNS))


def _rss_mb() -> float | None:
    """The resident memory of this process now (MiB; None where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def solve_partition(pid: int, frame: pd.DataFrame, ctx: BatchContext) -> PartResult:
    """Plan every account of one partition (see the module docs).

    Parameters
    ----------
    pid : int
        Partition number.
    frame : pandas.DataFrame or tuple
        The partition's rows (:func:`scenarios.batch.accounts.partitions`), or
        their :func:`columns_of` (what the driver sends a Dask worker: plain
        arrays of Python objects, whose memory a worker process gives back,
        where Arrow-backed text columns made its resident memory creep up from
        one task to the next).
    ctx : BatchContext

    Returns
    -------
    PartResult
    """
    t0 = time.perf_counter()
    out = Rows(ctx)
    acc, bounds, cols = columns_of(frame) if isinstance(frame, pd.DataFrame) else frame
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        account, model = str(acc[lo]), cols["model"][lo]
        state, reason, plan = _plan_one(ctx, account, cols, lo, hi, out.known)
        if plan is None:
            out.failed(account, model, state, reason)
        else:
            out.planned(account, model, plan)
    return out.result(pid, time.perf_counter() - t0)
