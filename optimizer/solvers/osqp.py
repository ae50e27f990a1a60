"""OSQP (ADMM) for QPs and LPs: ``lo <= A x <= u`` with the equality rows as ``lo = u``."""

from __future__ import annotations

import inspect

import numpy as np

from optimizer.program import Outcome, Program


def solve(prog: Program, tol: float) -> Outcome:
    """Solve ``prog`` with a fresh OSQP solver.

    Parameters
    ----------
    prog : Program
        A QP or LP (zero and non-negative cones only); any other cone gives an
        ``error`` outcome.
    tol : float
        Absolute and relative tolerance (``eps_abs``, ``eps_rel``); the solution is polished.

    Returns
    -------
    Outcome
        From ``OSQP``, with ``x``, ``z`` (OSQP's ``y``) and the objective when optimal.
    """
    import osqp

    if not prog.is_qp:
        return Outcome("OSQP", "error", error="OSQP takes only QPs (no cones)")
    n_eq, _ = prog.sizes()
    upper = np.array(prog.b, dtype=float)
    lower = np.full_like(upper, -np.inf)
    lower[:n_eq] = upper[:n_eq]
    solver = osqp.OSQP()
    solver.setup(
        prog.P_upper,
        prog.q,
        prog.A,
        lower,
        upper,
        verbose=False,
        eps_abs=tol,
        eps_rel=tol,
        max_iter=200_000,
        polishing=True,
    )
    # OSQP 1.x warns unless told whether a failed solve raises; the status is read below
    if "raise_error" in inspect.signature(solver.solve).parameters:
        res = solver.solve(raise_error=False)
    else:
        res = solver.solve()
    text = str(res.info.status).lower()
    if "solved inaccurate" in text:
        status = "optimal_inaccurate"
    elif "solved" in text:
        status = "optimal"
    elif "primal infeasible" in text:
        status = "infeasible"
    elif "dual infeasible" in text:
        status = "unbounded"
    elif "maximum iterations" in text:
        status = "max_iter"
    else:
        status = "error"
    ok = status.startswith("optimal")
    return Outcome(
        "OSQP",
        status,
        np.asarray(res.x) if ok else None,
        np.asarray(res.y) if ok else None,
        float(res.info.obj_val) if ok else float("nan"),
    )
