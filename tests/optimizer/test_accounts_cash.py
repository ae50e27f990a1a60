"""Accounts, cash and triggers through the API (issue 10, bullets 3 and 5, rebalance side).

* asset ids and tags share one namespace: a clash is an InputError naming both, in
  ``Universe`` and wherever a name is looked up as either (stress shocks, trigger bands);
* triggers count cash: a pending cash flow trades at once, idle cash is a drift;
* an all-cash account is bought into the target, with a finite turnover;
* a withdrawal of the whole portfolio is a liquidation plan, more is an error;
* the notes name the real cause: a turnover cap of 0, untradeable assets off their target.

The adviser case (tests/rebalance_cases.py): $1,089,000 drifted from 40/20/30/10.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rebalance_cases import ADV, ASSETS, COV, HOLDINGS, PRICES, TARGET, UNI, V, random_account

from optimizer.errors import InfeasibleError, InputError
from optimizer.rebalance import CostModel, Rebalancer, rebalance, rebalance_batch
from optimizer.trades import drift
from optimizer.triggers import BuyAndHold, Calendar, Cash, Hybrid, Threshold
from optimizer.universe import Universe
from scenarios.stress import shock_vector

TICKETS = CostModel(bps=10, fixed=25.0)
AT_TARGET = TARGET * V


def signed(plan) -> pd.Series:
    """Trades by asset (currency, buys positive), every asset."""
    t = plan.trades
    out = t["notional"].where(t["side"] == "buy", -t["notional"])
    return out.reindex(plan.weights_after.index, fill_value=0.0)


# ============================================================================ one namespace


def test_an_asset_id_equal_to_a_tag_is_refused_naming_both() -> None:
    with pytest.raises(InputError) as info:
        Universe(["US_EQ", "INTL_EQ", "equity"], tags={"US_EQ": ["equity"], "INTL_EQ": ["equity"]})
    assert str(info.value) == (
        "asset id 'equity' is also a tag (carried by US_EQ, INTL_EQ): ids and tags share one "
        "namespace; rename one"
    )


@pytest.mark.parametrize(
    ("assets", "tags", "clash", "carriers"),
    [
        (["equity"], {"equity": ["equity"]}, "equity", "equity"),
        (["CASH", "BONDS"], {"BONDS": ["CASH"]}, "CASH", "BONDS"),
        (["A", "B", "C"], {"A": ["x", "C"], "B": ["C"]}, "C", "A, B"),
    ],
)
def test_every_clash_names_the_id_and_the_assets_carrying_the_tag(
    assets, tags, clash, carriers
) -> None:
    with pytest.raises(InputError, match=rf"asset id '{clash}' is also a tag \(carried by "):
        Universe(assets, tags=tags)
    with pytest.raises(InputError, match=f"carried by {carriers}\\)"):
        Universe(assets, tags=tags)


def test_the_rebalancer_cannot_be_given_a_clashing_universe() -> None:
    # the universe refuses the clash before any rebalance can read "equity" as a tag
    with pytest.raises(InputError, match="asset id 'REITS' is also a tag"):
        Rebalancer(COV, universe=Universe(list(ASSETS), tags={"US_EQ": ["REITS"]}))


def test_a_stress_shock_cannot_mistake_an_asset_label_for_a_tag() -> None:
    # weights labelled with an id the universe uses as a tag: the shock would be ambiguous
    with pytest.raises(InputError, match=r"asset id 'equity' is also a tag \(carried by US_EQ"):
        shock_vector({"equity": -0.35}, ["equity", "BONDS"], UNI)
    # the universe's own ids: the tag shock reaches its members
    shocks = shock_vector({"equity": -0.35, "BONDS": 0.05}, list(ASSETS), UNI)
    assert shocks.to_dict() == {"US_EQ": -0.35, "INTL_EQ": -0.35, "BONDS": 0.05, "REITS": 0.0}


def test_a_trigger_band_cannot_mistake_an_asset_label_for_a_tag() -> None:
    weights = pd.Series({"equity": 0.5, "BONDS": 0.5})
    with pytest.raises(InputError, match=r"asset id 'equity' is also a tag \(carried by US_EQ"):
        Threshold({"equity": 0.05, "BONDS": 0.05}).check(weights, weights, universe=UNI)


NAMES = st.sampled_from(["A", "B", "C", "D", "eq", "fi", "liquid"])


@settings(max_examples=60, deadline=None)
@given(
    assets=st.lists(NAMES, min_size=1, max_size=4, unique=True),
    tag_lists=st.lists(st.lists(NAMES, max_size=3), min_size=4, max_size=4),
)
def test_a_universe_is_accepted_exactly_when_ids_and_tags_are_disjoint(assets, tag_lists):
    tags = dict(zip(assets, tag_lists, strict=False))
    used = {t for ts in tags.values() for t in ts}
    if used & set(assets):
        with pytest.raises(InputError, match="ids and tags share one namespace"):
            Universe(assets, tags=tags)
    else:
        uni = Universe(assets, tags=tags)
        assert not set(uni.all_tags) & set(uni.assets)


# ============================================================================ triggers count cash


def test_a_pending_withdrawal_trades_at_target() -> None:
    decision = Threshold(0.03).check(TARGET, TARGET, cash=Cash(flow=-500_000.0))
    assert decision.trade
    assert decision.reasons[0] == "cash flow of -$500,000 to fund"
    assert "within the band" in decision.reasons[1]


def test_idle_cash_counts_as_drift() -> None:
    idle = 1_000_000.0 / (V + 1_000_000.0)
    weights = AT_TARGET / (V + 1_000_000.0)
    decision = Threshold(0.03).check(weights, TARGET, cash=Cash(weight=idle))
    assert decision.trade
    assert decision.reasons[0] == (
        "idle cash 47.9% of the account above its 0% target (band 3.00%)"
    )


def test_idle_cash_alone_can_breach_the_band() -> None:
    # 100 assets at 1% each: 4% idle cash moves each by 0.04 points, the cash by 4 points
    labels = [f"S{i}" for i in range(100)]
    target = pd.Series(0.01, index=labels)
    weights = target * 0.96
    assert not Threshold(0.03).check(weights, target)
    decision = Threshold(0.03).check(weights, target, cash=Cash(weight=0.04))
    assert decision.trade and decision.reasons == (
        "idle cash 4.0% of the account above its 0% target (band 3.00%)",
    )
    within = Threshold(0.05).check(weights, target, cash=Cash(weight=0.04))
    assert not within and "(cash)" in within.reasons[0]


def test_cash_below_its_target_is_named() -> None:
    decision = Threshold(0.01).check(
        pd.Series({"A": 0.99}), pd.Series({"A": 0.95}), cash=Cash(weight=0.01, target=0.05)
    )
    assert decision.reasons[0] == "cash 1.0% of the account below its 5% target (band 1.00%)"


def test_a_mapping_band_holds_cash_to_its_tightest_band() -> None:
    band = {"US_EQ": 0.10, "INTL_EQ": 0.10, "BONDS": 0.02, "REITS": 0.10}
    weights = TARGET * 0.97
    decision = Threshold(band).check(weights, TARGET, cash=Cash(weight=0.03))
    assert decision.trade and "band 2.00%" in decision.reasons[0]


def test_a_relative_band_trades_on_any_idle_cash_above_dust() -> None:
    rel = Threshold(0.25, relative=True)
    assert not rel.check(TARGET * (1 - 5e-5), TARGET, cash=Cash(weight=5e-5))
    decision = rel.check(TARGET * 0.99, TARGET, cash=Cash(weight=0.01))
    assert decision.trade and "of target" in decision.reasons[0]


@pytest.mark.parametrize(
    "trigger",
    [BuyAndHold(), Calendar(3), Hybrid(every=3, band=0.5), Threshold(0.5)],
    ids=["buy-and-hold", "calendar", "hybrid", "threshold"],
)
def test_a_pending_flow_trades_with_every_trigger_off_schedule(trigger) -> None:
    without = trigger.check(TARGET, TARGET, period=1)
    assert not without
    decision = trigger.check(TARGET, TARGET, period=1, cash=Cash(flow=250_000.0))
    assert decision.trade
    assert decision.reasons == ("cash flow of +$250,000 to invest", *without.reasons)


def test_a_hybrid_counts_idle_cash_only_at_a_review() -> None:
    hybrid = Hybrid(every=3, band=0.03)
    weights, cash = TARGET * 0.9, Cash(weight=0.1)
    assert not hybrid.check(weights, TARGET, period=1, cash=cash)
    on = hybrid.check(weights, TARGET, period=3, cash=cash)
    assert on.trade and on.reasons[0].startswith("review at period 3")
    assert on.reasons[1].startswith("idle cash 10.0%")


def test_no_cash_decides_as_before() -> None:
    weights = HOLDINGS / V
    for trigger in (Threshold(0.03), Threshold(0.05), Hybrid(every=1, band=0.03)):
        before = trigger.check(weights, TARGET, period=0)
        assert trigger.check(weights, TARGET, period=0, cash=Cash()) == before


def test_the_flow_is_told_in_the_account_currency() -> None:
    cash = Cash(flow=-1_234.5, currency="EUR")
    decision = Threshold(0.5).check(TARGET, TARGET, cash=cash)
    assert decision.reasons[0] == "cash flow of -1,234.50 EUR to fund"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Cash(weight=math.nan), "Cash weight must be a finite number, got nan"),
        (lambda: Cash(flow="lots"), "Cash flow must be a finite number, got 'lots'"),
        (lambda: Cash(target=True), "Cash target must be a finite number, got True"),
        (
            lambda: Threshold(0.05).check(TARGET, TARGET, cash=0.3),
            "cash= must be an optimizer.triggers.Cash, got float",
        ),
    ],
)
def test_bad_cash_is_named(make, match) -> None:
    with pytest.raises(InputError, match=match):
        make()


def test_drift_weights_are_of_the_account_including_cash() -> None:
    table = drift(AT_TARGET, TARGET, cash=1_000_000.0)
    np.testing.assert_allclose(table["weight"], AT_TARGET / (V + 1_000_000.0), rtol=1e-15)
    assert drift(AT_TARGET * 0.0, TARGET, cash=5.0)["weight"].sum() == 0.0


def test_drift_of_an_empty_account_names_positions_and_cash() -> None:
    with pytest.raises(InputError, match=r"positions 0\.00 plus cash 0\.00 is 0\.00"):
        drift(HOLDINGS * 0.0, TARGET)


# ============================================================================ all-cash accounts


@pytest.mark.parametrize("costs", [None, TICKETS], ids=["free", "10bps+ticket"])
def test_an_all_cash_account_is_bought_into_the_target(costs) -> None:
    plan = rebalance(HOLDINGS * 0.0, TARGET, cov=COV, costs=costs, cash_flow=100_000.0)
    np.testing.assert_allclose(plan.weights_after, TARGET, atol=1e-8)
    assert set(plan.trades["side"]) == {"buy"}
    assert float(signed(plan).sum()) == pytest.approx(100_000.0, abs=1e-6)
    # turnover: traded notional over the account's value, the cash it invests
    assert math.isfinite(plan.turnover) and plan.turnover == pytest.approx(1.0, abs=1e-9)
    assert plan.value_before == 0.0 and plan.value_after == 100_000.0
    assert (plan.weights_before == 0.0).all()


def test_an_all_cash_account_in_whole_shares() -> None:
    rb = Rebalancer(COV, costs=TICKETS, lot_size=1)
    plan = rb.plan(HOLDINGS * 0.0, TARGET, prices=PRICES, cash_flow=100_000.0)
    q = plan.trades["quantity"]
    np.testing.assert_allclose(q, q.round(), rtol=0, atol=1e-9)
    assert 0 <= plan.cash_residual < PRICES.max()
    assert plan.turnover == pytest.approx((100_000.0 - plan.cash_residual) / 100_000.0)


# ============================================================================ liquidation


def test_withdrawing_the_whole_portfolio_is_a_liquidation() -> None:
    plan = rebalance(HOLDINGS, TARGET, cov=COV, costs=TICKETS, cash_flow=-V)
    assert list(plan.trades.index) == list(ASSETS)
    assert set(plan.trades["side"]) == {"sell"}
    np.testing.assert_allclose(plan.trades["notional"], HOLDINGS, rtol=1e-15)
    assert plan.value_after == 0.0 and (plan.weights_after == 0.0).all()
    assert plan.turnover == 1.0 and plan.status == "liquidation"
    assert plan.total_cost == pytest.approx(1_089.0 + 4 * 25.0)
    assert plan.notes[0].startswith(
        "liquidation: the withdrawal of 1,089,000.00 is the whole portfolio and sells everything"
    )
    orders = plan.to_orders()
    assert orders["value_after"] == 0.0 and len(orders["orders"]) == 4


def test_a_liquidation_in_quantities_sells_every_unit() -> None:
    units = (HOLDINGS / PRICES).round()
    value = float((units * PRICES).sum())
    rb = Rebalancer(COV, holdings_as="quantity", lot_size=1)
    plan = rb.plan(units, TARGET, prices=PRICES, cash_flow=-value)
    np.testing.assert_allclose(plan.trades["quantity"], units, rtol=1e-12)


def test_a_withdrawal_a_rounding_error_above_the_whole_is_still_a_liquidation() -> None:
    plan = rebalance(HOLDINGS, TARGET, cov=COV, cash_flow=-(V + 1e-6))
    assert plan.status == "liquidation"


def test_more_than_the_whole_portfolio_names_both_amounts() -> None:
    with pytest.raises(InfeasibleError) as info:
        rebalance(HOLDINGS, TARGET, cov=COV, cash_flow=-(V + 1.0))
    assert str(info.value) == (
        "the withdrawal of 1,089,001.00 is more than the tradeable assets hold: at most "
        "1,089,000.00 can be raised"
    )


def test_a_liquidation_under_a_turnover_cap_names_the_cap() -> None:
    with pytest.raises(InfeasibleError, match=r"no turnover cap allows \(max_turnover = 0.5") as e:
        rebalance(HOLDINGS, TARGET, cov=COV, cash_flow=-V, max_turnover=0.5)
    assert e.value.constraint_names == ["turnover cap"]
    assert "remove max_turnover" in str(e.value)


def test_a_liquidation_beyond_the_participation_limit_names_the_assets() -> None:
    costs = CostModel(adv=ADV)
    with pytest.raises(InfeasibleError) as info:
        rebalance(HOLDINGS, TARGET, cov=COV, costs=costs, cash_flow=-V, participation=1.5)
    message = str(info.value)
    assert "US_EQ (460,000.00 to sell, at most 600,000.00)" not in message
    assert "REITS (108,000.00 to sell, at most 150,000.00)" not in message
    assert "BONDS (291,000.00 to sell, at most 450,000.00)" not in message
    assert "INTL_EQ (230,000.00 to sell, at most 225,000.00)" in message
    assert info.value.diagnosis[0]["relax_by"] == pytest.approx(5_000.0)


def test_a_liquidation_needs_prices_for_what_it_sells() -> None:
    with pytest.raises(InputError, match="prices missing for held assets to sell: REITS"):
        rebalance(HOLDINGS, TARGET, cov=COV, cash_flow=-V, prices=PRICES.drop("REITS"))


def test_an_account_of_cash_withdrawn_whole_trades_nothing_and_says_so() -> None:
    plan = rebalance(HOLDINGS * 0.0, TARGET, cov=COV)
    assert plan.trades.empty and plan.turnover == 0.0
    assert "no positions to sell" in plan.notes[0]


def test_a_batch_liquidates_one_account_and_rebalances_the_other() -> None:
    accounts = pd.DataFrame([HOLDINGS, HOLDINGS], index=["a", "b"])
    flows = pd.Series({"a": -V, "b": 0.0})
    plans = rebalance_batch(accounts, TARGET, cov=COV, cash_flow=flows)
    assert plans["a"].status == "liquidation" and plans["b"].status != "liquidation"


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 8))
def test_every_liquidation_sells_each_position_exactly(seed: int, n: int) -> None:
    cov, holdings, target = random_account(seed, n)
    plan = rebalance(holdings, target, cov=cov, cash_flow=-float(holdings.sum()))
    np.testing.assert_allclose(-signed(plan), holdings, rtol=1e-15)
    assert plan.turnover == pytest.approx(1.0, rel=1e-12)


# ============================================================================ notes name the cause


@pytest.mark.parametrize("extra", [{}, {"min_trade": 1_000.0}], ids=["tickets", "min-trade"])
def test_a_turnover_cap_of_zero_is_named_as_the_cause(extra) -> None:
    plan = rebalance(HOLDINGS, TARGET, cov=COV, costs=TICKETS, max_turnover=0.0, **extra)
    assert plan.trades.empty
    assert plan.notes == (
        "the turnover cap (max_turnover = 0) allows no trade: the largest weight gap is 3.28 "
        "points (BONDS), tracking error 0.53%",
    )


def test_a_binding_turnover_cap_says_so() -> None:
    plan = rebalance(HOLDINGS, TARGET, cov=COV, max_turnover=0.02)
    assert any(
        n.startswith("the turnover cap (max_turnover = 0.02) binds at 2.00% of the value after")
        for n in plan.notes
    )
    free = rebalance(HOLDINGS, TARGET, cov=COV, max_turnover=0.5)
    assert not any("turnover cap" in n for n in free.notes)


def test_untradeable_assets_off_target_are_named_with_the_miss() -> None:
    plan = rebalance(HOLDINGS, TARGET, cov=COV, costs=TICKETS, untradeable=["US_EQ"])
    note = [n for n in plan.notes if "untradeable" in n]
    assert note == [
        "the target is out of reach: untradeable assets are held off it (US_EQ 42.24% against "
        "40.00%); the largest weight gap is 2.24 points (US_EQ), tracking error "
        f"{plan.tracking_error_after:.2%}"
    ]


def test_untradeable_assets_at_target_need_no_note() -> None:
    at = AT_TARGET.copy()
    at["BONDS"], at["US_EQ"] = at["BONDS"] - 10_000.0, at["US_EQ"] + 10_000.0
    plan = rebalance(at, TARGET, cov=COV, untradeable=["REITS"])
    assert not any("untradeable" in n for n in plan.notes)
    np.testing.assert_allclose(plan.weights_after, TARGET, atol=1e-8)
