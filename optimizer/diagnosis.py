"""Why a policy cannot hold: cheap arithmetic first, then an elastic solve.

:func:`precheck` catches the common conflicts before any solver runs (sum of
floors above the budget, a group floor above what its members' caps allow, a
band with no room inside the bounds, an exposure out of reach, ...).
:func:`elastic` runs when a solver certifies infeasibility: it gives every
named constraint one non-negative slack and finds the smallest total
relaxation that restores feasibility (Chinneck 2008, *Feasibility and
Infeasibility in Optimization*, the elastic program), and names the
constraints that conflict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from optimizer.errors import InfeasibleError, SolverError
from optimizer.pieces import Layout, lower_pieces
from optimizer.program import Builder, Program
from optimizer.solvers import run_solver

TOL = 1e-9
#: Constraints the diagnosis prefers not to relax (they define the problem).
STRUCTURAL_WEIGHT = 10.0


def _names(names) -> str:
    names = list(dict.fromkeys(names))
    quoted = [f"'{n}'" for n in names]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _box(pieces, n: int):
    lo = np.full(n, -np.inf)
    hi = np.full(n, np.inf)
    lo_by = [None] * n
    hi_by = [None] * n
    for p in pieces:
        bx = p.box()
        if bx is None:
            continue
        i, p_lo, p_hi = bx
        if p_lo > lo[i]:
            lo[i], lo_by[i] = p_lo, p.name
        if p_hi < hi[i]:
            hi[i], hi_by[i] = p_hi, p.name
    return lo, hi, lo_by, hi_by


def linear_range(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, budget: float | None):
    """Smallest and largest ``a'w`` over the box (and the budget when given)."""
    nz = a != 0
    an, ln, hn = a[nz], lo[nz], hi[nz]
    box_min = float(np.where(an > 0, an * ln, an * hn).sum())
    box_max = float(np.where(an > 0, an * hn, an * ln).sum())
    if budget is None or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return box_min, box_max
    room = budget - lo.sum()
    if room < -TOL or hi.sum() < budget - TOL:
        return box_min, box_max

    def greedy(sign: float) -> float:
        w = lo.copy()
        left = room
        for i in np.argsort(-sign * a, kind="stable"):
            add = min(hi[i] - lo[i], left)
            w[i] += add
            left -= add
            if left <= 0:
                break
        return float(a @ w)

    return greedy(-1.0), greedy(1.0)


def precheck(pieces: Sequence, n: int, *, budget: float | None, assets=None) -> None:
    """Raise :class:`InfeasibleError` for conflicts visible by arithmetic alone."""
    lo, hi, lo_by, hi_by = _box(pieces, n)
    bad = np.flatnonzero(lo > hi + TOL)
    if bad.size:
        i = int(bad[0])
        names = [lo_by[i], hi_by[i]]
        gap = lo[i] - hi[i]
        raise InfeasibleError(
            f"{_names(names)} leave no room for {assets[i] if assets is not None else i}: "
            f"'{lo_by[i]}' needs at least {lo[i]:.4g}, '{hi_by[i]}' allows at most {hi[i]:.4g}; "
            f"relax one by {gap:.4g}",
            [
                {"name": lo_by[i], "relax_by": float(gap), "side": "min", "limit": float(lo[i])},
                {"name": hi_by[i], "relax_by": float(gap), "side": "max", "limit": float(hi[i])},
            ],
        )
    budget_name = next((p.name for p in pieces if p.kind == "budget"), "budget")
    if budget is not None:
        if np.isfinite(lo).all() and lo.sum() > budget + TOL:
            names = sorted({x for x in lo_by if x})
            gap = lo.sum() - budget
            raise InfeasibleError(
                f"the lower bounds of {_names(names)} sum to {lo.sum():.4g}, above "
                f"'{budget_name}' of {budget:.4g}: relax them by {gap:.4g} in total",
                [{"name": nm, "relax_by": float(gap), "side": "min"} for nm in names]
                + [{"name": budget_name, "relax_by": float(gap), "side": "equal"}],
            )
        if np.isfinite(hi).all() and hi.sum() < budget - TOL:
            names = sorted({x for x in hi_by if x})
            gap = budget - hi.sum()
            raise InfeasibleError(
                f"the upper bounds of {_names(names)} sum to {hi.sum():.4g}, below "
                f"'{budget_name}' of {budget:.4g}: relax them by {gap:.4g} in total",
                [{"name": nm, "relax_by": float(gap), "side": "max"} for nm in names]
                + [{"name": budget_name, "relax_by": float(gap), "side": "equal"}],
            )
    for p in pieces:
        found = p.conflict(lo, hi, budget)
        if found is not None:
            side, gap, need = found
            raise InfeasibleError(
                f"'{p.name}' of {p.limits[1]:.4g} is below the gross exposure the "
                f"'{budget_name}' of {budget:.4g} needs: relax it by {gap:.4g}",
                [{"name": p.name, "relax_by": float(gap), "side": side}],
            )
        row = None if p.box() is not None or p.kind == "budget" else p.linear(n)
        if row is None:
            continue
        coef, p_lo, p_hi = row
        low, high = linear_range(coef, lo, hi, budget)
        pos, neg = np.flatnonzero(coef > 0), np.flatnonzero(coef < 0)
        budget_part = [budget_name] if budget is not None else []
        # what caps a floor: upper bounds of positive members, lower bounds of negative ones
        caps_floor = [hi_by[i] for i in pos] + [lo_by[i] for i in neg]
        caps_cap = [lo_by[i] for i in pos] + [hi_by[i] for i in neg]
        if p_lo > high + TOL:
            limiting = list(dict.fromkeys(x for x in caps_floor if x)) + budget_part
            gap = p_lo - high
            raise InfeasibleError(
                f"'{p.name}' needs at least {p_lo:.4g} but at most {high:.4g} is reachable "
                f"within {_names(limiting)}: relax '{p.name}' by {gap:.4g}",
                [
                    {
                        "name": p.name,
                        "relax_by": float(gap),
                        "side": "min",
                        "limit": p_lo,
                        "conflicts_with": limiting,
                    }
                ],
            )
        if p_hi < low - TOL:
            limiting = list(dict.fromkeys(x for x in caps_cap if x)) + budget_part
            gap = low - p_hi
            raise InfeasibleError(
                f"'{p.name}' allows at most {p_hi:.4g} but at least {low:.4g} is forced "
                f"by {_names(limiting)}: relax '{p.name}' by {gap:.4g}",
                [
                    {
                        "name": p.name,
                        "relax_by": float(gap),
                        "side": "max",
                        "limit": p_hi,
                        "conflicts_with": limiting,
                    }
                ],
            )


def elastic_program(
    pieces: Sequence,
    base: Callable[[Builder], Layout],
    cost: Mapping[str, float],
    *,
    caps: Mapping[str, float] | None = None,
    sum_caps: Sequence[tuple[Sequence[str], float]] = (),
) -> tuple[Program, dict[str, int]]:
    """The elastic program: one slack per named constraint, relaxing it in its own units.

    Minimizes ``sum(cost[name] * s_name)`` with ``s >= 0``; the constraints
    without a slack column (names not in ``cost`` or ``caps``) stay hard.

    Parameters
    ----------
    pieces : sequence of Piece
        The constraints.
    base : callable
        Adds the problem's own variables and rows to a fresh builder (the
        weights, and in a rebalance the trades) and returns their layout.
    cost : mapping name -> float
        Objective weight of each slack; a name absent here has no slack
        unless ``caps`` gives it one.
    caps : mapping name -> float, optional
        Upper bounds on single slacks (0 holds the constraint hard).
    sum_caps : sequence of (names, total), optional
        Upper bounds on sums of slacks (a soft level held to its least
        relaxation, :mod:`optimizer.soft`).

    Returns
    -------
    (Program, dict)
        The program and the column of each slack.
    """
    b = Builder(0)
    layout = base(b)
    names = list(dict.fromkeys([*cost, *(caps or {}), *(n for grp, _ in sum_caps for n in grp)]))
    first = b.var(len(names))
    col = {nm: first + j for j, nm in enumerate(names)}
    b.add("nonneg", -np.eye(len(names)), list(col.values()), np.zeros(len(names)))
    for nm, cap in (caps or {}).items():
        b.add("nonneg", np.ones((1, 1)), [col[nm]], [cap])
    for group, total in sum_caps:
        b.add("nonneg", np.ones((1, len(group))), [col[nm] for nm in group], [total])
    slack_pieces = [p for p in pieces if p.name in col]
    hard_pieces = [p for p in pieces if p.name not in col]
    lower_pieces(b, hard_pieces, layout)
    lower_pieces(b, slack_pieces, layout, slack=col)
    b.lin([col[nm] for nm in cost], [cost[nm] for nm in cost])
    return b.build(), col


def weights_only(n: int, rm) -> Callable[[Builder], Layout]:
    """The ``base`` of an allocation's elastic program: just the weights."""

    def base(b: Builder) -> Layout:
        b.var(n)
        return Layout(n, risk=rm)

    return base


def _elastic_solve(prog: Program):
    out = run_solver("CLARABEL", prog)
    return out if out.status.startswith("optimal") else None


def elastic(
    pieces: Sequence, n: int, rm, *, attempts=(), base: Callable | None = None
) -> InfeasibleError | SolverError:
    """The smallest relaxation that makes the constraints feasible, as an error.

    Solves ``min sum_j c_j s_j`` over the problem's variables and one slack
    ``s_j >= 0`` per named constraint, each constraint relaxed by its slack
    (in its own units). Budget and long-only constraints (recognised by
    their kind) cost ``STRUCTURAL_WEIGHT`` per unit so that policy
    constraints are relaxed first.
    """
    base = base or weights_only(n, rm)
    names = list(dict.fromkeys(p.name for p in pieces))
    kind = {p.name: p.kind for p in pieces}
    structural = {nm for nm in names if kind[nm] in ("budget", "long-only")}
    cost = {nm: (STRUCTURAL_WEIGHT if nm in structural else 1.0) for nm in names}
    prog, col = elastic_program(pieces, base, cost)
    out = _elastic_solve(prog)
    if out is None:
        return InfeasibleError(
            f"the constraints {_names(names)} cannot all hold (no diagnosis could be computed)",
            [],
        )
    slack = np.array([out.x[col[nm]] for nm in names])
    if not (slack > 1e-7).any():
        return SolverError(
            "a solver reported the problem infeasible, but the elastic check finds it "
            "feasible: numerical trouble",
            attempts,
        )
    tight: dict[str, float] = defaultdict(float)
    if out.z is not None:
        for i, tag in enumerate(prog.tags):
            if tag is not None and tag.name in col and abs(out.z[i]) > 1e-6:
                tight[tag.name] = max(tight[tag.name], float(abs(out.z[i])))
    conflict = list(dict.fromkeys([names[j] for j in np.flatnonzero(slack > 1e-7)] + list(tight)))
    # How much each conflicting constraint must give if it alone is relaxed.
    alone: list[tuple[str, float]] = []
    for nm in conflict:
        caps = {other: 0.0 for other in names if other != nm}
        prog_one, col_one = elastic_program(pieces, base, {nm: 1.0}, caps=caps)
        res = _elastic_solve(prog_one)
        if res is not None:
            alone.append((nm, float(res.x[col_one[nm]])))
    alone.sort(key=lambda item: (item[0] in structural, item[1]))
    policy = [a for a in alone if a[0] not in structural] or alone
    if policy:
        fixes = ", or ".join(f"'{nm}' by {v:.4g}" for nm, v in policy)
        advice = f"relax {fixes}"
    else:
        advice = "relax " + "; ".join(
            f"'{names[j]}' by {slack[j]:.4g}" for j in np.flatnonzero(slack > 1e-7)
        )
    diag = [
        {"name": nm, "relax_by": v, "conflicts_with": [c for c in conflict if c != nm]}
        for nm, v in policy
    ] or [
        {"name": names[j], "relax_by": float(slack[j]), "conflicts_with": conflict}
        for j in np.flatnonzero(slack > 1e-7)
    ]
    err = InfeasibleError(f"{_names(conflict)} cannot all hold: {advice}", diag)
    err.attempts = list(attempts)
    return err
