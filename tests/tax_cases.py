"""Random small taxable accounts and the brute-force optimum over every direction pattern."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from optimizer.errors import InfeasibleError
from optimizer.rebalance import CostModel, Rebalancer, RecentTrades, TaxLots, TaxModel
from optimizer.rebalance.account import make_account
from optimizer.rebalance.session import Infeasible, Session
from optimizer.rebalance.tax import TaxHook
from optimizer.rebalance.taxplan import lot_data, tax_inputs

AS_OF = "2026-06-01"


def case(seed: int, *, exact_assets: int = 0) -> dict:
    """One seeded account: 3-6 assets, 1-4 lots each, random bases, dates, rates, budgets."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 7))
    assets = [f"A{i}" for i in range(n)]
    g = rng.normal(size=(n, n))
    cov = pd.DataFrame(g @ g.T / n * 0.04 + np.eye(n) * 0.01, index=assets, columns=assets)
    prices = pd.Series(rng.uniform(10, 200, n), index=assets)
    qty = pd.Series(rng.integers(0, 100, n).astype(float), index=assets)
    qty.iloc[0] = max(qty.iloc[0], 5.0)
    target = pd.Series(rng.dirichlet(np.ones(n)), index=assets)
    day = pd.Timestamp(AS_OF)
    rows = []
    for a in assets:
        if qty[a] == 0:
            continue
        k = int(rng.integers(1, 5))
        cuts = np.sort(rng.uniform(0, qty[a], k - 1))
        parts = np.diff(np.r_[0.0, cuts, qty[a]])
        for j, q in enumerate(parts):
            if q <= 0:
                continue
            rows.append(
                {
                    "asset": a,
                    "lot_id": f"{a}-{j}",
                    "quantity": q,
                    "basis": prices[a] * rng.uniform(0.4, 1.6),
                    "acquired": day - pd.Timedelta(days=int(rng.integers(1, 1000))),
                }
            )
    # the lots must add up to the holdings exactly
    lots = pd.DataFrame(rows)
    total = lots.groupby("asset")["quantity"].transform("sum")
    lots["quantity"] = lots["quantity"] * qty[lots["asset"]].to_numpy() / total
    short = float(rng.uniform(0, 0.5))
    long_ = float(rng.uniform(0, short))
    harvest = bool(rng.random() < 0.5)
    value = float((qty * prices).sum())
    model = TaxModel(
        short_rate=short,
        long_rate=long_,
        loss_rate=float(rng.uniform(0, long_)) if harvest else None,
        gains_budget=float(rng.uniform(0, 0.05) * value) if rng.random() < 0.3 else None,
        short_budget=float(rng.uniform(0, 0.02) * value) if rng.random() < 0.2 else None,
        exact_assets=exact_assets,
    )
    recent = None
    if rng.random() < 0.3:
        picks = rng.choice(assets, size=2)
        recent = RecentTrades.from_frame(
            pd.DataFrame(
                {
                    "asset": picks,
                    "date": [day - pd.Timedelta(days=int(rng.integers(0, 60))) for _ in picks],
                    "side": ["buy", "sell"],
                    "quantity": [1.0, 1.0],
                    "gain": [np.nan, -10.0],
                }
            )
        )
    flow = 0.0
    r = rng.random()
    if r < 0.15:
        flow = -float(rng.uniform(0.02, 0.2) * value)
    elif r < 0.3:
        flow = float(rng.uniform(0.02, 0.2) * value)
    rb = Rebalancer(
        cov,
        costs=CostModel(bps=float(rng.uniform(0, 20))),
        holdings_as="quantity",
        tracking_weight=float(rng.choice([100.0, 1000.0, 10000.0])),
    )
    return {
        "rb": rb,
        "holdings": qty,
        "target": target,
        "prices": prices,
        "cash_flow": flow,
        "lots": TaxLots.from_frame(lots),
        "tax": model,
        "recent": recent,
        "harvest": harvest,
    }


def plan(c: dict):
    """The plan of a case (InfeasibleError propagates)."""
    return c["rb"].plan(
        c["holdings"],
        c["target"],
        prices=c["prices"],
        cash_flow=c["cash_flow"],
        as_of=AS_OF,
        lots=c["lots"],
        tax=c["tax"],
        recent=c["recent"],
        harvest=c["harvest"],
    )


def brute_force(c: dict) -> float | None:
    """The best objective (weight units) over every direction pattern; None: all infeasible.

    Each asset is buy-or-hold (``s_i = 0``) or sell-or-hold (``b_i = 0``); for each
    pattern the exact lot-level convex problem is solved.
    """
    rb = c["rb"]
    acct = make_account(rb, c["holdings"], c["target"], c["prices"], c["cash_flow"])
    ti = tax_inputs(rb, acct, c["lots"], c["tax"], c["recent"], None, c["harvest"], AS_OF)
    data, _ = lot_data(rb, acct, ti)
    session = Session(rb, acct)
    hook = session.hook = TaxHook(rb, data)
    best = None
    for pattern in itertools.product((True, False), repeat=rb.n):
        buy_side = np.array(pattern)
        hook.set_sides(~buy_side, buy_side)
        try:
            out = session.solve(acct.frozen)
        except Infeasible:
            continue
        if best is None or out.objective < best:
            best = out.objective
    return best


def value_after(c: dict) -> float:
    return float((c["holdings"] * c["prices"]).sum()) + c["cash_flow"]


__all__ = ["AS_OF", "InfeasibleError", "brute_force", "case", "plan", "value_after"]
