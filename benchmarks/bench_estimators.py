"""Benchmark 1: covariance estimators against scikit-learn and one eigendecomposition.

- 1a ``covariance.ledoit_wolf(returns)`` (DataFrame in, labelled DataFrame out, validation
  included) against ``sklearn.covariance.ledoit_wolf`` on the numpy array: ratio <= 1.2, the
  same matrix (x 252).
- 1b ``covariance.nonlinear_shrinkage(returns)`` against one ``numpy.linalg.eigh`` of the
  sample covariance: ratio <= 3, positive definite.
"""

from __future__ import annotations

import numpy as np
import sklearn.covariance

from benchmarks.datasets import PERIODS, daily_returns
from benchmarks.harness import Config, Goal, Outcome, Side, make_row, measure, times_note
from models import covariance

TITLE = "1 Ledoit-Wolf and nonlinear shrinkage vs scikit-learn / eigh"
BENCH = "1 estimators"


def run(cfg: Config) -> Outcome:
    """Time both estimators against their references and check the matrices."""
    out = Outcome()
    rets = daily_returns(cfg.est_t, cfg.est_n, 11)
    x = rets.to_numpy()
    sample = np.cov(x, rowvar=False)
    size = f"T={cfg.est_t}, n={cfg.est_n}"

    ours = Side("covariance.ledoit_wolf(returns)", lambda: covariance.ledoit_wolf(rets))
    ours.warmup = ours.call
    peer = Side("sklearn.covariance.ledoit_wolf(X)", lambda: sklearn.covariance.ledoit_wolf(x))
    peer.warmup = peer.call
    measure([ours, peer], cfg.repeat)
    accurate = None
    if ours.ok and peer.ok:
        ref = peer.result[0] * PERIODS
        gap = float(np.max(np.abs(ours.result.to_numpy() - ref)) / np.max(np.abs(ref)))
        accurate = gap <= 1e-12
        out.notes.append(
            f"Ledoit-Wolf: max |ours - sklearn * 252| / max |sklearn * 252| = {gap:.1e} "
            f"(shrinkage {peer.result[1]:.4f})"
        )
    label = f"ledoit_wolf vs sklearn ({size})"
    out.rows.append(make_row(BENCH, label, ours, peer, Goal("ratio", 1.2), accurate))
    out.notes += [times_note(ours), times_note(peer)]

    ours = Side(
        "covariance.nonlinear_shrinkage(returns)", lambda: covariance.nonlinear_shrinkage(rets)
    )
    ours.warmup = ours.call
    peer = Side(f"numpy.linalg.eigh ({cfg.est_n}x{cfg.est_n})", lambda: np.linalg.eigh(sample))
    peer.warmup = peer.call
    measure([ours, peer], cfg.repeat)
    accurate = None
    if ours.ok:
        lam = np.linalg.eigvalsh(ours.result.to_numpy())
        s_lam = np.linalg.eigvalsh(sample * PERIODS)
        accurate = bool(lam[0] > 0)
        out.notes.append(
            f"nonlinear shrinkage: eigenvalues {lam[0]:.3g} .. {lam[-1]:.3g} (sample "
            f"{s_lam[0]:.3g} .. {s_lam[-1]:.3g}); positive definite: {accurate}; "
            f"trace ratio to the sample {lam.sum() / s_lam.sum():.4f}"
        )
    label = f"nonlinear_shrinkage vs one eigh ({size})"
    out.rows.append(make_row(BENCH, label, ours, peer, Goal("ratio", 3.0), accurate))
    out.notes += [times_note(ours), times_note(peer)]
    return out
