"""trimtab benchmarks: a harness (:mod:`benchmarks.harness`) and one module per benchmark.

Importing this package sets ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` to 1, so every module of the package (and every library it
loads) runs single-threaded BLAS. The variables must be set before numpy is
first imported, which is why this happens here, ahead of any submodule.
``NUMPY_WAS_LOADED`` records whether numpy came first anyway (the harness says
so in its header). See benchmarks/README.md.
"""

from __future__ import annotations

import os
import sys

THREAD_VARS: tuple[str, ...] = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
PREVIOUS_THREADS: dict[str, str | None] = {name: os.environ.get(name) for name in THREAD_VARS}
NUMPY_WAS_LOADED: bool = "numpy" in sys.modules
for _name in THREAD_VARS:
    os.environ[_name] = "1"
