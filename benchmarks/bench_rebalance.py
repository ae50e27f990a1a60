"""Benchmark 6: cost-aware rebalances, many small accounts and one large one.

Accounts: 12 assets, equal-weight target, proportional (10 bps) plus market-impact costs, new
holdings for each of 1,000 accounts. Three sides, timed per account and interleaved in chunks:

- one held ``Rebalancer(cov, costs=...)`` and ``rb.plan(holdings, target)`` per account (built
  untimed, one untimed first plan), goal: median < 1 ms an account;
- the one-shot ``rebalance(holdings, target, cov=cov, costs=...)`` (one untimed first call),
  goals: >= 10x faster than the peer and median < 1 ms an account;
- the same problem as a new cvxpy problem per account (what the peers do), solved by Clarabel,
  for 100 accounts: the reference, and the accuracy check (the objective of each plan).

Large: one ``rebalance`` at n=500 with a 20-factor ``FactorCovariance`` (new content each run:
the cold cost), goal < 50 ms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.datasets import factor_inputs, fresh_scale, small_inputs
from benchmarks.harness import (
    Config,
    Goal,
    Outcome,
    Row,
    Side,
    error_notes,
    make_row,
    measure,
    quantiles_note,
    trimtab_api,
)
from optimizer.costs import CostModel
from optimizer.rebalance import rebalance
from optimizer.riskmodel import FactorCovariance

TITLE = "6 rebalance: a batch of accounts (held Rebalancer, one-shot), and n=500 factor"
BENCH = "6 rebalance"
LAM = 100.0  # tracking weight of the cvxpy formulation (trimtab's default)


def cvxpy_rebalance(
    h: np.ndarray,
    target: np.ndarray,
    cov_v: np.ndarray,
    buy: np.ndarray,
    sell: np.ndarray,
    k: np.ndarray,
    lam: float = LAM,
) -> np.ndarray:
    """The same rebalance as a new cvxpy problem (what the peers do); returns the trades."""
    import cvxpy as cp

    n = len(h)
    v1 = float(h.sum())
    hw = h / v1
    w = cp.Variable(n)
    u = cp.Variable(n, nonneg=True)
    s = cp.Variable(n, nonneg=True)
    root = np.linalg.cholesky(cov_v + 1e-12 * np.eye(n))
    objective = (
        lam * cp.sum_squares(root.T @ (w - target))
        + buy @ u
        + sell @ s
        + (k * np.sqrt(v1)) @ cp.power(u + s, 1.5)
    )
    prob = cp.Problem(cp.Minimize(objective), [w - u + s == hw, cp.sum(w) == 1, w >= 0])
    prob.solve(solver=cp.CLARABEL)
    return (w.value - hw) * v1


def run(cfg: Config) -> Outcome:
    """The account batch (held, one-shot, cvxpy), then the large factor rebalance."""
    out = Outcome()
    n = cfg.rebalance_n
    cov, _ = small_inputs(n, 1, 53)
    assets = cov.index
    target = pd.Series(1.0 / n, index=assets)
    rng = np.random.default_rng(7)
    accounts = [
        pd.Series(rng.uniform(50_000, 150_000, n), index=assets)
        for _ in range(cfg.rebalance_accounts + 1)
    ]
    calls, spare = accounts[:-1], accounts[-1]  # the spare account serves the first calls
    adv = pd.Series(rng.uniform(2e7, 2e8, n), index=assets)
    costs = CostModel(bps=10, impact=0.1, adv=adv)
    rc = costs.resolve(assets, None, np.diag(cov.to_numpy()))
    cov_v, target_v = cov.to_numpy(), target.to_numpy()

    held = Side(f"Rebalancer.plan x{len(calls)} accounts (prop + impact)", None, items=calls)
    rebalancer, held.missing = trimtab_api("optimizer.rebalance", "Rebalancer")
    if rebalancer is not None:
        try:
            rb = rebalancer(cov, costs=costs)  # untimed: building it is not what is measured
            held.call = lambda h: rb.plan(h, target)
            held.warmup = lambda: rb.plan(spare, target)
        except Exception as exc:
            held.error = f"Rebalancer(...) failed: {type(exc).__name__}: {exc}"
    oneshot = Side(
        f"rebalance x{len(calls)} accounts (prop + impact)",
        lambda h: rebalance(h, target, cov=cov, costs=costs),
        warmup=lambda: rebalance(spare, target, cov=cov, costs=costs),
        items=calls,
    )
    peer = Side(
        f"new cvxpy problem per account x{cfg.rebalance_peer_accounts}",
        lambda h: cvxpy_rebalance(h.to_numpy(), target_v, cov_v, rc.buy, rc.sell, rc.impact),
        items=calls[: cfg.rebalance_peer_accounts],
    )
    peer.warmup = lambda: peer.call(spare)
    measure([held, oneshot, peer], 1)

    def objective(trades: np.ndarray, h: np.ndarray) -> float:
        """Tracking variance x LAM plus costs, as a fraction of value."""
        v = h.sum()
        d = (h + trades) / v - target_v
        cost = (
            rc.buy @ np.clip(trades, 0, None)
            + rc.sell @ np.clip(-trades, 0, None)
            + rc.impact @ np.abs(trades) ** 1.5
        )
        return float(LAM * d @ cov_v @ d + cost / v)

    accurate: dict[str, bool] = {}
    if peer.ok:
        for side in (held, oneshot):
            if not side.ok:
                continue
            gaps = []
            for plan, theirs, h in zip(side.result, peer.result, calls, strict=False):
                hv = h.to_numpy()
                ours = plan.weights_after.to_numpy() * plan.value_after - hv
                gaps.append(objective(ours, hv) - objective(theirs, hv))
            accurate[side.label] = bool(max(gaps) <= 1e-9)
            out.notes.append(
                f"{side.label.split(' x')[0]}: objective (fraction of value) minus the cvxpy "
                f"formulation's: worst {max(gaps):+.1e}, median {np.median(gaps):+.1e} over "
                f"{len(gaps)} accounts (negative: ours is better)"
            )
    out.notes += [quantiles_note(s, "account") for s in (held, oneshot, peer) if s.ok]
    out.notes += error_notes([held, oneshot, peer])

    acc = accurate.get(held.label)
    label = f"Rebalancer.plan n={n} per account ({len(calls):,} accounts)"
    out.rows.append(make_row(BENCH, label, held, peer, Goal("absolute", 1e-3), acc))
    acc = accurate.get(oneshot.label)
    label = f"rebalance n={n} per account vs cvxpy per account"
    out.rows.append(make_row(BENCH, label, oneshot, peer, Goal("speedup", 10.0), acc))
    label = f"rebalance n={n} per account (median)"
    out.rows.append(make_row(BENCH, label, oneshot, None, Goal("absolute", 1e-3)))
    out.rows.append(_large(cfg, rng))
    return out


def _large(cfg: Config, rng: np.random.Generator) -> Row:
    """One rebalance at n=500 with a 20-factor covariance, cold (new content each run)."""
    big_n, k = cfg.rebalance_large_n, 20
    loadings, fcov, specific, _ = factor_inputs(big_n, k, 61)
    assets = loadings.index
    target = pd.Series(1.0 / big_n, index=assets)
    h = pd.Series(rng.uniform(0.5, 1.5, big_n) * 1e6, index=assets)

    def fresh() -> FactorCovariance:
        scale = fresh_scale()
        return FactorCovariance(loadings, fcov * scale, specific * scale)

    big = Side(
        f"rebalance n={big_n}, {k}-factor covariance, 10 bps",
        lambda fc: rebalance(h, target, cov=fc, costs=CostModel(bps=10)),
        setup=lambda: (fresh(),),
        warmup=lambda: rebalance(h, target, cov=FactorCovariance(loadings, fcov, specific)),
    )
    measure([big], cfg.repeat)
    label = f"rebalance n={big_n} factor, one call"
    return make_row(BENCH, label, big, None, Goal("absolute", 0.05))
