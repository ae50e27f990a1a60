"""Tests for scenarios.montecarlo: reproducibility, known answers, spending rules, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from scenarios.montecarlo import MonteCarloResult, simulate

ASSETS = ["EQ", "BOND", "ALT"]


@pytest.fixture
def inputs() -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    w = pd.Series([0.5, 0.3, 0.2], index=ASSETS)
    mu = pd.Series([0.07, 0.03, 0.05], index=ASSETS)
    vol = np.array([0.16, 0.05, 0.10])
    corr = np.array([[1.0, 0.2, 0.5], [0.2, 1.0, 0.1], [0.5, 0.1, 1.0]])
    cov = pd.DataFrame(np.outer(vol, vol) * corr, index=ASSETS, columns=ASSETS)
    return w, mu, cov


def _zero_cov() -> pd.DataFrame:
    return pd.DataFrame(0.0, index=ASSETS, columns=ASSETS)


def test_shapes_and_result_type(inputs):
    w, mu, cov = inputs
    res = simulate(w, mu, cov, years=7, paths=50, seed=1)
    assert isinstance(res, MonteCarloResult)
    assert res.values.shape == (50, 8)
    assert res.real_values.shape == (50, 8)
    assert res.spending.shape == (50, 7)
    assert np.all(res.values[:, 0] == 1.0)
    assert not res.values.flags.writeable
    d = res.to_dict()
    json.dumps(d)
    assert d["summary"]["mean_terminal_value"] == pytest.approx(res.values[:, -1].mean())
    assert len(d["value_percentiles"]["p50"]) == 8


def test_same_seed_identical_different_seed_differs(inputs):
    w, mu, cov = inputs
    for dist in ("normal", "student_t"):
        a = simulate(w, mu, cov, years=5, paths=200, seed=42, distribution=dist)
        b = simulate(w, mu, cov, years=5, paths=200, seed=42, distribution=dist)
        c = simulate(w, mu, cov, years=5, paths=200, seed=43, distribution=dist)
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.spending, b.spending)
        pd.testing.assert_series_equal(a.summary, b.summary)
        assert not np.array_equal(a.values, c.values)


def _analytic_check(res, w, mu, years, k=3.0):
    terminal = res.values[:, -1]
    expected = (1.0 + float(w @ mu)) ** years
    se = terminal.std(ddof=1) / np.sqrt(len(terminal))
    assert abs(terminal.mean() - expected) < k * se, (terminal.mean(), expected, se)


def test_mean_terminal_value_matches_analytic_normal(inputs):
    w, mu, cov = inputs
    years = 10
    res = simulate(w, mu, cov, years=years, paths=40_000, spending_rate=0.0, inflation=0.0, seed=7)
    _analytic_check(res, w, mu, years)
    # no inflation: real equals nominal
    np.testing.assert_allclose(res.real_values, res.values)


def test_student_t_keeps_mean_and_covariance(inputs):
    w, mu, cov = inputs
    res = simulate(
        w, mu, cov, years=10, paths=40_000, spending_rate=0.0, inflation=0.0,
        distribution="student_t", dof=5, seed=11,
    )  # fmt: skip
    _analytic_check(res, w, mu, 10, k=4.0)
    # one year: portfolio variance equals w' cov w after the sqrt((dof-2)/dof) scaling
    one = simulate(
        w, mu, cov, years=1, paths=200_000, spending_rate=0.0, inflation=0.0,
        distribution="student_t", dof=5, seed=3,
    )  # fmt: skip
    r = one.values[:, 1] - 1.0
    assert r.var() == pytest.approx(float(w @ cov @ w), rel=0.05)
    normal = simulate(w, mu, cov, years=1, paths=200_000, spending_rate=0.0, seed=3)
    rn = normal.values[:, 1] - 1.0
    # fatter tails than the normal at the same variance
    kurt = lambda x: np.mean((x - x.mean()) ** 4) / x.var() ** 2  # noqa: E731
    assert kurt(r) > kurt(rn) + 0.5


def test_bootstrap_annual_history_keeps_mean(inputs):
    w, _, _ = inputs
    rng = np.random.default_rng(0)
    hist = pd.DataFrame(rng.normal([0.07, 0.03, 0.05], [0.15, 0.05, 0.1], (30, 3)), columns=ASSETS)
    res = simulate(
        w, None, None, years=1, paths=50_000, spending_rate=0.0, inflation=0.0,
        distribution="bootstrap", history=hist, seed=5,
    )  # fmt: skip
    port = hist.to_numpy() @ w.to_numpy()
    r = res.values[:, 1] - 1.0
    # every simulated return is one of the historical years
    assert np.isin(np.round(r, 12), np.round(port, 12)).all()
    se = port.std() / np.sqrt(len(r))
    assert abs(r.mean() - port.mean()) < 4 * se
    # multi-year mean: (1 + mean)^years
    res10 = simulate(
        w, None, None, years=10, paths=40_000, spending_rate=0.0, inflation=0.0,
        distribution="bootstrap", history=hist, seed=6,
    )  # fmt: skip
    t = res10.values[:, -1]
    expected = (1.0 + port.mean()) ** 10
    assert abs(t.mean() - expected) < 4 * t.std() / np.sqrt(len(t))


def test_bootstrap_monthly_history_compounds_complete_years(inputs):
    w, _, _ = inputs
    idx = pd.date_range("2015-03-31", "2019-06-30", freq="ME")
    hist = pd.DataFrame(0.01, index=idx, columns=ASSETS)
    # partial years 2015 and 2019 carry a huge return that must never be sampled
    hist.loc[(idx.year == 2015) | (idx.year == 2019)] = 0.5
    res = simulate(
        w, None, None, years=3, paths=500, spending_rate=0.0, inflation=0.0,
        distribution="bootstrap", history=hist, seed=1,
    )  # fmt: skip
    annual = 1.01**12 - 1.0
    np.testing.assert_allclose(res.values[:, -1], (1.0 + annual) ** 3)


def test_bootstrap_needs_complete_years(inputs):
    w, _, _ = inputs
    idx = pd.date_range("2015-03-31", "2016-06-30", freq="ME")
    hist = pd.DataFrame(0.01, index=idx, columns=ASSETS)
    with pytest.raises(InputError, match="complete calendar year"):
        simulate(w, None, None, distribution="bootstrap", history=hist, paths=10)


def test_yale_rule_deterministic_by_hand(inputs):
    w, mu, _ = inputs
    g = float(w @ mu)  # 0.054
    rate, s_w, infl, v0 = 0.05, 0.7, 0.03, 100.0
    res = simulate(
        w, mu, _zero_cov(), years=4, paths=3, value=v0, spending_rate=rate,
        smoothing=s_w, inflation=infl, seed=0,
    )  # fmt: skip
    assert (res.values == res.values[0]).all()  # every path identical
    # by hand
    s1 = rate * v0  # 5.0
    v1 = (v0 - s1) * (1 + g)  # 95 * 1.054 = 100.13
    s2 = s_w * s1 * (1 + infl) + (1 - s_w) * rate * v1
    v2 = (v1 - s2) * (1 + g)
    assert s1 == pytest.approx(5.0)
    assert v1 == pytest.approx(100.13)
    assert s2 == pytest.approx(0.7 * 5.0 * 1.03 + 0.3 * 0.05 * 100.13)
    s, v = [s1, s2], [v0, v1, v2]
    for _ in range(2):
        s.append(s_w * s[-1] * (1 + infl) + (1 - s_w) * rate * v[-1])
        v.append((v[-1] - s[-1]) * (1 + g))
    np.testing.assert_allclose(res.spending[0], s, rtol=1e-12)
    np.testing.assert_allclose(res.values[0], v, rtol=1e-12)
    deflator = (1 + infl) ** np.arange(5)
    np.testing.assert_allclose(res.real_values[0], np.array(v) / deflator, rtol=1e-12)
    np.testing.assert_allclose(res.real_spending[0], np.array(s) / deflator[:4], rtol=1e-12)
    assert res.summary["prob_preserve_real_value"] == float(v[-1] / deflator[-1] >= v0)
    assert res.summary["final_spending_p50"] == pytest.approx(s[-1])


def test_trailing_rule_deterministic(inputs):
    w, mu, _ = inputs
    g = float(w @ mu)
    res = simulate(
        w, mu, _zero_cov(), years=5, paths=2, value=10.0, spending_rate=0.04,
        spending_rule="trailing", smoothing_window=3, inflation=0.02, seed=0,
    )  # fmt: skip
    v, s = [10.0], []
    for t in range(1, 6):
        s.append(0.04 * np.mean(v[max(0, t - 3) : t]))
        v.append((v[-1] - s[-1]) * (1 + g))
    assert s[0] == pytest.approx(0.4)
    np.testing.assert_allclose(res.spending[1], s, rtol=1e-12)
    np.testing.assert_allclose(res.values[1], v, rtol=1e-12)


def test_spending_capped_at_value_and_drawdown(inputs):
    w, _, _ = inputs
    mu = pd.Series(-0.5, index=ASSETS)  # lose half every year
    res = simulate(
        w, mu, _zero_cov(), years=3, paths=4, spending_rate=1.0, smoothing=0.0,
        inflation=0.0, drawdown=0.3, seed=0,
    )  # fmt: skip
    np.testing.assert_allclose(res.spending[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(res.values[0], [1.0, 0.0, 0.0, 0.0])
    assert res.summary["prob_drawdown_exceeds"] == 1.0
    assert res.summary["prob_preserve_real_value"] == 0.0


def test_asset_returns_floored_at_minus_99pct(inputs):
    w, _, _ = inputs
    mu = pd.Series(-3.0, index=ASSETS)
    res = simulate(w, mu, _zero_cov(), years=1, paths=2, spending_rate=0.0, seed=0)
    np.testing.assert_allclose(res.values[:, 1], 0.01)


def test_probabilities_in_unit_interval(inputs):
    w, mu, cov = inputs
    for dist in ("normal", "student_t"):
        res = simulate(w, mu, cov, years=20, paths=2000, seed=9, distribution=dist)
        for key in ("prob_preserve_real_value", "prob_drawdown_exceeds"):
            assert 0.0 <= res.summary[key] <= 1.0
        assert 0.0 < res.summary["prob_drawdown_exceeds"] < 1.0
        q = [res.summary[f"terminal_value_p{p}"] for p in (5, 25, 50, 75, 95)]
        assert q == sorted(q)
    # direct recomputation of the drawdown probability
    peak = np.maximum.accumulate(res.values, axis=1)
    mdd = (1 - res.values / peak).max(axis=1)
    assert res.summary["prob_drawdown_exceeds"] == pytest.approx(np.mean(mdd > 0.25))


def test_label_order_does_not_matter(inputs):
    w, mu, cov = inputs
    a = simulate(w, mu, cov, years=3, paths=100, seed=2)
    b = simulate(w, mu[::-1], cov.loc[ASSETS[::-1], ASSETS[::-1]], years=3, paths=100, seed=2)
    np.testing.assert_allclose(a.values, b.values)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"distribution": "lognormal"}, "distribution must be one of"),
        ({"distribution": "student_t", "dof": 2}, "dof must be > 2"),
        ({"years": 0}, "years must be an integer >= 1"),
        ({"paths": 0}, "paths must be an integer >= 1"),
        ({"years": 2.5}, "years must be an integer"),
        ({"value": -1.0}, "value must be positive"),
        ({"spending_rule": "endowment"}, "spending_rule must be one of"),
        ({"smoothing": 1.5}, "smoothing must be in"),
        ({"drawdown": 0.0}, "drawdown must be in"),
        ({"distribution": "bootstrap"}, "needs history="),
    ],
)
def test_option_errors(inputs, change, match):
    w, mu, cov = inputs
    kwargs = {"years": 2, "paths": 10, **change}
    with pytest.raises(InputError, match=match):
        simulate(w, mu, cov, **kwargs)


def test_label_errors_name_the_asset(inputs):
    w, mu, cov = inputs
    bad_mu = mu.copy()
    bad_mu["BOND"] = np.nan
    with pytest.raises(InputError, match="mu has NaN or inf values for assets: BOND"):
        simulate(w, bad_mu, cov, paths=10)
    bad_w = w.copy()
    bad_w["ALT"] = np.inf
    with pytest.raises(InputError, match="weights .*ALT"):
        simulate(bad_w, mu, cov, paths=10)
    with pytest.raises(InputError, match="missing from mu: ALT"):
        simulate(w, mu.drop("ALT"), cov, paths=10)
    renamed = cov.rename(index={"EQ": "EQUITY"}, columns={"EQ": "EQUITY"})
    with pytest.raises(InputError, match="cov rows: EQ; in cov rows but not in weights: EQUITY"):
        simulate(w, mu, renamed, paths=10)
    nan_cov = cov.copy()
    nan_cov.loc["ALT", "BOND"] = np.nan
    with pytest.raises(InputError, match=r"values for assets: ALT \(first at \(ALT, BOND\)\)"):
        simulate(w, mu, nan_cov, paths=10)
    neg = cov.copy()
    neg.loc["EQ", "EQ"] = -0.1
    with pytest.raises(InputError, match="not positive semidefinite"):
        simulate(w, mu, neg, paths=10)
    with pytest.raises(InputError, match="needs mu and cov"):
        simulate(w, None, cov, paths=10)


def test_bootstrap_history_errors(inputs):
    w, _, _ = inputs
    hist = pd.DataFrame(0.05, index=range(5), columns=ASSETS)
    with pytest.raises(InputError, match="history has no returns for asset.*ALT"):
        simulate(w, None, None, distribution="bootstrap", history=hist.drop(columns="ALT"))
    bad = hist.copy()
    bad.loc[2, "EQ"] = np.nan
    with pytest.raises(InputError, match="history has NaN .*asset EQ"):
        simulate(w, None, None, distribution="bootstrap", history=bad)


def test_bootstrap_daily_and_annual_dated_history(inputs):
    w, _, _ = inputs
    # business days from mid-2016: 2016 is partial and dropped; 2017 and 2018 are kept
    idx = pd.bdate_range("2016-07-01", "2018-12-31")
    hist = pd.DataFrame(0.0002, index=idx, columns=ASSETS)
    hist.loc[idx.year == 2016] = 0.05
    res = simulate(
        w, None, None, years=1, paths=400, spending_rate=0.0, inflation=0.0,
        distribution="bootstrap", history=hist, seed=4,
    )  # fmt: skip
    allowed = [1.0002 ** (idx.year == y).sum() for y in (2017, 2018)]
    assert np.isin(np.round(res.values[:, 1], 12), np.round(allowed, 12)).all()
    # year-end dated annual returns are used as they are
    annual = pd.DataFrame(
        [[0.1] * 3, [0.2] * 3], index=pd.to_datetime(["2020-12-31", "2021-12-31"]), columns=ASSETS
    )
    res = simulate(
        w, None, None, years=1, paths=400, spending_rate=0.0, inflation=0.0,
        distribution="bootstrap", history=annual, seed=4,
    )  # fmt: skip
    assert set(np.round(res.values[:, 1], 12)) == {1.1, 1.2}
