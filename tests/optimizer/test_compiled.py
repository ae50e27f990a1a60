"""Compiled problems the caller owns, and one-shot calls that read their inputs by content (issue 9).

* In-place edits of ``cov``, ``mu``, a constraint's input Series / mapping or a universe's tags
  between two one-shot solves: the second answer equals a fresh process's (a child started with
  ``multiprocessing`` spawn), the answer from copies made before any solve, and the answer after
  ``optimizer.compiled.SHARED`` is cleared, all to 1e-10.
* 8 threads x 100 solves sharing one ``Compiled`` and through the one-shot ``max_utility``: the
  serial answers to 1e-10, and Clarabel (the first solver) answers every time.
* Pickle round trips before and after use; a solve in a spawned child equals the parent's.
* 40 one-shot solves on distinct 600-asset covariances that the caller drops retain < 30 MB.
* ``compile`` errors, and ``Compiled.solve`` equals the one-shot function for each objective.
"""

from __future__ import annotations

import copy
import gc
import multiprocessing as mp
import pickle
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from models import mean_variance as mv
from models import risk_parity as rp
from optimizer import compiled
from optimizer.constraints import Bounds, DeviationBand, GroupLimit
from optimizer.errors import InputError
from optimizer.universe import Universe

TOL = 1e-10
IDS = list("abcdef")
VOLS = np.array([0.05, 0.08, 0.12, 0.15, 0.18, 0.22])
MU = np.array([0.02, 0.035, 0.05, 0.06, 0.07, 0.09])
RISK_AVERSION = 3.0
TARGET_RETURN = 0.05


def small_cov() -> pd.DataFrame:
    corr = np.full((6, 6), 0.25) + 0.75 * np.eye(6)
    return pd.DataFrame(corr * np.outer(VOLS, VOLS), index=IDS, columns=IDS)


def small_mu() -> pd.Series:
    return pd.Series(MU, index=IDS)


def factor_cov(n: int, seed: int, k: int = 5) -> pd.DataFrame:
    """A dense, well-conditioned covariance of ``n`` assets."""
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(n, k)) * 0.1
    c = b @ b.T + np.diag(rng.uniform(0.01, 0.05, n))
    ids = [f"x{i}" for i in range(n)]
    return pd.DataFrame(c, index=ids, columns=ids)


@pytest.fixture(scope="module")
def child():
    """One process started with 'spawn' (nothing inherited: a fresh interpreter)."""
    pool = mp.get_context("spawn").Pool(1)
    try:
        yield pool
    finally:
        pool.close()
        pool.join()


def assert_same(got, want, what: str, tol: float = TOL) -> None:
    gw, ww = got.weights, want.weights
    assert list(gw.index) == list(ww.index), what
    gap = float(np.max(np.abs(gw.to_numpy() - ww.to_numpy())))
    assert gap <= tol, f"{what}: weights differ by {gap:.3g} (> {tol:g})"
    if want.expected_return is not None or got.expected_return is not None:
        assert got.expected_return == pytest.approx(want.expected_return, abs=tol), what


def max_gap(one, two) -> float:
    return float(np.max(np.abs(one.weights.to_numpy() - two.weights.to_numpy())))


# ----------------------------------------------------------------------------- in-place edits


@dataclass
class Raw:
    """The caller's objects, edited in place by a scenario."""

    cov: pd.DataFrame
    mu: pd.Series
    ref: pd.Series  # a DeviationBand's reference
    upper: dict  # a Bounds' upper mapping
    tags: dict  # a Universe's tags


def make_raw() -> Raw:
    return Raw(
        cov=small_cov(),
        mu=small_mu(),
        ref=pd.Series(1.0 / 6.0, index=IDS),
        upper={"a": 0.35, "f": 0.3},
        tags={"a": ["eq"], "b": ["eq"], "c": ["bd"], "d": ["bd"], "e": ["alt"], "f": ["alt"]},
    )


def edit(raw: Raw, what: str) -> None:
    if what == "cov":
        raw.cov.loc["c", "c"] = 0.09
    elif what == "mu":
        raw.mu.loc["c"] = raw.mu.loc["c"] + 0.04
    elif what == "band":
        raw.ref.loc["a"] = raw.ref.loc["a"] - 0.1
        raw.ref.loc["c"] = raw.ref.loc["c"] + 0.1
    elif what == "bounds":
        raw.upper["a"] = 0.15
        raw.upper["f"] = 0.1
    elif what == "tags":
        raw.tags["c"].append("eq")
        raw.tags["f"].append("eq")
    else:  # pragma: no cover
        raise AssertionError(what)


def problem(raw: Raw, what: str) -> tuple[list, Universe | None]:
    """Constraints and universe built from the caller's objects as they are now."""
    if what == "band":
        return [DeviationBand(reference=raw.ref, width=0.05)], None
    if what == "bounds":
        return [Bounds(upper=raw.upper)], None
    if what == "tags":
        return [GroupLimit(tag="eq", max=0.35)], Universe(IDS, tags=raw.tags)
    return [Bounds(upper=0.45)], None


def call(objective: str, raw: Raw, constraints, universe):
    """``(function, args, kwargs)`` of a one-shot call (picklable, to run in a child too)."""
    kw = {"constraints": constraints, "universe": universe}
    if objective == "min_variance":
        return mv.min_variance, (raw.cov,), {**kw, "mu": raw.mu}
    if objective == "max_utility":
        return mv.max_utility, (raw.mu, raw.cov), {**kw, "risk_aversion": RISK_AVERSION}
    if objective == "max_sharpe":
        return mv.max_sharpe, (raw.mu, raw.cov), kw
    if objective == "efficient_return":
        return mv.efficient_return, (raw.mu, raw.cov), {**kw, "target_return": TARGET_RETURN}
    if objective == "risk_parity":
        return rp.risk_parity, (raw.cov,), kw
    raise AssertionError(objective)  # pragma: no cover


def run(objective: str, raw: Raw, constraints, universe):
    fn, args, kwargs = call(objective, raw, constraints, universe)
    return fn(*args, **kwargs)


# (objective, what is edited, mode): "rebuild" makes the constraint / universe again from the
# edited object; "reuse" keeps the one made before the edit (a value: the edit changes nothing)
EDIT_CASES = [
    *[
        (obj, "cov", "edit")
        for obj in ("min_variance", "max_utility", "max_sharpe", "efficient_return", "risk_parity")
    ],
    *[
        (obj, "mu", "edit")
        for obj in ("min_variance", "max_utility", "max_sharpe", "efficient_return")
    ],
    *[
        (obj, what, mode)
        for obj in ("min_variance", "max_utility")
        for what in ("band", "bounds", "tags")
        for mode in ("reuse", "rebuild")
    ],
    ("risk_parity", "band", "reuse"),
    ("risk_parity", "band", "rebuild"),
    ("efficient_return", "bounds", "rebuild"),
]


@pytest.mark.parametrize(("objective", "what", "mode"), EDIT_CASES)
def test_in_place_edit_between_solves_gives_a_fresh_answer(child, objective, what, mode) -> None:
    raw = make_raw()
    # what a fresh process would be given, copied before any solve
    expected_raw = copy.deepcopy(raw)
    if mode != "reuse":
        edit(expected_raw, what)
    cons, uni = problem(raw, what)
    first = run(objective, raw, cons, uni)

    edit(raw, what)
    if mode == "rebuild":
        cons, uni = problem(raw, what)
    second = run(objective, raw, cons, uni)

    ex_cons, ex_uni = problem(expected_raw, what)
    fn, args, kwargs = call(objective, expected_raw, ex_cons, ex_uni)
    fresh_process = child.apply(fn, args, kwargs)
    fresh_copies = fn(*args, **kwargs)
    compiled.SHARED.clear()
    fresh_cleared = fn(*args, **kwargs)
    again_cleared = run(objective, raw, cons, uni)

    label = f"{objective} after editing {what} ({mode})"
    assert_same(second, fresh_process, f"{label}: vs a spawned process")
    assert_same(second, fresh_copies, f"{label}: vs copies made before any solve")
    assert_same(second, fresh_cleared, f"{label}: vs copies after SHARED.clear()")
    assert_same(again_cleared, fresh_process, f"{label}: re-solved after SHARED.clear()")
    if mode == "reuse":
        assert_same(second, first, f"{label}: a constraint made before the edit must not move")
    elif what == "mu" and objective == "min_variance":
        # mu only reports the expected return here
        assert abs(second.expected_return - first.expected_return) > 1e-3, label
    else:
        assert max_gap(first, second) > 1e-4, f"{label}: the edit does not move the answer"


def test_edit_of_cov_after_compile_changes_nothing_in_the_compiled() -> None:
    cov = small_cov()
    cm = mv.compile("min_variance", cov)
    before = cm.solve()
    cov.loc["a", "a"] = 0.5
    after = cm.solve()
    assert_same(after, before, "a Compiled keeps its own copy of cov")
    assert max_gap(mv.min_variance(cov), before) > 1e-3


# ----------------------------------------------------------------------------- threads

N_THREADS = 8
N_SOLVES = 100


@pytest.fixture(scope="module")
def thread_problem():
    n = 40
    cov = factor_cov(n, seed=7)
    ids = list(cov.index)
    cons = [Bounds(upper=0.08), GroupLimit(assets=ids[:10], max=0.3, name="first ten")]
    rng = np.random.default_rng(11)
    mus = [pd.Series(rng.normal(0.06, 0.03, n), index=ids) for _ in range(N_SOLVES)]
    return cov, cons, mus


def _hammer(solve, mus) -> list[list]:
    """Every thread solves every mu (each in its own order); results by mu index."""
    start = threading.Barrier(N_THREADS)

    def worker(seed: int):
        order = np.random.default_rng(seed).permutation(len(mus))
        start.wait()
        return [(int(i), solve(mus[i])) for i in order]

    with ThreadPoolExecutor(N_THREADS) as ex:
        done = [f.result() for f in [ex.submit(worker, s) for s in range(N_THREADS)]]
    by_mu: list[list] = [[] for _ in mus]
    for results in done:
        for i, alloc in results:
            by_mu[i].append(alloc)
    return by_mu


def _check_threads(by_mu, serial, what: str) -> None:
    worst, fallbacks = 0.0, []
    for i, allocs in enumerate(by_mu):
        assert len(allocs) == N_THREADS
        for a in allocs:
            worst = max(worst, max_gap(a, serial[i]))
            first = a.attempts[0]
            if (
                first["solver"] != "CLARABEL"
                or first["status"] != "optimal"
                or a.solver != ("CLARABEL")
            ):
                fallbacks.append((i, a.solver, a.attempts))
    assert not fallbacks, f"{what}: {len(fallbacks)} solves left Clarabel: {fallbacks[:3]}"
    assert worst <= TOL, f"{what}: threaded answers differ from serial by {worst:.3g}"


def test_threads_share_one_compiled(thread_problem) -> None:
    cov, cons, mus = thread_problem
    serial_cm = mv.compile("max_utility", cov, constraints=cons)
    serial = [serial_cm.solve(mu=m, risk_aversion=RISK_AVERSION) for m in mus]
    assert any(a.binding for a in serial)
    shared_cm = mv.compile("max_utility", cov, constraints=cons)
    by_mu = _hammer(lambda m: shared_cm.solve(mu=m, risk_aversion=RISK_AVERSION), mus)
    _check_threads(by_mu, serial, "shared Compiled")


def test_threads_through_the_one_shot_function(thread_problem) -> None:
    cov, cons, mus = thread_problem
    compiled.SHARED.clear()
    serial = [mv.max_utility(m, cov, risk_aversion=RISK_AVERSION, constraints=cons) for m in mus]
    own = mv.compile("max_utility", cov, constraints=cons)
    for m, a in zip(mus[:10], serial[:10], strict=True):
        assert_same(a, own.solve(mu=m, risk_aversion=RISK_AVERSION), "one-shot vs Compiled")
    compiled.SHARED.clear()
    by_mu = _hammer(
        lambda m: mv.max_utility(m, cov, risk_aversion=RISK_AVERSION, constraints=cons), mus
    )
    _check_threads(by_mu, serial, "one-shot max_utility")


# ----------------------------------------------------------------------------- pickle, spawn


COMPILED_CASES = {
    "max_utility": (
        lambda cov: mv.compile("max_utility", cov, constraints=[Bounds(upper=0.3)]),
        {"mu": small_mu(), "risk_aversion": RISK_AVERSION},
    ),
    "efficient_return-fixed": (
        lambda cov: mv.compile(
            "efficient_return", cov, constraints=[Bounds(upper=0.3)], target_return=TARGET_RETURN
        ),
        {"mu": small_mu()},
    ),
    "max_sharpe": (lambda cov: mv.compile("max_sharpe", cov), {"mu": small_mu()}),
    "risk_parity": (
        lambda cov: rp.compile(cov, constraints=[Bounds(upper=0.3)]),
        {"budgets": pd.Series([1, 1, 1, 2, 2, 2], index=IDS, dtype=float)},
    ),
}


@pytest.mark.parametrize("case", list(COMPILED_CASES))
def test_pickle_round_trip_before_and_after_use(case: str) -> None:
    make, data = COMPILED_CASES[case]
    cm = make(small_cov())
    unused = pickle.loads(pickle.dumps(cm))
    want = cm.solve(**data)
    used = pickle.loads(pickle.dumps(cm))
    assert_same(unused.solve(**data), want, f"{case}: pickled before use")
    assert_same(used.solve(**data), want, f"{case}: pickled after use")
    assert_same(used.solve(**data), want, f"{case}: pickled after use, second solve")
    twice = pickle.loads(pickle.dumps(used))
    assert_same(twice.solve(**data), want, f"{case}: pickled twice")


@pytest.mark.parametrize("case", ["max_utility", "risk_parity"])
def test_solve_in_a_spawned_child_equals_the_parents(child, case: str) -> None:
    make, data = COMPILED_CASES[case]
    cm = make(small_cov())
    want = cm.solve(**data)
    payload = pickle.dumps(cm)
    got = child.apply(pickle.loads(payload).solve, (), data)
    assert_same(got, want, f"{case}: solved in a spawned child")
    assert got.solver == want.solver


def test_compiled_for_many_mus_in_a_spawned_child(child) -> None:
    cov = factor_cov(20, seed=3)
    ids = list(cov.index)
    rng = np.random.default_rng(5)
    mus = [pd.Series(rng.normal(0.06, 0.03, 20), index=ids) for _ in range(5)]
    cm = mv.compile("max_utility", cov, constraints=[Bounds(upper=0.15)], risk_aversion=3.0)
    want = [cm.solve(mu=m) for m in mus]
    remote = pickle.loads(pickle.dumps(cm))
    pending = [child.apply_async(remote.solve, (), {"mu": m}) for m in mus]
    for p, w in zip(pending, want, strict=True):
        assert_same(p.get(timeout=120), w, "max_utility solved in a spawned child")


# ----------------------------------------------------------------------------- memory


def test_one_shot_solves_on_dropped_covariances_retain_little_memory() -> None:
    limit = 30 * 2**20
    compiled.SHARED.clear()
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for seed in range(40):
            cov = factor_cov(600, seed=1000 + seed)
            alloc = mv.min_variance(cov)
            assert alloc.status.startswith("optimal")
            del cov, alloc
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    retained = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    top = after.compare_to(before, "lineno")[:3]
    assert retained < limit, (
        f"40 dropped 600-asset covariances retain {retained / 2**20:.1f} MB (limit 30 MB); "
        f"SHARED holds {len(compiled.SHARED)} entries; largest: {top}"
    )
    compiled.SHARED.clear()


# ----------------------------------------------------------------------------- compile API


def test_compile_rejects_an_unknown_objective() -> None:
    with pytest.raises(InputError, match="min_varaince"):
        mv.compile("min_varaince", small_cov())


@pytest.mark.parametrize(
    ("objective", "fixed", "bad"),
    [
        ("max_utility", {"target_return": 0.05}, "target_return"),
        ("min_variance", {"risk_aversion": 3.0}, "risk_aversion"),
        ("efficient_risk", {"risk_aversion": 3.0, "target_volatility": 0.1}, "risk_aversion"),
        ("max_sharpe", {"riskfree_rate": 0.01}, "riskfree_rate"),
    ],
)
def test_compile_rejects_an_unknown_fixed_keyword(objective, fixed, bad) -> None:
    with pytest.raises(InputError, match=bad):
        mv.compile(objective, small_cov(), **fixed)


def test_solve_rejects_an_unknown_data_keyword() -> None:
    cm = mv.compile("max_utility", small_cov())
    with pytest.raises(InputError, match="target_volatility"):
        cm.solve(mu=small_mu(), risk_aversion=RISK_AVERSION, target_volatility=0.1)


def test_solve_names_missing_data() -> None:
    cm = mv.compile("max_utility", small_cov())
    with pytest.raises(InputError, match="risk_aversion"):
        cm.solve(mu=small_mu())


SOLVE_CASES = [
    ("min_variance", {}, lambda cov, cons: mv.min_variance(cov, constraints=cons)),
    (
        "max_utility",
        {"mu": small_mu(), "risk_aversion": RISK_AVERSION},
        lambda cov, cons: mv.max_utility(
            small_mu(), cov, risk_aversion=RISK_AVERSION, constraints=cons
        ),
    ),
    (
        "max_return",
        {"mu": small_mu()},
        lambda cov, c: mv.max_return(small_mu(), cov, constraints=c),
    ),
    (
        "efficient_return",
        {"mu": small_mu(), "target_return": TARGET_RETURN},
        lambda cov, cons: mv.efficient_return(
            small_mu(), cov, target_return=TARGET_RETURN, constraints=cons
        ),
    ),
    (
        "efficient_risk",
        {"mu": small_mu(), "target_volatility": 0.1},
        lambda cov, cons: mv.efficient_risk(
            small_mu(), cov, target_volatility=0.1, constraints=cons
        ),
    ),
    (
        "max_sharpe",
        {"mu": small_mu(), "risk_free_rate": 0.01},
        lambda cov, cons: mv.max_sharpe(small_mu(), cov, risk_free_rate=0.01, constraints=cons),
    ),
]


@pytest.mark.parametrize(
    ("objective", "data", "one_shot"), SOLVE_CASES, ids=[c[0] for c in SOLVE_CASES]
)
@pytest.mark.parametrize("constrained", [False, True])
def test_compiled_solve_equals_the_one_shot_function(objective, data, one_shot, constrained):
    cons = [Bounds(upper=0.3), GroupLimit(assets=["e", "f"], min=0.2)] if constrained else None
    cov = small_cov()
    cm = mv.compile(objective, cov, constraints=cons)
    got = cm.solve(**data)
    assert_same(got, one_shot(cov, cons), f"{objective}: Compiled.solve vs one-shot")
    assert got.status == one_shot(cov, cons).status
    # data fixed at compile time gives the same answer
    if data:
        fixed = mv.compile(objective, cov, constraints=cons, **data)
        assert_same(fixed.solve(), got, f"{objective}: data fixed at compile time")


def test_risk_parity_compiled_solve_equals_the_one_shot_function() -> None:
    cov = small_cov()
    budgets = pd.Series([1, 2, 3, 1, 2, 3], index=IDS, dtype=float)
    for cons in (None, [Bounds(upper=0.25)]):
        cm = rp.compile(cov, constraints=cons)
        assert_same(cm.solve(), rp.risk_parity(cov, constraints=cons), "risk parity")
        assert_same(
            cm.solve(budgets=budgets),
            rp.risk_parity(cov, budgets, constraints=cons),
            "risk budgeting",
        )
