"""The pooled batch: limits and market impact on the trade pooled across accounts.

With a ``[batch.pooled]`` table the accounts are not independent: a cap on
the pooled trade per asset (a fraction of ``[costs].adv``, or currency) and a
market impact priced on it couple them. :func:`run_pooled` hands them to
:func:`optimizer.rebalance.pooled.pooled_rebalance`, a decomposition whose
every iteration is one map over the account books plus one reduction: the
books (one per partition and :class:`~optimizer.rebalance.Rebalancer`
structure) are scattered to the Dask workers once and stay there; each
iteration sends only the coordination signals and gathers the books' steps.

Unlike the independent batch, every account takes part in every iteration, so
the books of all accounts are held (on the workers, and what the tables need of
their plans, :class:`Planned`, on the driver at the end): the pooled batch is
for up to a few hundred thousand accounts that trade the same thin assets, not
for a million. The price search of the decomposition takes about six
iterations, so it costs about 3-4 times the independent batch (100,000 accounts
x 20 assets, 3 binding caps, 2 workers).

Besides the batch's tables, ``pooled.csv`` gains the pooled trade the limits
apply to (``pooled_net``, ``pooled_gross``), the ``cap``, the ``impact``
coefficient and the ``impact_cost`` of the pooled trade, and ``shares.csv``
lists each account's share of each asset's pooled impact cost (the split is
:data:`optimizer.rebalance.pooled.SPLIT`; the shares of an asset sum to its
``impact_cost``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from scenarios.batch.work import (
    BatchContext,
    PartResult,
    Rows,
    account_inputs,
    columns_of,
    failure,
)


def limits_of(ctx: BatchContext, spec: dict[str, Any], where: str):
    """The :class:`~optimizer.rebalance.pooled.PooledLimits` of a ``[batch.pooled]`` table.

    Raises
    ------
    InputError
        ``cap_adv`` or ``impact`` without ``[costs].adv`` (``where`` names the file).
    """
    from optimizer.rebalance.pooled import PooledLimits

    kind = spec.get("kind", "gross")
    needs_adv = "cap_adv" in spec or spec.get("impact", 0) > 0
    adv = None if ctx.costs is None or ctx.costs.adv is None else pd.Series(ctx.costs.adv)
    if needs_adv and adv is None:
        key = "cap_adv" if "cap_adv" in spec else "impact"
        raise InputError(
            f"{where}: batch.pooled.{key}: needs [costs] adv (average daily traded value by asset)"
        )
    cap = None if "cap" not in spec else pd.Series(spec["cap"], dtype=float)
    if needs_adv:
        var = np.diag(ctx.cov.to_numpy()) if isinstance(ctx.cov, pd.DataFrame) else None
        daily = None if var is None else pd.Series(np.sqrt(var / 252.0), index=ctx.assets)
        limits = PooledLimits.from_adv(
            adv,
            cap_adv=spec.get("cap_adv"),
            kind=kind,
            impact=spec.get("impact", 0.0),
            daily_volatility=None if daily is None else daily.reindex(adv.index),
        )
        if cap is not None:
            limits = PooledLimits(cap=cap, kind=kind, impact=limits.impact)
        return limits
    return PooledLimits(cap=cap, kind=kind)


def _books(pid: int, frame: pd.DataFrame, ctx: BatchContext, rows: Rows, owner: dict) -> list:
    """The partition's accounts as AccountBooks, one per rebalancer; failures go to ``rows``.

    ``owner`` gets account -> (pid, model) of every account booked.
    """
    from optimizer.rebalance.pooled_book import AccountBook

    acc, bounds, cols = columns_of(frame)
    groups: dict[int, dict] = {}
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        account, model = str(acc[lo]), cols["model"][lo]
        try:
            rb, holdings, target, flow = account_inputs(ctx, cols, lo, hi, rows.known)
        except Exception as exc:  # this account's own problem: its status row says why
            rows.failed(account, model, *failure(exc))
            continue
        owner[account] = (pid, model)
        g = groups.setdefault(id(rb), {"rb": rb, "ids": [], "h": [], "t": [], "f": []})
        g["ids"].append(account)
        g["h"].append(holdings.to_numpy())
        g["t"].append(target.to_numpy())
        g["f"].append(flow)
    books = []
    for j, g in enumerate(groups.values()):
        assets = g["rb"].assets
        books.append(
            AccountBook(
                rebalancer=g["rb"],
                accounts=pd.Index(g["ids"]),
                holdings=pd.DataFrame(np.array(g["h"]), index=g["ids"], columns=assets),
                targets=pd.DataFrame(np.array(g["t"]), index=g["ids"], columns=assets),
                cash_flows=pd.Series(g["f"], index=g["ids"], dtype=float),
                prices=ctx.prices,
                name=f"partition {pid} book {j}",
            )
        )
    return books


@dataclass(frozen=True)
class Planned:
    """What the batch keeps of a plan (:meth:`Rows.planned`'s fields), light to send back.

    A full :class:`~optimizer.trades.RebalancePlan` holds several frames (weights,
    target, drift, checks); unpickling thousands of them on the driver took as long
    as the solves of an iteration.
    """

    trades: pd.DataFrame
    schema: str
    lot_sales: pd.DataFrame | None
    tax: dict | None
    value_before: float
    value_after: float
    cash_flow: float
    turnover: float
    total_cost: float
    tracking_error_before: float
    tracking_error_after: float
    status: str
    solver: str

    @classmethod
    def of(cls, plan) -> Planned:
        """The fields of ``plan`` the batch's tables use."""
        names = [f.name for f in fields(cls) if f.name != "tax"]
        return cls(tax=plan.tax_summary(), **{k: getattr(plan, k) for k in names})

    def tax_summary(self) -> dict | None:
        """As :meth:`RebalancePlan.tax_summary`."""
        return self.tax


def _light(fn: Callable, item):
    """``fn(item)`` on a worker, its plans (the final step's) replaced by :class:`Planned`."""
    step = fn(item)
    step.plans.update({r: Planned.of(p) for r, p in step.plans.items()})
    return step


def dask_mapper(client, books: list) -> Callable:
    """A mapper for ``pooled_rebalance`` that keeps the books on the workers.

    The books are scattered once; each call maps ``fn`` over the items with
    every book replaced by its future (Dask resolves it on the worker that
    holds it), then gathers the results in order, the final step's plans as
    :class:`Planned` (what the batch's tables need).
    """
    futures = client.scatter(books)
    by_id = {id(b): f for b, f in zip(books, futures, strict=True)}

    def mapper(fn: Callable, items: list) -> list:
        args = [tuple(by_id.get(id(x), x) for x in item) for item in items]
        tasks = client.map(_light, [fn] * len(args), args, pure=False, retries=3)
        return client.gather(tasks)

    mapper.futures = futures  # kept alive while the mapper is
    return mapper


def run_pooled(
    scn, ctx: BatchContext, stream, keep: Callable[[PartResult], None], client=None
) -> dict:
    """Plan every account at once under the pooled limits; ``keep`` each partition's results.

    Parameters
    ----------
    scn : Scenario
        With ``[batch.pooled]``.
    ctx : BatchContext
    stream : iterable of (pid, frame)
        The partitions.
    keep : callable
        Called with each partition's :class:`PartResult` (orders and status).
    client : distributed.Client, optional
        Where the books go; None: serially here.

    Returns
    -------
    dict
        ``pooled`` (the outcome's table by asset), ``shares`` (account x asset),
        ``iterations``, ``method``, ``split``, ``objective``.
    """
    from optimizer.rebalance.pooled import pooled_rebalance

    limits = limits_of(ctx, dict(scn.batch.pooled), str(scn.path))
    rows: dict[int, Rows] = {}
    order: dict[int, dict[str, int]] = {}
    owner: dict[str, tuple[int, str]] = {}
    books: list = []
    for pid, frame in stream:
        rows[pid] = Rows(ctx)
        order[pid] = {a: i for i, a in enumerate(dict.fromkeys(frame["account"]))}
        books.extend(_books(pid, frame, ctx, rows[pid], owner))
    if books:
        mapper = None if client is None else dask_mapper(client, books)
        outcome = pooled_rebalance(books, limits, mapper=mapper)
        for account, plan in outcome.plans.items():
            pid, model = owner[account]
            rows[pid].planned(account, model, plan)
        for account, exc in outcome.failed.items():
            pid, model = owner[account]
            rows[pid].failed(account, model, *failure(exc))
    for pid in sorted(rows):
        keep(_in_file_order(rows[pid].result(pid, 0.0), order[pid]))
    if not books:
        return {"pooled": None, "shares": None, "iterations": 0, "method": "none"}
    return {
        "pooled": outcome.pooled,
        "shares": outcome.shares,
        "iterations": outcome.iterations,
        "method": outcome.method,
        "split": outcome.split,
        "objective": outcome.objective,
    }


def _in_file_order(part: PartResult, order: dict[str, int]) -> PartResult:
    """The partition's rows in file order (the pooled outcome returns them by book)."""
    for name in ("status", "orders"):
        frame = getattr(part, name)
        key = frame["account"].map(order).to_numpy()
        setattr(part, name, frame.iloc[np.argsort(key, kind="stable")].reset_index(drop=True))
    return part
