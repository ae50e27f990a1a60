"""A fast command-line start: ``trimtab --help`` and an error on a missing file skip the
heavy imports (scikit-learn, scipy.stats, narwhals, the engine), imported where used.

Checked by the modules imported (in a fresh interpreter), not by timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Imported only by the estimators and the engine that need them.
HEAVY = ("sklearn", "scipy.stats", "narwhals", "scenarios.engine", "models.mean_variance")

PROBE = """
import contextlib, io, json, sys
from scenarios import cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = cli.main(sys.argv[1:])
    except SystemExit as exc:  # --help
        code = exc.code
print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules]}))
"""


def probe(*argv: str) -> dict:
    """Exit code and the heavy modules imported by ``trimtab *argv`` in a fresh interpreter."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,), *argv],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv, code",
    [
        (("--help",), 0),
        (("run", "/nonexistent/scenario.toml"), 2),
        (("frontier", "/nonexistent/scenario.toml"), 2),
    ],
)
def test_no_heavy_import_for_help_or_a_missing_file(argv: tuple[str, ...], code: int) -> None:
    got = probe(*argv)
    assert got == {"code": code, "heavy": []}


def test_the_package_names_import_on_first_use() -> None:
    import scenarios

    assert callable(scenarios.run_scenario)
    assert scenarios.load_scenario.__module__.startswith("scenarios.schema")
    assert set(scenarios.__all__) <= set(dir(scenarios))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        scenarios.nope  # noqa: B018
