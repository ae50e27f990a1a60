"""Portfolio math for the accuracy checks: the harness judges every answer from its weights.

Return, volatility and constraint slack are computed with trimtab's ``mu`` and covariance,
never taken from a library's own report.
"""

from __future__ import annotations

import numpy as np

#: A peer's point counts only if it satisfies the problem to trimtab's own verification
#: tolerance (budget, long-only and the return target).
FEAS_TOL = 1e-7


def stats(weights: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> dict[str, np.ndarray]:
    """Return, volatility and constraint slack of each row of ``weights`` (k x n).

    Returns
    -------
    dict
        ``ret``, ``vol``, ``budget`` (``|sum w - 1|``) and ``min_w``, one entry per row.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    var = np.einsum("ij,jk,ik->i", w, cov, w)
    return {
        "ret": w @ mu,
        "vol": np.sqrt(np.maximum(var, 0.0)),
        "budget": np.abs(w.sum(axis=1) - 1.0),
        "min_w": w.min(axis=1),
    }


def rc_spread(w: np.ndarray, cov: np.ndarray, budgets: np.ndarray | None = None) -> float:
    """Largest relative risk-contribution error ``max_i |RC_i / (b_i sigma) - 1|``."""
    w = np.asarray(w, dtype=float)
    b = np.full(len(w), 1.0 / len(w)) if budgets is None else budgets
    share = w * (cov @ w) / float(w @ cov @ w)
    return float(np.max(np.abs(share / b - 1.0)))


def infeasible(s: dict[str, np.ndarray], targets: np.ndarray | None = None) -> np.ndarray:
    """Rows of :func:`stats` that violate the budget, long-only or the return target."""
    bad = (s["budget"] > FEAS_TOL) | (s["min_w"] < -FEAS_TOL)
    if targets is not None:
        bad |= (targets - s["ret"]) > FEAS_TOL * np.maximum(1.0, np.abs(targets))
    return bad


def infeasible_note(
    name: str, s: dict[str, np.ndarray], bad: np.ndarray, targets: np.ndarray | None = None
) -> str:
    """A note listing the peer points left out of the comparison, and by how much they fail."""
    idx = np.flatnonzero(bad)
    short = (targets - s["ret"])[idx].max() if targets is not None else 0.0
    return (
        f"{name}: {len(idx)} point(s) {idx.tolist()} violate the problem beyond {FEAS_TOL:g} and "
        f"are not compared: return shortfall up to {short:.1e}, weights down to "
        f"{s['min_w'][idx].min():.1e}, budget error up to {s['budget'][idx].max():.1e}"
    )


def excess(ours_vol: np.ndarray, theirs_vol: np.ndarray) -> np.ndarray:
    """Relative excess of our volatility over theirs (negative: ours is lower)."""
    return ours_vol / theirs_vol - 1.0


def describe_excess(
    name: str, ex: np.ndarray, excluded: np.ndarray, tol: float = 1e-6
) -> tuple[str, bool | None]:
    """Worst relative excess over the peer's feasible points, and whether it meets ``tol``."""
    valid = np.isfinite(ex) & ~excluded
    if not valid.any():
        return f"vs {name}: no comparable point", None
    idx = np.flatnonzero(valid)
    worst = int(idx[np.argmax(ex[valid])])
    n_bad = int(np.sum(ex[valid] > tol))
    text = (
        f"vs {name}: worst relative excess of our volatility {ex[worst]:+.2e} (point {worst}; "
        f"goal <= {tol:g}); median {np.median(ex[valid]):+.2e}; {n_bad} of {len(idx)} "
        "feasible peer points above the goal"
    )
    raw = np.isfinite(ex)
    if (raw & excluded).any():
        text += f"; counting the infeasible ones too: worst {np.max(ex[raw]):+.2e}"
    return text, n_bad == 0
