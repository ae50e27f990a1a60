"""Risk parity and risk budgeting portfolios.

A portfolio ``w`` (n) with covariance ``C`` (n x n) has volatility
``sigma = sqrt(w'Cw)`` and Euler risk contributions ``RC_i = w_i (Cw)_i / sigma``,
which sum to ``sigma``. Risk budgeting asks for ``RC_i = b_i sigma`` with
positive budgets ``b`` summing to one; risk parity (equal risk contribution)
is ``b_i = 1/n``.

Unconstrained (fully invested, long-only) the answer is unique and follows
from the strictly convex problem (Spinu 2013; Roncalli 2013)::

    minimize_x  1/2 x'Cx - sum_i b_i log x_i      over x > 0

whose stationarity condition ``x_i (Cx)_i = b_i`` is exactly the budget
condition; ``w = x / sum(x)``. :func:`risk_parity` solves it by Newton's
method with backtracking, from an inverse-volatility start improved by a few
vectorized Jacobi sweeps; the Newton systems with the Hessian
``C + diag(b / x^2)`` are solved by Cholesky (small n), by
diagonally-preconditioned conjugate gradients (large n: a handful of O(n^2)
products) or by the Woodbury identity (factor covariances). Three to eight
steps reach a relative risk-contribution error of about 1e-15 on typical
covariances.

With a policy's constraints (bounds, groups, bands, exposures, ...) exact
budgets are in general impossible. The constrained problem is the same log
barrier over the cone spanned by the feasible weights, solved by the convex
core as an exponential-cone program in homogenized form (the constraints hold
exactly for the normalized weights), then polished by Newton's method on the
face of the constraints that bind. The result carries a note when the
realized risk shares differ from the budgets.

References
----------
F. Spinu (2013), "An algorithm for computing risk parity weights", SSRN 2297383.
T. Roncalli (2013), *Introduction to Risk Parity and Budgeting*, Chapman & Hall.
S. Boyd and L. Vandenberghe (2004), *Convex Optimization*, sections 9.5 (Newton's
method, backtracking) and 10.2 (equality-constrained Newton).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from models._spinu import (
    _face_newton,
    _Hessian,
    _Newton,
    _spinu_newton,
)
from optimizer.allocation import Allocation
from optimizer.compiled import Compiled
from optimizer.constraints import Budget, LongOnly
from optimizer.errors import InputError, SolverError
from optimizer.objective import Objective, risk_unit
from optimizer.pieces import Point
from optimizer.riskmodel import RiskModel
from optimizer.terms import LogBarrierTerm
from optimizer.universe import Universe
from optimizer.validation import is_real, vector

__all__ = ["compile", "risk_parity"]

#: The Newton path's answer is accepted when the relative risk-contribution
#: spread ``max_i |RC_i / (b_i sigma) - 1|`` is at most this (or ``tol``).
ACCEPT_SPREAD = 1e-10
#: On the constrained path, realized risk shares further than this (relative)
#: from the budgets are reported in a note.
BUDGET_NOTE_TOL = 1e-6
# ----------------------------------------------------------------------------- validation


#: Smallest risk budget, relative to the largest, that float64 arithmetic can honour.
BUDGET_FLOOR = 1e-12


def _budget_vector(budgets, assets: pd.Index) -> np.ndarray:
    """Budgets as a positive vector in ``assets`` order, summing to one."""
    n = len(assets)
    if budgets is None:
        return np.full(n, 1.0 / n)
    if isinstance(budgets, Mapping) and not isinstance(budgets, pd.Series):
        budgets = pd.Series(dict(budgets), dtype=object)
    if not isinstance(budgets, pd.Series):
        raise InputError(
            f"budgets must be a pandas Series or a mapping asset -> positive number, "
            f"got {type(budgets).__name__}"
        )
    text = [str(a) for a, v in budgets.items() if not is_real(v)]
    if text:  # "0.2" reads as a number but is text
        raise InputError(
            f"budgets must be numbers (asset -> positive number); not for: {', '.join(text)}"
        )
    b = vector(budgets.astype(float), assets, what="budgets")
    bad = assets[b <= 0]
    if len(bad):
        shown = ", ".join(f"{a} ({v:g})" for a, v in zip(bad, b[b <= 0], strict=True))
        raise InputError(f"budgets must be positive; zero or negative for: {shown}")
    tiny = assets[b < BUDGET_FLOOR * b.max()]
    if len(tiny):
        shown = ", ".join(
            f"{a} ({v:g})" for a, v in zip(tiny, b[b < BUDGET_FLOOR * b.max()], strict=True)
        )
        raise InputError(
            f"budgets below {BUDGET_FLOOR:g} of the largest cannot be met in floating point: "
            f"{shown}; give them a larger budget or leave the assets out"
        )
    return b / b.sum()


def _check_options(tol, max_iter) -> tuple[float, int]:
    try:
        tol_f = float(tol)
    except (TypeError, ValueError):
        raise InputError(f"tol must be a positive number, got {tol!r}") from None
    if isinstance(tol, bool) or not (math.isfinite(tol_f) and tol_f > 0):
        raise InputError(f"tol must be a positive number, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise InputError(f"max_iter must be a positive integer, got {max_iter!r}")
    return tol_f, int(max_iter)


def _check_variances(diag: np.ndarray, assets: pd.Index) -> None:
    scale = float(diag.max()) if len(diag) else 0.0
    bad = assets[diag <= 1e-14 * max(scale, 1e-300)]
    if len(bad):
        raise InputError(
            "risk budgeting needs a positive variance for every asset; zero variance for "
            f"{', '.join(map(str, bad))} (its risk contribution is zero at any weight): "
            "drop it or hold it outside the risk-budgeted sleeve"
        )


# ----------------------------------------------------------------------------- helpers


def _objective_value(y: np.ndarray, rm: RiskModel, b: np.ndarray) -> float:
    """``1/2 y'Cy - b' log y``: the value both paths minimize."""
    return 0.5 * rm.variance(y) - float(b @ np.log(y))


def _shares(alloc: Allocation) -> np.ndarray:
    rc = alloc.risk_contributions.to_numpy(dtype=float)
    return rc / alloc.volatility if alloc.volatility > 0 else np.full(len(rc), np.nan)


def _check_hedge(alloc: Allocation, diag: np.ndarray) -> None:
    """Raise when the answer has (numerically) no risk: the barrier problem is unbounded.

    ``1/2 y'Cy - b' log y`` has no minimum when some feasible long-only
    direction ``d`` has ``Cd = 0``: the assets hedge each other perfectly.
    """
    if alloc.volatility > 1e-7 * math.sqrt(float(diag.max())):
        return
    w = alloc.weights
    held = w.index[w.to_numpy(dtype=float) > 1e-6 * float(w.abs().max())]
    raise InputError(
        "risk budgets are undefined: a long-only portfolio of "
        f"{', '.join(map(str, held))} has zero volatility under cov (the assets hedge each "
        "other perfectly), so the risk shares cannot be set; check cov for a singular "
        "block or drop one side of the hedge"
    )


def _max_gap(alloc: Allocation, b: np.ndarray) -> float:
    gap = np.abs(_shares(alloc) / b - 1.0)
    return float(np.max(gap)) if np.isfinite(gap).all() else math.inf


def _newton_allocation(res: _Newton, hess, b, total, cm: Compiled, seconds) -> Allocation:
    """The Allocation of a Newton solution ``w = total x / sum(x)``."""
    w = total * res.x / res.x.sum()
    attempt = {
        "solver": "NEWTON",
        "status": "optimal" if res.converged else "stalled",
        "seconds": round(seconds, 6),
        "iterations": res.iterations,
        "spread": res.spread,
        "factorizations": hess.factorizations,
        "cg_iterations": hess.cg_iterations,
    }
    return cm.allocation(
        w,
        None,
        status="optimal",
        solver="NEWTON",
        attempts=(attempt,),
        binding=cm.checker.binding_sides(Point(w, risk=cm.risk)),
        timings={},
        objective=_objective_value(res.x, cm.risk, b),
        notes=(),
    )


def _polished(alloc: Allocation, hess, b, cm: Compiled, total) -> Allocation:
    """The core's answer, polished by :func:`_polish` when that verifies."""
    tp = time.perf_counter()
    polished = _polish(alloc, hess, b, cm, total)
    if polished is None:
        return alloc
    wn, value = polished
    seconds = time.perf_counter() - tp
    return cm.allocation(
        wn,
        None,
        status=alloc.status,
        solver=f"{alloc.solver}+NEWTON",
        attempts=alloc.attempts
        + ({"solver": "NEWTON", "status": "polished", "seconds": round(seconds, 6)},),
        binding=cm.checker.binding_sides(Point(wn, risk=cm.risk)),
        timings={**alloc.timings, "other": alloc.timings.get("other", 0.0) + seconds},
        objective=value,
        notes=alloc.notes,
        relaxed=alloc.relaxed,
    )


def _budget_note(alloc: Allocation, b: np.ndarray) -> str | None:
    share = _shares(alloc)
    gap = share / b - 1.0
    i = int(np.nanargmax(np.abs(gap)))
    if abs(gap[i]) <= BUDGET_NOTE_TOL:
        return None
    return (
        "the constraints make the exact risk budgets impossible: the largest gap is "
        f"{alloc.weights.index[i]}, with {100 * share[i]:.6g}% of the risk against a budget "
        f"of {100 * b[i]:.6g}% ({100 * gap[i]:+.3g}% relative)"
    )


def _linear_face(rows, w: np.ndarray, total: float, tol: float):
    """Rows ``m`` with ``m'y <= 0`` (``ineq``) or ``m'y = 0`` (``eq``) binding at ``w``.

    A linear constraint ``lo <= a'w <= hi`` on ``w = total y / 1'y`` reads
    ``total a'y <= hi 1'y``: homogeneous in ``y``. ``rows`` are the linear
    views ``(a, lo, hi)`` of the pieces.
    """
    ineq, eq = [], []
    for a, lo, hi in rows:
        v = float(a @ w)
        scale = max(1.0, abs(lo) if np.isfinite(lo) else 0.0, abs(hi) if np.isfinite(hi) else 0.0)
        if lo == hi:
            row = total * a - hi
            if np.linalg.norm(row) > 1e-12:  # the budget itself is 0 = 0
                eq.append(row)
            continue
        if hi - v <= tol * scale:
            ineq.append(total * a - hi)
        if v - lo <= tol * scale:
            ineq.append(-(total * a - lo))
    return ineq, eq


def _polish(
    alloc: Allocation,
    hess: _Hessian,
    b: np.ndarray,
    cm: Compiled,
    total: float,
) -> tuple[np.ndarray, float] | None:
    """Newton on the binding face of the conic solution; None unless it verifies.

    The polished point is kept only if every constraint still verifies, the
    Karush-Kuhn-Tucker multipliers of the binding inequalities are
    non-negative (checked by non-negative least squares) and the objective is
    no worse than the conic solver's.
    """
    w = alloc.weights.to_numpy(dtype=float)
    if (w <= 0).any():
        return None
    rm, n = cm.risk, len(w)
    pt = Point(w, risk=rm)
    views = [(p, p.linear(n)) for p in cm.cset.pieces]
    for p, view in views:  # a binding turnover, leverage or tracking-error limit: no face
        if view is None:
            _, hi = p.limits
            if hi - p.value(pt) <= 1e-5 * max(1.0, abs(hi)):
                return None
    ineq, eq = _linear_face([v for _, v in views if v is not None], w, total, 1e-6)
    rows = np.array(ineq + eq).reshape(-1, n)
    if len(rows):
        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        _, sv, vt = np.linalg.svd(rows, full_matrices=True)
        rank = int((sv > 1e-10 * sv[0]).sum()) if len(sv) else 0
        basis = vt[rank:].T
    else:
        basis = np.eye(n)
    if basis.shape[1] == 0:
        return None
    y0 = w * math.sqrt(1.0 / max(rm.variance(w), 1e-300))
    y = _face_newton(hess, b, y0, basis)
    if y is None or not np.isfinite(y).all() or (y <= 0).any():
        return None
    wn = total * y / y.sum()
    if not cm.checker.ok(Point(wn, risk=rm)):
        return None
    if ineq:
        g = rm.times(y) - b / y
        a_ineq = np.array(ineq).T
        a_eq = np.array(eq).reshape(-1, n).T
        mat = np.hstack([a_ineq, a_eq, -a_eq])
        _, resid = nnls(mat, -g, maxiter=50 * mat.shape[1])
        if resid > 1e-7 * max(1.0, float(np.linalg.norm(b / y))):
            return None
    value = _objective_value(y, rm, b)
    if math.isfinite(alloc.objective) and value > alloc.objective + 1e-9 * max(
        1.0, abs(alloc.objective)
    ):
        return None
    return wn, value


# ----------------------------------------------------------------------------- public


def risk_parity(
    cov: pd.DataFrame,
    budgets: pd.Series | Mapping[str, float] | None = None,
    *,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    tol: float = 1e-12,
    max_iter: int = 50,
) -> Allocation:
    """Risk-parity (equal risk contribution) or risk-budgeting weights.

    Parameters
    ----------
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Annualized covariance of returns (decimals), labelled by asset on
        both axes; validated (finite, symmetric, positive semidefinite).
        Every asset needs a positive variance.
    budgets : pandas.Series or mapping asset -> float, optional
        Risk budget of every asset of ``cov`` (positive; normalized to sum to
        one). None gives equal risk, ``1/n`` each.
    constraints : list, optional
        Constraint objects of :mod:`optimizer.constraints`. ``Budget(1)`` and
        long-only apply by default. With only a budget and long-only the
        exact answer is computed by Newton's method; with more it comes from
        the convex core (see Notes).
    universe : Universe, optional
        Needed when constraints use tags; its assets must match ``cov``'s.
    solvers : sequence of str, optional
        Solver chain of the convex core (constrained path), default Clarabel,
        OSQP, SCS; validated on every path.
    tol : float
        Target relative risk-contribution spread
        ``max_i |RC_i / (b_i sigma) - 1|`` of Newton's method. Its answer is
        accepted when the spread is at most ``max(tol, 1e-10)``; otherwise
        (no convergence in ``max_iter`` steps, or a covariance so
        ill-conditioned that rounding stalls the iterations) the convex core
        solves the problem too, the answer closer to the budgets is returned
        and a note gives both spreads.
    max_iter : int
        Most Newton steps (3 to 8 are typical).

    Returns
    -------
    Allocation
        ``weights`` (positive, summing to the budget), ``volatility``
        (annualized), ``risk_contributions`` (sum to the volatility;
        ``risk_contributions / volatility`` are the realized risk shares),
        ``solver`` (``"NEWTON"`` on the exact path; the core's solver, with
        ``"+NEWTON"`` when its answer was polished, otherwise), ``checks``
        (every constraint verified), ``objective`` (the value of
        ``1/2 y'Cy - b' log y`` at the minimizer ``y`` proportional to the
        weights: the same on both paths), ``notes``.

    Raises
    ------
    InputError
        Bad covariance, budgets (missing, unknown, zero or negative: named),
        universe, ``tol``, ``max_iter`` or solver names; an asset with zero
        variance; a budget that is not positive; a covariance under which a
        long-only portfolio has zero volatility (perfect hedge: no solution).
    InfeasibleError
        The constraints cannot all hold (diagnosed by the core).
    SolverError
        Every solver of the chain failed (constrained path).

    Notes
    -----
    Unconstrained, the weights solve ``x_i (Cx)_i = b_i`` through Spinu's
    convex problem ``min 1/2 x'Cx - b' log x``, ``w = x / sum(x)``. With
    constraints the same barrier is minimized over the cone
    ``{y = t w : t >= 0, w feasible}`` (``Objective(homogenize=True)``), so
    the constraints hold exactly for ``w = y / t``. When the unconstrained
    solution already satisfies every constraint it is returned as is (it is
    then optimal for the constrained problem too). Otherwise the conic
    solution (accurate to about 1e-6 in the risk shares) is polished by
    Newton's method on the face of the binding linear constraints and kept
    only if it verifies. When the realized risk shares differ from the
    budgets by more than 1e-6 (relative), a note names the asset with the
    largest gap. Weights are always positive: the log barrier keeps every
    asset in the portfolio.

    References
    ----------
    F. Spinu (2013), "An algorithm for computing risk parity weights",
    SSRN 2297383. T. Roncalli (2013), *Introduction to Risk Parity and
    Budgeting*. E. Qian (2005), "Risk parity portfolios", PanAgora.

    Examples
    --------
    >>> import pandas as pd
    >>> ids = ["EQ", "BD"]
    >>> cov = pd.DataFrame([[0.04, 0.0], [0.0, 0.01]], index=ids, columns=ids)
    >>> risk_parity(cov).weights.round(4).tolist()
    [0.3333, 0.6667]
    """
    tol, max_iter = _check_options(tol, max_iter)
    # no content cache here: the Newton path compiles no program, so a cached problem would
    # save only the covariance's validation, and hashing the matrix costs about as much
    cm = Compiled(cov, constraints=constraints, universe=universe, solvers=solvers)
    return _solve_risk_parity(cm, budgets=budgets, tol=tol, max_iter=max_iter)


def compile(  # noqa: A001 - the name DESIGN.md fixes
    cov,
    *,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    tol: float = 1e-12,
    max_iter: int = 50,
) -> Compiled:
    """Compile a risk-budgeting problem once; ``solve(budgets=None)`` many times.

    Parameters
    ----------
    cov, constraints, universe, solvers, tol, max_iter
        As for :func:`risk_parity`; the covariance is copied.

    Returns
    -------
    optimizer.Compiled
        ``solve(budgets=None)`` returns the :class:`Allocation` of
        :func:`risk_parity` for these budgets (equal risk when None).
        Thread-safe and picklable.
    """
    tol, max_iter = _check_options(tol, max_iter)
    return Compiled(
        cov,
        constraints=constraints,
        universe=universe,
        solvers=solvers,
        model=_solve_risk_parity,
        objective="risk_parity",
        fixed={"tol": tol, "max_iter": max_iter},
    )


def _solve_risk_parity(cm: Compiled, *, budgets=None, tol=1e-12, max_iter=50) -> Allocation:
    """Risk budgeting on a compiled problem (the steps of :func:`risk_parity`)."""
    t0 = time.perf_counter()
    tol, max_iter = _check_options(tol, max_iter)
    rm, assets, cset = cm.risk, cm.assets, cm.cset
    b = _budget_vector(budgets, assets)
    total = cset.budget
    if total is not None and not total > 0:
        name = next((c.name for c in cset.constraints if isinstance(c, Budget)), "budget")
        raise InputError(
            f"risk budgeting needs a positive budget: constraint {name!r} has total {total:g}"
        )
    hess = _Hessian(rm)
    _check_variances(hess.diagonal(), assets)
    plain = all(type(c) in (Budget, LongOnly) for c in cset.constraints)
    t1 = time.perf_counter()
    res = None
    if total is not None:
        res = _spinu_newton(hess, b, tol=tol, max_iter=max_iter)
        t2 = time.perf_counter()
        if res.spread <= max(tol, ACCEPT_SPREAD):
            alloc = _newton_allocation(res, hess, b, total, cm, t2 - t1)
            if all(c["ok"] for c in alloc.checks.values()):
                t3 = time.perf_counter()
                return dataclasses.replace(
                    alloc, timings={"compile": t1 - t0, "solve": t2 - t1, "other": t3 - t2}
                )
            res = None  # exact, but outside the constraints: they bind
    # the constraints bind (or Newton's method fell short): the convex core, on C / s (s the
    # risk unit) so that the answer does not depend on the covariance's units; the minimizer
    # y of 1/2 y'(C/s)y - b'log y is sqrt(s) times the caller's, its value lower by log(s)/2
    unit = risk_unit(rm)
    objective = Objective(variance=0.5 / unit, terms=(LogBarrierTerm(b),), homogenize=True)
    try:
        alloc = cm.run(objective)
        alloc = dataclasses.replace(alloc, objective=alloc.objective + 0.5 * math.log(unit))
    except SolverError:
        if not (plain and res is not None and res.spread <= BUDGET_NOTE_TOL):
            raise
        alloc = None
    if alloc is not None and total is not None:
        alloc = _polished(alloc, hess, b, cm, total)
    if alloc is not None:
        _check_hedge(alloc, hess.diagonal())
    if plain and res is not None:
        # Newton's method fell short of the target: keep whichever answer is closer
        core_spread = math.inf if alloc is None else _max_gap(alloc, b)
        shortfall = (
            f"Newton's method stopped at a relative risk-contribution spread of "
            f"{res.spread:.2e} after {res.iterations} steps ({res.reason}), short of the "
            f"target {max(tol, ACCEPT_SPREAD):.0e}"
        )
        if alloc is None or (math.isfinite(res.spread) and res.spread <= core_spread):
            newton = _newton_allocation(res, hess, b, total, cm, 0.0)
            note = (
                f"{shortfall}; the convex core did no better (spread {core_spread:.2e}), so "
                "Newton's weights are returned (an ill-conditioned covariance limits the "
                "attainable accuracy in double precision)"
            )
            return dataclasses.replace(
                newton,
                attempts=newton.attempts + (() if alloc is None else alloc.attempts),
                notes=(note,),
            )
        note = f"{shortfall}; the weights come from the convex core (spread {core_spread:.2e})"
        return dataclasses.replace(alloc, notes=alloc.notes + (note,))
    note = _budget_note(alloc, b)
    if note is not None:
        alloc = dataclasses.replace(alloc, notes=alloc.notes + (note,))
    return alloc
