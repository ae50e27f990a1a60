"""The solver chain and the analytics of a solved allocation.

:func:`solve_program` runs the chain (Clarabel, then OSQP, then SCS by
default) until an answer passes verification; :func:`make_allocation` fills
the reported figures of an :class:`~optimizer.allocation.Allocation` from
weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from optimizer.allocation import RISKLESS_RTOL, Allocation
from optimizer.errors import InputError
from optimizer.program import Outcome, Program
from optimizer.riskmodel import RiskModel
from optimizer.solvers import DEFAULT_CHAIN, KNOWN_SOLVERS, run_solver


def chain_of(solvers: Sequence[str] | None) -> tuple[str, ...]:
    """The solver chain, upper-cased and checked (default Clarabel, OSQP, SCS)."""
    if isinstance(solvers, str):
        solvers = (solvers,)
    chain = tuple(str(s).upper() for s in (solvers or DEFAULT_CHAIN))
    bad = [s for s in chain if s not in KNOWN_SOLVERS]
    if bad:
        raise InputError(f"unknown solver {bad[0]!r}; choose from {', '.join(KNOWN_SOLVERS)}")
    return chain


def solve_program(
    prog: Program,
    *,
    chain: Sequence[str],
    accept: Callable[[Outcome], bool],
    workspace=None,
) -> tuple[Outcome | None, list[Outcome]]:
    """Run the chain until ``accept(outcome)`` holds; return (winner, all outcomes).

    Stops early on a certified infeasible or unbounded status from Clarabel.
    ``workspace`` (a :class:`~optimizer.solvers.WorkspacePool` of the
    program's structure) lets Clarabel reuse its setup.
    """
    outs = []
    for name in chain:
        if name in ("OSQP", "PROXQP") and not prog.is_qp:
            continue
        out = run_solver(name, prog, workspace=workspace if name == "CLARABEL" else None)
        outs.append(out)
        if out.status.startswith("optimal"):
            if accept(out):
                return out, outs
            out.status = f"{out.status}, rejected by verification"
            continue
        if out.status in ("infeasible", "unbounded") and name == "CLARABEL":
            return None, outs
    return None, outs


def make_allocation(
    w: np.ndarray, assets: pd.Index, rm: RiskModel, mu_vec: np.ndarray | None, **fields
) -> Allocation:
    """Fill the analytics of an :class:`Allocation` from weights ``w`` (n,).

    Every figure is computed from the weights and the caller's covariance
    (never from a solver's scaled objective): ``volatility`` and
    ``risk_contributions`` annualized, in the covariance's units, and
    ``volatility_floor`` (:data:`~optimizer.allocation.RISKLESS_RTOL` times the
    root mean variance times the gross weight).
    """
    cw = rm.times(w)
    var = float(max(w @ cw, 0.0))
    vol = float(np.sqrt(var))
    rc = w * cw / vol if vol > 0 else np.zeros_like(w)
    floor = RISKLESS_RTOL * float(np.sqrt(rm.unit)) * float(np.abs(w).sum())
    return Allocation(
        weights=pd.Series(w, index=assets, name="weight"),
        expected_return=None if mu_vec is None else float(mu_vec @ w),
        volatility=vol,
        risk_contributions=pd.Series(rc, index=assets, name="risk_contribution"),
        volatility_floor=floor,
        **fields,
    )
