"""Benchmark 5: a 12-asset ``max_utility`` re-solved with a new ``mu`` on every call.

Three sides, timed per call and interleaved in chunks of 100 calls:

- a held ``mean_variance.compile("max_utility", cov)`` and ``Compiled.solve(mu=..., risk_aversion=3)``
  (compiled untimed), goal: median < 0.5 ms a call;
- the one-shot ``max_utility(mu, cov, risk_aversion=3)`` (one untimed first call), goal: median
  < 1 ms a call;
- PyPortfolioOpt ``EfficientFrontier(mu, cov).max_quadratic_utility(risk_aversion=3)``, for
  reference and for the accuracy check (utility ``mu'w - 3/2 w'Cw`` of each answer).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.datasets import small_inputs
from benchmarks.harness import (
    Config,
    Goal,
    Outcome,
    Side,
    error_notes,
    make_row,
    measure,
    quantiles_note,
    trimtab_api,
    warning_notes,
)
from benchmarks.peers import PYPFOPT, peer_problem
from models.mean_variance import max_utility

TITLE = "5 max_utility re-solve with new expected returns (held Compiled and one-shot)"
BENCH = "5 re-solve"
DELTA = 3.0  # risk aversion


def run(cfg: Config) -> Outcome:
    """Time the held program, the one-shot function and PyPortfolioOpt, call by call."""
    out = Outcome()
    n = cfg.resolve_n
    cov, mus = small_inputs(n, cfg.resolve_calls, 41)
    calls, spare = mus[:-1], mus[-1]  # the spare mu serves the untimed first calls

    held = Side(f"Compiled.solve x{len(calls)} (new mu each)", None, items=calls)
    compile_, held.missing = trimtab_api("models.mean_variance", "compile")
    if compile_ is not None:
        try:
            cm = compile_("max_utility", cov)  # untimed: compiling is not what is measured
            held.call = lambda m: cm.solve(mu=m, risk_aversion=DELTA)
            held.warmup = lambda: cm.solve(mu=spare, risk_aversion=DELTA)
        except Exception as exc:
            held.error = f"compile failed: {type(exc).__name__}: {exc}"

    def ours(m: pd.Series):
        return max_utility(m, cov, risk_aversion=DELTA)

    oneshot = Side(f"max_utility x{len(calls)} (new mu each)", ours, items=calls)
    oneshot.warmup = lambda: ours(spare)

    peer_calls = calls[: cfg.resolve_peer_calls]
    pyp = Side(
        f"PyPortfolioOpt max_quadratic_utility x{len(peer_calls)}",
        None,
        items=peer_calls,
        missing=peer_problem(PYPFOPT),
    )
    if pyp.missing is None:
        from pypfopt import EfficientFrontier

        def theirs(m: pd.Series) -> np.ndarray:
            ef = EfficientFrontier(m, cov)
            ef.max_quadratic_utility(risk_aversion=DELTA)
            return np.asarray(ef.weights, dtype=float)

        pyp.call = theirs
        pyp.warmup = lambda: theirs(spare)
    measure([held, oneshot, pyp], 1)

    cov_v = cov.to_numpy()
    weights = {
        side.label: [np.asarray(getattr(a, "weights", a), dtype=float) for a in side.result]
        for side in (held, oneshot, pyp)
        if side.ok
    }

    def gaps(better: Side, worse: Side) -> np.ndarray | None:
        """Utility of ``better``'s answers minus ``worse``'s, call by call (same mu)."""
        if better.label not in weights or worse.label not in weights:
            return None
        pairs = zip(weights[better.label], weights[worse.label], calls, strict=False)
        return np.array([_utility(b, m, cov_v) - _utility(w, m, cov_v) for b, w, m in pairs])

    accurate = {}
    for side in (oneshot, held):
        g = gaps(pyp, side)
        if g is not None:
            accurate[side.label] = bool(g.max() <= 1e-8)  # both solve to about 1e-9
            out.notes.append(
                f"utility mu'w - 3/2 w'Cw over {len(g)} calls, PyPortfolioOpt minus "
                f"{side.label.split(' x')[0]}: worst {g.max():+.1e} (positive: theirs better), "
                f"median {np.median(g):+.1e}"
            )
    g = gaps(oneshot, held)
    if g is not None:
        diff = max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(weights[held.label], weights[oneshot.label], strict=False)
        )
        accurate[held.label] = accurate.get(held.label, True) and bool(g.max() <= 1e-8)
        out.notes.append(
            f"Compiled.solve against one-shot max_utility over {len(g)} calls: max |w diff| "
            f"{diff:.1e}, utility of one-shot minus held worst {g.max():+.1e}"
        )
    out.notes += [quantiles_note(s) for s in (held, oneshot, pyp) if s.ok]
    out.notes += error_notes([held, oneshot])

    label = f"Compiled.solve n={n}, new mu, per call"
    row = make_row(BENCH, label, held, pyp, Goal("absolute", 0.5e-3), accurate.get(held.label))
    out.rows.append(row)
    label = f"max_utility n={n}, new mu, per call"
    row = make_row(BENCH, label, oneshot, pyp, Goal("absolute", 1e-3), accurate.get(oneshot.label))
    out.rows.append(row)
    out.notes += warning_notes([held, oneshot, pyp])
    return out


def _utility(w: np.ndarray, mu: pd.Series, cov_v: np.ndarray) -> float:
    """The objective both libraries maximize: ``mu'w - delta/2 w'Cw``."""
    return float(mu.to_numpy() @ w - DELTA / 2 * w @ cov_v @ w)
