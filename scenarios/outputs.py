"""The files of a run: targets, orders, report and the manifest, published whole.

:func:`write_outputs` writes a :class:`~scenarios.engine.RunResult`'s files,
:func:`write_backtest_outputs` a :class:`~scenarios.backtest_run.BacktestRun`'s;
each ends with :func:`manifest`, what an auditor needs to reproduce the run.
report.json (:func:`run_report`) and the manifest both say which checks failed
(:func:`failed_checks`) and every warning and repair of the run (:func:`run_notes`).
Every file goes through :class:`scenarios.export.OutputSet`, which stages the
folder, locks it against a concurrent run and swaps it in whole; the manifest
gets the size and sha256 of every other file there.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

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


#: Warning texts that report a repair of the inputs (a non-PSD matrix, dropped or filled dates).
_REPAIR = re.compile(
    r"not positive semidefinite|nearest (correlation|psd)|repair|dropped|carried forward",
    re.IGNORECASE,
)
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
#: Figures a repair's message gives, by the key they are recorded under.
_FIGURES = {
    "smallest_eigenvalue": re.compile(rf"smallest eigenvalue (?:was |of )?{_NUMBER}"),
    "distance": re.compile(rf"distance (?:moved |of )?{_NUMBER}"),
}


def repair_figures(text: str) -> dict[str, float]:
    """The figures a repair warning gives: ``{"smallest_eigenvalue": -0.28, "distance": 0.37}``.

    Read from the warning of :func:`models.covariance.from_cma` on a non-PSD
    correlation, which says the smallest eigenvalue before the repair and the
    Frobenius distance the nearest correlation matrix moved; figures a
    message does not give are left out.
    """
    out = {}
    for key, pattern in _FIGURES.items():
        m = pattern.search(text)
        if m is not None:
            out[key] = float(m.group(1))
    return out


def failed_checks(res: RunResult | BacktestRun | None) -> list[str]:
    """Names of the checks of a run that failed (empty: all passed, or no checks).

    A run's validation checks (``res.checks``: constraints, return target,
    spending rule, ESG floor, survival) whose ``passed`` is False, then the
    rebalance plan's verification (``plan.checks``) that does not hold after
    rounding to whole lots, as ``"rebalance: <constraint>"``. A backtest and a
    frontier have no pass/fail checks.
    """
    if not isinstance(res, RunResult):
        return []
    failed = [str(c["check"]) for c in res.checks if c["passed"] is False]
    plan_checks = getattr(res.plan, "checks", None) or {}
    failed += [f"rebalance: {name}" for name, c in plan_checks.items() if not c.get("ok", True)]
    return failed


def run_report(res: RunResult | BacktestRun, caught: Iterable[Any] | None = None) -> dict:
    """``res.report()`` with what the run's checks, warnings and repairs were (report.json).

    Adds ``warnings`` and ``repairs`` (:func:`run_notes`: a non-PSD correlation
    repaired, with its figures) and, for a RunResult, ``failed_checks``
    (:func:`failed_checks`) with ``passed`` False when any failed (a breach of
    the rebalance plan counts). ``--json`` prints the same.
    """
    report = dict(res.report())
    if isinstance(res, RunResult):
        failed = failed_checks(res)
        report["passed"] = not failed
        report["failed_checks"] = failed
    warned, repairs = run_notes(res, caught)
    report["warnings"] = warned
    report["repairs"] = repairs
    return to_jsonable(report)


def run_notes(
    res: RunResult | BacktestRun | None, caught: Iterable[Any] | None = None
) -> tuple[list[dict], list[dict]]:
    """``(warnings, repairs)`` of a run, each ``{"source", "message"}`` (and ``category``).

    ``caught`` are :class:`warnings.WarningMessage` (or strings) the caller
    recorded during the run (the command line passes what it caught); none by
    default. Repairs are the warnings that
    report a repaired input (a non-PSD correlation with its smallest eigenvalue
    and the distance moved, also as ``figures``: :func:`repair_figures`;
    dropped or carried-forward dates); the notes of the allocation, the
    rebalance and the backtest policies are warnings.
    """
    warned, repairs, seen = [], [], set()
    for w in caught or ():
        text = str(getattr(w, "message", w))
        if text in seen:
            continue
        seen.add(text)
        category = getattr(getattr(w, "category", None), "__name__", None)
        entry: dict[str, Any] = {"source": "estimates", "message": text, "category": category}
        if _REPAIR.search(text):
            figures = repair_figures(text)
            if figures:
                entry["figures"] = figures
            repairs.append(entry)
        else:
            warned.append(entry)
    if isinstance(res, RunResult):
        for source, obj in (("allocation", res.allocation), ("rebalance", res.plan)):
            for note in getattr(obj, "notes", None) or ():
                warned.append({"source": source, "message": str(note)})
    elif isinstance(res, BacktestRun):
        for name, r in res.results.items():
            for note in r.notes:
                warned.append({"source": f"backtest policy {name}", "message": str(note)})
    return warned, repairs


def manifest(
    scn: Scenario,
    res: RunResult | BacktestRun | None,
    files: list[str],
    command: str,
    *,
    caught: Iterable[Any] | None = None,
) -> dict:
    """What an auditor needs to reproduce a run.

    ``relaxations``: those of a RunResult only; ``warnings`` and ``repairs``:
    see :func:`run_notes`; ``checks``: ``{"passed", "failed"}`` of a run
    (:func:`failed_checks`), ``passed`` None for a command without checks
    (frontier, backtest). Written through :meth:`OutputSet.write_manifest`,
    which adds ``checksums`` (size and sha256 of every file but the manifest).
    """
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
    warned, repairs = run_notes(res, caught)
    return to_jsonable(
        {
            "generator": "trimtab",
            "command": command,
            "scenario_file": str(scn.path),
            "scenario_sha256": scn.sha256,
            "versions": versions,
            "python": platform.python_version(),
            "timings": None if res is None else res.timings,
            "relaxations": relaxations(res),
            "checks": {
                "passed": None if not isinstance(res, RunResult) else not failed_checks(res),
                "failed": failed_checks(res),
            },
            "warnings": warned,
            "repairs": repairs,
            "files": files,
        }
    )


def write_outputs(
    res: RunResult,
    out_dir: str | Path,
    *,
    command: str = "run",
    caught: Iterable[Any] | None = None,
) -> list[str]:
    """Publish targets, orders (with holdings), report and manifest as the folder ``out_dir``.

    The folder is replaced whole (no file of an earlier run stays) or not at
    all; a concurrent run into it fails with
    :class:`~scenarios.export.OutputBusyError`. ``caught``: the warnings the
    run raised, for the manifest. Returns the file names.
    """
    scn = res.scenario
    with OutputSet(out_dir, inputs=[scn.path]) as out:
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
        out.write_json("report.json", run_report(res, caught))
        files = list(out.files) + ["manifest.json"]
        out.write_manifest(manifest(scn, res, files, command, caught=caught))
    return files


def write_backtest_outputs(
    run: BacktestRun,
    out_dir: str | Path,
    *,
    command: str = "backtest",
    caught: Iterable[Any] | None = None,
) -> list[str]:
    """Publish backtest.csv (comparison), backtest_values.csv, report and manifest whole."""
    with OutputSet(out_dir, inputs=[run.scenario.path]) as out:
        table = run.table.copy()
        table.index.name = "policy"
        out.write_csv("backtest.csv", table)
        values = run.values()
        values.index.name = "date"
        out.write_csv("backtest_values.csv", values)
        out.write_json("report.json", run_report(run, caught))
        files = list(out.files) + ["manifest.json"]
        out.write_manifest(manifest(run.scenario, run, files, command, caught=caught))
    return files
