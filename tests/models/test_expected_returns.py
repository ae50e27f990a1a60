"""Tests of models.expected_returns."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from models.expected_returns import (
    equilibrium,
    ewma_mean,
    historical_mean,
    implied_risk_aversion,
    shrunk_mean,
)
from models.returns import from_prices
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance


def monthly(values, columns=None) -> pd.DataFrame:
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    cols = columns or [f"A{i}" for i in range(values.shape[1])]
    return pd.DataFrame(
        values, index=pd.date_range("2000-01-31", periods=len(values), freq="ME"), columns=cols
    )


def random_returns(t: int, n: int, seed: int = 0, scale: float = 0.04) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(n, n)) / np.sqrt(n) + np.eye(n)
    x = 0.005 + scale * rng.standard_normal((t, n)) @ mix.T / 2
    return monthly(x, [f"S{i}" for i in range(n)])


def random_cov(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n)) * 0.1
    labels = [f"S{i}" for i in range(n)]
    return pd.DataFrame(a @ a.T + 0.01 * np.eye(n), index=labels, columns=labels)


# ---------------------------------------------------------------------------------------------
# historical_mean
# ---------------------------------------------------------------------------------------------


def test_arithmetic_mean_by_hand() -> None:
    r = monthly([[0.01, 0.02], [0.03, -0.02]], ["X", "Y"])
    mu = historical_mean(r)
    pd.testing.assert_series_equal(mu, pd.Series({"X": 0.24, "Y": 0.0}))


def test_geometric_mean_closed_form() -> None:
    r = monthly([0.1, -0.1])
    assert historical_mean(r, method="geometric", periods_per_year=2).iloc[0] == pytest.approx(
        1.1 * 0.9 - 1
    )
    const = monthly(np.full(24, 0.01))
    assert historical_mean(const, method="geometric").iloc[0] == pytest.approx(1.01**12 - 1)
    assert historical_mean(const).iloc[0] == pytest.approx(0.12)
    # T periods of returns r_t: (prod(1 + r_t)) ** (P / T) - 1
    x = random_returns(37, 3, seed=4)
    expected = np.prod(1 + x.to_numpy(), axis=0) ** (12 / 37) - 1
    np.testing.assert_allclose(historical_mean(x, method="geometric"), expected, rtol=1e-12)


def per_period_geometric(geo: pd.Series, periods: float) -> pd.Series:
    return (1 + geo) ** (1 / periods) - 1


def test_geometric_below_arithmetic() -> None:
    x = random_returns(120, 5)
    geo = per_period_geometric(historical_mean(x, method="geometric"), 12)
    ari = historical_mean(x) / 12
    assert (geo < ari).all()
    # ... by about half the variance.
    np.testing.assert_allclose(ari - geo, x.var() / 2, rtol=0.2)


def test_periods_override_and_inference() -> None:
    x = random_returns(30, 2)
    np.testing.assert_allclose(historical_mean(x, periods_per_year=4), x.mean() * 4)
    plain = x.reset_index(drop=True)
    np.testing.assert_allclose(historical_mean(plain, periods_per_year=12), x.mean() * 12)
    with pytest.raises(InputError, match="pass periods_per_year"):
        historical_mean(plain)
    with pytest.raises(InputError, match="periods_per_year must be a positive number"):
        historical_mean(x, periods_per_year=0)


def test_historical_mean_errors_name_culprit() -> None:
    r = monthly([[0.1, 0.0], [-1.0, 0.0], [0.0, -1.5]], ["AAA", "BBB"])
    culprits = r"return of AAA on 2000-02-29 is -100.00%; BBB on 2000-03-31 is -150.00%"
    with pytest.raises(InputError, match=culprits):
        historical_mean(r, method="geometric")
    with pytest.raises(InputError, match=culprits):
        historical_mean(r)  # a simple return of -100% or less is refused by every estimator
    with pytest.raises(InputError, match=r"method='log'.*'arithmetic', 'geometric'"):
        historical_mean(r, method="log")
    nan = monthly([[0.1, np.nan], [0.0, 0.0]], ["AAA", "BBB"])
    with pytest.raises(InputError, match="NaN or inf values for assets: BBB"):
        historical_mean(nan)
    with pytest.raises(InputError, match="must be a pandas DataFrame"):
        historical_mean(r["AAA"])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="1 observations"):
        historical_mean(r.iloc[:1])


def test_historical_mean_real_data(
    sp500_prices: pd.DataFrame, french_industries: pd.DataFrame
) -> None:
    r = from_prices(sp500_prices)
    mu = historical_mean(r)
    assert list(mu.index) == list(sp500_prices.columns)
    np.testing.assert_allclose(mu, r.mean() * 252)
    assert mu.between(0.0, 0.6).all()
    geo = historical_mean(r, method="geometric")
    assert (per_period_geometric(geo, 252) < mu / 252).all()
    # The CAGR matches the price path: first to last price.
    years_factor = 252 / len(r)
    cagr = (sp500_prices.iloc[-1] / sp500_prices.iloc[0]) ** years_factor - 1
    np.testing.assert_allclose(geo, cagr, rtol=1e-9)
    ind = historical_mean(french_industries)
    np.testing.assert_allclose(ind, french_industries.mean() * 12)
    assert ind.between(0.05, 0.2).all()


# ---------------------------------------------------------------------------------------------
# ewma_mean
# ---------------------------------------------------------------------------------------------


def test_ewma_by_hand() -> None:
    r = monthly([0.03, 0.0, 0.06])
    # halflife 1: weights 1/4, 1/2, 1 (oldest first), normalized by 1.75
    expected = (0.25 * 0.03 + 0.5 * 0.0 + 1.0 * 0.06) / 1.75 * 12
    assert ewma_mean(r, halflife=1).iloc[0] == pytest.approx(expected)
    assert ewma_mean(r, halflife=1, periods_per_year=1).iloc[0] == pytest.approx(expected / 12)


def test_ewma_recent_weighs_most_and_long_halflife_is_mean() -> None:
    x = random_returns(60, 3)
    recent = x.copy()
    recent.iloc[-1] += 0.1
    old = x.copy()
    old.iloc[0] += 0.1
    base = ewma_mean(x, halflife=6)
    assert ((ewma_mean(recent, halflife=6) - base) > (ewma_mean(old, halflife=6) - base)).all()
    np.testing.assert_allclose(ewma_mean(x, halflife=1e9), historical_mean(x), rtol=1e-6)


@pytest.mark.parametrize("bad", [0, -2.0, np.nan, np.inf, "ten", True, None])
def test_ewma_halflife_errors(bad) -> None:
    with pytest.raises(InputError, match="halflife"):
        ewma_mean(random_returns(10, 2), halflife=bad)


# ---------------------------------------------------------------------------------------------
# shrunk_mean
# ---------------------------------------------------------------------------------------------


def reference_shrinkage(x: np.ndarray, target: str) -> tuple[np.ndarray, float]:
    """Naive re-implementation of the documented formulas (periodic units)."""
    t, n = x.shape
    y = x.mean(axis=0)
    sigma = np.cov(x.T) * (t - 1) / (t - n - 2)
    inv = np.linalg.inv(sigma)
    ones = np.ones(n)
    m = y.mean() if target == "grand_mean" else (ones @ inv @ y) / (ones @ inv @ ones)
    d = t * (y - m) @ inv @ (y - m)
    w = min(1.0, max(0.0, (n - 3) / d)) if target == "grand_mean" else (n + 2) / (n + 2 + d)
    return (1 - w) * y + w * m, w


@pytest.mark.parametrize("target", ["grand_mean", "min_variance"])
def test_shrunk_mean_matches_formula(target: str) -> None:
    x = random_returns(40, 6, seed=3)
    mu, w = shrunk_mean(x, target=target, return_intensity=True)
    ref_mu, ref_w = reference_shrinkage(x.to_numpy(), target)
    assert w == pytest.approx(ref_w, rel=1e-9)
    np.testing.assert_allclose(mu, ref_mu * 12, rtol=1e-9)
    assert 0.0 <= w <= 1.0
    assert list(mu.index) == list(x.columns)


def test_shrunk_mean_moves_towards_grand_mean() -> None:
    x = random_returns(30, 8, seed=5)
    sample = historical_mean(x)
    mu, w = shrunk_mean(x, return_intensity=True)
    grand = sample.mean()
    assert 0.0 < w < 1.0
    # Every estimate moves towards the grand mean by the same fraction w ...
    np.testing.assert_allclose(mu - grand, (1 - w) * (sample - grand), atol=1e-12)
    # ... so the spread shrinks and the average is unchanged.
    assert mu.std() < sample.std()
    assert mu.mean() == pytest.approx(grand)
    # Without the flag: just the Series.
    pd.testing.assert_series_equal(shrunk_mean(x), mu)


def test_shrinkage_depends_on_signal_to_noise() -> None:
    rng = np.random.default_rng(11)
    noise = rng.normal(0, 0.05, size=(60, 8))
    _, w_noise = shrunk_mean(monthly(noise), return_intensity=True)
    signal = noise + np.linspace(-0.2, 0.2, 8)  # means 5-10 noise sd's apart
    _, w_signal = shrunk_mean(monthly(signal), return_intensity=True)
    assert w_signal < 0.01 < 0.3 < w_noise
    _, j_noise = shrunk_mean(monthly(noise), target="min_variance", return_intensity=True)
    _, j_signal = shrunk_mean(monthly(signal), target="min_variance", return_intensity=True)
    assert j_signal < 0.01 < j_noise <= 1


def test_shrunk_mean_edge_cases() -> None:
    x = random_returns(20, 5, seed=2)
    equal = x - x.mean() + 0.01  # every sample mean 0.01
    mu, w = shrunk_mean(equal, return_intensity=True)
    assert w == 1.0
    np.testing.assert_allclose(mu, 0.12)
    three = random_returns(20, 3, seed=2)
    mu3, w3 = shrunk_mean(three, return_intensity=True)
    assert w3 == 0.0
    pd.testing.assert_series_equal(mu3, historical_mean(three))


def test_shrunk_mean_errors_name_culprit() -> None:
    x = random_returns(6, 4)
    with pytest.raises(InputError, match="T=6 rows for n=4 assets"):
        shrunk_mean(x)
    y = random_returns(30, 4).assign(S2=0.01)
    with pytest.raises(InputError, match="constant returns: S2"):
        shrunk_mean(y)
    z = random_returns(30, 4)
    z["S3"] = z["S0"] + z["S1"]
    with pytest.raises(InputError, match="collinear"):
        shrunk_mean(z)
    with pytest.raises(InputError, match=r"target='zero'.*'grand_mean', 'min_variance'"):
        shrunk_mean(random_returns(30, 4), target="zero")


def test_shrunk_mean_real_data(french_industries: pd.DataFrame) -> None:
    sample = historical_mean(french_industries)
    for target in ("grand_mean", "min_variance"):
        mu, w = shrunk_mean(french_industries, target=target, return_intensity=True)
        assert 0.0 <= w <= 1.0
        assert list(mu.index) == list(french_industries.columns)
        assert mu.std() <= sample.std() + 1e-15
        assert mu.between(0.0, 0.25).all()
    # On a short window the noise dominates: more shrinkage than on the full 68 years.
    _, w_short = shrunk_mean(french_industries.iloc[-36:], return_intensity=True)
    _, w_long = shrunk_mean(french_industries, return_intensity=True)
    assert w_short >= w_long


# ---------------------------------------------------------------------------------------------
# equilibrium
# ---------------------------------------------------------------------------------------------


def test_equilibrium_by_hand() -> None:
    cov = pd.DataFrame([[0.04, 0.01], [0.01, 0.09]], index=["EQ", "BD"], columns=["EQ", "BD"])
    w = pd.Series({"BD": 0.4, "EQ": 0.6})  # another order
    pi = equilibrium(cov, w, risk_aversion=2.5, risk_free_rate=0.02)
    expected = pd.Series({"EQ": 0.02 + 2.5 * (0.6 * 0.04 + 0.4 * 0.01),
                          "BD": 0.02 + 2.5 * (0.6 * 0.01 + 0.4 * 0.09)})  # fmt: skip
    pd.testing.assert_series_equal(pi, expected)
    # A plain mapping works too.
    pd.testing.assert_series_equal(
        equilibrium(cov, {"EQ": 0.6, "BD": 0.4}, risk_aversion=2.5, risk_free_rate=0.02), expected
    )


def test_equilibrium_random_and_reverse() -> None:
    cov = random_cov(6)
    rng = np.random.default_rng(3)
    w = pd.Series(rng.dirichlet(np.ones(6)), index=cov.index)
    pi = equilibrium(cov, w.sample(frac=1, random_state=1), risk_aversion=3.0, risk_free_rate=0.01)
    np.testing.assert_allclose(pi, 0.01 + 3.0 * cov.to_numpy() @ w.to_numpy(), rtol=1e-12)
    # The unconstrained mean-variance optimum for these returns is the market itself.
    back = np.linalg.solve(cov.to_numpy(), pi.to_numpy() - 0.01) / 3.0
    np.testing.assert_allclose(back, w, rtol=1e-9)
    # Weights are used as given: scaling them scales the excess returns.
    pi2 = equilibrium(cov, 2 * w, risk_aversion=3.0, risk_free_rate=0.01)
    np.testing.assert_allclose(pi2 - 0.01, 2 * (pi - 0.01), rtol=1e-12)
    # Negative weights are allowed.
    ls = w - 1 / 6
    np.testing.assert_allclose(
        equilibrium(cov, ls, risk_aversion=3.0), 3.0 * cov.to_numpy() @ ls.to_numpy(), atol=1e-15
    )


def test_equilibrium_reordered_cov_columns_and_factor_cov() -> None:
    cov = random_cov(4)
    w = pd.Series(0.25, index=cov.index)
    base = equilibrium(cov, w, risk_aversion=2.0)
    shuffled = cov[["S2", "S0", "S3", "S1"]]
    pd.testing.assert_series_equal(equilibrium(shuffled, w, risk_aversion=2.0), base)

    rng = np.random.default_rng(0)
    loadings = pd.DataFrame(rng.normal(size=(4, 2)), index=cov.index, columns=["f1", "f2"])
    fcov = pd.DataFrame([[0.03, 0.005], [0.005, 0.02]], index=["f1", "f2"], columns=["f1", "f2"])
    fm = FactorCovariance(loadings, fcov, pd.Series(0.01, index=cov.index))
    np.testing.assert_allclose(
        equilibrium(fm, w, risk_aversion=2.0),
        equilibrium(fm.cov, w, risk_aversion=2.0),
        rtol=1e-12,
    )


def test_equilibrium_errors_name_culprit() -> None:
    cov = random_cov(3)
    w = pd.Series(1 / 3, index=cov.index)
    with pytest.raises(InputError, match="missing from market_weights: S2"):
        equilibrium(cov, w.drop("S2"), risk_aversion=2.0)
    with pytest.raises(InputError, match="not in cov: GOLD"):
        equilibrium(cov, pd.concat([w, pd.Series({"GOLD": 0.1})]), risk_aversion=2.0)
    with pytest.raises(InputError, match="market_weights has NaN or inf values for assets: S1"):
        equilibrium(cov, w.where(w.index != "S1"), risk_aversion=2.0)
    with pytest.raises(InputError, match="duplicate asset ids: S0"):
        equilibrium(cov, pd.concat([w, w.iloc[:1]]), risk_aversion=2.0)
    with pytest.raises(InputError, match="must be a pandas Series"):
        equilibrium(cov, [0.3, 0.3, 0.4], risk_aversion=2.0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="must map asset ids to numbers"):
        equilibrium(cov, {"S0": "a lot", "S1": 0.3, "S2": 0.3}, risk_aversion=2.0)
    with pytest.raises(InputError, match="market_weights must be numeric"):
        equilibrium(cov, w.astype(str), risk_aversion=2.0)
    for bad in (0.0, -1.0, np.nan, "high"):
        with pytest.raises(InputError, match="risk_aversion"):
            equilibrium(cov, w, risk_aversion=bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="risk_free_rate must be finite"):
        equilibrium(cov, w, risk_aversion=2.0, risk_free_rate=np.inf)
    with pytest.raises(InputError, match="DataFrame labelled by asset.*ndarray"):
        equilibrium(cov.to_numpy(), w, risk_aversion=2.0)  # type: ignore[arg-type]
    odd = cov.rename(columns={"S2": "X"})
    with pytest.raises(InputError, match="only in rows: S2; only in columns: X"):
        equilibrium(odd, w, risk_aversion=2.0)
    nan = cov.copy()
    nan.loc["S1", "S1"] = np.nan
    with pytest.raises(InputError, match="cov has NaN or inf values for assets: S1"):
        equilibrium(nan, w, risk_aversion=2.0)


def test_equilibrium_real_data(sp500_prices: pd.DataFrame) -> None:
    r = from_prices(sp500_prices.iloc[-1000:])
    cov = r.cov() * 252
    w = pd.Series(1 / 20, index=cov.index)
    pi = equilibrium(cov, w, risk_aversion=2.5, risk_free_rate=0.02)
    assert list(pi.index) == list(sp500_prices.columns)
    assert pi.between(0.02, 0.5).all()


# ---------------------------------------------------------------------------------------------
# implied_risk_aversion
# ---------------------------------------------------------------------------------------------


def test_implied_risk_aversion_by_hand() -> None:
    m = monthly([0.02, -0.01, 0.03, 0.0])["A0"]
    mean, var = m.mean(), m.var(ddof=1)
    expected = (mean * 12 - 0.03) / (var * 12)
    assert implied_risk_aversion(m, 0.03) == pytest.approx(expected)
    assert implied_risk_aversion(m, risk_free_rate=0.03) == pytest.approx(expected)
    assert implied_risk_aversion(m.to_frame()) == pytest.approx(mean / var)
    assert implied_risk_aversion(m.reset_index(drop=True), periods_per_year=12) == pytest.approx(
        mean / var
    )


def test_implied_risk_aversion_real_data(french_monthly: pd.DataFrame) -> None:
    market = french_monthly["MktRF"] + french_monthly["RF"]
    rf_annual = french_monthly["RF"].mean() * 12
    delta = implied_risk_aversion(market, rf_annual)
    excess = implied_risk_aversion(french_monthly["MktRF"])
    assert delta == pytest.approx(excess, rel=0.05)
    assert 1.0 < delta < 5.0


def test_implied_risk_aversion_errors_and_warning() -> None:
    flat = monthly(np.full(12, 0.01))["A0"]
    with pytest.raises(InputError, match="A0 are constant.*zero variance"):
        implied_risk_aversion(flat)
    two = random_returns(12, 2)
    with pytest.raises(InputError, match="one-column DataFrame; got columns S0, S1"):
        implied_risk_aversion(two)
    with pytest.raises(InputError, match="must be a pandas Series"):
        implied_risk_aversion([0.01, 0.02])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="risk_free_rate"):
        implied_risk_aversion(two["S0"], np.nan)
    with pytest.raises(InputError, match="NaN or inf values for assets: market"):
        implied_risk_aversion(pd.Series([0.01, np.nan, 0.02], index=flat.index[:3]))
    losing = monthly([-0.02, 0.01, -0.03, 0.0])["A0"]
    with pytest.warns(UserWarning, match="negative"):
        assert implied_risk_aversion(losing) < 0


def test_no_warnings_on_normal_use(french_industries: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        historical_mean(french_industries)
        ewma_mean(french_industries, halflife=60)
        shrunk_mean(french_industries)


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


@st.composite
def return_frames(draw: st.DrawFn, min_rows: int = 2) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=5))
    t = draw(st.integers(min_value=min_rows, max_value=40))
    cols = draw(
        st.lists(
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5),
            min_size=n,
            max_size=n,
            unique=True,
        )
    )
    values = draw(
        hnp.arrays(float, (t, n), elements=st.floats(min_value=-0.5, max_value=0.5, width=64))
    )
    return pd.DataFrame(
        values, index=pd.date_range("2001-01-31", periods=t, freq="ME"), columns=cols
    )


@settings(max_examples=30, deadline=None)
@given(return_frames(), st.floats(min_value=-1.9, max_value=1.9))  # |r * c| < 1
def test_property_arithmetic_mean_scale_equivariant(r: pd.DataFrame, c: float) -> None:
    np.testing.assert_allclose(
        historical_mean(r * c), c * historical_mean(r), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        ewma_mean(r * c, halflife=3), c * ewma_mean(r, halflife=3), rtol=1e-9, atol=1e-12
    )


@settings(max_examples=30, deadline=None)
@given(return_frames())
def test_property_labels_preserved_and_geometric_below_arithmetic(r: pd.DataFrame) -> None:
    ari = historical_mean(r)
    geo = historical_mean(r, method="geometric")
    ew = ewma_mean(r, halflife=5)
    for s in (ari, geo, ew):
        assert list(s.index) == list(r.columns)
    assert (per_period_geometric(geo, 12) <= ari / 12 + 1e-12).all()
    # A permutation of the columns permutes the estimates.
    rev = r[r.columns[::-1]]
    pd.testing.assert_series_equal(historical_mean(rev), ari[rev.columns])


@settings(max_examples=30, deadline=None)
@given(return_frames(min_rows=12), st.floats(min_value=0.5, max_value=5))
def test_property_equilibrium_formula(r: pd.DataFrame, delta: float) -> None:
    cov = r.cov() * 12
    w = pd.Series(np.linspace(1, 2, r.shape[1]), index=r.columns)
    pi = equilibrium(cov, w, risk_aversion=delta, risk_free_rate=0.01)
    np.testing.assert_allclose(pi, 0.01 + delta * cov.to_numpy() @ w.to_numpy(), atol=1e-12)
    assert list(pi.index) == list(r.columns)
