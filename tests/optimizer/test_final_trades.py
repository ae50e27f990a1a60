"""optimizer.rebalance.plan.final_trades: the cash dust never sells more than is held."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from optimizer.rebalance.plan import final_trades


def _case(h: np.ndarray, w: np.ndarray, v1: float, long_only: bool = True):
    rb = SimpleNamespace(untradeable=frozenset(), budget=1.0, long_only=long_only)
    acct = SimpleNamespace(v1=v1, v0=float(h.sum()), h=h)
    cols = SimpleNamespace(weights_of=lambda x: x)
    session = SimpleNamespace(rb=rb, acct=acct, h_w=h / v1)
    return session, SimpleNamespace(x=w, extra={"cols": cols})


def test_dust_goes_on_a_trade_that_stays_long() -> None:
    # A is sold whole and is the largest trade; the weights exceed the budget by 4e-7 of V1
    h = np.array([60_000.0, 40_000.0, 0.0])
    w = np.array([0.0, 0.55, 0.45 + 4e-7])
    trades, net = final_trades(*_case(h, w, 100_000.0))
    assert abs(trades.sum() - net) < 1e-9
    assert trades[0] == -60_000.0  # not sold below zero: the next largest took the dust
    assert abs(trades[2] - 45_000.0) < 1e-9
    # without long-only the largest takes it, as before
    trades, _ = final_trades(*_case(h, w, 100_000.0, long_only=False))
    assert abs(trades[0] + 60_000.04) < 1e-9


def test_dust_on_the_largest_trade_otherwise() -> None:
    h = np.array([60_000.0, 40_000.0, 0.0])
    w = np.array([0.2, 0.35, 0.45 + 4e-7])
    trades, net = final_trades(*_case(h, w, 100_000.0))
    assert abs(trades.sum() - net) < 1e-9
    assert abs(trades[2] - 45_000.0) < 1e-9  # the largest trade took the dust
    assert trades[0] == -40_000.0
