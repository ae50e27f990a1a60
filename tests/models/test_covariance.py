"""Tests for models.covariance: known answers, real data, error paths, properties."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
import sklearn.covariance
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate

from models import _shrinkage, covariance
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance

# --------------------------------------------------------------------------- helpers


def make_returns(
    t: int, n: int, *, seed: int = 0, monthly: bool = False, scale: float = 0.01
) -> pd.DataFrame:
    """Fat-tailed returns with a common factor, labelled A00.., business days or month ends."""
    rng = np.random.default_rng(seed)
    market = rng.standard_normal((t, 1))
    beta = rng.uniform(0.5, 1.5, n)
    values = scale * (market * beta + rng.standard_t(5, (t, n)) * rng.uniform(0.5, 2.0, n))
    if monthly:
        index = pd.date_range("2000-01-31", periods=t, freq="ME")
    else:
        index = pd.bdate_range("2015-01-01", periods=t)
    return pd.DataFrame(values, index=index, columns=[f"A{i:02d}" for i in range(n)])


def assert_valid_cov(cov: pd.DataFrame, labels: pd.Index) -> None:
    """Labelled like the input on both axes, finite, symmetric and PSD."""
    assert isinstance(cov, pd.DataFrame)
    assert cov.index.equals(labels) and cov.columns.equals(labels)
    c = cov.to_numpy()
    assert np.isfinite(c).all()
    scale = max(float(np.abs(c).max()), 1e-300)
    assert np.allclose(c, c.T, rtol=0, atol=1e-12 * scale)
    w = np.linalg.eigvalsh(c)
    assert w.min() >= -1e-10 * scale


def ref_lw_constant_correlation(x: np.ndarray) -> np.ndarray:
    """Ledoit & Wolf (2004, "Honey, I shrunk ..."), term by term from the paper."""
    t, n = x.shape
    y = x - x.mean(axis=0)
    s = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            s[i, j] = np.sum(y[:, i] * y[:, j]) / t
    r_sum = 0.0
    for i in range(n - 1):
        for j in range(i + 1, n):
            r_sum += s[i, j] / np.sqrt(s[i, i] * s[j, j])
    rbar = 2.0 / ((n - 1) * n) * r_sum
    f = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            f[i, j] = s[i, i] if i == j else rbar * np.sqrt(s[i, i] * s[j, j])
    pi = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            pi[i, j] = np.mean((y[:, i] * y[:, j] - s[i, j]) ** 2)

    def theta(k: int, i: int, j: int) -> float:  # theta_kk,ij
        return float(np.mean((y[:, k] ** 2 - s[k, k]) * (y[:, i] * y[:, j] - s[i, j])))

    rho = float(np.trace(pi))
    for i in range(n):
        for j in range(n):
            if i != j:
                rho += (
                    rbar
                    / 2
                    * (
                        np.sqrt(s[j, j] / s[i, i]) * theta(i, i, j)
                        + np.sqrt(s[i, i] / s[j, j]) * theta(j, i, j)
                    )
                )
    gamma = float(np.sum((f - s) ** 2))
    kappa = (pi.sum() - rho) / gamma
    delta = max(0.0, min(kappa / t, 1.0))
    return delta * f + (1 - delta) * s


def ref_lw_single_factor(x: np.ndarray) -> np.ndarray:
    """Ledoit & Wolf (2003, J. Empirical Finance), market = equal-weighted average."""
    t, n = x.shape
    y = x - x.mean(axis=0)
    mkt = x.mean(axis=1)
    m = mkt - mkt.mean()
    s = np.array([[np.mean(y[:, i] * y[:, j]) for j in range(n)] for i in range(n)])
    s0 = np.array([np.mean(y[:, i] * m) for i in range(n)])
    s00 = float(np.mean(m * m))
    f = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            f[i, j] = s[i, i] if i == j else s0[i] * s0[j] / s00
    pi = np.array(
        [[np.mean((y[:, i] * y[:, j] - s[i, j]) ** 2) for j in range(n)] for i in range(n)]
    )
    rho = float(np.trace(pi))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            r_t = (s0[j] * s00 * y[:, i] + s0[i] * s00 * y[:, j] - s0[i] * s0[j] * m) * m
            r_t = r_t * y[:, i] * y[:, j] / s00**2 - f[i, j] * s[i, j]
            rho += float(np.mean(r_t))
    gamma = float(np.sum((f - s) ** 2))
    delta = max(0.0, min((pi.sum() - rho) / gamma / t, 1.0))
    return delta * f + (1 - delta) * s


def off_diagonal_eig_residual(est: np.ndarray, s: np.ndarray) -> float:
    """Relative size of the commutator [S, est]: 0 when they share eigenvectors."""
    comm = s @ est - est @ s
    return float(np.linalg.norm(comm) / (np.linalg.norm(s) * np.linalg.norm(est)))


ESTIMATORS: dict[str, Callable[..., pd.DataFrame]] = {
    "sample": covariance.sample,
    "ewma": lambda r, **kw: covariance.ewma(r, halflife=20, **kw),
    "lw_identity": covariance.ledoit_wolf,
    "lw_constant_correlation": lambda r, **kw: covariance.ledoit_wolf(
        r, target="constant_correlation", **kw
    ),
    "lw_single_factor": lambda r, **kw: covariance.ledoit_wolf(r, target="single_factor", **kw),
    "oas": covariance.oas,
    "nonlinear": covariance.nonlinear_shrinkage,
    "factor_model": lambda r, **kw: covariance.factor_model(r, n_factors=1, **kw).cov,
}


# --------------------------------------------------------------------------- sample / ewma


def test_sample_matches_pandas_and_annualizes_by_frequency() -> None:
    daily = make_returns(300, 5, seed=1)
    pd.testing.assert_frame_equal(covariance.sample(daily), daily.cov() * 252, rtol=1e-12)
    monthly = make_returns(120, 4, seed=2, monthly=True)
    pd.testing.assert_frame_equal(covariance.sample(monthly), monthly.cov() * 12, rtol=1e-12)
    weekly = daily.iloc[::5]
    weekly.index = pd.date_range("2015-01-02", periods=len(weekly), freq="W-FRI")
    pd.testing.assert_frame_equal(covariance.sample(weekly), weekly.cov() * 52, rtol=1e-12)
    pd.testing.assert_frame_equal(
        covariance.sample(daily, periods_per_year=260), daily.cov() * 260, rtol=1e-12
    )


def test_ewma_matches_explicit_weights() -> None:
    r = make_returns(60, 4, seed=3)
    x = r.to_numpy()
    halflife = 7.5
    w = np.array([0.5 ** ((len(x) - 1 - t) / halflife) for t in range(len(x))])
    w = w / w.sum()
    mean = sum(w[t] * x[t] for t in range(len(x)))
    expected = sum(w[t] * np.outer(x[t] - mean, x[t] - mean) for t in range(len(x))) * 252
    got = covariance.ewma(r, halflife=halflife)
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-12, atol=0)
    assert_valid_cov(got, r.columns)


def test_ewma_weights_recent_observations_most() -> None:
    r = make_returns(400, 3, seed=4)
    r.iloc[-50:] *= 4.0  # a high-volatility regime at the end
    vol_ewma = np.sqrt(np.diag(covariance.ewma(r, halflife=10)))
    vol_sample = np.sqrt(np.diag(covariance.sample(r)))
    assert (vol_ewma > 1.5 * vol_sample).all()
    # A very long half-life tends to the ddof = 0 sample covariance.
    long = covariance.ewma(r, halflife=1e9).to_numpy()
    np.testing.assert_allclose(long, np.cov(r.to_numpy(), rowvar=False, ddof=0) * 252, rtol=1e-6)


# --------------------------------------------------------------------------- Ledoit-Wolf, OAS


@pytest.mark.parametrize(("t", "n"), [(200, 10), (30, 50), (3, 2)])
def test_ledoit_wolf_identity_and_oas_equal_sklearn(t: int, n: int) -> None:
    r = make_returns(t, n, seed=t + n)
    x = r.to_numpy()
    lw, _ = sklearn.covariance.ledoit_wolf(x)
    np.testing.assert_allclose(covariance.ledoit_wolf(r).to_numpy(), lw * 252, rtol=0, atol=1e-10)
    oa, _ = sklearn.covariance.oas(x)
    np.testing.assert_allclose(covariance.oas(r).to_numpy(), oa * 252, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("t", "n", "seed"), [(120, 8, 0), (40, 15, 1), (10, 25, 2), (500, 3, 3)])
@pytest.mark.parametrize(
    ("target", "reference"),
    [
        ("constant_correlation", ref_lw_constant_correlation),
        ("single_factor", ref_lw_single_factor),
    ],
)
def test_structured_targets_equal_naive_reference(
    target: str, reference: Callable[[np.ndarray], np.ndarray], t: int, n: int, seed: int
) -> None:
    r = make_returns(t, n, seed=seed)
    got = covariance.ledoit_wolf(r, target=target, periods_per_year=1)
    np.testing.assert_allclose(got.to_numpy(), reference(r.to_numpy()), rtol=1e-10, atol=1e-18)
    assert_valid_cov(got, r.columns)


def test_structured_target_shrinkage_intensity_in_unit_interval() -> None:
    # Very few observations: the estimate sits between the sample and the target.
    for seed in range(5):
        y = make_returns(15, 30, seed=seed).to_numpy()
        y = y - y.mean(axis=0)
        for kernel in (_shrinkage.lw_constant_correlation, _shrinkage.lw_single_factor):
            _, delta = kernel(y)
            assert 0.0 <= delta <= 1.0


def test_single_asset_targets_return_the_variance() -> None:
    r = make_returns(50, 1, seed=5)
    var = float(r.iloc[:, 0].var(ddof=0)) * 252
    for target in covariance.TARGETS:
        got = covariance.ledoit_wolf(r, target=target)
        assert got.shape == (1, 1)
        assert got.iloc[0, 0] == pytest.approx(var, rel=1e-12)


# --------------------------------------------------------------------------- nonlinear shrinkage


def _simulate(n: int, t: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Returns from a known covariance: eigenvalues 20% at 1, 40% at 3, 40% at 10 (x 1e-4)."""
    rng = np.random.default_rng(seed)
    spec = np.concatenate(
        [np.full(n // 5, 1.0), np.full(2 * n // 5, 3.0), np.full(n - n // 5 - 2 * n // 5, 10.0)]
    )
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    true = (q * spec) @ q.T * 1e-4
    x = rng.standard_normal((t, n)) @ np.linalg.cholesky(true).T
    return pd.DataFrame(x, index=pd.bdate_range("2020-01-01", periods=t)), true


@pytest.mark.parametrize(("n", "t"), [(100, 50), (50, 200)])
def test_nonlinear_shrinkage_beats_sample_in_frobenius_loss(n: int, t: int) -> None:
    loss_nl, loss_sample, loss_oracle = [], [], []
    for seed in range(3):
        r, true = _simulate(n, t, seed)
        nl = covariance.nonlinear_shrinkage(r, periods_per_year=1).to_numpy()
        s = np.cov(r.to_numpy(), rowvar=False)  # covariance.sample refuses T - 1 < n
        # The oracle keeps the sample eigenvectors u_i and uses the true u_i' Sigma u_i.
        _, u = np.linalg.eigh(s)
        oracle = (u * np.diag(u.T @ true @ u)) @ u.T
        loss_nl.append(np.linalg.norm(nl - true) ** 2)
        loss_sample.append(np.linalg.norm(s - true) ** 2)
        loss_oracle.append(np.linalg.norm(oracle - true) ** 2)
    assert np.mean(loss_nl) < 0.8 * np.mean(loss_sample)
    # Percentage relative improvement in average loss (the paper's PRIAL) close to the oracle's.
    prial = (np.mean(loss_sample) - np.mean(loss_nl)) / (
        np.mean(loss_sample) - np.mean(loss_oracle)
    )
    assert prial > 0.8


@pytest.mark.parametrize(("t", "n"), [(200, 50), (50, 100), (40, 39), (3, 4), (3, 1)])
def test_nonlinear_shrinkage_keeps_eigenvectors_and_is_positive_definite(t: int, n: int) -> None:
    r = make_returns(t, n, seed=t * n)
    nl = covariance.nonlinear_shrinkage(r)
    assert_valid_cov(nl, r.columns)
    s = np.cov(r.to_numpy(), rowvar=False).reshape(n, n)  # sample refuses T - 1 < n
    est = nl.to_numpy()
    assert off_diagonal_eig_residual(est, s) < 1e-10
    _, u = np.linalg.eigh(s)
    rotated = u.T @ est @ u
    assert np.abs(rotated - np.diag(np.diag(rotated))).max() < 1e-10 * np.abs(rotated).max()
    assert np.linalg.eigvalsh(est).min() > 0


def _kernel_reference(lam: np.ndarray, h: float, at: float) -> tuple[float, float]:
    """Epanechnikov KDE with bandwidths h*lam_j and its Hilbert transform at ``at``.

    The Hilbert transform (1/pi) PV int f(x) / (x - at) dx by quadrature (Cauchy weight).
    """
    dens, hilb = 0.0, 0.0
    for lj in lam:
        bw = h * lj
        lo, hi = lj - np.sqrt(5) * bw, lj + np.sqrt(5) * bw

        def k(x: float, lj: float = lj, bw: float = bw) -> float:
            return 3 / (4 * np.sqrt(5) * bw) * max(1 - (x - lj) ** 2 / (5 * bw**2), 0.0)

        dens += k(at)
        if lo < at < hi:
            val, _ = integrate.quad(k, lo, hi, weight="cauchy", wvar=at, epsabs=1e-13)
        else:
            val, _ = integrate.quad(lambda x, k=k: k(x) / (x - at), lo, hi, epsabs=1e-13)
        hilb += val / np.pi
    return dens / len(lam), hilb / len(lam)


@pytest.mark.parametrize(
    "x",
    [0.0, 0.5, -1.3, 2.2, np.sqrt(5), -np.sqrt(5), 3.0, 9.99, 10.01, -12.0, 50.0, 1e3, -1e4, 1e6],
)
def test_hilbert_transform_of_kernel_matches_quadrature(x: float) -> None:
    """Closed form (and its far-field series) against (1/pi) PV int K(t) / (t - x) dt."""
    root5 = np.sqrt(5)

    def kernel(t: float) -> float:
        return 3 / (4 * root5) * max(1 - t * t / 5, 0.0)

    if abs(x) < root5:
        ref, _ = integrate.quad(kernel, -root5, root5, weight="cauchy", wvar=x, epsabs=1e-13)
    else:
        ref, _ = integrate.quad(
            lambda t: kernel(t) / (t - x), -root5, root5, epsabs=0, epsrel=1e-13
        )
    got = _shrinkage.hilbert_epanechnikov(np.array([x]))[0]
    assert got == pytest.approx(ref / np.pi, rel=1e-12, abs=1e-13)


@pytest.mark.parametrize(("p", "n_eff"), [(6, 40), (6, 6), (9, 5), (30, 12)])
def test_nonlinear_eigenvalues_match_quadrature_reference(p: int, n_eff: int) -> None:
    rng = np.random.default_rng(p + n_eff)
    r = min(p, n_eff)
    positive = np.sort(rng.uniform(0.5, 4.0, r))
    lam = np.concatenate([np.zeros(p - r), positive])
    h = n_eff ** (-1 / 3)
    expected = []
    for li in positive:
        f, hf = _kernel_reference(positive, h, li)
        if p <= n_eff:
            c = p / n_eff
            expected.append(li / ((np.pi * c * li * f) ** 2 + (1 - c - np.pi * c * li * hf) ** 2))
        else:
            expected.append(li / (np.pi**2 * li**2 * (f**2 + hf**2)))
    if p > n_eff:
        _, hf0 = _kernel_reference(positive, h, 0.0)
        expected = [1 / (np.pi * (p - n_eff) / n_eff * hf0)] * (p - n_eff) + expected
    got = _shrinkage.nonlinear_shrinkage_eigenvalues(lam, n_eff)
    np.testing.assert_allclose(got, expected, rtol=1e-7)
    assert (got > 0).all()


# --------------------------------------------------------------------------- factor models


@pytest.mark.parametrize(("t", "n"), [(100, 6), (7, 6)])
def test_factor_model_with_all_factors_reproduces_sample(t: int, n: int) -> None:
    r = make_returns(t, n, seed=6)
    fm = covariance.factor_model(r, n_factors=n)
    assert isinstance(fm, FactorCovariance)
    s = covariance.sample(r)
    np.testing.assert_allclose(fm.cov.to_numpy(), s.to_numpy(), rtol=0, atol=1e-12)
    assert (fm.specific == 0).all()
    assert list(fm.loadings.columns) == [f"PC{i}" for i in range(1, n + 1)]


def test_factor_model_structure() -> None:
    r = make_returns(250, 8, seed=7)
    fm = covariance.factor_model(r, n_factors=3)
    b = fm.loadings.to_numpy()
    np.testing.assert_allclose(b.T @ b, np.eye(3), atol=1e-12)
    assert fm.loadings.index.equals(r.columns) and fm.specific.index.equals(r.columns)
    s = covariance.sample(r).to_numpy()
    lam = np.sort(np.linalg.eigvalsh(s))[::-1][:3]
    np.testing.assert_allclose(np.diag(fm.factor_cov), lam, rtol=1e-10)
    # Each eigen-pair holds, and the diagonal reproduces the sample variances.
    np.testing.assert_allclose(s @ b, b * lam, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.diag(fm.cov), np.diag(s), rtol=1e-12)
    assert (fm.specific > 0).all()
    lead = b[np.abs(b).argmax(axis=0), range(3)]
    assert (lead > 0).all()


def test_factor_regression_recovers_known_betas() -> None:
    rng = np.random.default_rng(8)
    t, n, k = 2000, 5, 3
    index = pd.bdate_range("2010-01-01", periods=t)
    f = pd.DataFrame(rng.standard_normal((t, k)) * 0.01, index=index, columns=["MKT", "SMB", "HML"])
    beta = rng.uniform(-1.0, 1.5, (n, k))
    spec_vol = np.linspace(0.002, 0.006, n)
    x = 0.0003 + f.to_numpy() @ beta.T + rng.standard_normal((t, n)) * spec_vol
    r = pd.DataFrame(x, index=index, columns=list("VWXYZ"))
    fr = covariance.factor_regression(r, f)
    np.testing.assert_allclose(fr.loadings.to_numpy(), beta, atol=0.03)
    np.testing.assert_allclose(fr.specific.to_numpy(), spec_vol**2 * 252, rtol=0.1)
    pd.testing.assert_frame_equal(fr.factor_cov, f.cov() * 252, check_names=False, rtol=1e-12)
    assert list(fr.loadings.columns) == ["MKT", "SMB", "HML"]
    # Exact OLS: compare with lstsq on the design matrix; residual ddof = 1 + k.
    design = np.column_stack([np.ones(t), f.to_numpy()])
    coef = np.linalg.lstsq(design, x, rcond=None)[0]
    np.testing.assert_allclose(fr.loadings.to_numpy(), coef[1:].T, rtol=1e-10)
    resid = x - design @ coef
    np.testing.assert_allclose(fr.specific, (resid**2).sum(0) / (t - 1 - k) * 252, rtol=1e-10)
    # Factor rows in another order are aligned to the returns' dates.
    shuffled = f.sample(frac=1.0, random_state=1)
    again = covariance.factor_regression(r, shuffled)
    np.testing.assert_allclose(again.loadings.to_numpy(), fr.loadings.to_numpy(), rtol=1e-10)


# --------------------------------------------------------------------------- nearest PSD


def _labelled(a: np.ndarray, labels: list[str] | None = None) -> pd.DataFrame:
    labels = labels or [f"X{i}" for i in range(len(a))]
    return pd.DataFrame(a, index=labels, columns=labels)


HIGHAM_A = np.array([[2, -1, 0, 0], [-1, 2, -1, 0], [0, -1, 2, -1], [0, 0, -1, 2]], dtype=float)


def _cvxpy_nearest_correlation(a: np.ndarray) -> np.ndarray:
    x = cp.Variable(a.shape, symmetric=True)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(x - a)), [x >> 0, cp.diag(x) == 1])
    problem.solve(solver=cp.CLARABEL)
    return x.value


@pytest.mark.parametrize("kind", ["covariance", "correlation"])
def test_nearest_psd_leaves_psd_matrix_unchanged(kind: str) -> None:
    r = make_returns(100, 6, seed=9)
    m = r.corr() if kind == "correlation" else covariance.sample(r)
    out, distance = covariance.nearest_psd(m, kind=kind, return_distance=True)
    pd.testing.assert_frame_equal(out, m, check_exact=True)
    assert distance == 0.0
    out.iloc[0, 0] = 99.0  # a copy, not a view
    assert m.iloc[0, 0] != 99.0


def test_nearest_psd_covariance_clips_eigenvalues() -> None:
    a = _labelled(HIGHAM_A - 1.5 * np.eye(4))
    out, distance = covariance.nearest_psd(a, return_distance=True)
    assert_valid_cov(out, a.index)
    w, v = np.linalg.eigh(a.to_numpy())
    expected = (v * np.clip(w, 0, None)) @ v.T
    np.testing.assert_allclose(out.to_numpy(), expected, atol=1e-12)
    assert distance == pytest.approx(np.linalg.norm(np.clip(w, None, 0)), rel=1e-10)
    # The PSD test is relative: a daily-scale covariance slightly outside the cone is repaired.
    small = a * 1e-4
    fixed, moved = covariance.nearest_psd(small, return_distance=True)
    np.testing.assert_allclose(fixed.to_numpy(), expected * 1e-4, atol=1e-16)
    assert moved > 0


def test_nearest_psd_correlation_matches_sdp_solution() -> None:
    a = _labelled(HIGHAM_A)
    out, distance = covariance.nearest_psd(a, kind="correlation", return_distance=True)
    assert_valid_cov(out, a.index)
    np.testing.assert_array_equal(np.diag(out), 1.0)
    sdp = _cvxpy_nearest_correlation(HIGHAM_A)
    np.testing.assert_allclose(out.to_numpy(), sdp, atol=1e-5)
    # Higham (2002), section 4: the nearest correlation matrix of this A.
    np.testing.assert_allclose(out.iloc[0, 1], -0.8084, atol=1e-4)
    np.testing.assert_allclose(out.iloc[0, 3], 0.1068, atol=1e-4)
    assert distance == pytest.approx(np.linalg.norm(HIGHAM_A - out.to_numpy()), rel=1e-12)


def test_nearest_psd_correlation_on_broken_real_correlation(sp500_prices: pd.DataFrame) -> None:
    corr = sp500_prices.loc["2010":"2018-06"].pct_change().dropna().corr()
    broken = corr.copy()
    broken.loc["AAPL", "MSFT"] = broken.loc["MSFT", "AAPL"] = -0.95
    broken.loc["AAPL", "AMD"] = broken.loc["AMD", "AAPL"] = 0.95
    broken.loc["MSFT", "AMD"] = broken.loc["AMD", "MSFT"] = 0.95
    assert np.linalg.eigvalsh(broken).min() < 0
    out = covariance.nearest_psd(broken, kind="correlation")
    assert_valid_cov(out, broken.index)
    np.testing.assert_array_equal(np.diag(out), 1.0)
    np.testing.assert_allclose(out, _cvxpy_nearest_correlation(broken.to_numpy()), atol=2e-5)


def test_nearest_psd_symmetrizes_and_aligns_columns() -> None:
    a = HIGHAM_A.copy()
    a[0, 1] += 0.2  # asymmetric
    m = _labelled(a, list("ABCD"))
    out = covariance.nearest_psd(m.loc[:, list("DCBA")])  # columns in another order
    expected = covariance.nearest_psd(_labelled((a + a.T) / 2, list("ABCD")))
    pd.testing.assert_frame_equal(out, expected)


# --------------------------------------------------------------------------- capital-market assumptions


VOL = pd.Series({"EQ": 0.16, "BD": 0.05, "RE": 0.12})
CORR = pd.DataFrame(
    [[1.0, 0.2, 0.6], [0.2, 1.0, 0.3], [0.6, 0.3, 1.0]], index=VOL.index, columns=VOL.index
)


def test_from_cma_round_trips_and_aligns() -> None:
    shuffled = CORR.loc[["RE", "EQ", "BD"], ["BD", "RE", "EQ"]]
    cov = covariance.from_cma(VOL, shuffled)
    assert_valid_cov(cov, VOL.index)
    vol = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(vol, VOL.to_numpy(), rtol=1e-15)
    np.testing.assert_allclose(cov / np.outer(vol, vol), CORR.to_numpy(), rtol=1e-14)
    assert cov.loc["EQ", "RE"] == pytest.approx(0.16 * 0.12 * 0.6, rel=1e-15)
    # A mapping works too.
    pd.testing.assert_frame_equal(covariance.from_cma(VOL.to_dict(), CORR), cov)


def test_from_cma_real_data_round_trip(french_industries: pd.DataFrame) -> None:
    vol = french_industries.std() * np.sqrt(12)
    corr = french_industries.corr()
    cov = covariance.from_cma(vol, corr)
    np.testing.assert_allclose(cov, french_industries.cov() * 12, rtol=1e-12)


def test_from_cma_repairs_non_psd_with_warning_or_raises_when_strict() -> None:
    bad = CORR.copy()
    bad.loc["EQ", "BD"] = bad.loc["BD", "EQ"] = 0.9
    bad.loc["EQ", "RE"] = bad.loc["RE", "EQ"] = 0.9
    bad.loc["BD", "RE"] = bad.loc["RE", "BD"] = -0.5
    smallest = np.linalg.eigvalsh(bad).min()
    assert smallest < 0
    with pytest.warns(RuntimeWarning, match=r"smallest eigenvalue -0\.\d+.*distance moved 0\.\d+"):
        cov = covariance.from_cma(VOL, bad)
    assert_valid_cov(cov, VOL.index)
    vol = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(vol, VOL, rtol=1e-12)
    repaired = cov / np.outer(vol, vol)
    np.testing.assert_allclose(
        repaired, covariance.nearest_psd(bad, kind="correlation"), atol=1e-12
    )
    with pytest.raises(InputError, match=re.escape(f"smallest eigenvalue {smallest:.6g}")):
        covariance.from_cma(VOL, bad, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid input raises no warning
        covariance.from_cma(VOL, CORR, strict=True)


# --------------------------------------------------------------------------- real data

SP500_WINDOW = ("2010-01-01", "2018-06-30")  # single-stock vols 13%-57% for every estimator


@pytest.fixture(scope="module")
def sp500_returns(sp500_prices: pd.DataFrame) -> pd.DataFrame:
    return sp500_prices.loc[SP500_WINDOW[0] : SP500_WINDOW[1]].pct_change().dropna()


REAL_ESTIMATORS: dict[str, Callable[[pd.DataFrame, int], pd.DataFrame]] = {
    "sample": lambda r, ppy: covariance.sample(r),
    "ewma": lambda r, ppy: covariance.ewma(r, halflife=ppy / 2),
    "lw_identity": lambda r, ppy: covariance.ledoit_wolf(r),
    "lw_constant_correlation": lambda r, ppy: covariance.ledoit_wolf(
        r, target="constant_correlation"
    ),
    "lw_single_factor": lambda r, ppy: covariance.ledoit_wolf(r, target="single_factor"),
    "oas": lambda r, ppy: covariance.oas(r),
    "nonlinear": lambda r, ppy: covariance.nonlinear_shrinkage(r),
    "factor_model": lambda r, ppy: covariance.factor_model(r, n_factors=3).cov,
    "factor_regression": lambda r, ppy: (
        covariance.factor_regression(r, r.mean(axis=1).to_frame("EW")).cov
    ),
}


@pytest.mark.parametrize("name", list(REAL_ESTIMATORS))
def test_real_sp500_daily(name: str, sp500_returns: pd.DataFrame) -> None:
    cov = REAL_ESTIMATORS[name](sp500_returns, 252)
    assert_valid_cov(cov, sp500_returns.columns)
    vol = np.sqrt(np.diag(cov))
    assert 0.10 <= vol.min() and vol.max() <= 0.60, pd.Series(vol, cov.index).round(3).to_dict()
    assert np.linalg.eigvalsh(cov).min() > 0


@pytest.mark.parametrize("name", list(REAL_ESTIMATORS))
def test_real_french_industries_monthly(name: str, french_industries: pd.DataFrame) -> None:
    cov = REAL_ESTIMATORS[name](french_industries, 12)
    assert_valid_cov(cov, french_industries.columns)
    vol = np.sqrt(np.diag(cov))
    # Diversified industry portfolios: 1949-2017 vols 13%-21%; the 6-month EWMA in calm 2017
    # puts non-durables at 8.8%.
    assert 0.05 <= vol.min() and vol.max() <= 0.40, pd.Series(vol, cov.index).round(3).to_dict()


@pytest.mark.parametrize(
    ("target", "reference"),
    [
        ("constant_correlation", ref_lw_constant_correlation),
        ("single_factor", ref_lw_single_factor),
    ],
)
def test_real_structured_targets_equal_reference(
    target: str,
    reference: Callable[[np.ndarray], np.ndarray],
    sp500_returns: pd.DataFrame,
    french_industries: pd.DataFrame,
) -> None:
    for r, ppy in ((sp500_returns, 252), (french_industries, 12)):
        got = covariance.ledoit_wolf(r, target=target)
        np.testing.assert_allclose(got, reference(r.to_numpy()) * ppy, rtol=1e-9)


def test_real_identity_and_oas_equal_sklearn(sp500_returns: pd.DataFrame) -> None:
    x = sp500_returns.to_numpy()
    lw = sklearn.covariance.ledoit_wolf(x)[0] * 252
    np.testing.assert_allclose(covariance.ledoit_wolf(sp500_returns), lw, rtol=0, atol=1e-10)
    oa = sklearn.covariance.oas(x)[0] * 252
    np.testing.assert_allclose(covariance.oas(sp500_returns), oa, rtol=0, atol=1e-10)


def test_real_factor_regression_on_fama_french(french_monthly: pd.DataFrame) -> None:
    industries = french_monthly[["NoDur", "Enrgy", "BusEq", "Utils", "Money"]]
    excess = industries.sub(french_monthly["RF"], axis=0)
    fr = covariance.factor_regression(excess, french_monthly[["MktRF", "SMB", "HML"]])
    assert fr.loadings["MktRF"].between(0.5, 1.5).all()
    assert fr.loadings.loc["BusEq", "MktRF"] > fr.loadings.loc["Utils", "MktRF"]
    assert_valid_cov(fr.cov, excess.columns)


# --------------------------------------------------------------------------- error paths


def test_returns_validation_errors() -> None:
    r = make_returns(50, 3, seed=10)
    with pytest.raises(InputError, match="returns must be a pandas DataFrame"):
        covariance.sample(r.to_numpy())
    bad = r.copy()
    bad.iloc[5, 1] = np.nan
    with pytest.raises(InputError, match="NaN or inf values for assets: A01"):
        covariance.nonlinear_shrinkage(bad)
    with pytest.raises(InputError, match="periods_per_year must be a positive number"):
        covariance.oas(r, periods_per_year=0)
    irregular = r.copy()
    irregular.index = pd.date_range("2000-01-01", periods=50, freq="15D")
    with pytest.raises(InputError, match="cannot infer periods per year"):
        covariance.ledoit_wolf(irregular)
    with pytest.raises(InputError, match="at least 3 are needed"):
        covariance.sample(r.iloc[:2], periods_per_year=252)


def test_unknown_target_lists_valid_ones() -> None:
    r = make_returns(50, 3)
    with pytest.raises(
        InputError,
        match=r"unknown ledoit_wolf target 'shrunk'; valid targets: 'identity', "
        r"'constant_correlation', 'single_factor'",
    ):
        covariance.ledoit_wolf(r, target="shrunk")


@pytest.mark.parametrize("halflife", [0, -3.0, float("nan"), float("inf"), "10", True, None])
def test_ewma_bad_halflife(halflife: object) -> None:
    with pytest.raises(InputError, match="halflife must be a positive"):
        covariance.ewma(make_returns(30, 2), halflife=halflife)


def test_constant_and_degenerate_returns_are_named() -> None:
    r = make_returns(60, 4, seed=11)
    r["FLAT"] = 0.001
    with pytest.raises(InputError, match="constant \\(zero variance\\) for assets: FLAT"):
        covariance.ledoit_wolf(r, target="constant_correlation")
    with pytest.raises(InputError, match="constant \\(zero variance\\) for assets: FLAT"):
        covariance.nonlinear_shrinkage(r)
    hedge = make_returns(60, 1, seed=12)
    hedge["MIRROR"] = 0.002 - hedge["A00"]  # equal-weighted market is constant
    with pytest.raises(InputError, match="equal-weighted market .* constant"):
        covariance.ledoit_wolf(hedge, target="single_factor")
    dup = make_returns(60, 4, seed=13)
    dup["A01_COPY"] = dup["A01"]
    with pytest.raises(InputError, match=r"rank-deficient.*assets (A01, A01_COPY|A01_COPY, A01)"):
        covariance.nonlinear_shrinkage(dup)
    wide = make_returns(6, 10, seed=14)
    wide.iloc[3] = wide.iloc[2]  # two identical dates: rank < T - 1
    wide.iloc[5] = wide.iloc[2]
    with pytest.raises(InputError, match=r"rank-deficient.*beyond the n - \(T - 1\) = 5"):
        covariance.nonlinear_shrinkage(wide)


@pytest.mark.parametrize("k", [0, 7, -1, 2.0, True, "2", None])
def test_factor_model_bad_n_factors(k: object) -> None:
    with pytest.raises(InputError, match=r"n_factors must be an int in 1\.\.6 .*got"):
        covariance.factor_model(make_returns(40, 6), n_factors=k)
    with pytest.raises(InputError, match=r"n_factors must be an int in 1\.\.3 .*T - 1 = 3"):
        covariance.factor_model(make_returns(4, 6), n_factors=4)


def test_factor_regression_errors() -> None:
    r = make_returns(30, 3, seed=15)
    f = pd.DataFrame(
        np.random.default_rng(0).standard_normal((30, 2)), index=r.index, columns=["F1", "F2"]
    )
    with pytest.raises(InputError, match="factors must be a pandas DataFrame"):
        covariance.factor_regression(r, f.to_numpy())
    shifted = f.copy()
    shifted.index = shifted.index.shift(1, freq="B")
    with pytest.raises(
        InputError,
        match=r"1 returns dates missing from factors \(2015-01-01.*1 factor dates not in "
        r"returns \(2015-02-12",
    ):
        covariance.factor_regression(r, shifted)
    with pytest.raises(InputError, match="1 returns dates missing from factors"):
        covariance.factor_regression(r, f.iloc[1:])
    with pytest.raises(InputError, match="factors has duplicate dates: 2015-01-01"):
        covariance.factor_regression(r, pd.concat([f.iloc[:1], f.iloc[1:-1], f.iloc[:1]]))
    nan = f.copy()
    nan.iloc[3, 1] = np.inf
    with pytest.raises(InputError, match="factors has NaN or inf values for: F2"):
        covariance.factor_regression(r, nan)
    flat = f.assign(F2=0.01)
    with pytest.raises(InputError, match="factors are constant .*: F2"):
        covariance.factor_regression(r, flat)
    collinear = f.assign(F3=f["F1"] * 2 - f["F2"])
    with pytest.raises(InputError, match="linearly dependent.*F1, F2, F3"):
        covariance.factor_regression(r, collinear)
    with pytest.raises(InputError, match="factors has non-numeric columns: F2"):
        covariance.factor_regression(r, f.assign(F2="x"))
    with pytest.raises(InputError, match=r"more than k \+ 1 = 3 observations for 2 factors"):
        covariance.factor_regression(r.iloc[:3], f.iloc[:3], periods_per_year=252)


def test_nearest_psd_errors() -> None:
    m = _labelled(np.eye(3), list("ABC"))
    with pytest.raises(InputError, match="matrix must be a pandas DataFrame .* got ndarray"):
        covariance.nearest_psd(np.eye(3))
    with pytest.raises(InputError, match="matrix is not square: 3 rows x 2 columns"):
        covariance.nearest_psd(m.iloc[:, :2])
    other = m.copy()
    other.columns = list("ABD")
    with pytest.raises(InputError, match="rows only: C; columns only: D"):
        covariance.nearest_psd(other)
    nan = m.copy()
    nan.loc["B", "C"] = np.nan
    with pytest.raises(InputError, match=r"NaN or inf values \(1 entries\), first at \(B, C\)"):
        covariance.nearest_psd(nan)
    with pytest.raises(InputError, match="unknown nearest_psd kind 'corr'; valid kinds"):
        covariance.nearest_psd(m, kind="corr")
    dup = _labelled(np.eye(3), list("ABA"))
    with pytest.raises(InputError, match="duplicate asset ids: A"):
        covariance.nearest_psd(dup)
    with pytest.raises(InputError, match="max_iter must be a positive int"):
        covariance.nearest_psd(m, max_iter=0)
    with pytest.raises(InputError, match="tol must be a positive"):
        covariance.nearest_psd(m, tol=-1.0)
    with pytest.raises(InputError, match="matrix has non-numeric entries"):
        covariance.nearest_psd(m.astype(object).assign(A="x"))


def test_from_cma_errors() -> None:
    with pytest.raises(InputError, match="volatility must be > 0 .* for: BD"):
        covariance.from_cma(VOL.replace(0.05, 0.0), CORR)
    with pytest.raises(InputError, match="volatility must be > 0 .* for: RE"):
        covariance.from_cma(VOL.replace(0.12, -0.1), CORR)
    with pytest.raises(InputError, match="non-numeric or infinite for: EQ"):
        covariance.from_cma(VOL.replace(0.16, np.nan), CORR)
    with pytest.raises(InputError, match="volatility must be a pandas Series"):
        covariance.from_cma([0.1, 0.2, 0.3], CORR)
    with pytest.raises(InputError, match="correlation must be a pandas DataFrame"):
        covariance.from_cma(VOL, CORR.to_numpy())
    with pytest.raises(InputError, match="missing RE; extra -"):
        covariance.from_cma(VOL, CORR.loc[["EQ", "BD"], ["EQ", "BD"]])
    more = pd.concat([VOL, pd.Series({"HF": 0.08})])
    with pytest.raises(InputError, match="missing HF; extra -"):
        covariance.from_cma(more, CORR)
    with pytest.raises(InputError, match="missing -; extra RE"):
        covariance.from_cma(VOL.drop("RE"), CORR)
    asym = CORR.copy()
    asym.loc["BD", "RE"] = 0.35
    with pytest.raises(InputError, match=r"not symmetric: \(BD, RE\) = 0.35 but \(RE, BD\) = 0.3"):
        covariance.from_cma(VOL, asym)
    diag = CORR.copy()
    diag.loc["BD", "BD"] = 0.9
    with pytest.raises(InputError, match="diagonal must be 1; BD has 0.9"):
        covariance.from_cma(VOL, diag)
    big = CORR.copy()
    big.loc["EQ", "RE"] = big.loc["RE", "EQ"] = 1.2
    with pytest.raises(InputError, match=r"in \[-1, 1\]; \(EQ, RE\) = 1.2"):
        covariance.from_cma(VOL, big)
    nan = CORR.copy()
    nan.loc["EQ", "BD"] = nan.loc["BD", "EQ"] = np.nan
    with pytest.raises(InputError, match=r"correlation has NaN or inf values .* \(EQ, BD\)"):
        covariance.from_cma(VOL, nan)
    with pytest.raises(InputError, match="volatility has duplicate asset ids: EQ"):
        covariance.from_cma(pd.concat([VOL, VOL.iloc[:1]]), CORR)


# --------------------------------------------------------------------------- properties

SETTINGS = settings(max_examples=30, deadline=None)


@st.composite
def returns_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Small random returns frames: T in 3..30, n in 1..6, seeded fat-tailed values."""
    t = draw(st.integers(3, 30))
    n = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    return make_returns(t, n, seed=seed, scale=draw(st.sampled_from([1e-3, 1e-2, 0.1])))


@pytest.mark.parametrize("name", list(ESTIMATORS))
@SETTINGS
@given(r=returns_frames(), c=st.floats(0.1, 10.0), perm_seed=st.integers(0, 1000))
def test_estimator_properties(name: str, r: pd.DataFrame, c: float, perm_seed: int) -> None:
    # simple returns stay above -100% (refused otherwise); sample and ewma need T - 1 > n
    assume(min(float(r.min().min()), float((r * c).min().min())) > -1.0)
    if name in ("sample", "ewma"):
        assume(len(r) >= r.shape[1] + 2)
    est = ESTIMATORS[name]
    cov = est(r)
    assert_valid_cov(cov, r.columns)
    # Scale equivariance: returns * c -> cov * c^2.
    scaled = est(r * c)
    np.testing.assert_allclose(
        scaled, cov * c**2, rtol=1e-7, atol=1e-12 * c**2 * np.abs(cov).max().max()
    )
    # Permutation equivariance: relabelling the assets permutes the estimate.
    order = np.random.default_rng(perm_seed).permutation(r.shape[1])
    permuted = est(r.iloc[:, order])
    pd.testing.assert_frame_equal(
        permuted, cov.iloc[order, order], rtol=1e-7, atol=1e-12 * np.abs(cov).max().max()
    )


def _random_symmetric(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (n, n))
    return _labelled((a + a.T) / 2)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 7),
    kind=st.sampled_from(["covariance", "correlation"]),
)
def test_nearest_psd_properties(seed: int, n: int, kind: str) -> None:
    a = _random_symmetric(seed, n)
    out, distance = covariance.nearest_psd(a, kind=kind, return_distance=True)
    assert_valid_cov(out, a.index)
    if kind == "correlation":
        np.testing.assert_array_equal(np.diag(out), 1.0)
    assert distance == pytest.approx(np.linalg.norm(a - out), abs=1e-12)
    # The repaired matrix is a fixed point (it is already PSD, so it comes back unchanged).
    again, moved = covariance.nearest_psd(out, kind=kind, return_distance=True)
    np.testing.assert_allclose(again, out, atol=1e-9)
    assert moved <= 1e-9


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 6),
    vol_scale=st.floats(0.01, 1.0),
)
def test_from_cma_round_trip_property(seed: int, n: int, vol_scale: float) -> None:
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, n + 2))
    c = g @ g.T
    d = np.sqrt(np.diag(c))
    r = c / np.outer(d, d)
    r = (r + r.T) / 2
    np.fill_diagonal(r, 1.0)
    corr = _labelled(r)
    vol = pd.Series(rng.uniform(0.5, 2.0, n) * vol_scale, index=corr.index)
    cov = covariance.from_cma(vol, corr)
    assert_valid_cov(cov, vol.index)
    back_vol = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(back_vol, vol, rtol=1e-14)
    np.testing.assert_allclose(cov / np.outer(back_vol, back_vol), corr, atol=1e-14)
