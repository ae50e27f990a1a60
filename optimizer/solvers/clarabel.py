"""Clarabel (interior point, every cone) with owned, re-usable workspaces.

Setting a Clarabel solver up (equilibration, symbolic factorisation of the KKT
system) is a fifth to a third of a small solve. Programs that share their
matrices and cones (a sweep of target returns, a batch of accounts) can keep
one solver and pass new data with ``DefaultSolver.update``. Such a solver is
owned by a :class:`ClarabelWorkspace` (one thread at a time) or handed out by a
:class:`WorkspacePool` (any number of threads); nothing is cached at module
level.

An answer never depends on what a solver solved before. Clarabel's Ruiz
equilibration of ``P`` and ``A`` does not depend on ``q`` or ``b``, but its cost
scaling does depend on ``q`` (it divides ``P`` and ``q`` by
``max(|q|_inf, mean column norm of P)`` unless either is zero) and ``update``
keeps the scaling of the set-up data: a solver set up with one ``q`` and
updated to another returns an answer that differs from a fresh solver's by up
to about 1e-7 at tolerance 1e-9. So every solve, fresh or re-used, follows one
recipe:

* the solver is set up from ``P``, ``A``, the cones and ``q`` (``q = 0`` when
  ``P = 0``: no cost scaling then, whatever ``q``) with ``b = 0``;
* before each solve ``b`` (and, when ``P = 0``, ``q``) is passed by ``update``,
  never at set-up: Clarabel scales set-up data at every Ruiz iteration and
  updated data once, and the two roundings differ (by up to 1e-8 in the answer
  of an ill-conditioned conic program);
* a kept solver is re-used when its set-up ``q`` is the program's ``q`` (or
  ``P = 0``); otherwise the workspace sets a new one up.

The scaled data, and therefore every iterate, are then the same bit for bit
whether the solver is new or re-used. A change of ``b`` (targets, bounds,
holdings) re-uses the solver; a change of ``q`` re-uses it for LPs and sets a
new one up for QPs and conic programs with ``P != 0``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import scipy.sparse as sp

from optimizer.program import Outcome, Program

#: Clarabel's status names and the normalised statuses of :class:`~optimizer.program.Outcome`.
STATUS: Mapping[str, str] = MappingProxyType(
    {
        "Solved": "optimal",
        "AlmostSolved": "optimal_inaccurate",
        "PrimalInfeasible": "infeasible",
        "AlmostPrimalInfeasible": "infeasible",
        "DualInfeasible": "unbounded",
        "AlmostDualInfeasible": "unbounded",
        "MaxIterations": "max_iter",
        "MaxTime": "max_iter",
        # no certificate: the iterate may be far from optimal (an unbounded LP ends here),
        # so it is a failure and the chain moves on (cvxpy maps it to SOLVER_ERROR too)
        "InsufficientProgress": "error",
        "NumericalError": "error",
    }
)

#: Clarabel caps the constants ``b`` at this value when it sets a problem up (its presolver's
#: ``infbound``); ``update`` does not, so the same cap is applied before every update.
INF_BOUND = 1e20


def settings(tol: float) -> Any:
    """Clarabel settings for a solve at tolerance ``tol`` whose data can be updated.

    Parameters
    ----------
    tol : float
        Absolute and relative duality-gap tolerance and feasibility tolerance.

    Returns
    -------
    clarabel.DefaultSettings
        Quiet, presolve off (data updates need it off).
    """
    import clarabel

    out = clarabel.DefaultSettings()
    out.verbose = False
    out.tol_gap_abs = tol
    out.tol_gap_rel = tol
    out.tol_feas = tol
    out.presolve_enable = False
    return out


def clarabel_cones(cones: list[tuple[str, int, float]]) -> list[Any]:
    """Clarabel's cone objects for a program's cone list.

    Parameters
    ----------
    cones : list of (kind, size, param)
        :attr:`optimizer.program.Program.cones`.

    Returns
    -------
    list
        ``ZeroConeT``, ``NonnegativeConeT``, ``SecondOrderConeT``, ``ExponentialConeT``
        and ``PowerConeT`` objects in the same order.
    """
    import clarabel

    out = []
    for cone, size, param in cones:
        if cone == "zero":
            out.append(clarabel.ZeroConeT(size))
        elif cone == "nonneg":
            out.append(clarabel.NonnegativeConeT(size))
        elif cone == "soc":
            out.append(clarabel.SecondOrderConeT(size))
        elif cone == "exp":
            out.append(clarabel.ExponentialConeT())
        elif cone == "pow":
            out.append(clarabel.PowerConeT(param))
        else:
            raise ValueError(f"unknown cone {cone!r}")
    return out


def outcome(sol: Any, seconds: float = 0.0) -> Outcome:
    """Read a Clarabel solution into an :class:`~optimizer.program.Outcome`.

    Parameters
    ----------
    sol : clarabel.DefaultSolution
        What ``DefaultSolver.solve()`` returned.
    seconds : float
        Wall time to record.

    Returns
    -------
    Outcome
        ``x`` and ``z`` only when the status is optimal (or optimal_inaccurate).
    """
    raw = str(sol.status).split(".")[-1]
    status = STATUS.get(raw, "error")
    ok = status.startswith("optimal")
    x = np.asarray(sol.x) if ok else None
    z = np.asarray(sol.z) if ok else None
    error = f"Clarabel status {raw}" if status == "error" else None
    return Outcome("CLARABEL", status, x, z, float(sol.obj_val), seconds=seconds, error=error)


def _same_matrix(a: sp.spmatrix, b: sp.spmatrix) -> bool:
    """True when two CSC matrices are the same object or equal entry for entry."""
    if a is b:
        return True
    if a.format != "csc" or b.format != "csc" or a.shape != b.shape or a.nnz != b.nnz:
        return False
    return (
        np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


@dataclass(frozen=True, eq=False)
class _Structure:
    """What a re-usable solver is set up from: ``P`` (upper triangle), ``A`` and the cones."""

    P_upper: sp.csc_matrix
    A: sp.csc_matrix
    cones: tuple[tuple[str, int, float], ...]
    p_is_zero: bool  # an LP: Clarabel does no cost scaling, so q never enters the set-up

    @classmethod
    def of(cls, prog: Program) -> _Structure:
        P = prog.P_upper
        cones = tuple(tuple(c) for c in prog.cones)
        return cls(P, prog.A, cones, not np.any(P.data))

    def matches(self, prog: Program) -> bool:
        return (
            _same_matrix(prog.A, self.A)
            and _same_matrix(prog.P_upper, self.P_upper)
            and len(prog.cones) == len(self.cones)
            and all(tuple(c) == d for c, d in zip(prog.cones, self.cones, strict=True))
        )


class ClarabelWorkspace:
    """One Clarabel solver for one program structure, re-used across solves.

    The solver (and Clarabel's cone objects) is built on the first :meth:`solve`
    and re-used by later ones, which pass the new ``b`` (and ``q``) by
    ``update``; when ``P != 0`` a new ``q`` sets a new solver up (see the module
    docstring: the answer must not depend on the solver's history). A workspace
    serves one thread at a time (a lock serialises concurrent calls); share a
    :class:`WorkspacePool` between threads to solve in parallel.

    Parameters
    ----------
    prog_template : Program
        Any program of the structure: its ``P``, ``A`` and cones are kept (by
        reference), its ``q``, ``b`` and tags are not.
    tol : float
        Solver tolerance (see :func:`settings`).

    Examples
    --------
    >>> ws = ClarabelWorkspace(prog)  # doctest: +SKIP
    >>> [ws.solve(prog.with_q(q)) for q in qs]  # doctest: +SKIP
    """

    def __init__(self, prog_template: Program, tol: float = 1e-9) -> None:
        self._init(_Structure.of(prog_template), tol)

    def _init(self, structure: _Structure, tol: float) -> None:
        self._structure = structure
        self.tol = float(tol)
        self._solver: Any = None
        self._q_setup: np.ndarray | None = None
        self._made: tuple | None = None  # Clarabel's cone objects and settings, made once
        # one solve at a time: a Clarabel solver used by two threads at once raises
        # "Already borrowed" (and its data could be swapped under a running solve)
        self._lock = threading.Lock()
        #: Number of solves run by this workspace.
        self.solves = 0
        #: Number of Clarabel solvers it has set up (a new one for each new ``q`` when P != 0).
        self.setups = 0

    @classmethod
    def _of_structure(cls, structure: _Structure, tol: float) -> ClarabelWorkspace:
        ws = cls.__new__(cls)
        ws._init(structure, tol)
        return ws

    def matches(self, prog: Program) -> bool:
        """True when ``prog`` has this workspace's ``P``, ``A`` and cones (same object or equal)."""
        return self._structure.matches(prog)

    def _setup(self, q: np.ndarray) -> None:
        """Set a new solver up with linear objective ``q`` (and ``b = 0``)."""
        import clarabel

        st = self._structure
        if self._made is None:
            self._made = (
                clarabel_cones(list(st.cones)),
                settings(self.tol),
                np.zeros(st.A.shape[0]),
            )
        cones, options, zeros = self._made
        solver = clarabel.DefaultSolver(st.P_upper, q, st.A, zeros, cones, options)
        if not solver.is_data_update_allowed():
            raise RuntimeError("Clarabel does not allow data updates with these settings")
        self._solver, self._q_setup = solver, q
        self.setups += 1

    def solve(self, prog: Program) -> Outcome:
        """Solve ``prog``, which has this workspace's structure, re-using the kept solver.

        Parameters
        ----------
        prog : Program
            A program whose ``P``, ``A`` and cones match the template's (see
            :meth:`matches`).

        Returns
        -------
        Outcome
            From ``CLARABEL``, the same (bit for bit) as a fresh workspace gives for
            ``prog``. Solver exceptions propagate (:func:`optimizer.solvers.run_solver`
            records them).

        Raises
        ------
        ValueError
            If ``prog`` does not match the workspace's structure.
        """
        if not self.matches(prog):
            raise ValueError("the program's P, A or cones differ from the workspace's template")
        return self._run(prog)

    def _run(self, prog: Program) -> Outcome:
        """:meth:`solve` without the structure check (``prog`` is known to match)."""
        with self._lock:
            try:
                return self._run_locked(prog)
            except BaseException:
                self._solver = self._q_setup = None  # never re-use a solver that failed
                raise

    def _run_locked(self, prog: Program) -> Outcome:
        start = time.perf_counter()
        q = np.array(prog.q, dtype=float)  # a copy: kept as the set-up q
        b = np.minimum(np.ascontiguousarray(prog.b, dtype=float), INF_BOUND)
        if self._structure.p_is_zero:
            # no cost scaling without P: one solver serves every q
            if self._solver is None:
                self._setup(np.zeros_like(q))
            self._solver.update(q=q, b=b)
        else:
            if self._solver is None or not np.array_equal(q, self._q_setup):
                self._setup(q)
            self._solver.update(b=b)
        sol = self._solver.solve()
        self.solves += 1
        return outcome(sol, time.perf_counter() - start)

    def __getstate__(self) -> dict[str, Any]:
        # the Clarabel solver is not picklable: a copy builds its own on first use
        return {"structure": self._structure, "tol": self.tol}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._init(state["structure"], state["tol"])


class WorkspacePool:
    """Thread-safe source of :class:`ClarabelWorkspace` objects for one program structure.

    Each concurrent user gets a workspace of its own for the duration of a
    ``with pool.acquire() as ws:`` block; on exit the workspace goes back to the
    pool, which keeps at most ``max_idle`` idle ones (the rest are dropped). A
    workspace whose block raised is dropped, never re-used. A pickled pool
    unpickles to an empty pool of the same template and tolerance.

    Parameters
    ----------
    prog_template : Program
        Any program of the structure (its ``P``, ``A`` and cones are kept).
    tol : float
        Solver tolerance of every workspace.
    max_idle : int
        Most idle workspaces kept for re-use.

    Examples
    --------
    >>> pool = WorkspacePool(prog)  # doctest: +SKIP
    >>> with pool.acquire() as ws:  # doctest: +SKIP
    ...     out = ws.solve(prog.with_q(q))
    """

    def __init__(self, prog_template: Program, tol: float = 1e-9, *, max_idle: int = 4) -> None:
        self._init(_Structure.of(prog_template), tol, max_idle)

    def _init(self, structure: _Structure, tol: float, max_idle: int) -> None:
        if max_idle < 0:
            raise ValueError(f"max_idle must be >= 0, got {max_idle}")
        self._structure = structure
        self.tol = float(tol)
        self.max_idle = int(max_idle)
        self._lock = threading.Lock()
        self._idle: list[ClarabelWorkspace] = []
        self._created = 0

    @property
    def created(self) -> int:
        """Number of workspaces this pool has made."""
        return self._created

    @property
    def idle(self) -> int:
        """Number of idle workspaces held now."""
        with self._lock:
            return len(self._idle)

    def matches(self, prog: Program) -> bool:
        """True when ``prog`` has the pool's ``P``, ``A`` and cones (same object or equal)."""
        return self._structure.matches(prog)

    @contextmanager
    def acquire(self) -> Iterator[ClarabelWorkspace]:
        """Lend a workspace to the caller for the ``with`` block.

        Yields
        ------
        ClarabelWorkspace
            Used by the calling thread alone until the block ends.
        """
        with self._lock:
            ws = self._idle.pop() if self._idle else None
            if ws is None:
                self._created += 1
        if ws is None:
            ws = ClarabelWorkspace._of_structure(self._structure, self.tol)
        yield ws  # an exception in the block skips the return below: the workspace is dropped
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(ws)

    def solve(self, prog: Program) -> Outcome:
        """Solve ``prog`` on a workspace of the pool (see :meth:`ClarabelWorkspace.solve`)."""
        with self.acquire() as ws:
            return ws.solve(prog)

    def clear(self) -> None:
        """Drop every idle workspace (and its solver's memory)."""
        with self._lock:
            self._idle.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {"structure": self._structure, "tol": self.tol, "max_idle": self.max_idle}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._init(state["structure"], state["tol"], state["max_idle"])


def solve(
    prog: Program,
    tol: float,
    workspace: WorkspacePool | ClarabelWorkspace | None = None,
) -> Outcome:
    """Solve ``prog`` with Clarabel.

    Parameters
    ----------
    prog : Program
        Any program.
    tol : float
        Solver tolerance.
    workspace : WorkspacePool or ClarabelWorkspace, optional
        Used when its tolerance is ``tol`` and ``prog`` matches its structure;
        otherwise (and without one) a fresh solver is set up for this call alone.
        The answer is the same either way.

    Returns
    -------
    Outcome
        From ``CLARABEL``; solver exceptions propagate.
    """
    if workspace is not None and workspace.tol == tol and workspace.matches(prog):
        return workspace.solve(prog)
    return ClarabelWorkspace(prog, tol)._run(prog)  # its own template: no check needed
