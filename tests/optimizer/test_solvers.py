"""Solver adapters (optimizer.solvers): known answers, statuses, owned Clarabel workspaces."""

from __future__ import annotations

import ast
import importlib
import pickle
import pkgutil
import threading
import time
import warnings
from collections import Counter, OrderedDict, defaultdict, deque
from pathlib import Path

import numpy as np
import pytest

import optimizer.solvers as solvers
from optimizer.program import Builder, Outcome, Program
from optimizer.solvers import (
    DEFAULT_CHAIN,
    KNOWN_SOLVERS,
    ClarabelWorkspace,
    ProxQP,
    WorkspacePool,
    run_solver,
)

#: How close each solver gets to a known answer at its default tolerance.
ATOL = {"CLARABEL": 1e-7, "OSQP": 1e-6, "SCS": 1e-5, "PROXQP": 1e-7}
QP_SOLVERS = ("CLARABEL", "OSQP", "SCS", "PROXQP")
CONIC_SOLVERS = ("CLARABEL", "SCS")

A_VEC = np.array([0.5, -0.2, 0.9, 0.1])
UPPER = 0.3


# ----------------------------------------------------------------------------- programs


def projection_qp(a: np.ndarray = A_VEC, upper: float = UPPER) -> Program:
    """``min 1/2 |x - a|^2  s.t.  x <= upper``: ``x = min(a, upper)``, duals ``max(a - upper, 0)``."""
    n = a.size
    b = Builder(n)
    b.quad_dense(0, np.eye(n))
    b.lin(np.arange(n), -a)
    b.add("nonneg", np.eye(n), np.arange(n), np.full(n, upper))
    return b.build()


def budget_qp(d: np.ndarray, c: np.ndarray) -> Program:
    """``min 1/2 x'Dx - c'x  s.t.  sum x = 1`` with ``D`` diagonal, plus slack caps ``x <= 10``."""
    n = d.size
    b = Builder(n)
    b.quad_dense(0, np.diag(d))
    b.lin(np.arange(n), -c)
    b.add("zero", np.ones((1, n)), np.arange(n), [1.0])
    b.add("nonneg", np.array([[1.0, 1.0] + [0.0] * (n - 2)]), np.arange(n), [10.0])
    return b.build()


def budget_answer(d: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float]:
    """KKT of :func:`budget_qp`: ``x = D^-1 (c - nu 1)`` with ``nu`` fixing the budget."""
    nu = (np.sum(c / d) - 1.0) / np.sum(1.0 / d)
    return (c - nu) / d, nu


def ball_lp(c: np.ndarray, r: float) -> Program:
    """``min c'x  s.t.  |x|_2 <= r``: ``x = -r c / |c|``, objective ``-r |c|``."""
    n = c.size
    b = Builder(n)
    b.lin(np.arange(n), c)
    matrix = np.vstack([np.zeros((1, n)), -np.eye(n)])
    b.add("soc", matrix, np.arange(n), np.r_[r, np.zeros(n)])
    return b.build()


def ball_projection(a: np.ndarray, r: float) -> Program:
    """``min 1/2 |x - a|^2  s.t.  |x|_2 <= r``: ``x = a min(1, r / |a|)``."""
    n = a.size
    b = Builder(n)
    b.quad_dense(0, np.eye(n))
    b.lin(np.arange(n), -a)
    matrix = np.vstack([np.zeros((1, n)), -np.eye(n)])
    b.add("soc", matrix, np.arange(n), np.r_[r, np.zeros(n)])
    return b.build()


def infeasible_qp() -> Program:
    """``x0 + x1 >= 1`` and ``x0 + x1 <= 0``."""
    b = Builder(3)
    b.quad_dense(0, np.eye(3))
    b.add("nonneg", -np.array([[1.0, 1.0]]), [0, 1], [-1.0])
    b.add("nonneg", np.array([[1.0, 1.0]]), [0, 1], [0.0])
    return b.build()


def unbounded_lp() -> Program:
    """``min -x0  s.t.  x >= 0``."""
    b = Builder(3)
    b.lin([0], [-1.0])
    b.add("nonneg", -np.eye(3), np.arange(3), np.zeros(3))
    return b.build()


def with_b(prog: Program, b: np.ndarray) -> Program:
    """``prog`` with new constants; shares every matrix (as a compiled problem's re-solve does)."""
    return Program(prog.P, prog.q, prog.A, b, prog.cones, prog.tags, prog.P_upper)


def family(base: Program, seed: int, size: int, *, vary_q: bool = True) -> list[Program]:
    """Programs sharing ``base``'s P, A and cones with random q (if ``vary_q``) and b."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(size):
        q = base.q * rng.uniform(0.2, 2.0, base.q.size) if vary_q else base.q
        b = base.b * rng.uniform(0.5, 1.5, base.b.size)
        out.append(with_b(base.with_q(q), b))
    return out


def budget_family(seed: int, size: int) -> list[Program]:
    """A long-only budget QP with a cap; some members have caps too low to be feasible."""
    rng = np.random.default_rng(seed)
    n = 6
    m = rng.standard_normal((n, n))
    cov = m @ m.T / n + 0.05 * np.eye(n)
    b = Builder(n)
    b.quad_dense(0, cov)
    b.lin(np.arange(n), -rng.uniform(0.02, 0.1, n))
    b.add("zero", np.ones((1, n)), np.arange(n), [1.0])
    b.add("nonneg", -np.eye(n), np.arange(n), np.zeros(n))
    b.add("nonneg", np.eye(n), np.arange(n), np.full(n, 0.3))
    base = b.build()
    out = []
    for i in range(size):
        q = base.q * rng.uniform(0.5, 1.5, n)
        cap = 0.1 if i % 9 == 4 else rng.uniform(0.18, 0.6)  # 6 x 0.1 < 1: infeasible
        bvec = base.b.copy()
        bvec[1 + n :] = cap
        out.append(with_b(base.with_q(q), bvec))
    return out


def assert_same(a: Outcome, b: Outcome, atol: float) -> None:
    assert (a.solver, a.status, a.error) == (b.solver, b.status, b.error)
    if a.x is None:
        assert b.x is None
        return
    assert np.max(np.abs(a.x - b.x)) <= atol
    assert np.max(np.abs(a.z - b.z)) <= atol
    assert abs(a.objective - b.objective) <= atol


# ----------------------------------------------------------------------------- known answers


def test_names() -> None:
    assert DEFAULT_CHAIN == ("CLARABEL", "OSQP", "SCS")
    assert KNOWN_SOLVERS == ("CLARABEL", "OSQP", "SCS", "PROXQP")


@pytest.mark.parametrize("name", QP_SOLVERS)
def test_projection_qp(name: str) -> None:
    out = run_solver(name, projection_qp())
    assert (out.solver, out.status) == (name, "optimal")
    np.testing.assert_allclose(out.x, np.minimum(A_VEC, UPPER), atol=ATOL[name])
    # Px + q + A'z = 0: the cap's dual is how far it holds x below a
    np.testing.assert_allclose(out.z, np.maximum(A_VEC - UPPER, 0.0), atol=10 * ATOL[name])
    x = np.minimum(A_VEC, UPPER)
    assert out.objective == pytest.approx(0.5 * x @ x - A_VEC @ x, abs=10 * ATOL[name])
    assert out.seconds > 0


@pytest.mark.parametrize("name", QP_SOLVERS)
def test_budget_qp(name: str) -> None:
    d = np.array([1.0, 2.0, 4.0, 0.5])
    c = np.array([0.1, 0.3, -0.2, 0.05])
    x, nu = budget_answer(d, c)
    out = run_solver(name, budget_qp(d, c))
    assert out.status == "optimal"
    np.testing.assert_allclose(out.x, x, atol=ATOL[name])
    np.testing.assert_allclose(out.z, [nu, 0.0], atol=10 * ATOL[name])


@pytest.mark.parametrize("name", CONIC_SOLVERS)
def test_second_order_cone_lp(name: str) -> None:
    c = np.array([3.0, -4.0, 0.0])
    out = run_solver(name, ball_lp(c, 2.0))
    assert out.status == "optimal"
    np.testing.assert_allclose(out.x, -2.0 * c / 5.0, atol=ATOL[name])
    assert out.objective == pytest.approx(-10.0, abs=10 * ATOL[name])


@pytest.mark.parametrize("name", CONIC_SOLVERS)
def test_second_order_cone_projection(name: str) -> None:
    a = np.array([1.0, 2.0, -2.0])  # |a| = 3
    out = run_solver(name, ball_projection(a, 1.5))
    assert out.status == "optimal"
    np.testing.assert_allclose(out.x, a / 2.0, atol=ATOL[name])


@pytest.mark.parametrize("name", ["OSQP", "PROXQP"])
def test_qp_solvers_refuse_cones(name: str) -> None:
    out = run_solver(name, ball_lp(np.array([1.0, 0.0]), 1.0))
    assert out.status == "error" and "only QPs" in out.error


@pytest.mark.parametrize(
    ("name", "statuses"),
    [
        ("CLARABEL", {"infeasible"}),
        ("OSQP", {"infeasible"}),
        ("SCS", {"infeasible"}),
        ("PROXQP", {"infeasible"}),
    ],
)
def test_infeasible_status(name: str, statuses: set[str]) -> None:
    out = run_solver(name, infeasible_qp())
    assert out.status in statuses
    assert out.x is None


@pytest.mark.parametrize(
    ("name", "statuses"),
    [
        ("CLARABEL", {"unbounded"}),
        ("OSQP", {"unbounded"}),
        ("SCS", {"unbounded"}),
        ("PROXQP", {"unbounded", "max_iter"}),  # ProxQP does not certify unboundedness here
    ],
)
def test_unbounded_status(name: str, statuses: set[str]) -> None:
    out = run_solver(name, unbounded_lp())
    assert out.status in statuses
    assert out.x is None


def test_proxqp_contradicting_bounds_are_infeasible_at_once() -> None:
    # x0 >= 1 and x0 <= 0 are both box bounds for ProxQP, which would run to max_iter
    b = Builder(3)
    b.quad_dense(0, np.eye(3))
    b.add("nonneg", -np.eye(1), [0], [-1.0])
    b.add("nonneg", np.eye(1), [0], [0.0])
    start = time.perf_counter()
    out = run_solver("PROXQP", b.build())
    assert out.status == "infeasible"
    assert time.perf_counter() - start < 1.0


def test_proxqp_warm_started_row_bound() -> None:
    # min 1/2 |x|^2 - x0  s.t.  x0 + x1 <= u: x0 = min(1, u) for u >= 0 (x1 = 0 ... until
    # the row binds: then x0 - z = 1, x1 + z = 0 with x0 + x1 = u, so x0 = (1 + u) / 2)
    b = Builder(2)
    b.quad_dense(0, np.eye(2))
    b.lin([0], [-1.0])
    b.add("nonneg", np.array([[1.0, 1.0]]), [0, 1], [5.0])
    prog = b.build()
    dense = ProxQP(prog)
    assert dense.solve().x == pytest.approx([1.0, 0.0], abs=1e-7)
    dense.set_row_bound(0, 0.5)
    out = dense.solve()
    np.testing.assert_allclose(out.x, [0.75, -0.25], atol=1e-7)
    np.testing.assert_allclose(out.z, [0.25], atol=1e-6)
    with pytest.raises(KeyError):
        ProxQP(projection_qp()).set_row_bound(0, 1.0)  # a box row


def test_no_warnings_escape() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in QP_SOLVERS:
            assert run_solver(name, projection_qp()).status == "optimal"


# ----------------------------------------------------------------------------- run_solver


def test_run_solver_never_raises(monkeypatch) -> None:
    def boom(prog, tol):
        raise RuntimeError("kaput")

    monkeypatch.setattr("optimizer.solvers.osqp.solve", boom)
    out = run_solver("OSQP", projection_qp())
    assert (out.solver, out.status, out.error) == ("OSQP", "error", "RuntimeError: kaput")
    out = run_solver("GUROBI", projection_qp())
    assert out.status == "error" and "unknown solver 'GUROBI'" in out.error


def test_run_solver_rejects_non_finite_answers(monkeypatch) -> None:
    def nan_solver(prog, tol):
        return Outcome("SCS", "optimal", np.full(prog.A.shape[1], np.nan), None, 0.0)

    monkeypatch.setattr("optimizer.solvers.scs.solve", nan_solver)
    out = run_solver("SCS", projection_qp())
    assert (out.status, out.x, out.error) == ("error", None, "non-finite solution")


def test_workspace_is_passed_to_clarabel_only(monkeypatch) -> None:
    prog = projection_qp()
    pool = WorkspacePool(prog)
    seen = []

    def spy(prog, tol):
        seen.append(tol)
        return Outcome("OSQP", "max_iter")

    monkeypatch.setattr("optimizer.solvers.osqp.solve", spy)
    assert run_solver("OSQP", prog, workspace=pool).status == "max_iter"
    assert seen == [1e-9]
    assert run_solver("CLARABEL", prog, workspace=pool).status == "optimal"
    assert pool.created == 1


# ----------------------------------------------------------------------------- workspaces


@pytest.mark.parametrize(
    "progs",
    [
        pytest.param(budget_family(0, 30), id="qp-q-and-b"),
        pytest.param(family(budget_family(1, 1)[0], 2, 20, vary_q=False), id="qp-b-only"),
        pytest.param(family(ball_lp(np.array([3.0, -4.0, 1.0]), 2.0), 3, 20), id="socp-lp"),
        pytest.param(family(ball_projection(np.array([1.0, 2.0, -2.0]), 1.5), 4, 20), id="socp-qp"),
        pytest.param(family(unbounded_lp(), 5, 5), id="unbounded"),
    ],
)
def test_reused_workspace_equals_fresh_solver(progs: list[Program]) -> None:
    fresh = [run_solver("CLARABEL", p) for p in progs]
    ws = ClarabelWorkspace(progs[0])
    pool = WorkspacePool(progs[0])
    order = np.random.default_rng(0).permutation(len(progs))
    for i in list(order) + list(order[::-1]):
        assert_same(ws.solve(progs[i]), fresh[i], 1e-12)
        assert_same(run_solver("CLARABEL", progs[i], workspace=pool), fresh[i], 1e-12)
        assert_same(run_solver("CLARABEL", progs[i], workspace=ws), fresh[i], 1e-12)
    assert ws.solves == 4 * len(progs)
    assert {o.status for o in fresh} & {"optimal", "unbounded"}


def test_workspace_reuses_its_solver() -> None:
    qp = family(budget_family(1, 1)[0], 2, 10, vary_q=False)  # only b changes
    ws = ClarabelWorkspace(qp[0])
    for p in qp:
        ws.solve(p)
    assert ws.setups == 1
    lp = family(ball_lp(np.array([3.0, -4.0, 1.0]), 2.0), 3, 10)  # P = 0: q and b change
    ws = ClarabelWorkspace(lp[0])
    for p in lp:
        ws.solve(p)
    assert ws.setups == 1
    qps = budget_family(0, 5)  # P != 0 and a new q: a new solver (Clarabel's cost scaling)
    ws = ClarabelWorkspace(qps[0])
    for p in qps + qps[-1:]:
        ws.solve(p)
    assert ws.setups == 5


def test_workspace_checks_the_structure() -> None:
    prog = projection_qp()
    ws = ClarabelWorkspace(prog)
    other = projection_qp(np.array([0.5, -0.2, 0.9]))
    assert not ws.matches(other)
    with pytest.raises(ValueError, match="differ from the workspace's template"):
        ws.solve(other)
    # equal content, other objects: matches
    assert ws.matches(projection_qp(A_VEC * 2))
    # run_solver falls back to a fresh solver for a program of another structure or tolerance
    pool = WorkspacePool(prog)
    assert_same(run_solver("CLARABEL", other, workspace=pool), run_solver("CLARABEL", other), 0)
    looser = run_solver("CLARABEL", prog, tol=1e-6, workspace=pool)
    assert_same(looser, run_solver("CLARABEL", prog, tol=1e-6), 0)
    assert pool.created == 0


def test_pool_lends_distinct_workspaces_and_keeps_a_few() -> None:
    pool = WorkspacePool(projection_qp(), max_idle=2)
    with pool.acquire() as a, pool.acquire() as b, pool.acquire() as c:
        assert len({id(a), id(b), id(c)}) == 3
    assert (pool.created, pool.idle) == (3, 2)
    with pool.acquire() as d:
        assert d in (a, b, c)
    with pytest.raises(RuntimeError), pool.acquire():
        raise RuntimeError("a failed solve")
    assert pool.idle == 1  # the workspace of the failed block is dropped
    pool.clear()
    assert pool.idle == 0
    with pytest.raises(ValueError):
        WorkspacePool(projection_qp(), max_idle=-1)


def test_threads_share_one_pool() -> None:
    progs = budget_family(7, 50) + family(budget_family(8, 1)[0], 9, 50, vary_q=False)
    serial = [run_solver("CLARABEL", p) for p in progs]
    pool = WorkspacePool(progs[0])
    pool_b = WorkspacePool(progs[50], max_idle=8)  # room for all: never more than 8 made
    n_threads, per_thread = 8, 50
    barrier = threading.Barrier(n_threads)
    results: list[list[tuple[int, Outcome]]] = [[] for _ in range(n_threads)]

    def work(t: int) -> None:
        rng = np.random.default_rng(100 + t)
        barrier.wait()
        for _ in range(per_thread):
            i = int(rng.integers(len(progs)))
            which = pool if i < 50 else pool_b
            results[t].append((i, run_solver("CLARABEL", progs[i], workspace=which)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    outs = [pair for per in results for pair in per]
    assert len(outs) == n_threads * per_thread
    for i, out in outs:
        assert out.solver == "CLARABEL"
        assert out.error is None, out.error  # no "Already borrowed"
        assert out.status == serial[i].status
        assert_same(out, serial[i], 1e-10)
    assert sum(serial[i].status == "optimal" for i, _ in outs) > 0.8 * len(outs)
    assert all(out.status == "optimal" for i, out in outs if i >= 50)
    assert pool.created >= 1 and pool.idle <= pool.max_idle == 4
    assert 1 <= pool_b.created <= n_threads


def test_threads_sharing_one_workspace_take_turns() -> None:
    progs = family(budget_family(8, 1)[0], 9, 20, vary_q=False)
    serial = [run_solver("CLARABEL", p) for p in progs]
    ws = ClarabelWorkspace(progs[0])
    outs: list[tuple[int, Outcome]] = []

    def work(t: int) -> None:
        for k in range(20):
            i = (t + k) % len(progs)
            outs.append((i, run_solver("CLARABEL", progs[i], workspace=ws)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(outs) == 80
    for i, out in outs:
        assert_same(out, serial[i], 1e-10)
    assert ws.setups == 1


@pytest.mark.parametrize("use_first", [False, True])
def test_pool_pickles_to_an_empty_pool(use_first: bool) -> None:
    progs = budget_family(11, 6)
    pool = WorkspacePool(progs[0], max_idle=3)
    if use_first:
        for p in progs:
            pool.solve(p)
        assert pool.idle == 1
    copy = pickle.loads(pickle.dumps(pool))
    assert (copy.created, copy.idle, copy.tol, copy.max_idle) == (0, 0, 1e-9, 3)
    for p in progs:
        assert copy.matches(p)
        assert_same(copy.solve(p), run_solver("CLARABEL", p), 1e-12)
        assert_same(run_solver("CLARABEL", p, workspace=copy), pool.solve(p), 1e-12)
    assert copy.created == 1
    # a program unpickled elsewhere has equal, not identical, matrices: still a match
    far = pickle.loads(pickle.dumps(progs[2]))
    assert copy.matches(far) and pool.matches(far)
    assert_same(run_solver("CLARABEL", far, workspace=copy), run_solver("CLARABEL", progs[2]), 0)


def test_workspace_pickles_without_its_solver() -> None:
    progs = budget_family(12, 3)
    ws = ClarabelWorkspace(progs[0])
    ws.solve(progs[0])
    copy = pickle.loads(pickle.dumps(ws))
    assert (copy.solves, copy.setups) == (0, 0)
    for p in progs:
        assert_same(copy.solve(p), ws.solve(p), 0)


# ----------------------------------------------------------------------------- no module state

MUTABLE_CALLS = {"list", "dict", "set", "bytearray", "defaultdict", "OrderedDict", "deque"}
MUTABLE_TYPES = (list, dict, set, bytearray, defaultdict, OrderedDict, deque, Counter)


def solver_modules() -> list[str]:
    path = solvers.__path__
    return ["optimizer.solvers"] + [
        f"optimizer.solvers.{m.name}" for m in pkgutil.iter_modules(path)
    ]


def module_level_mutables(source: str) -> list[str]:
    """Names bound at module level to a mutable container, and ``global`` statements."""
    found = []
    tree = ast.parse(source)
    for node in tree.body:
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets, value = [node.target], node.value
        if value is None:
            continue
        mutable = isinstance(
            value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp
        ) or (
            isinstance(value, ast.Call)
            and getattr(value.func, "id", getattr(value.func, "attr", None)) in MUTABLE_CALLS
        )
        if mutable or isinstance(node, ast.AugAssign):
            found.extend(ast.unparse(t) for t in targets)
    found.extend(
        f"global {', '.join(n.names)}" for n in ast.walk(tree) if isinstance(n, ast.Global)
    )
    return found


def test_checker_finds_module_state() -> None:
    src = "A = {}\nB: list = []\nC = dict(x=1)\nD = (1, 2)\nE += 1\ndef f():\n    global D\n"
    assert module_level_mutables(src) == ["A", "B", "C", "E", "global D"]


@pytest.mark.parametrize("module", solver_modules())
def test_no_module_level_mutable_state(module: str) -> None:
    mod = importlib.import_module(module)
    assert module_level_mutables(Path(mod.__file__).read_text(encoding="utf-8")) == []
    held = {
        name: type(value).__name__
        for name, value in vars(mod).items()
        if not name.startswith("__") and isinstance(value, MUTABLE_TYPES)
    }
    assert held == {}
