"""Tests of models.estimates.Estimates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.estimates import Estimates
from models.expected_returns import historical_mean
from models.returns import from_prices
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance

ASSETS = ["US_EQ", "INTL_EQ", "BONDS", "CASH"]


def cov_matrix(labels=ASSETS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(labels)
    a = rng.normal(size=(n, n)) * 0.1
    return pd.DataFrame(a @ a.T + 0.001 * np.eye(n), index=labels, columns=labels)


def mu_series(labels=ASSETS) -> pd.Series:
    return pd.Series(np.linspace(0.02, 0.08, len(labels)), index=labels)


def factor_model(labels=ASSETS, seed: int = 2) -> FactorCovariance:
    rng = np.random.default_rng(seed)
    loadings = pd.DataFrame(rng.normal(size=(len(labels), 2)), index=labels, columns=["mkt", "val"])
    fcov = pd.DataFrame(
        [[0.03, 0.004], [0.004, 0.01]], index=["mkt", "val"], columns=["mkt", "val"]
    )
    specific = pd.Series(np.linspace(0.01, 0.02, len(labels)), index=labels)
    return FactorCovariance(loadings, fcov, specific)


# ---------------------------------------------------------------------------------------------
# valid inputs
# ---------------------------------------------------------------------------------------------


def test_properties_match_numpy() -> None:
    cov = cov_matrix()
    est = Estimates(mu_series(), cov, periods_per_year=12, source="test")
    assert list(est.assets) == ASSETS
    np.testing.assert_allclose(est.volatility, np.sqrt(np.diag(cov)))
    assert list(est.volatility.index) == ASSETS
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(est.correlation, cov / np.outer(sd, sd), atol=1e-15)
    assert list(est.correlation.columns) == ASSETS
    assert est.periods_per_year == 12 and est.source == "test" and est.factors is None


def test_reordered_cov_is_aligned_to_mu() -> None:
    cov = cov_matrix()
    shuffled = cov.loc[ASSETS[::-1], ASSETS[1:] + ASSETS[:1]]
    est = Estimates(mu_series(), shuffled)
    assert list(est.cov.index) == ASSETS and list(est.cov.columns) == ASSETS
    pd.testing.assert_frame_equal(est.cov, cov)


def test_inputs_are_copied_and_frozen() -> None:
    mu, cov = mu_series(), cov_matrix()
    est = Estimates(mu, cov)
    cov.iloc[0, 0] = 99.0
    mu.iloc[0] = 99.0
    assert est.cov.iloc[0, 0] != 99.0 and est.mu.iloc[0] != 99.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.mu = mu  # type: ignore[misc]


def test_zero_variance_asset_correlation() -> None:
    cov = cov_matrix()
    cov.loc["CASH", :] = 0.0
    cov.loc[:, "CASH"] = 0.0
    est = Estimates(mu_series(), cov)
    assert est.volatility["CASH"] == 0.0
    corr = est.correlation
    assert corr.loc["CASH", "CASH"] == 1.0
    assert (corr.loc["CASH"].drop("CASH") == 0.0).all()
    assert np.isfinite(corr.to_numpy()).all()


def test_tolerances_accept_rounding_noise() -> None:
    cov = cov_matrix()
    noisy = cov.copy()
    noisy.iloc[0, 1] += 1e-12  # asymmetric by less than 1e-8 relative
    Estimates(mu_series(), noisy)
    # A singular PSD matrix with eigenvalue -1e-12 from rounding is accepted.
    v = np.ones(4) / 2
    singular = pd.DataFrame(0.04 * np.outer(v, v) - 1e-12 * np.eye(4), index=ASSETS, columns=ASSETS)
    Estimates(mu_series(), singular)


def test_factor_structure_checked_and_reordered() -> None:
    fm = factor_model()
    est = Estimates(mu_series(), fm.cov, factors=fm)
    assert est.factors is fm
    # Factors given in another asset order are reordered like cov.
    rev = fm.reindex(pd.Index(ASSETS[::-1]))
    est2 = Estimates(mu_series(), fm.cov, factors=rev)
    assert list(est2.factors.assets) == ASSETS
    pd.testing.assert_frame_equal(est2.factors.cov, fm.cov)


def test_real_data_estimates(sp500_prices: pd.DataFrame, french_industries: pd.DataFrame) -> None:
    r = from_prices(sp500_prices)
    est = Estimates(historical_mean(r), r.cov() * 252, periods_per_year=252)
    assert list(est.assets) == list(sp500_prices.columns)
    assert est.volatility.between(0.15, 0.8).all()
    corr = est.correlation
    np.testing.assert_allclose(corr, r.corr(), atol=1e-12)
    # Near-collinear industries still pass as PSD.
    ind = Estimates(historical_mean(french_industries), french_industries.cov() * 12)
    assert ind.volatility.between(0.1, 0.35).all()
    # A factor model fitted by PCA (2 factors + residual variances) is consistent.
    c = french_industries.cov().to_numpy() * 12
    vals, vecs = np.linalg.eigh(c)
    b = vecs[:, -2:] * np.sqrt(vals[-2:])
    resid = np.diag(c - b @ b.T).clip(min=0)
    labels = french_industries.columns
    fm = FactorCovariance(
        pd.DataFrame(b, index=labels, columns=["pc1", "pc2"]),
        pd.DataFrame(np.eye(2), index=["pc1", "pc2"], columns=["pc1", "pc2"]),
        pd.Series(resid, index=labels),
    )
    Estimates(historical_mean(french_industries), fm.cov, factors=fm)
    with pytest.raises(InputError, match="factors.cov does not match cov"):
        Estimates(historical_mean(french_industries), ind.cov, factors=fm)


# ---------------------------------------------------------------------------------------------
# error paths: each message names the check and the culprit
# ---------------------------------------------------------------------------------------------


def test_error_types() -> None:
    with pytest.raises(InputError, match="mu must be a pandas Series, got dict"):
        Estimates(dict(mu_series()), cov_matrix())  # type: ignore[arg-type]
    with pytest.raises(InputError, match="cov must be a pandas DataFrame, got ndarray"):
        Estimates(mu_series(), cov_matrix().to_numpy())  # type: ignore[arg-type]
    with pytest.raises(InputError, match="factors must be .*FactorCovariance.*got DataFrame"):
        Estimates(mu_series(), cov_matrix(), factors=cov_matrix())  # type: ignore[arg-type]
    for bad in (0, -12, np.nan, np.inf, "12", True):
        with pytest.raises(InputError, match="periods_per_year must be a positive number"):
            Estimates(mu_series(), cov_matrix(), periods_per_year=bad)  # type: ignore[arg-type]
    assert Estimates(mu_series(), cov_matrix(), periods_per_year=np.int64(52)).periods_per_year
    with pytest.raises(InputError, match="source must be a string"):
        Estimates(mu_series(), cov_matrix(), source=3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="mu is empty"):
        Estimates(pd.Series([], dtype=float), pd.DataFrame())
    text = mu_series().astype(str)
    with pytest.raises(InputError, match="mu must be numeric"):
        Estimates(text, cov_matrix())
    cov = cov_matrix()
    cov["BONDS"] = "x"
    with pytest.raises(InputError, match="cov must be numeric; non-numeric columns: BONDS$"):
        Estimates(mu_series(), cov)


def test_error_duplicate_labels() -> None:
    labels = ["A", "B", "A"]
    with pytest.raises(InputError, match="mu has duplicate asset ids: A"):
        Estimates(mu_series(labels), cov_matrix(["A", "B", "C"]))
    cov = cov_matrix(["A", "B", "C"])
    cov.index = labels
    with pytest.raises(InputError, match="cov rows has duplicate asset ids: A"):
        Estimates(mu_series(["A", "B", "C"]), cov)


def test_error_label_mismatch_names_assets() -> None:
    cov = cov_matrix(["US_EQ", "INTL_EQ", "BONDS", "GOLD"])
    with pytest.raises(
        InputError, match="missing from cov rows: CASH; in cov rows but not in mu: GOLD"
    ):
        Estimates(mu_series(), cov)
    odd = cov_matrix().rename(columns={"CASH": "MMF"})
    with pytest.raises(InputError, match="missing from cov columns: CASH.*not in mu: MMF"):
        Estimates(mu_series(), odd)


def test_error_non_finite_names_assets() -> None:
    mu = mu_series()
    mu["BONDS"] = np.nan
    with pytest.raises(InputError, match="mu has NaN or inf values for assets: BONDS"):
        Estimates(mu, cov_matrix())
    cov = cov_matrix()
    cov.loc["INTL_EQ", "CASH"] = np.inf
    with pytest.raises(InputError, match="cov has NaN or inf values for assets: INTL_EQ"):
        Estimates(mu_series(), cov)


def test_error_asymmetric_names_worst_pair() -> None:
    cov = cov_matrix()
    cov.loc["BONDS", "US_EQ"] += 1e-3
    cov.loc["CASH", "US_EQ"] += 1e-6
    with pytest.raises(InputError, match=r"not symmetric.*\((US_EQ, BONDS|BONDS, US_EQ)\)"):
        Estimates(mu_series(), cov)


def test_error_negative_variance_names_assets() -> None:
    cov = cov_matrix()
    cov.loc["CASH", "CASH"] = -0.01
    with pytest.raises(InputError, match="cov has negative variances for assets: CASH"):
        Estimates(mu_series(), cov)


def test_error_not_psd_gives_eigenvalue_and_advice() -> None:
    corr = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])  # impossible
    labels = ["A", "B", "C"]
    cov = pd.DataFrame(0.04 * corr, index=labels, columns=labels)
    min_eig = np.linalg.eigvalsh(cov.to_numpy())[0]
    with pytest.raises(InputError, match="not positive semidefinite") as info:
        Estimates(mu_series(labels), cov)
    assert f"{min_eig:.3g}" in str(info.value)
    assert "nearest_psd" in str(info.value)


def test_error_factors_on_other_assets() -> None:
    fm = factor_model(["US_EQ", "INTL_EQ", "BONDS", "GOLD"])
    with pytest.raises(
        InputError, match="missing from factors: CASH; in factors but not in mu: GOLD"
    ):
        Estimates(mu_series(), fm.cov.set_axis(ASSETS).set_axis(ASSETS, axis=1), factors=fm)


def test_error_factors_do_not_match_cov() -> None:
    fm = factor_model()
    cov = fm.cov.copy()
    cov.loc["BONDS", "CASH"] += 1e-4
    cov.loc["CASH", "BONDS"] += 1e-4
    with pytest.raises(
        InputError, match=r"factors.cov does not match cov.*\((BONDS, CASH|CASH, BONDS)\)"
    ):
        Estimates(mu_series(), cov, factors=fm)


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


@st.composite
def psd_inputs(draw: st.DrawFn) -> tuple[pd.Series, pd.DataFrame]:
    n = draw(st.integers(min_value=1, max_value=6))
    k = draw(st.integers(min_value=1, max_value=n))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    scale = draw(st.sampled_from([1e-4, 1e-2, 1.0, 100.0]))
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, k))
    c = scale * a @ a.T  # rank k: singular when k < n
    labels = [f"X{i}" for i in rng.permutation(n)]
    perm = list(rng.permutation(labels))
    cov = pd.DataFrame(c, index=labels, columns=labels).loc[perm, perm]
    return pd.Series(rng.normal(size=n), index=labels), cov


@settings(max_examples=30, deadline=None)
@given(psd_inputs())
def test_property_valid_psd_accepted_and_consistent(inputs) -> None:
    mu, cov = inputs
    est = Estimates(mu, cov)
    assert est.assets.equals(mu.index)
    assert est.cov.index.equals(mu.index) and est.cov.columns.equals(mu.index)
    pd.testing.assert_frame_equal(est.cov, cov.loc[mu.index, mu.index])
    np.testing.assert_allclose(est.volatility**2, np.diag(est.cov), rtol=1e-12)
    corr = est.correlation.to_numpy()
    np.testing.assert_array_equal(np.diag(corr), 1.0)
    np.testing.assert_allclose(corr, corr.T)
    assert (np.abs(corr) <= 1.0).all()
    # The correlation and volatilities rebuild the covariance.
    vol = est.volatility.to_numpy()
    np.testing.assert_allclose(corr * np.outer(vol, vol), est.cov, rtol=1e-9, atol=1e-14)
