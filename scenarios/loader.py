"""Validated reading of TOML tables and CSV files, with key paths in every message.

The building blocks of :func:`scenarios.schema.load_scenario`: a
:class:`Reader` knows the file being read and turns every problem into an
:class:`~optimizer.errors.InputError` of the form::

    endowment.toml: constraints.group[1].max: expected a number, got string '70%'

A :class:`Table` wraps one TOML table at a key path: it rejects unknown keys
(naming the closest valid one) as soon as it is made, and reads typed values
(numbers, strings, dates, tables, arrays) with defaults. Array indices in key
paths count from 0, as in Python.

Only ``scenarios`` reads files; nothing here computes anything but parsing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import keyword
import math
import re
import stat
import tomllib
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from difflib import get_close_matches
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from optimizer.errors import InputError

__all__ = [
    "MAX_DATA_BYTES",
    "MAX_DEPTH",
    "MAX_SCENARIO_BYTES",
    "MISSING",
    "Reader",
    "Table",
    "check_number",
    "closest",
    "frozen_mapping",
    "identifier",
    "is_number",
    "join",
    "read_limited",
    "type_name",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Sentinel: "no default, the key is required".
MISSING: Any = _Missing()

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

#: Largest scenario file read (bytes).
MAX_SCENARIO_BYTES = 10_000_000
#: Largest data file (CSV of prices, returns, correlations) read (bytes).
MAX_DATA_BYTES = 500_000_000
#: Deepest nesting of tables and arrays in a scenario file.
MAX_DEPTH = 32
#: TOML integers are 64-bit signed.
MAX_INT, MIN_INT = 2**63 - 1, -(2**63)
#: Largest absolute number in a data file (a price of a trillion is accepted): beyond
#: it the estimators' sums of squares overflow, so such a cell is refused, named.
MAX_DATA_VALUE = 1e12


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or an InputError naming it.

    The size is checked before reading (and the read stops after ``limit + 1``
    bytes), so ``/dev/zero``, a pipe or a huge file is refused, not read.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: not a regular file (a device, pipe or socket), not a {what}")
    if info.st_size > limit:
        raise InputError(f"{path}: {what} is {info.st_size:,} bytes; the limit is {limit:,} bytes")
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(f"{path}: {what} is over the limit of {limit:,} bytes")
    return data


def type_name(value: object) -> str:
    """The TOML name of a parsed value's type: ``string``, ``integer``, ``table``, ..."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def _show(value: object) -> str:
    """A value and its type for messages: ``string '70%'``, ``table {...}``."""
    if isinstance(value, dt.date | dt.time):
        return f"{type_name(value)} {value.isoformat()}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type_name(value)} {text}"


def join(parent: str, key: str | int) -> str:
    """Key path of ``key`` inside ``parent``: ``a.b``, ``a[2]``, ``a."odd key"``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    part = key if _BARE_KEY.match(key) else '"' + key.replace('"', '\\"') + '"'
    return f"{parent}.{part}" if parent else part


def closest(word: str, options: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or ``""``."""
    close = get_close_matches(str(word), sorted(map(str, options)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Reader:
    """The file being read: its path and folder, and the error factory.

    Parameters
    ----------
    path : pathlib.Path
        The scenario file, as the caller named it (shown in messages).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path.resolve().parent

    def error(self, where: str, message: str) -> InputError:
        """An InputError ``"<file>: <key path>: <message>"``."""
        return InputError(
            f"{self.path}: {where}: {message}" if where else f"{self.path}: {message}"
        )

    @contextmanager
    def wrap(self, where: str) -> Iterator[None]:
        """Re-raise InputErrors of library calls with the file and key path in front."""
        try:
            yield
        except InputError as exc:
            if str(exc).startswith(f"{self.path}: "):  # already located
                raise
            raise self.error(where, str(exc)) from None

    # ------------------------------------------------------------------------- the TOML file

    def load_toml(self) -> tuple[dict[str, Any], str]:
        """Parse the file; returns the document and the SHA-256 of its bytes.

        Refused with an InputError naming the file and the limit: anything but a
        regular file (a folder, ``/dev/zero``, a pipe), a file over
        :data:`MAX_SCENARIO_BYTES`, tables and arrays nested deeper than
        :data:`MAX_DEPTH`, integers outside TOML's 64-bit range. A UTF-8 byte
        order mark at the start is skipped (the digest covers the file's bytes).
        """
        data = read_limited(self.path, MAX_SCENARIO_BYTES, "scenario file")
        digest = hashlib.sha256(data).hexdigest()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{self.path}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8"
            ) from None
        text = text.removeprefix("\ufeff")
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{self.path}: invalid TOML: {exc}") from None
        except ValueError as exc:  # e.g. an integer of more than sys.get_int_max_str_digits()
            raise InputError(f"{self.path}: invalid TOML: {exc}") from None
        except RecursionError:
            raise InputError(
                f"{self.path}: tables and arrays nested too deeply "
                f"(the limit is {MAX_DEPTH} levels)"
            ) from None
        self._check_tree(doc)
        return doc, digest

    def _check_tree(self, doc: dict[str, Any]) -> None:
        """Depth and integer limits over the parsed document, without recursion."""
        stack: list[tuple[str, object, int]] = [("", doc, 0)]
        while stack:
            where, value, depth = stack.pop()
            if isinstance(value, dict | list):
                if depth > MAX_DEPTH:
                    raise self.error(
                        where,
                        f"nested too deeply (the limit is {MAX_DEPTH} levels of tables and arrays)",
                    )
                items = value.items() if isinstance(value, dict) else enumerate(value)
                stack.extend((join(where, k), v, depth + 1) for k, v in items)
            elif isinstance(value, int) and not isinstance(value, bool):
                if not MIN_INT <= value <= MAX_INT:
                    digits = len(str(abs(value))) if abs(value) < 10**4000 else "too many"
                    raise self.error(
                        where,
                        f"integer out of range ({digits} digits): TOML integers are 64-bit, "
                        f"from {MIN_INT} to {MAX_INT}",
                    )

    # ------------------------------------------------------------------------- data files

    def file(self, where: str, value: object) -> Path:
        """An existing file named by a string; relative paths are relative to the scenario."""
        if not isinstance(value, str) or not value.strip():
            raise self.error(where, f"expected a file path (string), got {_show(value)}")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = self.folder / path
        if not path.exists():
            raise self.error(where, f"file not found: {value!r} (looked for {path})")
        if not path.is_file():
            raise self.error(where, f"not a file: {value!r} ({path})")
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise self.error(where, f"cannot read {value!r} ({path}): {exc.strerror}") from None
        if size > MAX_DATA_BYTES:
            raise self.error(
                where,
                f"{value!r} is {size:,} bytes; data files are limited to {MAX_DATA_BYTES:,} bytes",
            )
        return path

    def read_csv(self, where: str, path: Path, *, dates: bool) -> pd.DataFrame:
        """A CSV whose first column is the row labels and first row the column labels.

        Column labels are checked for duplicates on the raw header (pandas would
        rename them). With ``dates`` the row labels must parse as dates.
        """
        what = f"CSV file {path.name!r}"
        try:
            header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
            frame = pd.read_csv(path, index_col=0)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise self.error(where, f"cannot read {what}: {exc}") from None
        except (OSError, ValueError) as exc:
            raise self.error(where, f"cannot read {what}: {exc}") from None
        labels = [str(c).strip() for c in header.iloc[0].tolist()[1:]] if len(header) else []
        dups = sorted({c for c in labels if labels.count(c) > 1})
        if dups:
            raise self.error(where, f"{what} has duplicate columns: {', '.join(dups)}")
        if frame.shape[1] == 0:
            raise self.error(where, f"{what} has no data columns")
        frame.columns = pd.Index(labels[: frame.shape[1]], dtype=object)
        if dates:
            try:
                index = pd.DatetimeIndex(pd.to_datetime(frame.index, format="mixed"))
            except (ValueError, TypeError) as exc:
                raise self.error(
                    where, f"{what}: the first column must hold dates, one per row: {exc}"
                ) from None
            if index.hasnans:
                pos = int(np.flatnonzero(index.isna())[0])
                raise self.error(where, f"{what}: row {pos + 1} has no date")
            frame.index = index
            if index.has_duplicates:
                dup = index[index.duplicated()][0]
                raise self.error(where, f"{what}: duplicate date {dup.date()}")
        else:
            frame.index = pd.Index([str(i).strip() for i in frame.index], dtype=object)
            if frame.index.has_duplicates:
                dups = sorted(set(frame.index[frame.index.duplicated()]))
                raise self.error(where, f"{what} has duplicate rows: {', '.join(dups)}")
        return frame

    def numeric(self, where: str, frame: pd.DataFrame, what: str) -> pd.DataFrame:
        """``frame`` as floats (empty cells NaN), each bad cell an error naming row and column.

        Refused: text (``'abc'``), infinite values, and numbers above
        :data:`MAX_DATA_VALUE` in absolute value.
        """
        out = {}
        for col in frame.columns:
            values = pd.to_numeric(frame[col], errors="coerce").astype(float)
            text = values.isna() & frame[col].notna()
            size = values.abs().to_numpy()
            checks = (
                (text.to_numpy(), "not a number"),
                (np.isinf(size), "not a finite number"),
                (size > MAX_DATA_VALUE, f"a number beyond +/-{MAX_DATA_VALUE:g}"),
            )
            for bad, problem in checks:
                if bad.any():
                    row = frame.index[bad][0]
                    row = row.date() if isinstance(row, pd.Timestamp) else row
                    cell = frame[col][bad].iloc[0]
                    shown = f"{cell:g}" if isinstance(cell, float) else repr(cell)
                    raise self.error(
                        where, f"{what}: {problem} in column {col!r}, row {row}: {shown}"
                    )
            out[col] = values
        return pd.DataFrame(out, index=frame.index)


class Table:
    """One TOML table at a key path, with its allowed keys checked on creation.

    Parameters
    ----------
    reader : Reader
    data : object
        The parsed value; anything but a table is an error.
    where : str
        Its key path (``""`` for the document).
    allowed : collection of str
        Valid keys; any other key is an error naming the closest valid one.
    """

    def __init__(self, reader: Reader, data: object, where: str, allowed: Collection[str]) -> None:
        if not isinstance(data, dict):
            raise reader.error(where, f"expected a table, got {_show(data)}")
        self.r = reader
        self.data: dict[str, Any] = data
        self.where = where
        for key in data:
            if key not in allowed:
                hint = closest(key, allowed)
                if not hint:
                    hint = "; valid keys: " + ", ".join(sorted(allowed))
                raise reader.error(join(where, key), f"unknown key{hint}")

    def path(self, key: str | int) -> str:
        return join(self.where, key)

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def error(self, key: str | int | None, message: str) -> InputError:
        return self.r.error(self.where if key is None else self.path(key), message)

    def raw(self, key: str, default: Any = MISSING) -> Any:
        if key in self.data:
            return self.data[key]
        if default is MISSING:
            raise self.r.error(self.path(key), "missing (required)")
        return default

    def not_with(self, keys: Sequence[str], why: str) -> None:
        """Reject any of ``keys`` present: they do not apply (``why`` says why not)."""
        for key in keys:
            if key in self.data:
                raise self.r.error(self.path(key), f"not used {why}")

    # ------------------------------------------------------------------------- scalars

    def string(
        self, key: str, default: Any = MISSING, *, choices: Sequence[str] | None = None
    ) -> Any:
        value = self.raw(key, default)
        if key not in self.data:
            return value
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_show(value)}")
        if choices is not None and value not in choices:
            raise self.error(
                key,
                f"unknown value {value!r}{closest(value, choices)}; valid: "
                + ", ".join(repr(c) for c in choices),
            )
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def number(
        self,
        key: str,
        default: Any = MISSING,
        *,
        low: float | None = None,
        high: float | None = None,
        strict_low: bool = False,
        strict_high: bool = False,
        hint: str = "",
    ) -> Any:
        """A finite int or float (never a boolean) in the given range, as a float."""
        value = self.raw(key, default)
        if key not in self.data:
            return value
        return check_number(
            self.r,
            self.path(key),
            value,
            low=low,
            high=high,
            strict_low=strict_low,
            strict_high=strict_high,
            hint=hint,
        )

    def integer(
        self, key: str, default: Any = MISSING, *, low: int | None = None, hint: str = ""
    ) -> Any:
        """A TOML integer (not a float, not a boolean) >= ``low``, as an int.

        Parameters
        ----------
        key : str
        default : object
            Returned when the key is absent; :data:`MISSING` makes it required.
        low : int, optional
            The smallest value allowed.
        hint : str
            Appended to the message of a bad value (what the number means).
        """
        value = self.raw(key, default)
        if key not in self.data:
            return value
        floor = "" if low is None else f" >= {low}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer{floor}, got {_show(value)}{hint}")
        if low is not None and value < low:
            raise self.error(key, f"must be{floor}, got {value!r}{hint}")
        return value

    def boolean(self, key: str, default: Any = MISSING) -> Any:
        value = self.raw(key, default)
        if key in self.data and not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_show(value)}")
        return value

    def date(self, key: str, default: Any = MISSING) -> Any:
        value = self.raw(key, default)
        if key not in self.data:
            return value
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise self.error(key, f"expected a date (YYYY-MM-DD, unquoted), got {_show(value)}")
        return value

    # ------------------------------------------------------------------------- containers

    def table(self, key: str, allowed: Collection[str] | None = None) -> Table | None:
        """The sub-table at ``key`` (None when absent); ``allowed=None`` accepts any key."""
        if key not in self.data:
            return None
        value = self.data[key]
        keys = allowed if allowed is not None else (value if isinstance(value, dict) else ())
        return Table(self.r, value, self.path(key), keys)

    def tables(self, key: str, allowed: Collection[str]) -> list[Table]:
        """An array of tables (``[[key]]``), each checked for ``allowed`` keys."""
        if key not in self.data:
            return []
        value = self.data[key]
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of tables ([[{key}]]), got {_show(value)}")
        return [
            Table(self.r, item, self.path(key) + f"[{i}]", allowed) for i, item in enumerate(value)
        ]

    def strings(self, key: str, default: Any = MISSING) -> Any:
        """An array of non-empty strings (a single string is accepted as one item)."""
        value = self.raw(key, default)
        if key not in self.data:
            return value
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of strings, got {_show(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.r.error(
                    self.path(key) + f"[{i}]", f"expected a non-empty string, got {_show(item)}"
                )
        return list(value)

    def numbers(self, key: str, default: Any = MISSING, **limits: Any) -> Any:
        """A table of name -> number (each checked like :meth:`number`), as a dict."""
        value = self.raw(key, default)
        if key not in self.data:
            return value
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table of numbers, got {_show(value)}")
        return {
            str(k): check_number(self.r, join(self.path(key), k), v, **limits)
            for k, v in value.items()
        }


def check_number(
    reader: Reader,
    where: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    strict_low: bool = False,
    strict_high: bool = False,
    hint: str = "",
) -> float:
    """``value`` as a float, or an error saying what was expected and what was got."""
    if not is_number(value):
        raise reader.error(where, f"expected a number, got {_show(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise reader.error(where, f"expected a finite number, got {value!r}")
    below = low is not None and (v <= low if strict_low else v < low)
    above = high is not None and (v >= high if strict_high else v > high)
    if below or above:
        parts = []
        if low is not None:
            parts.append(f"{'>' if strict_low else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if strict_high else '<='} {high:g}")
        raise reader.error(where, f"must be {' and '.join(parts)}, got {value!r}{hint}")
    return v


def identifier(reader: Reader, where: str, name: str) -> None:
    """An indicator name usable in an expression: a Python identifier, not a keyword."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise reader.error(
            where,
            f"{name!r} is not a valid name (letters, digits and _, not starting with a digit)",
        )


def frozen_mapping(items: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of a mapping."""
    return MappingProxyType(dict(items))
