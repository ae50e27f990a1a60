"""Hostile scenario inputs: the shipped examples with one text edit, or files written by hand.

A :class:`Case` is one row of the catalogue: how to build its input in a folder of
its own, the command line to run on it, the expected exit code (``2`` bad input,
``3`` infeasible, ``0`` accepted) and the culprit strings the one-line message must
contain. ``{scn}`` (the scenario file) and ``{dir}`` (the case's folder) in the
command line and the culprits stand for the paths of the built case.

The same cases serve the command line (a subprocess per case) and the API
(:func:`scenarios.load_scenario` on the built file, where exit code 2 is an
:class:`~optimizer.errors.InputError`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.cli import examples, main

RIA = "ria_q1_2024"
RIVERSIDE = "riverside_endowment"
MODERATE = "profile_moderate"
TACTICAL = "tactical_overlay"
FRENCH = "french_industries_backtest"
FRENCH_CSV = "french_industries.csv"
CORR_CSV = "multi_asset_correlation.csv"
#: Edits turning the French returns example into one that reads ``prices.csv``.
TO_PRICES = [
    ('source = "returns"', 'source = "prices"'),
    (f'file = "{FRENCH_CSV}"', 'file = "prices.csv"'),
]


@dataclass(frozen=True)
class Sparse:
    """A file of ``size`` bytes that takes no disk space (for the size limits)."""

    size: int


@dataclass(frozen=True)
class Folder:
    """A folder where a file is expected."""


@dataclass(frozen=True)
class Case:
    """One hostile input, its command line, and what must come back.

    Attributes
    ----------
    id : str
        The pytest id.
    base : str or None
        Shipped example the scenario starts from (written with ``trimtab example``);
        None: the scenario is ``text`` (or there is none).
    edits : tuple of (old, new)
        Text replacements in the example, each ``old`` found exactly once.
    code : int
        Expected exit code.
    culprits : tuple of str
        Strings the message must contain (``{scn}`` and ``{dir}`` expanded).
    argv : tuple of str
        Command line after ``trimtab``.
    text : bytes or None
        A hand-written scenario file (``base`` None).
    files : mapping name -> str | bytes | Sparse | Folder
        Other files in the case's folder (they replace the example's data files).
    mangle : callable or None
        Applied to the scenario's bytes last (a BOM, CRLF line endings).
    lines : bool
        True when stderr must be exactly one line (argparse errors print usage first).
    """

    id: str
    base: str | None
    edits: tuple[tuple[str, str], ...]
    code: int
    culprits: tuple[str, ...]
    argv: tuple[str, ...] = ("run", "{scn}")
    text: bytes | None = None
    files: Mapping[str, object] = field(default_factory=dict)
    mangle: Callable[[bytes], bytes] | None = None
    lines: bool = True

    def expand(self, text: str, folder: Path) -> str:
        """``text`` with ``{scn}`` and ``{dir}`` replaced by this case's paths in ``folder``."""
        scn = str(scenario_path(self, folder))
        return text.replace("{scn}", scn).replace("{dir}", str(folder))


def case(
    id: str,
    base: str | None,
    edits: list[tuple[str, str]] | tuple[str, str] | None,
    code: int,
    *culprits: str,
    **options: object,
) -> Case:
    """A :class:`Case` in one line: ``edits`` may be one (old, new) pair."""
    if isinstance(edits, tuple):
        edits = [edits]
    return Case(id, base, tuple(edits or ()), code, culprits, **options)  # type: ignore[arg-type]


def scenario_path(c: Case, folder: Path) -> Path:
    """Where case ``c`` keeps its scenario file inside ``folder``."""
    return folder / (f"{c.base}.toml" if c.base else "scenario.toml")


def build(c: Case, folder: Path) -> Path:
    """Write case ``c``'s inputs into ``folder`` (created); returns the scenario path."""
    folder.mkdir(parents=True, exist_ok=True)
    scn = scenario_path(c, folder)
    if c.base is not None:
        assert main(["example", c.base, "--dir", str(folder)]) == 0
        text = scn.read_text(encoding="utf-8")
        for old, new in c.edits:
            assert text.count(old) == 1, f"{c.id}: {old!r} found {text.count(old)} times"
            text = text.replace(old, new)
        scn.write_bytes(text.encode("utf-8"))
    elif c.text is not None:
        scn.write_bytes(c.text)
    if c.mangle is not None:
        scn.write_bytes(c.mangle(scn.read_bytes()))
    for name, content in c.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.is_file():
            path.unlink()
        if isinstance(content, Folder):
            path.mkdir()
        elif isinstance(content, Sparse):
            with open(path, "wb") as fh:
                fh.truncate(content.size)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content), encoding="utf-8")
    return scn


def shipped_path(name: str) -> Path:
    """A file of the shipped examples' folder."""
    return next(iter(examples().values())).parent / name


def shipped(name: str) -> str:
    """The text of a shipped example or data file."""
    return shipped_path(name).read_text(encoding="utf-8")


def edited(name: str, *pairs: tuple[str, str]) -> str:
    """A shipped data file with each (old, new) replaced once (``old`` must be there)."""
    text = shipped(name)
    for old, new in pairs:
        assert old in text, (name, old)
        text = text.replace(old, new, 1)
    return text


def french_prices() -> pd.DataFrame:
    """Monthly prices (100 before the first month) of the 12 French industries, from the returns."""
    rets = pd.read_csv(shipped_path(FRENCH_CSV), index_col=0, parse_dates=True)
    return (1 + rets).cumprod() * 100


def prices_csv(cell: tuple[int, int] | None = None, value: object = None) -> str:
    """:func:`french_prices` as CSV, with one cell (row, column) set to ``value``."""
    frame = french_prices().round(4).astype(object)
    if cell is not None:
        frame.iloc[cell] = value
    frame.index = frame.index.strftime("%Y-%m-%d")
    frame.index.name = "date"
    return frame.to_csv()


def garbage(n: int = 4096, seed: int = 10) -> bytes:
    """A 0x80 byte (invalid UTF-8 at byte 0) and ``n`` random bytes."""
    return b"\x80" + np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def bom(data: bytes) -> bytes:
    """``data`` after a UTF-8 byte order mark."""
    return b"\xef\xbb\xbf" + data


def crlf(data: bytes) -> bytes:
    """``data`` with Windows line endings."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def deep(levels: int) -> bytes:
    """A TOML document with arrays nested ``levels`` deep."""
    return ("x = " + "[" * levels + "]" * levels + "\n").encode()
