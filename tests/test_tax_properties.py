"""Properties of tax-aware plans on seeded random accounts (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tax_cases import case, plan

from optimizer.errors import InfeasibleError
from optimizer.rebalance import TaxLots


def recomputed_tax(p, c) -> tuple[float, float, float]:
    """Short gains, long gains and tax from ``plan.lot_sales`` alone (wash losses count 0)."""
    s = p.lot_sales
    gain = s["gain"].where(~s["wash"].astype(bool), s["gain"].clip(lower=0))
    g_s = float(gain[s["term"] == "short"].sum())
    g_l = float(gain[s["term"] == "long"].sum())
    m = c["tax"]
    loss = (m.loss_rate or 0.0) if c["harvest"] else 0.0
    net = g_s + g_l
    r = min(m.short_rate, m.long_rate)
    return g_s, g_l, max(loss * net, r * net, m.short_rate * g_s + m.long_rate * g_l)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), exact=st.sampled_from([0, 10]))
def test_every_constraint_holds_and_the_tax_adds_up(seed, exact):
    c = case(seed, exact_assets=exact)
    try:
        p = plan(c)
    except InfeasibleError:
        return
    assert all(chk["ok"] for chk in p.checks.values()), p.checks
    g_s, g_l, tax = recomputed_tax(p, c)
    scale = p.value_after
    assert p.tax["short_gains"] == pytest.approx(g_s, abs=1e-9 * scale)
    assert p.tax["long_gains"] == pytest.approx(g_l, abs=1e-9 * scale)
    assert p.tax["tax"] == pytest.approx(tax, abs=1e-9 * scale)
    m = c["tax"]
    if m.gains_budget is not None:
        assert g_s + g_l <= m.gains_budget + 1e-7 * scale
    if m.short_budget is not None:
        assert g_s <= m.short_budget + 1e-7 * scale
    # lot sales within each lot, adding up to each asset's sell; sold assets are sells only
    lots = c["lots"].to_frame().set_index(["asset", "lot_id"])["quantity"]
    s = p.lot_sales
    if len(s):
        held = lots.loc[list(zip(s["asset"], s["lot_id"], strict=True))].to_numpy()
        assert (s["quantity"].to_numpy() <= held * (1 + 1e-12) + 1e-9).all()
        assert (s["quantity"] > 0).all()
        per_asset = s.groupby("asset")["quantity"].sum()
        for a, q in per_asset.items():
            assert p.trades.loc[a, "side"] == "sell"
            # exactly (a sell of a whole holding past it by the solver's tolerance: the lots)
            want = min(p.trades.loc[a, "quantity"], float(lots.loc[a].sum()))
            assert q == pytest.approx(want, rel=2e-12, abs=1e-12)
    for a in p.tax["blocked"]:
        assert a not in p.trades.index or p.trades.loc[a, "side"] == "sell"
    assert p.tax["method"] in ("relaxation", "exact")


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.sampled_from([0.01, 10.0, 1000.0]))
def test_invariant_to_the_units_of_prices_and_quantities(seed, k):
    c = case(seed)
    try:
        base = plan(c)
    except InfeasibleError:
        return
    lots = c["lots"].to_frame()
    lots["quantity"] = lots["quantity"] / k
    lots["basis"] = lots["basis"] * k
    scaled = dict(c, prices=c["prices"] * k, holdings=c["holdings"] / k)
    scaled["lots"] = TaxLots.from_frame(lots)
    p = plan(scaled)
    np.testing.assert_allclose(p.weights_after, base.weights_after, atol=1e-6)
    v = base.value_after
    assert p.tax["tax"] == pytest.approx(base.tax["tax"], abs=1e-6 * v)
    assert p.tax["objective"] == pytest.approx(base.tax["objective"], abs=1e-6 * v)
    sold = pd.Series(p.lot_sales["quantity"].to_numpy() * k).sum()
    assert sold == pytest.approx(base.lot_sales["quantity"].sum(), rel=1e-5, abs=1e-6)
