"""Benchmark 4: equal-risk-contribution weights at n=500 against three peers.

trimtab's ``risk_parity(cov)`` (a new copy of the covariance each run, so validation is paid)
against skfolio ``RiskBudgeting`` and Riskfolio-Lib ``rp_optimization`` (>= 50x faster each) and
riskparityportfolio's C++ solver at its defaults (ratio <= 5). Every goal also needs a smaller
risk-contribution spread than the peer's. An information row runs the C++ solver at tol=1e-12.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.accuracy import rc_spread
from benchmarks.datasets import lw_inputs, new_content, tiny_inputs
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
from benchmarks.peers import RISKFOLIO, SKFOLIO, peer_problem, rpp_design, skfolio_prior
from models.risk_parity import risk_parity

TITLE = "4 risk parity vs skfolio, Riskfolio-Lib, riskparityportfolio"
BENCH = "4 risk parity"


def skfolio_rb(rets: pd.DataFrame, mu: pd.Series, cov: pd.DataFrame) -> np.ndarray:
    """skfolio ``RiskBudgeting(risk_measure=VARIANCE)`` with our moments."""
    from skfolio import RiskMeasure
    from skfolio.optimization import RiskBudgeting

    model = RiskBudgeting(risk_measure=RiskMeasure.VARIANCE, prior_estimator=skfolio_prior(mu, cov))
    return np.asarray(model.fit(rets).weights_, dtype=float)


def riskfolio_rp(rets: pd.DataFrame, mu: pd.Series, cov: pd.DataFrame) -> np.ndarray:
    """Riskfolio-Lib ``rp_optimization(model="Classic", rm="MV")`` with our moments."""
    import riskfolio

    port = riskfolio.Portfolio(returns=rets)
    port.mu = mu.to_frame().T  # our estimates, set as Riskfolio's docs show
    port.cov = cov
    w = port.rp_optimization(model="Classic", rm="MV", rf=0, b=None, hist=True)
    if w is None:
        raise RuntimeError("rp_optimization returned None (the solver failed)")
    return w.to_numpy(dtype=float).ravel()


def run(cfg: Config) -> Outcome:
    """Time the four solvers interleaved, then compare risk-contribution spreads."""
    out = Outcome()
    n = cfg.rp_n
    rets, mu, cov = lw_inputs(cfg.est_t, n, 21)
    cov_v = cov.to_numpy()
    budgets = np.full(n, 1.0 / n)
    small_r, small_mu, small_cov = tiny_inputs()

    ours = Side(
        "risk_parity(cov)",
        risk_parity,
        setup=lambda: (new_content(cov),),  # new content each run: the cold cost
        warmup=lambda: risk_parity(small_cov.copy()),
    )
    skf = Side("skfolio RiskBudgeting(VARIANCE)", None, missing=peer_problem(SKFOLIO))
    if skf.missing is None:
        skf.call = lambda: skfolio_rb(rets, mu, cov)
        skf.warmup = lambda: skfolio_rb(small_r, small_mu, small_cov)
    rfl = Side("Riskfolio-Lib rp_optimization(Classic, MV)", None, missing=peer_problem(RISKFOLIO))
    if rfl.missing is None:
        rfl.call = lambda: riskfolio_rp(rets, mu, cov)
        rfl.warmup = lambda: riskfolio_rp(small_r, small_mu, small_cov)
    design, rpp_label = rpp_design()
    rpp = Side(rpp_label, None, missing=None if design else rpp_label)
    tight = Side("riskparityportfolio design(tol=1e-12, maxiter=1000)", None, missing=rpp.missing)
    if design is not None:
        rpp.call = rpp.warmup = lambda: np.asarray(design(cov_v, budgets))
        tight.call = tight.warmup = lambda: np.asarray(design(cov_v, budgets, 1e-12, 1000))
    measure([ours, skf, rfl, rpp, tight], cfg.repeat)

    spreads = {}
    ours_w = ours.result.weights.to_numpy() if ours.ok else None
    if ours_w is not None:
        spreads["trimtab"] = rc_spread(ours_w, cov_v)
    for name, side in (("skfolio", skf), ("Riskfolio-Lib", rfl), ("riskparityportfolio", rpp)):
        if side.ok:
            w = side.result
            spreads[name] = rc_spread(w, cov_v)
            gap = np.max(np.abs(w - ours_w)) if ours_w is not None else float("nan")
            out.notes.append(
                f"{name}: budget error {abs(w.sum() - 1):.1e}, min weight {w.min():.2e}, "
                f"max |w - w_trimtab| {gap:.1e}"
            )
    out.notes.append(
        "max relative risk-contribution spread max_i |RC_i / (sigma / n) - 1|: "
        + ", ".join(f"{k_} {v:.1e}" for k_, v in spreads.items())
    )
    if tight.ok:
        out.notes.append(
            "riskparityportfolio runs at its defaults (tol 1e-4, maxiter 50); with tol=1e-12, "
            f"maxiter=1000 its spread is {rc_spread(tight.result, cov_v):.1e} in "
            f"{fmt_seconds(tight.median)}"
        )

    def accurate(name: str) -> bool | None:
        if "trimtab" not in spreads or name not in spreads:
            return None
        return spreads["trimtab"] < spreads[name] or spreads["trimtab"] < 1e-12

    for peer, name, goal in (
        (skf, "skfolio", Goal("speedup", 50)),
        (rfl, "Riskfolio-Lib", Goal("speedup", 50)),
        (rpp, "riskparityportfolio", Goal("ratio", 5.0)),
    ):
        label = f"risk_parity n={n} vs {name}" + (" (C++)" if peer is rpp else "")
        out.rows.append(make_row(BENCH, label, ours, peer, goal, accurate(name)))
    label = "  same, riskparityportfolio at tol=1e-12"
    out.rows.append(make_row(BENCH, label, ours, tight, None))
    if ours.ok:
        att = ours.result.attempts[0] if ours.result.attempts else {}
        out.notes.append(
            f"trimtab: solver {ours.result.solver}, {att.get('iterations', '?')} Newton steps; "
            "timings "
            + ", ".join(f"{k_} {fmt_seconds(v)}" for k_, v in ours.result.timings.items())
        )
    out.notes += [times_note(x) for x in (ours, skf, rfl, rpp, tight) if x.missing is None]
    out.notes += warning_notes([skf, rfl, rpp])
    return out
