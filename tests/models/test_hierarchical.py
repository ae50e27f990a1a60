"""Tests of models.hierarchical: closed forms, invariances, the peers' published numbers, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_data import load

from models import covariance
from models.hierarchical import LINKAGES, herc, hrp
from optimizer.constraints import Bounds, Budget, GroupLimit, LongOnly, TurnoverLimit
from optimizer.errors import InfeasibleError, InputError


def make_cov(n: int = 6, seed: int = 0, labels: list[str] | None = None) -> pd.DataFrame:
    """A dense positive definite covariance (annualized, vols of roughly 5% to 25%)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n + 3))
    c = a @ a.T / (n + 3) * 0.02 + np.diag(rng.uniform(0.002, 0.02, n))
    labels = labels or [f"A{i}" for i in range(n)]
    return pd.DataFrame(c, index=labels, columns=labels)


def make_returns(n: int = 5, t: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(n, n)) * 0.005 + np.eye(n) * 0.01
    dates = pd.bdate_range("2020-01-01", periods=t)
    return pd.DataFrame(rng.normal(size=(t, n)) @ mix, index=dates, columns=list("ABCDEFGH")[:n])


def peer(name: str) -> pd.DataFrame:
    return load(f"peer_suite/{name}")


@pytest.fixture(scope="module")
def pypfopt_returns() -> pd.DataFrame:
    """PyPortfolioOpt's test fixture: ``get_data().pct_change().dropna(how="all")``.

    The prices are ragged (late listings); only the first row, empty for
    every asset, is dropped, and each pair is estimated from its common dates.
    """
    prices = peer("stock_prices.csv.gz")
    return prices.pct_change(fill_method=None).dropna(how="all")


@pytest.fixture(scope="module")
def sk_returns() -> pd.DataFrame:
    """skfolio's X: ``prices_to_returns(load_sp500_dataset().loc["2014":])``."""
    return peer("sp500_2014.csv.gz").pct_change().iloc[1:]


# ----------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("linkage", LINKAGES)
@pytest.mark.parametrize("model", [hrp, herc])
def test_two_assets_get_inverse_variance(model, linkage) -> None:
    cov = pd.DataFrame([[0.04, 0.006], [0.006, 0.01]], index=["EQ", "BD"], columns=["EQ", "BD"])
    w = model(cov, linkage=linkage).weights
    assert w.to_dict() == pytest.approx({"EQ": 0.2, "BD": 0.8}, abs=1e-15)
    vol = model(cov, linkage=linkage, risk_measure="standard_deviation").weights
    assert vol.to_dict() == pytest.approx({"EQ": 1 / 3, "BD": 2 / 3}, abs=1e-15)


@pytest.mark.parametrize("linkage", LINKAGES)
def test_uncorrelated_assets_get_inverse_variance_from_hrp(linkage) -> None:
    var = pd.Series([0.04, 0.01, 0.09, 0.0225, 0.0025, 0.0144, 0.05], index=list("ABCDEFG"))
    cov = pd.DataFrame(np.diag(var), index=var.index, columns=var.index)
    expected = (1 / var) / (1 / var).sum()
    pd.testing.assert_series_equal(
        hrp(cov, linkage=linkage).weights, expected, check_names=False, rtol=1e-13
    )


def block_cov(sizes: list[int], rho: list[float], vols: np.ndarray) -> pd.DataFrame:
    """Uncorrelated blocks, each with one correlation inside."""
    n = sum(sizes)
    corr = np.zeros((n, n))
    start = 0
    for size, r in zip(sizes, rho, strict=True):
        corr[start : start + size, start : start + size] = r
        start += size
    np.fill_diagonal(corr, 1.0)
    ids = [f"X{i}" for i in range(n)]
    return pd.DataFrame(corr * np.outer(vols, vols), index=ids, columns=ids)


def ivp_variance(cov: np.ndarray) -> tuple[np.ndarray, float]:
    w = 1 / np.diag(cov)
    w /= w.sum()
    return w, float(w @ cov @ w)


@pytest.mark.parametrize("linkage", LINKAGES)
def test_block_diagonal_closed_form(linkage) -> None:
    # two uncorrelated blocks: each is a cluster held in inverse variance, and the
    # blocks split the budget in inverse proportion to those portfolios' variances
    vols = np.array([0.20, 0.25, 0.05, 0.07])
    cov = block_cov([2, 2], [0.6, 0.3], vols)
    c = cov.to_numpy()
    w1, v1 = ivp_variance(c[:2, :2])
    w2, v2 = ivp_variance(c[2:, 2:])
    expected = np.concatenate([w1 * v2 / (v1 + v2), w2 * v1 / (v1 + v2)])
    np.testing.assert_allclose(hrp(cov, linkage=linkage).weights, expected, rtol=1e-13)
    np.testing.assert_allclose(
        herc(cov, linkage=linkage, n_clusters=2).weights, expected, rtol=1e-13
    )
    # HERC with blocks of 3 and 2 (HRP's halves would cut the first block)
    vols5 = np.array([0.20, 0.25, 0.18, 0.05, 0.07])
    cov5 = block_cov([3, 2], [0.7, 0.4], vols5).to_numpy()
    w1, v1 = ivp_variance(cov5[:3, :3])
    w2, v2 = ivp_variance(cov5[3:, 3:])
    expected5 = np.concatenate([w1 * v2 / (v1 + v2), w2 * v1 / (v1 + v2)])
    got = herc(block_cov([3, 2], [0.7, 0.4], vols5), linkage=linkage, n_clusters=2)
    np.testing.assert_allclose(got.weights, expected5, rtol=1e-13)


def test_one_herc_cluster_is_naive_risk_parity() -> None:
    cov = make_cov(7, seed=3)
    var = np.diag(cov.to_numpy())
    w = herc(cov, n_clusters=1).weights.to_numpy()
    np.testing.assert_allclose(w, (1 / var) / (1 / var).sum(), rtol=1e-13)
    w = herc(cov, n_clusters=1, risk_measure="standard_deviation").weights.to_numpy()
    np.testing.assert_allclose(w, (1 / np.sqrt(var)) / (1 / np.sqrt(var)).sum(), rtol=1e-13)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(3, 9),
    seed=st.integers(0, 10_000),
    linkage=st.sampled_from(LINKAGES),
    measure=st.sampled_from(["variance", "standard_deviation"]),
    optimal=st.booleans(),
    scale=st.floats(1e-6, 1e6),
)
def test_weights_follow_the_labels_and_ignore_scale(
    n, seed, linkage, measure, optimal, scale
) -> None:
    cov = make_cov(n, seed=seed)
    order = np.random.default_rng(seed).permutation(n)
    shuffled = cov.iloc[order, order]
    base = hrp(cov, linkage=linkage, risk_measure=measure, optimal_ordering=optimal)
    perm = hrp(shuffled, linkage=linkage, risk_measure=measure, optimal_ordering=optimal)
    assert list(perm.weights.index) == list(shuffled.index)  # the input's order is kept
    pd.testing.assert_series_equal(perm.weights[cov.index], base.weights, rtol=1e-13)
    scaled = hrp(cov * scale, linkage=linkage, risk_measure=measure, optimal_ordering=optimal)
    pd.testing.assert_series_equal(scaled.weights, base.weights, rtol=1e-9)
    base = herc(cov, linkage=linkage, risk_measure=measure)
    perm = herc(shuffled, linkage=linkage, risk_measure=measure)
    pd.testing.assert_series_equal(perm.weights[cov.index], base.weights, rtol=1e-13)
    scaled = herc(cov * scale, linkage=linkage, risk_measure=measure)
    pd.testing.assert_series_equal(scaled.weights, base.weights, rtol=1e-9)
    for alloc in (base, scaled):
        assert (alloc.weights >= 0).all()
        assert alloc.weights.sum() == pytest.approx(1.0, abs=1e-14)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), linkage=st.sampled_from(LINKAGES))
def test_random_feasible_bounds_hold(seed, linkage) -> None:
    n = 8
    rng = np.random.default_rng(seed)
    lower = rng.random(n)
    lower = lower / lower.sum() * rng.random()
    extra = rng.random(n)
    upper = lower + extra / extra.sum() * (1 - lower.sum()) * (1 + rng.random())
    cov = make_cov(n, seed=seed)
    ids = cov.index
    bounds = Bounds(
        lower=dict(zip(ids, lower, strict=True)), upper=dict(zip(ids, upper, strict=True))
    )
    alloc = hrp(cov, linkage=linkage, constraints=[bounds])
    w = alloc.weights.to_numpy()
    assert (w >= lower - 1e-12).all() and (w <= upper + 1e-12).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert all(check["ok"] for check in alloc.checks.values())


def test_answer_is_a_verified_frozen_allocation() -> None:
    cov = make_cov(6, seed=1)
    mu = pd.Series(np.linspace(0.03, 0.08, 6), index=cov.index)
    alloc = hrp(cov, mu=mu, constraints=[Budget(0.6, name="risky sleeve")])
    w = alloc.weights.to_numpy()
    c = cov.to_numpy()
    assert alloc.solver == "HRP" and alloc.status == "optimal"
    assert w.sum() == pytest.approx(0.6, abs=1e-14)
    assert alloc.volatility == pytest.approx(np.sqrt(w @ c @ w), rel=1e-12)
    assert alloc.risk_contributions.sum() == pytest.approx(alloc.volatility, rel=1e-12)
    assert alloc.expected_return == pytest.approx(float(mu @ w), rel=1e-12)
    assert set(alloc.checks) == {"risky sleeve", "long-only"}
    assert all(check["ok"] for check in alloc.checks.values())
    assert set(alloc.timings) == {"compile", "solve", "other"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        alloc.volatility = 0.0  # type: ignore[misc]
    answer = herc(cov, n_clusters=3)
    assert answer.solver == "HERC"
    assert answer.notes[0].startswith("3 clusters (given): {")
    assert answer.to_dict()["weights"].keys() == set(cov.index)


def test_returns_with_and_without_cov() -> None:
    rets = make_returns(5)
    from_returns = hrp(returns=rets)
    sample = covariance.sample(rets)
    pd.testing.assert_series_equal(hrp(sample).weights, from_returns.weights, rtol=1e-12)
    assert from_returns.volatility == pytest.approx(hrp(sample).volatility, rel=1e-12)
    # cov= is the risk model, returns= the correlation that builds the tree
    shrunk = covariance.ledoit_wolf(rets)
    both = hrp(shrunk, returns=rets[list(reversed(rets.columns))])
    assert list(both.weights.index) == list(shrunk.index)
    np.testing.assert_allclose(both.weights.sum(), 1.0, atol=1e-14)


# ----------------------------------------------------------------------------- peers' numbers


PYPFOPT_HRP = {  # PyPortfolioOpt tests/resources/weights_hrp.csv (test_hrp_portfolio)
    "AAPL": 0.022258941278778387,
    "AMD": 0.022294021796692116,
    "AMZN": 0.016086842079874982,
    "BABA": 0.07963382071794088,
    "BAC": 0.014409222455552267,
    "BBY": 0.03406419438245041,
    "FB": 0.06272994714663536,
    "GE": 0.05519063444162851,
    "GM": 0.055576660241857236,
    "GOOG": 0.04956008428992926,
    "JPM": 0.017675709092515715,
    "MA": 0.038127373497320226,
    "PFE": 0.07786528342813452,
    "RRC": 0.03161528695094598,
    "SBUX": 0.039844436656239136,
    "SHLD": 0.027113184241298872,
    "T": 0.11138956508836473,
    "UAA": 0.027115909570750083,
    "WMT": 0.10569551148587902,
    "XOM": 0.11175337115721229,
}


def test_pypfopt_hrp_portfolio_and_performance(pypfopt_returns) -> None:
    rets = pypfopt_returns
    alloc = hrp(returns=rets, mu=rets.mean() * 252)  # single linkage, variance: the defaults
    assert list(alloc.weights.index) == list(rets.columns)
    expected = pd.Series(PYPFOPT_HRP)
    pd.testing.assert_series_equal(
        alloc.weights[expected.index], expected, check_names=False, rtol=0, atol=1e-12
    )
    # test_portfolio_performance: annualized return and volatility (sample, pairwise, x 252)
    assert alloc.expected_return == pytest.approx(0.21353402380950973, rel=1e-12)
    assert alloc.volatility == pytest.approx(0.17844159743748936, rel=1e-12)


def test_pypfopt_hrp_from_a_ledoit_wolf_cov(pypfopt_returns) -> None:
    # test_pass_cov_matrix: CovarianceShrinkage(prices).ledoit_wolf() fills the missing
    # returns with zeros and shrinks to a scaled identity (scikit-learn's Ledoit-Wolf)
    cov = covariance.ledoit_wolf(pypfopt_returns.fillna(0.0), target="identity")
    assert hrp(cov).volatility == pytest.approx(0.10002783894982334, abs=1e-12)


SK_HRP_SINGLE_STD = [  # skfolio test_hrp.py::test_hrp_default
    0.04948508, 0.03483034, 0.04967809, 0.05488211, 0.02595736, 0.04482042, 0.03332249,
    0.08091826, 0.02840749, 0.04412388, 0.06297933, 0.05717246, 0.05285248, 0.07430329,
    0.05499559, 0.07914531, 0.03391673, 0.0396792, 0.04812428, 0.0504058,
]  # fmt: skip
SK_HRP_BOUNDED = [  # skfolio test_hrp.py::test_hrp_weight_constraints, min 0.03, max 0.06
    0.03, 0.03, 0.03, 0.04712633, 0.05191067, 0.06, 0.06, 0.06, 0.03, 0.06, 0.06, 0.06,
    0.04068081, 0.06, 0.05825588, 0.06, 0.03115588, 0.05087043, 0.06, 0.06,
]  # fmt: skip
SK_HERC_SINGLE_5 = [  # skfolio test_herc.py::test_herc_default
    0.00169182, 0.67774352, 0.00156652, 0.00125186, 0.00163489, 0.00141334, 0.00202476,
    0.00271361, 0.00178921, 0.00268109, 0.00185844, 0.00227296, 0.00180695, 0.00263724,
    0.00218642, 0.00265416, 0.16490106, 0.02059527, 0.10480936, 0.00176751,
]  # fmt: skip
SK_HERC_EW = [  # skfolio test_herc.py::test_herc_empirical_prior
    0.01086191, 0.01359064, 0.12976756, 0.00723668, 0.02633271, 0.11720119, 0.01642287,
    0.08268167, 0.16422002, 0.06603651, 0.02885326, 0.05001444, 0.0117163, 0.06845542,
    0.03046897, 0.06177247, 0.01349387, 0.03781421, 0.0374344, 0.02562489,
]  # fmt: skip


def test_skfolio_hrp_single_linkage(sk_returns) -> None:
    alloc = hrp(returns=sk_returns, risk_measure="standard_deviation", optimal_ordering=True)
    np.testing.assert_almost_equal(alloc.weights.to_numpy(), SK_HRP_SINGLE_STD, decimal=7)


def test_skfolio_hrp_weight_constraints(sk_returns) -> None:
    def fit(*constraints):
        return hrp(
            returns=sk_returns,
            linkage="ward",
            risk_measure="standard_deviation",
            optimal_ordering=True,
            constraints=list(constraints),
        ).weights.to_numpy()

    w = fit()
    np.testing.assert_almost_equal(w[[0, -1]], [0.030624328591088226, 0.05811358822991056])
    np.testing.assert_almost_equal(
        fit(Bounds(lower={"AAPL": 0.05, "XOM": 0.08}))[[0, -1]], [0.05, 0.08]
    )
    np.testing.assert_almost_equal(fit(Bounds(lower=0.05)), np.full(20, 0.05))
    np.testing.assert_almost_equal(
        fit(Bounds(upper={"AAPL": 0.01, "XOM": 0.03}))[[0, -1]], [0.01, 0.03]
    )
    np.testing.assert_almost_equal(fit(Bounds(upper=0.05)), np.full(20, 0.05))
    both = fit(Bounds(lower={"AAPL": 0.05}, upper={"XOM": 0.03}))
    np.testing.assert_almost_equal(both[[0, -1]], [0.05, 0.03])
    bounded = fit(Bounds(lower=0.03, upper=0.06))
    np.testing.assert_almost_equal(bounded, SK_HRP_BOUNDED)
    np.testing.assert_almost_equal(bounded.sum(), 1.0)


def test_skfolio_herc(sk_returns) -> None:
    five = herc(
        returns=sk_returns, linkage="single", risk_measure="standard_deviation", n_clusters=5
    )
    np.testing.assert_almost_equal(five.weights.to_numpy(), SK_HERC_SINGLE_5, decimal=7)
    # test_herc_weight_constraints, unconstrained: Ward linkage, the gap rule's clusters
    auto = herc(returns=sk_returns, risk_measure="standard_deviation").weights.to_numpy()
    np.testing.assert_almost_equal(auto[[0, -1]], [0.02584786935368332, 0.0421175871045949])
    assert herc(returns=sk_returns).notes[0].startswith("7 clusters (by the two-order")


def test_skfolio_herc_with_an_exponentially_weighted_cov(sk_returns) -> None:
    # skfolio's EWCovariance() (half-life 40, not demeaned): sum_t lam^(T-1-t) r_t r_t' up to
    # a positive factor, which the weights ignore; the tree comes from the returns
    x = sk_returns.to_numpy()
    decay = 2.0 ** (-np.arange(len(x) - 1, -1, -1) / 40.0)
    ew = pd.DataFrame(
        (x * decay[:, None]).T @ x, index=sk_returns.columns, columns=sk_returns.columns
    )
    alloc = herc(ew * 252 / decay.sum(), returns=sk_returns)
    np.testing.assert_almost_equal(alloc.weights.to_numpy(), SK_HERC_EW, decimal=7)


def test_cvar_matches_skfolio(sk_returns) -> None:
    # computed with skfolio 1.12.2, HierarchicalRiskParity / HierarchicalEqualRiskContribution
    # (risk_measure=RiskMeasure.CVAR, beta 0.95, defaults otherwise); not in its published tests
    w = hrp(returns=sk_returns, linkage="ward", risk_measure="cvar", optimal_ordering=True).weights
    expected = [0.0289732401, 0.0155581611, 0.0885957922, 0.0586872268]
    np.testing.assert_almost_equal(w.iloc[[0, 1, 18, 19]], expected, decimal=9)
    w = herc(returns=sk_returns, risk_measure="cvar").weights
    expected = [0.0255090429, 0.1247812055, 0.1447200165, 0.0422101678]
    np.testing.assert_almost_equal(w.iloc[[0, 2, 8, 19]], expected, decimal=9)


# ----------------------------------------------------------------------------- errors


def test_unknown_choices_are_named_with_the_choices() -> None:
    cov = make_cov(4)
    with pytest.raises(InputError, match=r"unknown linkage 'median': choose one of single, "):
        hrp(cov, linkage="median")
    with pytest.raises(InputError, match=r"unknown risk_measure 'mad': choose one of variance"):
        herc(cov, risk_measure="mad")
    with pytest.raises(InputError, match="optimal_ordering must be True or False, got 'yes'"):
        hrp(cov, optimal_ordering="yes")
    for bad in (0, 5, 2.5, True):
        with pytest.raises(
            InputError, match=rf"n_clusters must be an integer from 1 to 4 .*{bad!r}"
        ):
            herc(cov, n_clusters=bad)
    with pytest.raises(InputError, match=r"alpha must be in \(0, 1\)"):
        hrp(returns=make_returns(4), risk_measure="cvar", alpha=1.5)


def test_missing_inputs_and_too_few_assets() -> None:
    with pytest.raises(InputError, match="hrp needs cov= or returns="):
        hrp()
    one = pd.DataFrame([[0.04]], index=["SOLO"], columns=["SOLO"])
    with pytest.raises(InputError, match=r"herc needs at least 2 assets .*got 1 \(SOLO\)"):
        herc(one)
    with pytest.raises(InputError, match="returns must be a pandas DataFrame"):
        hrp(returns=np.zeros((10, 3)))


def test_zero_variance_and_constant_returns_are_named() -> None:
    cov = make_cov(4, labels=["EQ", "BD", "CASH", "RE"])
    cov.loc["CASH", :] = 0.0
    cov.loc[:, "CASH"] = 0.0
    with pytest.raises(InputError, match=r"zero variance for CASH .*drop it"):
        hrp(cov)
    rets = make_returns(4)
    rets["C"] = 0.001
    with pytest.raises(InputError, match=r"returns are constant .* for C:"):
        herc(returns=rets)


def test_misaligned_labels_are_named() -> None:
    cov = make_cov(4, labels=["A", "B", "C", "D"])
    rets = make_returns(4).rename(columns={"D": "E"})
    with pytest.raises(InputError, match=r"missing from returns: D; in returns but not in cov: E"):
        hrp(cov, returns=rets)
    with pytest.raises(InputError, match=r"mu .*missing from mu: D"):
        hrp(cov, mu=pd.Series(0.05, index=list("ABC")))


def test_ragged_returns_problems_are_named() -> None:
    rets = make_returns(4, t=40)
    rets.iloc[:20, 0] = np.nan  # A lists late
    rets.iloc[20:, 1] = np.nan  # B delists before A lists
    with pytest.raises(InputError, match=r"returns of A and B share fewer than 2 dates"):
        hrp(returns=rets)
    rets = make_returns(4, t=40)
    rets.iloc[:5, 2] = np.nan
    hrp(returns=rets)  # variance: pairwise estimates are fine
    with pytest.raises(InputError, match=r"needs returns without missing values; NaN for C"):
        hrp(returns=rets, risk_measure="cvar")
    with pytest.raises(InputError, match=r"risk_measure='cvar' needs returns="):
        hrp(make_cov(4), risk_measure="cvar")
    rets.iloc[7, 3] = np.inf
    with pytest.raises(InputError, match=r"returns has inf values for assets: D"):
        herc(returns=rets)


def test_a_cvar_without_loss_is_named() -> None:
    rets = make_returns(4)
    rets["D"] = rets["D"].abs() + 0.001  # never loses
    with pytest.raises(InputError, match=r"of D in inverse-risk weights is -.*not positive"):
        hrp(returns=rets, risk_measure="cvar")


def test_unsupported_constraints_are_named() -> None:
    cov = make_cov(4)
    with pytest.raises(InputError, match=r"constraint 'tech cap' is a GroupLimit"):
        hrp(cov, constraints=[GroupLimit(assets=["A0", "A1"], max=0.3, name="tech cap")])
    with pytest.raises(InputError, match=r"constraint 'turnover' is a TurnoverLimit"):
        turnover = TurnoverLimit(current=pd.Series(0.25, cov.index), max=0.1, name="turnover")
        herc(cov, constraints=[turnover])
    with pytest.raises(
        InputError, match=r"herc supports only Budget, LongOnly .*'caps' is a Bounds"
    ):
        herc(cov, constraints=[Bounds(upper=0.5, name="caps")])
    with pytest.raises(InputError, match=r"hrp is long-only; constraint 'shorts' allows negative"):
        hrp(cov, constraints=[Bounds(lower=-0.1, name="shorts")])
    with pytest.raises(InputError, match=r"constraint 'caps' has priority=1 \(soft\)"):
        hrp(cov, constraints=[Bounds(upper=0.5, name="caps", priority=1)])
    with pytest.raises(InputError, match=r"positive total .*got total 0"):
        hrp(cov, constraints=[Budget(0.0), LongOnly()])


def test_bounds_the_budget_cannot_meet_are_infeasible() -> None:
    cov = make_cov(4)
    with pytest.raises(InfeasibleError, match=r"lower bounds of 'floors' sum to 1\.2"):
        hrp(cov, constraints=[Bounds(lower=0.3, name="floors")])
    with pytest.raises(InfeasibleError, match=r"'caps'"):
        hrp(cov, constraints=[Bounds(upper=0.2, name="caps")])
