"""Tests of models.black_litterman: known answers, confidence, tags, real data, errors."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.black_litterman import View, black_litterman, views_matrix
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance
from optimizer.universe import Universe

ASSETS = ["US_EQ", "INTL_EQ", "EM_EQ", "BONDS", "CASH"]
TAU = 0.05


def make_cov(n: int = 5, seed: int = 0, labels: list[str] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n + 3))
    c = a @ a.T / (n + 3) * 0.04 + np.diag(rng.uniform(0.001, 0.01, n))
    labels = labels or (ASSETS if n == len(ASSETS) else [f"A{i}" for i in range(n)])
    return pd.DataFrame(c, index=labels, columns=labels)


def equilibrium(cov: pd.DataFrame, delta: float = 2.5) -> pd.Series:
    """The prior pi = delta C w with equal weights (computed here, independently of models)."""
    w = np.full(len(cov), 1.0 / len(cov))
    return pd.Series(delta * cov.to_numpy() @ w, index=cov.index)


def textbook(pi, cov, p, q, omega, tau=TAU):
    """Precision form with explicit inverses: the independent reference."""
    tc_inv = np.linalg.inv(tau * cov)
    o_inv = np.linalg.inv(omega)
    m_inv = tc_inv + p.T @ o_inv @ p
    m = np.linalg.inv(m_inv)
    mu = m @ (tc_inv @ pi + p.T @ o_inv @ q)
    return mu, cov + m


@pytest.fixture
def cov() -> pd.DataFrame:
    return make_cov()


@pytest.fixture
def prior(cov: pd.DataFrame) -> pd.Series:
    return equilibrium(cov)


TWO_VIEWS = [
    View.absolute("US_EQ", 0.10),
    View.relative("EM_EQ", "INTL_EQ", 0.02),
]


# --------------------------------------------------------------------------------------------
# View and views_matrix
# --------------------------------------------------------------------------------------------


def test_view_default_names():
    assert View.absolute("AAPL", 0.10).name == "AAPL = 10.0%"
    assert View.relative("MSFT", "JPM", 0.02).name == "MSFT - JPM = 2.0%"
    assert View({"A": 0.5, "B": 0.5, "C": -1}, 0.0125).name == "0.5*A + 0.5*B - C = 1.25%"
    assert View({"A": -1}, -0.03).name == "-A = -3.0%"
    assert View.absolute("A", 0.1, name="my view").name == "my view"


def test_view_is_frozen_hashable_and_copies_picks():
    picks = {"A": 1.0}
    v = View(picks, 0.05, confidence=0.5)
    picks["B"] = 2.0
    assert dict(v.picks) == {"A": 1.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.value = 0.1  # type: ignore[misc]
    with pytest.raises(TypeError):
        v.picks["A"] = 3.0  # type: ignore[index]
    assert v == View({"A": 1}, 0.05, confidence=0.5)
    assert hash(v) == hash(View({"A": 1}, 0.05, confidence=0.5))
    assert pickle.loads(pickle.dumps(v)) == v
    assert copy.deepcopy(v) == v


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: View({}, 0.1, name="v1"), r"view 'v1': picks is empty"),
        (lambda: View(["A"], 0.1, name="v1"), r"view 'v1': picks must be a mapping"),
        (lambda: View({"A": "x"}, 0.1, name="v1"), r"view 'v1': coefficient of 'A' is not a"),
        (lambda: View({"A": np.nan}, 0.1, name="v1"), r"view 'v1': coefficient of 'A' is not fin"),
        (lambda: View({"A": 0, "B": 0.0}, 0.1, name="v1"), r"view 'v1': every pick coefficient"),
        (lambda: View({"A": 1}, np.inf, name="v1"), r"view 'v1': value is not finite"),
        (lambda: View({"A": 1}, "high", name="v1"), r"view 'v1': value is not a number"),
        (lambda: View({"A": 1}, 0.1, confidence=1.5, name="v1"), r"view 'v1': confidence must"),
        (lambda: View({"A": 1}, 0.1, confidence=-0.1), r"view with picks .*confidence must be"),
        (lambda: View({"A": 1}, 0.1, confidence="sure"), r"confidence must be a number"),
        (lambda: View({"A": 1}, 0.1, name=""), r"view name must be a non-empty string"),
        (lambda: View.relative("A", "A", 0.1), r"relative view on 'A': long and short"),
    ],
)
def test_view_validation(make, match):
    with pytest.raises(InputError, match=match):
        make()


def test_views_matrix_relative_and_labels():
    p, q = views_matrix(TWO_VIEWS, ASSETS)
    assert list(p.index) == ["US_EQ = 10.0%", "EM_EQ - INTL_EQ = 2.0%"]
    assert list(p.columns) == ASSETS
    np.testing.assert_array_equal(p.loc["US_EQ = 10.0%"], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(p.loc["EM_EQ - INTL_EQ = 2.0%"], [0, -1, 1, 0, 0])
    pd.testing.assert_index_equal(q.index, p.index)
    np.testing.assert_array_equal(q, [0.10, 0.02])


def test_views_matrix_empty():
    p, q = views_matrix([], ASSETS)
    assert p.shape == (0, 5) and q.shape == (0,)


def test_views_matrix_tags_spread_equally():
    uni = Universe(
        ASSETS,
        tags={"US_EQ": ["equity"], "INTL_EQ": ["equity"], "EM_EQ": ["equity"], "BONDS": ["fi"]},
    )
    views = [
        View.relative("equity", "BONDS", 0.04, name="equity over bonds"),
        View({"equity": 1.0, "US_EQ": -1.0}, 0.0, name="ex-US vs US"),  # coefficients add up
    ]
    p, q = views_matrix(views, ASSETS, universe=uni)
    np.testing.assert_allclose(p.loc["equity over bonds"], [1 / 3, 1 / 3, 1 / 3, -1, 0])
    np.testing.assert_allclose(p.loc["ex-US vs US"], [-2 / 3, 1 / 3, 1 / 3, 0, 0])


def test_views_cannot_meet_an_asset_and_a_tag_of_the_same_name():
    # ids and tags share one namespace: a view's name is never ambiguous
    with pytest.raises(InputError, match=r"asset id 'CASH' is also a tag \(carried by BONDS\)"):
        Universe(["CASH", "BONDS"], tags={"BONDS": ["CASH"]})


@pytest.mark.parametrize(
    ("views", "universe", "match"),
    [
        (
            [View.absolute("US_EQX", 0.1)],
            None,
            r"view 'US_EQX = 10.0%' names unknown asset 'US_EQX' \(did you mean 'US_EQ'\?\)"
            r".*pass universe=",
        ),
        (
            [View.absolute("equty", 0.1)],
            Universe(ASSETS, tags={"US_EQ": ["equity"]}),
            r"view 'equty = 10.0%' names 'equty', which is neither an asset nor a tag.*"
            r"unknown tag 'equty'.*did you mean 'equity'",
        ),
        (
            [View.absolute("equity", 0.1)],
            Universe([*ASSETS, "JP_EQ"], tags={"US_EQ": ["equity"], "JP_EQ": ["equity"]}),
            r"view 'equity = 10.0%': tag 'equity' includes assets that are not in the "
            r"covariance: JP_EQ",
        ),
        (
            [View({"equity": 1, "US_EQ": -1}, 0.0, name="net zero")],
            Universe(ASSETS, tags={"US_EQ": ["equity"]}),
            r"view 'net zero' has no net exposure",
        ),
        (
            [View.absolute("US_EQ", 0.1), View.absolute("US_EQ", 0.1)],
            None,
            r"views have duplicate names: 'US_EQ = 10.0%'; give each view a distinct name=",
        ),
        (View.absolute("US_EQ", 0.1), None, r"views must be a list of View.*wrap a single"),
        ([("US_EQ", 0.1)], None, r"views\[0\] is not a View"),
        ([View.absolute("US_EQ", 0.1)], {"US_EQ": ["eq"]}, r"universe must be a Universe"),
    ],
)
def test_views_matrix_errors(views, universe, match):
    with pytest.raises(InputError, match=match):
        views_matrix(views, ASSETS, universe=universe)


# --------------------------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------------------------


def test_no_views_returns_prior_exactly(cov, prior):
    post_mu, post_cov = black_litterman(prior, cov, views=[], tau=TAU)
    pd.testing.assert_series_equal(post_mu, prior, check_names=False, rtol=0, atol=0)
    # the uncertainty of the prior mean still adds to risk: C + tau C
    pd.testing.assert_frame_equal(post_cov, cov * (1 + TAU), rtol=1e-15)


def test_he_litterman_omega_matches_textbook(cov, prior):
    post_mu, post_cov = black_litterman(prior, cov, views=TWO_VIEWS, tau=TAU)
    p, q = views_matrix(TWO_VIEWS, ASSETS)
    c, p, q = cov.to_numpy(), p.to_numpy(), q.to_numpy()
    omega = np.diag(np.diag(p @ (TAU * c) @ p.T))
    mu_ref, cov_ref = textbook(prior.to_numpy(), c, p, q, omega)
    np.testing.assert_allclose(post_mu.to_numpy(), mu_ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(post_cov.to_numpy(), cov_ref, rtol=1e-10, atol=1e-14)
    assert list(post_mu.index) == ASSETS
    assert list(post_cov.index) == ASSETS and list(post_cov.columns) == ASSETS


@pytest.mark.parametrize("form", ["frame", "array", "series", "list"])
def test_explicit_omega_matches_textbook(cov, prior, form):
    names = [v.name for v in TWO_VIEWS]
    full = np.array([[0.002, 0.0005], [0.0005, 0.001]])
    if form == "frame":
        omega, ref = pd.DataFrame(full, index=names, columns=names).iloc[::-1, ::-1], full
    elif form == "array":
        omega, ref = full, full
    elif form == "series":
        omega = pd.Series([0.001, 0.002], index=names[::-1])  # labelled, any order
        ref = np.diag([0.002, 0.001])
    else:
        omega, ref = [0.002, 0.001], np.diag([0.002, 0.001])
    post_mu, post_cov = black_litterman(prior, cov, views=TWO_VIEWS, omega=omega)
    p, q = views_matrix(TWO_VIEWS, ASSETS)
    mu_ref, cov_ref = textbook(prior.to_numpy(), cov.to_numpy(), p.to_numpy(), q.to_numpy(), ref)
    np.testing.assert_allclose(post_mu.to_numpy(), mu_ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(post_cov.to_numpy(), cov_ref, rtol=1e-10, atol=1e-14)


def test_infinite_variance_drops_the_view(cov, prior):
    views = [*TWO_VIEWS, View.absolute("BONDS", 0.5)]
    dropped, _ = black_litterman(prior, cov, views=views, omega=[0.002, 0.001, np.inf])
    kept, _ = black_litterman(prior, cov, views=TWO_VIEWS, omega=[0.002, 0.001])
    pd.testing.assert_series_equal(dropped, kept)


def test_confidence_one_reproduces_the_view(cov, prior):
    views = [
        View.absolute("US_EQ", 0.10, confidence=1.0),
        View.relative("EM_EQ", "INTL_EQ", 0.02, confidence=1.0),
        View.absolute("BONDS", 0.01),  # uncertain: only pulls
    ]
    post_mu, post_cov = black_litterman(prior, cov, views=views)
    assert post_mu["US_EQ"] == pytest.approx(0.10, abs=1e-14)
    assert post_mu["EM_EQ"] - post_mu["INTL_EQ"] == pytest.approx(0.02, abs=1e-14)
    assert post_mu["BONDS"] != pytest.approx(0.01, abs=1e-6)
    # no uncertainty left along a certain view: p M p' = 0
    m = post_cov.to_numpy() - cov.to_numpy()
    assert m[0, 0] == pytest.approx(0.0, abs=1e-14)


def test_confidence_zero_returns_the_prior(cov, prior):
    views = [View.absolute("US_EQ", 0.30, confidence=0.0)]
    post_mu, post_cov = black_litterman(prior, cov, views=views)
    pd.testing.assert_series_equal(post_mu, prior, check_names=False, rtol=0, atol=0)
    pd.testing.assert_frame_equal(post_cov, cov * (1 + TAU))
    # alongside other views, a zero-confidence view changes nothing
    with_ignored, _ = black_litterman(prior, cov, views=[*TWO_VIEWS, *views])
    without, _ = black_litterman(prior, cov, views=TWO_VIEWS)
    pd.testing.assert_series_equal(with_ignored, without)


def test_confidence_half_is_he_litterman(cov, prior):
    half = [View(v.picks, v.value, confidence=0.5) for v in TWO_VIEWS]
    mu_half, cov_half = black_litterman(prior, cov, views=half)
    mu_hl, cov_hl = black_litterman(prior, cov, views=TWO_VIEWS)
    pd.testing.assert_series_equal(mu_half, mu_hl, rtol=1e-12)
    pd.testing.assert_frame_equal(cov_half, cov_hl, rtol=1e-12)


def test_confidence_moves_posterior_monotonically_toward_the_view(cov, prior):
    target = 0.15
    levels = np.linspace(0.0, 1.0, 11)
    tilts = []
    full = None
    for c in levels:
        mu, _ = black_litterman(prior, cov, views=[View.absolute("EM_EQ", target, confidence=c)])
        tilts.append(mu - prior)
        if c == 1.0:
            full = mu - prior
    gaps = [abs(prior["EM_EQ"] + t["EM_EQ"] - target) for t in tilts]
    assert gaps[0] == pytest.approx(abs(prior["EM_EQ"] - target))
    assert gaps[-1] == pytest.approx(0.0, abs=1e-14)
    assert all(b < a for a, b in zip(gaps, gaps[1:], strict=False))
    # Idzorek's intent, exact for one view: the tilt is the fraction c of the certain tilt
    for c, tilt in zip(levels, tilts, strict=True):
        np.testing.assert_allclose(tilt.to_numpy(), c * full.to_numpy(), atol=1e-14)


def test_relative_view_moves_spread_toward_view(cov, prior):
    view = View.relative("EM_EQ", "INTL_EQ", 0.05)
    post_mu, _ = black_litterman(prior, cov, views=[view])
    before = prior["EM_EQ"] - prior["INTL_EQ"]
    after = post_mu["EM_EQ"] - post_mu["INTL_EQ"]
    assert before < after < 0.05


def test_tag_view_equals_explicit_basket(cov, prior):
    uni = Universe(ASSETS, tags={"US_EQ": ["equity"], "INTL_EQ": ["equity"], "EM_EQ": ["equity"]})
    tagged, tagged_cov = black_litterman(
        prior, cov, views=[View.absolute("equity", 0.09, confidence=1)], universe=uni
    )
    basket = View({"US_EQ": 1 / 3, "INTL_EQ": 1 / 3, "EM_EQ": 1 / 3}, 0.09, confidence=1)
    explicit, explicit_cov = black_litterman(prior, cov, views=[basket])
    pd.testing.assert_series_equal(tagged, explicit, rtol=1e-12)
    pd.testing.assert_frame_equal(tagged_cov, explicit_cov, rtol=1e-12)
    assert tagged[["US_EQ", "INTL_EQ", "EM_EQ"]].mean() == pytest.approx(0.09, abs=1e-14)


def test_labels_are_aligned_and_order_follows_prior(cov, prior):
    shuffled = prior.iloc[[3, 0, 4, 2, 1]]
    post_mu, post_cov = black_litterman(shuffled, cov.iloc[::-1, ::-1], views=TWO_VIEWS)
    ref_mu, ref_cov = black_litterman(prior, cov, views=TWO_VIEWS)
    pd.testing.assert_index_equal(post_mu.index, shuffled.index)
    pd.testing.assert_index_equal(post_cov.index, shuffled.index)
    pd.testing.assert_index_equal(post_cov.columns, shuffled.index)
    pd.testing.assert_series_equal(post_mu, ref_mu.loc[shuffled.index], rtol=1e-12)
    pd.testing.assert_frame_equal(post_cov, ref_cov.loc[shuffled.index, shuffled.index], rtol=1e-12)


def test_factor_covariance_input_equals_dense():
    rng = np.random.default_rng(3)
    loadings = pd.DataFrame(rng.normal(size=(5, 2)), index=ASSETS, columns=["f1", "f2"])
    fcov = pd.DataFrame([[0.04, 0.01], [0.01, 0.02]], index=["f1", "f2"], columns=["f1", "f2"])
    specific = pd.Series(rng.uniform(0.01, 0.03, 5), index=ASSETS)
    fc = FactorCovariance(loadings, fcov, specific)
    prior = equilibrium(fc.cov)
    a = black_litterman(prior, fc, views=TWO_VIEWS)
    b = black_litterman(prior, fc.cov, views=TWO_VIEWS)
    pd.testing.assert_series_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])


def test_real_data_sp500(sp500_prices):
    returns = sp500_prices.pct_change().dropna()
    cov = returns.cov() * 252
    prior = equilibrium(cov, delta=2.5)
    view = View.relative("MSFT", "JPM", 0.02)
    post_mu, post_cov = black_litterman(prior, cov, views=[view], tau=0.05)
    values = post_cov.to_numpy()
    np.testing.assert_array_equal(values, values.T)
    assert np.linalg.eigvalsh(values).min() > 0
    assert np.isfinite(post_mu).all()
    before = prior["MSFT"] - prior["JPM"]
    after = post_mu["MSFT"] - post_mu["JPM"]
    assert min(before, 0.02) < after < max(before, 0.02)
    # the posterior covariance grows (C + M, M PSD) but not beyond C + tau C
    extra = np.linalg.eigvalsh(values - cov.to_numpy())
    assert extra.min() > -1e-12
    assert np.linalg.eigvalsh(cov.to_numpy() * (1 + 0.05) - values).min() > -1e-12


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_contradicting_certain_views_name_both(cov, prior):
    views = [
        View.absolute("US_EQ", 0.10, confidence=1),
        View.absolute("US_EQ", 0.05, confidence=1),
        View.absolute("BONDS", 0.02, confidence=1),
    ]
    with pytest.raises(InputError, match=r"singular\): 'US_EQ = 10.0%', 'US_EQ = 5.0%'; lower"):
        black_litterman(prior, cov, views=views)


def test_dependent_certain_views_are_named(cov, prior):
    views = [
        View.absolute("US_EQ", 0.10, confidence=1, name="a"),
        View.absolute("BONDS", 0.03, confidence=1, name="b"),
        View({"US_EQ": 1, "BONDS": 1}, 0.13, confidence=1, name="a+b"),
        View.absolute("CASH", 0.01, confidence=1, name="c"),
    ]
    with pytest.raises(InputError, match=r"linearly dependent.*: 'a', 'b', 'a\+b'; lower"):
        black_litterman(prior, cov, views=views)
    # with some uncertainty on one of them, the system is fine
    ok = [*views[:2], View(views[2].picks, 0.13, confidence=0.5, name="a+b")]
    mu, _ = black_litterman(prior, cov, views=ok)
    assert mu["US_EQ"] == pytest.approx(0.10, abs=1e-14)


def test_certain_view_on_riskless_asset_is_named():
    cov = make_cov()
    cov.loc["CASH", :] = 0.0
    cov.loc[:, "CASH"] = 0.0
    prior = equilibrium(cov)
    # He-Litterman omega = p tau C p' = 0 too: neither the prior nor the view is uncertain
    with pytest.raises(InputError, match=r"without prior variance .*: 'CASH = 2.0%'; give them"):
        black_litterman(prior, cov, views=[View.absolute("CASH", 0.02), *TWO_VIEWS])
    # with an explicit uncertainty the view is usable, but a prior without variance is
    # certain: the view cannot move it
    mu, _ = black_litterman(prior, cov, views=[View.absolute("CASH", 0.02)], omega=[1e-4])
    pd.testing.assert_series_equal(mu, prior, check_names=False)


def test_views_of_very_different_uncertainty_are_not_singular(cov, prior):
    views = [
        View.absolute("US_EQ", 0.10, confidence=1.0),
        View.absolute("BONDS", 0.5, confidence=1e-13),
    ]
    mu, post_cov = black_litterman(prior, cov, views=views)
    alone, _ = black_litterman(prior, cov, views=views[:1])
    pd.testing.assert_series_equal(mu, alone, rtol=1e-9)
    assert np.isfinite(post_cov.to_numpy()).all()
    # a confidence so small that omega overflows is treated as zero: the view is dropped
    tiny = [views[0], View.absolute("BONDS", 0.5, confidence=1e-320)]
    pd.testing.assert_series_equal(black_litterman(prior, cov, views=tiny)[0], alone)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau": 0.0}, r"tau must be a positive finite number, got 0.0"),
        ({"tau": np.nan}, r"tau must be a positive finite number"),
        ({"tau": "small"}, r"tau must be a positive number, got 'small'"),
        (
            {"views": [View.absolute("US_EQ", 0.1, confidence=0.3)], "omega": [0.01]},
            r"give either omega= or view confidences, not both; .*'US_EQ = 10.0%'",
        ),
        ({"omega": [0.01]}, r"omega has 1 variances for 2 views"),
        ({"omega": np.eye(3) * 0.01}, r"omega must be 2 x 2 .*got \(3, 3\)"),
        ({"omega": np.zeros((2, 2, 1))}, r"omega must have 1 or 2 dimensions"),
        ({"omega": ["a", "b"]}, r"omega must be a k x k matrix or k variances"),
        ({"omega": [0.01, -0.01]}, r"omega variances must be >= 0.*'EM_EQ - INTL_EQ = 2.0%'"),
        ({"omega": [0.01, np.nan]}, r"omega variances must be >= 0"),
        ({"omega": np.array([[0.01, 0.0], [0.005, 0.01]])}, r"omega is not symmetric"),
        ({"omega": np.array([[0.01, 0.02], [0.02, 0.01]])}, r"omega is not positive semidef"),
        ({"omega": np.array([[0.01, np.inf], [np.inf, 0.01]])}, r"omega matrix has NaN or inf"),
        (
            {"omega": pd.Series([0.01, 0.01], index=["US_EQ = 10.0%", "typo"])},
            r"omega must be labelled by the view names: missing views: "
            r"'EM_EQ - INTL_EQ = 2.0%'; unknown views: 'typo'",
        ),
        (
            {"omega": pd.DataFrame(np.eye(2), index=[0, 1], columns=[0, 1])},
            r"omega rows must be labelled by the view names.*pass a numpy array",
        ),
    ],
)
def test_black_litterman_option_errors(cov, prior, kwargs, match):
    kwargs = {"views": TWO_VIEWS, **kwargs}
    with pytest.raises(InputError, match=match):
        black_litterman(prior, cov, **kwargs)


def test_input_errors(cov, prior):
    with pytest.raises(InputError, match=r"prior_mu must be a pandas Series"):
        black_litterman(prior.to_numpy(), cov, views=[])
    with pytest.raises(InputError, match=r"missing from prior_mu: CASH"):
        black_litterman(prior.drop("CASH"), cov, views=[])
    with pytest.raises(InputError, match=r"in prior_mu but not in cov: GOLD"):
        black_litterman(pd.concat([prior, pd.Series({"GOLD": 0.03})]), cov, views=[])
    bad = prior.copy()
    bad["BONDS"] = np.nan
    with pytest.raises(InputError, match=r"prior_mu has NaN or inf values for assets: BONDS"):
        black_litterman(bad, cov, views=[])
    with pytest.raises(InputError, match=r"prior_mu has duplicate asset ids: US_EQ"):
        black_litterman(pd.concat([prior, prior.iloc[:1]]), cov, views=[])
    with pytest.raises(InputError, match=r"cov must be a pandas DataFrame"):
        black_litterman(prior, cov.to_numpy(), views=[])
    neg = cov.copy()
    neg.iloc[0, 1] = neg.iloc[1, 0] = 10.0
    with pytest.raises(InputError, match=r"cov is not positive semidefinite.*nearest_psd"):
        black_litterman(prior, neg, views=[])
    asym = cov.copy()
    asym.iloc[0, 1] += 0.01
    with pytest.raises(InputError, match=r"cov is not symmetric: entry \(US_EQ, INTL_EQ\)"):
        black_litterman(prior, asym, views=[])
    other = cov.rename(columns={"CASH": "GOLD"})
    with pytest.raises(InputError, match=r"only in rows: CASH; only in columns: GOLD"):
        black_litterman(prior, other, views=[])
    with pytest.raises(InputError, match=r"view 'GOLD = 5.0%' names unknown asset 'GOLD'"):
        black_litterman(prior, cov, views=[View.absolute("GOLD", 0.05)])


def test_unknown_tag_names_view_and_tag(cov, prior):
    uni = Universe(ASSETS, tags={"US_EQ": ["equity"]})
    with pytest.raises(InputError, match=r"view 'bonds view' names 'fixed_income'.*unknown tag"):
        black_litterman(
            prior, cov, views=[View.absolute("fixed_income", 0.03, name="bonds view")], universe=uni
        )


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 7),
    k=st.integers(1, 4),
    tau=st.floats(0.01, 1.0),
)
def test_views_consistent_with_prior_leave_it_unchanged(seed, n, k, tau):
    rng = np.random.default_rng(seed)
    labels = [f"X{i}" for i in range(n)]
    cov = make_cov(n, seed=seed % 1000, labels=labels)
    prior = pd.Series(rng.normal(0.05, 0.03, n), index=labels).iloc[rng.permutation(n)]
    k = min(k, n)
    views = []
    for j in range(k):
        picks = {labels[i]: float(x) for i, x in enumerate(rng.normal(size=n)) if abs(x) > 0.1}
        picks = picks or {labels[j]: 1.0}
        q = sum(c * prior[a] for a, c in picks.items())  # Q = P pi
        views.append(View(picks, q, name=f"v{j}"))
    post_mu, post_cov = black_litterman(prior, cov, views=views, tau=tau)
    pd.testing.assert_index_equal(post_mu.index, prior.index)
    pd.testing.assert_index_equal(post_cov.index, prior.index)
    np.testing.assert_allclose(post_mu.to_numpy(), prior.to_numpy(), rtol=0, atol=1e-12)
    values = post_cov.to_numpy()
    np.testing.assert_array_equal(values, values.T)
    assert np.linalg.eigvalsh(values).min() > -1e-12
