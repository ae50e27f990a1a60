"""Benchmark 12: limits and impact pooled across accounts, against the same accounts alone.

Accounts (200 and 2,000; ``--quick``: 50 and 200) x 20 assets, one model portfolio,
proportional costs (2 to 15 bps), drifted holdings and cash flows of a few percent. Two sides,
in-process and serial (the batch of :mod:`scenarios.batch` maps the same books on Dask):

- ``alone``: :func:`~optimizer.rebalance.pooled_rebalance` with no pooled limit, which is
  every account's own ``Rebalancer.plan`` (one map);
- ``caps``: a gross cap at half of what the accounts trade alone on 3 assets (the issue's case);
- ``pooled``: the same caps and a pooled impact of about 10 bps on every asset.

Both by the default method of :mod:`optimizer.rebalance.pooled` (a quasi-Newton search on the
prices of the coupled assets, ADMM if it stalls), then the feasibility step, at the default
tolerance. Goal: within 10x of ``alone`` (the issue's bound for the Dask batch with a binding
limit on 3 assets, where reading and writing the accounts also count on both sides). The
notes give the method, its iterations (maps), the final residuals and that every cap holds on
the final trades.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmarks.harness import Config, Goal, Outcome, Side, error_notes, make_row, measure
from optimizer.costs import CostModel
from optimizer.rebalance import AccountBook, PooledLimits, Rebalancer, pooled_rebalance

TITLE = "12 pooled limits: 3 binding caps and pooled impact across accounts vs each alone"
BENCH = "12 pooled"
N = 20
CAPPED = (0, 9, 19)
RATIO = 10.0


def book(k: int, seed: int = 0) -> AccountBook:
    """``k`` seeded accounts of one rebalancer (20 assets, one target)."""
    rng = np.random.default_rng(seed)
    assets = [f"A{j:02d}" for j in range(N)]
    g = rng.normal(size=(N, 3)) * 0.12
    cov = pd.DataFrame(g @ g.T + np.diag(rng.uniform(0.01, 0.04, N)), assets, assets)
    rb = Rebalancer(cov, costs=CostModel(bps=pd.Series(rng.uniform(2, 15, N), assets)))
    values = rng.lognormal(13, 1, k)
    ids = [f"acct{i:06d}" for i in range(k)]
    holdings = pd.DataFrame(
        rng.dirichlet(np.ones(N) * 2, size=k) * values[:, None], index=ids, columns=assets
    )
    target = pd.Series(rng.dirichlet(np.ones(N) * 3), index=assets)
    flows = pd.Series(rng.normal(0, 0.05, k) * values, index=ids)
    return AccountBook(rb, ids, holdings, target, flows)


def limits(b: AccountBook, alone) -> PooledLimits:
    """Caps at half the accounts' own gross trade on 3 assets, impact ~10 bps at that size."""
    gross = alone.pooled["gross"]
    cap = pd.Series(math.inf, index=gross.index)
    cap.iloc[list(CAPPED)] = 0.5 * gross.iloc[list(CAPPED)]
    # impact * Q^1.5 = 10 bps of Q at the median pooled trade
    impact = 1e-3 / math.sqrt(float(gross.median()))
    return PooledLimits(cap=cap, kind="gross", impact=pd.Series(impact, index=gross.index))


def run(cfg: Config) -> Outcome:
    """Both sizes; one timed run of each side at 2,000 accounts (it takes minutes)."""
    out = Outcome()
    for k in (50, 200) if cfg.quick else (200, 2000):
        b = book(k)
        lim = limits(b, pooled_rebalance([b], PooledLimits()))
        caps = PooledLimits(cap=lim.cap, kind=lim.kind)
        alone = Side(f"alone, {k} accounts", lambda b=b: pooled_rebalance([b], PooledLimits()))
        capped = Side(f"caps, {k} accounts", lambda b=b, c=caps: pooled_rebalance([b], c))
        pooled = Side(f"pooled, {k} accounts", lambda b=b, c=lim: pooled_rebalance([b], c))
        measure([alone, capped, pooled], 1 if k > 500 else max(1, cfg.repeat_slow))
        for side, what in ((capped, "3 caps"), (pooled, "3 caps + impact")):
            accurate = None
            if side.ok:
                accurate = _notes(out, side, alone, k)
            label = f"{what} vs alone, {k} accounts x {N} assets"
            out.rows.append(make_row(BENCH, label, side, alone, Goal("ratio", RATIO), accurate))
        out.notes += error_notes([alone, capped, pooled])
    return out


def _notes(out: Outcome, side: Side, alone: Side, k: int) -> bool:
    """Iterations, residuals, the caps held; True when every cap holds and nothing failed."""
    res = side.result
    cap = res.pooled["cap"].to_numpy()
    gross = res.pooled["gross"].to_numpy()
    held = bool(np.all(gross <= cap * (1 + 1e-6)))
    binding = gross[list(CAPPED)] / cap[list(CAPPED)]
    last = res.residuals.iloc[-1]
    per = f"; per account {side.median / k * 1e3:.2f} ms" + (
        f" vs {alone.median / k * 1e3:.2f} ms alone" if alone.ok else ""
    )
    out.notes.append(
        f"{side.label}: {res.method}, {res.iterations} iterations, "
        f"final primal {last['primal']:.1e}, dual {last['dual']:.1e}; caps held: {held} "
        "(pooled / cap on the capped assets: "
        f"{', '.join(f'{x:.6f}' for x in binding)}){per}"
    )
    return held and not res.failed
