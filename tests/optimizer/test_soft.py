"""Soft constraints by priority: lexicographic goal programming (issue 9, "Soft constraints").

``priority=None`` is hard; 1, 2, ... are soft levels, 1 the most important. When the hard set can
hold and the whole set cannot, level 1's total relaxation is made least (the higher-numbered levels
free), then level 2's with level 1 held, and so on; each constraint relaxes by one amount in its own
units. The expected amounts are computed here by hand or with ``scipy.optimize.linprog`` on the
elastic LP written out in the test.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from models import mean_variance as mv
from models import risk_parity as rp
from optimizer.constraints import (
    Bounds,
    DeviationBand,
    ExposureLimit,
    GroupLimit,
    TrackingErrorLimit,
)
from optimizer.errors import InfeasibleError

AMOUNT_TOL = 1e-7  # the elastic LP is solved by an interior point: amounts to ~1e-9
CHECK_TOL = 1e-7  # the verification tolerance of optimizer.verify


def cov_of(vols, corr: float = 0.2) -> pd.DataFrame:
    vols = np.asarray(vols, dtype=float)
    n = len(vols)
    ids = list("abcdefgh"[:n])
    c = (np.full((n, n), corr) + (1 - corr) * np.eye(n)) * np.outer(vols, vols)
    return pd.DataFrame(c, index=ids, columns=ids)


COV3 = cov_of([0.10, 0.15, 0.20])
# d has the lowest volatility: the least-variance answer wants it, so a floor on a+b binds
COV4 = cov_of([0.12, 0.14, 0.16, 0.05])
MU4 = pd.Series([0.06, 0.07, 0.08, 0.02], index=COV4.index)


def relaxed_of(alloc) -> dict[str, dict]:
    return {r["name"]: r for r in alloc.relaxed}


def assert_all_ok(alloc) -> None:
    bad = {k: v for k, v in alloc.checks.items() if not v["ok"]}
    assert not bad, f"checks fail on the relaxed limits: {bad}"


# ----------------------------------------------------------------------------- the elastic LP


def lexicographic(n: int, rows: list[tuple], levels: dict[str, int]) -> tuple[dict, dict]:
    """Least relaxation level by level, with linprog.

    ``rows``: ``(a, lo, hi, name)`` meaning ``lo - s_name <= a'w <= hi + s_name`` (``s`` absent
    for a hard row, ``name`` None). Fully invested and long-only are hard. Returns the amounts of
    the last stage and the least total of each level.
    """
    names = sorted(levels, key=lambda nm: (levels[nm], nm))
    col = {nm: n + j for j, nm in enumerate(names)}
    nv = n + len(names)
    a_ub, b_ub = [], []
    for a, lo, hi, name in rows:
        for sign, limit in ((1.0, hi), (-1.0, -lo)):
            if not math.isfinite(limit):
                continue
            r = np.zeros(nv)
            r[:n] = sign * np.asarray(a, dtype=float)
            if name is not None:
                r[col[name]] = -1.0
            a_ub.append(r)
            b_ub.append(limit)
    a_eq = np.zeros((1, nv))
    a_eq[0, :n] = 1.0
    totals: dict[int, float] = {}
    x = None
    for level in sorted(set(levels.values())):
        c = np.zeros(nv)
        for nm in names:
            if levels[nm] == level:
                c[col[nm]] = 1.0
        caps_a, caps_b = [], []
        for held, total in totals.items():
            r = np.zeros(nv)
            for nm in names:
                if levels[nm] == held:
                    r[col[nm]] = 1.0
            caps_a.append(r)
            caps_b.append(total + 1e-10)
        res = linprog(
            c,
            A_ub=np.array(a_ub + caps_a),
            b_ub=np.array(b_ub + caps_b),
            A_eq=a_eq,
            b_eq=[1.0],
            bounds=[(0, None)] * nv,
            method="highs",
        )
        assert res.status == 0, res.message
        totals[level] = float(res.fun)
        x = res.x
    return {nm: float(x[col[nm]]) for nm in names}, totals


def unit(n: int, idx) -> np.ndarray:
    a = np.zeros(n)
    a[list(idx)] = 1.0
    return a


# ----------------------------------------------------------------------------- feasible: no change

FEASIBLE = [
    Bounds(upper=0.4),
    GroupLimit(assets=["a", "b"], max=0.5, name="ab cap"),
    ExposureLimit(scores={"a": 1.0, "b": 2.0, "c": 3.0, "d": 0.0}, min=0.8, name="score"),
    DeviationBand(reference={k: 0.25 for k in "abcd"}, width=0.2, name="band"),
    TrackingErrorLimit(benchmark={k: 0.25 for k in "abcd"}, max=0.05, name="te"),
]


def _with(priorities) -> list:
    return [
        type(c)(**{**{f: getattr(c, f) for f in c.__dataclass_fields__}, "priority": p})
        for c, p in zip(FEASIBLE, priorities, strict=True)
    ]


def _solve(objective: str, constraints):
    if objective == "min_variance":
        return mv.min_variance(COV4, mu=MU4, constraints=constraints)
    return mv.max_utility(MU4, COV4, risk_aversion=4.0, constraints=constraints)


@pytest.mark.parametrize("objective", ["min_variance", "max_utility"])
@pytest.mark.parametrize(
    "priorities",
    [(1, 1, 1, 1, 1), (1, 2, 3, 4, 5), (5, 4, 3, 2, 1), (None, 2, None, 1, 3), (2, 2, 1, 1, 2)],
)
def test_identical_answer_when_every_constraint_can_hold(objective, priorities) -> None:
    hard = _solve(objective, FEASIBLE)
    soft = _solve(objective, _with(priorities))
    assert hard.binding, "the test needs a binding constraint to mean anything"
    gap = float(np.max(np.abs(soft.weights.to_numpy() - hard.weights.to_numpy())))
    assert gap <= 1e-9, f"soft answer differs from the all-hard answer by {gap:.3g}"
    assert soft.status == hard.status
    assert soft.relaxed == ()
    assert soft.to_dict()["relaxed"] == []
    assert_all_ok(soft)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from([None, 1, 2, 3]), min_size=5, max_size=5))
def test_identical_answer_for_any_priorities_when_feasible(priorities) -> None:
    hard = _solve("max_utility", FEASIBLE)
    soft = _solve("max_utility", _with(priorities))
    np.testing.assert_allclose(soft.weights, hard.weights, atol=1e-9, rtol=0)
    assert soft.status == hard.status and soft.relaxed == ()


# ----------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("objective", ["min_variance", "max_utility", "risk_parity"])
def test_one_soft_cap_below_the_budget_gives_exactly_what_it_must(objective) -> None:
    mu = pd.Series([0.05, 0.07, 0.09], index=COV3.index)
    cons = [Bounds(upper=0.3, priority=1)]
    if objective == "min_variance":
        alloc = mv.min_variance(COV3, constraints=cons)
    elif objective == "max_utility":
        alloc = mv.max_utility(mu, COV3, risk_aversion=2.0, constraints=cons)
    else:
        alloc = rp.risk_parity(COV3, constraints=cons)
    amount = 1.0 / 3.0 - 0.3
    assert len(alloc.relaxed) == 1
    entry = alloc.relaxed[0]
    assert entry["name"] == "bounds" and entry["priority"] == 1
    assert entry["amount"] == pytest.approx(amount, abs=AMOUNT_TOL)
    np.testing.assert_allclose(alloc.weights, 1.0 / 3.0, atol=1e-7)
    assert_all_ok(alloc)
    assert alloc.to_dict()["relaxed"] == [
        {"name": "bounds", "priority": 1, "amount": pytest.approx(amount, abs=AMOUNT_TOL)}
    ]


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 6), frac=st.floats(0.1, 0.97))
def test_common_cap_known_amount(n: int, frac: float) -> None:
    cov = cov_of(np.linspace(0.08, 0.25, n))
    cap = frac / n  # n * cap < 1: the cap must give 1/n - cap
    alloc = mv.min_variance(cov, constraints=[Bounds(upper=cap, priority=3, name="cap")])
    (entry,) = alloc.relaxed
    assert entry["name"] == "cap" and entry["priority"] == 3
    assert entry["amount"] == pytest.approx(1.0 / n - cap, abs=AMOUNT_TOL)
    np.testing.assert_allclose(alloc.weights, 1.0 / n, atol=1e-7)
    assert_all_ok(alloc)


def two_level(p_group: int, p_cap: int, floor: float = 0.8, cap: float = 0.35):
    cons = [
        GroupLimit(assets=["a", "b"], min=floor, name="ab floor", priority=p_group),
        Bounds(upper=cap, name="cap", priority=p_cap),
    ]
    rows = [
        (unit(4, [0, 1]), floor, math.inf, "ab floor"),
        *[(unit(4, [i]), -math.inf, cap, "cap") for i in range(4)],
    ]
    expected, totals = lexicographic(4, rows, {"ab floor": p_group, "cap": p_cap})
    return cons, expected, totals


def test_two_levels_the_level_two_cap_gives_way_entirely() -> None:
    cons, expected, totals = two_level(p_group=1, p_cap=2)
    # by hand: a + b <= 2 * 0.35 = 0.7 < 0.8; level 1 (the floor) need not give at all, the cap
    # gives 0.05 so that a = b = 0.4
    assert expected == pytest.approx({"ab floor": 0.0, "cap": 0.05}, abs=1e-9)
    alloc = mv.min_variance(COV4, constraints=cons)
    got = relaxed_of(alloc)
    assert set(got) == {"cap"}, f"only the level-2 cap may give: {alloc.relaxed}"
    assert got["cap"]["priority"] == 2
    assert got["cap"]["amount"] == pytest.approx(0.05, abs=AMOUNT_TOL)
    w = alloc.weights
    # level 1 holds exactly (and binds: d is the least-risk asset)
    assert w["a"] + w["b"] == pytest.approx(0.8, abs=CHECK_TOL)
    assert w.max() == pytest.approx(0.35 + 0.05, abs=CHECK_TOL)
    assert w.max() > 0.35 + 1e-4
    assert_all_ok(alloc)


def test_swapping_the_priorities_swaps_which_constraint_gives() -> None:
    cons, expected, _ = two_level(p_group=2, p_cap=1)
    assert expected == pytest.approx({"ab floor": 0.1, "cap": 0.0}, abs=1e-9)
    alloc = mv.min_variance(COV4, constraints=cons)
    got = relaxed_of(alloc)
    assert set(got) == {"ab floor"}, f"only the level-2 floor may give: {alloc.relaxed}"
    assert got["ab floor"]["priority"] == 2
    assert got["ab floor"]["amount"] == pytest.approx(0.1, abs=AMOUNT_TOL)
    w = alloc.weights
    assert w.max() <= 0.35 + CHECK_TOL  # the level-1 cap holds
    assert w["a"] + w["b"] == pytest.approx(0.8 - 0.1, abs=CHECK_TOL)
    assert_all_ok(alloc)


def test_within_one_level_the_total_relaxation_is_least() -> None:
    cons, expected, totals = two_level(p_group=1, p_cap=1)
    # relaxing the floor alone costs 0.1, the cap alone 0.05 (it counts twice): least total 0.05
    assert totals[1] == pytest.approx(0.05, abs=1e-9)
    alloc = mv.min_variance(COV4, constraints=cons)
    total = sum(r["amount"] for r in alloc.relaxed)
    assert total == pytest.approx(totals[1], abs=AMOUNT_TOL)
    assert relaxed_of(alloc)["cap"]["amount"] == pytest.approx(0.05, abs=AMOUNT_TOL)
    assert_all_ok(alloc)


@settings(max_examples=25, deadline=None)
@given(
    floor=st.floats(0.3, 0.95),
    cap=st.floats(0.1, 0.45),
    p_group=st.integers(1, 3),
    p_cap=st.integers(1, 3),
    objective=st.sampled_from(["min_variance", "max_utility"]),
)
def test_two_constraints_match_the_lexicographic_lp(floor, cap, p_group, p_cap, objective):
    assume(2 * cap < floor - 1e-3 or 4 * cap < 1 - 1e-3)  # something must give
    cons, expected, totals = two_level(p_group, p_cap, floor=floor, cap=cap)
    alloc = _solve(objective, cons)
    got = {r["name"]: r["amount"] for r in alloc.relaxed}
    for level, total in totals.items():
        names = [c.name for c in cons if c.priority == level]
        assert sum(got.get(nm, 0.0) for nm in names) == pytest.approx(total, abs=AMOUNT_TOL), (
            f"level {level}: relaxed {alloc.relaxed}, least total {total}"
        )
    if p_group != p_cap:
        for nm, amount in expected.items():
            assert got.get(nm, 0.0) == pytest.approx(amount, abs=AMOUNT_TOL), (nm, alloc.relaxed)
    assert all(r["amount"] > 0 for r in alloc.relaxed)
    assert_all_ok(alloc)


def test_three_levels_give_in_order() -> None:
    # a floor of 0.9 on a+b (level 1), a cap of 0.3 on everything (level 3) and a cap of 0.42 on
    # a (level 2): the level-3 cap gives first, then level 2 only what level 3 could not
    cons = [
        GroupLimit(assets=["a", "b"], min=0.9, name="ab floor", priority=1),
        Bounds(upper={"a": 0.42}, name="a cap", priority=2),
        Bounds(upper=0.3, name="cap", priority=3),
    ]
    rows = [
        (unit(4, [0, 1]), 0.9, math.inf, "ab floor"),
        (unit(4, [0]), -math.inf, 0.42, "a cap"),
        *[(unit(4, [i]), -math.inf, 0.3, "cap") for i in range(4)],
    ]
    expected, totals = lexicographic(4, rows, {"ab floor": 1, "a cap": 2, "cap": 3})
    alloc = mv.min_variance(COV4, constraints=cons)
    got = {r["name"]: r["amount"] for r in alloc.relaxed}
    for nm, amount in expected.items():
        assert got.get(nm, 0.0) == pytest.approx(amount, abs=AMOUNT_TOL), (nm, alloc.relaxed)
    assert [r["priority"] for r in alloc.relaxed] == sorted(
        (r["priority"] for r in alloc.relaxed), reverse=True
    ), "relaxed entries are reported highest priority number first"
    assert_all_ok(alloc)


def test_relaxed_value_sits_at_the_original_limit_plus_the_amount() -> None:
    cons = [
        GroupLimit(assets=["c", "d"], max=0.1, name="cd cap", priority=2),
        Bounds(upper=0.4, name="cap", priority=1),
    ]
    alloc = mv.min_variance(COV4, constraints=cons)
    got = relaxed_of(alloc)
    # a, b <= 0.4 force c + d >= 0.2: the level-2 group cap gives 0.1
    assert set(got) == {"cd cap"}
    amount = got["cd cap"]["amount"]
    assert amount == pytest.approx(0.1, abs=AMOUNT_TOL)
    w = alloc.weights
    assert w["c"] + w["d"] == pytest.approx(0.1 + amount, abs=CHECK_TOL)
    assert w["c"] + w["d"] > 0.1 + 1e-4, "the answer must break the original limit"
    assert alloc.checks["cd cap"]["ok"] and alloc.checks["cap"]["ok"]
    assert_all_ok(alloc)
    d = alloc.to_dict()
    assert d["relaxed"] == [
        {"name": "cd cap", "priority": 2, "amount": pytest.approx(amount, abs=1e-12)}
    ]
    assert isinstance(d["relaxed"][0]["amount"], float)


# ----------------------------------------------------------------------------- hard conflicts


def test_infeasible_hard_set_raises_with_soft_constraints_present_arithmetic() -> None:
    cons = [
        Bounds(upper=0.3, name="hard cap"),  # 3 x 0.3 < 1
        GroupLimit(assets=["a"], min=0.1, name="soft floor", priority=1),
        ExposureLimit(
            scores={"a": 1.0, "b": 0.0, "c": 0.0}, max=0.05, name="soft score", priority=2
        ),
    ]
    with pytest.raises(InfeasibleError) as info:
        mv.min_variance(COV3, constraints=cons)
    names = info.value.constraint_names
    assert "hard cap" in names, f"diagnosis {info.value.diagnosis}"
    assert not {"soft floor", "soft score"} & set(names), f"diagnosis names soft ones: {names}"
    assert "hard cap" in str(info.value)


def test_infeasible_hard_set_raises_with_soft_constraints_present_solver() -> None:
    cons = [
        TrackingErrorLimit(benchmark={"c": 1.0}, max=0.01, name="hard te"),
        GroupLimit(assets=["a", "b"], min=0.5, name="hard floor"),
        Bounds(upper=0.9, name="soft cap", priority=1),
        GroupLimit(assets=["c"], max=0.2, name="soft c cap", priority=2),
    ]
    with pytest.raises(InfeasibleError) as info:
        mv.min_variance(COV3, constraints=cons)
    names = info.value.constraint_names
    assert {"hard te", "hard floor"} <= set(names), f"diagnosis {info.value.diagnosis}"
    assert not {"soft cap", "soft c cap"} & set(names), f"diagnosis names soft ones: {names}"


def test_hard_feasible_alone_but_not_with_soft_is_no_error() -> None:
    cons = [
        GroupLimit(assets=["a", "b"], min=0.5, name="hard floor"),
        GroupLimit(assets=["c"], min=0.6, name="soft c floor", priority=1),
    ]
    alloc = mv.min_variance(COV3, constraints=cons)
    assert relaxed_of(alloc)["soft c floor"]["amount"] == pytest.approx(0.1, abs=AMOUNT_TOL)
    assert alloc.weights[["a", "b"]].sum() >= 0.5 - CHECK_TOL


# ----------------------------------------------------------------------------- tracking error


def _least_te(cov: pd.DataFrame, c_cap: float) -> float:
    """Least tracking error to 100% c with w_c <= c_cap (w_c binds): a 1-d quadratic."""
    c = cov.to_numpy()
    # w = (t, r - t, c_cap), r = 1 - c_cap; d = w - e_c = (t, r - t, c_cap - 1)
    r = 1.0 - c_cap

    def var(t: float) -> float:
        d = np.array([t, r - t, c_cap - 1.0])
        return float(d @ c @ d)

    # var(t) = alpha t^2 + beta t + gamma: minimum at -beta / (2 alpha), clipped to [0, r]
    v0, v1, v2 = var(0.0), var(r / 2), var(r)
    alpha = (v0 - 2 * v1 + v2) / (2 * (r / 2) ** 2)
    beta = (v1 - v0) / (r / 2) - alpha * (r / 2)
    t = min(max(-beta / (2 * alpha), 0.0), r)
    best = math.sqrt(var(t))
    # no feasible point does better (a grid over the simplex with w_c <= c_cap)
    grid = np.linspace(0.0, 1.0, 101)
    for wa, wc in itertools.product(grid, grid):
        if wc <= c_cap + 1e-12 and wa + wc <= 1.0 + 1e-12:
            d = np.array([wa, 1.0 - wa - wc, wc - 1.0])
            assert math.sqrt(max(d @ c @ d, 0.0)) >= best - 1e-12
    return best


@pytest.mark.parametrize("objective", ["min_variance", "max_utility"])
def test_soft_tracking_error_limit_gives_in_volatility_units(objective) -> None:
    cons = [
        Bounds(upper={"c": 0.5}, name="c cap"),
        TrackingErrorLimit(benchmark={"c": 1.0}, max=0.02, name="te", priority=1),
    ]
    least = _least_te(COV3, 0.5)
    assert least > 0.05  # far from 0.02: variance units would be a very different number
    if objective == "min_variance":
        alloc = mv.min_variance(COV3, constraints=cons)
    else:
        mu = pd.Series([0.05, 0.07, 0.09], index=COV3.index)
        alloc = mv.max_utility(mu, COV3, risk_aversion=3.0, constraints=cons)
    (entry,) = alloc.relaxed
    assert entry["name"] == "te" and entry["priority"] == 1
    assert entry["amount"] == pytest.approx(least - 0.02, abs=1e-6)
    w = alloc.weights.to_numpy()
    d = w - np.array([0.0, 0.0, 1.0])
    te = math.sqrt(d @ COV3.to_numpy() @ d)
    assert te == pytest.approx(0.02 + entry["amount"], abs=1e-6)
    assert w[2] == pytest.approx(0.5, abs=CHECK_TOL)
    assert_all_ok(alloc)
