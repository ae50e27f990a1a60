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

The rows of one account are together (a file sorted by account is).

A taxable batch adds a lots file (``trimtab batch --lots FILE``), a long table
of the same kinds (Parquet or CSV) with the columns :data:`LOT_FILE_COLUMNS`::

    account     account id (an account of the accounts file)
    asset       asset id
    lot_id      the lot's id (unique within the account and asset)
    quantity    units in the lot (> 0)
    basis       cost basis per unit (currency, >= 0)
    acquired    acquisition date (YYYY-MM-DD)

Its accounts come in the accounts file's order (accounts without lots left
out), so it is read along with the partitions (:class:`LotStream`) and never
held whole. A bad cell is that account's failure, named by the lots file's
row, lot and column (:func:`account_lots`). The file
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

#: Columns of the lots file of a taxable batch.
LOT_FILE_COLUMNS = ("account", "asset", "lot_id", "quantity", "basis", "acquired")

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")


def file_kind(path: Path, what: str = "accounts") -> str:
    """``"parquet"`` or ``"csv"`` by the file's suffix, else an InputError naming the file."""
    name = path.name.lower()
    if name.endswith(_PARQUET):
        return "parquet"
    if name.endswith(_CSV):
        return "csv"
    raise InputError(
        f"{path}: unknown {what} file type: name it .parquet (or .pq) for Parquet, "
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


# ----------------------------------------------------------------------------- lots


def _lot_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """The lots file ``rows`` rows at a time: columns checked, cells as given (objects).

    Each frame has :data:`LOT_FILE_COLUMNS` and ``row`` (the file's row
    number, 2 for the first row under the header); ``account`` is text, never
    empty.
    """
    kind = file_kind(path, "lots")
    if not path.is_file():
        raise InputError(f"{path}: no such lots file")
    first = 0
    try:
        with ExitStack() as stack:
            if kind == "parquet":
                import pyarrow.parquet as pq

                pf = stack.enter_context(pq.ParquetFile(path))
                columns = list(pf.schema_arrow.names)
                batches = (b.to_pandas() for b in pf.iter_batches(batch_size=rows))
            else:
                reader = stack.enter_context(
                    pd.read_csv(path, chunksize=rows, dtype=str, keep_default_na=False)
                )
                batches = (c.replace("", None) for c in reader)
                columns = None
            for frame in batches:
                _check_lot_columns(path, columns or [str(c) for c in frame.columns])
                columns = columns or list(frame.columns)
                out = pd.DataFrame({c: frame[c].to_numpy(dtype=object) for c in LOT_FILE_COLUMNS})
                out["row"] = np.arange(first + 2, first + 2 + len(frame))
                acct = [
                    None if v is None or v != v else str(v).strip() or None for v in out["account"]
                ]
                if None in acct:
                    raise InputError(
                        f"{path}: row {out['row'].iloc[acct.index(None)]}: column 'account' is empty"
                    )
                out["account"] = acct
                first += len(frame)
                yield out
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"{path}: cannot read the lots file: {exc.strerror or exc}") from None
    except Exception as exc:  # pyarrow and pandas parser errors
        text = " ".join(str(exc).split())[:200]
        raise InputError(
            f"{path}: not a readable {kind} lots file ({type(exc).__name__}: {text})"
        ) from None


def _check_lot_columns(path: Path, columns: list[str]) -> None:
    for c in columns:
        if c not in LOT_FILE_COLUMNS:
            hint = closest(str(c), LOT_FILE_COLUMNS) or "; columns: " + ", ".join(LOT_FILE_COLUMNS)
            raise InputError(f"{path}: unknown column {c!r}{hint}")
    for c in LOT_FILE_COLUMNS:
        if c not in columns:
            raise InputError(
                f"{path}: missing column {c!r}: the lots table needs " + ", ".join(LOT_FILE_COLUMNS)
            )


class LotStream:
    """The lots file read along with the accounts' partitions (same account order).

    :meth:`attach` gives each partition the lots of its accounts (as
    ``frame.attrs["lots"]``), reading only as far as those accounts go;
    :meth:`finish` checks that no lot is left over (an account not in the
    accounts file, or out of its order).

    Parameters
    ----------
    path : str or os.PathLike
        The lots file (module docs).
    rows : int
        Rows read at a time.
    """

    def __init__(self, path: str | os.PathLike, rows: int = CHUNK_ROWS) -> None:
        self.path = Path(path)
        self._chunks = _lot_chunks(self.path, rows)
        self._buffer: pd.DataFrame | None = None
        self._done = False
        self.lots = 0

    def _fill(self) -> bool:
        """Read one more chunk into the buffer; False at the end of the file."""
        if self._done:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._done = True
            return False
        self._buffer = chunk if self._buffer is None else pd.concat([self._buffer, chunk])
        return True

    def take(self, accounts: set[str]) -> pd.DataFrame:
        """The lots rows of ``accounts`` at the head of the file (consumed)."""
        taken = []
        while True:
            if self._buffer is None or len(self._buffer) == 0:
                if not self._fill():
                    break
            mine = self._buffer["account"].isin(accounts).to_numpy()
            stop = np.flatnonzero(~mine)
            if len(stop):
                taken.append(self._buffer.iloc[: stop[0]])
                self._buffer = self._buffer.iloc[stop[0] :]
                break
            taken.append(self._buffer)
            self._buffer = None
        out = pd.concat(taken) if taken else pd.DataFrame(columns=[*LOT_FILE_COLUMNS, "row"])
        self.lots += len(out)
        return out

    def attach(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (a partition) with its accounts' lots in ``frame.attrs["lots"]``."""
        frame.attrs["lots"] = self.take(set(frame["account"].unique()))
        return frame

    def finish(self) -> None:
        """Raise when lots are left over once every partition has taken its own.

        Raises
        ------
        InputError
            Naming the first lot left over: its account is not in the accounts
            file, or the lots file's accounts are not in its order.
        """
        if (self._buffer is None or len(self._buffer) == 0) and not self._fill():
            return
        row = self._buffer.iloc[0]
        raise InputError(
            f"{self.path}: row {row['row']}: account {row['account']!r}: lots of an account that "
            "is not in the accounts file, or out of its order: list the lots in the accounts "
            "file's account order (accounts without lots may be left out)"
        )
