"""Benchmark 9: the exact frontier by the critical line against the solver sweep.

trimtab's ``critical_line(mu, cov)`` (every corner portfolio; new covariance content each run,
so every run pays validation and the least-variance start) and ``CriticalLine.frontier(50)``
(50 verified points interpolated exactly between the corners) against the current
``efficient_frontier(mu, cov, points=50)`` solved point by point (its fallback, the
warm-started ProxQP sweep; since issue 11 the frontier itself is the critical line's) on the same
problem: the n=500 Ledoit-Wolf case of
benchmark 2, long-only. A second part runs the factor form (n=2000, 50 factors, 50 points;
goal under 5 s, no failed point). Accuracy: at each of ``efficient_frontier``'s targets the
critical line's volatility must be no higher than the sweep's x (1 + 1e-6).

Run alone: ``python -m benchmarks.bench_critical_line [--quick]``.
"""

from __future__ import annotations

import sys

import numpy as np

from benchmarks.accuracy import describe_excess, excess
from benchmarks.datasets import factor_inputs, fresh_scale, lw_inputs, new_content, tiny_inputs
from benchmarks.harness import (
    Config,
    Goal,
    Outcome,
    Side,
    combined,
    make_row,
    measure,
    progress,
    times_note,
    trimtab_api,
)
from models.mean_variance import efficient_frontier
from optimizer.riskmodel import FactorCovariance

TITLE = "9 exact frontier (critical line) vs the solver sweep"
BENCH = "9 critical line"

critical_line, MISSING = trimtab_api("models._critical_line", "critical_line")


def point_by_point(mu, cov, points: int):
    """``efficient_frontier`` as it was before the critical line: one solve per point (the
    critical line made to fail, so that the frontier falls back to its warm-started sweep)."""
    from unittest import mock

    from models import mean_variance
    from optimizer.errors import SolverError

    unsettled = SolverError("benchmark: the point-by-point sweep", [])
    with mock.patch.object(mean_variance, "corners", side_effect=unsettled):
        return efficient_frontier(mu, cov, points=points)


def run(cfg: Config) -> Outcome:
    """Time corners, interpolated points and the current sweep; then the factor form."""
    out = Outcome()
    n, points = cfg.frontier_n, cfg.frontier_points
    _, mu, cov = lw_inputs(cfg.est_t, n, 21)
    _, small_mu, small_cov = tiny_inputs()

    corners = Side(
        "critical_line (all corners)",
        lambda c: critical_line(mu, c),
        setup=lambda: (new_content(cov),),
        warmup=lambda: critical_line(small_mu, small_cov.copy()).frontier(5),
        missing=MISSING,
    )
    interp = Side(
        f"CriticalLine.frontier({points}) on the corners (verified points)",
        lambda cl: cl.frontier(points),
        setup=lambda: (corners.result,),
        missing=MISSING,
    )
    sweep = Side(
        f"efficient_frontier(points={points}) point by point (ProxQP sweep)",
        lambda c: point_by_point(mu, c, points),
        setup=lambda: (new_content(cov),),
        warmup=lambda: point_by_point(small_mu, small_cov.copy(), 5),
    )
    measure([corners, interp, sweep], cfg.repeat_slow)
    whole = combined(f"critical_line + frontier({points})", [corners, interp])
    if corners.ok:
        cl = corners.result
        out.notes.append(
            f"inputs: n={n}, long-only, Ledoit-Wolf x 252 (benchmark 2's); {len(cl.corners)} "
            f"corners, returns {cl.return_range[0]:.4%} .. {cl.return_range[1]:.4%}; worst KKT "
            f"residuals {cl.kkt_residuals().max().to_dict()}"
        )
    accurate = _accuracy(out, corners, sweep, "dense")
    out.rows.append(make_row(BENCH, f"corners n={n} vs sweep x{points}", corners, sweep, None))
    label = f"corners + {points} points n={n} vs sweep x{points}"
    out.rows.append(make_row(BENCH, label, whole, sweep, Goal("speedup", 1), accurate))
    out.rows.append(make_row(BENCH, f"  {points} interpolated points alone", interp, None, None))
    out.notes += [times_note(x) for x in (corners, interp, sweep) if x.missing is None]

    # the factor form: n=2000, k=50, 50 points (one run: the sweep takes minutes)
    fn, fk = cfg.factor_n, cfg.factor_k
    loadings, fcov, specific, fmu = factor_inputs(fn, fk, 31)

    def fresh() -> FactorCovariance:
        s = fresh_scale()
        return FactorCovariance(loadings, fcov * s, specific * s)

    factor = Side(
        f"critical_line + frontier({points}), FactorCovariance",
        lambda c: critical_line(fmu, c).frontier(points),
        setup=lambda: (fresh(),),
        missing=MISSING,
    )
    measure([factor], cfg.repeat_slow)
    if factor.ok:
        fr = factor.result
        out.notes.append(
            f"factor form n={fn}, k={fk}: {len(fr.points)} points, {len(fr.failed)} failed; "
            f"solver {set(a.solver for a in fr.allocations)}"
        )
    ok = None if not factor.ok else factor.result.failed.empty
    label = f"factor n={fn} k={fk} corners + {points} points"
    out.rows.append(make_row(BENCH, label, factor, None, Goal("absolute", 5.0), ok))
    out.notes.append(times_note(factor))
    return out


def _accuracy(out: Outcome, corners: Side, sweep: Side, what: str) -> bool | None:
    """Our volatility at each of the sweep's targets against the sweep's."""
    if not (corners.ok and sweep.ok):
        return None
    ref = sweep.result
    targets = ref.points["target_return"].to_numpy()
    cl = corners.result
    top = cl.return_range[1]
    ours = np.array([cl.allocation(min(float(t), top)).volatility for t in targets])
    text, accurate = describe_excess(
        f"efficient_frontier ({what}, its targets)",
        excess(ours, ref.points["volatility"].to_numpy()),
        np.zeros(len(targets), dtype=bool),
    )
    out.notes.append(text)
    # the sweep's points may fall short of their targets by up to the 1e-7 verification
    # tolerance, which buys volatility where the frontier is steep: compare at what they earned
    earned = np.minimum(ref.points["expected_return"].to_numpy(), top)
    at_earned = np.array([cl.allocation(float(r)).volatility for r in earned])
    short = float(np.max(targets - ref.points["expected_return"].to_numpy()))
    text, _ = describe_excess(
        f"efficient_frontier ({what}, the returns it earned; shortfall up to {short:.1e})",
        excess(at_earned, ref.points["volatility"].to_numpy()),
        np.zeros(len(targets), dtype=bool),
    )
    out.notes.append(text)
    if len(ref.failed):
        out.notes.append(f"efficient_frontier: {len(ref.failed)} failed points")
    return accurate


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its rows and notes."""
    from benchmarks.cli import table

    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    outcome = run(Config.make(quick=quick, repeat=None))
    progress("")
    print("\n".join(table(outcome.rows)))
    print()
    print("\n".join(f"- {note}" for note in outcome.notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
