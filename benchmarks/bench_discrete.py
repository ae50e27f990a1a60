"""Benchmark: whole shares from cash, against PyPortfolioOpt's ``DiscreteAllocation.lp_portfolio``.

Inputs: the 20 stocks of ``/work/shared/data/sp500_prices.csv.gz``, a Ledoit-Wolf covariance
of their last five years of daily returns, 100 seeded Dirichlet portfolios (weights below 1%
dropped) priced on seeded dates of the last four years, each at $10,000, $100,000 and
$1,000,000 (``--quick``: 10 portfolios). Both sides get the same weights, prices and cash;
the tracking error of both is ``sqrt((w - target)' cov (w - target))`` with ``w`` the value
bought over the cash. The notes count, per criterion (tracking error, leftover cash, 1e-9
slack), the cases where trimtab is worse, equal or better, the cases where lp_portfolio's answer
dominates (worse on one criterion and not better on the other: the quality goal is none), how
many answers leave less idle than the cheapest lot, and how many are proven exact. Speed: $100,000 over 20 stocks, median under 50 ms a call.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from benchmarks.harness import Config, Goal, Outcome, Side, error_notes, make_row, measure
from benchmarks.peers import PYPFOPT, peer_problem
from models.covariance import ledoit_wolf
from optimizer.rebalance.discrete import discrete_allocation

TITLE = "discrete allocation: whole shares from cash (20 S&P 500 stocks), vs lp_portfolio"
BENCH = "discrete"
DATA = "/work/shared/data/sp500_prices.csv.gz"
BUDGETS = (1e4, 1e5, 1e6)
SLACK = 1e-9


def cases(count: int) -> tuple[pd.DataFrame, list[tuple[pd.Series, pd.Series, float]]]:
    """The covariance and the seeded (weights, prices, cash) cases."""
    px = pd.read_csv(DATA, index_col=0, parse_dates=True).dropna()
    cov = ledoit_wolf(px.pct_change().dropna().iloc[-1260:])
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        w = rng.dirichlet(np.full(len(cov), 0.7))
        w[w < 0.01] = 0.0
        weights = pd.Series(w / w.sum(), index=cov.index)
        prices = px.iloc[int(rng.integers(len(px) - 1000, len(px)))][cov.index]
        out += [(weights, prices, cash) for cash in BUDGETS]
    return cov, out


def pypfopt_allocation(weights: pd.Series, prices: pd.Series, cash: float) -> pd.Series:
    """PyPortfolioOpt's ``lp_portfolio`` shares, by asset (0 where none)."""
    from pypfopt.discrete_allocation import DiscreteAllocation

    held = weights[weights > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alloc, _ = DiscreteAllocation(
            held.to_dict(), prices[held.index], total_portfolio_value=cash
        ).lp_portfolio()
    return pd.Series(alloc, dtype=float).reindex(weights.index).fillna(0.0)


def _te(shares: pd.Series, case, cov: np.ndarray) -> tuple[float, float]:
    weights, prices, cash = case
    spent = float((shares * prices).sum())
    d = (shares * prices / cash - weights).to_numpy()
    return float(np.sqrt(max(d @ cov @ d, 0.0))), cash - spent


def run(cfg: Config) -> Outcome:
    """Quality over every case, then the timing of the $100,000 cases."""
    out = Outcome()
    cov, every = cases(10 if cfg.quick else 100)
    c = cov.to_numpy()
    timed = [case for case in every if case[2] == 1e5]
    ours = Side(
        "trimtab discrete_allocation(weights, prices, cash, cov=cov)",
        lambda case: discrete_allocation(*case, cov=cov),
        items=timed,
        warmup=lambda: discrete_allocation(*timed[0], cov=cov),
    )
    missing = peer_problem(PYPFOPT)
    peer = Side(
        "PyPortfolioOpt DiscreteAllocation(...).lp_portfolio()",
        None if missing else (lambda case: pypfopt_allocation(*case)),
        items=timed,
        missing=missing,
        warmup=None if missing else (lambda: pypfopt_allocation(*timed[0])),
    )
    measure([ours, peer], 1)
    counts = {"tracking error": [0, 0, 0], "leftover": [0, 0, 0]}
    exact = dominated = idle = 0
    for case in every:
        mine = discrete_allocation(*case, cov=cov)
        exact += mine.exact
        weights, prices = case[0], case[1]
        idle += mine.leftover < float(prices[weights > 0].min())
        if missing:
            continue
        te_p, left_p = _te(pypfopt_allocation(*case), case, c)
        sides = []
        for key, a, b in (
            ("tracking error", mine.tracking_error, te_p),
            ("leftover", mine.leftover, left_p),
        ):
            sides.append(0 if a > b + SLACK else 1 if abs(a - b) <= SLACK else 2)
            counts[key][sides[-1]] += 1
        dominated += min(sides) == 0 and max(sides) < 2
    out.rows.append(
        make_row(BENCH, "$100,000 over 20 stocks", ours, peer, Goal("absolute", 0.05), None)
    )
    out.notes.append(f"{exact} of {len(every)} answers proven exact (enumeration completed)")
    out.notes.append(f"{idle} of {len(every)} leave less idle than the cheapest lot")
    if not missing:
        for key, (w, e, b) in counts.items():
            out.notes.append(f"{key} vs lp_portfolio: worse {w}, equal {e}, better {b}")
        out.notes.append(
            f"dominated by lp_portfolio (worse on one, not better on the other): {dominated}; "
            "quality goal (never dominated): " + ("met" if dominated == 0 else "NOT met")
        )
    out.notes.extend(error_notes([ours, peer]))
    return out
