"""Atomic outputs: every file is written to a temporary name, then renamed.

A run writes all its files into a staging folder next to the output folder and
moves them into place only when every file is complete, so a failed run
leaves no partial file and never overwrites an earlier run's outputs with half
of a new one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.allocation import to_jsonable


def json_text(value: Any) -> str:
    """Pretty, sorted-free JSON text of ``value`` with a trailing newline."""
    return json.dumps(to_jsonable(value), indent=2, default=str) + "\n"


class OutputSet:
    """Files of one run, staged and then published together.

    Examples
    --------
    >>> with OutputSet("out") as out:        # doctest: +SKIP
    ...     out.write_text("targets.json", "{}")
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._stage: Path | None = None
        self.files: list[str] = []

    def __enter__(self) -> OutputSet:
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._stage = Path(tempfile.mkdtemp(prefix=".trimtab-", dir=self.folder.parent))
        return self

    def write_text(self, name: str, text: str) -> None:
        """Stage one file (UTF-8)."""
        if self._stage is None:
            raise RuntimeError("OutputSet.write_text outside its with-block")
        (self._stage / name).write_text(text, encoding="utf-8")
        self.files.append(name)

    def write_bytes(self, name: str, data: bytes) -> None:
        """Stage one binary file."""
        if self._stage is None:
            raise RuntimeError("OutputSet.write_bytes outside its with-block")
        (self._stage / name).write_bytes(data)
        self.files.append(name)

    def write_json(self, name: str, value: Any) -> None:
        self.write_text(name, json_text(value))

    def write_csv(self, name: str, frame: pd.DataFrame | pd.Series) -> None:
        self.write_text(name, frame.to_csv())

    def __exit__(self, exc_type, exc, tb) -> None:
        stage, self._stage = self._stage, None
        try:
            if exc_type is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                for name in self.files:
                    tmp = self.folder / f".{name}.tmp"
                    shutil.move(str(stage / name), tmp)
                for name in self.files:
                    os.replace(self.folder / f".{name}.tmp", self.folder / name)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
