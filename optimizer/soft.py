"""Soft constraints by priority: lexicographic goal programming on the elastic program.

Every constraint takes ``priority``: None is hard (the default); 1, 2, ... are
soft levels, 1 the most important. When the hard constraints can hold but the
whole set cannot, the levels give way in order: the relaxation of level 1 is
made as small as it can be (every higher-numbered level free to give as much
as needed), then, with level 1 held to that least total, level 2's, and so on
(lexicographic goal programming; the constraint hierarchies of the Axioma and
Barra optimizers, MOSEK's feasibility repair and Gurobi's ``feasRelax`` work
the same way). So the highest-numbered level is given up first, and a level
gives only what the levels above it could not.

Each constraint relaxes by one amount in its own units (weights for bounds,
groups and bands; volatility for a tracking-error limit): every side of it
widens by that amount. The amounts of the last stage are the relaxation; the
problem is then solved with those limits, and its answer verified against
them.

References
----------
J. W. Chinneck (2008), *Feasibility and Infeasibility in Optimization*,
Springer (the elastic program). J. P. Ignizio (1976), *Goal Programming and
Extensions* (lexicographic goal programming).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from optimizer import diagnosis
from optimizer.errors import SolverError
from optimizer.pieces import Piece, Point, violation
from optimizer.program import Builder
from optimizer.solvers import run_solver

#: A level's least total relaxation is held to within this, relative; a level whose least
#: total is below ``AMOUNT_TOL`` is held to zero (it gave nothing).
LEVEL_TOL = 1e-9
#: Relaxations below this (in the constraint's own units) count as none.
AMOUNT_TOL = 1e-8


def has_soft(pieces: Sequence[Piece]) -> bool:
    """True when some piece has a priority."""
    return any(p.priority is not None for p in pieces)


def hard(pieces: Sequence[Piece]) -> list[Piece]:
    """The pieces without a priority."""
    return [p for p in pieces if p.priority is None]


def relaxation(
    pieces: Sequence[Piece], base: Callable[[Builder], object], *, n: int, risk
) -> dict[str, float]:
    """The least relaxation of the soft constraints, level by level.

    Parameters
    ----------
    pieces : sequence of Piece
        Hard and soft pieces of the problem.
    base : callable
        Adds the problem's variables and structural rows to a builder and
        returns their :class:`~optimizer.pieces.Layout`.
    n, risk
        Number of weights and the risk model (for the diagnosis).

    Returns
    -------
    dict
        Constraint name -> amount (> 0, own units) for every soft constraint
        that must give.

    Raises
    ------
    InfeasibleError
        When the hard constraints alone cannot hold (with the diagnosis).
    SolverError
        When a stage cannot be solved.
    """
    soft = [p for p in pieces if p.priority is not None]
    levels = sorted({p.priority for p in soft})
    names_at = {
        lvl: list(dict.fromkeys(p.name for p in soft if p.priority == lvl)) for lvl in levels
    }
    every = [nm for lvl in levels for nm in names_at[lvl]]
    held: list[tuple[list[str], float]] = []
    x = col = None
    for lvl in levels:
        cost = {nm: (1.0 if nm in names_at[lvl] else 0.0) for nm in every}
        prog, col = diagnosis.elastic_program(pieces, base, cost, sum_caps=held)
        out = run_solver("CLARABEL", prog)
        if not out.status.startswith("optimal"):
            if out.status == "infeasible" and not held:
                raise _hard_infeasible(pieces, base, n, risk)
            raise SolverError(
                f"the relaxation of soft constraints at priority {lvl} could not be solved",
                [out.attempt()],
            )
        total = float(sum(max(out.x[col[nm]], 0.0) for nm in names_at[lvl]))
        held.append((names_at[lvl], 0.0 if total <= AMOUNT_TOL else total * (1.0 + LEVEL_TOL)))
        x = out.x
    return {nm: float(x[col[nm]]) for nm in every if x[col[nm]] > AMOUNT_TOL}


def _hard_infeasible(pieces, base, n, risk):
    """The diagnosis of the hard constraints alone (they conflict whatever the soft ones do)."""
    err = diagnosis.elastic(hard(pieces), n, risk, base=base)
    return err


def widen(pieces: Sequence[Piece], amounts: dict[str, float]) -> list[Piece]:
    """The pieces with each relaxed constraint's limits widened by its amount."""
    return [p.widened(amounts[p.name]) if p.name in amounts else p for p in pieces]


def report(pieces: Sequence[Piece], amounts: dict[str, float], at: Point) -> tuple[dict, ...]:
    """``relaxed`` entries ``{"name", "priority", "amount"}``, highest priority number first.

    ``amount`` is how far the answer ``at`` goes past the constraint's original
    limits (its own units): at most the relaxation allowed, and a constraint
    the answer ends up keeping after all is not listed.
    """
    priority = {p.name: p.priority for p in pieces}
    realized: dict[str, float] = {}
    for p in pieces:
        if p.name in amounts:
            realized[p.name] = max(realized.get(p.name, 0.0), violation(p, at)[0])
    out = [
        {"name": nm, "priority": priority[nm], "amount": amt}
        for nm, amt in realized.items()
        if amt > AMOUNT_TOL
    ]
    return tuple(sorted(out, key=lambda d: (-d["priority"], d["name"])))
