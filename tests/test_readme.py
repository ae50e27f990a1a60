"""The README's Python examples run as written, in order, in one namespace."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_examples() -> None:
    assert len(python_blocks()) >= 3


def test_readme_examples_run(capsys) -> None:
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in python_blocks():
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "alternatives minimum" in out
    assert namespace["best"].checks["equity cap"]["ok"]


def test_readme_schema_example_is_the_shipped_endowment() -> None:
    block = re.search(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    shipped = README.parent / "scenarios" / "examples" / "riverside_endowment.toml"
    assert block is not None
    assert block.group(1).strip() == shipped.read_text(encoding="utf-8").strip()
