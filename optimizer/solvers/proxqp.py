"""ProxQP's dense backend for QPs, held for warm-started re-solves (frontier sweeps)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from optimizer.program import Outcome, Program

#: What ProxQP takes as an infinite bound.
_BIG = 1e20


class ProxQP:
    """A program held by ProxQP's dense backend, for warm-started re-solves.

    Inequality rows with a single non-zero become box constraints on their
    variable (ProxQP handles those cheaply); the others stay general rows.
    ``set_row_bound(row, value)`` changes the constant of one row of the
    program (say a target return) before the next ``solve()``, which starts
    from the previous solution (Bambade et al. 2022, "PROX-QP: Yet another
    quadratic programming solver for robotics and beyond").

    Parameters
    ----------
    prog : Program
        A QP or LP (zero and non-negative cones only).
    tol : float
        Absolute tolerance (``eps_abs``; ``eps_rel`` is 0).
    """

    def __init__(self, prog: Program, tol: float = 1e-9) -> None:
        import proxsuite

        self.prog = prog
        n_eq, n_in = prog.sizes()
        nx = prog.A.shape[1]
        A = prog.A.tocsr()
        ineq = A[n_eq:]
        counts = np.diff(ineq.indptr)
        single = np.flatnonzero(counts == 1)
        general = np.flatnonzero(counts != 1)
        #: (row, variable, coefficient) of every single-entry inequality row.
        self.box_rows: list[tuple[int, int, float]] = []
        for r in single:
            var = int(ineq.indices[ineq.indptr[r]])
            coef = float(ineq.data[ineq.indptr[r]])
            self.box_rows.append((n_eq + int(r), var, coef))
        self.general = general
        self.n_eq, self.n_in = n_eq, n_in
        self.b = np.array(prog.b, dtype=float)
        self._fill_box(np.full(nx, -_BIG), np.full(nx, _BIG))
        # single-variable rows that contradict each other (lo > hi): ProxQP does not detect
        # this and runs to max_iter (minutes on a 3-variable problem), so it is answered here
        self.box_conflict = bool(np.any(self.lo_box > self.hi_box + max(tol, 1e-12)))
        qp = proxsuite.proxqp.dense.QP(nx, n_eq, len(general), True)
        qp.settings.eps_abs = tol
        qp.settings.eps_rel = 0.0
        qp.settings.verbose = False
        qp.settings.max_iter = 100_000
        # ProxQP may keep views of what it is given: hold every array on self
        self._data = (
            np.ascontiguousarray(prog.P.toarray()),
            np.ascontiguousarray(prog.q, dtype=float),
            np.ascontiguousarray(A[:n_eq].toarray()) if n_eq else None,
            np.ascontiguousarray(self.b[:n_eq]) if n_eq else None,
            np.ascontiguousarray(ineq[general].toarray()) if len(general) else None,
            np.full(len(general), -_BIG) if len(general) else None,
            np.ascontiguousarray(self.b[n_eq:][general]) if len(general) else None,
            self.lo_box,
            self.hi_box,
        )
        qp.init(*self._data)
        self.qp = qp
        self.row_of_general = {n_eq + int(r): j for j, r in enumerate(general)}
        self.box_of_row = {row: (var, coef) for row, var, coef in self.box_rows}

    def _fill_box(self, lo_box: np.ndarray, hi_box: np.ndarray) -> None:
        for row, var, coef in self.box_rows:
            bound = self.b[row] / coef
            if coef > 0:
                hi_box[var] = min(hi_box[var], bound)
            else:
                lo_box[var] = max(lo_box[var], bound)
        self.lo_box, self.hi_box = lo_box, hi_box

    def set_row_bound(self, row: int, value: float) -> None:
        """Set ``b[row]`` (an inequality row of a general constraint) for the next solve.

        Raises
        ------
        KeyError
            If ``row`` is not a general inequality row (a box or equality row).
        """
        if row not in self.row_of_general:
            raise KeyError(f"row {row} is not a general inequality row")
        self.b[row] = value
        self._u = np.ascontiguousarray(self.b[self.n_eq :][self.general])
        self.qp.update(u=self._u, update_preconditioner=False)

    def solve(self) -> Outcome:
        """Solve, warm-started from the previous solution after the first call.

        Returns
        -------
        Outcome
            From ``PROXQP``, with duals on the program's rows when optimal;
            ``infeasible`` at once when two single-variable rows contradict each other.
        """
        import proxsuite

        if self.box_conflict:
            return Outcome("PROXQP", "infeasible")
        start = time.perf_counter()
        self.qp.solve()
        # warm start from here on (asking for it before a first result crashes ProxQP 0.8)
        self.qp.settings.initial_guess = (
            proxsuite.proxqp.InitialGuess.WARM_START_WITH_PREVIOUS_RESULT
        )
        out = proxqp_outcome(self.qp, self.prog, time.perf_counter() - start)
        if out.x is not None:
            out.z = self._duals()
        return out

    def _duals(self) -> np.ndarray:
        """Duals on the program's rows (non-negative on inequality rows)."""
        res = self.qp.results
        z = np.zeros(self.prog.A.shape[0])
        # ProxQP's stationarity is Hx + g + A'y + C'z = 0, the same convention as the
        # chain's solvers (Px + q + A'z = 0): its equality duals are ours as they are
        z[: self.n_eq] = np.asarray(res.y)
        zin = np.asarray(res.z)
        ng = len(self.general)
        z[self.n_eq + self.general] = np.maximum(zin[:ng], 0.0)
        zbox = zin[ng:]
        for row, var, coef in self.box_rows:
            # ProxQP's box dual is positive at the upper bound, negative at the lower; it
            # prices the bound x <= b/coef, so the row coef * x <= b gets it divided by |coef|
            val = zbox[var] if coef > 0 else -zbox[var]
            z[row] = max(val, 0.0) / abs(coef)
        return z


def proxqp_outcome(qp: Any, prog: Program, seconds: float = 0.0) -> Outcome:
    """Read a solved ProxQP problem into an :class:`~optimizer.program.Outcome`.

    Parameters
    ----------
    qp : proxsuite.proxqp.dense.QP
        A problem after ``solve()``.
    prog : Program
        The program it holds (for the objective value).
    seconds : float
        Wall time to record.

    Returns
    -------
    Outcome
        From ``PROXQP``; ``z`` is left to the caller (see :class:`ProxQP`).
    """
    text = str(qp.results.info.status)
    if text.endswith("PROXQP_SOLVED"):
        status = "optimal"
    elif "PRIMAL_INFEASIBLE" in text:
        status = "infeasible"
    elif "DUAL_INFEASIBLE" in text:
        status = "unbounded"
    elif "MAX_ITER" in text:
        status = "max_iter"
    elif "CLOSEST" in text:
        status = "infeasible"
    else:
        status = "error"
    if not status.startswith("optimal"):
        return Outcome("PROXQP", status, seconds=seconds)
    x = np.array(qp.results.x)
    obj = 0.5 * x @ (prog.P @ x) + prog.q @ x
    return Outcome("PROXQP", status, x, None, float(obj), seconds=seconds)


def solve(prog: Program, tol: float) -> Outcome:
    """Solve ``prog`` once with a fresh :class:`ProxQP`.

    Parameters
    ----------
    prog : Program
        A QP or LP; any other cone gives an ``error`` outcome.
    tol : float
        Absolute tolerance.

    Returns
    -------
    Outcome
        From ``PROXQP``.
    """
    if not prog.is_qp:
        return Outcome("PROXQP", "error", error="ProxQP takes only QPs (no cones)")
    return ProxQP(prog, tol).solve()
