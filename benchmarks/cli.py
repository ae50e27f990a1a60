"""The command line and the report: header, result table, notes and the JSON file.

:func:`main` runs the selected benchmarks (``benchmarks/bench_<name>.py``, each one's ``run``)
one after the other; a benchmark that breaks becomes an ERROR row and the others still run.
Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from benchmarks import NUMPY_WAS_LOADED, PREVIOUS_THREADS, THREAD_VARS
from benchmarks.harness import Config, Outcome, Row, fmt_ratio, fmt_seconds, progress
from benchmarks.peers import PEERS, peer_problem, version

#: Benchmark names in run order; each is the module ``benchmarks.bench_<name>``.
BENCHMARKS: tuple[str, ...] = (
    "estimators",
    "frontier",
    "factor",
    "risk_parity",
    "resolve",
    "rebalance",
    "backtest",
    "same_content",
    "discrete",
    "critical_line",
    "batch",
    "pooled",
    "service",
    "tax",
    "tax_backtest",
)


def load() -> str:
    """The load average, for the header and the footer."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "unknown"


def environment(cfg: Config) -> list[str]:
    """Header lines: date, machine, threads, versions, peers, load, run counts."""
    were = [f"{k}={v}" for k, v in PREVIOUS_THREADS.items() if v is not None]
    threads = (
        "threads: "
        + ", ".join(f"{v}=1" for v in THREAD_VARS)
        + " set by the harness before importing numpy"
    )
    if any(v not in (None, "1") for v in PREVIOUS_THREADS.values()):
        threads += " (were: " + ", ".join(were) + ")"
    if NUMPY_WAS_LOADED:
        threads += " (numpy was imported first: the setting may not have taken effect)"
    lines = [
        f"trimtab benchmarks, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
        + (" (--quick: small problems, goals indicative only)" if cfg.quick else ""),
        f"machine: {platform.machine()}, {os.cpu_count()} cores visible; Python "
        f"{platform.python_version()}; {platform.platform(terse=True)}",
        threads,
    ]
    try:
        from threadpoolctl import threadpool_info

        pools = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} thread"
            f"{'s' if p.get('num_threads') != 1 else ''})"
            for p in threadpool_info()
        ]
        lines.append("BLAS/OpenMP pools loaded: " + ("; ".join(pools) or "none"))
    except Exception:  # threadpoolctl comes with scikit-learn; only informative
        pass
    runtime = ("numpy", "scipy", "pandas", "scikit-learn", "cvxpy", "clarabel", "osqp", "proxsuite")
    lines.append("runtime: " + ", ".join(f"{d} {version(d)}" for d in runtime))
    lines.append(
        "peers: "
        + ", ".join(
            f"{p.label} {version(p.distribution)}"
            + (f" [{peer_problem(p)}]" if peer_problem(p) else "")
            for p in PEERS
        )
    )
    lines.append(f"load average at start: {load()}")
    lines.append(
        f"runs: {cfg.repeat} per benchmark, {cfg.repeat_slow} for frontier-type ones; medians"
    )
    return lines


def table(rows: Sequence[Row]) -> list[str]:
    """The result table, aligned for a terminal."""
    header = ("benchmark", "trimtab", "peer", "ratio", "goal", "result")
    body = [
        (
            f"{r.bench}: {r.label}",
            fmt_seconds(r.ours),
            fmt_seconds(r.peer),
            fmt_ratio(r),
            r.goal.text if r.goal else "-",
            r.result,
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header[:5]) + "  " + header[5]]
    lines.append("-" * (sum(widths) + 2 * 5 + 6))
    lines += [fmt.format(*b[:5]) + "  " + b[5] for b in body]
    return lines


def run_benchmark(name: str, cfg: Config) -> Outcome:
    """Import ``benchmarks.bench_<name>`` and run it; a broken benchmark becomes an ERROR row."""
    progress(f"[{name}]")
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        progress(f"[{name}] {module.TITLE}")
        outcome = module.run(cfg)
    except Exception as exc:  # the other benchmarks still run
        traceback.print_exc()
        outcome = Outcome(
            rows=[
                Row(name, "harness error", None, None, None, f"ERROR: {type(exc).__name__}: {exc}")
            ]
        )
    progress(f"[{name}] done in {time.perf_counter() - t0:.1f} s")
    return outcome


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see benchmarks/README.md)."""
    parser = argparse.ArgumentParser(
        description="Time trimtab against peer libraries on the same inputs "
        "(see benchmarks/README.md)."
    )
    parser.add_argument(
        "--quick", action="store_true", help="small problems: a sanity run under a minute"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only these: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        metavar="K",
        help="timed runs per side (default 5; frontier-type 3; same_content twice K)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the header, rows and notes as JSON"
    )
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks and print the report; 0 unless the harness itself breaks."""
    args = parse_args(argv)
    cfg = Config.make(quick=args.quick, repeat=args.repeat)
    header = environment(cfg)
    for line in header:
        progress(line)
    start = time.perf_counter()
    names = [b for b in BENCHMARKS if not args.only or b in args.only]
    outcomes = {name: run_benchmark(name, cfg) for name in names}
    elapsed = time.perf_counter() - start

    rows = [r for o in outcomes.values() for r in o.rows]
    if cfg.quick:  # the goals are set for the full sizes
        for r in rows:
            if r.result.startswith(("PASS", "FAIL")):
                r.result = r.result[:4] + "*" + r.result[4:]
    footer = f"total wall time {elapsed:.0f} s; load average at the end: {load()}"
    print("\n".join(header))
    print()
    print("\n".join(table(rows)))
    print()
    print("ratio = trimtab median / peer median (in brackets: how many times faster trimtab is)")
    if cfg.quick:
        print("* --quick: small problems; the goals are set for the full sizes (indicative only)")
    for name, o in outcomes.items():
        if o.notes:
            print(f"\n[{name}]")
            for note in o.notes:
                print(f"  - {note}")
    print(f"\n{footer}")
    if args.json is not None:
        report = {
            "header": header,
            "config": asdict(cfg),
            "rows": [r.to_dict() for r in rows],
            "notes": {name: o.notes for name, o in outcomes.items()},
            "footer": footer,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        progress(f"JSON report written to {args.json}")
    return 0
