"""Benchmark 2: the efficient frontier at n=500, 50 points, against PyPortfolioOpt and skfolio.

trimtab's ``efficient_frontier(mu, cov, points=50)`` gets a new copy of the covariance each run
(untimed), so every run pays validation and compilation. PyPortfolioOpt solves trimtab's 50
targets, one new ``EfficientFrontier(..., solver="CLARABEL")`` each; skfolio's ``MeanRisk``
(``solver="CLARABEL"``) picks its own targets, and
trimtab's ``efficient_return`` is solved (untimed) at each return skfolio reached to compare
volatilities. Goals: >= 25x faster than PyPortfolioOpt, >= 50x faster than skfolio, and our
volatility <= theirs x (1 + 1e-6) at every feasible peer point.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from benchmarks.accuracy import describe_excess, excess, infeasible, infeasible_note, stats
from benchmarks.datasets import lw_inputs, new_content, tiny_inputs
from benchmarks.harness import (
    Config,
    Goal,
    Outcome,
    Side,
    make_row,
    measure,
    progress,
    times_note,
    warning_notes,
)
from benchmarks.peers import PYPFOPT, SKFOLIO, peer_problem, pypfopt_frontier, skfolio_prior
from models.mean_variance import efficient_frontier, efficient_return

TITLE = "2 efficient frontier vs PyPortfolioOpt and skfolio"
BENCH = "2 frontier"


def skfolio_frontier(rets: pd.DataFrame, mu: pd.Series, cov: pd.DataFrame, size: int) -> np.ndarray:
    """skfolio ``MeanRisk(risk_measure=VARIANCE, efficient_frontier_size=size)``.

    Fitted with our mu and covariance through ``EmpiricalPrior`` (long-only, fully invested:
    its defaults). Returns the weights, one row per frontier point.
    """
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk

    model = MeanRisk(
        risk_measure=RiskMeasure.VARIANCE,
        efficient_frontier_size=size,
        prior_estimator=skfolio_prior(mu, cov),
        solver="CLARABEL",
    )
    model.fit(rets)
    return np.asarray(model.weights_, dtype=float)


def run(cfg: Config) -> Outcome:
    """Time the three frontiers interleaved, then compare volatilities point by point."""
    out = Outcome()
    n, points = cfg.frontier_n, cfg.frontier_points
    rets, mu, cov = lw_inputs(cfg.est_t, n, 21)
    mu_v, cov_v = mu.to_numpy(), cov.to_numpy()
    small_r, small_mu, small_cov = tiny_inputs()
    progress("  reference frontier (untimed) for the targets")
    reference = efficient_frontier(mu, cov.copy(), points=points)
    targets = reference.points["target_return"].to_numpy()
    out.notes.append(
        f"inputs: n={n}, {points} points, mu = annualized mean of T={cfg.est_t} daily returns "
        f"({mu.min():.1%} .. {mu.max():.1%}, sd {mu.std():.1%}), cov = sklearn Ledoit-Wolf x 252; "
        f"frontier targets {targets[0]:.2%} .. {targets[-1]:.2%}"
    )

    ours = Side(
        f"efficient_frontier(points={points})",
        lambda c: efficient_frontier(mu, c, points=points),
        setup=lambda: (new_content(cov),),  # new content each run: the cold cost
        warmup=lambda: efficient_frontier(small_mu, small_cov.copy(), points=5),
    )
    pyp = Side(
        f'PyPortfolioOpt efficient_return x{points} (solver="CLARABEL")',
        None,
        missing=peer_problem(PYPFOPT),
    )
    if pyp.missing is None:
        pyp.call = lambda: pypfopt_frontier(mu, cov, targets, solver="CLARABEL")
        pyp.warmup = lambda: pypfopt_frontier(
            small_mu, small_cov, [float(small_mu.mean())], solver="CLARABEL"
        )
    skf = Side(
        f"skfolio MeanRisk(efficient_frontier_size={points})", None, missing=peer_problem(SKFOLIO)
    )
    if skf.missing is None:
        skf.call = lambda: skfolio_frontier(rets, mu, cov, points)
        skf.warmup = lambda: skfolio_frontier(small_r, small_mu, small_cov, 3)
    measure([ours, pyp, skf], cfg.repeat_slow)

    ours_s = None
    if ours.ok:
        fr = ours.result
        if len(fr.failed):
            out.notes.append(
                f"trimtab frontier: {len(fr.failed)} failed points: {fr.failed.to_dict('index')}"
            )
        ours_w = np.full((points, n), np.nan)
        ours_w[fr.weights.index.to_numpy()] = fr.weights.to_numpy()
        ours_s = stats(ours_w, mu_v, cov_v)
        solvers = Counter(a.solver for a in fr.allocations)
        out.notes.append(
            f"trimtab: solvers {dict(solvers)}; worst return shortfall "
            f"{np.nanmax(targets - ours_s['ret']):.1e}; worst budget error "
            f"{np.nanmax(ours_s['budget']):.1e}; min weight {np.nanmin(ours_s['min_w']):.1e}"
        )

    accurate = (
        _versus_pypfopt(out, ours_s, pyp, targets, mu_v, cov_v) if ours_s is not None else None
    )
    label = f"frontier n={n} x{points} vs PyPortfolioOpt"
    out.rows.append(make_row(BENCH, label, ours, pyp, Goal("speedup", 25), accurate))

    accurate = _versus_skfolio(out, skf, targets, mu, cov) if ours_s is not None else None
    label = f"frontier n={n} x{points} vs skfolio"
    out.rows.append(make_row(BENCH, label, ours, skf, Goal("speedup", 50), accurate))
    out.notes += [times_note(x) for x in (ours, pyp, skf) if x.missing is None]
    out.notes += warning_notes([pyp, skf])
    return out


def _versus_pypfopt(
    out: Outcome,
    ours_s: dict[str, np.ndarray],
    pyp: Side,
    targets: np.ndarray,
    mu_v: np.ndarray,
    cov_v: np.ndarray,
) -> bool | None:
    """PyPortfolioOpt solved the same targets: compare volatility point by point."""
    if not pyp.ok:
        return None
    w, errors = pyp.result
    s = stats(w, mu_v, cov_v)
    bad = infeasible(s, targets)
    text, accurate = describe_excess(
        "PyPortfolioOpt (same targets)", excess(ours_s["vol"], s["vol"]), bad
    )
    out.notes.append(text)
    if bad.any():
        out.notes.append(infeasible_note("PyPortfolioOpt", s, bad, targets))
    out.notes.append(
        f"PyPortfolioOpt: worst return shortfall {np.nanmax(targets - s['ret']):.1e}, worst "
        f"budget error {np.nanmax(s['budget']):.1e}, min weight {np.nanmin(s['min_w']):.1e}"
    )
    if errors:
        first = next(iter(errors.items()))
        out.notes.append(
            f"PyPortfolioOpt failed on {len(errors)} of {len(targets)} points {sorted(errors)}: "
            f"first: point {first[0]}: {first[1][:160]}"
        )
    return accurate


def _versus_skfolio(
    out: Outcome, skf: Side, targets: np.ndarray, mu: pd.Series, cov: pd.DataFrame
) -> bool | None:
    """skfolio chose its own targets: re-solve ours (untimed) at the returns it reached."""
    if not skf.ok:
        return None
    w = skf.result
    s = stats(w, mu.to_numpy(), cov.to_numpy())
    top = float(targets[-1])
    progress(f"  trimtab efficient_return at skfolio's {len(w)} returns (untimed, for accuracy)")
    ours_vol = np.full(len(w), np.nan)
    failures = []
    for i, r in enumerate(s["ret"]):
        try:
            ours_vol[i] = efficient_return(mu, cov, target_return=min(float(r), top)).volatility
        except Exception as exc:
            failures.append(f"{i}: {type(exc).__name__}: {exc}"[:160])
    bad = infeasible(s)
    text, accurate = describe_excess(
        "skfolio (its realized returns as our targets)", excess(ours_vol, s["vol"]), bad
    )
    out.notes.append(text)
    if bad.any():
        out.notes.append(infeasible_note("skfolio", s, bad))
    out.notes.append(
        f"skfolio: {len(w)} portfolios, returns {np.min(s['ret']):.2%} .. {np.max(s['ret']):.2%}; "
        f"worst budget error {np.max(s['budget']):.1e}, min weight {np.min(s['min_w']):.1e}"
    )
    if failures:
        out.notes.append(
            f"trimtab efficient_return failed at {len(failures)} skfolio points: {failures[0]}"
        )
        accurate = False
    return accurate
