"""Tests for scenarios.backtest: no look-ahead, policies against hand loops, costs, cash
flows, the spending, drawdown and take-profit rules, metrics known answers, compare, errors,
real data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from optimizer import triggers
from optimizer.costs import CostModel
from optimizer.errors import InputError
from scenarios.backtest import (
    BacktestResult,
    BuyAndHold,
    Calendar,
    DrawdownRule,
    Hybrid,
    Optimized,
    SpendingRule,
    TakeProfitRule,
    Threshold,
    backtest,
    compare,
    metrics,
)

ASSETS = ["EQ", "BOND", "ALT"]
TARGET = pd.Series([0.5, 0.3, 0.2], index=ASSETS)
V0 = 1_000_000.0


def make_returns(periods: int = 48, seed: int = 7, assets=ASSETS) -> pd.DataFrame:
    """Monthly returns with clearly different drifts, so weights wander from target."""
    rng = np.random.default_rng(seed)
    k = len(assets)
    mu = np.linspace(0.012, -0.002, k)
    vol = np.linspace(0.06, 0.02, k)
    data = mu + vol * rng.standard_normal((periods, k))
    idx = pd.date_range("2000-01-31", periods=periods, freq="ME")
    return pd.DataFrame(data, index=idx, columns=list(assets))


@pytest.fixture(scope="module")
def rets() -> pd.DataFrame:
    return make_returns()


def traded_positions(res: BacktestResult) -> list[int]:
    return [int(i) for i in np.flatnonzero(res.trades.abs().sum(axis=1).to_numpy() > 0)]


def hand_policy(rets: pd.DataFrame, target: pd.Series, trades_at) -> tuple[list[int], float]:
    """Drift weights by hand; ``trades_at(i, w)`` says whether to go back to target.

    Returns the trade positions and the smallest distance of any reviewed drift to its
    band (so a test can make sure no decision sits on a knife edge).
    """
    tau = target.to_numpy()
    w = tau.copy()
    out = []
    margin = math.inf
    for i in range(1, len(rets)):
        w = w * (1.0 + rets.to_numpy()[i])
        w = w / w.sum()
        decision, edge = trades_at(i, w)
        margin = min(margin, edge)
        if decision:
            out.append(i)
            w = tau.copy()
    return out, margin


# ----------------------------------------------------------------------------- look-ahead


@pytest.mark.parametrize("policy, reviews", [(Calendar(1), 1), (Calendar(3), 3)])
def test_allocate_sees_history_up_to_the_decision_date_only(rets, policy, reviews):
    seen: list[pd.DataFrame] = []

    def allocate(history: pd.DataFrame) -> pd.Series:
        seen.append(history)
        return TARGET

    backtest(rets, allocate, policy=policy)
    expected = [0, *range(reviews, len(rets), reviews)]
    assert [h.index[-1] for h in seen] == [rets.index[i] for i in expected]
    for h, i in zip(seen, expected, strict=True):
        pd.testing.assert_frame_equal(h, rets.iloc[: i + 1])


def momentum(history: pd.DataFrame) -> pd.Series:
    """Weights tilted to the last 6 periods' winners: depends on the whole recent past."""
    score = 1.0 + 10.0 * history.tail(6).mean()
    score = score.clip(lower=0.05)
    return score / score.sum()


@pytest.mark.parametrize(
    "policy", [Calendar(1), Calendar(3), Threshold(0.03), Optimized(every=2)], ids=str
)
def test_altering_the_future_leaves_earlier_decisions_unchanged(rets, policy):
    cut = 23
    future = rets.copy()
    rng = np.random.default_rng(99)
    future.iloc[cut + 1 :] = rng.normal(0.0, 0.2, future.iloc[cut + 1 :].shape)
    kw = dict(policy=policy, costs=CostModel(bps=10), spending=SpendingRule(0.04, 6))
    a = backtest(rets, momentum, **kw)
    b = backtest(future, momentum, **kw)
    upto = rets.index[: cut + 1]
    pd.testing.assert_frame_equal(a.weights.loc[upto], b.weights.loc[upto], rtol=1e-10)
    pd.testing.assert_frame_equal(a.trades.loc[upto], b.trades.loc[upto], rtol=1e-10)
    pd.testing.assert_series_equal(a.values.loc[upto], b.values.loc[upto], rtol=1e-10)
    pd.testing.assert_series_equal(a.costs.loc[upto], b.costs.loc[upto], rtol=1e-10)
    pd.testing.assert_series_equal(a.cash_flows.loc[upto], b.cash_flows.loc[upto], rtol=1e-10)
    # and the alteration does matter afterwards
    assert not np.allclose(a.values.iloc[cut + 1 :], b.values.iloc[cut + 1 :])


# ----------------------------------------------------------------------------- policies


def test_buy_and_hold_drifts_exactly_with_cumulative_returns(rets):
    res = backtest(rets, TARGET, policy=BuyAndHold(), initial_value=V0)
    growth = (1.0 + rets.iloc[1:]).cumprod()
    holdings = pd.concat([TARGET.to_frame().T * V0, growth * TARGET * V0])
    holdings.index = rets.index
    pd.testing.assert_series_equal(
        res.values, holdings.sum(axis=1).rename("value"), rtol=1e-12, check_freq=False
    )
    pd.testing.assert_frame_equal(
        res.weights, holdings.div(holdings.sum(axis=1), axis=0), rtol=1e-12, check_freq=False
    )
    assert (res.trades == 0).all().all()
    assert (res.costs == 0).all()
    assert res.metrics["rebalances"] == 0
    assert res.metrics["turnover"] == 0.0
    assert res.metrics["total_costs"] == 0.0
    assert res.policy == "buy and hold"
    # the policy benchmark is the target held exactly each period
    np.testing.assert_allclose(res.benchmark_returns, rets.iloc[1:] @ TARGET, rtol=1e-12)


def test_calendar_monthly_without_costs_is_the_constantly_rebalanced_portfolio(rets):
    res = backtest(rets, TARGET, policy=Calendar(1), initial_value=V0)
    np.testing.assert_allclose(res.weights.to_numpy(), np.tile(TARGET, (len(rets), 1)), atol=1e-7)
    port = rets.iloc[1:] @ TARGET
    expected = V0 * np.r_[1.0, np.cumprod(1.0 + port.to_numpy())]
    np.testing.assert_allclose(res.values.to_numpy(), expected, rtol=1e-7)
    np.testing.assert_allclose(res.returns, res.benchmark_returns, atol=1e-7)
    assert res.metrics["tracking_error"] < 1e-6
    assert res.metrics["rebalances"] == len(rets) - 1
    assert res.metrics["total_costs"] == 0.0
    # trades are self-financing: buys equal sells
    np.testing.assert_allclose(res.trades.sum(axis=1), 0.0, atol=1e-6)


def test_calendar_three_trades_only_every_third_period(rets):
    res = backtest(rets, TARGET, policy=Calendar(3), costs=CostModel(bps=5))
    assert traded_positions(res) == list(range(3, len(rets), 3))
    assert res.metrics["rebalances"] == len(range(3, len(rets), 3))
    for i in range(3, len(rets), 3):
        np.testing.assert_allclose(res.weights.iloc[i], TARGET, atol=1e-6)
    assert res.policy == "calendar every 3"


def test_threshold_trades_when_drift_exceeds_band_as_a_hand_loop(rets):
    band = 0.02
    tau = TARGET.to_numpy()

    def rule(i, w):
        drift = np.abs(w - tau).max()
        return drift > band, abs(drift - band)

    expected, margin = hand_policy(rets, TARGET, rule)
    assert margin > 1e-5  # no decision on a knife edge
    assert 3 <= len(expected) < len(rets) // 2
    res = backtest(rets, TARGET, policy=Threshold(band))
    assert traded_positions(res) == expected
    # between trades nothing moves back: every pre-trade drift beyond the band was traded
    assert res.metrics["rebalances"] == len(expected)


def test_threshold_per_asset_bands_from_a_mapping(rets):
    bands = {"EQ": 0.01, "BOND": 0.5, "ALT": 0.5}
    b = np.array([bands[a] for a in ASSETS])
    tau = TARGET.to_numpy()

    def rule(i, w):
        over = np.abs(w - tau) - b
        return bool((over > 0).any()), float(np.abs(over).min())

    expected, margin = hand_policy(rets, TARGET, rule)
    assert margin > 1e-5
    res = backtest(rets, TARGET, policy=Threshold(bands))
    assert traded_positions(res) == expected
    # a wide band on every asset never trades; a tight one on EQ alone trades more than
    # the uniform 2-point band
    assert backtest(rets, TARGET, policy=Threshold(0.5)).metrics["rebalances"] == 0
    uniform = backtest(rets, TARGET, policy=Threshold(0.02)).metrics["rebalances"]
    assert res.metrics["rebalances"] > uniform


def test_threshold_relative_bands_and_assets_without_target(rets):
    tau = TARGET.to_numpy()

    def rule(i, w):
        rel = np.abs(w - tau) / tau
        return bool((rel > 0.1).any()), float(np.abs(rel - 0.1).min())

    expected, margin = hand_policy(rets, TARGET, rule)
    assert margin > 1e-5
    res = backtest(rets, TARGET, policy=Threshold(0.1, relative=True))
    assert traded_positions(res) == expected
    # an asset with a zero target that is not held never breaches a relative band
    # (it used to count as an infinite drift and force a trade at every date)
    wider = rets.assign(CASH=0.0)
    res0 = backtest(wider, TARGET, policy=Threshold(0.1, relative=True))
    assert traded_positions(res0) == expected


def test_hybrid_reviews_on_the_calendar_and_trades_beyond_the_band(rets):
    every, band = 3, 0.015
    tau = TARGET.to_numpy()

    def rule(i, w):
        if i % every:
            return False, math.inf
        drift = np.abs(w - tau).max()
        return drift > band, abs(drift - band)

    expected, margin = hand_policy(rets, TARGET, rule)
    assert margin > 1e-5
    res = backtest(rets, TARGET, policy=Hybrid(every, band))
    assert traded_positions(res) == expected
    assert all(i % every == 0 for i in expected)
    assert 0 < len(expected) < len(range(every, len(rets), every))


def test_the_policies_are_the_rebalance_triggers():
    # one implementation: the backtest's policies are optimizer.triggers' objects
    assert BuyAndHold is triggers.BuyAndHold and Calendar is triggers.Calendar
    assert Threshold is triggers.Threshold and Hybrid is triggers.Hybrid
    assert Optimized(3).schedule == Calendar(3)


def test_month_schedules_on_monthly_data_match_period_counts(rets):
    # month ends: 31 Jan + 3 months is 30 Apr, then 30 Jul (31 Jul reviews), 31 Oct, ...
    for by_periods, by_months in (
        (Calendar(3), Calendar(months=3)),
        (Hybrid(3, 0.015), Hybrid(months=3, band=0.015)),
    ):
        a = backtest(rets, TARGET, policy=by_periods)
        b = backtest(rets, TARGET, policy=by_months)
        assert traded_positions(a) == traded_positions(b) != []


def test_hybrid_per_asset_bands(rets):
    every, bands = 3, {"EQ": 0.01, "BOND": 0.5, "ALT": 0.5}
    b = np.array([bands[a] for a in ASSETS])
    tau = TARGET.to_numpy()

    def rule(i, w):
        if i % every:
            return False, math.inf
        over = np.abs(w - tau) - b
        return bool((over > 0).any()), float(np.abs(over).min())

    expected, margin = hand_policy(rets, TARGET, rule)
    assert margin > 1e-5
    res = backtest(rets, TARGET, policy=Hybrid(every, bands))
    assert traded_positions(res) == expected


def test_optimized_without_costs_matches_calendar(rets):
    cal = backtest(rets, TARGET, policy=Calendar(1))
    opt = backtest(rets, TARGET, policy=Optimized())
    np.testing.assert_allclose(opt.weights, cal.weights, atol=1e-5)
    np.testing.assert_allclose(opt.values, cal.values, rtol=1e-5)
    assert opt.policy == "optimized every 1"


def test_optimized_with_costs_trades_less_than_calendar(rets):
    costs = CostModel(bps=25)
    cal = backtest(rets, TARGET, policy=Calendar(1), costs=costs)
    opt = backtest(rets, TARGET, policy=Optimized(tracking_weight=20.0), costs=costs)
    assert opt.metrics["turnover"] < cal.metrics["turnover"]
    assert opt.metrics["total_costs"] < cal.metrics["total_costs"]


# ----------------------------------------------------------------------------- costs


def test_costs_lower_the_result_and_add_up(rets):
    finals = []
    for bps in (0, 10, 50):
        res = backtest(rets, TARGET, policy=Calendar(1), costs=CostModel(bps=bps))
        finals.append(res.metrics["final_value"])
        assert res.metrics["total_costs"] == pytest.approx(res.costs.sum(), rel=1e-12)
        # proportional costs: bps of the traded notional, each date
        np.testing.assert_allclose(
            res.costs, bps * 1e-4 * res.trades.abs().sum(axis=1), rtol=1e-9, atol=1e-9
        )
        # net returns compound to the value path (no cash flows here)
        np.testing.assert_allclose(
            res.values.iloc[1:], V0 * (1.0 + res.returns).cumprod(), rtol=1e-10
        )
        # turnover: traded notional over the value before trading (= after + costs),
        # averaged and annualized
        traded = res.trades.abs().sum(axis=1).iloc[1:]
        pre = (res.values + res.costs).iloc[1:]
        assert res.metrics["turnover"] == pytest.approx(
            (traded / pre).sum() / (len(rets) - 1) * 12, rel=1e-9
        )
        if bps:
            assert res.metrics["total_costs"] > 0
    assert finals[0] > finals[1] > finals[2]


# ----------------------------------------------------------------------------- cash flows


@pytest.mark.parametrize("policy", [BuyAndHold(), Calendar(1)], ids=str)
def test_contributions_and_withdrawals_change_value_by_exactly_the_flow(rets, policy):
    d = rets.index
    flows = pd.Series({d[5]: 250_000.0, d[12]: -300_000.0, d[30]: 50_000.0})
    res = backtest(rets, TARGET, policy=policy, cash_flows=flows)
    plain = backtest(rets, TARGET, policy=policy)
    # flows are invested pro rata, so returns (and weights) are unchanged
    np.testing.assert_allclose(res.returns, plain.returns, atol=1e-7)
    np.testing.assert_allclose(res.weights, plain.weights, atol=1e-7)
    grown = res.values.shift(1) * (1.0 + res.returns)
    np.testing.assert_allclose((res.values - grown).iloc[1:], res.cash_flows.iloc[1:], atol=1e-6)
    expected = pd.Series(0.0, index=d).add(flows, fill_value=0.0)
    np.testing.assert_allclose(res.cash_flows, expected, atol=0)


def test_a_flow_on_the_first_date_joins_the_initial_investment(rets):
    d = rets.index
    res = backtest(rets, TARGET, policy=BuyAndHold(), cash_flows=pd.Series({d[0]: 500_000.0}))
    assert res.values.iloc[0] == pytest.approx(1.5 * V0)
    assert res.cash_flows.iloc[0] == 500_000.0
    plain = backtest(rets, TARGET, policy=BuyAndHold())
    np.testing.assert_allclose(res.values, 1.5 * plain.values, rtol=1e-12)


def test_flows_on_the_same_date_add_up(rets):
    d = rets.index
    flows = pd.Series([100.0, 200.0], index=[d[3], d[3]])
    res = backtest(rets, TARGET, policy=BuyAndHold(), cash_flows=flows)
    assert res.cash_flows.iloc[3] == 300.0
    assert len(res.values) == len(rets)


@pytest.mark.parametrize("window", [1, 3, 12])
def test_spending_rule_withdraws_rate_over_periods_of_the_trailing_mean(rets, window):
    rule = SpendingRule(rate=0.05, window=window)
    contrib = pd.Series({rets.index[10]: 40_000.0})
    res = backtest(
        rets,
        TARGET,
        policy=Calendar(3),
        costs=CostModel(bps=10),
        spending=rule,
        cash_flows=contrib,
    )
    v = res.values.to_numpy()
    for i in range(1, len(rets)):
        trailing = v[max(0, i - window) : i].mean()
        expected = -0.05 / 12 * trailing + (40_000.0 if i == 10 else 0.0)
        assert res.cash_flows.iloc[i] == pytest.approx(expected, rel=1e-12), i
    assert res.cash_flows.iloc[0] == 0.0
    assert res.cash_flows.iloc[1] == pytest.approx(-0.05 / 12 * V0)
    # spending leaves the returns alone
    plain = backtest(rets, TARGET, policy=Calendar(3), costs=CostModel(bps=10))
    np.testing.assert_allclose(res.returns, plain.returns, atol=1e-6)


def test_spending_at_zero_rate_changes_nothing(rets):
    a = backtest(rets, TARGET, policy=BuyAndHold(), spending=SpendingRule(0.0))
    b = backtest(rets, TARGET, policy=BuyAndHold())
    pd.testing.assert_series_equal(a.values, b.values)
    assert (a.cash_flows == 0).all()


# ----------------------------------------------------------------------------- drawdown


def crash_and_recovery() -> pd.DataFrame:
    idx = pd.date_range("2001-01-31", periods=12, freq="ME")
    risky = [0.0, -0.15, -0.15, -0.10, 0.30, 0.30, 0.30, 0.30, 0.30, 0.05, -0.02, 0.04]
    return pd.DataFrame({"RISKY": risky, "SAFE": 0.0}, index=idx)


def hand_drawdown(r: pd.DataFrame, target, defensive, threshold, recover):
    """Buy and hold with the drawdown switch, by hand: positions of de- and re-risking."""
    w = target.copy()
    value = peak = 1.0
    on = False
    switches = []
    for i in range(1, len(r)):
        growth = w * (1.0 + r.to_numpy()[i])
        value *= growth.sum()
        w = growth / growth.sum()
        peak = max(peak, value)
        fall = 1.0 - value / peak
        if not on and fall >= threshold:
            on, w = True, defensive.copy()
            switches.append(("de", i))
        elif on and fall <= recover:
            on, w = False, target.copy()
            switches.append(("re", i))
    return switches


@pytest.mark.parametrize("policy", [BuyAndHold(), Calendar(12)], ids=str)
def test_drawdown_rule_derisks_after_the_fall_and_rerisks_after_recovery(policy):
    r = crash_and_recovery()
    target = pd.Series({"RISKY": 0.8, "SAFE": 0.2})
    defensive = pd.Series({"RISKY": 0.2, "SAFE": 0.8})
    rule = DrawdownRule(threshold=0.2, defensive=defensive, recover=0.05)
    switches = hand_drawdown(r, target.to_numpy(), defensive.to_numpy(), 0.2, 0.05)
    # -12% then -11.6%: the second month crosses 20% from the peak; the rally recovers
    assert switches == [("de", 2), ("re", 7)]
    res = backtest(r, target, policy=policy, drawdown_rule=rule)
    assert traded_positions(res) == [2, 7]
    np.testing.assert_allclose(res.weights.iloc[2], defensive, atol=1e-6)
    np.testing.assert_allclose(res.weights.iloc[7], target, atol=1e-6)
    # in between the defensive book drifts; it is never sent back to the target early
    assert res.weights["RISKY"].iloc[3:7].max() < 0.5
    assert len(res.notes) == 2
    assert "de-risked" in res.notes[0] and str(r.index[2].date()) in res.notes[0]
    assert "re-risked" in res.notes[1] and str(r.index[7].date()) in res.notes[1]
    # the defensive book lost less in the crash's last month than the target would have
    assert res.returns.iloc[2] > float(target @ r.iloc[3])


def test_drawdown_rule_that_never_triggers_changes_nothing(rets):
    rule = DrawdownRule(threshold=0.9, defensive=pd.Series({"BOND": 1.0}))
    a = backtest(rets, TARGET, policy=Calendar(3), drawdown_rule=rule)
    b = backtest(rets, TARGET, policy=Calendar(3))
    pd.testing.assert_series_equal(a.values, b.values)
    assert a.notes == ()


# ----------------------------------------------------------------------------- take profit


def steady_rally(periods: int = 8) -> pd.DataFrame:
    idx = pd.date_range("2002-01-31", periods=periods, freq="ME")
    return pd.DataFrame({"RISKY": [0.0] + [0.10] * (periods - 1), "SAFE": 0.0}, index=idx)


def test_take_profit_rebalances_to_target_after_the_gain_and_restarts():
    # 50/50 with RISKY +10% a period: the gain after k periods is 0.5 * 1.1**k - 0.5,
    # 5%, 10.5%, 16.55%: the third crosses 15%, so the rule fires at 3, then again at 6
    r = steady_rally()
    target = pd.Series({"RISKY": 0.5, "SAFE": 0.5})
    assert [0.5 * 1.1**k - 0.5 >= 0.15 for k in (1, 2, 3)] == [False, False, True]
    res = backtest(r, target, policy=BuyAndHold(), take_profit=TakeProfitRule(0.15))
    assert traded_positions(res) == [3, 6]
    for i in (3, 6):
        np.testing.assert_allclose(res.weights.iloc[i], target, atol=1e-6)
    np.testing.assert_allclose(res.values.iloc[3], V0 * (0.5 * 1.1**3 + 0.5), rtol=1e-9)
    assert len(res.notes) == 2
    assert res.notes[0] == (
        f"{r.index[3].date()}: gain 16.5% since {r.index[0].date()}, took profits to the target"
    )
    assert f"since {r.index[3].date()}" in res.notes[1]
    # without the rule buy-and-hold never trades
    assert traded_positions(backtest(r, target, policy=BuyAndHold())) == []


def hand_take_profit(r: pd.DataFrame, target, safer, threshold, reset):
    """Buy and hold with the take-profit switch, by hand: positions of de- and re-risking."""
    w = target.copy()
    growth = ref = 1.0
    on = False
    switches = []
    for i in range(1, len(r)):
        moved = w * (1.0 + r.to_numpy()[i])
        growth *= moved.sum()
        w = moved / moved.sum()
        gain = growth / ref - 1.0
        if not on and gain >= threshold:
            on, w = True, safer.copy()
            switches.append(("de", i))
        elif on and gain <= reset:
            on, w, ref = False, target.copy(), growth
            switches.append(("re", i))
    return switches


@pytest.mark.parametrize("policy", [BuyAndHold(), Calendar(12)], ids=str)
def test_take_profit_moves_to_safer_weights_and_rerisks_when_the_gain_is_given_back(policy):
    idx = pd.date_range("2003-01-31", periods=10, freq="ME")
    risky = [0.0, 0.10, 0.10, 0.10, -0.50, -0.50, -0.50, 0.05, 0.05, 0.05]
    r = pd.DataFrame({"RISKY": risky, "SAFE": 0.0}, index=idx)
    target = pd.Series({"RISKY": 0.8, "SAFE": 0.2})
    safer = pd.Series({"RISKY": 0.2, "SAFE": 0.8})
    switches = hand_take_profit(r, target.to_numpy(), safer.to_numpy(), 0.2, 0.05)
    # 8%, 16.8%, 26.5% (fires); in the safer book 13.8%, 7.5%, 4.3% (back under 5%)
    assert switches == [("de", 3), ("re", 6)]
    rule = TakeProfitRule(threshold=0.2, safer=safer, reset=0.05)
    res = backtest(r, target, policy=policy, take_profit=rule)
    assert traded_positions(res) == [3, 6]
    np.testing.assert_allclose(res.weights.iloc[3], safer, atol=1e-6)
    np.testing.assert_allclose(res.weights.iloc[6], target, atol=1e-6)
    assert res.values.iloc[6] == pytest.approx(V0 * 1.2648 * (0.025 + 0.8), rel=1e-6)
    assert ["safer weights" in res.notes[0], "re-risked" in res.notes[1]] == [True, True]
    assert str(idx[3].date()) in res.notes[0] and str(idx[6].date()) in res.notes[1]


def test_take_profit_has_no_look_ahead():
    r = make_returns(seed=4)
    rule = TakeProfitRule(0.04, safer=pd.Series({"BOND": 1.0}), reset=0.01)
    base = backtest(r, TARGET, policy=BuyAndHold(), take_profit=rule)
    cut = 10
    assert traded_positions(base) == [5, 8, 13, 17, 19]  # the rule fires on both sides
    future = r.copy()
    future.iloc[cut + 1 :] = -future.iloc[cut + 1 :] * 3
    alt = backtest(future, TARGET, policy=BuyAndHold(), take_profit=rule)
    assert traded_positions(alt) != traded_positions(base)
    pd.testing.assert_series_equal(base.values.iloc[: cut + 1], alt.values.iloc[: cut + 1])
    pd.testing.assert_frame_equal(base.trades.iloc[: cut + 1], alt.trades.iloc[: cut + 1])
    upto = r.index[cut].date().isoformat()
    assert [n for n in base.notes if n[:10] <= upto] == [n for n in alt.notes if n[:10] <= upto]


def test_take_profit_ignores_cash_flows():
    r = steady_rally()
    target = pd.Series({"RISKY": 0.5, "SAFE": 0.5})
    flows = pd.Series({r.index[1]: 0.5 * V0})  # a 50% contribution is not a gain
    res = backtest(
        r, target, policy=BuyAndHold(), cash_flows=flows, take_profit=TakeProfitRule(0.15)
    )
    assert traded_positions(res) == [3, 6]


def test_take_profit_waits_while_the_drawdown_rule_is_defensive():
    r = crash_and_recovery()
    target = pd.Series({"RISKY": 0.8, "SAFE": 0.2})
    defensive = pd.Series({"RISKY": 0.2, "SAFE": 0.8})
    dd = DrawdownRule(threshold=0.2, defensive=defensive, recover=0.05)
    rule = TakeProfitRule(0.25)
    # alone, the take-profit rule fires in the rally (34.3% since the start at 6)
    alone = backtest(r, target, policy=BuyAndHold(), take_profit=rule)
    assert traded_positions(alone) == [6, 8]
    # with the drawdown rule: defensive from 2 to 7, and the re-risk at 7 is a trade to the
    # target, so the gain restarts there: 30% then 5% on 80% RISKY is 29.2% at 9
    res = backtest(r, target, policy=BuyAndHold(), drawdown_rule=dd, take_profit=rule)
    assert traded_positions(res) == [2, 7, 9]
    assert res.notes[2] == (
        f"{r.index[9].date()}: gain 29.2% since {r.index[7].date()}, took profits to the target"
    )


def test_take_profit_rule_that_never_triggers_changes_nothing(rets):
    rule = TakeProfitRule(threshold=5.0, safer=pd.Series({"BOND": 1.0}))
    a = backtest(rets, TARGET, policy=Calendar(3), take_profit=rule)
    b = backtest(rets, TARGET, policy=Calendar(3))
    pd.testing.assert_series_equal(a.values, b.values)
    assert a.notes == ()


def test_take_profit_safer_weights_are_checked(rets):
    rule = TakeProfitRule(0.1, safer=pd.Series({"BOND": 0.5}))
    with pytest.raises(InputError, match=r"TakeProfitRule safer: .*sum to 1 \(they sum to 0\.5\)"):
        backtest(rets, TARGET, take_profit=rule)
    rule = TakeProfitRule(0.1, safer=pd.Series({"GOLD": 1.0}))
    with pytest.raises(InputError, match="TakeProfitRule safer: .*not in the returns: GOLD"):
        backtest(rets, TARGET, take_profit=rule)


# ----------------------------------------------------------------------------- metrics


R = pd.Series([0.10, -0.20, 0.05, 0.15])
B = pd.Series([0.08, -0.18, 0.05, 0.10])


def test_metrics_known_answers_on_a_hand_series():
    m = metrics(R, periods_per_year=4, alpha=0.75)
    # growth 1.1 * 0.8 * 1.05 * 1.15 = 1.0626 over one year
    assert m["cagr"] == pytest.approx(0.0626, rel=1e-12)
    # mean 0.025, squared deviations .005625 + .050625 + .000625 + .015625 = .0725
    vol = math.sqrt(0.0725 / 3) * 2
    assert m["volatility"] == pytest.approx(vol, rel=1e-12)
    assert m["sharpe"] == pytest.approx(0.1 / vol, rel=1e-12)
    # downside deviation: sqrt(0.2^2 / 4) * 2 = 0.2
    assert m["sortino"] == pytest.approx(0.5, rel=1e-12)
    # wealth 1.1, 0.88, ...: the trough is 20% below the peak
    assert m["max_drawdown"] == pytest.approx(0.2, rel=1e-12)
    assert m["calmar"] == pytest.approx(0.0626 / 0.2, rel=1e-12)
    # one loss in the 25% tail of four observations
    assert m["var"] == pytest.approx(0.2)
    assert m["cvar"] == pytest.approx(0.2)
    assert "tracking_error" not in m


def test_metrics_var_cvar_tail_and_float_rounding():
    m = metrics(R, periods_per_year=4, alpha=0.5)
    # losses sorted: 0.20, -0.05, -0.10, -0.15; two in the tail
    assert m["var"] == pytest.approx(-0.05)
    assert m["cvar"] == pytest.approx(0.075)
    # 20 * (1 - 0.95) is 1.0000000000000009 in floating point: the tail is still one
    s = pd.Series(np.linspace(-0.10, 0.09, 20))
    m = metrics(s, periods_per_year=12)
    assert m["var"] == pytest.approx(0.10)
    assert m["cvar"] == pytest.approx(0.10)
    s100 = pd.Series(np.linspace(-0.10, 0.098, 100))
    m = metrics(s100, periods_per_year=12)
    assert m["cvar"] == pytest.approx(np.mean([0.10, 0.098, 0.096, 0.094, 0.092]))


def test_metrics_sharpe_sortino_with_risk_free_rate():
    rf = 1.01**4 - 1.0  # 1% a quarter
    m = metrics(R, periods_per_year=4, risk_free_rate=rf)
    vol = math.sqrt(0.0725 / 3) * 2
    assert m["sharpe"] == pytest.approx(0.015 * 4 / vol, rel=1e-9)
    # excess returns .09, -.21, .04, .14: downside deviation sqrt(.21^2 / 4) * 2 = .21
    assert m["sortino"] == pytest.approx(0.06 / 0.21, rel=1e-9)
    assert m["cagr"] == pytest.approx(0.0626, rel=1e-12)  # unaffected


def test_metrics_tracking_error_and_information_ratio():
    m = metrics(R, periods_per_year=4, benchmark=B)
    # active .02, -.02, 0, .05: mean .0125, squared deviations sum .002675
    te = math.sqrt(0.002675 / 3) * 2
    assert m["tracking_error"] == pytest.approx(te, rel=1e-12)
    assert m["information_ratio"] == pytest.approx(0.0125 * 4 / te, rel=1e-12)
    same = metrics(R, periods_per_year=4, benchmark=R)
    assert same["tracking_error"] == 0.0
    assert math.isnan(same["information_ratio"])


def test_metrics_without_a_drawdown():
    m = metrics(pd.Series([0.01, 0.02, 0.01]), periods_per_year=12)
    assert m["max_drawdown"] == 0.0
    assert math.isnan(m["calmar"])
    assert math.isnan(m["sortino"])


def test_backtest_metrics_are_those_of_its_returns(rets):
    res = backtest(rets, TARGET, policy=Calendar(3), costs=CostModel(bps=10), risk_free_rate=0.02)
    ref = metrics(
        res.returns, periods_per_year=12, benchmark=res.benchmark_returns, risk_free_rate=0.02
    )
    for key, value in ref.items():
        assert res.metrics[key] == pytest.approx(value, rel=1e-12), key
    assert res.metrics["final_value"] == res.values.iloc[-1]
    assert res.metrics["tracking_error"] > 0
    assert {"rebalances", "total_costs", "turnover", "calmar", "var", "cvar"} <= set(res.metrics)


# ----------------------------------------------------------------------------- compare


def test_compare_side_by_side_with_the_rebalancing_bonus(rets):
    policies = [BuyAndHold(), Calendar(1), Calendar(6), Threshold(0.03), Hybrid(3, 0.02)]
    results = {p.name: backtest(rets, TARGET, policy=p, costs=CostModel(bps=10)) for p in policies}
    table = compare(results)
    assert list(table.index) == [p.name for p in policies]
    bh = results["buy and hold"].metrics
    for name, res in results.items():
        assert table.loc[name, "cagr"] == pytest.approx(res.metrics["cagr"])
        assert table.loc[name, "rebalances"] == res.metrics["rebalances"]
        assert table.loc[name, "rebalancing_bonus"] == pytest.approx(
            res.metrics["cagr"] - bh["cagr"], abs=1e-15
        )
        assert table.loc[name, "value_vs_buy_and_hold"] == pytest.approx(
            res.metrics["final_value"] - bh["final_value"]
        )
    assert table.loc["buy and hold", "rebalancing_bonus"] == 0.0
    # a list works too, rows named by policy
    listed = compare(list(results.values()))
    pd.testing.assert_frame_equal(listed, table)


def test_compare_without_buy_and_hold_has_no_bonus(rets):
    results = [backtest(rets, TARGET, policy=p) for p in (Calendar(1), Calendar(3))]
    table = compare(results)
    assert list(table.index) == ["calendar every 1", "calendar every 3"]
    assert "rebalancing_bonus" not in table.columns


# ----------------------------------------------------------------------------- errors


def test_bad_inputs_are_rejected_with_clear_messages(rets):
    d = rets.index
    with pytest.raises(InputError, match="unknown policy 'monthly'"):
        backtest(rets, TARGET, policy="monthly")
    with pytest.raises(InputError, match=r"sum to 1 \(they sum to 0\.9\)"):
        backtest(rets, TARGET * 0.9)
    with pytest.raises(InputError, match="non-negative"):
        backtest(rets, pd.Series({"EQ": 1.2, "BOND": -0.2}))
    with pytest.raises(InputError, match="target names assets not in the returns: GOLD"):
        backtest(rets, pd.Series({"EQ": 0.5, "GOLD": 0.5}))
    with pytest.raises(InputError, match="allocate must give a pandas Series"):
        backtest(rets, lambda h: [0.5, 0.3, 0.2])
    later = str(d[3].date())

    def breaks_later(h):
        return TARGET if len(h) < 4 else TARGET * 2

    with pytest.raises(InputError, match=f"target weights at {later}.*sum to 2"):
        backtest(rets, breaks_later)
    with pytest.raises(InputError, match="cash_flows has dates not in the returns: 1999-12-31"):
        backtest(rets, TARGET, cash_flows=pd.Series({pd.Timestamp("1999-12-31"): 1.0}))
    with pytest.raises(InputError, match="cash_flows must be finite"):
        backtest(rets, TARGET, cash_flows=pd.Series({d[2]: float("nan")}))
    with pytest.raises(InputError, match=f"cash flows at {d[4].date()} exceed the portfolio"):
        backtest(rets, TARGET, cash_flows=pd.Series({d[4]: -5 * V0}))
    with pytest.raises(InputError, match=f"cash flows at {d[0].date()} exceed"):
        backtest(rets, TARGET, cash_flows=pd.Series({d[0]: -V0}))
    with pytest.raises(InputError, match="exceed the portfolio value"):
        # spending plus a withdrawal that together take everything
        backtest(rets, TARGET, spending=SpendingRule(0.5, 1), cash_flows=pd.Series({d[1]: -V0}))
    with pytest.raises(InputError, match="initial_value must be positive"):
        backtest(rets, TARGET, initial_value=0.0)
    with pytest.raises(InputError, match="Threshold band missing for BOND, ALT"):
        backtest(rets, TARGET, policy=Threshold({"EQ": 0.05}))
    with pytest.raises(InputError, match="sum to 1"):
        backtest(rets, TARGET, drawdown_rule=DrawdownRule(0.2, pd.Series({"BOND": 0.5})))
    with pytest.raises(InputError, match="at least 2"):
        backtest(rets.iloc[:1], TARGET)
    holes = rets.copy()
    holes.iloc[5, 1] = np.nan
    with pytest.raises(InputError, match="NaN or inf values for assets: BOND"):
        backtest(holes, TARGET)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Calendar(0), "Calendar every must be at least 1, got 0"),
        (lambda: Hybrid(0, 0.05), "Hybrid every must be at least 1"),
        (lambda: Hybrid(3, -0.01), "Hybrid band must be a non-negative number"),
        (lambda: Optimized(every=0), "Optimized every must be at least 1"),
        (lambda: Optimized(every=1.5), "Optimized every must be a whole number, got 1.5"),
        (lambda: Threshold(-0.05), "Threshold band must be a non-negative number"),
        (lambda: Threshold({"EQ": float("nan")}), "Threshold band must be a non-negative"),
        (lambda: SpendingRule(rate=1.0), r"SpendingRule rate must be in \[0, 1\), got 1.0"),
        (lambda: SpendingRule(rate=-0.01), r"SpendingRule rate must be in \[0, 1\)"),
        (lambda: SpendingRule(rate=0.04, window=0), "SpendingRule window must be at least 1"),
        (lambda: DrawdownRule(0.0, TARGET), r"DrawdownRule threshold must be in \(0, 1\)"),
        (lambda: DrawdownRule(1.0, TARGET), r"DrawdownRule threshold must be in \(0, 1\)"),
        (lambda: DrawdownRule(0.2, TARGET, recover=0.2), r"recover must be in \[0, threshold\)"),
        (lambda: DrawdownRule(0.2, TARGET, recover=-0.1), r"recover must be in \[0, threshold\)"),
        (
            lambda: TakeProfitRule(0.0),
            "TakeProfitRule threshold must be a positive finite number, got 0.0",
        ),
        (lambda: TakeProfitRule("10%"), "TakeProfitRule threshold must be a positive number"),
        (lambda: TakeProfitRule(float("inf")), "TakeProfitRule threshold must be a positive"),
        (
            lambda: TakeProfitRule(0.2, TARGET, reset=0.2),
            r"TakeProfitRule reset must be in \[0, threshold 0.2\), got 0.2",
        ),
        (lambda: TakeProfitRule(0.2, reset=-0.1), r"reset must be in \[0, threshold 0.2\)"),
    ],
)
def test_rule_and_policy_validation(make, message):
    with pytest.raises(InputError, match=message):
        make()


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def industry_runs(french_industries):
    r = french_industries.loc["1970":"2017"]
    target = pd.Series(1.0 / 12, index=r.columns)
    policies = [
        BuyAndHold(),
        Calendar(1),
        Calendar(3),
        Calendar(12),
        Threshold(0.02),
        Hybrid(3, 0.02),
        Optimized(),
    ]
    costs = CostModel(bps=10)
    return r, {p.name: backtest(r, target, policy=p, costs=costs) for p in policies}


def test_real_data_every_policy_runs(industry_runs):
    r, runs = industry_runs
    assert r.index[0].year == 1970 and r.index[-1].year == 2017 and len(r) > 550
    for name, res in runs.items():
        assert res.values.index.equals(r.index), name
        assert np.isfinite(res.values).all() and (res.values > 0).all(), name
        for key in ("cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar"):
            assert math.isfinite(res.metrics[key]), (name, key)
        assert 0.05 < res.metrics["cagr"] < 0.2, name
        assert 0.2 < res.metrics["max_drawdown"] < 0.7, name  # 1973-74, 2008-09
        if name != "buy and hold":
            assert res.metrics["total_costs"] > 0, name
            assert res.metrics["total_costs"] == pytest.approx(res.costs.sum()), name


def test_real_data_turnover_ordering(industry_runs):
    _, runs = industry_runs
    turnover = {name: res.metrics["turnover"] for name, res in runs.items()}
    assert runs["buy and hold"].metrics["rebalances"] == 0
    assert turnover["buy and hold"] == 0.0
    assert max(turnover, key=turnover.get) == "calendar every 1"
    assert turnover["optimized every 1"] < turnover["calendar every 1"]
    assert (
        turnover["calendar every 12"] < turnover["calendar every 3"] < turnover["calendar every 1"]
    )
    assert runs["calendar every 1"].metrics["tracking_error"] < 1e-3
    assert runs["calendar every 1"].metrics["total_costs"] == max(
        res.metrics["total_costs"] for res in runs.values()
    )


def test_real_data_compare_table(industry_runs):
    _, runs = industry_runs
    table = compare(runs)
    assert list(table.index) == list(runs)
    assert table.loc["buy and hold", "rebalancing_bonus"] == 0.0
    np.testing.assert_allclose(
        table["rebalancing_bonus"], table["cagr"] - table.loc["buy and hold", "cagr"]
    )
    assert {"tracking_error", "information_ratio", "var", "cvar", "turnover"} <= set(table.columns)


def test_compare_finds_buy_and_hold_by_kind_not_name() -> None:
    idx = pd.date_range("2020-01-31", periods=24, freq="ME")
    rng = np.random.default_rng(3)
    rets = pd.DataFrame(rng.normal(0.005, 0.04, (24, 2)), index=idx, columns=["A", "B"])
    target = pd.Series({"A": 0.5, "B": 0.5})
    hold = backtest(rets, target, policy=BuyAndHold(name="hold"))
    monthly = backtest(rets, target, policy=Calendar(1))
    table = compare([hold, monthly])
    assert table.loc["hold", "rebalancing_bonus"] == 0.0
    expected = monthly.metrics["cagr"] - hold.metrics["cagr"]
    assert table.loc[monthly.policy, "rebalancing_bonus"] == pytest.approx(expected)


def test_threshold_bands_by_tag_with_an_asset_override() -> None:
    from optimizer.universe import Universe

    idx = pd.date_range("2020-01-31", periods=36, freq="ME")
    rng = np.random.default_rng(11)
    rets = pd.DataFrame(rng.normal(0.005, 0.05, (36, 3)), index=idx, columns=["US", "EU", "BD"])
    uni = Universe(["US", "EU", "BD"], tags={"US": ["equity"], "EU": ["equity"], "BD": ["bonds"]})
    pol = Threshold(band={"equity": 0.02, "bonds": 0.5, "EU": 0.3})
    assert pol.bands(rets.columns, uni).tolist() == [0.02, 0.3, 0.5]
    target = pd.Series({"US": 0.4, "EU": 0.3, "BD": 0.3})
    tagged = backtest(rets, target, policy=pol, universe=uni)
    by_asset = backtest(rets, target, policy=Threshold(band={"US": 0.02, "EU": 0.3, "BD": 0.5}))
    pd.testing.assert_series_equal(tagged.values, by_asset.values)
    with pytest.raises(InputError, match="neither an asset nor a tag"):
        backtest(rets, target, policy=Threshold(band={"equity": 0.02}))
    with pytest.raises(InputError, match="band missing for BD"):
        Threshold(band={"equity": 0.02}).bands(rets.columns, uni)
