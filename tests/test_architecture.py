"""Import direction: optimizer <- models <- scenarios, checked from the source files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> packages it must never import
FORBIDDEN = {"optimizer": {"models", "scenarios"}, "models": {"scenarios"}}


def imported_packages(source: str) -> set[str]:
    """Top-level package names imported by a Python source text."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value.split(".")[0])
    return found


def violations(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_packages(path.read_text(encoding="utf-8")) & FORBIDDEN[package]
        out.extend(f"{path.relative_to(ROOT)} imports {name}" for name in sorted(bad))
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package: str) -> None:
    assert (ROOT / package / "__init__.py").exists()
    assert violations(package) == []


@pytest.mark.parametrize(
    "source",
    [
        "import models",
        "import scenarios.cli as c",
        "from models.covariance import sample",
        "from scenarios import load_scenario",
        "def f():\n    from models import returns\n",
        "import importlib\nimportlib.import_module('scenarios.cli')",
    ],
)
def test_checker_catches_forbidden_imports(source: str) -> None:
    assert imported_packages(source) & FORBIDDEN["optimizer"]


def test_checker_ignores_relative_and_unrelated_imports() -> None:
    src = "from . import errors\nimport numpy as np\nfrom optimizer.errors import InputError\n"
    assert imported_packages(src) == {"numpy", "optimizer"}
