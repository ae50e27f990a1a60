"""Solver adapters: one module per solver, each turning a :class:`~optimizer.program.Program`
into an :class:`~optimizer.program.Outcome` with a normalised status.

=========  ==========================  =========================================
name       module                      takes
=========  ==========================  =========================================
CLARABEL   :mod:`.clarabel`            every cone; interior point; re-usable
                                       workspaces (:class:`WorkspacePool`)
OSQP       :mod:`.osqp`                QPs and LPs; ADMM
SCS        :mod:`.scs`                 every cone; ADMM
PROXQP     :mod:`.proxqp`              QPs and LPs; dense, warm-startable
                                       (:class:`ProxQP`, for sweeps)
=========  ==========================  =========================================

Each module has ``solve(prog, tol)`` (Clarabel's also takes ``workspace=``);
:func:`run_solver` looks it up by name at call time, times it and turns any
exception into an ``error`` outcome. Nothing here holds state at module level:
a solver re-used across solves is owned by a :class:`ClarabelWorkspace` or a
:class:`WorkspacePool` the caller holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from optimizer.program import Outcome, Program
from optimizer.solvers import clarabel, osqp, proxqp, scs
from optimizer.solvers.clarabel import ClarabelWorkspace, WorkspacePool
from optimizer.solvers.proxqp import ProxQP, proxqp_outcome

#: The solvers tried in turn when the caller names none.
DEFAULT_CHAIN: tuple[str, ...] = ("CLARABEL", "OSQP", "SCS")
#: Every solver name :func:`run_solver` takes.
KNOWN_SOLVERS: tuple[str, ...] = ("CLARABEL", "OSQP", "SCS", "PROXQP")

__all__ = (
    "DEFAULT_CHAIN",
    "KNOWN_SOLVERS",
    "ClarabelWorkspace",
    "ProxQP",
    "WorkspacePool",
    "adapter",
    "proxqp_outcome",
    "run_solver",
)


def adapter(name: str) -> Callable[..., Outcome]:
    """The ``solve`` function of the module of solver ``name``, looked up now.

    Parameters
    ----------
    name : str
        One of :data:`KNOWN_SOLVERS`.

    Returns
    -------
    callable
        ``optimizer.solvers.<name>.solve``; replacing that attribute (for example with
        ``monkeypatch.setattr``) changes what :func:`run_solver` calls.

    Raises
    ------
    ValueError
        For a name not in :data:`KNOWN_SOLVERS`.
    """
    modules = {"CLARABEL": clarabel, "OSQP": osqp, "SCS": scs, "PROXQP": proxqp}
    if name not in modules:
        raise ValueError(f"unknown solver {name!r}; choose from {', '.join(KNOWN_SOLVERS)}")
    return modules[name].solve


def run_solver(
    name: str,
    prog: Program,
    *,
    tol: float = 1e-9,
    workspace: WorkspacePool | ClarabelWorkspace | None = None,
) -> Outcome:
    """Solve ``prog`` with one solver; never raises, times the call.

    Parameters
    ----------
    name : str
        One of :data:`KNOWN_SOLVERS` (upper case).
    prog : Program
        The program.
    tol : float
        Solver tolerance.
    workspace : WorkspacePool or ClarabelWorkspace, optional
        Clarabel solves on it when its tolerance is ``tol`` and ``prog`` has its
        structure, and on a fresh solver otherwise; the answer is the same either
        way. Other solvers ignore it. Threads sharing a :class:`ClarabelWorkspace`
        take turns; threads sharing a :class:`WorkspacePool` solve in parallel.

    Returns
    -------
    Outcome
        With ``seconds`` set to the wall time of the call. A solver exception
        (or an unknown name) becomes an ``error`` outcome whose ``error`` is
        ``"<ExceptionType>: <message>"``; an optimal answer with a non-finite
        entry becomes an ``error`` outcome too.
    """
    start = time.perf_counter()
    try:
        solve = adapter(name)
        if workspace is not None and name == "CLARABEL":
            out = solve(prog, tol, workspace=workspace)
        else:
            out = solve(prog, tol)
    except Exception as exc:  # a solver's own failure is recorded, never leaked
        out = Outcome(name, "error", error=f"{type(exc).__name__}: {exc}")
    out.seconds = time.perf_counter() - start
    if out.x is not None and not np.isfinite(out.x).all():
        out.status, out.x, out.z = "error", None, None
        out.error = "non-finite solution"
    return out
