"""What the command-line tests share: calling ``trimtab`` in process, the shipped examples, small data."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.cli import main


def call(argv: list[str]) -> tuple[int, str, str]:
    """``trimtab argv`` in process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def one_line(err: str) -> str:
    """stderr is exactly one line without a traceback; returns it."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def example(name: str, folder: Path) -> Path:
    """The shipped example ``name`` written into ``folder`` by ``trimtab example``."""
    code, _, err = call(["example", name, "--dir", str(folder)])
    assert code == 0, err
    return folder / f"{name}.toml"


def edit(path: Path, old: str, new: str, name: str) -> Path:
    """A copy of ``path`` named ``name`` with ``old`` (which must be there) replaced once."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    out = path.with_name(name)
    out.write_text(text.replace(old, new, 1), encoding="utf-8")
    return out


def without_montecarlo(riverside: Path) -> Path:
    """The endowment example cut before its Monte Carlo (quicker runs), as ``fast.toml``."""
    text = riverside.read_text(encoding="utf-8")
    out = riverside.with_name("fast.toml")
    out.write_text(text[: text.index("# spending_rate and inflation come")], encoding="utf-8")
    return out


def small_scenario(folder: Path, text: str) -> Path:
    """``text`` as ``small.toml`` beside 120 months of seeded returns of A, B, C (``returns.csv``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    dates = pd.date_range("2000-01-31", periods=120, freq="ME")
    rets = pd.DataFrame(
        rng.normal([0.008, 0.004, 0.002], [0.05, 0.03, 0.01], size=(120, 3)),
        index=pd.Index(dates, name="date"),
        columns=["A", "B", "C"],
    )
    rets.to_csv(folder / "returns.csv")
    path = folder / "small.toml"
    path.write_text(text, encoding="utf-8")
    return path
