"""Run a batch: stream the accounts in partitions to Dask workers, gather, publish.

:func:`run_batch` reads the scenario (covariance, constraints, costs,
``[rebalance]`` options, ``[batch]`` model portfolios and prices), then streams
the accounts file in partitions of whole accounts
(:func:`scenarios.batch.accounts.partitions`) to the workers of a Dask
distributed cluster: an embedded ``LocalCluster`` of worker processes on this
machine by default, or an existing cluster at ``scheduler=``. The shared
:class:`~scenarios.batch.work.BatchContext` goes to every worker once; each
partition is one task (:func:`~scenarios.batch.work.solve_partition`), retried
on another worker if its worker dies. At most a few partitions per worker are
in flight (:data:`WINDOW_PER_WORKER`), so memory is bounded by the partition
size, not by the number of accounts. Completed partitions are written as parts
at once (:class:`~scenarios.batch.outputs.Parts`) and the output folder is
published whole at the end.

``scheduler="in-process"`` runs the partitions here, one after the other,
without Dask (small batches, tests, and the reference a cluster run is
compared with).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.errors import InputError
from scenarios.batch.accounts import LotStream, partitions
from scenarios.batch.outputs import TAX_TABLES, Parts, pooled_table, write_tables
from scenarios.batch.work import (
    ORDER_COLUMNS,
    STATUS_COLUMNS,
    BatchContext,
    PartResult,
    columns_of,
    solve_partition,
)
from scenarios.schema import Scenario, load_scenario

#: Accounts per partition by default: small enough to keep a worker's memory flat,
#: large enough that a task's overhead (about 10 ms) is small beside its solves.
PARTITION_SIZE = 1000
#: Partitions in flight per worker (one running, the next ones queued).
WINDOW_PER_WORKER = 3
#: Times a partition is retried after its task failed (a worker that died).
RETRIES = 3
#: Dask settings of the embedded cluster's workers. Dask's statistical profiler keeps a
#: profile of each second of work (up to 1,000 of them): over the solves' deep, varied call
#: stacks a worker's memory grew by about 1 KB per account planned; off, it stays flat.
WORKER_CONFIG = {"distributed.worker.profile.enabled": False}
#: ``scheduler=`` value that runs without Dask.
IN_PROCESS = "in-process"
#: Rebalance options of ``[rebalance]`` that fix a Rebalancer (the rest are per account).
_STRUCTURE = (
    "tracking_weight",
    "min_trade",
    "max_turnover",
    "untradeable",
    "lot_size",
    "no_trade_bands",
)


@dataclass
class BatchResult:
    """What a batch produced.

    Attributes
    ----------
    summary : dict
        Counts by status, totals, timings, workers, partitions (``summary.json``).
    pooled : pandas.DataFrame
        The pooled orders per asset (:func:`scenarios.batch.outputs.pooled_table`).
    files : list of str
        Files published (empty without ``out``).
    orders, status : pandas.DataFrame or None
        The whole tables when run without ``out`` (None with a folder: read
        them from it).
    shares : pandas.DataFrame or None
        With ``[batch.pooled]``: each account's share of each asset's pooled
        impact cost (columns account, asset, impact_share; ``shares.csv``).
    """

    summary: dict
    pooled: pd.DataFrame
    files: list = field(default_factory=list)
    orders: pd.DataFrame | None = None
    status: pd.DataFrame | None = None
    shares: pd.DataFrame | None = None

    @property
    def failed(self) -> int:
        """Accounts infeasible or failed."""
        counts = self.summary["accounts"]
        return int(counts["infeasible"] + counts["failed"])


def context_of(scn: Scenario, holdings_as: str, *, taxable: bool = False) -> BatchContext:
    """The :class:`BatchContext` of a scenario with a ``[batch]`` section.

    ``taxable``: the batch has a lots file; its accounts with lots are planned
    tax-aware with the scenario's ``[tax]`` (all rates 0 without it).

    Raises
    ------
    InputError
        No ``[batch]`` section; quantities without ``[batch].prices``; lots
        without ``[batch].prices`` or with ``[batch.pooled]``.
    """
    if scn.batch is None:
        raise InputError(
            f"{scn.path}: no [batch] section: add [[batch.models]] tables (id, weights) "
            "for the model portfolios the accounts follow"
        )
    cov = scn.estimates.cov()
    assets = cov.index
    prices = None if scn.batch.prices is None else scn.batch.prices.reindex(assets)
    if holdings_as == "quantity" and prices is None:
        raise InputError(
            f"{scn.path}: batch.prices: missing: the accounts give quantities, which need a "
            "price per asset (or give a value column instead)"
        )
    spec = scn.rebalance
    options: dict[str, Any] = {}
    if spec is not None:
        kw = spec.kwargs()
        options = {k: kw[k] for k in _STRUCTURE if k in kw}
    models = {m: w.reindex(assets).fillna(0.0) for m, w in scn.batch.models.items()}
    tax = None
    if taxable:
        if prices is None:
            raise InputError(
                f"{scn.path}: batch.prices: missing: tax lots need a price per asset (gains are "
                "price minus basis)"
            )
        if scn.batch.pooled is not None:
            raise InputError(
                f"{scn.path}: batch.pooled: a pooled rebalance does not take tax lots: drop "
                "--lots, or [batch.pooled]"
            )
        if scn.tax is not None:
            tax = scn.tax.plan_kwargs()
        else:
            from optimizer.rebalance.taxlots import TaxModel

            tax = {"tax": TaxModel(), "harvest": False, "substitutes": None}
    return BatchContext(
        cov=cov,
        costs=scn.costs,
        constraints=tuple(scn.constraints),
        universe=scn.universe,
        options=options,
        models=models,
        prices=prices,
        holdings_as=holdings_as,
        as_of=scn.portfolio.as_of,
        currency=scn.portfolio.currency,
        tax=tax,
    ).keyed()


def _holdings_as(accounts: Path) -> str:
    """``"quantity"`` or ``"value"``: the accounts file's amount column (reads its header)."""
    from scenarios.batch.accounts import read_chunks

    chunks = read_chunks(accounts, rows=64)
    try:
        first = next(chunks)
    finally:
        chunks.close()  # closes the file
    return "quantity" if "quantity" in first else "value"


class Counter:
    """A counting line on a terminal's stderr (``accounts 12,000 done, 3 failed``); quiet elsewhere."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.shown = 0.0

    def __call__(self, done: int, failed: int, *, last: bool = False) -> None:
        if not self.enabled or (not last and time.monotonic() - self.shown < 0.2):
            return
        self.shown = time.monotonic()
        end = "\n" if last else ""
        sys.stderr.write(f"\rbatch: {done:,} accounts done, {failed:,} failed{end}")
        sys.stderr.flush()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _crashed(pid: int, frame: pd.DataFrame, exc: BaseException) -> PartResult:
    """The partition's accounts, each failed with the task's error (its workers kept dying)."""
    accounts = frame.drop_duplicates("account")
    reason = (
        f"partition {pid} could not be run ({type(exc).__name__}: {exc}); its accounts were "
        "not planned: run them again"
    )
    rows = [
        (a, m, "failed", reason, *([float("nan")] * 7), "", "")
        for a, m in zip(accounts["account"], accounts["model"], strict=True)
    ]
    status = pd.DataFrame(rows, columns=list(STATUS_COLUMNS))
    return PartResult(pid, pd.DataFrame(columns=list(ORDER_COLUMNS)), status, None, 0.0, {})


@contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[tuple[Any, dict]]:
    """A Dask client: of an embedded ``LocalCluster``, or of the cluster at ``scheduler``.

    Yields ``(client, where)``, ``where`` the ``scheduler`` and ``workers`` for the summary.

    Raises
    ------
    InputError
        The scheduler cannot be reached (its address named).
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - a dependency
        raise InputError(
            "trimtab batch needs dask distributed: pip install 'dask[distributed]' pyarrow"
        ) from None
    cluster = None
    if scheduler is None:
        import dask

        with warnings.catch_warnings(), dask.config.set(WORKER_CONFIG):
            # a busy default HTTP port: Dask takes another
            warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
            cluster = LocalCluster(
                n_workers=workers or 2,
                processes=True,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
            )
        address = cluster.scheduler_address
    else:
        address = scheduler
    try:
        try:
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(
                f"--scheduler {address}: cannot connect to a Dask scheduler there ({exc}): "
                "start one with `dask scheduler` and workers with `dask worker ADDRESS`"
            ) from None
        with client:
            n = len(client.scheduler_info(n_workers=-1).get("workers", {})) or (workers or 1)
            where = {"scheduler": "LocalCluster" if cluster else address, "workers": n}
            yield client, where
    finally:
        if cluster is not None:
            cluster.close()


def _run_dask(client, n: int, parts_iter, ctx, keep) -> None:
    """Stream the partitions to the workers, at most a window in flight; ``keep`` each result."""
    from distributed import as_completed

    shared = client.scatter(ctx, broadcast=True)
    window = WINDOW_PER_WORKER * max(n, 1)
    running = as_completed()
    frames: dict[Any, tuple[int, pd.DataFrame]] = {}

    def drain(limit: int) -> None:
        while len(frames) > limit:
            fut = next(running)
            pid, frame = frames.pop(fut.key)
            try:
                keep(fut.result())
            except Exception as exc:  # the task failed on every retry
                keep(_crashed(pid, frame, exc))
            fut.release()

    token = ctx.key[:12] + "-" + os.urandom(4).hex()
    for pid, frame in parts_iter:
        fut = client.submit(
            solve_partition,
            pid,
            columns_of(frame),
            shared,
            key=f"trimtab-batch-{token}-{pid}",
            retries=RETRIES,
            pure=False,
        )
        frames[fut.key] = (pid, frame)
        running.add(fut)
        drain(window - 1)
    drain(0)


def _solve(scn, ctx, stream, keep, scheduler, workers) -> tuple[dict, dict | None]:
    """Run the partitions (independent accounts, or the pooled rebalance); ``keep`` results.

    Returns ``(where, pooled)``: the scheduler and workers, and the pooled
    outcome's figures (None without ``[batch.pooled]``).
    """
    pooled = scn.batch.pooled is not None
    if pooled:
        from scenarios.batch.pooled import run_pooled
    if scheduler == IN_PROCESS:
        where = {"scheduler": IN_PROCESS, "workers": 1}
        if pooled:
            return where, run_pooled(scn, ctx, stream, keep)
        for pid, frame in stream:
            keep(solve_partition(pid, frame, ctx))
        return where, None
    with dask_client(scheduler, workers) as (client, where):
        if pooled:
            return where, run_pooled(scn, ctx, stream, keep, client=client)
        _run_dask(client, where["workers"], stream, ctx, keep)
    return where, None


def run_batch(
    scenario: Scenario | str | os.PathLike,
    accounts: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    partition_size: int = PARTITION_SIZE,
    progress: bool | Callable[[int, int], None] = False,
    caught: list | None = None,
    lots: str | os.PathLike | None = None,
) -> BatchResult:
    """Rebalance every account of an accounts file toward its model portfolio, on Dask.

    Parameters
    ----------
    scenario : Scenario, str or os.PathLike
        A scenario with a ``[batch]`` section (:mod:`scenarios.schema.batch`),
        or its file.
    accounts : str or os.PathLike
        The accounts file, Parquet or CSV (:mod:`scenarios.batch.accounts`).
    out : str or os.PathLike, optional
        Output folder, published whole (:mod:`scenarios.batch.outputs`); without
        it the tables are returned in memory (small batches only).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://HOST:PORT``); None starts
        a ``LocalCluster`` of ``workers`` processes bound to 127.0.0.1;
        ``"in-process"`` runs here without Dask.
    workers : int, optional
        Worker processes of the embedded cluster (default 2).
    partition_size : int
        Accounts per task (default :data:`PARTITION_SIZE`).
    progress : bool or callable(done, failed)
        A counting line on a terminal's stderr (True), or a callback.
    caught : list, optional
        Warnings recorded during the run, for the manifest (the CLI's).
    lots : str or os.PathLike, optional
        The tax lots of the accounts (Parquet or CSV: account, asset, lot_id,
        quantity, basis, acquired; :mod:`scenarios.batch.accounts`), in the
        accounts file's account order, read along with its partitions. The
        accounts with lots are planned tax-aware under the scenario's
        ``[tax]``; the orders gain lot columns and the status the gains and tax.

    Returns
    -------
    BatchResult

    Raises
    ------
    InputError
        The scenario's or the accounts file's problems (file, column, row or
        account named); a bad ``out``, ``workers`` or ``partition_size``; a
        scheduler that cannot be reached. One account's failure is not an
        error: its status row says why.
    """
    started = time.perf_counter()
    if isinstance(scenario, str | os.PathLike):
        scenario = load_scenario(scenario)
    elif not isinstance(scenario, Scenario):
        raise InputError(
            f"run_batch takes a Scenario or the path of a scenario file, got "
            f"{type(scenario).__name__}"
        )
    for what, value in (("partition_size", partition_size), ("workers", workers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InputError(f"{what} must be a whole number >= 1, got {value!r}")
        if value is not None and value < 1:
            raise InputError(f"{what} must be >= 1, got {value}")
    accounts = Path(accounts)
    if lots is not None:
        lots = Path(lots)
        if not lots.is_file():
            raise InputError(f"{lots}: no such lots file")
    ctx = context_of(scenario, _holdings_as(accounts), taxable=lots is not None)
    counter = progress if callable(progress) else Counter(bool(progress))
    how = {
        "scheduler": scheduler,
        "workers": workers,
        "size": partition_size,
        "caught": caught,
        "lots": lots,
    }
    if out is None:
        return _run(scenario, accounts, ctx, None, how, counter, started)
    from scenarios.export import OutputSet

    inputs = [scenario.path, accounts] + ([lots] if lots is not None else [])
    with OutputSet(out, inputs=inputs) as outset:
        return _run(scenario, accounts, ctx, outset, how, counter, started)


def _with_lots(stream, lots: LotStream):
    """The partitions, each with its accounts' lots attached; then no lot may be left over."""
    for pid, frame in stream:
        yield pid, lots.attach(frame)
    lots.finish()


def _run(scn, accounts, ctx, outset, how, counter, started) -> BatchResult:
    """The batch itself: stream, solve, keep the parts; publish into ``outset`` when given."""
    scheduler, workers, size, caught = how["scheduler"], how["workers"], how["size"], how["caught"]
    lots = how["lots"]
    parts = Parts(
        None if outset is None else outset.scratch("parts"),
        TAX_TABLES if ctx.tax is not None else None,
    )
    done = [0, 0]

    taxes: dict[int, tuple[int, float, float]] = {}  # by partition: a retry replaces its own

    def keep(part: PartResult) -> None:
        again = part.pid in parts.counts
        parts.add(part)
        if "estimated_tax" in part.status:
            t = part.status
            taxes[part.pid] = (
                int(t["estimated_tax"].notna().sum()),
                float(t["estimated_tax"].sum()),
                float(t["net_gains"].sum()),
            )
        if not again:
            done[0] += len(part.status)
            done[1] += int((part.status["status"] != "ok").sum())
        counter(done[0], done[1])

    stream = enumerate(partitions(accounts, size, ctx.models))
    lot_stream = None if lots is None else LotStream(lots)
    if lot_stream is not None:
        stream = _with_lots(stream, lot_stream)
    t0 = time.perf_counter()
    where, pooled_outcome = _solve(scn, ctx, stream, keep, scheduler, workers)
    if isinstance(counter, Counter):
        counter(done[0], done[1], last=True)
    t1 = time.perf_counter()
    pooled = pooled_table(parts, ctx.assets)
    shares = None
    if pooled_outcome is not None and pooled_outcome["pooled"] is not None:
        extra = pooled_outcome["pooled"].rename(
            columns={"net": "pooled_net", "gross": "pooled_gross"}
        )
        pooled = pooled.join(extra.reindex(pooled.index))
        shares = pooled_outcome["shares"].stack().rename("impact_share").reset_index()
        shares.columns = ["account", "asset", "impact_share"]
        shares = shares[shares["impact_share"] != 0].reset_index(drop=True)
    counts = parts.status_counts()
    # resident memory of each worker after each of its partitions (sampled), and the
    # kernel's high-water mark, which for a worker forked from a large parent counts the
    # pages it shares with it
    rss = [w["rss_mb"] for w in parts.workers.values() if w and w.get("rss_mb") is not None]
    peak = [w["peak_rss_mb"] for w in parts.workers.values() if w]
    summary = {
        "accounts": {"total": sum(counts.values()), **counts},
        "totals": {
            "buy_notional": float(pooled["buy_notional"].sum()),
            "sell_notional": float(pooled["sell_notional"].sum()),
            "est_cost": float(pooled["est_cost"].sum()),
        },
        "models": sorted(ctx.models),
        "partitions": len(parts.counts),
        "partition_size": size,
        "scheduler": where["scheduler"],
        "workers": where["workers"],
        "peak_worker_rss_mb": max(rss) if rss else None,
        "worker_maxrss_mb": max(peak) if peak else None,
        "timings": {
            "read_and_solve": t1 - t0,
            "setup": t0 - started,
            "worker_solve": float(sum(parts.seconds.values())),
        },
        "accounts_file": str(accounts.resolve()),
        "scenario_file": str(scn.path),
    }
    if lot_stream is not None:
        summary["lots_file"] = str(Path(lots).resolve())
        summary["lots"] = lot_stream.lots
        summary["tax"] = {
            "accounts_with_lots": sum(t[0] for t in taxes.values()),
            "estimated_tax": sum(t[1] for t in taxes.values()),
            "net_gains": sum(t[2] for t in taxes.values()),
        }
    if pooled_outcome is not None:
        summary["pooled"] = {
            "limits": dict(scn.batch.pooled),
            **{k: v for k, v in pooled_outcome.items() if k not in ("pooled", "shares")},
        }
    if outset is None:
        summary["timings"]["total"] = time.perf_counter() - started
        orders, status = parts.table("orders"), parts.table("status")
        return BatchResult(summary, pooled, [], orders, status, shares)
    from scenarios.outputs import manifest

    write_tables(outset, parts)
    parts.remove()
    pooled_out = pooled.copy()
    outset.write_csv("pooled.csv", pooled_out)
    if shares is not None:
        outset.write_text("shares.csv", shares.to_csv(index=False))
    summary["timings"]["write"] = time.perf_counter() - t1
    summary["timings"]["total"] = time.perf_counter() - started
    outset.write_json("summary.json", summary)
    files = list(outset.files) + ["manifest.json"]
    doc = manifest(scn, None, files, "batch", caught=caught)
    doc["accounts_file"] = str(accounts.resolve())
    doc["accounts_sha256"] = _sha256(accounts)
    if lots is not None:
        doc["lots_file"] = str(Path(lots).resolve())
        doc["lots_sha256"] = _sha256(Path(lots))
    doc["timings"] = summary["timings"]
    outset.write_manifest(doc)
    return BatchResult(summary, pooled, files, shares=shares)
