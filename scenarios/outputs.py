"""The files of a run: targets, orders, report and the manifest, written atomically.

:func:`write_outputs` writes a :class:`~scenarios.engine.RunResult`'s files,
:func:`write_backtest_outputs` a :class:`~scenarios.backtest_run.BacktestRun`'s;
each ends with :func:`manifest`, what an auditor needs to reproduce the run.
Every file goes through :class:`scenarios.export.OutputSet`.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from scenarios.backtest_run import BacktestRun
from scenarios.engine import RunResult, relaxations, targets_table
from scenarios.export import OutputSet, to_jsonable
from scenarios.montecarlo import MonteCarloResult
from scenarios.schema import Scenario


def montecarlo_table(mc: MonteCarloResult) -> pd.DataFrame:
    """The value fan by year: percentiles p5 .. p95 of nominal value, then of real value."""
    real = mc.value_percentiles(real=True)
    real.columns = [f"real_{c}" for c in real.columns]
    return mc.value_percentiles().join(real)


def manifest(
    scn: Scenario, res: RunResult | BacktestRun | None, files: list[str], command: str
) -> dict:
    """What an auditor needs to reproduce a run (relaxations: those of a RunResult only)."""
    versions = {}
    for dist in (
        "trimtab",
        "numpy",
        "pandas",
        "scipy",
        "cvxpy",
        "clarabel",
        "osqp",
        "scs",
        "proxsuite",
        "scikit-learn",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return to_jsonable(
        {
            "command": command,
            "scenario_file": str(scn.path),
            "scenario_sha256": scn.sha256,
            "versions": versions,
            "python": platform.python_version(),
            "timings": None if res is None else res.timings,
            "relaxations": relaxations(res),
            "files": files,
        }
    )


def write_outputs(res: RunResult, out_dir: str | Path, *, command: str = "run") -> list[str]:
    """Write targets, orders (with holdings), report and manifest atomically into ``out_dir``."""
    scn = res.scenario
    with OutputSet(out_dir) as out:
        table = targets_table(res)
        out.write_csv("targets.csv", table)
        out.write_json(
            "targets.json",
            {
                "as_of": res.report()["as_of"],
                "portfolio_id": scn.portfolio.id,
                "targets": res.target,
            },
        )
        if res.plan is not None:
            out.write_json("orders.json", res.plan.to_orders())
            out.write_text("orders.csv", res.plan.orders_csv())
        if res.frontier is not None:
            pts = res.frontier.points.join(res.frontier.weights)
            out.write_csv("frontier.csv", pts)
        if res.montecarlo is not None:
            out.write_csv("montecarlo.csv", montecarlo_table(res.montecarlo))
        out.write_json("report.json", res.report())
        files = list(out.files) + ["manifest.json"]
        out.write_json("manifest.json", manifest(scn, res, files, command))
    return files


def write_backtest_outputs(
    run: BacktestRun, out_dir: str | Path, *, command: str = "backtest"
) -> list[str]:
    """Write backtest.csv (comparison), backtest_values.csv, report and manifest atomically."""
    with OutputSet(out_dir) as out:
        table = run.table.copy()
        table.index.name = "policy"
        out.write_csv("backtest.csv", table)
        values = run.values()
        values.index.name = "date"
        out.write_csv("backtest_values.csv", values)
        out.write_json("report.json", run.report())
        files = list(out.files) + ["manifest.json"]
        out.write_json("manifest.json", manifest(run.scenario, run, files, command))
    return files
