"""Benchmark 3: one ``efficient_return`` on a 2000-asset, 50-factor covariance.

trimtab gets a ``FactorCovariance`` (a new object each run); PyPortfolioOpt gets the dense
2000 x 2000 matrix ``fc.cov``. Goal: >= 30x faster, our volatility <= theirs x (1 + 1e-6).
An information row: trimtab's factor form against trimtab on the dense matrix. Then the
50-point ``efficient_frontier`` on the factor object (goal under 5 s, no failed point).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from benchmarks.accuracy import FEAS_TOL, excess, infeasible, stats
from benchmarks.datasets import factor_inputs, fresh_scale, new_content, tiny_inputs
from benchmarks.harness import (
    Config,
    Goal,
    Outcome,
    Side,
    fmt_seconds,
    make_row,
    measure,
    times_note,
    warning_notes,
)
from benchmarks.peers import PYPFOPT, peer_problem, pypfopt_frontier
from models.mean_variance import efficient_frontier, efficient_return, min_variance
from optimizer.riskmodel import FactorCovariance

TITLE = "3 factor covariance (n=2000, k=50) vs PyPortfolioOpt dense"
BENCH = "3 factor"


def run(cfg: Config) -> Outcome:
    """Time the factor-form solve, the dense solve and PyPortfolioOpt; then a short frontier."""
    out = Outcome()
    n, k = cfg.factor_n, cfg.factor_k
    loadings, fcov, specific, mu = factor_inputs(n, k, 31)

    def fresh() -> FactorCovariance:
        """New content each run (the cold cost): factor and specific variances scaled alike."""
        scale = fresh_scale()
        return FactorCovariance(loadings, fcov * scale, specific * scale)

    dense = fresh().cov
    mu_v, dense_v = mu.to_numpy(), dense.to_numpy()
    low = min_variance(fresh(), mu=mu)
    target = float(low.expected_return + 0.5 * (mu.max() - low.expected_return))
    out.notes.append(
        f"inputs: n={n}, k={k} factors; mu {mu.min():.1%} .. {mu.max():.1%}; one efficient_return "
        f"at {target:.2%} (halfway from the min-variance return {low.expected_return:.2%} to the "
        f"top {mu.max():.2%}); trimtab gets FactorCovariance, PyPortfolioOpt fc.cov ({n}x{n} dense)"
    )
    small_r, small_mu, small_cov = tiny_inputs()

    ours = Side(
        "efficient_return(mu, FactorCovariance)",
        lambda c: efficient_return(mu, c, target_return=target),
        setup=lambda: (fresh(),),
        warmup=lambda: efficient_return(small_mu, small_cov, target_return=float(small_mu.mean())),
    )
    dense_side = Side(
        "efficient_return(mu, dense fc.cov)",
        lambda c: efficient_return(mu, c, target_return=target),
        setup=lambda: (new_content(dense),),
    )
    pyp = Side("PyPortfolioOpt efficient_return (dense)", None, missing=peer_problem(PYPFOPT))
    if pyp.missing is None:
        pyp.call = lambda: pypfopt_frontier(mu, dense, np.array([target]))
        pyp.warmup = lambda: pypfopt_frontier(small_mu, small_cov, [float(small_mu.mean())])
    measure([ours, dense_side, pyp], cfg.repeat_slow)

    accurate = None
    if ours.ok and pyp.ok:
        w, errors = pyp.result
        if errors:
            out.notes.append(f"PyPortfolioOpt failed: {errors[0][:200]}")
        else:
            s = stats(w, mu_v, dense_v)
            o = stats(ours.result.weights.to_numpy(), mu_v, dense_v)
            ex = float(excess(o["vol"], s["vol"])[0])
            bad = bool(infeasible(s, np.array([target]))[0])
            accurate = None if bad else ex <= 1e-6
            out.notes.append(
                f"volatility: trimtab {o['vol'][0]:.8f}, PyPortfolioOpt {s['vol'][0]:.8f} "
                f"(relative excess of ours {ex:+.2e}; goal <= 1e-6)"
            )
            out.notes.append(
                f"return shortfall below the target: trimtab {target - o['ret'][0]:+.1e}, "
                f"PyPortfolioOpt {target - s['ret'][0]:+.1e}; budget error: trimtab "
                f"{o['budget'][0]:.1e}, PyPortfolioOpt {s['budget'][0]:.1e}; min weight: "
                f"trimtab {o['min_w'][0]:.1e}, PyPortfolioOpt {s['min_w'][0]:.1e}"
            )
            if bad:
                out.notes.append(
                    f"PyPortfolioOpt's point violates the problem beyond {FEAS_TOL:g}: not compared"
                )
    if ours.ok and dense_side.ok:
        gap = abs(dense_side.result.volatility / ours.result.volatility - 1)
        out.notes.append(
            f"trimtab dense vs factor form: same volatility to {gap:.1e}; solver "
            f"{ours.result.solver}, timings (factor) "
            + ", ".join(f"{k_} {fmt_seconds(v)}" for k_, v in ours.result.timings.items())
        )
    label = f"efficient_return n={n} k={k} vs PyPortfolioOpt"
    out.rows.append(make_row(BENCH, label, ours, pyp, Goal("speedup", 30), accurate))
    label = "  trimtab factor form vs trimtab dense"
    out.rows.append(make_row(BENCH, label, ours, dense_side, None))

    # The factor frontier (issue 11): 50 points, goal under 5 s with no failed point.
    points = cfg.frontier_points
    frontier_side = Side(
        f"efficient_frontier(points={points}, FactorCovariance)",
        lambda c: efficient_frontier(mu, c, points=points),
        setup=lambda: (fresh(),),
    )
    measure([frontier_side], cfg.repeat_slow)
    whole = None
    if frontier_side.ok:
        fr = frontier_side.result
        solvers = Counter(a.solver for a in fr.allocations)
        whole = fr.failed.empty
        out.notes.append(
            f"efficient_frontier(points={points}) with the factor object: "
            f"{fmt_seconds(frontier_side.median)} ({fmt_seconds(frontier_side.median / points)} "
            f"a point; solvers {dict(solvers)}; {len(fr.failed)} failed) against "
            f"{fmt_seconds(ours.median)} for one efficient_return"
        )
    label = f"factor frontier n={n} k={k} x{points}"
    out.rows.append(make_row(BENCH, label, frontier_side, None, Goal("absolute", 5.0), whole))
    sides = (ours, dense_side, pyp, frontier_side)
    out.notes += [times_note(x) for x in sides if x.missing is None]
    out.notes += warning_notes([pyp])
    return out
