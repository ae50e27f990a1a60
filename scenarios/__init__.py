"""Scenario files, the main job and the command line; stress tests and exports.

The only package in trimtab that reads or writes files.

>>> from scenarios import load_scenario, run_scenario   # doctest: +SKIP
"""

from scenarios.engine import RunResult, run_scenario
from scenarios.outputs import write_outputs
from scenarios.schema import Scenario, load_scenario

__all__ = ["RunResult", "Scenario", "load_scenario", "run_scenario", "write_outputs"]
