"""Scenario files, the main job and the command line; stress tests and exports.

The only package in trimtab that reads or writes files.

>>> from scenarios import load_scenario, run_scenario   # doctest: +SKIP

The names below are imported on first use (PEP 562), so that ``trimtab --help``
and a command line error on a missing file start without the optimizer and the
estimators (about half a second).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scenarios.engine import RunResult, run_scenario
    from scenarios.outputs import write_outputs
    from scenarios.schema import Scenario, load_scenario

__all__ = ["RunResult", "Scenario", "load_scenario", "run_scenario", "write_outputs"]

#: public name -> the module defining it
_HOMES = {
    "RunResult": "scenarios.engine",
    "run_scenario": "scenarios.engine",
    "write_outputs": "scenarios.outputs",
    "Scenario": "scenarios.schema",
    "load_scenario": "scenarios.schema",
}


def __getattr__(name: str) -> Any:
    """The public names of :data:`__all__`, imported from their modules on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'scenarios' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
