"""Tests of models.cvar: the Rockafellar-Uryasev LP against an independent solve, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from models.cvar import min_cvar
from optimizer.constraints import Bounds, GroupLimit
from optimizer.errors import InfeasibleError, InputError
from optimizer.universe import Universe

ASSETS = ["US_EQ", "INTL_EQ", "EM_EQ", "BONDS", "TIPS", "GOLD"]


def make_scenarios(s: int = 200, n: int = 6, seed: int = 0, index=None) -> pd.DataFrame:
    """Fat-tailed monthly-like scenario returns (decimals)."""
    rng = np.random.default_rng(seed)
    vol = np.linspace(0.01, 0.06, n)
    corr = 0.3 + 0.7 * np.eye(n)
    chol = np.linalg.cholesky(corr * np.outer(vol, vol))
    z = rng.standard_t(4, size=(s, n)) / np.sqrt(2.0)
    r = np.linspace(0.002, 0.01, n) + z @ chol.T
    labels = ASSETS if n == len(ASSETS) else [f"A{i}" for i in range(n)]
    return pd.DataFrame(r, columns=labels, index=index)


def ru_linprog(r: np.ndarray, alpha: float, *, lower=0.0, upper=None, rows=(), total=1.0):
    """The Rockafellar-Uryasev LP, written independently for scipy's HiGHS.

    Variables (w, z, u); minimize z + sum(u) / ((1-alpha) S) subject to
    u_s >= -r_s'w - z, u >= 0, sum(w) = total, extra rows ``(a, lo)`` as a'w >= lo.
    """
    s, n = r.shape
    c = np.concatenate([np.zeros(n), [1.0], np.full(s, 1.0 / ((1.0 - alpha) * s))])
    a_ub = np.hstack([-r, -np.ones((s, 1)), -np.eye(s)])
    b_ub = np.zeros(s)
    for a, lo in rows:
        a_ub = np.vstack([a_ub, np.concatenate([-np.asarray(a), [0.0], np.zeros(s)])])
        b_ub = np.append(b_ub, -lo)
    a_eq = np.concatenate([np.ones(n), [0.0], np.zeros(s)])[None, :]
    bounds = [(lower, upper)] * n + [(None, None)] + [(0.0, None)] * s
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[total], bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return res.x[:n], res.fun


def tail_mean(losses: np.ndarray, k: int) -> float:
    """Mean of the k largest losses (a whole tail)."""
    return float(np.sort(losses)[-k:].mean())


# ----------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("alpha", [0.9, 0.95, 0.975])
def test_matches_independent_lp(alpha: float) -> None:
    scen = make_scenarios()
    alloc = min_cvar(scen, alpha)
    w_ref, f_ref = ru_linprog(scen.to_numpy(), alpha)
    np.testing.assert_allclose(alloc.weights.to_numpy(), w_ref, atol=1e-6)
    assert alloc.objective == pytest.approx(f_ref, abs=1e-8)
    assert alloc.status.startswith("optimal")
    assert all(c["ok"] for c in alloc.checks.values())


def test_matches_independent_lp_with_bounds() -> None:
    scen = make_scenarios(seed=3)
    alloc = min_cvar(scen, 0.95, constraints=[Bounds(lower=0.05, upper=0.3)])
    w_ref, f_ref = ru_linprog(scen.to_numpy(), 0.95, lower=0.05, upper=0.3)
    np.testing.assert_allclose(alloc.weights.to_numpy(), w_ref, atol=1e-6)
    assert alloc.objective == pytest.approx(f_ref, abs=1e-8)


def test_objective_is_the_sorted_tail_mean() -> None:
    scen = make_scenarios(s=200)
    alloc = min_cvar(scen, 0.95)
    losses = -(scen.to_numpy() @ alloc.weights.to_numpy())
    assert alloc.objective == pytest.approx(tail_mean(losses, 10), abs=1e-13)
    assert alloc.objective > 0


def test_fractional_tail_counts_the_boundary_scenario_in_part() -> None:
    # (1 - 0.95) * 150 = 7.5 scenarios in the tail
    scen = make_scenarios(s=150, seed=4)
    alloc = min_cvar(scen, 0.95)
    losses = np.sort(-(scen.to_numpy() @ alloc.weights.to_numpy()))[::-1]
    expected = (losses[:7].sum() + 0.5 * losses[7]) / 7.5
    assert alloc.objective == pytest.approx(expected, abs=1e-13)
    _, f_ref = ru_linprog(scen.to_numpy(), 0.95)
    assert alloc.objective == pytest.approx(f_ref, abs=1e-8)


def test_tiny_tail_is_the_worst_case_with_a_note() -> None:
    scen = make_scenarios(s=50, seed=5)
    alloc = min_cvar(scen, 0.99)
    losses = -(scen.to_numpy() @ alloc.weights.to_numpy())
    assert alloc.objective == pytest.approx(losses.max(), abs=1e-13)
    assert any("less than one" in n for n in alloc.notes)
    _, f_ref = ru_linprog(scen.to_numpy(), 0.99)
    assert alloc.objective == pytest.approx(f_ref, abs=1e-8)


def test_alpha_next_to_one_is_the_worst_case() -> None:
    scen = make_scenarios(s=30, seed=2)
    alloc = min_cvar(scen, 1 - 1e-12)
    losses = -(scen.to_numpy() @ alloc.weights.to_numpy())
    assert alloc.objective == pytest.approx(losses.max(), abs=1e-9)


def test_single_asset_is_its_own_cvar() -> None:
    scen = make_scenarios(s=100, n=1)
    alloc = min_cvar(scen, 0.9)
    assert alloc.weights.iloc[0] == pytest.approx(1.0, abs=1e-9)
    assert alloc.objective == pytest.approx(tail_mean(-scen.to_numpy()[:, 0], 10), abs=1e-12)


def test_target_return_binds_and_matches_lp() -> None:
    scen = make_scenarios(seed=6)
    r = scen.to_numpy()
    free = min_cvar(scen, 0.95)
    mu = pd.Series(r.mean(axis=0) * 3.0, index=ASSETS)
    target = float(free.weights @ mu) + 0.004
    alloc = min_cvar(scen, 0.95, mu=mu, target_return=target)
    assert alloc.expected_return == pytest.approx(target, abs=1e-8)
    assert alloc.checks["target return"]["ok"]
    assert any(b["name"] == "target return" for b in alloc.binding)
    w_ref, f_ref = ru_linprog(r, 0.95, rows=[(mu.to_numpy(), target)])
    np.testing.assert_allclose(alloc.weights.to_numpy(), w_ref, atol=1e-6)
    assert alloc.objective == pytest.approx(f_ref, abs=1e-8)
    assert alloc.objective > free.objective


def test_default_mu_and_cov_are_annualized_for_monthly_dates() -> None:
    idx = pd.date_range("2000-01-31", periods=120, freq="ME")
    scen = make_scenarios(s=120, index=idx, seed=8)
    alloc = min_cvar(scen, 0.95)
    w = alloc.weights.to_numpy()
    r = scen.to_numpy()
    assert alloc.expected_return == pytest.approx(float(r.mean(axis=0) @ w) * 12, rel=1e-12)
    vol = np.sqrt(w @ np.cov(r, rowvar=False) @ w * 12)
    assert alloc.volatility == pytest.approx(vol, rel=1e-10)
    # the CVaR itself stays periodic (monthly)
    losses = -(r @ w)
    k = (1 - 0.95) * 120
    tail = np.sort(losses)[::-1]
    assert alloc.objective == pytest.approx(tail[:6].sum() / k, abs=1e-13)


def test_default_target_uses_the_annualized_scenario_mean() -> None:
    idx = pd.date_range("2000-01-31", periods=120, freq="ME")
    scen = make_scenarios(s=120, index=idx, seed=8)
    free = min_cvar(scen, 0.95)
    target = free.expected_return + 0.01
    alloc = min_cvar(scen, 0.95, target_return=target)
    assert alloc.expected_return >= target - 1e-8
    mean = scen.to_numpy().mean(axis=0) * 12
    assert float(mean @ alloc.weights.to_numpy()) == pytest.approx(target, abs=1e-8)


def test_no_dates_means_no_scaling_and_explicit_periods_win() -> None:
    scen = make_scenarios(s=120, seed=8)
    plain = min_cvar(scen, 0.95)
    w = plain.weights.to_numpy()
    r = scen.to_numpy()
    assert plain.expected_return == pytest.approx(float(r.mean(axis=0) @ w), rel=1e-12)
    assert plain.volatility == pytest.approx(np.sqrt(w @ np.cov(r, rowvar=False) @ w), rel=1e-10)
    weekly = min_cvar(scen, 0.95, periods_per_year=52)
    assert weekly.volatility == pytest.approx(plain.volatility * np.sqrt(52), rel=1e-6)
    np.testing.assert_allclose(weekly.weights, plain.weights, atol=1e-7)


def test_group_limits_with_universe_tags() -> None:
    scen = make_scenarios(seed=9)
    uni = Universe(
        assets=ASSETS,
        tags={"US_EQ": ["equity"], "INTL_EQ": ["equity"], "EM_EQ": ["equity"], "GOLD": ["alt"]},
    )
    cons = [
        GroupLimit(tag="equity", min=0.5, name="equity floor"),
        GroupLimit(tag="alt", max=0.05, name="alt cap"),
    ]
    alloc = min_cvar(scen, 0.95, constraints=cons, universe=uni)
    w = alloc.weights
    assert w[["US_EQ", "INTL_EQ", "EM_EQ"]].sum() >= 0.5 - 1e-8
    assert w["GOLD"] <= 0.05 + 1e-8
    assert alloc.checks["equity floor"]["ok"] and alloc.checks["alt cap"]["ok"]
    eq = np.array([1, 1, 1, 0, 0, 0], dtype=float)
    gold = np.array([0, 0, 0, 0, 0, -1], dtype=float)
    w_ref, f_ref = ru_linprog(scen.to_numpy(), 0.95, rows=[(eq, 0.5), (gold, -0.05)])
    np.testing.assert_allclose(w.to_numpy(), w_ref, atol=1e-6)
    assert alloc.objective == pytest.approx(f_ref, abs=1e-8)


def test_allocation_is_json_ready() -> None:
    alloc = min_cvar(make_scenarios(), 0.95)
    out = alloc.to_dict()
    json.dumps(out)
    assert out["objective"] == pytest.approx(alloc.objective)
    assert alloc.risk_contributions.sum() == pytest.approx(alloc.volatility, rel=1e-10)


# ----------------------------------------------------------------------------- real data

SECTORS = {
    "tech": ["AAPL", "AMD", "MSFT"],
    "financials": ["BAC", "JPM"],
    "consumer": ["BBY", "HD", "WMT", "KO", "PEP", "PG"],
    "energy": ["CVX", "XOM", "RRC"],
    "health": ["JNJ", "LLY", "MRK", "PFE", "UNH"],
    "industrials": ["GE"],
}


def test_sp500_min_cvar_with_sector_limits(sp500_prices: pd.DataFrame) -> None:
    start = sp500_prices.index[-1] - pd.DateOffset(years=5)
    rets = sp500_prices.loc[sp500_prices.index >= start].pct_change().dropna()
    tags = {a: [sector] for sector, names in SECTORS.items() for a in names}
    uni = Universe(assets=list(rets.columns), tags=tags)
    cons = [
        GroupLimit(tag="consumer", max=0.35, name="consumer cap"),
        GroupLimit(tag="health", max=0.30, name="health cap"),
        GroupLimit(tag="tech", min=0.10, name="tech floor"),
        Bounds(upper=0.15, name="single name cap"),
    ]
    alloc = min_cvar(rets, 0.95, constraints=cons, universe=uni)
    w = alloc.weights
    assert all(c["ok"] for c in alloc.checks.values())
    assert w[SECTORS["consumer"]].sum() <= 0.35 + 1e-8
    assert w[SECTORS["health"]].sum() <= 0.30 + 1e-8
    assert w[SECTORS["tech"]].sum() >= 0.10 - 1e-8
    assert w.max() <= 0.15 + 1e-8
    assert w.sum() == pytest.approx(1.0, abs=1e-8)
    losses = -(rets.to_numpy() @ w.to_numpy())
    k = 0.05 * len(losses)
    tail = np.sort(losses)[::-1]
    m = int(np.floor(k))
    assert alloc.objective == pytest.approx((tail[:m].sum() + (k - m) * tail[m]) / k, abs=1e-12)
    # daily data: the reported volatility is annualized with 252 days
    vol = np.sqrt(w.to_numpy() @ rets.cov().to_numpy() @ w.to_numpy() * 252)
    assert alloc.volatility == pytest.approx(vol, rel=1e-8)


def test_french_industries_min_cvar(french_industries: pd.DataFrame) -> None:
    rets = french_industries.loc["1980":]
    uni = Universe(
        assets=list(rets.columns),
        tags={a: ["cyclical"] for a in ["Durbl", "Manuf", "Enrgy", "Chems", "BusEq", "Money"]},
    )
    cons = [GroupLimit(tag="cyclical", min=0.3, max=0.5, name="cyclical band")]
    alloc = min_cvar(rets, 0.9, constraints=cons, universe=uni)
    cyc = uni.members("cyclical")
    assert 0.3 - 1e-8 <= alloc.weights[cyc].sum() <= 0.5 + 1e-8
    assert alloc.checks["cyclical band"]["ok"]
    unconstrained = min_cvar(rets, 0.9)
    assert unconstrained.objective <= alloc.objective + 1e-9
    a = np.array([1.0 if c in cyc else 0.0 for c in rets.columns])
    w_ref, f_ref = ru_linprog(rets.to_numpy(), 0.9, rows=[(a, 0.3), (-a, -0.5)])
    assert alloc.objective == pytest.approx(f_ref, abs=1e-7)


# ----------------------------------------------------------------------------- properties


@st.composite
def cvar_problems(draw):
    n = draw(st.integers(2, 5))
    s = draw(st.integers(20, 60))
    seed = draw(st.integers(0, 2**31 - 1))
    scen = make_scenarios(s=s, n=n, seed=seed)
    upper = draw(st.floats(1.0 / n + 0.05, 1.0))
    lower = draw(st.floats(0.0, 1.0 / n - 0.05)) if n < 10 else 0.0
    group_max = draw(st.floats(0.3, 1.0))
    alpha = draw(st.sampled_from([0.8, 0.9, 0.95]))
    return scen, alpha, lower, upper, group_max


@settings(max_examples=25, deadline=None)
@given(cvar_problems())
def test_property_weights_meet_every_constraint(problem) -> None:
    scen, alpha, lower, upper, group_max = problem
    first_two = list(scen.columns[:2])
    cons = [
        Bounds(lower=lower, upper=upper, name="box"),
        GroupLimit(assets=first_two, max=group_max, name="pair cap"),
    ]
    try:
        alloc = min_cvar(scen, alpha, constraints=cons)
    except InfeasibleError:
        # only when the pair cap is below the pair's floors or the caps cannot add up to 1
        n = len(scen.columns)
        assert (
            2 * lower > group_max - 1e-9 or min(group_max, 2 * upper) + (n - 2) * upper < 1.0 + 1e-9
        )
        return
    w = alloc.weights.to_numpy()
    assert w.sum() == pytest.approx(1.0, abs=1e-8)
    assert (w >= lower - 1e-8).all() and (w <= upper + 1e-8).all()
    assert w[:2].sum() <= group_max + 1e-8
    assert all(c["ok"] for c in alloc.checks.values())
    losses = -(scen.to_numpy() @ w)
    # the objective is the CVaR of these weights: never below the VaR-level loss mean
    assert alloc.objective >= np.mean(losses) - 1e-12
    assert alloc.objective <= losses.max() + 1e-12


# ----------------------------------------------------------------------------- errors


def test_not_a_dataframe() -> None:
    with pytest.raises(InputError, match="scenario_returns must be a pandas DataFrame"):
        min_cvar(np.zeros((10, 2)))


def test_nan_names_the_assets() -> None:
    scen = make_scenarios()
    scen.iloc[3, 1] = np.nan
    scen.iloc[7, 4] = np.inf
    with pytest.raises(InputError, match="NaN or inf values for assets: INTL_EQ, TIPS"):
        min_cvar(scen)


def test_too_few_scenarios() -> None:
    with pytest.raises(InputError, match="has 1 scenario\\(s\\); at least 2 are needed"):
        min_cvar(make_scenarios().iloc[:1])


def test_no_columns() -> None:
    with pytest.raises(InputError, match="has no columns"):
        min_cvar(pd.DataFrame(index=range(5)))


def test_duplicate_columns() -> None:
    scen = make_scenarios()
    scen.columns = [*ASSETS[:-1], "US_EQ"]
    with pytest.raises(InputError, match="duplicate asset ids: US_EQ"):
        min_cvar(scen)


def test_non_numeric_column() -> None:
    scen = make_scenarios()
    scen["GOLD"] = "n/a"
    with pytest.raises(InputError, match="non-numeric columns: GOLD"):
        min_cvar(scen)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_alpha_out_of_range(alpha: float) -> None:
    with pytest.raises(InputError, match="alpha must be in \\(0, 1\\)"):
        min_cvar(make_scenarios(), alpha)


@pytest.mark.parametrize("alpha", [True, "high", None])
def test_alpha_not_a_number(alpha) -> None:
    with pytest.raises(InputError, match="alpha must be a number in \\(0, 1\\)"):
        min_cvar(make_scenarios(), alpha)


def test_mu_misaligned() -> None:
    mu = pd.Series(0.05, index=ASSETS[:-1])
    with pytest.raises(InputError, match="and scenario_returns .*: missing from mu: GOLD"):
        min_cvar(make_scenarios(), mu=mu)
    with pytest.raises(InputError, match="mu must map asset ids to numbers"):
        min_cvar(make_scenarios(), mu=dict.fromkeys(ASSETS, "x"))
    with pytest.raises(InputError, match="mu must be a pandas Series"):
        min_cvar(make_scenarios(), mu=[0.05] * 6)


@pytest.mark.parametrize("target", [float("nan"), float("inf")])
def test_target_not_finite(target: float) -> None:
    with pytest.raises(InputError, match="target_return must be finite"):
        min_cvar(make_scenarios(), target_return=target)


def test_target_not_a_number() -> None:
    with pytest.raises(InputError, match="target_return must be a number"):
        min_cvar(make_scenarios(), target_return="10%")


def test_unreachable_target_names_the_constraint() -> None:
    scen = make_scenarios()
    with pytest.raises(InfeasibleError, match="target return") as info:
        min_cvar(scen, target_return=1.0)
    assert "target return" in info.value.constraint_names


@pytest.mark.parametrize("ppy", [0, -12, float("nan"), "monthly", True])
def test_bad_periods_per_year(ppy) -> None:
    with pytest.raises(InputError, match="periods_per_year must be a positive number"):
        min_cvar(make_scenarios(), periods_per_year=ppy)


def test_irregular_dates_need_periods_per_year() -> None:
    # every 15 days: neither weekly nor monthly
    scen = make_scenarios(s=200, index=pd.date_range("2000-01-01", periods=200, freq="15D"))
    with pytest.raises(InputError, match="pass periods_per_year"):
        min_cvar(scen)
    assert min_cvar(scen, periods_per_year=4).status.startswith("optimal")


def test_unknown_solver() -> None:
    with pytest.raises(InputError, match="unknown solver 'CPLEX'"):
        min_cvar(make_scenarios(), solvers=["CPLEX"])


def test_universe_mismatch() -> None:
    uni = Universe(assets=[*ASSETS, "BTC"])
    with pytest.raises(InputError, match="no row for universe assets: BTC"):
        min_cvar(make_scenarios(), universe=uni)
