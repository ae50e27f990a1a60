"""Benchmark 7: scenario analytics, end to end (no peers).

- ``backtest`` of 20 years of monthly returns, n=50, ``Optimized(1)`` policy, 10 bps: < 5 s.
- ``scenarios.montecarlo.simulate``, 100,000 paths x 30 years, 6 assets, normal: < 5 s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.harness import Config, Goal, Outcome, Side, make_row, measure, times_note
from optimizer.costs import CostModel
from scenarios.backtest import Optimized, backtest
from scenarios.montecarlo import simulate

TITLE = "7 backtest (20 years monthly, n=50) and Monte Carlo"
BENCH = "7 backtest"


def run(cfg: Config) -> Outcome:
    """Time one backtest and one Monte Carlo simulation."""
    out = Outcome()
    years, n = cfg.backtest_years, cfg.backtest_n
    rng = np.random.default_rng(83)
    months = years * 12
    market = rng.normal(0.007, 0.045, months)
    rets = pd.DataFrame(
        market[:, None] * rng.uniform(0.6, 1.4, n) + rng.normal(0.0, 0.03, (months, n)),
        index=pd.date_range("2000-01-31", periods=months, freq="ME"),
        columns=[f"A{i:02d}" for i in range(n)],
    )
    target = pd.Series(1.0 / n, index=rets.columns)
    costs = CostModel(bps=10)
    side = Side(
        f"backtest {years}y monthly n={n}, optimized policy every month, 10 bps",
        lambda: backtest(rets, target, policy=Optimized(1), costs=costs),
        warmup=lambda: backtest(rets.iloc[:24], target, policy=Optimized(1), costs=costs),
    )
    measure([side], cfg.repeat_slow)
    if side.ok:
        m = side.result.metrics
        out.notes.append(
            f"optimized policy: {m['rebalances']} rebalances, turnover {m['turnover']:.2f} a "
            f"year, costs {m['total_costs']:,.0f} on 1,000,000"
        )
    label = f"backtest {years}y monthly n={n}, optimized"
    out.rows.append(make_row(BENCH, label, side, None, Goal("absolute", 5.0)))

    w = pd.Series(1.0 / 6, index=[f"C{i}" for i in range(6)])
    mu = pd.Series(np.linspace(0.03, 0.09, 6), index=w.index)
    vol = np.linspace(0.02, 0.20, 6)
    corr = 0.3 + 0.7 * np.eye(6)
    cov = pd.DataFrame(np.outer(vol, vol) * corr, index=w.index, columns=w.index)
    mc = Side(
        f"Monte Carlo {cfg.mc_paths:,} paths x 30 years, 6 assets, normal",
        lambda: simulate(w, mu, cov, years=30, paths=cfg.mc_paths, seed=1),
        warmup=lambda: simulate(w, mu, cov, years=3, paths=100, seed=1),
    )
    measure([mc], cfg.repeat_slow)
    out.rows.append(make_row(BENCH, "Monte Carlo 30 years", mc, None, Goal("absolute", 5.0)))
    out.notes += [times_note(side), times_note(mc)]
    return out
