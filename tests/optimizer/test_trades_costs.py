"""Tests of optimizer.costs (CostModel) and optimizer.trades (plans, orders, drift, triggers).

The cost model is checked against the formulas of its docstring computed here by hand
(proportional rates by asset, tag, side and default; the square-root impact law
``impact * sigma * |t|^1.5 / sqrt(adv)``; fixed tickets). The drift table and the triggers use
the adviser case of the rebalance issue; orders are checked for the ``trimtab.orders/1`` schema
and for CSV that parses back to the same orders.
"""

from __future__ import annotations

import csv
import io
import json
import math
import pickle
from datetime import date

import numpy as np
import pandas as pd
import pytest
from rebalance_cases import ASSETS, COV, HOLDINGS, PRICES, TARGET, UNI, VOL

from optimizer.costs import CostModel
from optimizer.errors import InputError
from optimizer.rebalance import rebalance
from optimizer.trades import (
    ORDER_FIELDS,
    ORDERS_SCHEMA,
    Decision,
    calendar_check,
    drift,
    hybrid_check,
    threshold_check,
)
from optimizer.triggers import BuyAndHold, Calendar, Hybrid, Threshold, drift_size
from optimizer.universe import Universe


def resolved(model: CostModel, universe: Universe | None = None):
    return model.resolve(ASSETS, universe, np.diag(COV.to_numpy()))


# ----------------------------------------------------------------------------- CostModel rates


def test_scalar_bps_is_the_same_rate_on_both_sides() -> None:
    rc = resolved(CostModel(bps=10))
    np.testing.assert_allclose(rc.buy, 0.001)
    np.testing.assert_allclose(rc.sell, 0.001)
    assert rc.fixed == 0.0
    np.testing.assert_array_equal(rc.impact, 0.0)
    assert rc.adv is None


def test_default_cost_model_is_free() -> None:
    rc = resolved(CostModel())
    parts = rc.breakdown(np.array([1e5, -1e5, 0.0, 3.0]))
    for v in parts.values():
        np.testing.assert_array_equal(v, 0.0)


def test_per_asset_rates_with_default() -> None:
    rc = resolved(CostModel(bps={"REITS": 25, "default": 5}))
    np.testing.assert_allclose(rc.buy, [5e-4, 5e-4, 5e-4, 25e-4])
    np.testing.assert_allclose(rc.sell, rc.buy)


def test_per_tag_rates_and_asset_overrides_tag() -> None:
    model = CostModel(bps={"equity": 8, "BONDS": 3, "default": 30, "INTL_EQ": 12})
    rc = resolved(model, UNI)
    # US_EQ by its tag, INTL_EQ by its own key (beats the tag), BONDS by key, REITS default
    np.testing.assert_allclose(rc.buy * 1e4, [8, 12, 3, 30])


def test_per_side_rates_override_bps() -> None:
    model = CostModel(
        bps=10, buy_bps={"BONDS": 2, "default": 4}, sell_bps={"equity": 20, "default": 6}
    )
    rc = resolved(model, UNI)
    np.testing.assert_allclose(rc.buy * 1e4, [4, 4, 2, 4])
    np.testing.assert_allclose(rc.sell * 1e4, [20, 20, 6, 6])
    # only one side given: the other keeps bps
    rc = resolved(CostModel(bps=10, sell_bps=30))
    np.testing.assert_allclose(rc.buy * 1e4, 10)
    np.testing.assert_allclose(rc.sell * 1e4, 30)


def test_rates_as_a_series() -> None:
    rc = resolved(
        CostModel(bps=pd.Series({"US_EQ": 1.0, "INTL_EQ": 2.0, "BONDS": 3.0, "REITS": 4.0}))
    )
    np.testing.assert_allclose(rc.buy * 1e4, [1, 2, 3, 4])


@pytest.mark.parametrize(
    ("model", "universe", "match"),
    [
        (CostModel(bps={"GOLD": 5, "default": 1}), None, "GOLD"),
        (CostModel(bps={"GOLD": 5, "default": 1}), UNI, "neither an asset nor a tag"),
        (CostModel(bps={"equity": 5, "default": 1}), None, "universe="),
        (CostModel(sell_bps={"CRYPTO": 5}), UNI, "CRYPTO"),
        (CostModel(bps={"US_EQ": 5}), None, "INTL_EQ"),  # no rate and no default
        (CostModel(bps=-1), None, "non-negative"),
        (CostModel(bps={"US_EQ": -2, "default": 1}), None, "US_EQ"),
        (CostModel(bps={"default": -2}), None, "default"),
        (CostModel(buy_bps=math.inf), None, "non-negative"),
        (CostModel(bps={"US_EQ": math.nan, "default": 10}), None, "US_EQ"),
        (CostModel(bps="ten"), None, "number or a mapping"),
        (CostModel(bps=True), None, "number or a mapping"),
    ],
)
def test_bad_rates_raise_input_error(model, universe, match) -> None:
    with pytest.raises(InputError, match=match):
        resolved(model, universe)


def test_nan_rate_for_an_asset_is_not_replaced_by_the_default() -> None:
    """Regression: a NaN given for an asset was taken for "not given" and got the default."""
    with pytest.raises(InputError, match="US_EQ"):
        rebalance(
            HOLDINGS,
            TARGET,
            cov=COV,
            costs=CostModel(bps={"US_EQ": float("nan"), "default": 10}),
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fixed": -25.0}, "fixed"),
        ({"fixed": math.nan}, "fixed"),
        ({"fixed": True}, "fixed"),
        ({"impact": -0.1}, "impact"),
        ({"impact": math.inf}, "impact"),
        ({"impact": 0.5}, "adv"),  # impact without adv
    ],
)
def test_bad_cost_model_at_construction(kwargs, match) -> None:
    with pytest.raises(InputError, match=match):
        CostModel(**kwargs)


@pytest.mark.parametrize(
    ("adv", "match"),
    [
        ({"US_EQ": 1e6, "INTL_EQ": 1e6, "BONDS": 1e6}, "REITS"),  # missing
        ({"US_EQ": 1e6, "INTL_EQ": 0.0, "BONDS": 1e6, "REITS": 1e6}, "INTL_EQ"),  # not positive
        ({"US_EQ": 1e6, "INTL_EQ": 1e6, "BONDS": math.nan, "REITS": 1e6}, "BONDS"),
    ],
)
def test_bad_adv_names_the_asset(adv, match) -> None:
    with pytest.raises(InputError, match=match):
        resolved(CostModel(impact=0.5, adv=adv))


def test_cost_model_is_frozen() -> None:
    model = CostModel(bps=10)
    with pytest.raises(AttributeError):
        model.bps = 20  # type: ignore[misc]


# ----------------------------------------------------------------------------- cost breakdown


def test_breakdown_proportional_by_side() -> None:
    rc = resolved(CostModel(buy_bps=10, sell_bps=30))
    t = np.array([10_000.0, -20_000.0, 0.0, 500.0])
    parts = rc.breakdown(t)
    np.testing.assert_allclose(parts["proportional"], [10.0, 60.0, 0.0, 0.5])
    np.testing.assert_array_equal(parts["impact"], 0.0)
    np.testing.assert_array_equal(parts["fixed"], 0.0)


def test_breakdown_fixed_only_on_traded_assets() -> None:
    rc = resolved(CostModel(fixed=25.0))
    parts = rc.breakdown(np.array([1.0, 0.0, -3.0, 1e-12]))
    np.testing.assert_array_equal(parts["fixed"], [25.0, 0.0, 25.0, 0.0])


def test_impact_uses_daily_volatility_from_the_covariance() -> None:
    adv = {"US_EQ": 5e6, "INTL_EQ": 2e6, "BONDS": 8e6, "REITS": 1e6}
    rc = resolved(CostModel(impact=0.7, adv=adv))
    t = np.array([120_000.0, -40_000.0, 15_000.0, -9_000.0])
    sigma = VOL / math.sqrt(252.0)  # daily volatility from the annualized covariance
    want = 0.7 * sigma * np.abs(t) ** 1.5 / np.sqrt([5e6, 2e6, 8e6, 1e6])
    np.testing.assert_allclose(rc.breakdown(t)["impact"], want, rtol=1e-12)
    np.testing.assert_allclose(rc.adv, [5e6, 2e6, 8e6, 1e6])


def test_impact_with_given_daily_volatility() -> None:
    adv = pd.Series(2e6, index=ASSETS)
    dvol = {"US_EQ": 0.01, "INTL_EQ": 0.012, "BONDS": 0.003, "REITS": 0.015}
    rc = resolved(CostModel(impact=1.0, adv=adv, daily_volatility=dvol))
    t = np.array([50_000.0, 0.0, -70_000.0, 1_000.0])
    want = np.array([0.01, 0.012, 0.003, 0.015]) * np.abs(t) ** 1.5 / math.sqrt(2e6)
    np.testing.assert_allclose(rc.breakdown(t)["impact"], want, rtol=1e-12)


# ----------------------------------------------------------------------------- drift and triggers


def test_drift_table_adviser_case() -> None:
    table = drift(HOLDINGS, TARGET)
    assert list(table.columns) == ["value", "weight", "target", "drift", "relative_drift"]
    assert table["value"].sum() == 1_089_000.0
    np.testing.assert_allclose(
        table["weight"], [460 / 1089, 230 / 1089, 291 / 1089, 108 / 1089], rtol=1e-15
    )
    # 42.24 / 21.12 / 26.72 / 9.92 %; drift +2.24 / +1.12 / -3.28 / -0.08 points
    np.testing.assert_array_equal((table["weight"] * 100).round(2), [42.24, 21.12, 26.72, 9.92])
    np.testing.assert_array_equal((table["drift"] * 100).round(2), [2.24, 1.12, -3.28, -0.08])
    np.testing.assert_allclose(table["relative_drift"], table["drift"] / TARGET, rtol=1e-12)


def test_drift_with_assets_on_one_side_only() -> None:
    h = pd.Series({"US_EQ": 600.0, "GOLD": 400.0})
    t = pd.Series({"US_EQ": 0.5, "BONDS": 0.5})
    table = drift(h, t)
    assert table.loc["GOLD", "target"] == 0.0
    assert table.loc["GOLD", "drift"] == pytest.approx(0.4)
    assert np.isnan(table.loc["GOLD", "relative_drift"])
    assert table.loc["BONDS", "value"] == 0.0
    assert table.loc["BONDS", "drift"] == pytest.approx(-0.5)
    assert table.loc["BONDS", "relative_drift"] == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("holdings", "match"),
    [
        (pd.Series({"US_EQ": 0.0, "BONDS": 0.0}), "positive"),
        (pd.Series({"US_EQ": 1.0, "BONDS": math.nan}), "BONDS"),
        ([1.0, 2.0], "Series"),
    ],
)
def test_drift_bad_input(holdings, match) -> None:
    with pytest.raises(InputError, match=match):
        drift(holdings, pd.Series({"US_EQ": 0.5, "BONDS": 0.5}))


def test_five_point_threshold_does_not_trigger() -> None:
    decision = threshold_check(drift(HOLDINGS, TARGET), 0.05)
    assert isinstance(decision, Decision)
    assert not decision and decision.trade is False
    assert len(decision.reasons) == 1
    assert "-3.28%" in decision.reasons[0] and "BONDS" in decision.reasons[0]
    assert "within the band" in decision.reasons[0]


def test_three_point_threshold_triggers_on_bonds_only() -> None:
    decision = threshold_check(drift(HOLDINGS, TARGET), 0.03)
    assert decision and decision.trade is True
    assert len(decision.reasons) == 1
    assert decision.reasons[0].startswith("BONDS drifted -3.28% from target")
    assert "3.00%" in decision.reasons[0]


def test_threshold_two_points_names_each_asset_over() -> None:
    decision = threshold_check(drift(HOLDINGS, TARGET), 0.02)
    assert decision
    assert [r.split()[0] for r in decision.reasons] == ["US_EQ", "BONDS"]


def test_threshold_per_asset_and_relative() -> None:
    table = drift(HOLDINGS, TARGET)
    assert threshold_check(table, {"US_EQ": 0.02, "INTL_EQ": 0.05, "BONDS": 0.05, "REITS": 0.05})
    assert not threshold_check(
        table, {"US_EQ": 0.03, "INTL_EQ": 0.05, "BONDS": 0.05, "REITS": 0.05}
    )
    with pytest.raises(InputError, match="REITS"):
        threshold_check(table, {"US_EQ": 0.03, "INTL_EQ": 0.05, "BONDS": 0.05})
    # relative: BONDS is 10.9% under its target, US_EQ 5.6% over
    rel = threshold_check(table, 0.10, relative=True)
    assert rel and [r.split()[0] for r in rel.reasons] == ["BONDS"]
    assert not threshold_check(table, 0.12, relative=True)


def test_calendar_check() -> None:
    first = calendar_check("2024-03-31", None, months=3)
    assert first and "no earlier rebalance" in first.reasons[0]
    due = calendar_check(date(2024, 6, 30), "2024-03-31", months=3)
    assert due and "2024-06-30" in due.reasons[0]
    early = calendar_check(pd.Timestamp("2024-06-29"), "2024-03-31", months=3)
    assert not early and "next calendar review on 2024-06-30" in early.reasons[0]
    with pytest.raises(InputError, match="before the last rebalance"):
        calendar_check("2024-01-01", "2024-03-31", months=3)
    with pytest.raises(InputError, match="at least 1"):
        calendar_check("2024-01-01", None, months=0)


def test_hybrid_check() -> None:
    table = drift(HOLDINGS, TARGET)
    # not a review date: no trade however large the drift
    off = hybrid_check(table, 0.01, "2024-05-15", "2024-03-31", months=3)
    assert not off and off.reasons == ("next calendar review on 2024-06-30",)
    # review date and a drift past the band: trade, both reasons given
    on = hybrid_check(table, 0.03, "2024-06-30", "2024-03-31", months=3)
    assert on
    assert "calendar review due" in on.reasons[0]
    assert on.reasons[1].startswith("BONDS drifted -3.28%")
    # review date but everything within the band: no trade, and it says why
    calm = hybrid_check(table, 0.05, "2024-06-30", "2024-03-31", months=3)
    assert not calm
    assert "calendar review due" in calm.reasons[0] and "within the band" in calm.reasons[1]


def test_the_wrappers_are_the_trigger_objects() -> None:
    table = drift(HOLDINGS, TARGET)
    for band in (0.02, 0.03, 0.05):
        assert threshold_check(table, band) == Threshold(band).check(HOLDINGS / 1_089_000, TARGET)
    assert calendar_check("2024-06-30", "2024-03-31", months=3) == Calendar(months=3).due(
        as_of="2024-06-30", last="2024-03-31"
    )


@pytest.mark.parametrize("relative", [False, True])
def test_fast_and_explained_paths_agree(relative) -> None:
    rng = np.random.default_rng(3)
    assets = pd.Index([f"A{i}" for i in range(6)])
    for _ in range(200):
        t = rng.dirichlet(np.ones(6))
        t[rng.integers(6)] = 0.0  # a zero target: relative bands use the dust rule
        t = t / t.sum()
        w = np.clip(t + rng.normal(0, 0.03, 6), 0.0, None)
        w = w / w.sum()
        band = {a: float(b) for a, b in zip(assets, rng.uniform(0.005, 0.2, 6), strict=True)}
        for trig in (Threshold(band, relative=relative), Hybrid(2, band, relative=relative)):
            fast = trig.reviews(4) and trig.decide(w, t, trig.bands(assets))
            slow = trig.check(pd.Series(w, index=assets), pd.Series(t, index=assets), period=4)
            assert fast == slow.trade
            assert len(slow.reasons) >= 1
        assert not Hybrid(2, band, relative=relative).check(
            pd.Series(w, index=assets), pd.Series(t, index=assets), period=3
        )


def test_relative_band_and_an_asset_without_target() -> None:
    target = pd.Series({"US_EQ": 0.6, "BONDS": 0.4, "GOLD": 0.0})
    dust = pd.Series({"US_EQ": 0.6, "BONDS": 0.39995, "GOLD": 0.00005})
    assert not Threshold(0.1, relative=True).check(dust, target)
    held = pd.Series({"US_EQ": 0.58, "BONDS": 0.40, "GOLD": 0.02})
    decision = Threshold(0.1, relative=True).check(held, target)
    assert decision.reasons == ("GOLD is held at 2.00% with a target of 0 (band 10.00% of target)",)
    np.testing.assert_allclose(
        drift_size(np.array([0.02, 0.5]), np.array([0.0, 0.4]), relative=True),
        [np.inf, 0.25],
        rtol=1e-12,
    )


def test_period_schedules() -> None:
    cal = Calendar(3)
    assert cal.every == 3 and cal.months is None and cal.name == "calendar every 3"
    assert [cal.reviews(i) for i in range(7)] == [True, False, False, True, False, False, True]
    assert cal.due(6).reasons == ("review at period 6 (every 3 periods)",)
    assert cal.due(7).reasons == ("next review at period 9",)
    assert Hybrid().every == 3 and Hybrid(months=2).every is None
    assert Calendar(months=6).name == "calendar every 6 months"
    with pytest.raises(InputError, match="needs period="):
        cal.due(as_of="2024-01-31")
    with pytest.raises(InputError, match="needs as_of="):
        Calendar(months=1).due(4)
    with pytest.raises(InputError, match="not both"):
        Calendar(every=3, months=3)
    with pytest.raises(InputError, match="Calendar every must be a whole number, got 2.5"):
        Calendar(2.5)
    with pytest.raises(InputError, match="Hybrid months must be at least 1, got 0"):
        Hybrid(months=0)
    with pytest.raises(InputError, match="Hybrid band must be a non-negative number"):
        Hybrid(3, {"US_EQ": -0.1})
    assert not BuyAndHold().check(HOLDINGS, TARGET) and not BuyAndHold().reviews(0)


def test_bands_by_asset_and_tag() -> None:
    trig = Threshold({"equity": 0.02, "INTL_EQ": 0.04, "fixed income": 0.03, "REITS": 0.05})
    assert trig.bands(ASSETS, UNI).tolist() == [0.02, 0.04, 0.03, 0.05]
    weights = HOLDINGS / HOLDINGS.sum()
    decision = trig.check(weights, TARGET, universe=UNI)
    assert [r.split()[0] for r in decision.reasons] == ["US_EQ", "BONDS"]
    with pytest.raises(InputError, match="pass universe= to use tags"):
        trig.check(weights, TARGET)
    with pytest.raises(InputError, match="Threshold band missing for REITS"):
        Threshold({"US_EQ": 0.1, "INTL_EQ": 0.1, "BONDS": 0.1}).bands(ASSETS)


def test_triggers_are_values() -> None:
    band = {"US_EQ": 0.02, "INTL_EQ": 0.05, "BONDS": 0.05, "REITS": 0.05}
    trig = Threshold(band)
    band["US_EQ"] = 0.5  # the caller's dict is copied
    assert trig.band["US_EQ"] == 0.02
    with pytest.raises(TypeError, match="read-only"):
        trig.band["US_EQ"] = 0.5
    same = Threshold({"US_EQ": 0.02, "INTL_EQ": 0.05, "BONDS": 0.05, "REITS": 0.05})
    assert trig == same and hash(trig) == hash(same)
    for obj in (trig, Hybrid(months=3, band=0.04), Calendar(2), BuyAndHold()):
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and hash(back) == hash(obj)
    assert len({Calendar(3), Calendar(every=3), Calendar(months=3)}) == 2


# ----------------------------------------------------------------------------- plans and orders


@pytest.fixture(scope="module")
def plan():
    """The adviser case with whole shares, a $25 ticket and 10 bps."""
    return rebalance(
        HOLDINGS,
        TARGET,
        cov=COV,
        costs=CostModel(bps=10, fixed=25.0),
        prices=PRICES,
        lot_size=1,
        as_of=date(2024, 6, 28),
        portfolio_id="client-042",
        currency="USD",
    )


def test_orders_are_json_and_follow_the_schema(plan) -> None:
    orders = plan.to_orders()
    text = json.dumps(orders)  # JSON-serializable as it stands
    back = json.loads(text)
    assert back == orders
    assert orders["schema"] == ORDERS_SCHEMA == "trimtab.orders/1"
    assert orders["as_of"] == "2024-06-28"
    assert date.fromisoformat(orders["as_of"]) == date(2024, 6, 28)
    assert orders["portfolio_id"] == "client-042"
    assert orders["currency"] == "USD"
    assert orders["value_before"] == orders["value_after"] == 1_089_000.0
    assert orders["cash_flow"] == 0.0
    assert orders["targets"] == pytest.approx(TARGET.to_dict())
    assert set(orders) >= {"schema", "as_of", "portfolio_id", "targets", "orders", "totals"}


def test_one_order_per_traded_asset(plan) -> None:
    orders = plan.to_orders()["orders"]
    assert [o["asset"] for o in orders] == list(plan.trades.index)
    assert len({o["asset"] for o in orders}) == len(orders)
    assert "REITS" not in {o["asset"] for o in orders}  # not worth its ticket
    for o in orders:
        assert set(o) == set(ORDER_FIELDS)
        row = plan.trades.loc[o["asset"]]
        assert o["side"] in ("buy", "sell") and o["side"] == row["side"]
        assert o["notional"] > 0 and o["quantity"] > 0
        assert o["notional"] == pytest.approx(row["notional"])
        assert o["quantity"] == pytest.approx(round(o["quantity"]), abs=1e-9)
        assert o["price"] == PRICES[o["asset"]]
        assert o["notional"] == pytest.approx(o["quantity"] * o["price"], rel=1e-12)
        assert o["est_cost"] == pytest.approx(25.0 + 0.001 * o["notional"])
    sides = {o["asset"]: o["side"] for o in orders}
    assert sides == {"US_EQ": "sell", "INTL_EQ": "sell", "BONDS": "buy"}


def test_order_totals(plan) -> None:
    orders = plan.to_orders()
    buys = sum(o["notional"] for o in orders["orders"] if o["side"] == "buy")
    sells = sum(o["notional"] for o in orders["orders"] if o["side"] == "sell")
    assert orders["totals"]["notional_buy"] == pytest.approx(buys)
    assert orders["totals"]["notional_sell"] == pytest.approx(sells)
    assert orders["totals"]["est_cost"] == pytest.approx(plan.total_cost)
    assert orders["totals"]["est_cost"] == pytest.approx(
        sum(o["est_cost"] for o in orders["orders"])
    )


def test_orders_csv_parses_back_to_the_orders(plan) -> None:
    text = plan.orders_csv()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["schema", "as_of", "portfolio_id", *ORDER_FIELDS]
    orders = plan.to_orders()["orders"]
    assert len(rows) == len(orders)
    for row, order in zip(rows, orders, strict=True):
        assert row["schema"] == ORDERS_SCHEMA
        assert row["as_of"] == "2024-06-28"
        assert row["portfolio_id"] == "client-042"
        assert row["asset"] == order["asset"] and row["side"] == order["side"]
        for f in ("quantity", "notional", "price", "est_cost"):
            assert float(row[f]) == order[f]  # repr round-trips exactly


def test_orders_without_prices_have_null_quantities() -> None:
    plan = rebalance(HOLDINGS, TARGET, cov=COV)
    orders = plan.to_orders()
    json.dumps(orders)
    assert orders["as_of"] is None and orders["portfolio_id"] is None
    assert len(orders["orders"]) == 4
    for o in orders["orders"]:
        assert o["quantity"] is None and o["price"] is None
        assert o["notional"] > 0 and o["est_cost"] == 0.0
    rows = list(csv.DictReader(io.StringIO(plan.orders_csv())))
    assert [r["asset"] for r in rows] == ["US_EQ", "INTL_EQ", "BONDS", "REITS"]
    assert all(r["quantity"] == "" and r["price"] == "" and r["as_of"] == "" for r in rows)
    assert [float(r["notional"]) for r in rows] == [o["notional"] for o in orders["orders"]]


def test_orders_of_a_plan_with_no_trades() -> None:
    plan = rebalance(HOLDINGS, HOLDINGS / HOLDINGS.sum(), cov=COV)
    assert plan.trades.empty
    orders = plan.to_orders()
    json.dumps(orders)
    assert orders["orders"] == []
    assert orders["totals"] == {"notional_buy": 0.0, "notional_sell": 0.0, "est_cost": 0.0}
    assert plan.orders_csv().strip().splitlines() == [
        ",".join(["schema", "as_of", "portfolio_id", *ORDER_FIELDS])
    ]


@pytest.mark.parametrize(
    ("as_of", "iso"),
    [
        (date(2024, 6, 28), "2024-06-28"),
        (pd.Timestamp("2024-06-28 16:00"), "2024-06-28"),
        ("2024-06-28", "2024-06-28"),
        (None, None),
    ],
)
def test_as_of_is_iso(as_of, iso) -> None:
    plan = rebalance(HOLDINGS, TARGET, cov=COV, as_of=as_of)
    assert plan.to_orders()["as_of"] == iso


def test_plan_to_dict_is_json(plan) -> None:
    d = plan.to_dict()
    json.loads(json.dumps(d))
    assert d["orders"]["schema"] == ORDERS_SCHEMA
    assert d["weights_after"].keys() == set(ASSETS)
    assert set(d["costs"]) == {"proportional", "impact", "fixed"}
    assert d["total_cost"] == pytest.approx(sum(d["costs"].values()))
    assert any("REITS" in note for note in d["notes"])
    # every constraint verified by name on the final (whole-share) trades; nothing relaxed
    assert {"budget", "long-only"} <= set(d["checks"])
    assert all(c["ok"] for c in d["checks"].values())
    assert plan.relaxed == () and d["relaxed"] == [] and d["orders"]["relaxed"] == []


def test_cost_model_equality_and_hash_are_by_content() -> None:
    rates = {"REITS": 25.0, "default": 5.0}
    a = CostModel(bps=rates, fixed=25.0)
    rates["REITS"] = 99.0  # the model keeps its own copy
    assert a.bps["REITS"] == 25.0
    b = CostModel(bps=pd.Series({"default": 5, "REITS": 25}), fixed=25)
    assert a == b and hash(a) == hash(b)
    assert a != CostModel(bps={"REITS": 25.0, "default": 6.0}, fixed=25.0)
    assert len({a, b, CostModel(bps=10)}) == 2
    np.testing.assert_allclose(resolved(a).buy, resolved(b).buy)
