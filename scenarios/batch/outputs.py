"""A batch's output tables: parts written as partitions complete, then published whole.

While a batch runs, each completed partition's orders and status rows are
written as Parquet parts, one file per table and partition id, atomically
(a temporary name, fsync, rename): a partition solved twice (a retry after a
worker died) writes the same file again, so every account appears exactly
once. At the end the parts are concatenated, in partition order, into the
published folder (an :class:`~scenarios.export.OutputSet`, swapped in whole)::

    orders.parquet, orders.csv    one row per account and asset: account, then the
                                  trimtab.orders/1 row (schema, as_of, portfolio_id,
                                  asset, side, quantity, notional, price, est_cost);
                                  a taxable batch (--lots) adds lot_id, lot_quantity,
                                  basis, acquired, term, gain: one row per lot of a
                                  sell (schema trimtab.orders/2 for an account with lots)
    status.parquet, status.csv    one row per account: status ok | infeasible | failed,
                                  reason (the diagnosis, or the failure naming the
                                  culprit), values, turnover, cost, tracking error;
                                  a taxable batch adds short_gains, long_gains,
                                  net_gains, estimated_tax
    pooled.csv                    per asset across accounts: buy, sell, net and gross
                                  notional and quantity, accounts buying and selling
                                  (the desk's one order per asset)
    summary.json                  counts, totals, timings, workers, partitions
    manifest.json                 every file with its size and sha256, the scenario's
                                  and the accounts file's sha256, versions, warnings

The big tables are streamed from the parts to the folder a part at a time, so
no process holds all the accounts.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.batch.work import (
    ORDER_COLUMNS,
    POOLED_SUMS,
    STATUS_COLUMNS,
    TAX_ORDER_COLUMNS,
    TAX_STATUS_COLUMNS,
    PartResult,
)
from scenarios.export import OutputSet

#: The tables kept as parts, with their columns.
TABLES = {"orders": ORDER_COLUMNS, "status": STATUS_COLUMNS}
#: The tables of a taxable batch (``--lots``): lot columns on the orders, tax on the status.
TAX_TABLES = {"orders": TAX_ORDER_COLUMNS, "status": TAX_STATUS_COLUMNS}
#: Number columns of the tables (the others are text).
_NUMBERS = frozenset(
    {
        "quantity",
        "notional",
        "price",
        "est_cost",
        "value_before",
        "value_after",
        "cash_flow",
        "turnover",
        "total_cost",
        "tracking_error_before",
        "tracking_error_after",
        "lot_quantity",
        "basis",
        "gain",
        "short_gains",
        "long_gains",
        "net_gains",
        "estimated_tax",
    }
)
#: Files of a batch's output folder, in the order written.
FILES = (
    "orders.parquet",
    "orders.csv",
    "status.parquet",
    "status.csv",
    "pooled.csv",
    "summary.json",
    "manifest.json",
)


def arrow(frame: pd.DataFrame, name: str, tables: dict | None = None):
    """Table ``name`` ("orders" or "status") as a pyarrow Table of its fixed schema.

    ``tables``: the columns by table (:data:`TABLES`, or :data:`TAX_TABLES` for a
    taxable batch); a column the frame lacks is empty.
    """
    import pyarrow as pa

    columns = (tables or TABLES)[name]
    fields = [
        pa.field(c, pa.float64() if c in _NUMBERS else pa.string(), nullable=True) for c in columns
    ]
    return pa.Table.from_pandas(
        frame.reindex(columns=list(columns)), schema=pa.schema(fields), preserve_index=False
    )


def _atomic_parquet(frame: pd.DataFrame, path: Path, name: str, tables: dict) -> None:
    """Write table ``name`` to ``path`` as Parquet via a temporary name, fsynced, then renamed."""
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        pq.write_table(arrow(frame, name, tables), tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


class Parts:
    """The completed partitions of a running batch (on disk, or in memory without a folder).

    Parameters
    ----------
    folder : pathlib.Path or None
        Where the parts go (created); None keeps them in memory (small batches
        run from Python without ``out=``).
    tables : dict, optional
        The columns by table: :data:`TABLES` (default) or :data:`TAX_TABLES`.
    """

    def __init__(self, folder: Path | None, tables: dict | None = None) -> None:
        self.folder = folder
        self.tables = tables or TABLES
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        self._memory: dict[int, PartResult] = {}
        self.pooled: dict[int, pd.DataFrame] = {}
        self.counts: dict[int, dict[str, int]] = {}
        self.workers: dict[int, dict] = {}
        self.seconds: dict[int, float] = {}

    def add(self, part: PartResult) -> None:
        """Keep one partition's results (again for the same id: replaced, never doubled)."""
        if self.folder is None:
            self._memory[part.pid] = part
        else:
            for name in self.tables:
                path = self.folder / f"{name}-{part.pid:08d}.parquet"
                _atomic_parquet(getattr(part, name), path, name, self.tables)
        self.pooled[part.pid] = part.pooled
        self.workers[part.pid] = part.worker
        self.seconds[part.pid] = part.seconds
        self.counts[part.pid] = part.status["status"].value_counts().to_dict()

    def frames(self, name: str) -> Iterator[pd.DataFrame]:
        """The parts of table ``name`` ("orders" or "status"), in partition order."""
        for pid in sorted(self.pooled):
            if self.folder is None:
                yield getattr(self._memory[pid], name)
            else:
                yield pd.read_parquet(self.folder / f"{name}-{pid:08d}.parquet")

    def table(self, name: str) -> pd.DataFrame:
        """Table ``name`` whole (in memory: for small batches)."""
        columns = list(self.tables[name])
        frames = [f.reindex(columns=columns) for f in self.frames(name)]
        if not frames:
            return pd.DataFrame(columns=columns)
        return pd.concat(frames, ignore_index=True)

    def status_counts(self) -> dict[str, int]:
        """Accounts by status, over every partition."""
        out = {"ok": 0, "infeasible": 0, "failed": 0}
        for c in self.counts.values():
            for k, v in c.items():
                out[str(k)] = out.get(str(k), 0) + int(v)
        return out

    def remove(self) -> None:
        """Delete the parts folder."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def pooled_table(parts: Parts, assets: pd.Index) -> pd.DataFrame:
    """The pooled orders: per asset, the sums over every account, net and gross.

    Returns
    -------
    pandas.DataFrame
        Indexed by asset (scenario order): ``buy_notional``, ``sell_notional``,
        ``net_notional`` (buys less sells, currency), ``gross_notional``,
        ``buy_quantity``, ``sell_quantity``, ``net_quantity`` (units, when
        priced), ``side`` of the net order (buy | sell | hold), ``est_cost``,
        ``accounts_buying``, ``accounts_selling``.
    """
    cols = [*POOLED_SUMS, "accounts_buying", "accounts_selling"]
    total = pd.DataFrame(0.0, index=pd.Index(assets, name="asset"), columns=cols)
    for frame in parts.pooled.values():
        if frame is None:  # a partition that could not be run: no orders
            continue
        total = total.add(frame.reindex(total.index).fillna(0.0), fill_value=0.0)
    out = pd.DataFrame(index=total.index)
    out["side"] = np.where(
        total["buy_notional"] > total["sell_notional"],
        "buy",
        np.where(total["buy_notional"] < total["sell_notional"], "sell", "hold"),
    )
    out["net_notional"] = total["buy_notional"] - total["sell_notional"]
    out["gross_notional"] = total["buy_notional"] + total["sell_notional"]
    out["buy_notional"] = total["buy_notional"]
    out["sell_notional"] = total["sell_notional"]
    out["net_quantity"] = total["buy_quantity"] - total["sell_quantity"]
    out["buy_quantity"] = total["buy_quantity"]
    out["sell_quantity"] = total["sell_quantity"]
    out["est_cost"] = total["est_cost"]
    for c in ("accounts_buying", "accounts_selling"):
        out[c] = total[c].astype(int)
    return out


def write_tables(out: OutputSet, parts: Parts) -> None:
    """Stage orders and status, Parquet and CSV, streamed from the parts in partition order."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    tables = parts.tables
    for name in tables:

        def parquet(path: Path, name=name) -> None:
            schema = arrow(pd.DataFrame(columns=list(tables[name])), name, tables).schema
            with pq.ParquetWriter(path, schema) as writer:
                for frame in parts.frames(name):
                    writer.write_table(arrow(frame, name, tables))

        def csv(path: Path, name=name) -> None:
            schema = arrow(pd.DataFrame(columns=list(tables[name])), name, tables).schema
            options = pacsv.WriteOptions(quoting_style="needed")
            with pacsv.CSVWriter(path, schema, write_options=options) as writer:
                for frame in parts.frames(name):
                    writer.write_table(arrow(frame, name, tables))

        out.write_stream(f"{name}.parquet", parquet)
        out.write_stream(f"{name}.csv", csv)
