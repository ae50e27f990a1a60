"""Historical windows replayed from data (worst window, named window) and correlation stress."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optimizer.errors import InputError
from scenarios import stress

ASSETS = ["A", "B", "C", "D"]


def _random_returns(seed: int, n_periods: int = 120, assets: list[str] = ASSETS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2000-01-31", periods=n_periods, freq="ME")
    return pd.DataFrame(rng.normal(0.005, 0.06, (n_periods, len(assets))), dates, assets)


def _hand_value(w: pd.Series, block: pd.DataFrame, rebalance: bool) -> float:
    """Plain-loop end value of 1 invested over ``block`` (uninvested weight earns 0)."""
    if rebalance:
        v = 1.0
        for _, row in block.iterrows():
            v *= 1.0 + sum(w[a] * row[a] for a in w.index)
        return v
    v = 1.0 - w.sum()
    for a in w.index:
        g = 1.0
        for x in block[a]:
            g *= 1.0 + x
        v += w[a] * g
    return v


def _brute_worst(w: pd.Series, r: pd.DataFrame, periods: int, rebalance: bool) -> tuple[int, float]:
    best_s, best = -1, math.inf
    for s in range(len(r) - periods + 1):
        ret = _hand_value(w, r.iloc[s : s + periods], rebalance) - 1.0
        if ret < best:
            best_s, best = s, ret
    return best_s, best


# ============================================================================ real data


def test_worst_year_of_equal_weighted_french_industries_is_the_2008_crash(
    french_industries: pd.DataFrame,
) -> None:
    w = pd.Series(1.0 / 12, index=french_industries.columns)
    h = stress.worst_window(w, french_industries, periods=12)
    # What the data (1949-2017) says: March 2008 to February 2009, about -41.9%
    # buy-and-hold; the runner-up is October 1973 to September 1974 (about -40.3%).
    assert (h.start, h.end) == (pd.Timestamp("2008-03-01"), pd.Timestamp("2009-02-01"))
    assert h.portfolio_return == pytest.approx(-0.4194, abs=5e-4)
    assert len(h.path) == 12 and h.path.iloc[-1] == pytest.approx(1.0 + h.portfolio_return)
    assert h.contributions.sum() == pytest.approx(h.portfolio_return, abs=1e-12)
    assert (h.asset_returns < 0).all()  # every industry fell

    before_2007 = french_industries.loc[:"2006-12"]
    h74 = stress.worst_window(w, before_2007, periods=12)
    assert (h74.start, h74.end) == (pd.Timestamp("1973-10-01"), pd.Timestamp("1974-09-01"))
    assert h74.portfolio_return == pytest.approx(-0.4034, abs=5e-4)

    hr = stress.worst_window(w, french_industries, periods=12, rebalance=True)
    assert hr.end == pd.Timestamp("2009-02-01")
    assert hr.portfolio_return == pytest.approx(-0.4281, abs=5e-4)


def test_replay_of_a_named_window_on_real_data(french_industries: pd.DataFrame) -> None:
    w = pd.Series(1.0 / 12, index=french_industries.columns)
    h = stress.replay(w, french_industries, "2008-09", "2009-02", name="GFC")
    block = french_industries.loc["2008-09-01":"2009-02-01"]
    assert h.name == "GFC" and len(h.path) == 6
    assert (h.start, h.end) == (block.index[0], block.index[-1])
    assert h.portfolio_return == pytest.approx(_hand_value(w, block, False) - 1.0, abs=1e-12)
    pd.testing.assert_series_equal(h.asset_returns, (1.0 + block).prod() - 1.0, check_names=False)


# ============================================================================ worst window


@pytest.mark.parametrize("rebalance", [False, True])
@pytest.mark.parametrize("periods", [1, 5, 12, 60])
def test_vectorized_worst_window_equals_a_brute_force_loop(periods: int, rebalance: bool) -> None:
    r = _random_returns(periods)
    w = pd.Series([0.4, 0.3, -0.1, 0.25], index=ASSETS)  # a short and 15% uninvested
    h = stress.worst_window(w, r, periods=periods, rebalance=rebalance)
    s, ret = _brute_worst(w, r, periods, rebalance)
    assert h.start == r.index[s] and h.end == r.index[s + periods - 1]
    assert h.portfolio_return == pytest.approx(ret, abs=1e-12)
    assert h.contributions.sum() == pytest.approx(h.portfolio_return, abs=1e-12)
    assert h.rebalance is rebalance


def test_rebalanced_and_buy_and_hold_differ_and_each_matches_a_hand_loop() -> None:
    r = _random_returns(7, n_periods=60)
    w = pd.Series([0.25, 0.25, 0.25, 0.25], index=ASSETS)
    block = r.iloc[10:34]
    hold = stress.replay(w, r, block.index[0], block.index[-1])
    reb = stress.replay(w, r, block.index[0], block.index[-1], rebalance=True)
    assert hold.portfolio_return != pytest.approx(reb.portfolio_return, abs=1e-6)
    assert hold.portfolio_return == pytest.approx(_hand_value(w, block, False) - 1.0, abs=1e-12)
    assert reb.portfolio_return == pytest.approx(_hand_value(w, block, True) - 1.0, abs=1e-12)
    # the paths, period by period
    for k in range(len(block)):
        assert hold.path.iloc[k] == pytest.approx(_hand_value(w, block.iloc[: k + 1], False))
        assert reb.path.iloc[k] == pytest.approx(_hand_value(w, block.iloc[: k + 1], True))
    # buy-and-hold contributions are weight times the asset's compounded return
    pd.testing.assert_series_equal(hold.contributions, w * hold.asset_returns)
    assert reb.contributions.sum() == pytest.approx(reb.portfolio_return, abs=1e-12)
    pd.testing.assert_series_equal(hold.asset_returns, reb.asset_returns)


def test_rebalancing_harvests_a_round_trip_that_buy_and_hold_does_not() -> None:
    dates = pd.date_range("2020-01-31", periods=2, freq="ME")
    r = pd.DataFrame({"A": [1.0, -0.5], "B": [0.0, 0.0]}, index=dates)
    w = pd.Series({"A": 0.5, "B": 0.5})
    hold = stress.replay(w, r, dates[0], dates[-1])
    reb = stress.replay(w, r, dates[0], dates[-1], rebalance=True)
    assert hold.portfolio_return == pytest.approx(0.0, abs=1e-15)  # A is back where it started
    assert reb.portfolio_return == pytest.approx(1.5 * 0.75 - 1.0)  # +12.5%
    assert list(reb.path) == pytest.approx([1.5, 1.125])
    assert list(hold.path) == pytest.approx([1.5, 1.0])
    # rebalanced: A earns 0.5 * 1.0 on 1, then loses 0.5 * 0.5 on 1.5
    assert reb.contributions.to_dict() == pytest.approx({"A": 0.5 - 0.375, "B": 0.0})


def test_a_minus_100_percent_period_is_handled_exactly() -> None:
    r = _random_returns(3, n_periods=30)
    r.iloc[12, 0] = -1.0  # asset A is wiped out
    w = pd.Series([0.5, 0.5, 0.0, 0.0], index=ASSETS)
    for rebalance in (False, True):
        h = stress.worst_window(w, r, periods=6, rebalance=rebalance)
        s, ret = _brute_worst(w, r, 6, rebalance)
        assert h.start == r.index[s]
        assert h.portfolio_return == pytest.approx(ret, abs=1e-12)
    assert stress.worst_window(w, r, periods=6).asset_returns["A"] == -1.0


def test_leveraged_periods_below_minus_100_percent_keep_their_sign() -> None:
    r = _random_returns(4, n_periods=40) * 4.0  # some periods below -100% at 3x leverage
    w = pd.Series([3.0, 0.0, 0.0, -2.0], index=ASSETS)
    assert (1.0 + r.to_numpy() @ w.to_numpy() < 0).any()
    for periods in (1, 3, 7):
        for rebalance in (False, True):
            h = stress.worst_window(w, r, periods=periods, rebalance=rebalance)
            s, ret = _brute_worst(w, r, periods, rebalance)
            assert h.start == r.index[s]
            assert h.portfolio_return == pytest.approx(ret, rel=1e-10, abs=1e-12)


def test_extra_columns_are_ignored_and_the_weight_order_is_kept() -> None:
    r = _random_returns(11)
    w = pd.Series({"C": 0.5, "A": 0.5})
    h = stress.worst_window(w, r, periods=6)
    assert list(h.contributions.index) == ["C", "A"]
    assert h.portfolio_return == pytest.approx(_brute_worst(w, r[["C", "A"]], 6, False)[1])


def test_whole_history_window_and_to_dict() -> None:
    r = _random_returns(5, n_periods=24)
    w = pd.Series(0.25, index=ASSETS)
    h = stress.worst_window(w, r, periods=24)
    assert (h.start, h.end) == (r.index[0], r.index[-1])
    d = h.to_dict()
    assert d["name"] == "worst 24-period window" and d["periods"] == 24
    assert d["portfolio_return"] == h.portfolio_return and set(d["contributions"]) == set(ASSETS)


def test_worst_window_is_fast_on_800_months_of_12_assets() -> None:
    assets = [f"X{i}" for i in range(12)]
    r = _random_returns(0, n_periods=800, assets=assets)
    w = pd.Series(1.0 / 12, index=assets)
    t0 = time.perf_counter()
    for periods in (12, 36, 120):
        stress.worst_window(w, r, periods=periods)
        stress.worst_window(w, r, periods=periods, rebalance=True)
    assert time.perf_counter() - t0 < 1.0


# ============================================================================ history errors


def test_history_errors_name_the_fault() -> None:
    r = _random_returns(1, n_periods=24)
    w = pd.Series(0.25, index=ASSETS)
    with pytest.raises(InputError, match=r"returns have no column for asset\(s\): E, F"):
        stress.worst_window(pd.Series(0.25, index=["A", "E", "B", "F"]), r)
    with pytest.raises(InputError, match="window of 25 periods is longer than the history"):
        stress.worst_window(w, r, periods=25)
    with pytest.raises(InputError, match=r"\(24 periods\)"):
        stress.worst_window(w, r, periods=25)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InputError, match="periods must be an integer >= 1"):
            stress.worst_window(w, r, periods=bad)
    gappy = r.copy()
    gappy.iloc[5, 1] = np.nan
    gappy.iloc[9, 3] = np.inf
    with pytest.raises(
        InputError, match=r"NaN or infinite for asset\(s\): B, D \(first at 2000-06"
    ):
        stress.worst_window(w, gappy)
    # replay only checks its own window
    assert stress.replay(w, gappy, "2001-01", "2001-06").portfolio_return == pytest.approx(
        _hand_value(w, r.loc["2001-01":"2001-06"], False) - 1.0
    )
    with pytest.raises(InputError, match=r"asset\(s\): B"):
        stress.replay(w, gappy, "2000-01", "2000-12")
    with pytest.raises(InputError, match=r"weights are NaN or infinite for asset\(s\): C"):
        stress.worst_window(pd.Series([0.5, 0.5, np.nan, 0.0], index=ASSETS), r)
    with pytest.raises(InputError, match="weights must be a pandas Series"):
        stress.worst_window([0.25] * 4, r)
    with pytest.raises(InputError, match="returns must be a pandas DataFrame"):
        stress.worst_window(w, r.to_numpy())
    with pytest.raises(InputError, match="strictly increasing dates"):
        stress.worst_window(w, r.iloc[::-1])


def test_replay_errors() -> None:
    r = _random_returns(2, n_periods=24)  # 2000-01 .. 2001-12
    w = pd.Series(0.25, index=ASSETS)
    with pytest.raises(InputError, match=r"no returns between 2008-09 and 2009-02 \(history: 2000"):
        stress.replay(w, r, "2008-09", "2009-02")
    with pytest.raises(InputError, match="no returns between 2001-06 and 2001-01"):
        stress.replay(w, r, "2001-06", "2001-01")
    with pytest.raises(InputError, match="cannot select the window"):
        stress.replay(w, r, 3.5, "2001-01")


# ============================================================================ correlation


def _cov() -> tuple[pd.DataFrame, pd.Series]:
    vol = pd.Series({"EQ": 0.16, "BD": 0.05, "RE": 0.20, "CM": 0.25})
    corr = np.array(
        [
            [1.0, -0.2, 0.6, 0.3],
            [-0.2, 1.0, 0.1, -0.1],
            [0.6, 0.1, 1.0, 0.2],
            [0.3, -0.1, 0.2, 1.0],
        ]
    )
    cov = pd.DataFrame(corr * np.outer(vol, vol), vol.index, vol.index)
    return cov, vol


W_LONG = pd.Series({"EQ": 0.45, "BD": 0.35, "RE": 0.10, "CM": 0.10})


def test_intensity_zero_leaves_everything_unchanged() -> None:
    cov, _ = _cov()
    res = stress.correlation_stress(W_LONG, cov, intensity=0.0)
    np.testing.assert_allclose(res.covariance.to_numpy(), cov.to_numpy(), atol=1e-15)
    assert res.volatility_after == pytest.approx(res.volatility_before, rel=1e-12)
    assert res.loss_after == pytest.approx(res.loss_before, rel=1e-12)
    assert not res.repaired


def test_full_correlation_gives_the_sum_of_weighted_volatilities() -> None:
    cov, vol = _cov()
    res = stress.correlation_stress(W_LONG, cov)  # intensity 1, target 1
    assert res.volatility_after == pytest.approx(float((W_LONG * vol).sum()), rel=1e-12)
    np.testing.assert_allclose(res.correlation.to_numpy(), np.ones((4, 4)), atol=1e-12)
    # volatilities are kept
    np.testing.assert_allclose(np.diag(res.covariance), vol.to_numpy() ** 2, rtol=1e-12)
    before = math.sqrt(W_LONG @ cov @ W_LONG)
    assert res.volatility_before == pytest.approx(before, rel=1e-12)
    # Gaussian loss at 95% over a year, zero mean
    z = stats.norm.ppf(0.95)
    assert res.loss_before == pytest.approx(z * before, rel=1e-12)
    assert res.loss_after == pytest.approx(z * float((W_LONG * vol).sum()), rel=1e-12)


def test_volatility_rises_monotonically_with_intensity_for_long_only_weights() -> None:
    cov, _ = _cov()
    vols = [
        stress.correlation_stress(W_LONG, cov, intensity=k).volatility_after
        for k in np.linspace(0.0, 1.0, 11)
    ]
    assert all(b > a for a, b in zip(vols, vols[1:], strict=False))


def test_partial_stress_blends_correlations_linearly() -> None:
    cov, vol = _cov()
    res = stress.correlation_stress(W_LONG, cov, intensity=0.3, target_correlation=0.8)
    corr = cov.to_numpy() / np.outer(vol, vol)
    expected = 0.7 * corr + 0.3 * 0.8
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(res.correlation.to_numpy(), expected, atol=1e-12)
    assert not res.repaired


def test_loss_with_mean_and_horizon() -> None:
    cov, _ = _cov()
    mu = pd.Series({"EQ": 0.07, "BD": 0.03, "RE": 0.06, "CM": 0.04, "XX": 0.5})
    res = stress.correlation_stress(W_LONG, cov, alpha=0.99, horizon=2.0, mu=mu)
    mu_p = 0.45 * 0.07 + 0.35 * 0.03 + 0.10 * 0.06 + 0.10 * 0.04
    z = stats.norm.ppf(0.99)
    assert res.expected_return == pytest.approx(mu_p)
    for vol, loss in (
        (res.volatility_before, res.loss_before),
        (res.volatility_after, res.loss_after),
    ):
        assert loss == pytest.approx(-(mu_p * 2.0 - z * vol * math.sqrt(2.0)), rel=1e-12)
    assert res.loss_after > res.loss_before


def test_negative_target_is_repaired_to_a_psd_correlation_matrix() -> None:
    cov, vol = _cov()
    res = stress.correlation_stress(W_LONG, cov, target_correlation=-1.0)
    assert res.repaired  # all pairs at -1 is impossible for 4 assets
    corr = res.correlation.to_numpy()
    np.testing.assert_allclose(np.diag(corr), 1.0, atol=1e-12)
    np.testing.assert_allclose(corr, corr.T, atol=1e-15)
    assert np.linalg.eigvalsh(corr).min() >= -1e-10
    assert np.linalg.eigvalsh(res.covariance.to_numpy()).min() >= -1e-10
    np.testing.assert_allclose(np.diag(res.covariance), vol.to_numpy() ** 2, rtol=1e-12)
    # every stressed matrix on the way is PSD too
    for k in np.linspace(0.0, 1.0, 6):
        for target in (-1.0, -0.5, 0.0, 1.0):
            c = stress.correlation_stress(W_LONG, cov, intensity=k, target_correlation=target)
            assert np.linalg.eigvalsh(c.covariance.to_numpy()).min() >= -1e-10


def test_zero_variance_asset_and_unweighted_assets() -> None:
    cov, vol = _cov()
    cov["CASH"] = 0.0
    cov.loc["CASH"] = 0.0
    w = pd.Series({"EQ": 0.6, "CASH": 0.4})  # BD, RE, CM hold 0
    res = stress.correlation_stress(w, cov)
    assert res.volatility_after == pytest.approx(0.6 * vol["EQ"], rel=1e-12)
    assert res.correlation.loc["CASH", "EQ"] == 0.0 and res.correlation.loc["CASH", "CASH"] == 1.0
    assert (res.covariance["CASH"] == 0.0).all()
    assert res.to_dict()["volatility_after"] == res.volatility_after


def test_columns_in_another_order_are_aligned() -> None:
    cov, _ = _cov()
    a = stress.correlation_stress(W_LONG, cov, intensity=0.5)
    b = stress.correlation_stress(W_LONG, cov[["CM", "RE", "BD", "EQ"]], intensity=0.5)
    assert a.volatility_after == pytest.approx(b.volatility_after, rel=1e-12)


def test_correlation_stress_errors_name_the_fault() -> None:
    cov, _ = _cov()
    for bad in (-0.1, 1.5, np.nan):
        with pytest.raises(InputError, match=r"intensity must be in \[0.0, 1.0\]"):
            stress.correlation_stress(W_LONG, cov, intensity=bad)
    with pytest.raises(InputError, match=r"target_correlation must be in \[-1.0, 1.0\]"):
        stress.correlation_stress(W_LONG, cov, target_correlation=1.2)
    with pytest.raises(InputError, match=r"alpha must be in \(0.0, 1.0\)"):
        stress.correlation_stress(W_LONG, cov, alpha=1.0)
    with pytest.raises(InputError, match=r"horizon must be in \(0.0, inf\)"):
        stress.correlation_stress(W_LONG, cov, horizon=0.0)
    with pytest.raises(InputError, match="intensity must be a number"):
        stress.correlation_stress(W_LONG, cov, intensity="high")
    with pytest.raises(InputError, match=r"cov has no row for asset\(s\): GOLD"):
        stress.correlation_stress(pd.Series({"EQ": 0.5, "GOLD": 0.5}), cov)
    with pytest.raises(InputError, match=r"mu has no expected return for asset\(s\): RE, CM"):
        stress.correlation_stress(W_LONG, cov, mu=pd.Series({"EQ": 0.05, "BD": 0.02}))
    with pytest.raises(InputError, match=r"cov must be square, got shape \(4, 3\)"):
        stress.correlation_stress(W_LONG, cov.iloc[:, :3])
    asym = cov.copy()
    asym.iloc[0, 1] += 0.01
    with pytest.raises(InputError, match="cov is not symmetric"):
        stress.correlation_stress(W_LONG, asym)
    neg = cov.copy()
    neg.loc["BD", "BD"] = -0.01
    with pytest.raises(InputError, match=r"cov has negative variances for assets: BD"):
        stress.correlation_stress(W_LONG, neg)
    nan = cov.copy()
    nan.iloc[2, 2] = np.nan
    with pytest.raises(InputError, match=r"cov has NaN or inf values for assets: \w+ \(first at"):
        stress.correlation_stress(W_LONG, nan)
    with pytest.raises(InputError, match="cov must be a pandas DataFrame"):
        stress.correlation_stress(W_LONG, cov.to_numpy())
    with pytest.raises(InputError, match=r"weights are NaN or infinite for asset\(s\): EQ"):
        stress.correlation_stress(pd.Series({"EQ": np.inf}), cov)
