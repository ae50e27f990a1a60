"""The files of a run: targets, orders, report and the manifest, published whole.

:func:`write_outputs` writes a :class:`~scenarios.engine.RunResult`'s files,
:func:`write_backtest_outputs` a :class:`~scenarios.backtest_run.BacktestRun`'s;
each ends with :func:`manifest`, what an auditor needs to reproduce the run.
report.json (:func:`run_report`) and the manifest both say which checks failed
(:func:`failed_checks`) and every warning and repair of the run (:func:`run_notes`).
report.html (:mod:`scenarios.report`) draws report.json, which carries
``charts`` for it; an infeasible run publishes its diagnosis
(:func:`write_infeasible_outputs`). Every file goes through
:class:`scenarios.export.OutputSet`, which stages the folder, locks it against
a concurrent run and swaps it in whole; the manifest gets the size and sha256
of every other file there.
"""

from __future__ import annotations

import platform
import re
import warnings
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from optimizer.errors import InfeasibleError
from scenarios.backtest_run import BacktestRun
from scenarios.engine import RunResult, relaxations, report_header, targets_table
from scenarios.export import OutputSet, to_jsonable
from scenarios.montecarlo import MonteCarloResult
from scenarios.report.data import backtest_charts, run_charts
from scenarios.report.html import render_report
from scenarios.schema import Scenario

if TYPE_CHECKING:
    from models.estimates import Estimates
    from optimizer.allocation import Frontier


def montecarlo_table(mc: MonteCarloResult) -> pd.DataFrame:
    """The value fan by year: percentiles p5 .. p95 of nominal value, then of real value."""
    real = mc.value_percentiles(real=True)
    real.columns = [f"real_{c}" for c in real.columns]
    return mc.value_percentiles().join(real)


def lot_sales_csv(sales: pd.DataFrame) -> str:
    """``lot_sales.csv``: one row per lot sold (``acquired`` as an ISO date), no index."""
    table = sales.copy()
    if "acquired" in table:
        table["acquired"] = pd.to_datetime(table["acquired"]).dt.strftime("%Y-%m-%d")
    return table.to_csv(index=False, lineterminator="\n")


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


def _never_fails(make, obj) -> dict:
    """``make(obj)`` (report.json's ``charts``); on an unexpected error, a recorded warning.

    A chart must not cost the run its outputs: the error becomes ``{"error": text}``
    and a UserWarning (so the manifest records it), and the page draws what it can.
    """
    try:
        return make(obj)
    except Exception as exc:  # noqa: BLE001 - any failure of a chart's data, recorded
        text = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"report.html: the charts' data could not be made ({text}); the report shows the "
            "rest and report.json has every figure: please report this as a trimtab bug",
            UserWarning,
            stacklevel=2,
        )
        return {"error": text}


def report_page(report: dict, values: pd.DataFrame | None = None) -> str:
    """report.html of ``report``; if drawing fails, a page saying so and a recorded warning."""
    try:
        return render_report(report, values=values)
    except Exception as exc:  # noqa: BLE001 - the run's other files must still be published
        text = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"report.html: the page could not be drawn ({text}); report.json has every figure: "
            "please report this as a trimtab bug",
            UserWarning,
            stacklevel=2,
        )
        from scenarios.report.html import page
        from scenarios.report.svg import esc

        return page("trimtab report", f"<h1>The report could not be drawn</h1><p>{esc(text)}</p>")


def write_outputs(
    res: RunResult,
    out_dir: str | Path,
    *,
    command: str = "run",
    caught: Iterable[Any] | None = None,
) -> list[str]:
    """Publish targets, orders (with holdings), reports and manifest as the folder ``out_dir``.

    report.json is :func:`run_report` plus ``charts`` (what report.html draws
    beyond it: :func:`scenarios.report.data.run_charts`); report.html is drawn
    from it (:func:`scenarios.report.render_report`).

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
            if res.plan.lot_sales is not None:  # a tax-aware plan: the lots each sell is from
                out.write_text("lot_sales.csv", lot_sales_csv(res.plan.lot_sales))
        if res.frontier is not None:
            pts = res.frontier.points.join(res.frontier.weights)
            out.write_csv("frontier.csv", pts)
        if res.montecarlo is not None:
            out.write_csv("montecarlo.csv", montecarlo_table(res.montecarlo))
        report = run_report(res, caught)
        report["charts"] = _never_fails(run_charts, res)
        out.write_json("report.json", report)
        out.write_text("report.html", report_page(report))
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
    """Publish backtest.csv (comparison), backtest_values.csv, reports and manifest whole.

    report.json's ``charts`` holds the attribution by segment
    (:func:`scenarios.report.data.backtest_charts`); report.html draws the
    value and drawdown paths from backtest_values.csv's data.
    """
    with OutputSet(out_dir, inputs=[run.scenario.path]) as out:
        table = run.table.copy()
        table.index.name = "policy"
        out.write_csv("backtest.csv", table)
        values = run.values()
        values.index.name = "date"
        out.write_csv("backtest_values.csv", values)
        report = run_report(run, caught)
        report["charts"] = _never_fails(backtest_charts, run)
        out.write_json("report.json", report)
        out.write_text("report.html", report_page(report, values))
        files = list(out.files) + ["manifest.json"]
        out.write_manifest(manifest(run.scenario, run, files, command, caught=caught))
    return files


def infeasible_report(
    scn: Scenario, exc: InfeasibleError, caught: Iterable[Any] | None = None
) -> dict:
    """report.json of a run whose policy is infeasible: the diagnosis instead of a target.

    ``status`` is ``"infeasible"``, ``message`` the error's text and
    ``diagnosis`` its entries (``name``, ``relax_by`` in the constraint's
    units, ``side``, ``limit``, ``conflicts_with`` where known).
    """
    warned, repairs = run_notes(None, caught)
    return to_jsonable(
        {
            **report_header(scn),
            "status": "infeasible",
            "message": str(exc),
            "diagnosis": list(getattr(exc, "diagnosis", None) or []),
            "passed": False,
            "failed_checks": [],
            "warnings": warned,
            "repairs": repairs,
        }
    )


def write_infeasible_outputs(
    scn: Scenario,
    exc: InfeasibleError,
    out_dir: str | Path,
    *,
    command: str = "run",
    caught: Iterable[Any] | None = None,
) -> list[str]:
    """Publish report.json, report.html and manifest.json of an infeasible run (whole).

    The folder then holds no targets or orders: the report shows which
    constraints conflict and by how much they must give. The command still
    exits 3.
    """
    with OutputSet(out_dir, inputs=[scn.path]) as out:
        report = infeasible_report(scn, exc, caught)
        out.write_json("report.json", report)
        out.write_text("report.html", report_page(report))
        files = list(out.files) + ["manifest.json"]
        doc = manifest(scn, None, files, command, caught=caught)
        doc["status"] = "infeasible"
        out.write_manifest(doc)
    return files


def write_frontier_outputs(
    scn: Scenario,
    est: Estimates,
    front: Frontier,
    out_dir: str | Path,
    *,
    caught: Iterable[Any] | None = None,
) -> list[str]:
    """Publish frontier.csv, frontier_failed.json, report.json, report.html and manifest.json.

    report.json holds the scenario, the frontier (:meth:`Frontier.to_dict`) and
    ``charts.frontier`` (the policy's frontier, the unconstrained one, the
    policy and holdings marked, the capital market line); report.html draws it.
    """
    from scenarios.report.data import frontier_chart

    warned, repairs = run_notes(None, caught)
    report = to_jsonable(
        {
            "command": "frontier",
            **report_header(scn),
            "frontier": front.to_dict(),
            "warnings": warned,
            "repairs": repairs,
        }
    )
    report["charts"] = _never_fails(
        lambda _: {"frontier": to_jsonable(frontier_chart(scn, est, front, None))}, None
    )
    with OutputSet(out_dir, inputs=[scn.path]) as out:
        out.write_csv("frontier.csv", front.points.join(front.weights))
        out.write_json("frontier_failed.json", front.failed.to_dict(orient="records"))
        out.write_json("report.json", report)
        out.write_text("report.html", report_page(report))
        files = list(out.files) + ["manifest.json"]
        out.write_manifest(manifest(scn, None, files, "frontier", caught=caught))
    return files
