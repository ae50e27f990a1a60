"""Tests of models.mean_risk: each measure against a direct cvxpy solve, the peers' numbers, errors."""

from __future__ import annotations

import math
import warnings

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_data import load

from models.cvar import min_cvar
from models.mean_risk import RISK_MEASURES, efficient_risk, min_risk, portfolio_risk
from optimizer.compiled import Compiled
from optimizer.constraints import Bounds, GroupLimit
from optimizer.errors import InfeasibleError, InputError
from optimizer.objective import Objective
from optimizer.program import Builder
from optimizer.terms import RiskMeasureLimit, SemiDeviationTerm, WorstRealizationTerm
from optimizer.universe import Universe
from optimizer.verify import FEAS_TOL

ASSETS = ["US_EQ", "INTL_EQ", "EM_EQ", "BONDS", "TIPS", "GOLD"]
MEASURES = ["semi_deviation", "mad", "cdar", "worst_realization", "cvar"]


def make_returns(t: int = 250, n: int = 6, seed: int = 0, index=None) -> pd.DataFrame:
    """Fat-tailed returns (decimals), correlated, with drifts that differ by asset."""
    rng = np.random.default_rng(seed)
    vol = np.linspace(0.01, 0.05, n)
    corr = 0.3 + 0.7 * np.eye(n)
    chol = np.linalg.cholesky(corr * np.outer(vol, vol))
    z = rng.standard_t(4, size=(t, n)) / np.sqrt(2.0)
    r = np.linspace(0.0005, 0.004, n) + z @ chol.T
    labels = ASSETS if n == len(ASSETS) else [f"A{i}" for i in range(n)]
    return pd.DataFrame(r, columns=labels, index=index)


# ----------------------------------------------------------------------------- references
# Written from the definitions, independently of optimizer.terms.


def measure(x: np.ndarray, risk: str, alpha: float = 0.95, threshold=None) -> float:
    """The risk of portfolio returns ``x`` (T,), unscaled (periodic units)."""
    if risk == "semi_deviation":
        b = x.mean() if threshold is None else threshold
        return float(np.sqrt(np.mean(np.minimum(x - b, 0.0) ** 2)))
    if risk == "mad":
        return float(np.mean(np.abs(x - x.mean())))
    if risk == "worst_realization":
        return float(-x.min())
    if risk == "cdar":
        wealth = np.concatenate([[0.0], np.cumsum(x)])
        losses = (np.maximum.accumulate(wealth) - wealth)[1:]
    else:
        losses = -x
    k = (1 - alpha) * len(losses)  # whole in every test that calls this
    return float(np.sort(losses)[::-1][: round(k)].mean())


def cvx_risk(r: np.ndarray, w, risk: str, alpha: float, threshold=None):
    """The measure as a cvxpy expression of ``w`` (and the constraints it needs)."""
    t = r.shape[0]
    x = r @ w
    if risk == "semi_deviation":
        b = r.mean(axis=0) @ w if threshold is None else threshold
        return cp.norm(cp.pos(b - x), 2) / math.sqrt(t), []
    if risk == "mad":
        return cp.sum(cp.abs(x - r.mean(axis=0) @ w)) / t, []
    if risk == "worst_realization":
        return cp.max(-x), []
    z = cp.Variable()
    if risk == "cvar":
        return z + cp.sum(cp.pos(-x - z)) / ((1 - alpha) * t), []
    u = cp.Variable(t)
    c = cp.cumsum(x)
    cons = [u >= c, u[1:] >= u[:-1], u[0] >= 0]
    return z + cp.sum(cp.pos(u - c - z)) / ((1 - alpha) * t), cons


def cvx_solve(r, risk, *, alpha=0.95, threshold=None, lower=0.0, upper=None, rows=(), cap=None):
    """Least risk under a budget, bounds and rows ``(a, lo)`` (``a'w >= lo``), or (with
    ``cap``) the highest mean return with the risk at most ``cap``."""
    w = cp.Variable(r.shape[1])
    expr, cons = cvx_risk(r, w, risk, alpha, threshold)
    cons += [cp.sum(w) == 1, w >= lower]
    if upper is not None:
        cons.append(w <= upper)
    cons += [np.asarray(a) @ w >= lo for a, lo in rows]
    if cap is None:
        prob = cp.Problem(cp.Minimize(expr), cons)
    else:
        prob = cp.Problem(cp.Maximize(r.mean(axis=0) @ w), [*cons, expr <= cap])
    prob.solve(solver="CLARABEL")
    assert prob.status == "optimal", prob.status
    return w.value, prob.value


# ----------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("risk", MEASURES)
def test_min_risk_matches_a_direct_cvxpy_solve(risk: str) -> None:
    rets = make_returns()
    alloc = min_risk(rets, risk=risk)
    w_ref, f_ref = cvx_solve(rets.to_numpy(), risk)
    assert alloc.status.startswith("optimal")
    assert all(c["ok"] for c in alloc.checks.values())
    assert alloc.objective == pytest.approx(f_ref, rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(alloc.weights.to_numpy(), w_ref, atol=1e-5)


@pytest.mark.parametrize("risk", MEASURES)
def test_objective_is_the_measure_recomputed_from_the_weights(risk: str) -> None:
    rets = make_returns(t=200, seed=1)
    alloc = min_risk(rets, risk=risk, constraints=[Bounds(upper=0.4)])
    x = rets.to_numpy() @ alloc.weights.to_numpy()
    assert alloc.objective == pytest.approx(measure(x, risk), rel=1e-12, abs=1e-15)
    assert portfolio_risk(alloc.weights, rets, risk=risk) == alloc.objective


@pytest.mark.parametrize("risk", MEASURES)
def test_target_return_binds_and_matches_cvxpy(risk: str) -> None:
    rets = make_returns(seed=2)
    r = rets.to_numpy()
    free = min_risk(rets, risk=risk)
    target = free.expected_return + 0.5 * (r.mean(axis=0).max() - free.expected_return)
    alloc = min_risk(rets, risk=risk, target_return=target)
    assert alloc.expected_return == pytest.approx(target, abs=1e-8)
    assert alloc.checks["target return"]["ok"]
    assert "target return" in [b["name"] for b in alloc.binding]
    assert alloc.objective > free.objective
    _, f_ref = cvx_solve(r, risk, rows=[(r.mean(axis=0), target)])
    assert alloc.objective == pytest.approx(f_ref, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("risk", MEASURES)
def test_efficient_risk_matches_cvxpy_and_closes_the_frontier(risk: str) -> None:
    rets = make_returns(seed=3)
    r = rets.to_numpy()
    low = min_risk(rets, risk=risk)
    target = low.objective * 1.2 if low.objective > 0 else low.objective + 0.01
    best = efficient_risk(rets, risk=risk, target_risk=target)
    assert best.objective == pytest.approx(target, rel=1e-6)  # the limit binds
    assert best.checks["target risk"]["ok"]
    assert "target risk" in [b["name"] for b in best.binding]
    assert best.expected_return > low.expected_return
    _, ret_ref = cvx_solve(r, risk, cap=target)
    assert best.expected_return == pytest.approx(ret_ref, rel=1e-6)
    # least risk at that return is the target risk again: one frontier, two directions
    back = min_risk(rets, risk=risk, target_return=best.expected_return - 1e-9)
    assert back.objective == pytest.approx(target, rel=1e-5)


def test_semi_deviation_below_a_fixed_threshold() -> None:
    rets = make_returns(seed=4)
    alloc = min_risk(rets, risk="semi_deviation", threshold=0.0)
    w_ref, f_ref = cvx_solve(rets.to_numpy(), "semi_deviation", threshold=0.0)
    assert alloc.objective == pytest.approx(f_ref, rel=1e-6)
    x = rets.to_numpy() @ alloc.weights.to_numpy()
    assert alloc.objective == pytest.approx(measure(x, "semi_deviation", threshold=0.0), rel=1e-12)


def test_units_daily_dates_annualize_dispersions_only() -> None:
    idx = pd.bdate_range("2020-01-01", periods=250)
    dated = make_returns(index=idx, seed=5)
    plain = make_returns(seed=5)
    for risk, factor in [("semi_deviation", math.sqrt(252)), ("mad", math.sqrt(252))]:
        assert min_risk(dated, risk=risk).objective == pytest.approx(
            min_risk(plain, risk=risk).objective * factor, rel=1e-6
        )
        weekly = min_risk(plain, risk=risk, periods_per_year=52).objective
        assert weekly == pytest.approx(min_risk(plain, risk=risk).objective * math.sqrt(52), 1e-6)
    for risk in ("cdar", "worst_realization", "cvar"):
        assert min_risk(dated, risk=risk).objective == pytest.approx(
            min_risk(plain, risk=risk).objective, rel=1e-6
        )
    alloc = min_risk(dated, risk="mad")
    w = alloc.weights.to_numpy()
    assert alloc.expected_return == pytest.approx(dated.to_numpy().mean(axis=0) @ w * 252)
    vol = math.sqrt(w @ np.cov(dated.to_numpy(), rowvar=False) @ w * 252)
    assert alloc.volatility == pytest.approx(vol, rel=1e-10)


def test_cdar_counts_the_start_as_a_peak_and_notes_a_tiny_tail() -> None:
    # one asset losing from the first day: every drawdown is measured from 0
    rets = pd.DataFrame({"A": [-0.02, -0.01, 0.015, -0.03, 0.01]})
    dd = np.array([0.02, 0.03, 0.015, 0.045, 0.035])
    assert portfolio_risk(pd.Series({"A": 1.0}), rets, risk="cdar", alpha=0.6) == pytest.approx(
        (0.045 + 0.035) / 2
    )
    alloc = min_risk(rets, risk="cdar", alpha=0.9)
    assert alloc.objective == pytest.approx(dd.max())
    assert any("less than one" in note and "maximum drawdown" in note for note in alloc.notes)


def test_group_limits_with_universe_tags() -> None:
    rets = make_returns(seed=6)
    uni = Universe(assets=ASSETS, tags={a: ["equity"] for a in ASSETS[:3]})
    cons = [GroupLimit(tag="equity", min=0.5, name="equity floor"), Bounds(upper=0.35)]
    alloc = min_risk(rets, risk="mad", constraints=cons, universe=uni)
    assert alloc.weights[ASSETS[:3]].sum() >= 0.5 - 1e-8
    assert alloc.checks["equity floor"]["ok"]
    eq = np.array([1, 1, 1, 0, 0, 0], dtype=float)
    _, f_ref = cvx_solve(rets.to_numpy(), "mad", upper=0.35, rows=[(eq, 0.5)])
    assert alloc.objective == pytest.approx(f_ref, rel=1e-6)


def test_min_cvar_is_min_risk_with_cvar() -> None:
    rets = make_returns(seed=7)
    a, b = min_cvar(rets, 0.9), min_risk(rets, risk="cvar", alpha=0.9)
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-12)
    assert a.objective == b.objective


def test_risk_limit_piece_is_relaxed_by_the_elastic_diagnosis() -> None:
    rets = make_returns(seed=8)
    floor = min_risk(rets, risk="worst_realization").objective
    term = WorstRealizationTerm(rets.to_numpy())
    limit = RiskMeasureLimit("loss cap", "loss cap", term=term, max=floor - 0.001)
    with pytest.raises(InfeasibleError) as info:
        Compiled(rets.cov()).run(Objective(mu_weight=1.0), mu=rets.mean().to_numpy(), extra=[limit])
    assert info.value.constraint_names[0] == "loss cap"
    assert info.value.diagnosis[0]["relax_by"] == pytest.approx(0.001, rel=1e-4)


@pytest.mark.parametrize("risk", ["semi_deviation", "mad"])
def test_a_riskless_portfolio_in_sample_warns(risk: str) -> None:
    short = make_returns(t=8, n=12, seed=11)  # fewer rows than assets
    with pytest.warns(UserWarning, match=r"riskless portfolio in sample: .* 12 assets over 8 "):
        alloc = min_risk(short, risk=risk, constraints=[Bounds(lower=-1.0, upper=1.0)])
    assert alloc.objective == pytest.approx(0.0, abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        min_risk(make_returns(), risk=risk)  # a long sample: no warning


def test_terms_refuse_a_ratio_objective() -> None:
    with pytest.raises(InputError, match="semi-deviation objective cannot be combined"):
        SemiDeviationTerm(make_returns().to_numpy()).apply(Builder(6, homogenize=True), 6)


# ----------------------------------------------------------------------------- the peers' numbers


def peer_data(name: str) -> pd.DataFrame:
    return load(f"peer_suite/{name}")


@pytest.fixture(scope="module")
def pypfopt_case() -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """PyPortfolioOpt's test set-up: rows with every price, daily returns, two mean estimates."""
    prices = peer_data("stock_prices.csv.gz").dropna(how="any")
    rets = prices.pct_change().dropna(how="all")
    cagr = (1 + rets).prod() ** (252 / rets.count()) - 1  # mean_historical_return
    return rets, cagr, rets.mean() * 252  # and with compounding=False


def test_pypfopt_cdar_numbers(pypfopt_case) -> None:
    # PyPortfolioOpt tests/test_efficient_cdar.py (beta=0.95): min_cdar (0.14798, 0.056433),
    # efficient_risk(0.08) -> return 0.261922, efficient_return(0.25) -> CDaR 0.076193
    rets, cagr, _ = pypfopt_case
    low = min_risk(rets, risk="cdar", mu=cagr)
    assert (low.expected_return, low.objective) == pytest.approx((0.14798, 0.056433), abs=1e-5)
    best = efficient_risk(rets, risk="cdar", target_risk=0.08, mu=cagr)
    assert best.expected_return == pytest.approx(0.261922, abs=1e-5)
    assert min_risk(rets, risk="cdar", mu=cagr, target_return=0.25).objective == pytest.approx(
        0.076193, abs=1e-5
    )


def test_pypfopt_semi_deviation_numbers(pypfopt_case) -> None:
    # PyPortfolioOpt tests/test_efficient_semivariance.py (benchmark 0, frequency 252): the
    # ECOS min_semivariance (0.10258693150198975, 0.08495982152369484); efficient_risk(0.2)
    # return 0.4567521774612227; efficient_return(0.25) semi-deviation 0.10035962239578998
    # (their tolerance 1e-4; ours is the lower minimum)
    rets, _, mean = pypfopt_case
    kw = {"risk": "semi_deviation", "threshold": 0.0, "mu": mean}
    low = min_risk(rets, **kw)
    assert low.expected_return == pytest.approx(0.10258693150198975, abs=2e-6)
    assert low.objective == pytest.approx(0.08495982152369484, abs=2e-9)
    assert efficient_risk(rets, target_risk=0.2, **kw).expected_return == pytest.approx(
        0.4567521774612227, abs=2e-6
    )
    back = min_risk(rets, target_return=0.25, **kw).objective
    assert back == pytest.approx(0.10035962239578998, abs=1e-4) and back <= 0.10035962239578998


def test_skfolio_numbers_on_sp500_2014() -> None:
    # skfolio 1.12.2 MeanRisk(objective_function=MINIMIZE_RISK, risk_measure=...) on
    # prices_to_returns(sp500 2014-2022), run side by side with Clarabel at 1e-10 tolerances
    # (not from skfolio's test suite, which checks consistency rather than numbers).
    rets = peer_data("sp500_2014.csv.gz").pct_change().dropna()
    t = len(rets)
    kw = {"periods_per_year": 1}
    assert min_risk(rets, risk="mad", **kw).objective == pytest.approx(0.0059557478983, 1e-8)
    semi = min_risk(rets, risk="semi_deviation", **kw).objective  # skfolio divides by T - 1
    assert semi * math.sqrt(t / (t - 1)) == pytest.approx(0.0065460034556, rel=1e-8)
    worst = min_risk(rets, risk="worst_realization", **kw)
    assert worst.objective == pytest.approx(0.0560740474642, rel=1e-8)
    expected = {"LLY": 0.522216, "PG": 0.186272, "RRC": 0.255854, "WMT": 0.035658}
    np.testing.assert_allclose(worst.weights[list(expected)], list(expected.values()), atol=2e-6)
    cdar = min_risk(rets, risk="cdar", **kw)
    assert cdar.objective == pytest.approx(0.0948417788148, rel=1e-8)
    expected = {"LLY": 0.267198, "MRK": 0.183307, "MSFT": 0.199113, "PEP": 0.20314}
    np.testing.assert_allclose(cdar.weights[list(expected)], list(expected.values()), atol=2e-6)


# ----------------------------------------------------------------------------- properties


@st.composite
def problems(draw):
    n = draw(st.integers(2, 5))
    t = draw(st.sampled_from([20, 40, 60]))
    rets = make_returns(t=t, n=n, seed=draw(st.integers(0, 2**31 - 1)))
    risk = draw(st.sampled_from(MEASURES))
    upper = draw(st.floats(1.0 / n + 0.05, 1.0))
    pair_cap = draw(st.floats(0.3, 1.0))
    return rets, risk, upper, pair_cap


@settings(max_examples=30, deadline=None)
@given(problems(), st.booleans())
def test_property_constraints_hold_and_risk_is_recomputed(problem, efficient: bool) -> None:
    rets, risk, upper, pair_cap = problem
    r = rets.to_numpy()
    cons = [
        Bounds(upper=upper, name="box"),
        GroupLimit(assets=list(rets.columns[:2]), max=pair_cap),
    ]
    n = r.shape[1]
    room = min(pair_cap, 2 * upper) + (n - 2) * upper  # the most the caps let add up
    if room < 1 - 1e-6:
        with pytest.raises(InfeasibleError):
            min_risk(rets, risk=risk, constraints=cons)
    if room < 1 + 1e-6:
        return
    low = min_risk(rets, risk=risk, constraints=cons)
    alloc = low
    if efficient:
        alloc = efficient_risk(rets, risk=risk, target_risk=low.objective + 0.002, constraints=cons)
        assert alloc.objective <= low.objective + 0.002 + 1e-7
        assert alloc.expected_return >= low.expected_return - 1e-9
    w = alloc.weights.to_numpy()
    assert all(c["ok"] for c in alloc.checks.values())
    assert w.sum() == pytest.approx(1.0, abs=1e-8)
    # the engine's promise: every constraint within its verification tolerance (FEAS_TOL)
    tol = FEAS_TOL
    assert (w >= -tol).all() and (w <= upper + tol).all() and w[:2].sum() <= pair_cap + tol
    assert alloc.objective == pytest.approx(measure(r @ w, risk), rel=1e-11, abs=1e-14)
    # the least risk is no more than any feasible point's (equal weights within the caps)
    if 1.0 / n <= upper and 2.0 / n <= pair_cap:
        assert low.objective <= measure(r.mean(axis=1), risk) + 1e-7


# ----------------------------------------------------------------------------- errors


def test_unknown_risk_names_the_choices() -> None:
    with pytest.raises(InputError, match="unknown risk measure 'variance'; choose from") as info:
        min_risk(make_returns(), risk="variance")
    assert all(repr(m) in str(info.value) for m in RISK_MEASURES)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.5, float("nan")])
def test_alpha_out_of_range(alpha: float) -> None:
    with pytest.raises(InputError, match=r"alpha must be in \(0, 1\)"):
        min_risk(make_returns(), risk="cdar", alpha=alpha)


def test_alpha_not_a_number() -> None:
    with pytest.raises(InputError, match=r"alpha must be a number in \(0, 1\), got 'high'"):
        efficient_risk(make_returns(), risk="cdar", alpha="high", target_risk=0.1)


def test_threshold_only_for_semi_deviation() -> None:
    with pytest.raises(InputError, match="threshold applies only to risk='semi_deviation'"):
        min_risk(make_returns(), risk="mad", threshold=0.0)
    with pytest.raises(InputError, match="threshold must be a number"):
        min_risk(make_returns(), risk="semi_deviation", threshold="0%")


def test_nan_names_the_assets_and_the_first_row() -> None:
    rets = make_returns(index=pd.bdate_range("2021-01-04", periods=250))
    rets.iloc[3, 1] = np.nan
    rets.iloc[7, 4] = np.inf
    with pytest.raises(
        InputError, match=r"NaN or inf values for assets: INTL_EQ, TIPS \(first in row 2021-01-07\)"
    ) as info:
        min_risk(rets, risk="mad")
    assert "drop or fill those rows" in str(info.value)


def test_misaligned_labels_are_named() -> None:
    rets = make_returns()
    mu = pd.Series(0.05, index=[*ASSETS[:-1], "BTC"])
    with pytest.raises(InputError, match="missing from mu: GOLD; in mu but not in returns: BTC"):
        min_risk(rets, mu=mu, target_return=0.05)
    weights = pd.Series(1 / 5, index=ASSETS[:-1])
    with pytest.raises(InputError, match="missing from weights: GOLD"):
        portfolio_risk(weights, rets, risk="mad")


def test_bad_tables() -> None:
    with pytest.raises(InputError, match="returns must be a pandas DataFrame"):
        min_risk(make_returns().to_numpy())
    with pytest.raises(InputError, match="at least 2 are needed"):
        min_risk(make_returns().iloc[:1])
    with pytest.raises(InputError, match="target_risk must be finite"):
        efficient_risk(make_returns(), target_risk=float("nan"))


@pytest.mark.parametrize("risk", MEASURES)
def test_target_return_out_of_reach(risk: str) -> None:
    rets = make_returns(seed=9)
    cap = Bounds(upper=0.4, name="single-asset cap")
    with pytest.raises(InfeasibleError) as info:
        min_risk(rets, risk=risk, target_return=0.5, constraints=[cap])
    msg = str(info.value)
    top = rets.mean().sort_values()[::-1]
    best = 0.4 * top.iloc[0] + 0.4 * top.iloc[1] + 0.2 * top.iloc[2]
    low = min_risk(rets, risk=risk, constraints=[cap]).expected_return
    # the words of mean_variance.efficient_return (and of the CLI's exit-3 line)
    assert msg.startswith(f"target_return 0.5 is outside the achievable range: at most {best:.6g}")
    assert "efficient range of target_return for the " in msg
    assert f": {low:.6g} (least risk) to {best:.6g} (highest return)" in msg
    assert (
        "binding at the highest-return portfolio: 'budget', 'long-only', 'single-asset cap'" in msg
    )
    assert f"lower target_return to at most {best:.6g} (constraint 'target return')" in msg
    first = info.value.diagnosis[0]
    assert (first["name"], first["key"], first["side"]) == ("target return", "target_return", "min")
    assert first["relax_by"] == pytest.approx(0.5 - best, abs=1e-8)
    assert first["reachable"] == pytest.approx([low, best], abs=1e-8)
    assert info.value.constraint_names[1:] == ["budget", "long-only", "single-asset cap"]


@pytest.mark.parametrize("risk", MEASURES)
def test_target_risk_out_of_reach(risk: str) -> None:
    rets = make_returns(seed=10)
    floor = min_risk(rets, risk=risk).objective
    with pytest.raises(InfeasibleError) as info:
        efficient_risk(rets, risk=risk, target_risk=floor - 0.01)
    msg = str(info.value)
    assert msg.startswith(
        f"target_risk {floor - 0.01:.6g} is outside the achievable range: at least {floor:.6g}"
    )
    assert "binding at the portfolio of least " in msg
    assert f"raise target_risk to at least {floor:.6g} (constraint 'target risk')" in msg
    first = info.value.diagnosis[0]
    assert (first["name"], first["key"], first["side"]) == ("target risk", "target_risk", "max")
    assert first["relax_by"] == pytest.approx(0.01, rel=1e-6)


def test_conflicting_constraints_keep_their_own_diagnosis() -> None:
    with pytest.raises(InfeasibleError, match="floor") as info:
        min_risk(
            make_returns(),
            risk="mad",
            target_return=0.0,
            constraints=[Bounds(lower=0.2, name="floor")],
        )
    assert "target return" not in info.value.constraint_names
