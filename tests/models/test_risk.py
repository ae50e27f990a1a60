"""Tests of models.risk: volatility, Euler contributions, VaR / CVaR, errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from models.risk import (
    conditional_value_at_risk,
    expected_shortfall,
    portfolio_return,
    portfolio_volatility,
    risk_contributions,
    value_at_risk,
)
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance

ASSETS = ["A", "B", "C", "D"]
METHODS = ["historical", "gaussian", "cornish_fisher"]


@pytest.fixture
def cov() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    a = rng.normal(size=(4, 8))
    c = a @ a.T / 8 * 0.04
    return pd.DataFrame(c, index=ASSETS, columns=ASSETS)


@pytest.fixture
def weights() -> pd.Series:
    return pd.Series([0.4, 0.3, 0.2, 0.1], index=ASSETS)


@pytest.fixture
def returns() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    data = rng.standard_t(df=5, size=(750, 4)) * 0.01 + 0.0004
    return pd.DataFrame(data, index=pd.bdate_range("2020-01-01", periods=750), columns=ASSETS)


def one_asset(values) -> pd.DataFrame:
    return pd.DataFrame({"A": np.asarray(values, dtype=float)})


ONLY_A = pd.Series({"A": 1.0})


# --------------------------------------------------------------------------------------------
# Volatility, return, contributions
# --------------------------------------------------------------------------------------------


def test_volatility_and_return_known_answers():
    cov = pd.DataFrame(np.diag([0.04, 0.09]), index=["X", "Y"], columns=["X", "Y"])
    w = pd.Series({"Y": 0.5, "X": 0.5})  # another order is fine
    assert portfolio_volatility(w, cov) == pytest.approx(math.sqrt(0.25 * 0.04 + 0.25 * 0.09))
    mu = pd.Series({"X": 0.06, "Y": 0.10})
    assert portfolio_return(w, mu) == pytest.approx(0.08)
    assert portfolio_volatility(w * 0, cov) == 0.0


def test_risk_contributions_sum_to_volatility(cov, weights):
    rc = risk_contributions(weights, cov)
    sigma = portfolio_volatility(weights, cov)
    assert rc.sum() == pytest.approx(sigma, rel=1e-12)
    rel = risk_contributions(weights, cov, relative=True)
    assert rel.sum() == pytest.approx(1.0, rel=1e-12)
    pd.testing.assert_series_equal(rel, rc / sigma)


def test_risk_contributions_equal_euler_finite_differences(cov, weights):
    rc = risk_contributions(weights, cov)
    h = 1e-6
    for asset in ASSETS:
        up, down = weights.copy(), weights.copy()
        up[asset] += h
        down[asset] -= h
        grad = (portfolio_volatility(up, cov) - portfolio_volatility(down, cov)) / (2 * h)
        assert rc[asset] == pytest.approx(weights[asset] * grad, rel=1e-6, abs=1e-12)


def test_risk_contributions_order_follows_weights_and_factor_cov_agrees():
    rng = np.random.default_rng(2)
    loadings = pd.DataFrame(rng.normal(size=(4, 2)), index=ASSETS, columns=["f1", "f2"])
    fcov = pd.DataFrame([[0.04, 0.0], [0.0, 0.01]], index=["f1", "f2"], columns=["f1", "f2"])
    fc = FactorCovariance(loadings, fcov, pd.Series(0.02, index=ASSETS))
    w = pd.Series({"D": 0.1, "B": 0.3, "A": 0.4, "C": 0.2})
    rc = risk_contributions(w, fc)
    assert list(rc.index) == ["D", "B", "A", "C"]
    pd.testing.assert_series_equal(rc, risk_contributions(w, fc.cov.iloc[::-1, ::-1]))
    assert portfolio_volatility(w, fc) == pytest.approx(portfolio_volatility(w, fc.cov))


def test_inverse_volatility_on_diagonal_cov_gives_equal_risk():
    vols = np.array([0.1, 0.2, 0.4])
    cov = pd.DataFrame(np.diag(vols**2), index=list("XYZ"), columns=list("XYZ"))
    w = pd.Series((1 / vols) / (1 / vols).sum(), index=list("XYZ"))
    np.testing.assert_allclose(risk_contributions(w, cov, relative=True), 1 / 3, rtol=1e-12)


def test_hedge_has_negative_contribution():
    cov = pd.DataFrame([[0.04, 0.03], [0.03, 0.04]], index=["X", "Y"], columns=["X", "Y"])
    rc = risk_contributions(pd.Series({"X": 1.0, "Y": -0.3}), cov)
    assert rc["Y"] < 0 < rc["X"]


def test_real_data_contributions_and_tails(french_industries):
    returns = french_industries
    cov = returns.cov() * 12
    w = pd.Series(1 / returns.shape[1], index=returns.columns)
    rc = risk_contributions(w, cov)
    assert rc.sum() == pytest.approx(portfolio_volatility(w, cov), rel=1e-12)
    assert (rc > 0).all()
    for method in METHODS:
        for alpha in (0.9, 0.95, 0.99):
            var = value_at_risk(w, returns, alpha=alpha, method=method)
            cvar = conditional_value_at_risk(w, returns, alpha=alpha, method=method)
            assert 0 < var <= cvar, (method, alpha)
    # fat left tail of monthly equity returns: the modified VaR exceeds the gaussian at 99%
    assert value_at_risk(w, returns, alpha=0.99, method="cornish_fisher") > value_at_risk(
        w, returns, alpha=0.99, method="gaussian"
    )


def test_real_data_daily_stocks(sp500_prices):
    returns = sp500_prices.pct_change().dropna()
    w = pd.Series(1 / returns.shape[1], index=returns.columns)
    for method in METHODS:
        var = value_at_risk(w, returns, method=method)
        cvar = expected_shortfall(w, returns, method=method)
        assert 0.005 < var <= cvar < 0.1, method


# --------------------------------------------------------------------------------------------
# Value at risk and CVaR
# --------------------------------------------------------------------------------------------


def test_gaussian_var_equals_closed_form_from_mu_cov(cov, weights):
    mu = pd.Series([0.08, 0.06, 0.05, 0.02], index=ASSETS)
    m = float(weights @ mu)
    s = math.sqrt(weights @ cov.to_numpy() @ weights)
    for alpha in (0.9, 0.95, 0.99):
        z = stats.norm.ppf(1 - alpha)
        var = value_at_risk(weights, alpha=alpha, method="gaussian", mu=mu, cov=cov)
        cvar = conditional_value_at_risk(weights, alpha=alpha, method="gaussian", mu=mu, cov=cov)
        assert var == pytest.approx(-(m + z * s), rel=1e-12)
        assert cvar == pytest.approx(-(m - s * stats.norm.pdf(z) / (1 - alpha)), rel=1e-12)
        # the same as the expectation of the loss over the normal tail
        tail = integrate.quad(lambda x: x * stats.norm.pdf(x, m, s), -np.inf, -var)[0]
        assert cvar == pytest.approx(-tail / (1 - alpha), rel=1e-7)


def test_gaussian_var_from_returns_uses_sample_moments(returns, weights):
    port = returns @ weights
    expected = -(port.mean() + stats.norm.ppf(0.05) * port.std(ddof=1))
    assert value_at_risk(weights, returns, method="gaussian") == pytest.approx(expected)


def test_historical_var_on_hand_made_sample():
    sample = [-0.10, -0.06, -0.05, -0.04, 0.03, 0.01, 0.02, -0.01, 0.00, 0.05]
    sample = sample + [0.01 * i for i in range(1, 11)]  # 20 returns
    rng = np.random.default_rng(0)
    rets = one_asset(rng.permutation(sample))
    # T (1 - alpha) = 1, 2, 4: the 1st, 2nd, 4th smallest return
    assert value_at_risk(ONLY_A, rets, alpha=0.95) == pytest.approx(0.10)
    assert conditional_value_at_risk(ONLY_A, rets, alpha=0.95) == pytest.approx(0.10)
    assert value_at_risk(ONLY_A, rets, alpha=0.90) == pytest.approx(0.06)
    assert conditional_value_at_risk(ONLY_A, rets, alpha=0.90) == pytest.approx(0.08)
    assert value_at_risk(ONLY_A, rets, alpha=0.80) == pytest.approx(0.04)
    assert conditional_value_at_risk(ONLY_A, rets, alpha=0.80) == pytest.approx(0.0625)
    # between order statistics no interpolation: k = ceil(20 * 0.07) = 2
    assert value_at_risk(ONLY_A, rets, alpha=0.93) == pytest.approx(0.06)


def test_historical_quantile_is_robust_to_rounding_of_t_times_level():
    # 100 * (1 - 0.95) = 5.000000000000004 in floating point: still the 5th smallest
    rets = one_asset(np.random.default_rng(1).permutation(-np.arange(1, 101) / 1000))
    assert value_at_risk(ONLY_A, rets, alpha=0.95) == pytest.approx(0.096)
    assert conditional_value_at_risk(ONLY_A, rets, alpha=0.95) == pytest.approx(0.098)


def test_historical_cvar_includes_ties():
    rets = one_asset([-0.05, -0.05, -0.05] + [0.01] * 17)
    assert value_at_risk(ONLY_A, rets, alpha=0.95) == pytest.approx(0.05)
    assert conditional_value_at_risk(ONLY_A, rets, alpha=0.95) == pytest.approx(0.05)


def test_historical_portfolio_combines_assets_by_label():
    rets = pd.DataFrame({"X": [-0.10, 0.02, 0.04, 0.0], "Y": [0.02, -0.10, 0.0, 0.04]})
    w = pd.Series({"Y": 0.5, "X": 0.5})
    # portfolio returns -0.04, -0.04, 0.02, 0.02
    assert value_at_risk(w, rets, alpha=0.75) == pytest.approx(0.04)


def test_cornish_fisher_reduces_to_gaussian_without_skew_and_excess_kurtosis():
    # {0, 0, 0, 0, +1, -1}: symmetric (skewness 0) with kurtosis m4 / m2^2 = 3 exactly
    base = np.array([0, 0, 0, 0, 1, -1] * 10, dtype=float)
    rets = one_asset(0.001 + 0.02 * base)
    assert stats.skew(rets["A"]) == pytest.approx(0.0, abs=1e-12)
    assert stats.kurtosis(rets["A"]) == pytest.approx(0.0, abs=1e-12)
    for alpha in (0.9, 0.95, 0.99):
        for fn in (value_at_risk, conditional_value_at_risk):
            cf = fn(ONLY_A, rets, alpha=alpha, method="cornish_fisher")
            gauss = fn(ONLY_A, rets, alpha=alpha, method="gaussian")
            assert cf == pytest.approx(gauss, rel=1e-10)


def zcf(z: float, s: float, k: float) -> float:
    return z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36


def test_cornish_fisher_matches_reference_with_scipy_moments(returns, weights):
    port = (returns @ weights).to_numpy()
    m, sd = port.mean(), port.std(ddof=1)
    skew, kurt = stats.skew(port), stats.kurtosis(port)  # moment (biased) estimators
    assert abs(skew) > 0.01 and kurt > 1  # the t(5) sample is not normal
    for alpha in (0.9, 0.95, 0.99):
        expected_var = -(m + zcf(stats.norm.ppf(1 - alpha), skew, kurt) * sd)
        got = value_at_risk(weights, returns, alpha=alpha, method="cornish_fisher")
        assert got == pytest.approx(expected_var, rel=1e-10)
        # CVaR: average of the modified quantile over tail levels, by quadrature over u
        avg = integrate.quad(lambda u: zcf(stats.norm.ppf(u), skew, kurt), 0, 1 - alpha, limit=200)[
            0
        ] / (1 - alpha)
        cvar = conditional_value_at_risk(weights, returns, alpha=alpha, method="cornish_fisher")
        assert cvar == pytest.approx(-(m + avg * sd), rel=1e-7)
        assert cvar >= got


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("alpha", [0.8, 0.9, 0.95, 0.975, 0.99])
def test_cvar_at_least_var(returns, weights, method, alpha):
    var = value_at_risk(weights, returns, alpha=alpha, method=method)
    assert conditional_value_at_risk(weights, returns, alpha=alpha, method=method) >= var


def test_constant_returns_have_no_dispersion():
    rets = one_asset([0.01] * 30)
    for method in METHODS:
        assert value_at_risk(ONLY_A, rets, method=method) == pytest.approx(-0.01)
        assert conditional_value_at_risk(ONLY_A, rets, method=method) == pytest.approx(-0.01)


def test_expected_shortfall_is_cvar():
    assert expected_shortfall is conditional_value_at_risk


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.5, -0.1, np.nan])
def test_alpha_outside_unit_interval(returns, weights, alpha):
    with pytest.raises(InputError, match=r"alpha must be in \(0, 1\)"):
        value_at_risk(weights, returns, alpha=alpha)
    with pytest.raises(InputError, match=r"alpha must be in \(0, 1\)"):
        conditional_value_at_risk(weights, returns, alpha=alpha)


def test_alpha_not_a_number(returns, weights):
    with pytest.raises(InputError, match=r"alpha must be a number in \(0, 1\), got 'high'"):
        value_at_risk(weights, returns, alpha="high")


def test_unknown_method_lists_valid_ones(returns, weights):
    with pytest.raises(
        InputError,
        match=r"unknown method 'normal'; valid methods: 'historical', 'gaussian', "
        r"'cornish_fisher'",
    ):
        value_at_risk(weights, returns, method="normal")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "historical"}, r"value_at_risk with method='historical' needs returns="),
        ({"method": "cornish_fisher"}, r"method='cornish_fisher' needs returns="),
        ({"method": "gaussian"}, r"needs returns= .* or, for method='gaussian', both mu= and"),
        (
            {"method": "gaussian", "mu": pd.Series(0.05, index=ASSETS)},
            r"both mu= and cov=",
        ),
    ],
)
def test_missing_inputs(weights, kwargs, match):
    with pytest.raises(InputError, match=match):
        value_at_risk(weights, **kwargs)


def test_returns_and_moments_are_exclusive(returns, weights, cov):
    with pytest.raises(InputError, match=r"conditional_value_at_risk: give either returns= or"):
        conditional_value_at_risk(weights, returns, method="gaussian", cov=cov)


def test_cornish_fisher_outside_domain_of_validity():
    # a uniform sample: excess kurtosis -1.2 bends the expansion back inside the tail
    rets = one_asset(np.linspace(-0.02, 0.02, 401))
    with pytest.raises(
        InputError, match=r"Cornish-Fisher expansion is not monotone over the 5.0% tail.*histor"
    ):
        value_at_risk(ONLY_A, rets, method="cornish_fisher")
    with pytest.raises(InputError, match=r"conditional_value_at_risk: the Cornish-Fisher"):
        conditional_value_at_risk(ONLY_A, rets, method="cornish_fisher")


def test_weights_errors(cov, weights, returns):
    with pytest.raises(InputError, match=r"weights must be a pandas Series"):
        portfolio_volatility(weights.to_numpy(), cov)
    with pytest.raises(InputError, match=r"missing from weights: D"):
        portfolio_volatility(weights.drop("D"), cov)
    with pytest.raises(InputError, match=r"in weights but not in cov: E"):
        risk_contributions(pd.concat([weights, pd.Series({"E": 0.1})]), cov)
    with pytest.raises(InputError, match=r"in weights but not in returns: E"):
        value_at_risk(pd.concat([weights, pd.Series({"E": 0.1})]), returns)
    bad = weights.copy()
    bad["B"] = np.inf
    with pytest.raises(InputError, match=r"weights has NaN or inf values for assets: B"):
        portfolio_volatility(bad, cov)
    with pytest.raises(InputError, match=r"weights has duplicate asset ids: A"):
        portfolio_volatility(pd.concat([weights, weights.iloc[:1]]), cov)
    with pytest.raises(InputError, match=r"weights must be numeric"):
        portfolio_volatility(pd.Series(["x"] * 4, index=ASSETS), cov)
    with pytest.raises(InputError, match=r"in weights but not in mu: D"):
        portfolio_return(weights, pd.Series(0.05, index=ASSETS[:3]))
    with pytest.raises(InputError, match=r"mu must be a pandas Series"):
        portfolio_return(weights, [0.05] * 4)
    with pytest.raises(InputError, match=r"missing from mu: D"):
        value_at_risk(weights, method="gaussian", mu=pd.Series(0.05, index=ASSETS[:3]), cov=cov)


def test_cov_errors(cov, weights):
    with pytest.raises(InputError, match=r"cov must be a pandas DataFrame .* got ndarray"):
        portfolio_volatility(weights, cov.to_numpy())
    with pytest.raises(InputError, match=r"cov must be square, got shape \(4, 3\)"):
        portfolio_volatility(weights, cov.iloc[:, :3])
    nan = cov.copy()
    nan.iloc[2, 2] = np.nan
    with pytest.raises(InputError, match=r"cov has NaN or inf values for assets: C"):
        portfolio_volatility(weights, nan)
    asym = cov.copy()
    asym.iloc[3, 0] += 1.0
    with pytest.raises(InputError, match=r"cov is not symmetric: entry \(A, D\) = .* but \(D, A\)"):
        risk_contributions(weights, asym)
    neg = cov.copy()
    neg.iloc[1, 1] = -0.01
    with pytest.raises(InputError, match=r"cov has negative variances for assets: B"):
        portfolio_volatility(weights, neg)
    indefinite = pd.DataFrame([[0.01, 0.05], [0.05, 0.01]], index=["X", "Y"], columns=["X", "Y"])
    with pytest.raises(InputError, match=r"cov is not positive semidefinite: smallest eigen"):
        portfolio_volatility(pd.Series({"X": 1.0, "Y": -1.0}), indefinite)
    with pytest.raises(InputError, match=r"only in rows: D; only in columns: E"):
        portfolio_volatility(weights, cov.rename(columns={"D": "E"}))


def test_zero_volatility_contributions():
    cov = pd.DataFrame([[0.04, 0.04], [0.04, 0.04]], index=["X", "Y"], columns=["X", "Y"])
    with pytest.raises(InputError, match=r"risk contributions are undefined .* zero volatility"):
        risk_contributions(pd.Series({"X": 1.0, "Y": -1.0}), cov)
    with pytest.raises(InputError, match=r"zero volatility"):
        risk_contributions(pd.Series({"X": 0.0, "Y": 0.0}), cov)


def test_returns_errors(weights, returns):
    bad = returns.copy()
    bad.iloc[3, 1] = np.nan
    with pytest.raises(InputError, match=r"returns has NaN or inf values for assets: B"):
        value_at_risk(weights, bad)
    with pytest.raises(InputError, match=r"returns must be a pandas DataFrame"):
        value_at_risk(weights, returns.to_numpy())


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 8), rank=st.integers(1, 8))
def test_contributions_sum_to_volatility_property(seed, n, rank):
    rng = np.random.default_rng(seed)
    labels = [f"X{i}" for i in range(n)]
    a = rng.normal(size=(n, rank)) * rng.uniform(0.05, 0.5, size=(n, 1))
    cov = pd.DataFrame(a @ a.T, index=labels, columns=labels)  # PSD, possibly singular
    w = pd.Series(rng.normal(size=n), index=labels).iloc[rng.permutation(n)]
    sigma = portfolio_volatility(w, cov)
    if sigma < 1e-6 * np.abs(w).sum():
        with pytest.raises(InputError, match="zero volatility"):
            risk_contributions(w, cov)
        return
    rc = risk_contributions(w, cov)
    pd.testing.assert_index_equal(rc.index, w.index)
    assert rc.sum() == pytest.approx(sigma, rel=1e-9)
    assert risk_contributions(w, cov, relative=True).sum() == pytest.approx(1.0, rel=1e-9)
