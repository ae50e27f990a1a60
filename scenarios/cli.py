"""The ``trimtab`` command line.

``trimtab run SCENARIO [--out DIR] [--json]`` is the main job; beside it
``frontier``, ``rebalance``, ``stress``, ``backtest``, ``validate``,
``batch SCENARIO --accounts FILE --out DIR`` (many accounts on Dask: exits 0
when it ran, even with accounts infeasible or failed, which stderr counts and
status.csv explains), ``serve`` (the HTTP service), ``keys`` (its API keys) and
``example NAME``; ``report RUN_DIR`` draws report.html again from a run folder (an
infeasible ``run --out`` still publishes its diagnosis: report.html, report.json and
manifest.json, then exits 3).
Tables for people on stdout, ``--json`` for machines. Exit codes (see
:data:`EXIT_CODES`): 0 ok; 2 bad input (file, schema, data, paths: every OS error
on an input or output names the path); 3 infeasible (the message names the
constraints that conflict and by how much, or the target out of reach and the
reachable range); 4 solver failure after every fallback, or an unexpected error
(one line; the traceback only with ``--debug``); 5 policy checks failed (``run``,
``rebalance``, ``stress`` and ``validate``, see :data:`CHECKS`: outputs still
written, ``"passed": false``); 130 interrupted; 141 stdout closed early
(``| head``), quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.errors import InfeasibleError, InputError, SolverError
from scenarios.display import (
    Progress,
    backtest_table,
    checks_failed_line,
    infeasible_line,
    os_error_line,
    out_of_reach_line,
    print_run,
)
from scenarios.export import json_text

EXIT_OK, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_SOLVER, EXIT_CHECKS = 0, 2, 3, 4, 5
EXIT_INTERRUPTED, EXIT_PIPE = 130, 141

#: Every exit code of ``trimtab`` and what it means (the ``--help`` epilog and the README).
EXIT_CODES = {
    EXIT_OK: "ok",
    EXIT_INPUT: "bad input: file, schema, data or paths (every OS error on an input or an "
    "output, naming the path; input limits)",
    EXIT_INFEASIBLE: "infeasible: the constraints conflict, or a target return or volatility "
    "is out of reach (the message names the constraints or the key and the reachable range)",
    EXIT_SOLVER: "solver failure after every fallback, or an unexpected error (one line; "
    "the traceback with --debug)",
    EXIT_CHECKS: "policy checks failed (run, rebalance, stress, validate): stderr names the "
    'failed checks; outputs are still written and report.json and manifest.json say "passed": '
    "false (so does --json of run and validate); frontier, backtest and example have no checks",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_PIPE: "stdout closed early (e.g. `| head -1`): ends quietly",
}
EXAMPLES_PACKAGE = "scenarios"
#: Examples generated from a seed rather than shipped (``trimtab example NAME``).
GENERATED_EXAMPLES = ("adviser_book",)
#: ``scenarios.engine.MAX_FRONTIER_POINTS``, for ``--help`` without importing the engine
#: (a test checks that the two agree).
FRONTIER_POINTS_LIMIT = 1000

#: What exits 5 for each command (its --help says so; commands not named have no checks).
CHECKS = {
    "run": "a validation check fails (constraints, return target, spending rule, ESG floor, "
    "survival) or the rebalance plan breaches a constraint after rounding to whole lots",
    "rebalance": "the same checks as run: the target's validation checks or the plan's "
    "constraint checks after rounding to whole lots",
    "stress": "a stress leaves the portfolio below [validation] survival_floor",
    "validate": "a check of the given weights fails",
}
NO_CHECKS = "has no pass/fail checks, so it never exits 5"


def version() -> str:
    """The installed trimtab version ("unknown" when not installed)."""
    try:
        return metadata.version("trimtab")
    except metadata.PackageNotFoundError:
        return "unknown"


def examples() -> dict[str, Path]:
    """Shipped example scenarios by name."""
    folder = resources.files(EXAMPLES_PACKAGE) / "examples"
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def _load(path: str):
    from scenarios.schema import load_scenario

    return load_scenario(path)


def _check_out(out: str | None, scenario: str | None = None) -> None:
    """Refuse an ``--out`` that cannot be written before any work is done (exit 2).

    The folder may not exist yet, but the path must not be a file, it must not
    be (or hold) the scenario file, anything already there must be an earlier
    trimtab output (:func:`scenarios.export.check_replaceable`), and its
    nearest existing ancestor must be a folder we can create entries in (the
    outputs are staged beside the folder).
    """
    if out is None:
        return
    if not out.strip():
        raise InputError(
            f"--out {out!r} is empty: give the folder to write the outputs to (or leave out "
            "--out to write no files)"
        )
    from scenarios.export import check_out, check_replaceable

    check_out(out, [scenario] if scenario else [])
    check_replaceable(out)
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is not a folder")
    import tempfile

    try:
        tempfile.TemporaryDirectory(prefix=".trimtab-probe-", dir=parent).cleanup()
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write in {parent}: {exc.strerror or exc}") from None


def _failed(checks) -> list[str]:
    """Names of the validation checks that failed."""
    return [str(c["check"]) for c in checks if c["passed"] is False]


def _checks_failed(failed: list[str], where: str) -> int:
    """Say which checks failed (stderr, one line) and return :data:`EXIT_CHECKS`."""
    sys.stdout.flush()
    print(f"trimtab: {checks_failed_line(failed, where)}", file=sys.stderr)
    return EXIT_CHECKS


def _marked(out: str | None) -> str:
    """Where the failed checks are recorded, for the exit-5 line."""
    marked = 'report.json and manifest.json say "passed": false'
    return f" (outputs written to {out}; {marked})" if out else ""


def cmd_run(args) -> int:
    scn = _load(args.scenario)  # first: a missing file fails before the engine's imports
    from scenarios.engine import run_scenario
    from scenarios.outputs import failed_checks, run_report, write_outputs

    _check_out(args.out, args.scenario)
    caught = getattr(args, "caught", None)
    try:
        res = run_scenario(scn, progress=Progress("frontier", not args.json))
    except InfeasibleError as exc:  # still publish the diagnosis (report.html), then exit 3
        if args.out:
            from scenarios.outputs import write_infeasible_outputs

            write_infeasible_outputs(scn, exc, args.out, command="run", caught=caught)
        raise
    if args.out:
        write_outputs(res, args.out, command="run", caught=caught)
    if args.json:
        sys.stdout.write(json_text(run_report(res, caught)))
    else:
        print_run(res)
        if args.out:
            print(f"outputs written to {args.out}")
    failed = failed_checks(res)
    return _checks_failed(failed, _marked(args.out)) if failed else EXIT_OK


def cmd_frontier(args) -> int:
    scn = _load(args.scenario)
    from scenarios.engine import check_frontier_points, frontier
    from scenarios.outputs import write_frontier_outputs

    check_frontier_points(args.points, "--points")  # before the estimates
    _check_out(args.out, args.scenario)
    est = scn.estimates.build()
    fr = frontier(scn, est, args.points, Progress("frontier", not args.json))
    if args.out:
        write_frontier_outputs(scn, est, fr, args.out, caught=getattr(args, "caught", None))
    if args.json:
        sys.stdout.write(json_text(fr.to_dict()))
    else:
        print(fr.points.to_string(float_format=lambda v: f"{v:.4f}"))
        if len(fr.failed):
            print(f"{len(fr.failed)} points failed:")
            print(fr.failed.to_string())
    return EXIT_OK


def cmd_rebalance(args) -> int:
    scn = _load(args.scenario)
    from scenarios.engine import run_scenario
    from scenarios.outputs import failed_checks, write_outputs

    if scn.holdings is None:
        raise InputError(f"{args.scenario}: holdings: a rebalance needs a [holdings] section")
    _check_out(args.out, args.scenario)
    res = run_scenario(scn)
    if args.out:
        write_outputs(res, args.out, command="rebalance", caught=getattr(args, "caught", None))
    if args.json:
        payload = (
            res.plan.to_orders()
            if res.plan is not None
            else {"trade": False, "reasons": list(res.decision.reasons)}
        )
        sys.stdout.write(json_text(payload))
    else:
        print_run(res)
        if args.out:
            print(f"outputs written to {args.out}")
    failed = failed_checks(res)
    return _checks_failed(failed, _marked(args.out)) if failed else EXIT_OK


def cmd_stress(args) -> int:
    scn = _load(args.scenario)
    from scenarios.engine import run_scenario

    if not scn.stress:
        raise InputError(f"{args.scenario}: stress: the scenario has no [[stress]] tables")
    res = run_scenario(scn)
    rows = [s.to_dict() for s in res.stress]
    if args.json:
        sys.stdout.write(json_text(rows))
    else:
        for s in res.stress:
            surv = (
                "" if s.survives is None else f"  {'survives' if s.survives else 'BREACHES FLOOR'}"
            )
            print(f"{s.name}: {s.portfolio_return:+.2%}{surv}")
            print(s.contributions.to_string(float_format=lambda v: f"{v:+.4f}"))
    failed = [f"survival: {s.name}" for s in res.stress if s.survives is False]
    return _checks_failed(failed, "") if failed else EXIT_OK


def cmd_backtest(args) -> int:
    scn = _load(args.scenario)
    from scenarios.backtest_run import run_backtest
    from scenarios.outputs import write_backtest_outputs

    if scn.backtest is None:
        raise InputError(
            f"{args.scenario}: backtest: the scenario has no [backtest] section "
            '(add one with policies = [{ kind = "calendar", every = 3 }, ...])'
        )
    _check_out(args.out, args.scenario)
    run = run_backtest(scn, progress=Progress("backtest", not args.json))
    if args.out:
        write_backtest_outputs(
            run, args.out, command="backtest", caught=getattr(args, "caught", None)
        )
    if args.json:
        sys.stdout.write(json_text(run.report()))
    else:
        rep = run.report()["backtest"]
        print(
            f"{scn.portfolio.name} ({scn.portfolio.id})  backtest {rep['start']}..{rep['end']} "
            f"({rep['periods']} periods), from {rep['initial_value']:,.0f} {scn.portfolio.currency}"
        )
        print(backtest_table(run.table).to_string())
        for name, res in run.results.items():
            for note in res.notes:
                print(f"  note ({name}): {note}")
        if args.out:
            print(f"outputs written to {args.out}")
    return EXIT_OK


def _read_weights(name: str) -> pd.Series:
    """Weights by asset from a CSV (asset,target) or a JSON object (or one with "targets").

    Anything unreadable, non-numeric or non-finite is an InputError naming the file.
    """
    import io

    from scenarios.loader import MAX_SCENARIO_BYTES, read_limited

    path = Path(name)
    if not path.exists():
        above = path.absolute().parent
        while not above.exists() and above != above.parent:
            above = above.parent
        if above.exists() and not above.is_dir():
            raise InputError(f"{name}: no such file: {above} is a file, not a folder")
        raise InputError(f"{name}: no such file")
    data = read_limited(path, MAX_SCENARIO_BYTES, "weights file")
    try:
        if path.suffix == ".json":
            try:
                raw = json.loads(data.decode("utf-8-sig"))
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                raise InputError(f"{name}: invalid JSON: {exc}") from None
            if isinstance(raw, dict) and isinstance(raw.get("targets"), dict):
                raw = raw["targets"]
            if not isinstance(raw, dict):
                raise InputError(
                    f"{name}: expected a JSON object of weights by asset "
                    '(or one with a "targets" object)'
                )
            weights = pd.Series(raw, dtype=float)
        else:
            frame = pd.read_csv(io.BytesIO(data), index_col=0, encoding="utf-8-sig")
            column = frame["target"] if "target" in frame else frame.iloc[:, 0]
            weights = pd.to_numeric(column).astype(float)
    except InputError:
        raise
    except (ValueError, TypeError, IndexError, pd.errors.ParserError) as exc:
        raise InputError(f"{name}: weights must be numbers by asset: {exc}") from None
    weights.index = weights.index.map(str)
    if weights.index.has_duplicates:
        dups = sorted(set(weights.index[weights.index.duplicated()]))
        raise InputError(f"{name}: assets given more than once: {', '.join(dups)}")
    bad = weights.index[~np.isfinite(weights.to_numpy())]
    if len(bad):
        raise InputError(f"{name}: weights missing or not finite for {', '.join(bad)}")
    return weights


def cmd_validate(args) -> int:
    scn = _load(args.scenario)
    from scenarios import stress as stress_mod
    from scenarios.engine import evaluate, validation_checks

    est = scn.estimates.build()
    if args.weights:
        weights = _read_weights(args.weights)
        what = f"weights from {Path(args.weights).name}"
    elif scn.holdings is not None:
        weights, what = scn.holdings.weights, "current holdings"
    elif scn.policy is not None:
        weights, what = scn.policy, "policy weights"
    else:
        raise InputError(
            f"{args.scenario}: nothing to validate: give --weights, holdings or a policy"
        )
    unknown = weights.index.difference(scn.assets)
    if len(unknown):
        raise InputError(f"{what} names unknown assets: {', '.join(map(str, unknown))}")
    alloc = evaluate(weights.astype(float), est, scn, status="given")
    stressed = tuple(
        stress_mod.apply(
            alloc.weights,
            dict(sh),
            name=nm,
            universe=scn.universe,
            value=scn.portfolio.value,
            floor=scn.validation.get("survival_floor"),
        )
        for nm, sh in scn.stress
    )
    checks = validation_checks(scn, alloc, stressed)
    ok = all(c["passed"] is not False for c in checks)
    if args.json:
        sys.stdout.write(json_text({"validated": what, "passed": ok, "checks": list(checks)}))
    else:
        print(f"validating {what}:")
        for c in checks:
            mark = {True: "PASS", False: "FAIL", None: "n/a "}[c["passed"]]
            fig = "" if c["figure"] is None else f" {c['figure']:.6g}"
            print(f"  {mark}  {c['check']}:{fig} ({c['detail']})")
    failed = _failed(checks)
    return _checks_failed(failed, f" ({what})") if failed else EXIT_OK


def cmd_report(args) -> int:
    """Draw report.html again from a run folder's report.json (and its CSVs)."""
    from scenarios.report.folder import rerender

    path = rerender(args.run_dir, args.out)
    if args.json:
        sys.stdout.write(json_text({"report": str(path)}))
    else:
        print(f"wrote {path}")
    return EXIT_OK


def cmd_example(args) -> int:
    """Write a shipped example (and its data files) into ``--dir``.

    An existing file with other content is refused without ``--force``
    (exit 2, naming it); an identical one is left as it is. Each file is
    written to a temporary name beside it, fsynced, then renamed over.
    """
    import secrets

    found = examples()
    folder = Path(args.dir)
    if args.name in GENERATED_EXAMPLES:  # generated from a seed (scenarios.batch.example)
        from scenarios.batch.example import write_example

        blobs = write_example(folder)
    elif args.name not in found:
        choices = sorted([*found, *GENERATED_EXAMPLES])
        raise InputError(f"unknown example {args.name!r}; choose from {', '.join(choices)}")
    else:
        source = found[args.name]
        text = source.read_text(encoding="utf-8")
        blobs = {f"{args.name}.toml": text.encode("utf-8")}
        for data in _data_files(text):
            blobs[data] = (source.parent / data).read_bytes()
    data_files = [n for n in blobs if n != f"{args.name}.toml"]
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: --dir is a file, not a folder")

    def same(path: Path, blob: bytes) -> bool:
        try:
            return path.is_file() and path.stat().st_size == len(blob) and path.read_bytes() == blob
        except OSError:
            return False

    todo = {n: b for n, b in blobs.items() if not same(folder / n, b)}
    clash = [folder / n for n in todo if os.path.lexists(folder / n)]
    if clash and not args.force:
        raise InputError(
            f"{clash[0]}: already exists (with other content); refusing to overwrite it: "
            "pass --force to replace it, or choose another --dir"
        )
    target = folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in todo.items():
            target = folder / name
            tmp = folder / f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(blob)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            finally:
                if os.path.lexists(tmp):
                    os.unlink(tmp)
    except OSError as exc:
        raise InputError(f"{target}: cannot write the example: {exc.strerror or exc}") from None
    if not args.json:
        print(
            f"wrote {folder / (args.name + '.toml')}"
            + "".join(f" and {folder / d}" for d in data_files)
        )
    else:
        sys.stdout.write(
            json_text(
                {
                    "scenario": str(folder / f"{args.name}.toml"),
                    "data": [str(folder / d) for d in data_files],
                }
            )
        )
    return EXIT_OK


def cmd_batch(args) -> int:
    """Rebalance every account of ``--accounts`` on Dask; publish the tables to ``--out``.

    Exits 0 when the batch ran, even when some accounts are infeasible or
    failed (each has its status row); stderr then says how many. Exit 2 for
    the scenario's or the accounts file's problems, which stop the batch before
    anything is published.
    """
    scn = _load(args.scenario)
    from scenarios.batch import run_batch

    _check_out(args.out, args.scenario)
    res = run_batch(
        scn,
        args.accounts,
        out=args.out,
        scheduler=args.scheduler,
        workers=args.workers,
        partition_size=args.partition_size,
        progress=not args.json,
        caught=getattr(args, "caught", None),
        lots=args.lots,
    )
    counts = res.summary["accounts"]
    if args.json:
        sys.stdout.write(json_text({**res.summary, "out": str(args.out), "files": res.files}))
    else:
        t = res.summary["totals"]
        print(
            f"{counts['total']:,} accounts: {counts['ok']:,} ok, {counts['infeasible']:,} "
            f"infeasible, {counts['failed']:,} failed; buys {t['buy_notional']:,.2f}, sells "
            f"{t['sell_notional']:,.2f}, est. cost {t['est_cost']:,.2f}; "
            f"{res.summary['workers']} worker{'s' if res.summary['workers'] != 1 else ''}, "
            f"{res.summary['timings']['total']:.1f} s"
        )
        if "tax" in res.summary:
            tx = res.summary["tax"]
            print(
                f"{tx['accounts_with_lots']:,} accounts with lots: net realized gains "
                f"{tx['net_gains']:,.2f}, estimated tax {tx['estimated_tax']:,.2f}"
            )
        print(f"wrote {args.out}: {', '.join(res.files)}")
    if res.failed:
        sys.stdout.flush()
        print(
            f"trimtab: {res.failed:,} of {counts['total']:,} accounts were not planned "
            f"({counts['infeasible']:,} infeasible, {counts['failed']:,} failed): their "
            f"reasons are in {Path(args.out) / 'status.csv'}",
            file=sys.stderr,
        )
    return EXIT_OK


def _data_files(text: str) -> list[str]:
    """Files a scenario refers to (``file``, ``correlation``, ``lots_file``, ``recent_file``)."""
    import tomllib

    doc = tomllib.loads(text)
    out = []
    for section, keys in (
        ("estimates", ("file", "correlation")),
        ("holdings", ("lots_file", "recent_file")),
    ):
        for key in keys:
            value = doc.get(section, {}).get(key)
            if isinstance(value, str):
                out.append(value)
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trimtab",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="trimtab: convex-optimization asset allocation. Estimate, allocate,\n"
        "rebalance, stress and validate a portfolio described in a TOML scenario file.",
        epilog="exit codes: 0 ok, 2 bad input, 3 infeasible policy, 4 solver failure, "
        "5 policy checks failed\n"
        + "".join(f"  {code:>3}  {text}\n" for code, text in EXIT_CODES.items())
        + "Start from `trimtab example riverside_endowment`.",
    )
    p.add_argument("--version", action="version", version=f"trimtab {version()}")
    debug_help = "on an unexpected error, show the traceback"
    p.add_argument("--debug", action="store_true", help=debug_help)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, summary: str, func) -> argparse.ArgumentParser:
        checks = f"exit 5 when {CHECKS[name]}" if name in CHECKS else f"{name} {NO_CHECKS}"
        sp = sub.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=f"exit codes: 0 ok, 2 bad input, 3 infeasible, 4 solver failure; {checks}.",
        )
        sp.set_defaults(func=func)
        return sp

    def common(sp, out=True):
        # --debug after the command too; SUPPRESS keeps `trimtab --debug run ...` working.
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
        sp.add_argument("scenario", help="scenario file (TOML)")
        if out:
            sp.add_argument("--out", metavar="DIR", help="write outputs to DIR (atomically)")
        sp.add_argument("--json", action="store_true", help="JSON on stdout instead of tables")

    sp = command("run", "the main job: estimate, allocate, rebalance, stress, validate", cmd_run)
    common(sp)
    sp = command("frontier", "efficient frontier under the scenario's constraints", cmd_frontier)
    common(sp)
    sp.add_argument(
        "--points",
        type=int,
        default=50,
        help=f"number of points (default 50, at most {FRONTIER_POINTS_LIMIT:,})",
    )
    sp = command("rebalance", "orders that move the holdings to the target", cmd_rebalance)
    common(sp)
    sp = command("stress", "stress tests of the target portfolio", cmd_stress)
    common(sp, out=False)
    sp = command(
        "backtest",
        "walk the [backtest] rebalancing policies over the returns history",
        cmd_backtest,
    )
    common(sp)
    sp = command(
        "validate", "check given weights against the policy, no optimization", cmd_validate
    )
    common(sp, out=False)
    sp.add_argument(
        "--weights",
        metavar="FILE",
        help="weights CSV (asset,target) or JSON; default: the holdings, else the policy",
    )
    sp = command("batch", "rebalance every account of an accounts file, on Dask", cmd_batch)
    sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    sp.add_argument("scenario", help="scenario file (TOML) with a [batch] section")
    sp.add_argument(
        "--accounts",
        metavar="FILE",
        required=True,
        help="accounts table, Parquet or CSV: account, asset, quantity (or value), model, "
        "cash_flow, untradeable, restricted",
    )
    sp.add_argument(
        "--lots",
        metavar="FILE",
        help="tax lots, Parquet or CSV: account, asset, lot_id, quantity, basis, acquired (in "
        "the accounts file's account order); accounts with lots are planned tax-aware "
        "under the scenario's [tax]",
    )
    sp.add_argument("--out", metavar="DIR", required=True, help="write outputs to DIR (whole)")
    sp.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="an existing Dask scheduler (tcp://HOST:PORT); default: a local cluster; "
        "'in-process': no Dask, one partition after the other",
    )
    sp.add_argument(
        "--workers", type=int, metavar="N", help="worker processes of the local cluster (2)"
    )
    sp.add_argument(
        "--partition-size",
        type=int,
        default=1000,
        metavar="N",
        help="accounts per task (default 1,000)",
    )
    sp.add_argument("--json", action="store_true", help="the summary as JSON on stdout")
    from scenarios.service import commands as service  # argparse only: no FastAPI here

    sp = command("serve", "the HTTP service (FastAPI, uvicorn, SQLite)", service.cmd_serve)
    service.add_serve(sp)
    sp = command("keys", "create, revoke or list the service's API keys", service.cmd_keys)
    service.add_keys(sp)
    sp = command("report", "draw report.html again from a run folder", cmd_report)
    sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    sp.add_argument("run_dir", metavar="RUN_DIR", help="output folder of a run (--out DIR)")
    sp.add_argument(
        "--out",
        metavar="FILE",
        help="write the page to FILE instead (default: RUN_DIR/report.html, manifest updated)",
    )
    sp.add_argument("--json", action="store_true", help="the path written as JSON on stdout")
    sp = command("example", "write a shipped example scenario to start from", cmd_example)
    sp.add_argument("name", help="example name (riverside_endowment, ria_q1_2024, ...)")
    sp.add_argument("--dir", default=".", help="folder to write into (default: here)")
    sp.add_argument(
        "--force",
        action="store_true",
        help="overwrite existing files of the same names (refused without it)",
    )
    sp.add_argument("--json", action="store_true", help="JSON on stdout")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trimtab`` console script; returns the exit code.

    The one place errors become exit codes (:data:`EXIT_CODES`): nothing but a
    one-line message reaches the user, the traceback of an unexpected error
    only with ``--debug``.
    """
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    debug = bool(getattr(args, "debug", False))
    if getattr(args, "func", None) is None:
        parser().print_help()
        return EXIT_OK
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            args.caught = caught  # the commands pass the run's warnings to the manifest
            code = args.func(args)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except InputError as exc:
        reach = out_of_reach_line(str(exc), getattr(args, "scenario", None))
        if reach is not None:
            return _fail(f"trimtab: infeasible: {reach}", EXIT_INFEASIBLE)
        return _fail(f"trimtab: error: {exc}", EXIT_INPUT)
    except InfeasibleError as exc:
        line = infeasible_line(str(exc), getattr(args, "scenario", None))
        return _fail(f"trimtab: infeasible: {line}", EXIT_INFEASIBLE)
    except SolverError as exc:
        return _fail(f"trimtab: solver failure: {exc}", EXIT_SOLVER)
    except BrokenPipeError:
        _stdout_to_devnull()
        return EXIT_PIPE
    except OSError as exc:
        return _fail(f"trimtab: error: {os_error_line(exc)}", EXIT_INPUT, debug)
    except KeyboardInterrupt:
        return _fail("trimtab: interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # the top-level handler: anything unexpected is exit 4
        text = " ".join(str(exc).split())
        if len(text) > 300:
            text = text[:297] + "..."
        hint = "" if debug else " (run with --debug for the traceback)"
        return _fail(
            f"trimtab: unexpected error: {type(exc).__name__}: {text}{hint}", EXIT_SOLVER, debug
        )


def _fail(message: str, code: int, debug: bool = False) -> int:
    """Print the traceback (``--debug``) and the one-line message on stderr; return ``code``."""
    try:
        if debug:
            traceback.print_exc(file=sys.stderr)
        print(message, file=sys.stderr)
        sys.stderr.flush()
    except OSError:  # stderr itself closed
        pass
    return code


def _stdout_to_devnull() -> None:
    """After a closed pipe: point stdout at devnull so the exit flush cannot fail (Python docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
