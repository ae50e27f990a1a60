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
from collections.abc import Sequence

import numpy as np

from optimizer.constraints import Bound, Norm1, RiskLimit, Row
from optimizer.errors import InfeasibleError, SolverError

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
        if not isinstance(p, Bound):
            continue
        i = p.index
        if p.lo > lo[i]:
            lo[i], lo_by[i] = p.lo, p.name
        if p.hi < hi[i]:
            hi[i], hi_by[i] = p.hi, p.name
    return lo, hi, lo_by, hi_by


def _range(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, budget: float | None):
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
    budget_name = next(
        (p.name for p in pieces if isinstance(p, Row) and p.lo == p.hi and np.all(p.coef == 1)),
        "budget",
    )
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
        if isinstance(p, Norm1) and budget is not None and np.all(p.center == 0):
            if p.max < abs(budget) * float(p.scale.min()) - TOL:
                raise InfeasibleError(
                    f"'{p.name}' of {p.max:.4g} is below the gross exposure the "
                    f"'{budget_name}' of {budget:.4g} needs: relax it by {abs(budget) - p.max:.4g}",
                    [{"name": p.name, "relax_by": abs(budget) - p.max, "side": "max"}],
                )
        if not isinstance(p, Row) or p is None or p.name == budget_name:
            continue
        low, high = _range(p.coef, lo, hi, budget)
        pos, neg = np.flatnonzero(p.coef > 0), np.flatnonzero(p.coef < 0)
        budget_part = [budget_name] if budget is not None else []
        # what caps a floor: upper bounds of positive members, lower bounds of negative ones
        caps_floor = [hi_by[i] for i in pos] + [lo_by[i] for i in neg]
        caps_cap = [lo_by[i] for i in pos] + [hi_by[i] for i in neg]
        if p.lo > high + TOL:
            limiting = list(dict.fromkeys(x for x in caps_floor if x)) + budget_part
            gap = p.lo - high
            raise InfeasibleError(
                f"'{p.name}' needs at least {p.lo:.4g} but at most {high:.4g} is reachable "
                f"within {_names(limiting)}: relax '{p.name}' by {gap:.4g}",
                [
                    {
                        "name": p.name,
                        "relax_by": float(gap),
                        "side": "min",
                        "limit": p.lo,
                        "conflicts_with": limiting,
                    }
                ],
            )
        if p.hi < low - TOL:
            limiting = list(dict.fromkeys(x for x in caps_cap if x)) + budget_part
            gap = low - p.hi
            raise InfeasibleError(
                f"'{p.name}' allows at most {p.hi:.4g} but at least {low:.4g} is forced "
                f"by {_names(limiting)}: relax '{p.name}' by {gap:.4g}",
                [
                    {
                        "name": p.name,
                        "relax_by": float(gap),
                        "side": "max",
                        "limit": p.hi,
                        "conflicts_with": limiting,
                    }
                ],
            )


def elastic(pieces: Sequence, n: int, rm, *, attempts=()) -> InfeasibleError | SolverError:
    """The smallest relaxation that makes the constraints feasible, as an error.

    Solves ``min sum_j c_j s_j`` over weights and one slack ``s_j >= 0`` per
    named constraint, each constraint relaxed by its slack (in its own units).
    Budget and long-only constraints cost ``STRUCTURAL_WEIGHT`` per unit so
    that policy constraints are relaxed first.
    """
    import cvxpy as cp

    names = list(dict.fromkeys(p.name for p in pieces))
    index = {nm: j for j, nm in enumerate(names)}
    w = cp.Variable(n)
    s = cp.Variable(len(names), nonneg=True)
    cap = cp.Parameter(len(names), nonneg=True)
    cons = [s <= cap]
    owner = [None]
    for p in pieces:
        sj = s[index[p.name]]
        if isinstance(p, Bound | Row):
            expr = w[p.index] if isinstance(p, Bound) else p.coef @ w
            if np.isfinite(p.hi):
                cons.append(expr <= p.hi + sj)
                owner.append(p.name)
            if np.isfinite(p.lo):
                cons.append(expr >= p.lo - sj)
                owner.append(p.name)
        elif isinstance(p, Norm1):
            cons.append(cp.sum(cp.multiply(p.scale, cp.abs(w - p.center))) <= p.max + sj)
            owner.append(p.name)
        elif isinstance(p, RiskLimit):
            rt = rm.root_t()
            cons.append(cp.norm(rt @ (w - p.benchmark)) <= p.max + sj)
            owner.append(p.name)
    structural = np.array([nm in ("budget", "long-only") for nm in names])
    cost = np.where(structural, STRUCTURAL_WEIGHT, 1.0)
    prob = cp.Problem(cp.Minimize(cost @ s), cons)

    def run(caps: np.ndarray) -> bool:
        cap.value = caps
        try:
            prob.solve(solver=cp.CLARABEL)
        except Exception:  # the diagnosis must never hide the infeasibility itself
            return False
        return prob.status in ("optimal", "optimal_inaccurate")

    big = 1e6
    if not run(np.full(len(names), big)):
        return InfeasibleError(
            f"the constraints {_names(names)} cannot all hold (no diagnosis could be computed)",
            [],
        )
    slack = np.asarray(s.value).reshape(-1)
    if not (slack > 1e-7).any():
        return SolverError(
            "a solver reported the problem infeasible, but the elastic check finds it "
            "feasible: numerical trouble",
            attempts,
        )
    tight: dict[str, float] = defaultdict(float)
    for con, nm in zip(cons, owner, strict=True):
        dual = con.dual_value
        if nm is not None and dual is not None and float(np.max(np.abs(dual))) > 1e-6:
            tight[nm] += float(np.max(np.abs(dual)))
    conflict = list(dict.fromkeys([names[j] for j in np.flatnonzero(slack > 1e-7)] + list(tight)))
    # How much each conflicting constraint must give if it alone is relaxed.
    alone: list[tuple[str, float]] = []
    for nm in conflict:
        j = index[nm]
        caps = np.zeros(len(names))
        caps[j] = big
        if run(caps):
            alone.append((nm, float(s.value[j])))
    alone.sort(key=lambda item: (item[0] in ("budget", "long-only"), item[1]))
    policy = [a for a in alone if a[0] not in ("budget", "long-only")] or alone
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
