"""Tests of the convex core (optimizer.compiled.Compiled and its pieces) and of what it reports.

Known answers (closed forms and a catalogue of small problems solved by hand), the fields of an
Allocation, the solver chain and its failures, infeasibility diagnoses, input errors and the
compile cache.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from models import mean_variance as mv
from optimizer import compiled, solvers
from optimizer.allocation import Allocation
from optimizer.compiled import Compiled, ContentCache, shared
from optimizer.constraints import (
    Bounds,
    Budget,
    DeviationBand,
    ExposureLimit,
    GroupLimit,
    LeverageLimit,
    LinearConstraint,
    TrackingErrorLimit,
    TurnoverLimit,
    resolve,
)
from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.objective import Objective, compile_program
from optimizer.program import Outcome
from optimizer.riskmodel import FactorCovariance, RiskModel
from optimizer.universe import Universe
from optimizer.validation import vector
from optimizer.verify import stationary

ASSETS = ["US_EQ", "INTL_EQ", "BONDS", "REITS", "PE", "CASH"]
UNI = Universe(
    assets=ASSETS,
    tags={
        "US_EQ": ["equity", "liquid"],
        "INTL_EQ": ["equity", "liquid"],
        "BONDS": ["fixed income", "liquid"],
        "REITS": ["alternatives"],
        "PE": ["alternatives", "private"],
        "CASH": ["liquid"],
    },
)


def solve_portfolio(objective, *, cov, mu=None, constraints=None, universe=None, solvers=None):
    """One solve of ``objective`` through a held :class:`Compiled` (mu read by name)."""
    cm = Compiled(cov, constraints=constraints, universe=universe, solvers=solvers)
    mu_vec = None if mu is None else vector(mu, cm.assets, what="expected returns (mu)")
    return cm.run(objective, mu=mu_vec)


def pieces_of(constraints, cov, universe=None) -> list:
    """The constraint pieces of a problem (defaults included)."""
    return list(resolve(constraints, cov.index, universe).pieces)


def random_problem(n: int = 6, seed: int = 0, assets=None) -> tuple[pd.Series, pd.DataFrame]:
    """A well-conditioned annualized covariance and expected returns."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 2 * n))
    c = a @ a.T / (2 * n) * 0.04 + np.diag(rng.uniform(0.005, 0.02, n))
    labels = assets or [f"A{i}" for i in range(n)]
    cov = pd.DataFrame(c, index=labels, columns=labels)
    mu = pd.Series(rng.uniform(0.02, 0.12, n), index=labels)
    return mu, cov


def diagonal(vols, names=None) -> pd.DataFrame:
    names = names or [chr(ord("A") + i) for i in range(len(vols))]
    return pd.DataFrame(np.diag(np.square(vols)), index=names, columns=names)


@pytest.fixture
def problem() -> tuple[pd.Series, pd.DataFrame]:
    return random_problem(6, seed=0, assets=ASSETS)


# ----------------------------------------------------------------------------- closed forms


def correlated_cov(n: int = 8, seed: int = 1, rho: float = 0.7) -> pd.DataFrame:
    """Constant correlation ``rho``: the budget-only minimum variance shorts the riskiest."""
    rng = np.random.default_rng(seed)
    vols = rng.uniform(0.1, 0.4, n)
    corr = rho * np.ones((n, n)) + (1 - rho) * np.eye(n)
    labels = [f"A{i}" for i in range(n)]
    return pd.DataFrame(np.outer(vols, vols) * corr, index=labels, columns=labels)


def test_budget_only_min_variance_closed_form() -> None:
    cov = correlated_cov()
    alloc = solve_portfolio(Objective(variance=1.0), cov=cov, constraints=[Bounds(lower=-10)])
    ci1 = np.linalg.solve(cov.to_numpy(), np.ones(8))
    np.testing.assert_allclose(alloc.weights.to_numpy(), ci1 / ci1.sum(), atol=1e-8)
    assert (alloc.weights < 0).any(), "the closed form should short something here"
    assert alloc.objective == pytest.approx(1.0 / ci1.sum(), rel=1e-8)


def test_unconstrained_max_utility_closed_form() -> None:
    mu, cov = random_problem(7, seed=2)
    delta = 3.0
    w_star = np.linalg.solve(cov.to_numpy(), mu.to_numpy()) / delta
    alloc = solve_portfolio(
        Objective(variance=delta / 2, mu_weight=1.0),
        cov=cov,
        mu=mu,
        constraints=[Budget(float(w_star.sum())), Bounds(lower=-100)],
    )
    np.testing.assert_allclose(alloc.weights.to_numpy(), w_star, atol=1e-7)
    utility = mu @ w_star - delta / 2 * w_star @ cov.to_numpy() @ w_star
    assert -alloc.objective == pytest.approx(utility, rel=1e-7)


def test_efficient_return_two_fund_closed_form() -> None:
    """Merton (1972): w(r) = [(C - rB) C^-1 1 + (rA - B) C^-1 mu] / D."""
    mu, cov = random_problem(6, seed=3)
    c = cov.to_numpy()
    ones, m = np.ones(6), mu.to_numpy()
    ci1, cim = np.linalg.solve(c, ones), np.linalg.solve(c, m)
    a_, b_, c_ = ones @ ci1, ones @ cim, m @ cim
    d_ = a_ * c_ - b_**2
    r_min = b_ / a_  # the global minimum-variance portfolio's return
    for r in (r_min + 0.01, r_min + 0.05, 0.15):
        expected = ((c_ - r * b_) * ci1 + (r * a_ - b_) * cim) / d_
        alloc = mv.efficient_return(mu, cov, target_return=r, constraints=[Bounds(lower=-50)])
        np.testing.assert_allclose(alloc.weights.to_numpy(), expected, atol=1e-7)
        assert alloc.expected_return == pytest.approx(r, abs=1e-9)
        assert alloc.volatility**2 == pytest.approx((a_ * r * r - 2 * b_ * r + c_) / d_, rel=1e-7)


def test_max_sharpe_budget_only_closed_form() -> None:
    mu, cov = random_problem(6, seed=4)
    rf = 0.01
    excess = np.linalg.solve(cov.to_numpy(), mu.to_numpy() - rf)
    assert excess.sum() > 0
    alloc = mv.max_sharpe(mu, cov, risk_free_rate=rf, constraints=[Bounds(lower=-10)])
    np.testing.assert_allclose(alloc.weights.to_numpy(), excess / excess.sum(), atol=1e-7)
    assert all(b["shadow_price"] is None for b in alloc.binding)


def factor_model(n: int = 10, k: int = 3, seed: int = 5) -> FactorCovariance:
    rng = np.random.default_rng(seed)
    assets = [f"S{i}" for i in range(n)]
    factors = [f"F{j}" for j in range(k)]
    loadings = pd.DataFrame(rng.normal(1.0, 0.5, (n, k)), index=assets, columns=factors)
    root = rng.normal(size=(k, k)) * 0.1
    factor_cov = pd.DataFrame(root @ root.T + 0.01 * np.eye(k), index=factors, columns=factors)
    specific = pd.Series(rng.uniform(0.01, 0.05, n), index=assets)
    return FactorCovariance(loadings, factor_cov, specific)


@pytest.mark.parametrize(
    "constraints",
    [
        [Bounds(lower=-10)],
        [],
        [GroupLimit(assets=["S0", "S1", "S2"], max=0.2), Bounds(upper=0.25)],
        [TrackingErrorLimit(dict.fromkeys([f"S{i}" for i in range(10)], 0.1), max=0.01)],
    ],
    ids=["budget-only", "long-only", "group+bounds", "tracking-error"],
)
def test_factor_covariance_equals_dense(constraints) -> None:
    fc = factor_model()
    dense = fc.cov
    a = mv.min_variance(fc, constraints=constraints)
    b = mv.min_variance(dense, constraints=constraints)
    # a second-order-cone limit is solved to interior-point accuracy (~1e-8), not exactly
    tol = 1e-7 if any(isinstance(c, TrackingErrorLimit) for c in constraints) else 1e-8
    np.testing.assert_allclose(a.weights.to_numpy(), b.weights.to_numpy(), atol=tol)
    assert a.volatility == pytest.approx(b.volatility, rel=1e-8)
    if not constraints:
        return
    if isinstance(constraints[0], Bounds):
        ci1 = np.linalg.solve(dense.to_numpy(), np.ones(10))
        np.testing.assert_allclose(a.weights.to_numpy(), ci1 / ci1.sum(), atol=1e-8)


# ----------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class KnownAnswer:
    """A small problem whose answer is worked out by hand."""

    solve: Callable[[], Allocation]
    weights: dict[str, float]
    binding: tuple[str, ...] = ()


_TE = 0.1 / math.sqrt(0.05)  # TE^2 = 0.05 w_B^2 on the two-asset problem below

CATALOGUE: dict[str, KnownAnswer] = {
    # min var of two uncorrelated assets: w_A = s_B^2 / (s_A^2 + s_B^2)
    "two-uncorrelated-min-var": KnownAnswer(
        lambda: mv.min_variance(diagonal([0.2, 0.1])), {"A": 0.2, "B": 0.8}
    ),
    # inverse variance: 1/0.01 : 1/0.04 : 1/0.16 = 16 : 4 : 1
    "three-uncorrelated-inverse-variance": KnownAnswer(
        lambda: mv.min_variance(diagonal([0.1, 0.2, 0.4])),
        {"A": 16 / 21, "B": 4 / 21, "C": 1 / 21},
    ),
    "cap-binding": KnownAnswer(
        lambda: mv.min_variance(diagonal([0.2, 0.1]), constraints=[Bounds(upper={"B": 0.6})]),
        {"A": 0.4, "B": 0.6},
        ("bounds",),
    ),
    "floor-binding": KnownAnswer(
        lambda: mv.min_variance(
            diagonal([0.1, 0.3]), constraints=[Bounds(lower={"B": 0.25}, name="B floor")]
        ),
        {"A": 0.75, "B": 0.25},
        ("B floor",),
    ),
    # equal vols: unconstrained 1/3 each; a cap of 0.4 on {A, B} splits it evenly
    "group-cap-binding": KnownAnswer(
        lambda: mv.min_variance(
            diagonal([0.2, 0.2, 0.2]),
            constraints=[GroupLimit(assets=["A", "B"], max=0.4, name="AB cap")],
        ),
        {"A": 0.2, "B": 0.2, "C": 0.6},
        ("AB cap",),
    ),
    "group-floor-by-tag": KnownAnswer(
        lambda: mv.min_variance(
            diagonal([0.1, 0.3, 0.3]),
            constraints=[GroupLimit(tag="risky", min=0.5, name="risky floor")],
            universe=Universe(["A", "B", "C"], tags={"B": ["risky"], "C": ["risky"]}),
        ),
        {"A": 0.5, "B": 0.25, "C": 0.25},
        ("risky floor",),
    ),
    "band-binding": KnownAnswer(
        lambda: mv.min_variance(
            diagonal([0.2, 0.1]),
            constraints=[DeviationBand({"A": 0.5, "B": 0.5}, 0.1, name="tactical")],
        ),
        {"A": 0.4, "B": 0.6},
        ("tactical",),
    ),
    "exposure-floor": KnownAnswer(
        lambda: mv.min_variance(
            diagonal([0.2, 0.2, 0.2]),
            constraints=[ExposureLimit({"A": 1.0, "B": 0.0, "C": 0.0}, min=0.5, name="beta")],
        ),
        {"A": 0.5, "B": 0.25, "C": 0.25},
        ("beta",),
    ),
    "linear-row": KnownAnswer(
        lambda: mv.min_variance(
            diagonal([0.2, 0.2, 0.2]),
            constraints=[LinearConstraint({"A": 1.0, "B": -1.0}, lower=0.3, name="A over B")],
        ),
        # 2a = l + v, 2b = l - v, 2c = l, a - b = v = 0.3, a + b + c = 1: l = 2/3
        {"A": 29 / 60, "B": 11 / 60, "C": 1 / 3},
        ("A over B",),
    ),
    # turnover from (1, 0): 2 (1 - w_A) <= 0.4
    "turnover-binding": KnownAnswer(
        lambda: mv.min_variance(
            diagonal([0.2, 0.1]), constraints=[TurnoverLimit({"A": 1.0}, 0.4, name="turnover")]
        ),
        {"A": 0.8, "B": 0.2},
        ("turnover",),
    ),
    # benchmark (1, 0): TE = w_B sqrt(0.04 + 0.01) <= 0.1
    "tracking-error-binding": KnownAnswer(
        lambda: mv.min_variance(
            diagonal([0.2, 0.1]), constraints=[TrackingErrorLimit({"A": 1.0}, 0.1, name="TE")]
        ),
        {"A": 1 - _TE, "B": _TE},
        ("TE",),
    ),
    # s = (0.1, 0.2), rho 0.9: unconstrained (1.571, -0.571); gross 1.4 gives (1.2, -0.2)
    "leverage-binding": KnownAnswer(
        lambda: mv.min_variance(
            pd.DataFrame([[0.01, 0.018], [0.018, 0.04]], index=["A", "B"], columns=["A", "B"]),
            constraints=[Bounds(lower=-1.0), LeverageLimit(1.4, name="gross")],
        ),
        {"A": 1.2, "B": -0.2},
        ("gross",),
    ),
    # w_i = (mu_i - lambda) / (delta s_i^2), sum 1: lambda = 0.024
    "max-utility-interior": KnownAnswer(
        lambda: mv.max_utility(
            pd.Series({"A": 0.08, "B": 0.05}), diagonal([0.2, 0.1]), risk_aversion=4.0
        ),
        {"A": 0.35, "B": 0.65},
    ),
    "max-return-lp": KnownAnswer(
        lambda: mv.max_return(
            pd.Series({"A": 0.10, "B": 0.05, "C": 0.07}),
            diagonal([0.3, 0.1, 0.2]),
            constraints=[Bounds(upper=0.5, name="caps")],
        ),
        {"A": 0.5, "B": 0.0, "C": 0.5},
        ("caps",),
    ),
    # tangency of uncorrelated assets: w ~ mu_i / s_i^2 = (2.5, 5)
    "max-sharpe-uncorrelated": KnownAnswer(
        lambda: mv.max_sharpe(pd.Series({"A": 0.10, "B": 0.05}), diagonal([0.2, 0.1])),
        {"A": 1 / 3, "B": 2 / 3},
    ),
    "max-sharpe-capped": KnownAnswer(
        lambda: mv.max_sharpe(
            pd.Series({"A": 0.10, "B": 0.05}),
            diagonal([0.2, 0.1]),
            constraints=[Bounds(upper={"B": 0.5}, name="B cap")],
        ),
        {"A": 0.5, "B": 0.5},
        ("B cap",),
    ),
}


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_known_answer(name: str) -> None:
    case = CATALOGUE[name]
    alloc = case.solve()
    expected = pd.Series(case.weights)
    np.testing.assert_allclose(alloc.weights[expected.index].to_numpy(), expected, atol=1e-7)
    assert alloc.status.startswith("optimal")
    assert all(c["ok"] for c in alloc.checks.values())
    bound_names = {b["name"] for b in alloc.binding}
    assert set(case.binding) <= bound_names


# ----------------------------------------------------------------------------- allocation


def test_allocation_fields(problem) -> None:
    mu, cov = problem
    cons = [GroupLimit(tag="equity", max=0.1, name="equity cap"), Bounds(upper=0.4, name="caps")]
    alloc = mv.min_variance(cov, mu=mu, constraints=cons, universe=UNI)
    w = alloc.weights.to_numpy()
    c = cov.to_numpy()
    assert list(alloc.weights.index) == ASSETS
    assert alloc.volatility == pytest.approx(math.sqrt(w @ c @ w), rel=1e-12)
    assert alloc.objective == pytest.approx(w @ c @ w, rel=1e-7)
    assert alloc.expected_return == pytest.approx(mu @ w, rel=1e-12)
    assert alloc.risk_contributions.sum() == pytest.approx(alloc.volatility, rel=1e-10)
    np.testing.assert_allclose(alloc.risk_contributions, w * (c @ w) / alloc.volatility)
    assert alloc.sharpe == pytest.approx(alloc.expected_return / alloc.volatility)
    assert set(alloc.checks) == {"budget", "long-only", "equity cap", "caps"}
    assert all(v["ok"] and v["max_violation"] <= 1e-7 for v in alloc.checks.values())
    assert alloc.status == "optimal" and alloc.solver == "CLARABEL"
    assert [a["solver"] for a in alloc.attempts] == ["CLARABEL"]
    assert all(set(a) >= {"solver", "status", "seconds"} for a in alloc.attempts)
    assert set(alloc.timings) == {"compile", "solve", "other"}
    assert all(v >= 0 for v in alloc.timings.values())
    binding = {b["name"]: b for b in alloc.binding if b["name"] != "long-only"}
    assert {"budget", "equity cap"} <= set(binding)
    assert binding["equity cap"]["side"] == "max"
    assert w[:2].sum() == pytest.approx(0.1, abs=1e-7)
    text = json.dumps(alloc.to_dict())
    back = json.loads(text)
    assert back["weights"]["US_EQ"] == pytest.approx(w[0])
    assert back["binding"][0]["name"] in {"budget", "equity cap", "long-only", "caps"}


def test_risk_contributions_zero_volatility() -> None:
    cov = pd.DataFrame(np.zeros((2, 2)), index=["A", "B"], columns=["A", "B"])
    alloc = mv.min_variance(cov, constraints=[Bounds(upper=0.5)])
    assert alloc.volatility == 0.0
    assert (alloc.risk_contributions == 0).all()
    assert alloc.sharpe is None


@pytest.mark.parametrize(
    "model",
    ["min_variance", "max_utility"],
)
def test_shadow_price_matches_finite_difference(problem, model: str) -> None:
    """Relaxing a binding group cap by h improves the objective by ~ shadow_price * h."""
    mu, cov = problem
    h = 1e-4

    if model == "min_variance":
        free = mv.min_variance(cov)
    else:
        free = mv.max_utility(mu, cov, risk_aversion=4.0)
    # cap the most held of the tags at half its free weight: the cap binds
    tag = max(UNI.all_tags, key=lambda t: free.weights[UNI.members(t)].sum())
    cap = float(free.weights[UNI.members(tag)].sum()) * 0.5
    assert cap > 0.05

    def solve(level: float) -> Allocation:
        cons = [GroupLimit(tag=tag, max=level, name="tag cap")]
        if model == "min_variance":
            return mv.min_variance(cov, constraints=cons, universe=UNI)
        return mv.max_utility(mu, cov, risk_aversion=4.0, constraints=cons, universe=UNI)

    tight, loose = solve(cap), solve(cap + h)
    (entry,) = [b for b in tight.binding if b["name"] == "tag cap"]
    assert entry["side"] == "max" and entry["shadow_price"] > 0
    improvement = (tight.objective - loose.objective) / h
    assert improvement == pytest.approx(entry["shadow_price"], rel=2e-2)


def test_shadow_price_of_a_floor(problem) -> None:
    mu, cov = problem
    h = 1e-4
    floor = 0.5

    def solve(level: float) -> Allocation:
        cons = [GroupLimit(tag="private", min=level, name="private floor")]
        return mv.min_variance(cov, constraints=cons, universe=UNI)

    tight, loose = solve(floor), solve(floor - h)
    (entry,) = [b for b in tight.binding if b["name"] == "private floor"]
    assert entry["side"] == "min"
    assert (tight.objective - loose.objective) / h == pytest.approx(entry["shadow_price"], rel=2e-2)


# ----------------------------------------------------------------------------- solver chain


SOLVER_TOL = {"CLARABEL": 1e-7, "OSQP": 1e-6, "SCS": 1e-5}


@pytest.mark.parametrize("solver", list(SOLVER_TOL))
def test_each_solver_gives_the_same_answer(problem, solver: str) -> None:
    mu, cov = problem
    cons = [
        GroupLimit(tag="equity", max=0.25, name="equity cap"),
        Bounds(upper=0.3, name="caps"),
        TurnoverLimit(dict.fromkeys(ASSETS, 1 / 6), 0.3, name="turnover"),
    ]
    ref = mv.max_utility(mu, cov, risk_aversion=5.0, constraints=cons, universe=UNI)
    alloc = mv.max_utility(
        mu, cov, risk_aversion=5.0, constraints=cons, universe=UNI, solvers=(solver,)
    )
    assert alloc.solver == solver
    assert [a["solver"] for a in alloc.attempts] == [solver]
    np.testing.assert_allclose(alloc.weights, ref.weights, atol=SOLVER_TOL[solver])
    assert all(c["ok"] for c in alloc.checks.values())
    # the same constraints bind, at the same shadow prices (one sign convention for all)
    got = {(b["label"], b["side"]): b["shadow_price"] for b in alloc.binding}
    want = {(b["label"], b["side"]): b["shadow_price"] for b in ref.binding}
    assert got.keys() == want.keys()
    assert {"budget", "equity cap", "turnover"} <= {label for label, _ in want}
    for key, price in want.items():
        assert got[key] == pytest.approx(price, rel=1e-3, abs=1e-6), key


@pytest.mark.parametrize("solver", ["CLARABEL", "SCS"])
def test_conic_problem_with_each_conic_solver(problem, solver: str) -> None:
    mu, cov = problem
    cons = [TrackingErrorLimit(dict.fromkeys(ASSETS, 1 / 6), 0.02, name="TE")]
    ref = mv.max_utility(mu, cov, risk_aversion=2.0, constraints=cons)
    alloc = mv.max_utility(mu, cov, risk_aversion=2.0, constraints=cons, solvers=(solver,))
    assert alloc.solver == solver
    np.testing.assert_allclose(alloc.weights, ref.weights, atol=SOLVER_TOL[solver])


def test_solver_names_are_case_insensitive(problem) -> None:
    _, cov = problem
    assert mv.min_variance(cov, solvers=("osqp",)).solver == "OSQP"


def test_unknown_solver(problem) -> None:
    _, cov = problem
    with pytest.raises(InputError, match=r"unknown solver 'GUROBI'; choose from CLARABEL"):
        mv.min_variance(cov, solvers=("CLARABEL", "gurobi"))


def _failing(name: str, status: str = "error"):
    def solve(prog, tol, workspace=None):
        return Outcome(name, status, error=f"{name} forced to fail")

    return solve


def test_every_solver_fails(problem, monkeypatch) -> None:
    _, cov = problem
    for name in ("CLARABEL", "OSQP", "SCS"):
        monkeypatch.setattr(f"optimizer.solvers.{name.lower()}.solve", _failing(name))
    with pytest.raises(SolverError) as info:
        mv.min_variance(cov, constraints=[Bounds(upper=0.5, name="chain test")])
    err = info.value
    assert [a["solver"] for a in err.attempts] == ["CLARABEL", "OSQP", "SCS"]
    assert all(a["status"] == "error" for a in err.attempts)
    assert all("seconds" in a for a in err.attempts)
    for name in ("CLARABEL", "OSQP", "SCS"):
        assert f"{name}: error ({name} forced to fail)" in str(err)


def test_solver_exceptions_never_leak(problem, monkeypatch) -> None:
    _, cov = problem

    def boom(prog, tol, workspace=None):
        raise RuntimeError("segfault-ish")

    monkeypatch.setattr("optimizer.solvers.clarabel.solve", boom)
    monkeypatch.setattr("optimizer.solvers.osqp.solve", _failing("OSQP", "max_iter"))
    alloc = mv.min_variance(cov, constraints=[Bounds(upper=0.45, name="chain test 2")])
    assert alloc.solver == "SCS"
    assert [a["status"] for a in alloc.attempts] == ["error", "max_iter", "optimal"]
    assert alloc.attempts[0]["error"] == "RuntimeError: segfault-ish"


def test_optimal_but_infeasible_answer_is_rejected(problem, monkeypatch) -> None:
    _, cov = problem
    ref = mv.min_variance(cov, constraints=[Bounds(upper=0.35, name="chain test 3")])

    def liar(prog, tol, workspace=None):  # claims optimality with x = 0, which breaks the budget
        return Outcome("CLARABEL", "optimal", np.zeros(prog.A.shape[1]), None, 0.0)

    monkeypatch.setattr("optimizer.solvers.clarabel.solve", liar)
    alloc = mv.min_variance(cov, constraints=[Bounds(upper=0.35, name="chain test 3")])
    assert alloc.solver == "OSQP"
    assert alloc.attempts[0]["status"] == "optimal, rejected by verification"
    assert alloc.attempts[1]["status"] == "optimal"
    np.testing.assert_allclose(alloc.weights, ref.weights, atol=1e-6)
    assert alloc.weights.sum() == pytest.approx(1.0, abs=1e-7)


def test_non_finite_answer_is_an_error(problem, monkeypatch) -> None:
    _, cov = problem

    def nan_solver(prog, tol, workspace=None):
        return Outcome("CLARABEL", "optimal", np.full(prog.A.shape[1], np.nan), None, 0.0)

    monkeypatch.setattr("optimizer.solvers.clarabel.solve", nan_solver)
    alloc = mv.min_variance(cov, constraints=[Bounds(upper=0.55, name="chain test 4")])
    assert alloc.attempts[0]["status"] == "error"
    assert alloc.attempts[0]["error"] == "non-finite solution"
    assert alloc.solver == "OSQP"


def test_all_lying_solvers_give_solver_error(problem, monkeypatch) -> None:
    _, cov = problem
    for name in ("CLARABEL", "OSQP", "SCS"):

        def liar(prog, tol, workspace=None, name=name):
            return Outcome(name, "optimal", np.zeros(prog.A.shape[1]), None, 0.0)

        monkeypatch.setattr(f"optimizer.solvers.{name.lower()}.solve", liar)
    with pytest.raises(SolverError) as info:
        mv.min_variance(cov)
    assert [a["status"] for a in info.value.attempts] == ["optimal, rejected by verification"] * 3


def test_osqp_is_skipped_for_conic_programs(problem, monkeypatch) -> None:
    _, cov = problem
    monkeypatch.setattr("optimizer.solvers.clarabel.solve", _failing("CLARABEL"))
    cons = [TrackingErrorLimit(dict.fromkeys(ASSETS, 1 / 6), 0.05, name="TE")]
    alloc = mv.min_variance(cov, constraints=cons)
    assert [a["solver"] for a in alloc.attempts] == ["CLARABEL", "SCS"]
    assert alloc.solver == "SCS"


def test_clarabel_without_progress_is_a_failure() -> None:
    assert solvers.clarabel.STATUS["InsufficientProgress"] == "error"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unbounded_lp_answer_is_never_accepted(seed: int) -> None:
    """On an unbounded LP Clarabel may stop with InsufficientProgress or even 'Solved' with a
    huge feasible x; neither is an answer: the status or the KKT (stationarity) check rejects it.
    """
    mu, cov = random_problem(6, seed=seed)
    prog = compile_program(
        Objective(mu_weight=1.0),
        pieces_of([Bounds(lower=-math.inf, name="free")], cov),
        RiskModel(cov, cov.index),
        mu.to_numpy(),
    )
    out = solvers.run_solver("CLARABEL", prog)
    assert not out.status.startswith("optimal") or not stationary(prog, out)
    with pytest.raises(InputError, match="unbounded"):
        mv.max_return(mu, cov, constraints=[Bounds(lower=-math.inf, name="free")])


def test_stationarity_check_accepts_true_optima(problem) -> None:
    mu, cov = problem
    cons = pieces_of([Bounds(upper=0.3), GroupLimit(tag="equity", max=0.2)], cov, UNI)
    prog = compile_program(
        Objective(variance=2.0, mu_weight=1.0), cons, RiskModel(cov, cov.index), mu.to_numpy()
    )
    for name in ("CLARABEL", "OSQP", "SCS"):
        out = solvers.run_solver(name, prog)
        assert out.status == "optimal"
        assert stationary(prog, out), name
    bad = Outcome("CLARABEL", "optimal", out.x, out.z * 0.5)
    assert not stationary(prog, bad)


# ----------------------------------------------------------------------------- infeasibility


def _infeasible(cov, constraints, universe=UNI) -> InfeasibleError:
    with pytest.raises(InfeasibleError) as info:
        mv.min_variance(cov, constraints=constraints, universe=universe)
    return info.value


def _relax(err: InfeasibleError) -> dict[str, float]:
    return {d["name"]: d["relax_by"] for d in err.diagnosis}


def test_infeasible_floors_above_budget(problem) -> None:
    _, cov = problem
    err = _infeasible(cov, [Bounds(lower=0.2, name="floors")])
    msg = str(err)
    assert "'floors'" in msg and "'budget'" in msg
    assert "sum to 1.2" in msg and "relax them by 0.2" in msg
    assert _relax(err) == pytest.approx({"floors": 0.2, "budget": 0.2})


def test_infeasible_caps_below_budget(problem) -> None:
    _, cov = problem
    err = _infeasible(cov, [Bounds(upper=0.15, name="caps"), Budget(1.0, name="fully invested")])
    msg = str(err)
    assert "the upper bounds of 'caps' sum to 0.9, below 'fully invested' of 1" in msg
    assert "relax them by 0.1" in msg
    assert _relax(err) == pytest.approx({"caps": 0.1, "fully invested": 0.1})


def test_infeasible_group_floor_above_member_caps(problem) -> None:
    _, cov = problem
    cons = [Bounds(upper=0.25, name="caps"), GroupLimit(tag="equity", min=0.6, name="equity floor")]
    err = _infeasible(cov, cons)
    msg = str(err)
    assert "'equity floor' needs at least 0.6 but at most 0.5 is reachable" in msg
    assert "'caps'" in msg and "relax 'equity floor' by 0.1" in msg
    (entry,) = err.diagnosis
    assert entry["name"] == "equity floor" and entry["relax_by"] == pytest.approx(0.1)
    assert "caps" in entry["conflicts_with"]


def test_infeasible_group_cap_below_member_floors(problem) -> None:
    _, cov = problem
    cons = [
        Bounds(lower={"REITS": 0.1, "PE": 0.15}, name="alts floors"),
        GroupLimit(tag="alternatives", max=0.2, name="alts cap"),
    ]
    err = _infeasible(cov, cons)
    msg = str(err)
    assert "'alts cap' allows at most 0.2 but at least 0.25 is forced by" in msg
    assert "'alts floors'" in msg and "relax 'alts cap' by 0.05" in msg
    assert _relax(err) == pytest.approx({"alts cap": 0.05})
    assert err.constraint_names == ["alts cap"]


def test_infeasible_band_outside_bounds(problem) -> None:
    _, cov = problem
    ref = dict(zip(ASSETS, [0.3, 0.2, 0.3, 0.0, 0.2, 0.0], strict=True))
    cons = [Bounds(upper={"PE": 0.05}, name="PE cap"), DeviationBand(ref, 0.1, name="tactical")]
    err = _infeasible(cov, cons)
    msg = str(err)
    assert "'tactical' and 'PE cap' leave no room for PE" in msg
    assert "needs at least 0.1" in msg and "allows at most 0.05" in msg
    assert _relax(err) == pytest.approx({"tactical": 0.05, "PE cap": 0.05})


def test_infeasible_tag_band_against_group_cap(problem) -> None:
    """Equity needs at least 0.55 (band 0.6 +- 0.05) but liquid assets, equity among them,
    are capped at 0.5: either gives 0.05."""
    _, cov = problem
    ref = {"US_EQ": 0.4, "INTL_EQ": 0.2, "BONDS": 0.4}
    cons = [
        DeviationBand(ref, 0.05, tag="equity", name="equity band"),
        GroupLimit(tag="liquid", max=0.5, name="liquid cap"),
    ]
    err = _infeasible(cov, cons)
    assert "'equity band'" in str(err) and "'liquid cap'" in str(err)
    assert "'liquid cap' by 0.05" in str(err) and "'equity band' by 0.05" in str(err)
    assert _relax(err) == pytest.approx({"liquid cap": 0.05, "equity band": 0.05}, abs=1e-6)


def test_infeasible_exposure_out_of_reach_by_arithmetic(problem) -> None:
    _, cov = problem
    scores = dict(zip(ASSETS, [1.0, 1.2, 0.1, 0.8, 0.9, 0.0], strict=True))
    cons = [Bounds(upper=0.5, name="caps"), ExposureLimit(scores, min=1.15, name="esg floor")]
    err = _infeasible(cov, cons)
    msg = str(err)
    assert "'esg floor' needs at least 1.15 but at most 1.1 is reachable" in msg
    assert _relax(err) == pytest.approx({"esg floor": 0.05})


def test_infeasible_exposure_out_of_reach_by_elastic_program(problem) -> None:
    _, cov = problem
    scores = dict(zip(ASSETS, [1.0, 1.2, 0.1, 0.8, 0.9, 0.0], strict=True))
    err = _infeasible(cov, [ExposureLimit(scores, min=1.25, name="esg floor")])
    assert "'esg floor'" in str(err) and "relax 'esg floor' by 0.05" in str(err)
    assert _relax(err)["esg floor"] == pytest.approx(0.05, abs=1e-6)


def test_floor_above_cap_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"'liquidity': min 0.6 is above max 0.4"):
        GroupLimit(tag="liquid", min=0.6, max=0.4, name="liquidity")


def test_leverage_below_budget(problem) -> None:
    _, cov = problem
    err = _infeasible(cov, [Bounds(lower=-0.5), LeverageLimit(0.8, name="gross")])
    assert "'gross' of 0.8 is below the gross exposure the 'budget' of 1 needs" in str(err)
    assert _relax(err) == pytest.approx({"gross": 0.2})


def test_elastic_diagnosis_liquidity_vs_private(problem) -> None:
    _, cov = problem
    cons = [
        GroupLimit(tag="liquid", min=0.20, name="liquidity floor"),
        GroupLimit(tag="private", min=0.85, name="private-assets minimum"),
    ]
    err = _infeasible(cov, cons)
    msg = str(err)
    assert "'liquidity floor'" in msg and "'private-assets minimum'" in msg
    assert "cannot all hold" in msg and "by 0.05" in msg
    relax = _relax(err)
    assert relax["liquidity floor"] == pytest.approx(0.05, abs=1e-6)
    assert relax["private-assets minimum"] == pytest.approx(0.05, abs=1e-6)
    assert "budget" not in relax and "long-only" not in relax
    for d in err.diagnosis:
        assert {"liquidity floor", "private-assets minimum"} - {d["name"]} <= set(
            d["conflicts_with"]
        )
    assert [a["solver"] for a in err.attempts][0] == "CLARABEL"


def test_elastic_diagnosis_tracking_error_conflict(problem) -> None:
    """A tracking-error limit against a cap on the benchmark's main holding."""
    _, cov = problem
    bench = pd.Series({"PE": 1.0})
    cons = [Bounds(upper={"PE": 0.5}, name="PE cap"), TrackingErrorLimit(bench, 0.02, name="TE")]
    err = _infeasible(cov, cons)
    msg = str(err)
    assert "'TE'" in msg and "'PE cap'" in msg and "cannot all hold" in msg
    # the least TE under the cap, by the core itself: min (w-b)'C(w-b) = w'Cw - 2 b'Cw + b'Cb
    b = bench.reindex(ASSETS, fill_value=0.0).to_numpy()
    cb = pd.Series(cov.to_numpy() @ b, index=ASSETS)
    closest = solve_portfolio(
        Objective(variance=1.0, mu_weight=2.0),
        cov=cov,
        mu=cb,
        constraints=[Bounds(upper={"PE": 0.5}, name="PE cap")],
    )
    least_te = math.sqrt(closest.objective + b @ cov.to_numpy() @ b)
    assert least_te > 0.02
    assert _relax(err)["TE"] == pytest.approx(least_te - 0.02, abs=1e-6)
    assert f"'TE' by {least_te - 0.02:.4g}" in msg


# ----------------------------------------------------------------------------- input errors


def test_mu_missing_and_extra_assets(problem) -> None:
    mu, cov = problem
    names_differ = r"expected returns \(mu\) and cov name different assets: "
    missing = r"missing from expected returns \(mu\): PE"
    unknown = r"in expected returns \(mu\) but not in cov: GOLD"
    with pytest.raises(InputError, match=names_differ + missing + "$"):
        mv.max_utility(mu.drop("PE"), cov, risk_aversion=3)
    with pytest.raises(InputError, match=names_differ + unknown + "$"):
        mv.max_utility(pd.concat([mu, pd.Series({"GOLD": 0.03})]), cov, risk_aversion=3)
    with pytest.raises(InputError, match=names_differ + missing + "; " + unknown + "$"):
        mv.max_utility(mu.rename({"PE": "GOLD"}), cov, risk_aversion=3)


def test_mu_in_another_order_is_aligned(problem) -> None:
    mu, cov = problem
    a = mv.max_utility(mu, cov, risk_aversion=3)
    b = mv.max_utility(mu[::-1], cov, risk_aversion=3)
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-9)


def test_nan_in_mu(problem) -> None:
    mu, cov = problem
    bad = mu.copy()
    bad["BONDS"] = np.nan
    with pytest.raises(InputError, match=r"\(mu\) has NaN or inf values for assets: BONDS$"):
        mv.max_utility(bad, cov, risk_aversion=2.0)


def test_mu_not_a_series(problem) -> None:
    mu, cov = problem
    with pytest.raises(InputError, match=r"\(mu\) must be a pandas Series"):
        mv.min_variance(cov, mu=mu.to_numpy())


def test_nan_in_cov(problem) -> None:
    _, cov = problem
    bad = cov.copy()
    bad.loc["REITS", "REITS"] = np.nan
    with pytest.raises(InputError, match=r"cov has NaN or inf values for assets: REITS \("):
        mv.min_variance(bad)


def test_non_symmetric_cov(problem) -> None:
    _, cov = problem
    bad = cov.copy()
    bad.loc["US_EQ", "BONDS"] += 0.01
    with pytest.raises(InputError, match=r"not symmetric: entry \((US_EQ, BONDS|BONDS, US_EQ)\)"):
        mv.min_variance(bad)


def test_non_psd_cov_suggests_nearest_psd() -> None:
    c = np.array([[0.04, 0.05, 0.0], [0.05, 0.04, 0.0], [0.0, 0.0, 0.01]])
    cov = pd.DataFrame(c, index=list("ABC"), columns=list("ABC"))
    with pytest.raises(InputError, match=r"not positive semidefinite.*nearest_psd"):
        mv.min_variance(cov)


@pytest.mark.parametrize(
    "make, words",
    [
        (
            lambda c: c.to_numpy(),
            "cov must be a pandas DataFrame labelled by asset on both axes or a FactorCovariance",
        ),
        (
            lambda c: c.rename(columns={"PE": "P_E"}),
            "cov rows and columns name different assets: only in rows: PE; only in columns: P_E",
        ),
    ],
)
def test_cov_shape_and_labels(problem, make, words: str) -> None:
    _, cov = problem
    with pytest.raises(InputError, match=words):
        mv.min_variance(make(cov))


def test_cov_columns_in_another_order_are_matched_by_name(problem) -> None:
    # labels are matched by name whatever their order (issue 9: one validation rule)
    _, cov = problem
    a = mv.min_variance(cov)
    b = mv.min_variance(cov.loc[:, cov.columns[::-1]])
    assert list(b.weights.index) == ASSETS
    np.testing.assert_allclose(b.weights, a.weights, atol=1e-12)


def test_universe_assets_not_in_cov(problem) -> None:
    _, cov = problem
    uni = Universe([*ASSETS, "GOLD"], tags={"GOLD": ["alternatives"]})
    with pytest.raises(InputError, match=r"no row for universe assets: GOLD"):
        mv.min_variance(cov, universe=uni)


def test_cov_assets_not_in_universe(problem) -> None:
    _, cov = problem
    uni = Universe(ASSETS[:-1])
    with pytest.raises(InputError, match=r"the covariance names unknown assets: CASH"):
        mv.min_variance(cov, universe=uni)


def test_universe_of_wrong_type(problem) -> None:
    _, cov = problem
    with pytest.raises(InputError, match=r"universe= must be an optimizer.Universe"):
        mv.min_variance(cov, universe={"US_EQ": ["equity"]})


def test_unbounded_max_return(problem) -> None:
    mu, cov = problem
    with pytest.raises(InputError, match=r"unbounded"):
        mv.max_return(mu, cov, constraints=[Bounds(lower=-math.inf, name="free")])


def test_unbounded_linear_objective_in_the_core(problem) -> None:
    mu, cov = problem
    with pytest.raises(InputError, match=r"the problem is unbounded"):
        solve_portfolio(
            Objective(mu_weight=1.0), cov=cov, mu=mu, constraints=[Bounds(lower=-math.inf)]
        )


def test_unbounded_max_utility_on_singular_cov(problem) -> None:
    mu, _ = problem
    rng = np.random.default_rng(9)
    b = rng.normal(size=(6, 2))
    singular = pd.DataFrame(b @ b.T * 0.04, index=ASSETS, columns=ASSETS)
    with pytest.raises(InputError, match=r"unbounded"):
        mv.max_utility(mu, singular, risk_aversion=3, constraints=[Bounds(lower=-math.inf)])


def test_bounded_max_utility_on_singular_cov(problem) -> None:
    mu, _ = problem
    rng = np.random.default_rng(9)
    b = rng.normal(size=(6, 2))
    singular = pd.DataFrame(b @ b.T * 0.04, index=ASSETS, columns=ASSETS)
    alloc = mv.max_utility(mu, singular, risk_aversion=3)
    assert all(c["ok"] for c in alloc.checks.values())


# ----------------------------------------------------------------------------- compile cache


def test_new_mu_reuses_the_compiled_program(problem, monkeypatch) -> None:
    mu, cov = problem
    monkeypatch.setattr(compiled, "SHARED", ContentCache())
    calls = []
    original = compiled.compile_program

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(compiled, "compile_program", counting)
    cons = [Budget(1.0), Bounds(lower=-100)]
    delta = 4.0
    results = []
    for scale in (1.0, 1.7, -0.3):
        new_mu = mu * scale + 0.01
        alloc = mv.max_utility(new_mu, cov, risk_aversion=delta, constraints=cons)
        assert len(compiled.SHARED) == 1
        (cm,) = compiled.SHARED._items.values()
        assert len(cm._programs) == 1
        results.append((new_mu, alloc))
    assert len(calls) == 1
    c, ones = cov.to_numpy(), np.ones(len(mu))
    for new_mu, alloc in results:
        # budget-constrained closed form: w = C^-1 (mu - lambda 1) / delta, 1'w = 1
        ci_mu, ci_1 = np.linalg.solve(c, new_mu.to_numpy()), np.linalg.solve(c, ones)
        lam = (ci_mu.sum() - delta) / ci_1.sum()
        np.testing.assert_allclose(alloc.weights, (ci_mu - lam * ci_1) / delta, atol=1e-7)


def test_new_constraint_values_compile_a_new_program(problem, monkeypatch) -> None:
    _, cov = problem
    monkeypatch.setattr(compiled, "SHARED", ContentCache())
    mv.min_variance(cov, constraints=[Bounds(upper=0.3)])
    mv.min_variance(cov, constraints=[Bounds(upper=0.3)])  # same values, new objects
    assert len(compiled.SHARED) == 1
    (cm,) = compiled.SHARED._items.values()
    assert len(cm._programs) == 1
    mv.min_variance(cov, constraints=[Bounds(upper=0.25)])
    assert len(compiled.SHARED) == 2


def test_compiled_problem_is_reused_by_content(problem, monkeypatch) -> None:
    _, cov = problem
    monkeypatch.setattr(compiled, "SHARED", ContentCache())

    def get(c):
        return shared(mv._solve_min_variance, "min_variance", c)

    assert get(cov) is get(cov)
    assert get(cov.copy()) is get(cov)  # the same content, another object
    edited = cov.copy()
    edited.loc["CASH", "CASH"] *= 2.0
    assert get(edited) is not get(cov)
