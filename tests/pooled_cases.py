"""Seeded accounts for the pooled-limit tests (tests/optimizer/test_pooled*.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.rebalance import CostModel, Rebalancer

N = 20  # assets


def make_accounts(k: int = 200, seed: int = 0):
    """A rebalancer (factor-like covariance, 2-15 bps costs) and k drifted accounts."""
    rng = np.random.default_rng(seed)
    assets = [f"A{j:02d}" for j in range(N)]
    g = rng.normal(size=(N, 3)) * 0.12
    cov = pd.DataFrame(g @ g.T + np.diag(rng.uniform(0.01, 0.04, N)), assets, assets)
    rb = Rebalancer(cov, costs=CostModel(bps=pd.Series(rng.uniform(2, 15, N), assets)))
    target = rng.dirichlet(np.ones(N) * 3)
    values = rng.lognormal(13, 1, k)
    ids = [f"acct{i:04d}" for i in range(k)]
    holdings = pd.DataFrame(
        rng.dirichlet(np.ones(N) * 2, size=k) * values[:, None], index=ids, columns=assets
    )
    targets = pd.DataFrame(np.tile(target, (k, 1)), index=ids, columns=assets)
    flows = pd.Series(rng.normal(0, 0.05, k) * values, index=ids)
    return rb, ids, holdings, targets, flows
