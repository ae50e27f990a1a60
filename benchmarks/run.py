#!/usr/bin/env python
"""Run the trimtab benchmarks: ``python benchmarks/run.py [--quick] [--only NAME ...] [--repeat K]``.

Also ``python -m benchmarks.run`` from the repository root. The timing harness is
:mod:`benchmarks.harness`, the command line and the report :mod:`benchmarks.cli`, and each
benchmark is a module ``benchmarks/bench_<name>.py``. Importing
the ``benchmarks`` package sets the BLAS thread variables to 1 before numpy is imported. See
benchmarks/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, Python puts benchmarks/ first on the path; the package is imported from the
# root instead, and the working tree this file belongs to is what gets measured.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if p != str(ROOT)]

from benchmarks.cli import main  # noqa: E402  (after the path is set)

if __name__ == "__main__":
    sys.exit(main())
