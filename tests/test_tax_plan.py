"""Tax-aware plans: known answers, wash sales, budgets, terms, and every input error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tax_cases import AS_OF, case, plan

from optimizer.errors import InfeasibleError, InputError
from optimizer.rebalance import CostModel, Rebalancer, TaxLots, TaxModel

ASSETS = ["A", "B", "C"]
COV = pd.DataFrame(np.diag([0.04, 0.04, 0.04]), index=ASSETS, columns=ASSETS)
PRICES = pd.Series([100.0, 100.0, 100.0], index=ASSETS)
DAY = pd.Timestamp(AS_OF)


def lots_of(rows) -> TaxLots:
    """Lots from (asset, lot_id, quantity, basis, days held) rows."""
    return TaxLots.from_frame(
        pd.DataFrame(
            [
                {
                    "asset": a,
                    "lot_id": i,
                    "quantity": q,
                    "basis": c,
                    "acquired": DAY - pd.Timedelta(days=d),
                }
                for a, i, q, c, d in rows
            ]
        )
    )


def overweight(**kw):
    """A holds 80% in three long-term lots (bases 50, 90, 120 at price 100); B and C 10%."""
    rb = Rebalancer(COV, costs=CostModel(bps=5), holdings_as="quantity", tracking_weight=1e4)
    holdings = pd.Series([800.0, 100.0, 100.0], index=ASSETS)
    target = pd.Series([0.5, 0.25, 0.25], index=ASSETS)
    lots = lots_of(
        [
            ("A", "L50", 400.0, 50.0, 800),
            ("A", "L90", 350.0, 90.0, 700),
            ("A", "L120", 50.0, 120.0, 600),
            ("B", "B1", 100.0, 100.0, 500),
            ("C", "C1", 100.0, 100.0, 500),
        ]
    )
    args = {"prices": PRICES, "as_of": AS_OF, "lots": lots}
    args.update(kw)
    return rb, holdings, target, args


def sold(p, lot_id: str) -> float:
    s = p.lot_sales
    return float(s.loc[s["lot_id"] == lot_id, "quantity"].sum())


def test_tax_sells_the_highest_basis_lots_first():
    _, h, t, args = overweight(tax=TaxModel(short_rate=0.3, long_rate=0.3))
    rb = Rebalancer(COV, costs=CostModel(bps=5), holdings_as="quantity", tracking_weight=100.0)
    p = rb.plan(h, t, **args)
    total = sold(p, "L50") + sold(p, "L90") + sold(p, "L120")
    assert total > 100  # a real sale
    assert sold(p, "L120") == pytest.approx(50.0, abs=1e-6)
    assert sold(p, "L50") == pytest.approx(0.0, abs=1e-6)
    assert sold(p, "L90") == pytest.approx(total - 50.0, abs=1e-6)
    # the tax cuts the sale against the tax-blind plan
    blind = rb.plan(h, t, prices=PRICES)
    assert total < float(blind.trades.loc["A", "quantity"]) - 1
    assert p.tax["method"] == "exact" and p.checks["lot sales"]["ok"]


@pytest.mark.parametrize("seed", range(12))
def test_zero_rates_equal_the_tax_blind_plan(seed):
    c = case(seed)
    c.update(tax=TaxModel(), recent=None, harvest=False)
    p = plan(c)
    blind = c["rb"].plan(c["holdings"], c["target"], prices=c["prices"], cash_flow=c["cash_flow"])
    v1 = p.value_after
    a = p.weights_after.to_numpy() - blind.weights_after.to_numpy()
    assert np.abs(a).max() <= 1e-6
    assert p.tax["tax"] == 0.0
    assert blind.lot_sales is None and blind.tax is None
    assert p.tax["objective"] / v1 >= 0


def test_wash_sale_window_blocks_the_buy():
    rb, h, t, args = overweight(tax=TaxModel(0.3, 0.15))
    recent = pd.DataFrame(
        {
            "asset": ["B"],
            "date": ["2026-05-22"],
            "side": ["sell"],
            "quantity": [5.0],
            "gain": [-20.0],
        }
    )
    p = rb.plan(h, t, recent=recent, **args)
    assert "B" not in p.trades.index
    assert p.tax["blocked"] == ("B",)
    assert any("wash sale" in n and "B" in n for n in p.notes)
    assert p.trades.loc["C", "side"] == "buy"
    # outside the window (40 days before) B is bought
    recent["date"] = ["2026-04-22"]
    q = rb.plan(h, t, recent=recent, **args)
    assert q.trades.loc["B", "side"] == "buy" and q.tax["blocked"] == ()
    # without any tax the rule protects nothing: the plan is the tax-blind one
    recent["date"] = ["2026-05-22"]
    z = rb.plan(h, t, recent=recent, **{**args, "tax": TaxModel()})
    assert z.trades.loc["B", "side"] == "buy" and z.tax["blocked"] == ()


def test_wash_sale_disallows_the_loss_of_a_recent_buy():
    rb, h, t, args = overweight(tax=TaxModel(short_rate=0.3, long_rate=0.3))
    recent = pd.DataFrame(
        {"asset": ["A"], "date": ["2026-05-30"], "side": ["buy"], "quantity": [1.0]}
    )
    p = rb.plan(h, t, recent=recent, **args)
    s = p.lot_sales.set_index("lot_id")
    if "L120" in s.index:
        assert bool(s.loc["L120", "wash"]) and s.loc["L120", "gain"] < 0
        assert any("wash sale" in n and "L120" in n for n in p.notes)
    # the loss earns nothing: the reported gains count it as 0
    taxable = (s["gain"].where(~s["wash"], s["gain"].clip(lower=0))).sum()
    assert p.tax["net_gains"] == pytest.approx(taxable, abs=1e-6)


def test_gains_budget_binds_exactly():
    rb, h, t, args = overweight(tax=TaxModel(long_rate=0.01, short_rate=0.01, gains_budget=800.0))
    p = rb.plan(h, t, **args)
    assert p.tax["net_gains"] == pytest.approx(800.0, abs=1e-6 * p.value_after)
    assert any("gains budget binds" in n for n in p.notes)
    assert p.checks["gains budget"]["ok"]
    free = rb.plan(h, t, **{**args, "tax": TaxModel(long_rate=0.01, short_rate=0.01)})
    assert free.tax["net_gains"] > 900.0


def test_short_and_long_term_split_at_long_after_days():
    rb = Rebalancer(COV, holdings_as="quantity", tracking_weight=1e4)
    h = pd.Series([800.0, 100.0, 100.0], index=ASSETS)
    t = pd.Series([0.2, 0.4, 0.4], index=ASSETS)
    lots = lots_of(
        [
            ("A", "S", 400.0, 80.0, 365),  # held exactly 365 days: short-term
            ("A", "L", 400.0, 80.0, 366),  # one day more: long-term
            ("B", "B1", 100.0, 100.0, 10),
            ("C", "C1", 100.0, 100.0, 10),
        ]
    )
    p = rb.plan(h, t, prices=PRICES, as_of=AS_OF, lots=lots, tax=TaxModel(0.4, 0.2))
    s = p.lot_sales.set_index("lot_id")
    assert s.loc["S", "term"] == "short" and s.loc["L", "term"] == "long"
    # the long-term lot is cheaper to sell: it goes first
    assert s.loc["L", "quantity"] == pytest.approx(400.0, abs=1e-6)
    assert p.tax["long_gains"] == pytest.approx(400.0 * 20.0, rel=1e-9)
    assert p.tax["short_gains"] == pytest.approx(s.loc["S", "quantity"] * 20.0, rel=1e-9)
    g_s, g_l = p.tax["short_gains"], p.tax["long_gains"]
    assert p.tax["tax"] == pytest.approx(0.4 * g_s + 0.2 * g_l, rel=1e-9)
    q = rb.plan(
        h, t, prices=PRICES, as_of=AS_OF, lots=lots, tax=TaxModel(0.4, 0.2, long_after_days=364)
    )
    assert set(q.lot_sales["term"]) == {"long"}


def test_harvest_values_losses_and_buys_a_substitute():
    assets = ["A", "A2", "B"]
    cov = pd.DataFrame(
        [[0.04, 0.039, 0.0], [0.039, 0.04, 0.0], [0.0, 0.0, 0.04]], index=assets, columns=assets
    )
    prices = pd.Series(100.0, index=assets)
    rb = Rebalancer(cov, costs=CostModel(bps=2), holdings_as="quantity")
    h = pd.Series([500.0, 0.0, 500.0], index=assets)
    t = pd.Series([0.5, 0.0, 0.5], index=assets)
    lots = lots_of([("A", "A1", 500.0, 150.0, 100), ("B", "B1", 500.0, 100.0, 100)])
    model = TaxModel(0.4, 0.2, loss_rate=0.2)
    kw = {
        "prices": prices,
        "as_of": AS_OF,
        "lots": lots,
        "tax": model,
        "substitutes": {"A": ["A2"]},
    }
    kept = rb.plan(h, t, **kw)
    assert kept.trades.empty and kept.tax["tax"] == 0.0
    p = rb.plan(h, t, harvest=True, **kw)
    assert p.trades.loc["A", "side"] == "sell" and p.trades.loc["A2", "side"] == "buy"
    assert p.tax["tax"] < 0 and p.tax["net_gains"] < 0
    assert p.tax["tax"] == pytest.approx(0.2 * p.tax["net_gains"], rel=1e-9)


def test_lots_as_a_frame_and_quantity_holdings_as_values():
    rb, h, t, args = overweight(tax=TaxModel(0.3, 0.3))
    a = rb.plan(h, t, **args)
    rbv = Rebalancer(COV, costs=CostModel(bps=5), tracking_weight=1e4)
    b = rbv.plan(h * PRICES, t, **{**args, "lots": args["lots"].to_frame()})
    assert np.allclose(a.weights_after, b.weights_after, atol=1e-8)
    assert b.tax["tax"] == pytest.approx(a.tax["tax"], abs=1e-6)


def test_liquidation_sells_every_lot():
    rb, h, t, args = overweight(tax=TaxModel(0.3, 0.3))
    p = rb.plan(h, t, cash_flow=-100000.0, **args)
    assert p.status == "liquidation" and len(p.lot_sales) == 5
    assert p.tax["net_gains"] == pytest.approx(400 * 50 + 350 * 10 - 50 * 20)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"lots": "lots"}, ["lots=", "TaxLots"]),
        ({"tax": {"short_rate": 0.2}}, ["tax=", "TaxModel"]),
        ({"prices": None}, ["prices=", "tax-aware"]),
        ({"substitutes": {"A": ["ZZ"]}}, ["'ZZ'", "covariance"]),
        ({"substitutes": {"QQ": ["A"]}}, ["'QQ'", "covariance"]),
        ({"harvest": "yes"}, ["harvest"]),
        ({"recent": [1, 2]}, ["recent="]),
        ({"lots": None, "tax": TaxModel()}, ["lots="]),
    ],
)
def test_input_errors_name_the_culprit(change, words):
    rb, h, t, args = overweight()
    args.update(change)
    if args.get("prices") is None:
        rb = Rebalancer(COV)
        h = h * 100.0
    with pytest.raises(InputError) as exc:
        rb.plan(h, t, **args)
    for w in words:
        assert w in str(exc.value)


def test_lots_not_matching_holdings_name_the_asset_and_both_quantities():
    rb, h, t, args = overweight()
    h = h.copy()
    h["A"] = 790.0
    with pytest.raises(InputError) as exc:
        rb.plan(h, t, **args)
    msg = str(exc.value)
    assert "A" in msg and "800" in msg and "790" in msg and "add up" in msg


def test_lots_of_an_unknown_asset_and_missing_prices():
    rb, h, t, args = overweight()
    extra = lots_of([("A", "L", 800.0, 50.0, 10), ("ZZ", "z", 1.0, 1.0, 10)])
    with pytest.raises(InputError, match="'ZZ'.*covariance"):
        rb.plan(h, t, **{**args, "lots": extra})
    prices = PRICES.copy()
    prices["C"] = np.nan
    rbq = Rebalancer(COV, holdings_as="value")
    with pytest.raises(InputError, match="prices missing for assets with lots: C"):
        rbq.plan(h * 100.0, t, **{**args, "prices": prices})


def test_an_impossible_gains_budget_is_named():
    rb, h, t, args = overweight(tax=TaxModel(gains_budget=0.0))
    # raising 60% of the value must sell A's gains
    with pytest.raises(InfeasibleError, match="gains_budget 0.00"):
        rb.plan(h, t, cash_flow=-60000.0, **args)


def test_the_search_is_reported_and_a_stopped_search_says_so(monkeypatch):
    from optimizer.rebalance import tax as taxmod

    exact = plan(case(3, exact_assets=10))
    s = exact.tax["search"]
    assert exact.tax["method"] == "exact" and s["proven"] and s["gap"] == 0.0
    assert s["undecided"] == 5 and s["nodes"] >= 1 and s["solves"] > s["nodes"]
    two = plan(case(3, exact_assets=0)).tax
    assert two["method"] == "relaxation" and two["search"]["nodes"] == 0
    assert not two["search"]["proven"] and two["search"]["solves"] in (2, 3)
    # a search stopped at its node limit keeps its best plan and names the bound gap
    monkeypatch.setattr(taxmod, "NODE_LIMIT", 1)
    stopped = plan(case(3, exact_assets=10))
    s = stopped.tax["search"]
    assert stopped.tax["method"] == "relaxation" and not s["proven"] and s["nodes"] == 1
    assert s["gap"] > 0
    assert any("stopped at 1 nodes" in n and "bound gap" in n for n in stopped.notes)
    assert stopped.tax["objective"] >= exact.tax["objective"] - 1e-9 * exact.value_after
