"""Tests of models.risk_parity: closed forms, Newton accuracy, constraints, real data, errors."""

from __future__ import annotations

import json

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import models.risk_parity as rp
from models.risk_parity import risk_parity
from optimizer.compiled import Compiled
from optimizer.constraints import Bounds, Budget, GroupLimit, LongOnly
from optimizer.errors import InfeasibleError, InputError
from optimizer.objective import Objective
from optimizer.riskmodel import FactorCovariance
from optimizer.terms import LogBarrierTerm
from optimizer.universe import Universe

ASSETS = ["US_EQ", "INTL_EQ", "EM_EQ", "BONDS", "TIPS", "GOLD"]


def make_cov(n: int = 6, seed: int = 0, labels: list[str] | None = None) -> pd.DataFrame:
    """A dense PSD covariance (annualized, vols of roughly 5% to 25%)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n + 3))
    c = a @ a.T / (n + 3) * 0.02 + np.diag(rng.uniform(0.002, 0.02, n))
    labels = labels or (ASSETS if n == len(ASSETS) else [f"A{i}" for i in range(n)])
    return pd.DataFrame(c, index=labels, columns=labels)


def shares(w: pd.Series, cov: pd.DataFrame) -> np.ndarray:
    """Risk shares w_i (Cw)_i / w'Cw, computed here from scratch."""
    x = w.to_numpy()
    cw = cov.to_numpy() @ x
    return x * cw / (x @ cw)


def spread(w: pd.Series, cov: pd.DataFrame, b: np.ndarray) -> float:
    return float(np.max(np.abs(shares(w, cov) / b - 1.0)))


def reference(cov: pd.DataFrame, b: np.ndarray, cons) -> np.ndarray:
    """The homogenized log-barrier problem written directly in cvxpy (independent reference).

    ``cons(y, t)`` returns the constraints in perspective form.
    """
    n = len(b)
    y = cp.Variable(n)
    t = cp.Variable()
    c = cov.to_numpy()
    prob = cp.Problem(
        cp.Minimize(0.5 * cp.quad_form(y, cp.psd_wrap(c)) - b @ cp.log(y)),
        [cp.sum(y) == t, t >= 0, *cons(y, t)],
    )
    prob.solve(solver="CLARABEL")
    return y.value / t.value


# ----------------------------------------------------------------------------- closed forms


def test_diagonal_covariance_gives_inverse_volatility() -> None:
    vol = np.array([0.16, 0.18, 0.24, 0.05, 0.06, 0.15])
    cov = pd.DataFrame(np.diag(vol**2), index=ASSETS, columns=ASSETS)
    alloc = risk_parity(cov)
    expected = (1 / vol) / (1 / vol).sum()
    np.testing.assert_allclose(alloc.weights.to_numpy(), expected, rtol=0, atol=1e-10)
    assert alloc.solver == "NEWTON"
    assert alloc.status == "optimal"
    assert list(alloc.weights.index) == ASSETS


def test_budgets_on_diagonal_covariance_give_sqrt_budget_over_volatility() -> None:
    vol = np.array([0.16, 0.18, 0.24, 0.05, 0.06, 0.15])
    cov = pd.DataFrame(np.diag(vol**2), index=ASSETS, columns=ASSETS)
    raw = pd.Series([3.0, 2.0, 1.0, 2.0, 1.0, 1.0], index=ASSETS)
    alloc = risk_parity(cov, raw)
    expected = np.sqrt(raw.to_numpy()) / vol
    expected /= expected.sum()
    np.testing.assert_allclose(alloc.weights.to_numpy(), expected, rtol=0, atol=1e-10)
    b = raw.to_numpy() / raw.sum()
    np.testing.assert_allclose(
        alloc.risk_contributions.to_numpy() / alloc.volatility, b, rtol=1e-10
    )


def test_two_assets_closed_form() -> None:
    # two assets: equal risk whatever the correlation means w1 s1 = w2 s2
    s1, s2, rho = 0.2, 0.05, 0.6
    c = np.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]])
    cov = pd.DataFrame(c, index=["EQ", "BD"], columns=["EQ", "BD"])
    w = risk_parity(cov).weights
    assert w["EQ"] == pytest.approx(s2 / (s1 + s2), abs=1e-12)


def test_budgets_given_as_mapping_are_normalized() -> None:
    cov = make_cov()
    raw = dict(zip(ASSETS, [4, 3, 2, 1, 1, 1], strict=True))
    a1 = risk_parity(cov, raw)
    a2 = risk_parity(cov, pd.Series(raw) / 12.0)
    np.testing.assert_allclose(a1.weights, a2.weights, atol=1e-14)
    b = np.array([4, 3, 2, 1, 1, 1]) / 12
    assert spread(a1.weights, cov, b) < 1e-10


def test_budgets_in_another_order_are_aligned_by_label() -> None:
    cov = make_cov()
    b = pd.Series([0.1, 0.2, 0.3, 0.1, 0.2, 0.1], index=ASSETS)
    a1 = risk_parity(cov, b)
    a2 = risk_parity(cov, b.iloc[::-1])
    np.testing.assert_allclose(a1.weights, a2.weights, atol=1e-14)


# ----------------------------------------------------------------------------- Newton path


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [3, 12, 60])
def test_newton_reaches_tiny_spread_on_dense_covariances(n: int, seed: int) -> None:
    cov = make_cov(n, seed)
    b = np.random.default_rng(seed + 100).uniform(0.2, 1.0, n)
    alloc = risk_parity(cov, pd.Series(b, index=cov.index))
    assert alloc.solver == "NEWTON"
    assert spread(alloc.weights, cov, b / b.sum()) < 1e-10
    assert alloc.weights.sum() == pytest.approx(1.0, abs=1e-13)
    assert (alloc.weights > 0).all()


def test_large_dense_covariance_uses_conjugate_gradients() -> None:
    rng = np.random.default_rng(5)
    n, t = 260, 600
    beta = rng.uniform(0.5, 1.5, n)
    x = np.outer(rng.normal(0, 0.01, t), beta) + rng.normal(0, 0.015, (t, n))
    labels = [f"S{i}" for i in range(n)]
    cov = pd.DataFrame(np.cov(x, rowvar=False) * 252, index=labels, columns=labels)
    alloc = risk_parity(cov)
    assert spread(alloc.weights, cov, np.full(n, 1 / n)) < 1e-10
    assert alloc.attempts[0]["iterations"] <= 15
    assert alloc.attempts[0]["cg_iterations"] > 0
    assert alloc.attempts[0]["factorizations"] == 0


def test_conjugate_gradients_fall_back_to_cholesky(monkeypatch) -> None:
    cov = make_cov(220, 3)
    baseline = risk_parity(cov).weights
    monkeypatch.setattr(rp._Hessian, "CG_MAX_ITER", 1)
    alloc = risk_parity(cov)
    assert alloc.solver == "NEWTON"
    assert alloc.attempts[0]["factorizations"] >= 1
    np.testing.assert_allclose(alloc.weights, baseline, atol=1e-12)


def test_strong_and_negative_correlations() -> None:
    # a near-singular block with correlations of both signs
    rng = np.random.default_rng(11)
    a = rng.normal(size=(8, 2))
    c = a @ a.T + 1e-4 * np.eye(8)
    labels = [f"A{i}" for i in range(8)]
    cov = pd.DataFrame(c, index=labels, columns=labels)
    alloc = risk_parity(cov)
    assert spread(alloc.weights, cov, np.full(8, 1 / 8)) < 1e-10


def test_factor_covariance_matches_its_dense_form() -> None:
    rng = np.random.default_rng(2)
    n, k = 40, 3
    labels = [f"A{i}" for i in range(n)]
    factors = ["MKT", "SIZE", "VALUE"]
    loadings = pd.DataFrame(rng.normal(0.5, 0.5, (n, k)), index=labels, columns=factors)
    fcov = pd.DataFrame(np.diag([0.03, 0.01, 0.008]), index=factors, columns=factors)
    specific = pd.Series(rng.uniform(0.01, 0.05, n), index=labels)
    fc = FactorCovariance(loadings, fcov, specific)
    a_factor = risk_parity(fc)
    a_dense = risk_parity(fc.cov)
    np.testing.assert_allclose(a_factor.weights, a_dense.weights, atol=1e-12)
    assert spread(a_factor.weights, fc.cov, np.full(n, 1 / n)) < 1e-10


def test_factor_covariance_with_binding_constraints_matches_dense() -> None:
    rng = np.random.default_rng(8)
    n, k = 12, 2
    labels = [f"A{i}" for i in range(n)]
    factors = ["MKT", "RATES"]
    loadings = pd.DataFrame(rng.normal(0.6, 0.4, (n, k)), index=labels, columns=factors)
    fcov = pd.DataFrame([[0.03, 0.002], [0.002, 0.01]], index=factors, columns=factors)
    specific = pd.Series(rng.uniform(0.005, 0.04, n), index=labels)
    fc = FactorCovariance(loadings, fcov, specific)
    cons = [Bounds(upper=0.1, name="cap")]
    a_factor = risk_parity(fc, constraints=cons)
    a_dense = risk_parity(fc.cov, constraints=cons)
    assert a_factor.checks["cap"]["ok"]
    np.testing.assert_allclose(a_factor.weights, a_dense.weights, atol=1e-8)


def test_allocation_is_complete_and_consistent() -> None:
    cov = make_cov()
    alloc = risk_parity(cov)
    assert set(alloc.checks) == {"budget", "long-only"}
    assert all(c["ok"] for c in alloc.checks.values())
    assert set(alloc.timings) == {"compile", "solve", "other"}
    assert alloc.attempts[0]["solver"] == "NEWTON"
    assert alloc.attempts[0]["spread"] < 1e-10
    assert alloc.expected_return is None
    w = alloc.weights.to_numpy()
    vol = float(np.sqrt(w @ cov.to_numpy() @ w))
    assert alloc.volatility == pytest.approx(vol, rel=1e-12)
    assert alloc.risk_contributions.sum() == pytest.approx(vol, rel=1e-12)
    assert alloc.notes == ()
    json.dumps(alloc.to_dict())


def test_objective_is_spinu_value_and_matches_the_core() -> None:
    cov = make_cov()
    b = np.full(6, 1 / 6)
    alloc = risk_parity(cov)
    core = Compiled(cov).run(Objective(variance=0.5, terms=(LogBarrierTerm(b),), homogenize=True))
    assert alloc.objective == pytest.approx(core.objective, abs=1e-6)
    # the minimizer y = w / vol (since y'Cy = sum(b) = 1 at the optimum)
    y = alloc.weights.to_numpy() / alloc.volatility
    value = 0.5 * y @ cov.to_numpy() @ y - b @ np.log(y)
    assert alloc.objective == pytest.approx(value, abs=1e-12)
    np.testing.assert_allclose(core.weights, alloc.weights, atol=1e-6)


def test_explicit_budget_and_long_only_stay_on_the_newton_path() -> None:
    cov = make_cov()
    base = risk_parity(cov)
    alloc = risk_parity(cov, constraints=[Budget(1.0), LongOnly()])
    assert alloc.solver == "NEWTON"
    np.testing.assert_allclose(alloc.weights, base.weights, atol=1e-15)


def test_budget_total_scales_the_weights() -> None:
    cov = make_cov()
    base = risk_parity(cov)
    alloc = risk_parity(cov, constraints=[Budget(0.6)])
    np.testing.assert_allclose(alloc.weights, 0.6 * base.weights, atol=1e-14)
    assert alloc.checks["budget"]["ok"]


def test_newton_failure_falls_back_to_the_core_with_a_note() -> None:
    cov = make_cov(12, 4)
    base = risk_parity(cov)
    alloc = risk_parity(cov, max_iter=1)
    assert alloc.solver.startswith("CLARABEL")
    assert any("Newton's method stopped" in note for note in alloc.notes)
    np.testing.assert_allclose(alloc.weights, base.weights, atol=1e-6)
    assert not any("impossible" in note for note in alloc.notes)


def test_unconverged_newton_is_not_returned(monkeypatch) -> None:
    cov = make_cov()
    base = risk_parity(cov)

    def stuck(hess, b, *, tol, max_iter):
        x = np.sqrt(b / hess.diagonal())
        return rp._Newton(x, 0.3, max_iter, False, "forced")

    monkeypatch.setattr(rp, "_spinu_newton", stuck)
    alloc = risk_parity(cov)
    assert "forced" in alloc.notes[0]
    assert alloc.solver != "NEWTON"
    np.testing.assert_allclose(alloc.weights, base.weights, atol=1e-6)


def test_ill_conditioned_covariance_returns_the_closer_answer_with_a_note() -> None:
    # a singular sample covariance (10 observations of 20 assets) plus a 1e-8 ridge:
    # even the exact solution, rounded to double, misses the budgets by ~1e-5
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 20))
    c = np.cov(x, rowvar=False) + 1e-8 * np.eye(20)
    labels = [f"A{i}" for i in range(20)]
    cov = pd.DataFrame((c + c.T) / 2, index=labels, columns=labels)
    b = pd.Series(10 ** rng.uniform(-4, 0, 20), index=labels)
    alloc = risk_parity(cov, b)
    note = next(n for n in alloc.notes if "Newton's method stopped" in n)
    assert "short of the target 1e-10" in note
    assert all(c["ok"] for c in alloc.checks.values())
    assert spread(alloc.weights, cov, (b / b.sum()).to_numpy()) < 1e-3


def test_core_failure_keeps_a_nearly_converged_newton_answer(monkeypatch) -> None:
    from optimizer.errors import SolverError

    cov = make_cov()
    exact = risk_parity(cov).weights.to_numpy()

    def nearly(hess, b, *, tol, max_iter):
        x = exact * (1 + 1e-9 * np.arange(6))
        return rp._Newton(x, 5e-9, max_iter, False, "forced")

    def broken(*args, **kwargs):
        raise SolverError("every solver in the chain failed")

    monkeypatch.setattr(rp, "_spinu_newton", nearly)
    monkeypatch.setattr(Compiled, "run", broken)
    alloc = risk_parity(cov)
    assert alloc.solver == "NEWTON"
    assert alloc.attempts[0]["status"] == "stalled"
    assert "the convex core did no better (spread inf)" in alloc.notes[0]
    np.testing.assert_allclose(alloc.weights, exact, atol=1e-8)


def test_core_failure_is_raised_when_newton_is_far_off(monkeypatch) -> None:
    from optimizer.errors import SolverError

    def far(hess, b, *, tol, max_iter):
        return rp._Newton(np.sqrt(b / hess.diagonal()), 0.2, max_iter, False, "forced")

    def broken(*args, **kwargs):
        raise SolverError("every solver in the chain failed")

    monkeypatch.setattr(rp, "_spinu_newton", far)
    monkeypatch.setattr(Compiled, "run", broken)
    with pytest.raises(SolverError, match="every solver"):
        risk_parity(make_cov())


# ----------------------------------------------------------------------------- constrained path


def test_slack_constraints_give_the_unconstrained_answer() -> None:
    cov = make_cov()
    base = risk_parity(cov)
    alloc = risk_parity(cov, constraints=[Bounds(upper=0.99, name="cap")])
    np.testing.assert_allclose(alloc.weights, base.weights, atol=1e-12)
    assert alloc.checks["cap"]["ok"]
    assert alloc.notes == ()


def test_core_formulation_matches_newton_when_constraints_are_slack() -> None:
    # the exponential-cone program itself (no shortcut) with a slack cap
    cov = make_cov(8, 1)
    b = np.full(8, 1 / 8)
    base = risk_parity(cov)
    core = Compiled(cov, constraints=[Bounds(upper=0.99)]).run(
        Objective(variance=0.5, terms=(LogBarrierTerm(b),), homogenize=True)
    )
    np.testing.assert_allclose(core.weights, base.weights, atol=1e-6)


def test_binding_upper_bound_is_met_with_a_note() -> None:
    cov = make_cov()
    base = risk_parity(cov)
    top = base.weights.idxmax()
    cap = round(float(base.weights.max()) - 0.04, 4)
    alloc = risk_parity(cov, constraints=[Bounds(upper=cap, name="cap")])
    assert alloc.weights.max() <= cap + 1e-9
    assert alloc.weights[top] == pytest.approx(cap, abs=1e-9)
    assert alloc.checks["cap"]["ok"]
    assert any(b["label"] == f"cap [{top}]" and b["side"] == "max" for b in alloc.binding)
    assert any("constraints make the exact risk budgets impossible" in n for n in alloc.notes)
    assert alloc.weights.sum() == pytest.approx(1.0, abs=1e-12)
    ref = reference(cov, np.full(6, 1 / 6), lambda y, t: [y <= cap * t])
    np.testing.assert_allclose(alloc.weights.to_numpy(), ref, atol=1e-5)
    assert alloc.solver == "CLARABEL+NEWTON"


def test_note_names_the_worst_asset_with_realized_and_target_shares() -> None:
    cov = make_cov()
    alloc = risk_parity(cov, constraints=[Bounds(lower={"BONDS": 0.5}, name="bond floor")])
    assert alloc.weights["BONDS"] == pytest.approx(0.5, abs=1e-9)
    share = alloc.risk_contributions / alloc.volatility
    gap = (share * 6 - 1).abs()
    worst = gap.idxmax()
    note = next(n for n in alloc.notes if "impossible" in n)
    assert worst in note
    assert f"with {100 * share[worst]:.6g}% of the risk" in note
    assert "against a budget of 16.6667%" in note


def test_group_limit_with_universe_tags() -> None:
    cov = make_cov()
    uni = Universe(
        assets=ASSETS,
        tags={
            "US_EQ": ["equity"],
            "INTL_EQ": ["equity"],
            "EM_EQ": ["equity"],
            "BONDS": ["fixed income"],
            "TIPS": ["fixed income"],
        },
    )
    base = risk_parity(cov)
    eq = ["US_EQ", "INTL_EQ", "EM_EQ"]
    cap = round(float(base.weights[eq].sum()) - 0.05, 4)
    cons = [GroupLimit(tag="equity", max=cap, name="equity cap")]
    alloc = risk_parity(cov, constraints=cons, universe=uni)
    assert alloc.weights[eq].sum() == pytest.approx(cap, abs=1e-9)
    assert alloc.checks["equity cap"]["ok"]
    assert any(b["name"] == "equity cap" for b in alloc.binding)
    mask = np.array([a in eq for a in ASSETS], dtype=float)
    ref = reference(cov, np.full(6, 1 / 6), lambda y, t: [mask @ y <= cap * t])
    np.testing.assert_allclose(alloc.weights.to_numpy(), ref, atol=1e-5)


def test_polished_answer_satisfies_the_kkt_conditions() -> None:
    # on the face {w_top = cap}, the gradient of the barrier objective is
    # a non-negative multiple of the binding row (total e_top - cap 1)
    cov = make_cov(10, 7)
    b = np.full(10, 0.1)
    base = risk_parity(cov)
    top = int(np.argmax(base.weights.to_numpy()))
    cap = float(base.weights.iloc[top]) * 0.8
    alloc = risk_parity(cov, constraints=[Bounds(upper=cap)])
    w = alloc.weights.to_numpy()
    c = cov.to_numpy()
    y = w / np.sqrt(w @ c @ w)
    g = c @ y - b / y
    row = -cap * np.ones(10)
    row[top] += 1.0
    nu = -(g @ row) / (row @ row)
    assert nu >= 0
    np.testing.assert_allclose(g + nu * row, 0.0, atol=1e-9)


def test_turnover_style_nonlinear_constraints_use_the_core() -> None:
    from optimizer.constraints import TrackingErrorLimit

    cov = make_cov()
    policy = dict(zip(ASSETS, [0.3, 0.2, 0.1, 0.25, 0.1, 0.05], strict=True))
    cons = [TrackingErrorLimit(benchmark=policy, max=0.01, name="te")]
    alloc = risk_parity(cov, constraints=cons)
    assert alloc.checks["te"]["ok"]
    d = alloc.weights.to_numpy() - np.array(list(policy.values()))
    assert np.sqrt(d @ cov.to_numpy() @ d) <= 0.01 + 1e-7
    assert any("impossible" in n for n in alloc.notes)


def test_infeasible_constraints_raise_infeasible_error() -> None:
    cov = make_cov()
    with pytest.raises(InfeasibleError, match="cap"):
        risk_parity(cov, constraints=[Bounds(upper=0.1, name="cap")])


# ----------------------------------------------------------------------------- real data


def _last_years(prices: pd.DataFrame, years: int = 5) -> pd.DataFrame:
    start = prices.index[-1] - pd.DateOffset(years=years)
    return prices.loc[prices.index >= start].pct_change().dropna()


def test_sp500_risk_parity_converges(sp500_prices: pd.DataFrame) -> None:
    rets = _last_years(sp500_prices)
    cov = rets.cov() * 252
    alloc = risk_parity(cov)
    assert alloc.solver == "NEWTON"
    assert spread(alloc.weights, cov, np.full(20, 1 / 20)) < 1e-10
    # risk parity holds less of the volatile names than of the staples
    assert alloc.weights["AMD"] < alloc.weights["KO"]
    capped = risk_parity(cov, constraints=[Bounds(lower=0.02, upper=0.07, name="box")])
    assert capped.checks["box"]["ok"]
    assert capped.weights.between(0.02 - 1e-9, 0.07 + 1e-9).all()


def test_french_industries_risk_budgets_with_groups(french_industries: pd.DataFrame) -> None:
    rets = french_industries.loc["1990":]
    cov = rets.cov() * 12
    budgets = pd.Series(1.0, index=cov.index)
    budgets[["Enrgy", "Utils"]] = 2.0
    alloc = risk_parity(cov, budgets)
    assert spread(alloc.weights, cov, (budgets / budgets.sum()).to_numpy()) < 1e-10
    uni = Universe(
        assets=list(cov.index),
        tags={a: ["cyclical"] for a in ["Durbl", "Manuf", "Enrgy", "Chems", "BusEq", "Money"]},
    )
    cons = [GroupLimit(tag="cyclical", max=0.4, name="cyclical cap")]
    capped = risk_parity(cov, budgets, constraints=cons, universe=uni)
    assert capped.checks["cyclical cap"]["ok"]
    cyc = uni.members("cyclical")
    assert capped.weights[cyc].sum() <= 0.4 + 1e-9


# ----------------------------------------------------------------------------- properties


@st.composite
def problems(draw):
    n = draw(st.integers(2, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    k = draw(st.integers(1, 3))
    loads = rng.normal(0.0, 1.0, (n, k)) * rng.uniform(0.05, 0.3, (1, k))
    c = loads @ loads.T + np.diag(rng.uniform(0.0005, 0.05, n))
    b = np.array(draw(st.lists(st.floats(0.02, 1.0), min_size=n, max_size=n)))
    labels = [f"A{i}" for i in range(n)]
    return pd.DataFrame(c, index=labels, columns=labels), pd.Series(b, index=labels)


@settings(max_examples=25, deadline=None)
@given(problems())
def test_property_risk_shares_equal_budgets(problem) -> None:
    cov, budgets = problem
    alloc = risk_parity(cov, budgets)
    b = (budgets / budgets.sum()).to_numpy()
    np.testing.assert_allclose(shares(alloc.weights, cov), b, rtol=1e-10)
    assert alloc.weights.sum() == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------------- errors


def test_cov_must_be_a_dataframe() -> None:
    with pytest.raises(InputError, match="cov must be a pandas DataFrame"):
        risk_parity(np.eye(3))


def test_cov_not_psd() -> None:
    c = np.array([[1.0, 2.0], [2.0, 1.0]])
    cov = pd.DataFrame(c, index=["A", "B"], columns=["A", "B"])
    with pytest.raises(InputError, match="not positive semidefinite"):
        risk_parity(cov)


def test_budgets_missing_asset() -> None:
    b = pd.Series(1.0, index=ASSETS[:-1])
    with pytest.raises(
        InputError, match="budgets and cov name different assets: missing from budgets: GOLD$"
    ):
        risk_parity(make_cov(), b)


def test_budgets_unknown_asset() -> None:
    b = pd.Series(1.0, index=[*ASSETS, "BTC"])
    with pytest.raises(
        InputError, match="budgets and cov name different assets: in budgets but not in cov: BTC$"
    ):
        risk_parity(make_cov(), b)


def test_budgets_zero_or_negative() -> None:
    b = pd.Series([1.0, 0.0, 1.0, -0.5, 1.0, 1.0], index=ASSETS)
    with pytest.raises(
        InputError, match=r"budgets must be positive.*INTL_EQ \(0\), BONDS \(-0.5\)"
    ):
        risk_parity(make_cov(), b)


def test_budgets_nan() -> None:
    b = pd.Series([1.0, np.nan, 1.0, 1.0, 1.0, 1.0], index=ASSETS)
    with pytest.raises(InputError, match="budgets has NaN or inf values for assets: INTL_EQ$"):
        risk_parity(make_cov(), b)


def test_budgets_wrong_type() -> None:
    with pytest.raises(InputError, match="budgets must be a pandas Series or a mapping"):
        risk_parity(make_cov(), [1, 1, 1, 1, 1, 1])


def test_budgets_not_numeric() -> None:
    b = pd.Series(["a", "b", "c", "d", "e", "f"], index=ASSETS)
    with pytest.raises(InputError, match=r"budgets must be numbers.*not for: US_EQ"):
        risk_parity(make_cov(), b)
    with pytest.raises(InputError, match=r"budgets must be numbers \(asset -> positive number\)"):
        risk_parity(make_cov(), dict.fromkeys(ASSETS, "x"))


@pytest.mark.parametrize("tol", [0.0, -1e-9, float("nan"), float("inf"), "tight", True])
def test_bad_tol(tol) -> None:
    with pytest.raises(InputError, match="tol must be a positive number"):
        risk_parity(make_cov(), tol=tol)


@pytest.mark.parametrize("max_iter", [0, -3, 2.5, True, "10"])
def test_bad_max_iter(max_iter) -> None:
    with pytest.raises(InputError, match="max_iter must be a positive integer"):
        risk_parity(make_cov(), max_iter=max_iter)


def test_unknown_solver() -> None:
    with pytest.raises(InputError, match="unknown solver 'GUROBI'"):
        risk_parity(make_cov(), solvers=["GUROBI"])


def test_zero_variance_asset() -> None:
    c = make_cov().to_numpy().copy()
    c[3, :] = c[:, 3] = 0.0
    cov = pd.DataFrame(c, index=ASSETS, columns=ASSETS)
    with pytest.raises(InputError, match="zero variance for BONDS"):
        risk_parity(cov)


@pytest.mark.parametrize("extra", [False, True])
def test_perfect_hedge(extra: bool) -> None:
    c = np.array([[0.04, -0.04], [-0.04, 0.04]])
    labels = ["LONG", "SHORT"]
    if extra:
        c = np.block([[c, np.zeros((2, 1))], [np.zeros((1, 2)), np.array([[0.01]])]])
        labels = [*labels, "OTHER"]
    cov = pd.DataFrame(c, index=labels, columns=labels)
    with pytest.raises(InputError, match="LONG, SHORT has zero volatility.*hedge each other"):
        risk_parity(cov)


@pytest.mark.parametrize("total", [0.0, -1.0])
def test_budget_must_be_positive(total: float) -> None:
    with pytest.raises(InputError, match="needs a positive budget.*'budget' has total"):
        risk_parity(make_cov(), constraints=[Budget(total)])


def test_universe_must_match() -> None:
    uni = Universe(assets=[*ASSETS, "BTC"])
    with pytest.raises(InputError, match="no row for universe assets: BTC"):
        risk_parity(make_cov(), universe=uni)
    with pytest.raises(InputError, match="universe= must be an optimizer.Universe"):
        risk_parity(make_cov(), universe={"assets": ASSETS})


def test_unknown_tag_is_named() -> None:
    uni = Universe(assets=ASSETS, tags={"US_EQ": ["equity"]})
    with pytest.raises(InputError, match="unknown tag 'equities'"):
        risk_parity(make_cov(), constraints=[GroupLimit(tag="equities", max=0.5)], universe=uni)
