"""L2 regularization ``l2_gamma * ||w||^2`` on every mean-variance objective (issue 11, item 4).

The convention is PyPortfolioOpt's ``objective_functions.L2_reg`` added to each of its
objectives: ``w'Cw + gamma ||w||^2`` (min_volatility, efficient_return), ``mu'w - delta/2 w'Cw
- gamma ||w||^2`` (max_quadratic_utility), ``mu'w - gamma ||w||^2`` under ``w'Cw <= sigma^2``
(efficient_risk) and ``y'Cy + gamma ||y||^2`` in the homogenized max-Sharpe program. The known
answers are PyPortfolioOpt's own (tests/test_efficient_frontier.py, on its stock_prices data
set, with the risk-free rate 0.02 of the versions that published them); the side-by-side
comparison runs the installed PyPortfolioOpt (the ``bench`` extra) when present.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from types import MappingProxyType

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_data import load

import scenarios.engine as engine
from models import mean_variance as mv
from optimizer.constraints import Bounds, Budget
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance
from scenarios.cli import examples
from scenarios.schema import load_scenario

SHORTS = [Bounds(lower=-math.inf)]


def problem(n: int, seed: int) -> tuple[pd.Series, pd.DataFrame]:
    """A random positive definite covariance (annualized) and expected returns."""
    rng = np.random.default_rng(seed)
    ids = [f"S{i}" for i in range(n)]
    a = rng.normal(size=(n, 2 * n))
    c = a @ a.T / (2 * n) * 0.04 + np.diag(rng.uniform(0.002, 0.02, n))
    return pd.Series(rng.uniform(0.03, 0.15, n), ids), pd.DataFrame(c, ids, ids)


def factor_problem(n: int, k: int, seed: int) -> tuple[pd.Series, FactorCovariance]:
    rng = np.random.default_rng(seed)
    ids, fs = [f"S{i}" for i in range(n)], [f"F{j}" for j in range(k)]
    loadings = pd.DataFrame(rng.normal(size=(n, k)), ids, fs)
    f = rng.normal(size=(k, k))
    factor_cov = pd.DataFrame(f @ f.T / k * 0.02 + 0.005 * np.eye(k), fs, fs)
    specific = pd.Series(rng.uniform(0.01, 0.05, n), ids)
    return pd.Series(rng.uniform(0.03, 0.15, n), ids), FactorCovariance(
        loadings, factor_cov, specific
    )


def w_of(alloc) -> np.ndarray:
    return alloc.weights.to_numpy()


# ----------------------------------------------------------------------------- known answers


@pytest.fixture(scope="module")
def pypfopt_case() -> tuple[pd.Series, pd.DataFrame]:
    """PyPortfolioOpt's ``setup_efficient_frontier``: mean_historical_return and sample_cov."""
    prices = load("peer_suite/stock_prices.csv.gz")
    rets = prices.pct_change(fill_method=None).dropna(how="all")
    mu = (1 + rets).prod() ** (252 / rets.count()) - 1
    return mu, rets.cov() * 252


def perf(alloc, rf: float = 0.02) -> tuple[float, float, float]:
    """PyPortfolioOpt's ``portfolio_performance`` (their published risk-free rate 0.02)."""
    ret, vol = alloc.expected_return, alloc.volatility
    return ret, vol, (ret - rf) / vol


def test_min_volatility_l2_reg(pypfopt_case) -> None:
    mu, cov = pypfopt_case
    alloc = mv.min_variance(cov, mu=mu, l2_gamma=1)
    expected = (0.17356099329164965, 0.1955254118258614, 0.785376140408869)
    np.testing.assert_allclose(perf(alloc), expected, rtol=1e-6)
    assert (alloc.weights >= 0).all() and alloc.weights.sum() == pytest.approx(1, abs=1e-9)
    # pulled towards equal weights, at the cost of in-sample volatility
    plain = mv.min_variance(cov, mu=mu)
    equal = np.full(len(mu), 1 / len(mu))
    assert abs(w_of(alloc) - equal).sum() < abs(w_of(plain) - equal).sum()
    assert alloc.volatility > plain.volatility


def test_min_volatility_l2_reg_many_values_and_limit(pypfopt_case) -> None:
    mu, cov = pypfopt_case
    count = int((w_of(mv.min_variance(cov)) > 0.01).sum())
    for k in range(1, 10):
        more = int((w_of(mv.min_variance(cov, l2_gamma=0.05 * k)) > 0.01).sum())
        assert more >= count
        count = more
    huge = mv.min_variance(cov, l2_gamma=1e10)
    np.testing.assert_array_almost_equal(w_of(huge), np.full(len(mu), 1 / len(mu)))


def test_max_sharpe_l2_reg(pypfopt_case) -> None:
    mu, cov = pypfopt_case
    alloc = mv.max_sharpe(mu, cov, risk_free_rate=0.02, l2_gamma=5)
    expected = (0.2516854357026833, 0.22043282695478603, 1.051047790401043)
    np.testing.assert_allclose(perf(alloc), expected, rtol=1e-6)
    assert alloc.sharpe == pytest.approx(expected[2], rel=1e-6)  # the true ratio, at rf
    plain = mv.max_sharpe(mu, cov, risk_free_rate=0.02)
    equal = np.full(len(mu), 1 / len(mu))
    assert abs(w_of(alloc) - equal).sum() < abs(w_of(plain) - equal).sum()
    assert alloc.sharpe < plain.sharpe


def test_max_sharpe_l2_reg_with_shorts(pypfopt_case) -> None:
    mu, cov = pypfopt_case
    alloc = mv.max_sharpe(mu, cov, risk_free_rate=0.02, l2_gamma=1, constraints=SHORTS)
    expected = (0.2995338981166366, 0.2234696161770517, 1.2508810052063901)
    np.testing.assert_allclose(perf(alloc), expected, rtol=1e-6)


def test_efficient_risk_l2_reg(pypfopt_case) -> None:
    mu, cov = pypfopt_case
    alloc = mv.efficient_risk(mu, cov, target_volatility=0.19, l2_gamma=5)
    expected = (0.1931352562313653, 0.18999999989010993, 0.9112381912184281)
    np.testing.assert_allclose(perf(alloc), expected, atol=1e-4)
    assert alloc.volatility <= 0.19 * (1 + 1e-8)  # the limit is on the true volatility


def test_efficient_risk_market_neutral_l2_reg(pypfopt_case) -> None:
    mu, cov = pypfopt_case
    cons = [Bounds(-1, 1), Budget(0.0)]
    with warnings.catch_warnings():
        # the least-risk market-neutral portfolio (all zero) is riskless: efficient_risk's floor
        # check warns about it, whatever l2_gamma (not this test's subject)
        warnings.simplefilter("ignore", UserWarning)
        alloc = mv.efficient_risk(mu, cov, target_volatility=0.19, l2_gamma=1, constraints=cons)
    expected = (0.12790320789339854, 0.1175336636355454, 0.9180621496492316)
    np.testing.assert_allclose(perf(alloc), expected, atol=1e-6)
    assert alloc.weights.sum() == pytest.approx(0, abs=1e-9)


def test_efficient_return_l2_reg(pypfopt_case) -> None:
    mu, cov = pypfopt_case
    alloc = mv.efficient_return(mu, cov, target_return=0.25, l2_gamma=1)
    np.testing.assert_allclose(
        perf(alloc), (0.25, 0.20961660883459776, 1.0972412981906703), rtol=1e-6
    )


def test_max_quadratic_utility_l2_reg(pypfopt_case) -> None:
    mu, cov = pypfopt_case
    alloc = mv.max_utility(mu, cov, risk_aversion=1, l2_gamma=5)
    expected = (0.19774277217586125, 0.2104822672707046, 0.8444548535162986)
    np.testing.assert_allclose(perf(alloc), expected, rtol=1e-6)


# ----------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("seed", range(3))
def test_budget_only_answers_are_the_closed_forms_of_c_plus_gamma_i(seed: int) -> None:
    mu, cov = problem(7, seed)
    g = 0.03
    reg = cov.to_numpy() + g * np.eye(7)
    x = np.linalg.solve(reg, np.ones(7))
    low = mv.min_variance(cov, l2_gamma=g, constraints=SHORTS)
    np.testing.assert_allclose(w_of(low), x / x.sum(), atol=1e-7)
    e = np.linalg.solve(reg, mu.to_numpy() - 0.01)
    best = mv.max_sharpe(mu, cov, risk_free_rate=0.01, l2_gamma=g, constraints=SHORTS)
    np.testing.assert_allclose(w_of(best), e / e.sum(), atol=1e-6)


def test_market_neutral_max_sharpe_search_maximizes_the_regularized_ratio() -> None:
    # no positive budget: the golden-section search along the regularized frontier
    mu, cov = problem(6, 9)
    g, rf = 0.05, 0.0
    cons = [Bounds(-1, 1), Budget(0.0)]
    c = cov.to_numpy() + g * np.eye(6)

    def ratio(alloc) -> float:
        w = w_of(alloc)
        return (alloc.expected_return - rf) / math.sqrt(w @ c @ w)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the all-zero least-risk portfolio
        best = mv.max_sharpe(mu, cov, risk_free_rate=rf, l2_gamma=g, constraints=cons)
    assert "golden-section" in best.notes[-1]
    top = mv.max_return(mu, cov, constraints=cons).expected_return
    for r in np.linspace(0.2 * top, top, 12):
        point = mv.efficient_return(mu, cov, target_return=r, l2_gamma=g, constraints=cons)
        assert ratio(best) >= ratio(point) - 1e-6


def test_reported_risk_is_the_true_risk_and_objective_includes_the_term() -> None:
    mu, cov = problem(6, 4)
    c = cov.to_numpy()
    for g in (0.01, 0.3):
        alloc = mv.min_variance(cov, mu=mu, l2_gamma=g)
        w = w_of(alloc)
        assert alloc.volatility == pytest.approx(math.sqrt(w @ c @ w), rel=1e-12)
        assert alloc.objective == pytest.approx(w @ c @ w + g * w @ w, rel=1e-6)
        util = mv.max_utility(mu, cov, risk_aversion=3.0, l2_gamma=g)
        w = w_of(util)
        assert util.volatility == pytest.approx(math.sqrt(w @ c @ w), rel=1e-12)
        assert util.objective == pytest.approx(1.5 * w @ c @ w + g * w @ w - mu @ w, abs=1e-8)


def test_factor_covariance_keeps_its_form_with_gamma_on_the_specific_variances() -> None:
    mu, fcov = factor_problem(15, 3, 1)
    g = 0.02
    bumped = FactorCovariance(fcov.loadings, fcov.factor_cov, fcov.specific + g)
    cases = [
        (mv.min_variance, {}),
        (mv.efficient_return, {"mu": mu, "target_return": 0.1}),
        (mv.max_sharpe, {"mu": mu, "risk_free_rate": 0.01}),
    ]
    for fn, kw in cases:
        reg = fn(cov=fcov, l2_gamma=g, **kw)
        same = fn(cov=bumped, **kw)
        dense = fn(cov=fcov.cov, l2_gamma=g, **kw)
        np.testing.assert_allclose(w_of(reg), w_of(same), atol=1e-6)
        np.testing.assert_allclose(w_of(reg), w_of(dense), atol=1e-6)
        w = w_of(reg)
        assert reg.volatility == pytest.approx(math.sqrt(w @ fcov.cov.to_numpy() @ w), rel=1e-9)


# ----------------------------------------------------------------------------- gamma = 0


def test_gamma_zero_is_bit_identical_to_no_regularization() -> None:
    for mu, cov in (problem(8, 2), factor_problem(10, 2, 5)):
        pairs = [
            (mv.min_variance, {"mu": mu}),
            (mv.max_utility, {"mu": mu, "risk_aversion": 2.5}),
            (mv.efficient_return, {"mu": mu, "target_return": 0.09}),
            (mv.efficient_risk, {"mu": mu, "target_volatility": 0.2}),
            (mv.max_sharpe, {"mu": mu, "risk_free_rate": 0.01}),
        ]
        for fn, kw in pairs:
            a, b = fn(cov=cov, **kw), fn(cov=cov, l2_gamma=0.0, **kw)
            assert np.array_equal(w_of(a), w_of(b)), fn.__name__
            assert (a.objective, a.volatility) == (b.objective, b.volatility)


# ----------------------------------------------------------------------------- compiled problems


def test_compiled_problems_take_l2_gamma_fixed_or_per_solve() -> None:
    mu, cov = problem(6, 7)
    fixed = mv.compile("min_variance", cov, l2_gamma=0.1)
    np.testing.assert_array_equal(w_of(fixed.solve()), w_of(mv.min_variance(cov, l2_gamma=0.1)))
    cm = mv.compile("max_utility", cov)
    for g in (0.0, 0.05, 0.5):
        got = cm.solve(mu=mu, risk_aversion=4.0, l2_gamma=g)
        want = mv.max_utility(mu, cov, risk_aversion=4.0, l2_gamma=g)
        np.testing.assert_allclose(w_of(got), w_of(want), atol=1e-9)
    sharpe = mv.compile("max_sharpe", cov, l2_gamma=0.2)
    np.testing.assert_allclose(
        w_of(sharpe.solve(mu=mu)), w_of(mv.max_sharpe(mu, cov, l2_gamma=0.2)), atol=1e-9
    )


def test_max_return_takes_no_l2_gamma() -> None:
    mu, cov = problem(4, 1)
    with pytest.raises(InputError, match="max_return takes mu; unknown: l2_gamma"):
        mv.compile("max_return", cov, l2_gamma=0.1)
    with pytest.raises(InputError, match="unknown: l2_gamma"):
        mv.compile("max_return", cov).solve(mu=mu, l2_gamma=0.1)


# ----------------------------------------------------------------------------- error paths


BAD = [-0.1, -1e-300, math.nan, math.inf, -math.inf, "0.1", True, None, [0.1]]


@pytest.mark.parametrize("value", BAD, ids=repr)
@pytest.mark.parametrize(
    "name", ["min_variance", "max_utility", "efficient_return", "efficient_risk", "max_sharpe"]
)
def test_bad_gamma_is_an_input_error_naming_l2_gamma_and_the_fix(name: str, value) -> None:
    mu, cov = problem(4, 3)
    data = {
        "min_variance": {},
        "max_utility": {"mu": mu, "risk_aversion": 2.0},
        "efficient_return": {"mu": mu, "target_return": 0.05},
        "efficient_risk": {"mu": mu, "target_volatility": 0.3},
        "max_sharpe": {"mu": mu},
    }[name]
    with pytest.raises(InputError) as err:
        getattr(mv, name)(cov=cov, l2_gamma=value, **data)
    msg = str(err.value)
    assert "l2_gamma" in msg and repr(value) in msg
    assert "give a finite number >= 0" in msg
    with pytest.raises(InputError, match="l2_gamma"):
        mv.compile(name, cov, l2_gamma=value).solve(**data)


# ----------------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 8),
    seed=st.integers(0, 10_000),
    gammas=st.lists(st.floats(1e-4, 10.0), min_size=2, max_size=4, unique=True),
)
def test_larger_gamma_is_never_further_from_equal_weights(n: int, seed: int, gammas) -> None:
    _, cov = problem(n, seed)
    equal = np.full(n, 1.0 / n)
    dist = [np.linalg.norm(w_of(mv.min_variance(cov, l2_gamma=g)) - equal) for g in sorted(gammas)]
    for a, b in zip(dist, dist[1:], strict=False):
        assert b <= a + 1e-6
    huge = mv.min_variance(cov, l2_gamma=1e8)
    np.testing.assert_allclose(w_of(huge), equal, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    g=st.floats(1e-3, 1.0),
    exponent=st.floats(-4.0, 4.0),
)
def test_scaling_cov_and_gamma_together_gives_the_same_weights(seed, g, exponent) -> None:
    mu, cov = problem(5, seed)
    s = 10.0**exponent
    base = mv.min_variance(cov, l2_gamma=g)
    scaled = mv.min_variance(cov * s, l2_gamma=g * s)
    np.testing.assert_allclose(w_of(scaled), w_of(base), atol=1e-6)
    # max Sharpe: returns by a, covariance and gamma by a^2
    a = math.sqrt(s)
    base = mv.max_sharpe(mu, cov, l2_gamma=g)
    scaled = mv.max_sharpe(mu * a, cov * s, l2_gamma=g * s)
    np.testing.assert_allclose(w_of(scaled), w_of(base), atol=1e-6)


# ----------------------------------------------------------------------------- PyPortfolioOpt


@pytest.mark.parametrize("seed", range(3))
def test_side_by_side_with_pypfopt(seed: int) -> None:
    pypfopt = pytest.importorskip(
        "pypfopt", reason="PyPortfolioOpt (the bench extra) not installed"
    )
    from pypfopt import objective_functions

    mu, cov = problem(10, 100 + seed)
    g = [0.01, 0.1, 1.0][seed]

    def theirs(method: str, *args, **kwargs) -> np.ndarray:
        ef = pypfopt.EfficientFrontier(mu, cov, solver="CLARABEL", **kwargs.pop("ef", {}))
        ef.add_objective(objective_functions.L2_reg, gamma=g)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_sharpe warns that objectives are transformed
            getattr(ef, method)(*args, **kwargs)
        return np.asarray(ef.weights)

    shorts = {"ef": {"weight_bounds": (-1, 1)}}
    box = [Bounds(lower=-1, upper=1), Budget(1.0)]
    cases = [
        (theirs("min_volatility"), mv.min_variance(cov, l2_gamma=g)),
        (theirs("min_volatility", **shorts), mv.min_variance(cov, l2_gamma=g, constraints=box)),
        (
            theirs("max_quadratic_utility", 2.0),
            mv.max_utility(mu, cov, risk_aversion=2, l2_gamma=g),
        ),
        (
            theirs("efficient_return", 0.1),
            mv.efficient_return(mu, cov, target_return=0.1, l2_gamma=g),
        ),
        (
            theirs("efficient_risk", 0.2),
            mv.efficient_risk(mu, cov, target_volatility=0.2, l2_gamma=g),
        ),
        (theirs("max_sharpe", 0.02), mv.max_sharpe(mu, cov, risk_free_rate=0.02, l2_gamma=g)),
    ]
    for want, got in cases:
        np.testing.assert_allclose(w_of(got), want, atol=2e-5)


# ----------------------------------------------------------------------------- scenarios


@pytest.fixture(scope="module")
def riverside():
    scn = load_scenario(examples()["riverside_endowment"])
    return scn, scn.estimates.build()


@pytest.mark.parametrize("objective", ["max_sharpe", "min_variance"])
def test_engine_passes_model_l2_gamma_through(riverside, objective: str) -> None:
    scn, est = riverside
    params = MappingProxyType({**scn.model.params, "l2_gamma": 0.05})
    model = dataclasses.replace(scn.model, objective=objective, params=params)
    got = engine.allocate(dataclasses.replace(scn, model=model), est)
    kw = {"constraints": list(scn.constraints), "universe": scn.universe, "l2_gamma": 0.05}
    if objective == "max_sharpe":
        want = mv.max_sharpe(est.mu, est.cov, risk_free_rate=scn.estimates.risk_free_rate, **kw)
    else:
        want = mv.min_variance(est.cov, mu=est.mu, **kw)
    np.testing.assert_array_equal(w_of(got), w_of(want))
    plain = engine.allocate(scn, est) if objective == "max_sharpe" else None
    if plain is not None:
        assert not np.array_equal(w_of(plain), w_of(got))


def test_scenario_file_accepts_model_l2_gamma(tmp_path) -> None:
    from scenarios.schema import model as schema_model

    if "l2_gamma" not in schema_model._MODEL:
        pytest.skip("scenarios/schema/model.py does not list [model] l2_gamma yet")
    src = examples()["riverside_endowment"]
    text = src.read_text(encoding="utf-8").replace(
        'objective = "max_sharpe"\n', 'objective = "max_sharpe"\nl2_gamma = 0.05\n', 1
    )
    path = tmp_path / "l2.toml"
    for other in src.parent.iterdir():  # the scenario's data files, beside it
        if other.suffix in (".csv", ".gz"):
            (tmp_path / other.name).write_bytes(other.read_bytes())
    path.write_text(text, encoding="utf-8")
    scn = load_scenario(path)
    assert scn.model.params["l2_gamma"] == 0.05
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("l2_gamma = 0.05", "l2_gamma = -1"), encoding="utf-8")
    with pytest.raises(InputError, match="l2_gamma"):
        load_scenario(bad)
