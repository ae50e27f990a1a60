"""The accounts file of a batch: read in chunks, checked, cut into partitions of whole accounts.

The accounts file is one long table, Parquet (``.parquet``, ``.pq``) or CSV
(``.csv``, optionally ``.gz``/``.bz2``/``.zip``/``.xz``), by its suffix. One row
per account and asset held; the account's own settings are columns repeated on
each of its rows (the same value on every row of an account)::

    account     account id (text; required)
    asset       asset id of [[assets]] (empty for an account that holds nothing yet)
    quantity    units held (priced by [batch].prices)        } exactly one of
    value       market value (currency)                      } the two
    model       model portfolio id of [[batch.models]] (required)
    cash_flow   currency to invest (> 0) or to raise (< 0) (optional, 0)
    untradeable assets this account does not trade, joined by ';' (optional)
    restricted  assets this account may not buy (it may sell them), joined by ';' (optional)

The rows of one account are together (a file sorted by account is). The file
is read a chunk at a time and cut into partitions of whole accounts
(:func:`partitions`), so the whole table never sits in memory; the ids of the
accounts already read are kept to check that no account comes back.

Problems with the file itself are an :class:`~optimizer.errors.InputError`
naming the file and the column, row or account (a missing column, an unknown
column or model id, an account whose rows are apart, an asset listed twice for
one account, settings that differ between an account's rows); problems with one
account's data (an unknown asset, a negative quantity) are that account's
failure, reported in its status row (:mod:`scenarios.batch.run`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from scenarios.loader import closest

#: Columns of the accounts file; ``quantity`` or ``value`` holds the position.
REQUIRED = ("account", "asset", "model")
AMOUNTS = ("quantity", "value")
OPTIONAL = ("cash_flow", "untradeable", "restricted")
COLUMNS = REQUIRED + AMOUNTS + OPTIONAL
#: Columns whose value is the account's own, repeated on each of its rows.
SETTINGS = ("model", "cash_flow", "untradeable", "restricted")
#: Rows read at a time.
CHUNK_ROWS = 200_000
#: Separator of asset lists in ``untradeable`` and ``restricted``.
LIST_SEP = ";"

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")


def file_kind(path: Path) -> str:
    """``"parquet"`` or ``"csv"`` by the file's suffix, else an InputError naming the file."""
    name = path.name.lower()
    if name.endswith(_PARQUET):
        return "parquet"
    if name.endswith(_CSV):
        return "csv"
    raise InputError(
        f"{path}: unknown accounts file type: name it .parquet (or .pq) for Parquet, "
        ".csv (optionally .gz, .bz2, .zip, .xz) for CSV"
    )


def _check_columns(path: Path, columns: list[str]) -> str:
    """The amount column (``quantity`` or ``value``) after checking the header."""
    for c in columns:
        if c not in COLUMNS:
            hint = closest(str(c), COLUMNS) or "; columns: " + ", ".join(COLUMNS)
            raise InputError(f"{path}: unknown column {c!r}{hint}")
    for c in REQUIRED:
        if c not in columns:
            raise InputError(
                f"{path}: missing column {c!r}: the accounts table needs account, asset, "
                "quantity (or value) and model"
            )
    amounts = [c for c in AMOUNTS if c in columns]
    if len(amounts) != 1:
        raise InputError(
            f"{path}: give exactly one of the columns 'quantity' (units, priced by "
            f"[batch].prices) and 'value' (currency), got {amounts or 'neither'}"
        )
    return amounts[0]


def _typed(frame: pd.DataFrame, path: Path, amount: str, first_row: int) -> pd.DataFrame:
    """Text columns as str (missing as None), numbers as float; bad cells named by row."""
    out = pd.DataFrame(index=frame.index)
    for c in ("account", "asset", "model", "untradeable", "restricted"):
        if c in frame:
            cells = [
                None if v is None or v != v else str(v).strip() or None
                for v in frame[c].to_numpy(dtype=object)
            ]
            out[c] = pd.Series(cells, index=frame.index, dtype=object)
    for c in (amount, "cash_flow"):
        if c not in frame:
            continue
        num = pd.to_numeric(frame[c], errors="coerce").astype(float)
        bad = num.isna() & frame[c].notna() | np.isinf(num)
        if c == "cash_flow":
            bad |= num.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{path}: row {first_row + i + 1}: column {c!r}: expected a finite number, "
                f"got {frame[c].iloc[i]!r}"
            )
        out[c] = num
    for c in ("account", "model"):
        missing = out[c].isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise InputError(f"{path}: row {first_row + i + 1}: column {c!r} is empty")
    if "cash_flow" not in out:
        out["cash_flow"] = 0.0
    for c in ("untradeable", "restricted"):
        if c not in out:
            out[c] = None
    out[amount] = out[amount].fillna(0.0)
    held = out["asset"].isna() & (out[amount] != 0)
    if held.any():
        i = int(np.flatnonzero(held.to_numpy())[0])
        raise InputError(
            f"{path}: row {first_row + i + 1}: account {out['account'].iloc[i]!r}: {amount} "
            "given without an asset"
        )
    out.index = pd.RangeIndex(first_row, first_row + len(out))
    return out


def read_chunks(path: str | os.PathLike, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The accounts file ``rows`` rows at a time, checked and typed.

    Yields frames with the columns account, asset, the amount (``quantity``
    or ``value``), model, cash_flow, untradeable, restricted; the index is the
    row number in the file (0 for the first row after the header).

    Raises
    ------
    InputError
        The file missing or unreadable, its type unknown, a missing or unknown
        column, a bad cell (row and column named).
    """
    path = Path(path)
    kind = file_kind(path)
    if not path.is_file():
        raise InputError(f"{path}: no such accounts file")
    first = 0
    try:
        with ExitStack() as stack:
            if kind == "parquet":
                import pyarrow.parquet as pq

                pf = stack.enter_context(pq.ParquetFile(path))
                amount = _check_columns(path, list(pf.schema_arrow.names))
                batches = (b.to_pandas() for b in pf.iter_batches(batch_size=rows))
            else:
                reader = stack.enter_context(
                    pd.read_csv(path, chunksize=rows, dtype=str, keep_default_na=False)
                )
                batches = (c.replace("", None) for c in reader)
                amount = None
            for frame in batches:
                if amount is None:
                    amount = _check_columns(path, [str(c) for c in frame.columns])
                yield _typed(frame, path, amount, first)
                first += len(frame)
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"{path}: cannot read the accounts file: {exc.strerror or exc}") from None
    except Exception as exc:  # pyarrow and pandas parser errors
        text = " ".join(str(exc).split())[:200]
        raise InputError(
            f"{path}: not a readable {kind} accounts file ({type(exc).__name__}: {text})"
        ) from None
    if first == 0:
        raise InputError(f"{path}: the accounts file has no rows")


def amount_column(frame: pd.DataFrame) -> str:
    """``"quantity"`` or ``"value"``: the amount column of a checked frame."""
    return "quantity" if "quantity" in frame else "value"


def split_lists(text: str | None) -> tuple[str, ...]:
    """``"A;B"`` -> ``("A", "B")`` (sorted, distinct, blanks dropped); None -> ``()``."""
    if not isinstance(text, str) or not text:
        return ()
    return tuple(sorted({p.strip() for p in str(text).split(LIST_SEP) if p.strip()}))


class _Checker:
    """The whole-file checks that span chunks: accounts together, each seen once."""

    def __init__(self, path: Path, models: Mapping[str, object]) -> None:
        self.path = path
        self.models = models
        self.seen: set[str] = set()

    def partition(self, frame: pd.DataFrame) -> None:
        """Check a frame of complete accounts (duplicates, settings, model ids) and record them."""
        path = self.path
        unknown = sorted(set(frame["model"].unique()) - set(self.models))
        if unknown:
            row = int(frame.index[(frame["model"] == unknown[0]).to_numpy()][0])
            acct = frame.loc[row, "account"]
            raise InputError(
                f"{path}: row {row + 1}: account {acct!r}: unknown model {unknown[0]!r}"
                f"{closest(unknown[0], list(self.models))}; models in [[batch.models]]: "
                + ", ".join(self.models)
            )
        dup = frame["asset"].notna() & frame.duplicated(["account", "asset"])
        if dup.any():
            row = int(frame.index[dup.to_numpy()][0])
            raise InputError(
                f"{path}: row {row + 1}: account {frame.loc[row, 'account']!r} lists asset "
                f"{frame.loc[row, 'asset']!r} twice: give one row per account and asset"
            )
        counts = frame.groupby("account", sort=False)[list(SETTINGS)].nunique(dropna=False)
        differ = counts > 1
        if differ.to_numpy().any():
            acct = differ.index[differ.any(axis=1).to_numpy()][0]
            col = differ.columns[differ.loc[acct].to_numpy()][0]
            raise InputError(
                f"{path}: account {acct!r}: column {col!r} differs between its rows: an "
                "account's settings are the same on each of its rows"
            )
        acc = frame["account"].to_numpy()
        runs = acc[np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])]
        accounts = counts.index
        if len(runs) != len(accounts):
            again = pd.Index(runs)[pd.Index(runs).duplicated()]
        else:
            again = [a for a in accounts if a in self.seen]
        if again:
            raise InputError(
                f"{path}: account {again[0]!r} appears again after other accounts: the rows of "
                "one account must be together (sort the file by account)"
            )
        self.seen.update(accounts)


def partitions(
    path: str | os.PathLike,
    size: int,
    models: Mapping[str, object],
    *,
    rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """Partitions of ``size`` whole accounts (the last may be smaller), in file order.

    Parameters
    ----------
    path : str or os.PathLike
        The accounts file (module docs).
    size : int
        Accounts per partition (>= 1).
    models : mapping
        The model ids the ``model`` column may name.
    rows : int
        Rows read at a time.

    Yields
    ------
    pandas.DataFrame
        The rows of ``size`` accounts, indexed by row number in the file.

    Raises
    ------
    InputError
        As :func:`read_chunks`, and an unknown model id, an account whose rows
        are apart, an asset listed twice for an account, settings that differ
        between an account's rows (file, row or account and column named).
    """
    path = Path(path)
    check = _Checker(path, models)
    pending: pd.DataFrame | None = None
    for chunk in read_chunks(path, rows):
        frame = chunk if pending is None else pd.concat([pending, chunk])
        acc = frame["account"].to_numpy()
        starts = np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])
        # the last account may go on in the next chunk: it waits
        done = len(starts) - 1
        first = 0
        while done - first >= size:
            lo, hi = starts[first], starts[first + size]
            part = frame.iloc[lo:hi]
            check.partition(part)
            yield part
            first += size
        pending = frame.iloc[starts[first] :]
    if pending is not None:
        acc = pending["account"].to_numpy()
        starts = np.r_[np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]]), len(acc)]
        for first in range(0, len(starts) - 1, size):
            lo, hi = starts[first], starts[min(first + size, len(starts) - 1)]
            part = pending.iloc[lo:hi]
            check.partition(part)
            yield part
