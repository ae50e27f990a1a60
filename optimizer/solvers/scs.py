"""SCS (ADMM on the homogeneous self-dual embedding) for every cone of a program."""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer.program import Outcome, Program


def scs_cone(cones: list[tuple[str, int, float]]) -> dict[str, Any]:
    """SCS's cone dictionary for a program's cone list.

    Parameters
    ----------
    cones : list of (kind, size, param)
        :attr:`optimizer.program.Program.cones`, in canonical order.

    Returns
    -------
    dict
        Keys ``z`` (zero), ``l`` (non-negative), ``q`` (second-order sizes), ``ep``
        (number of exponential cones) and ``p`` (power-cone exponents).
    """
    cone: dict[str, Any] = {"z": 0, "l": 0, "q": [], "ep": 0, "p": []}
    for kind, size, param in cones:
        if kind == "zero":
            cone["z"] += size
        elif kind == "nonneg":
            cone["l"] += size
        elif kind == "soc":
            cone["q"].append(size)
        elif kind == "exp":
            cone["ep"] += 1
        elif kind == "pow":
            cone["p"].append(param)
        else:
            raise ValueError(f"unknown cone {kind!r}")
    return cone


def solve(prog: Program, tol: float) -> Outcome:
    """Solve ``prog`` with a fresh SCS solver.

    Parameters
    ----------
    prog : Program
        Any program.
    tol : float
        Absolute and relative tolerance (``eps_abs``, ``eps_rel``).

    Returns
    -------
    Outcome
        From ``SCS``, with ``x``, ``z`` (SCS's ``y``) and the primal objective when optimal.
    """
    import scs

    data = {"P": prog.P_upper, "A": prog.A, "b": prog.b, "c": prog.q}
    solver = scs.SCS(
        data, scs_cone(prog.cones), verbose=False, eps_abs=tol, eps_rel=tol, max_iters=200_000
    )
    sol = solver.solve()
    text = str(sol["info"]["status"]).lower()
    if "inaccurate" in text and "solved" in text:
        status = "optimal_inaccurate"
    elif text == "solved":
        status = "optimal"
    elif "infeasible" in text and "unbounded" not in text:
        status = "infeasible"
    elif "unbounded" in text:
        status = "unbounded"
    else:
        status = "error"
    ok = status.startswith("optimal")
    return Outcome(
        "SCS",
        status,
        np.asarray(sol["x"]) if ok else None,
        np.asarray(sol["y"]) if ok else None,
        float(sol["info"]["pobj"]) if ok else float("nan"),
    )
