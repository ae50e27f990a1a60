"""Accounts shared by the rebalance, trade and trigger tests: the adviser case, random accounts.

The adviser case: a client's $1,000,000 at 40/20/30/10 (US equity, international equity, bonds,
REITs) a quarter ago; stocks gained 15%, bonds lost 3%, REITs gained 8%, so
the account is now worth $1,089,000. Capital-market assumptions (annualized):
volatilities 16%, 18%, 5%, 19%; correlations equity-equity 0.8, equity-bonds
0.1, equity-REIT 0.6, bonds-REIT 0.2; covariance = diag(vol) corr diag(vol).

:func:`random_account` draws a covariance, a target and drifted holdings from a seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.universe import Universe

ASSETS = pd.Index(["US_EQ", "INTL_EQ", "BONDS", "REITS"])
VOL = np.array([0.16, 0.18, 0.05, 0.19])
CORR = np.array(
    [
        [1.0, 0.8, 0.1, 0.6],
        [0.8, 1.0, 0.1, 0.6],
        [0.1, 0.1, 1.0, 0.2],
        [0.6, 0.6, 0.2, 1.0],
    ]
)
COV = pd.DataFrame(np.outer(VOL, VOL) * CORR, index=ASSETS, columns=ASSETS)
UNI = Universe(
    assets=list(ASSETS),
    tags={
        "US_EQ": ["equity", "liquid"],
        "INTL_EQ": ["equity", "liquid"],
        "BONDS": ["fixed income", "liquid"],
        "REITS": ["real assets"],
    },
)
HOLDINGS = pd.Series([460_000.0, 230_000.0, 291_000.0, 108_000.0], index=ASSETS)
TARGET = pd.Series([0.40, 0.20, 0.30, 0.10], index=ASSETS)
V = 1_089_000.0
PRICES = pd.Series([412.37, 57.91, 72.15, 88.42], index=ASSETS)
ADV = pd.Series([4e5, 1.5e5, 3e5, 1e5], index=ASSETS)


def random_account(seed: int, n: int, *, spread: float = 0.03, value: float = 1e6):
    """A random covariance (vols 4-25%), target weights and drifted holdings."""
    rng = np.random.default_rng(seed)
    labels = pd.Index([f"A{i}" for i in range(n)])
    vol = rng.uniform(0.04, 0.25, n)
    g = rng.normal(size=(n, n + 2))
    c = g @ g.T
    d = np.sqrt(np.diag(c))
    cov = pd.DataFrame(np.outer(vol, vol) * c / np.outer(d, d), index=labels, columns=labels)
    target = rng.dirichlet(np.full(n, 3.0))
    w0 = np.clip(target + rng.normal(0, spread, n), 0.002, None)
    holdings = pd.Series(w0 / w0.sum() * value, index=labels)
    return cov, holdings, pd.Series(target, index=labels)
