"""Scenario documents sent to the service: JSON or TOML in, a validated Scenario out.

A JSON request body *is* a scenario file written as JSON: the same sections,
keys, names and units as the TOML (``portfolio``, ``assets``, ``estimates``,
``model``, ``policy``, ``constraints``, ``holdings``, ``costs``,
``rebalance``, ...). Dates (``as_of``, ``start``, ``end``) are ISO strings
(``"2024-03-31"``), since JSON has no dates. The document is written out as
TOML and read by :func:`scenarios.schema.load_scenario` itself, so a JSON
request and a TOML file are validated by the same code, with the same key
paths in the messages (``constraints.group[1].max: must be <= 1, got 70``).

The service reads no files on a client's behalf: ``estimates.file`` and a
``estimates.correlation`` given as a file name are refused (give the data
inline). Loaded scenarios are kept in a small bounded cache keyed by the
document's SHA-256 (:class:`DocumentCache`): a hit is a scenario read from
the same bytes, so it never changes an answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import shutil
import tempfile
import threading
import tomllib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optimizer.errors import InputError
from scenarios.loader import MAX_DEPTH, join

#: Keys whose ISO-date strings become TOML dates.
DATE_KEYS = frozenset({"as_of", "start", "end"})
#: Keys of ``[estimates]`` that name data files (refused: the service reads no files).
FILE_KEYS = ("file", "correlation")
#: The name a request's scenario carries in messages and reports.
REQUEST_NAME = "request.toml"

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEY_PATH = re.compile(r'^(?:[A-Za-z0-9_-]+|"[^"]*")(?:\.(?:[A-Za-z0-9_-]+|"[^"]*")|\[\d+\])*$')


def _toml_string(text: str, where: str) -> str:
    """A TOML basic string (JSON's escapes, plus DEL, which TOML also forbids raw)."""
    if _SURROGATE.search(text):
        raise InputError(
            f"{REQUEST_NAME}: {where}: text with a lone surrogate (an invalid \\u escape): "
            "send valid Unicode"
        )
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise InputError(f"{REQUEST_NAME}: {where}: keys must be strings, got {type(key).__name__}")
    return key if _BARE.fullmatch(key) else _toml_string(key, where)


def _toml_value(value: Any, where: str, key: str, depth: int) -> str:
    """One JSON value as TOML inline syntax (tables and arrays inline)."""
    if depth > MAX_DEPTH:
        raise InputError(
            f"{REQUEST_NAME}: {where}: nested too deeply (the limit is {MAX_DEPTH} levels)"
        )
    if value is None:
        raise InputError(
            f"{REQUEST_NAME}: {where}: null is not a value here: leave the key out instead"
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        if key in DATE_KEYS and _ISO_DATE.fullmatch(value):
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                raise InputError(
                    f"{REQUEST_NAME}: {where}: {value!r} is not a date (YYYY-MM-DD)"
                ) from None
        return _toml_string(value, where)
    if isinstance(value, dict):
        items = [
            f"{_toml_key(k, where)} = {_toml_value(v, join(where, k), k, depth + 1)}"
            for k, v in value.items()
        ]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, list):
        items = [_toml_value(v, join(where, i), key, depth + 1) for i, v in enumerate(value)]
        return "[" + ", ".join(items) + "]"
    raise InputError(f"{REQUEST_NAME}: {where}: unsupported value of type {type(value).__name__}")


def to_toml(doc: dict[str, Any]) -> str:
    """A JSON scenario document as TOML text (one line per top-level section).

    Parameters
    ----------
    doc : dict
        The parsed JSON body: section name -> table (or array of tables).

    Returns
    -------
    str
        TOML that :func:`tomllib.loads` reads back into ``doc`` (ISO-date
        strings under ``as_of``, ``start`` and ``end`` become dates).

    Raises
    ------
    InputError
        Not an object, a ``null`` anywhere (its key path named), nesting deeper
        than :data:`scenarios.loader.MAX_DEPTH`.
    """
    if not isinstance(doc, dict):
        raise InputError(
            f"the body must be a JSON object (a scenario's sections), got {type(doc).__name__}"
        )
    return "".join(
        f"{_toml_key(k, '')} = {_toml_value(v, join('', k), k, 1)}\n" for k, v in doc.items()
    )


def check_no_files(doc: dict[str, Any]) -> None:
    """Refuse data files named in a request (the service reads none).

    Raises
    ------
    InputError
        ``estimates.file`` given, or ``estimates.correlation`` as a file name,
        with the key path and the inline form to use instead.
    """
    est = doc.get("estimates")
    if not isinstance(est, dict):
        return
    for key in FILE_KEYS:
        if isinstance(est.get(key), str):
            raise InputError(
                f"{REQUEST_NAME}: estimates.{key}: {est[key]!r} names a file; the service reads no files: give "
                'the data inline (source = "cma" with expected_return, volatility and '
                "correlation as tables by asset)"
            )


def located(message: str) -> tuple[str, str | None]:
    """A request's error message without the ``request.toml:`` prefix, and its key path.

    ``"request.toml: constraints.group[1].max: must be <= 1"`` becomes
    ``("constraints.group[1].max: must be <= 1", "constraints.group[1].max")``;
    a message without the prefix (an error of the solve) has no path.
    """
    prefix = f"{REQUEST_NAME}: "
    if not message.startswith(prefix):
        return message, None
    text = message[len(prefix) :]
    first, sep, _ = text.partition(": ")
    return text, first if sep and _KEY_PATH.fullmatch(first) else None


class DocumentCache:
    """Loaded scenarios (and what was derived from them) by content, least recently used out.

    Parameters
    ----------
    max_items : int
        Entries kept (a repeated rebalance keeps three per account: its body, its
        prepared scenario and its :class:`~scenarios.service.ops.Trading`).
    max_cells : int
        Bound on the sum, over the entries, of the number of assets squared (what a
        scenario's covariance and correlation hold): about 40 MB per million cells.
    tmp : pathlib.Path or None
        Folder for the transient TOML files (the system's temporary folder by default).
    """

    def __init__(
        self, max_items: int = 1024, max_cells: int = 2_000_000, tmp: Path | None = None
    ) -> None:
        self.max_items = int(max_items)
        self.max_cells = int(max_cells)
        self.tmp = tmp
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self._cells = 0

    def get(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The entry for ``key``, made by ``make()`` when absent (errors are not cached)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = make()
        cells = _cells(value)
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, cells)
                self._cells += cells
            while self._items and (
                len(self._items) > self.max_items or self._cells > self.max_cells
            ):
                _, (_, gone) = self._items.popitem(last=False)
                self._cells -= gone
        return value

    def scenario(self, text: str, *, checked: bool = False):
        """The :class:`~scenarios.schema.Scenario` of TOML ``text`` (cached by its SHA-256).

        ``checked``: the caller has already refused data files in the document.

        Raises
        ------
        InputError
            As :func:`scenarios.schema.load_scenario` raises them, the file prefix
            replaced by ``request.toml``; data files named in the text.
        """
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return self.get(("scenario", digest), lambda: self._load(text, checked))

    def scenario_of_json(self, body: bytes):
        """The Scenario of a JSON scenario document (cached by the body's SHA-256 as well)."""

        def make():
            doc = json_document(body)
            check_no_files(doc)
            return self.scenario(to_toml(doc), checked=True)

        return self.get(("json", hashlib.sha256(body).hexdigest()), make)

    def _load(self, text: str, checked: bool = False):
        from scenarios.schema import load_scenario

        if not checked:
            try:
                doc = tomllib.loads(text)
            except (tomllib.TOMLDecodeError, ValueError, RecursionError):
                doc = None  # the loader says what is wrong, with line and column
            if doc is not None:
                check_no_files(doc)
        folder = Path(tempfile.mkdtemp(prefix="trimtab-req-", dir=self.tmp))
        path = folder / REQUEST_NAME
        try:
            path.write_text(text, encoding="utf-8")
            try:
                return load_scenario(path)
            except InputError as exc:
                raise InputError(str(exc).replace(f"{path}: ", f"{REQUEST_NAME}: ")) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _cells(value: Any) -> int:
    """Assets squared of a cached scenario, estimates, or what was derived from a scenario."""
    scn = getattr(value, "scenario", value)
    sized = getattr(scn, "assets", None)
    if sized is None:
        sized = getattr(value, "mu", None)
    try:
        return 0 if sized is None else len(sized) ** 2
    except TypeError:
        return 0


def body_text(body: bytes, what: str = "body") -> str:
    """UTF-8 text of a request body, or an InputError saying so."""
    try:
        return body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what}: not UTF-8 text (byte {exc.start})") from None


def json_document(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body (a scenario document).

    Raises
    ------
    InputError
        Not UTF-8, not JSON (with line and column), not an object.
    """
    text = body_text(body)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"body: invalid JSON: {exc.msg} (at line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise InputError(f"body: nested too deeply (the limit is {MAX_DEPTH} levels)") from None
    if not isinstance(doc, dict):
        raise InputError(
            f"body: expected a JSON object (a scenario's sections), got {type(doc).__name__}"
        )
    return doc
