"""The exact efficient frontier by a parametric active-set method (the critical line).

For a risk tolerance ``lam >= 0`` the portfolio ``w(lam)`` minimizing
``1/2 w'Cw - lam mu'w`` under linear constraints ``lo <= A w <= hi`` and bounds
``lb <= w <= ub`` is piecewise linear in ``lam``: between two *corner
portfolios* the active set is fixed and the KKT system

    [C_FF  A_F'] [w_F]   [-C_FB w_B      ]       [mu_F]
    [A_F   0   ] [nu ] = [b - A_B w_B     ] + lam [0   ]

(``F`` the free assets, ``B`` the assets at a bound, ``A`` the active rows)
gives the weights and multipliers as ``alpha + lam beta``. A corner is where a
free weight or an inactive row reaches its limit (primal event) or a
multiplier changes sign (dual event). The expected return ``mu'w`` is linear
on each piece too, so the efficient portfolio of any target return is the
exact interpolation of the two corners around it: this is the minimum of
``w'Cw`` subject to ``mu'w >= target`` and the constraints, the problem of
:func:`models.mean_variance.efficient_return`.

The sweep starts at the least-variance portfolio (``lam = 0``; solved as
:func:`models.mean_variance.min_variance` solves it, its active set read off
and made exact) and raises ``lam`` until no event is left: the last corner is the
highest-return portfolio (the least-variance one among them when several
earn the top return).

References: H. Markowitz (1956), "The optimization of a quadratic function
subject to linear constraints", Naval Research Logistics Quarterly 3, 111-133;
M. J. Best (1996), "An algorithm for the solution of the parametric quadratic
programming problem", in *Applied Mathematics and Parallel Computing*,
Physica, 57-76; D. Bailey and M. Lopez de Prado (2013), "An open-source
implementation of the critical-line algorithm", Algorithms 6, 169-196.

Each segment is solved by a fresh factorization of ``C_FF`` (Cholesky for a
dense covariance; the Woodbury identity for a factor covariance
``G G' + diag(d)``, ``O(|F| k^2)``) and a Schur complement on the few active
rows: correctness first, no factor updates yet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg as sla

from models._frontier import SOLVER, CriticalLine
from optimizer.compiled import Compiled
from optimizer.errors import InputError, SolverError
from optimizer.objective import Objective, return_unit
from optimizer.universe import Universe
from optimizer.validation import vector

__all__ = ["SOLVER", "CriticalLine", "corners", "critical_line"]

FREE, LOW, HIGH, EQUAL = 0, -1, 1, 2
_SLOPE = 1e-12  # slopes below this (scaled units) do not move a value
_ID_TOL = 1e-7  # a weight or row this close to its limit in min_variance's answer is active
_MAX_POLISH = 200


# ----------------------------------------------------------------------------- covariance forms
class _Dense:
    """``C`` (n x n), scaled."""

    def __init__(self, c: np.ndarray) -> None:
        self.c = c

    def times(self, w: np.ndarray) -> np.ndarray:
        return self.c @ w

    def solver(self, free: np.ndarray):
        """``x -> C_FF^-1 x``, or None when ``C_FF`` is not positive definite."""
        try:
            fac = sla.cho_factor(self.c[np.ix_(free, free)], lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        return lambda x: sla.cho_solve(fac, x, check_finite=False)


class _Factor:
    """``C = G G' + diag(d)`` (G n x k), scaled; ``C_FF^-1`` by the Woodbury identity."""

    def __init__(self, g: np.ndarray, d: np.ndarray) -> None:
        self.g, self.d = g, d

    def times(self, w: np.ndarray) -> np.ndarray:
        return self.g @ (self.g.T @ w) + (self.d * w.T).T

    def solver(self, free: np.ndarray):
        gf, df = self.g[free], self.d[free]
        if not (df > 0).all():  # no Woodbury without a positive diagonal: the dense block
            return _Dense(gf @ gf.T + np.diag(df)).solver(np.arange(len(free)))
        gd = gf / df[:, None]
        inner = np.eye(gf.shape[1]) + gf.T @ gd
        fac = sla.cho_factor(inner, lower=True, check_finite=False)

        def solve(x: np.ndarray) -> np.ndarray:  # x: (|F|, columns)
            y = x / df[:, None]
            return y - gd @ sla.cho_solve(fac, gf.T @ y, check_finite=False)

        return solve


# ----------------------------------------------------------------------------- the problem
@dataclass
class _Problem:
    """Scaled data: ``cov`` (C / s), ``mu`` (mu / m), rows ``lo <= A w <= hi``, bounds."""

    cov: object
    mu: np.ndarray
    a: np.ndarray  # (m, n)
    lo: np.ndarray
    hi: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    row_names: list
    low_names: list
    high_names: list


def _lower(cm: Compiled, mu: np.ndarray) -> _Problem:
    """The compiled constraints as bounds and linear rows; non-linear ones are refused."""
    n = cm.n
    lb, ub = np.full(n, -math.inf), np.full(n, math.inf)
    low_names, high_names = [""] * n, [""] * n
    rows, lo, hi, names = [], [], [], []
    for p in cm.cset.pieces:
        if p.priority is not None:
            raise InputError(
                f"constraint {p.label!r} is soft (priority {p.priority}): the critical line "
                "solves hard constraints only; drop its priority or use efficient_frontier"
            )
        box = p.box()
        if box is not None:
            i, blo, bhi = box
            if blo > lb[i]:
                lb[i], low_names[i] = blo, p.label
            if bhi < ub[i]:
                ub[i], high_names[i] = bhi, p.label
            continue
        lin = p.linear(n)
        if lin is None:
            raise InputError(
                f"constraint {p.label!r} is not linear in the weights: the critical line "
                "handles linear constraints and bounds only; use efficient_frontier for it"
            )
        rows.append(np.asarray(lin[0], dtype=float))
        lo.append(float(lin[1]))
        hi.append(float(lin[2]))
        names.append(p.label)
    s = cm.risk.unit
    if cm.risk.kind == "factor":
        cov = _Factor(cm.risk.G / math.sqrt(s), cm.risk.d / s)
    else:
        cov = _Dense(cm.risk.dense / s)
    a = np.array(rows).reshape(len(rows), n)
    return _Problem(
        cov, mu / return_unit(mu), a, np.array(lo), np.array(hi), lb, ub, names, low_names,
        high_names,
    )  # fmt: skip


# ----------------------------------------------------------------------------- the sweep
@dataclass
class _Segment:
    """``w = w0 + lam w1``, row multipliers ``nu0 + lam nu1``, bound ones ``pi0 + lam pi1``."""

    w0: np.ndarray
    w1: np.ndarray
    nu0: np.ndarray
    nu1: np.ndarray
    pi0: np.ndarray
    pi1: np.ndarray


class _Sweep:
    """The working set (``vstate`` per asset, ``rstate`` per row) and its segments."""

    def __init__(self, pb: _Problem, w_start: np.ndarray) -> None:
        self.pb = pb
        n, m = len(pb.mu), len(pb.lo)
        tol_w = _ID_TOL * np.maximum(1.0, np.abs(w_start))
        self.vstate = np.zeros(n, dtype=int)
        self.vstate[w_start - pb.lb <= tol_w] = LOW
        self.vstate[pb.ub - w_start <= tol_w] = HIGH
        self.vstate[pb.lb == pb.ub] = LOW  # fixed weights
        self.rstate = np.zeros(m, dtype=int)
        v = pb.a @ w_start
        tol_r = _ID_TOL * np.maximum(1.0, np.abs(v))
        self.rstate[v - pb.lo <= tol_r] = LOW
        self.rstate[pb.hi - v <= tol_r] = HIGH
        self.rstate[pb.lo == pb.hi] = EQUAL

    # -- one segment ------------------------------------------------------------
    def fixed(self) -> np.ndarray:
        pb = self.pb
        w = np.zeros(len(pb.mu))
        w[self.vstate == LOW] = pb.lb[self.vstate == LOW]
        w[self.vstate == HIGH] = pb.ub[self.vstate == HIGH]
        return w

    def segment(self) -> _Segment:
        pb = self.pb
        free = np.flatnonzero(self.vstate == FREE)
        act = np.flatnonzero(self.rstate != FREE)
        w_fix = self.fixed()
        target = np.where(self.rstate[act] == HIGH, pb.hi[act], pb.lo[act])
        a_f = pb.a[np.ix_(act, free)]
        rhs = np.column_stack([-pb.cov.times(w_fix)[free], pb.mu[free], a_f.T])
        if len(free):
            solve = pb.cov.solver(free)
            if solve is None:
                raise _Singular(free)
            z = solve(rhs)
        else:
            z = rhs
        q = np.column_stack([target - pb.a[act] @ w_fix, np.zeros(len(act))])
        if len(act):
            schur = a_f @ z[:, 2:]
            nu = np.linalg.lstsq(schur, a_f @ z[:, :2] - q, rcond=1e-13)[0]
            x = z[:, :2] - z[:, 2:] @ nu
        else:
            nu, x = np.zeros((0, 2)), z[:, :2]
        n, m = len(pb.mu), len(pb.lo)
        w0, w1 = w_fix, np.zeros(n)
        w0[free], w1[free] = x[:, 0], x[:, 1]
        nu0, nu1 = np.zeros(m), np.zeros(m)
        nu0[act], nu1[act] = nu[:, 0], nu[:, 1]
        cw = pb.cov.times(np.column_stack([w0, w1]))
        pi0 = -(cw[:, 0] + pb.a.T @ nu0)
        pi1 = -(cw[:, 1] - pb.mu + pb.a.T @ nu1)
        pi0[free] = pi1[free] = 0.0
        return _Segment(w0, w1, nu0, nu1, pi0, pi1)

    # -- the start: the working set of min_variance made exact -------------------
    def polish(self) -> _Segment:
        """Fix the working set at ``lam = 0`` until the KKT conditions hold exactly."""
        pb = self.pb
        for _ in range(_MAX_POLISH):
            seg = self.segment()
            w, v = seg.w0, pb.a @ seg.w0
            tol = 1e-10 * (1.0 + np.abs(w))
            over = np.where(self.vstate == FREE, np.maximum(pb.lb - w, w - pb.ub), -np.inf)
            tol_r = 1e-10 * (1.0 + np.abs(v))
            rover = np.where(self.rstate == FREE, np.maximum(pb.lo - v, v - pb.hi), -np.inf)
            if (over > tol).any() or (rover > tol_r).any():
                if (over - tol).max(initial=-np.inf) >= (rover - tol_r).max(initial=-np.inf):
                    i = int(np.argmax(over - tol))
                    self.vstate[i] = LOW if w[i] < pb.lb[i] else HIGH
                else:
                    j = int(np.argmax(rover - tol_r))
                    self.rstate[j] = LOW if v[j] < pb.lo[j] else HIGH
                continue
            wrong_v = np.where(self.vstate == HIGH, -seg.pi0, 0.0)
            wrong_v = np.where((self.vstate == LOW) & (pb.lb < pb.ub), seg.pi0, wrong_v)
            wrong_r = np.where(self.rstate == HIGH, -seg.nu0, 0.0)
            wrong_r = np.where(self.rstate == LOW, seg.nu0, wrong_r)
            if max(wrong_v.max(initial=0.0), wrong_r.max(initial=0.0)) <= 1e-11:
                return seg
            if wrong_v.max(initial=0.0) >= wrong_r.max(initial=0.0):
                self.vstate[int(np.argmax(wrong_v))] = FREE
            else:
                self.rstate[int(np.argmax(wrong_r))] = FREE
        raise SolverError(
            "the critical line could not settle the active set of the least-variance portfolio "
            f"in {_MAX_POLISH} steps: use efficient_frontier for this problem"
        )

    # -- events -----------------------------------------------------------------
    def next_event(self, seg: _Segment, lam: float, last) -> tuple | None:
        """``(lam, kind, index, new state)`` of the first event above ``lam``, or None."""
        pb = self.pb
        v0, v1 = pb.a @ seg.w0, pb.a @ seg.w1
        found = _events("v", self.vstate, seg.w0, seg.w1, pb.lb, pb.ub, seg.pi0, seg.pi1)
        found += _events("r", self.rstate, v0, v1, pb.lo, pb.hi, seg.nu0, seg.nu1)
        near = lam + 1e-9 * (1.0 + lam)
        found = [
            (max(t, lam), kind, i, s)
            for t, kind, i, s in found
            if not (last is not None and (kind, i) == last and t <= near)
        ]
        return min(found, key=lambda e: e[0]) if found else None

    def apply(self, kind: str, i: int, state: int) -> None:
        (self.vstate if kind == "v" else self.rstate)[i] = state

    def active_names(self) -> tuple[str, ...]:
        pb = self.pb
        out = [pb.row_names[j] for j in np.flatnonzero(self.rstate != FREE)]
        out += [pb.low_names[i] for i in np.flatnonzero(self.vstate == LOW)]
        out += [pb.high_names[i] for i in np.flatnonzero(self.vstate == HIGH)]
        return tuple(out)


def _events(kind, state, x0, x1, lo, hi, m0, m1) -> list[tuple]:
    """Events of one kind (``"v"`` weights, ``"r"`` rows): values ``x0 + lam x1`` reaching
    ``lo``/``hi`` while free; multipliers ``m0 + lam m1`` (>= 0 at ``hi``, <= 0 at ``lo``)
    crossing zero while active. Each as ``(lam, kind, index, new state)``."""
    free, movable = state == FREE, lo < hi
    with np.errstate(divide="ignore", invalid="ignore"):
        reach_hi, reach_lo, cross = (hi - x0) / x1, (lo - x0) / x1, -m0 / m1
    cases = [
        (free & (x1 > _SLOPE) & np.isfinite(hi), reach_hi, HIGH),
        (free & (x1 < -_SLOPE) & np.isfinite(lo), reach_lo, LOW),
        ((state == HIGH) & movable & (m1 < -_SLOPE), cross, FREE),
        ((state == LOW) & movable & (m1 > _SLOPE), cross, FREE),
    ]
    return [
        (float(when[i]), kind, int(i), new)
        for mask, when, new in cases
        for i in np.flatnonzero(mask)
    ]


class _Singular(Exception):
    def __init__(self, free: np.ndarray) -> None:
        self.free = free


# ----------------------------------------------------------------------------- entry point
def critical_line(
    mu: pd.Series,
    cov,
    *,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    max_corners: int | None = None,
) -> CriticalLine:
    """Every corner portfolio of the mean-variance efficient frontier.

    Parameters
    ----------
    mu : pandas.Series, shape (n,)
        Annualized expected returns, labelled by asset.
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Annualized covariance, positive definite on the assets that move
        along the frontier.
    constraints : list, optional
        Linear constraint objects (bounds, budget, groups, linear rows, ...);
        fully invested and long-only by default, as elsewhere.
    universe : Universe, optional
        Asset tags, for tag constraints.
    max_corners : int, optional
        Safety cap on the number of corners; default ``20 (n + m) + 100``.

    Returns
    -------
    CriticalLine
        The corners (from the least-variance to the highest-return
        portfolio) and exact interpolation between them.

    Raises
    ------
    InputError
        For a constraint that is not linear or is soft; when the expected
        return is unbounded; when the covariance is singular on the assets
        that move (the message names them and the fix).
    InfeasibleError
        When the constraints conflict (the diagnosis of ``min_variance``).
    SolverError
        When the sweep does not finish within ``max_corners`` corners.
    """
    cm = Compiled(cov, constraints=constraints, universe=universe)
    if isinstance(mu, dict):
        mu = pd.Series(mu, dtype=float)
    mu_vec = vector(mu, cm.assets, what="expected returns (mu)")
    pb = _lower(cm, mu_vec)
    start = cm.run(Objective(variance=1.0), mu=None)  # min_variance's solve, verified
    return corners(cm, mu_vec, start.weights.to_numpy(), max_corners=max_corners, lowered=pb)


def corners(
    cm: Compiled,
    mu_vec: np.ndarray,
    start: np.ndarray,
    *,
    max_corners: int | None = None,
    lowered: _Problem | None = None,
) -> CriticalLine:
    """The corner portfolios of a compiled problem, from its least-variance portfolio.

    Parameters
    ----------
    cm : Compiled
        The problem (its constraints must be linear and hard).
    mu_vec : numpy.ndarray, shape (n,)
        Expected returns in ``cm.assets`` order (annualized decimals).
    start : numpy.ndarray, shape (n,)
        The least-variance portfolio as a solver found it (its active set is
        read off and made exact).
    max_corners : int, optional
        As for :func:`critical_line`.
    lowered : optional
        ``cm``'s constraints already lowered for ``mu_vec`` (internal).

    Returns
    -------
    CriticalLine

    Raises
    ------
    InputError, SolverError
        As :func:`critical_line` (no InfeasibleError: ``start`` exists).
    """
    pb = lowered if lowered is not None else _lower(cm, mu_vec)
    sweep = _Sweep(pb, np.asarray(start, dtype=float))
    cap = max_corners or 20 * (len(pb.mu) + len(pb.lo)) + 100
    try:
        seg = sweep.polish()
        records = [(0.0, seg, sweep.active_names())]
        lam, last = 0.0, None
        while True:
            event = sweep.next_event(seg, lam, last)
            if event is None:
                if np.abs(seg.w1).max(initial=0.0) > 1e-9 and pb.mu @ seg.w1 > 1e-12:
                    raise InputError(
                        "the expected return is unbounded under these constraints: add finite "
                        "bounds on the weights (a leverage limit is not linear: for one, use "
                        "efficient_frontier)"
                    )
                break
            lam, kind, i, state = event
            sweep.apply(kind, i, state)
            last = (kind, i)
            records.append((lam, seg, sweep.active_names()))
            if len(records) > cap:
                raise SolverError(
                    f"the critical line passed {cap} corners without reaching the highest "
                    "return (degenerate constraints cycling?): use efficient_frontier"
                )
            seg = sweep.segment()
    except _Singular as exc:
        names = ", ".join(map(str, cm.assets[exc.free[:8]]))
        raise InputError(
            f"the covariance is singular on the assets the frontier moves ({names}"
            f"{', ...' if len(exc.free) > 8 else ''}): {cm.risk.singularity()}; use a "
            "shrinkage estimator (models.covariance.ledoit_wolf) or more history"
        ) from None
    return _result(cm, pb, mu_vec, records)


def _result(cm: Compiled, pb: _Problem, mu_vec: np.ndarray, records: list) -> CriticalLine:
    """Corners in the caller's units from ``(lam, segment, active)`` records (scaled)."""
    s, m = cm.risk.unit, return_unit(mu_vec)
    lams = np.array([lam for lam, _, _ in records])
    w = np.array([seg.w0 + lam * seg.w1 for lam, seg, _ in records])
    nu = np.array([seg.nu0 + lam * seg.nu1 for lam, seg, _ in records]).reshape(len(w), -1)
    pi = np.array([seg.pi0 + lam * seg.pi1 for lam, seg, _ in records])
    ret = w @ mu_vec
    var = np.array([cm.risk.variance(x) for x in w])
    index = pd.RangeIndex(len(w), name="corner")
    corners = pd.DataFrame(
        {
            "risk_tolerance": lams * s / m,
            "expected_return": ret,
            "volatility": np.sqrt(np.maximum(var, 0.0)),
            "active": [a for _, _, a in records],
        },
        index=index,
    )
    return CriticalLine(
        corners=corners,
        weights=pd.DataFrame(w, index=index, columns=cm.assets),
        row_multipliers=pd.DataFrame(nu * s, index=index, columns=pb.row_names),
        bound_multipliers=pd.DataFrame(pi * s, index=index, columns=cm.assets),
        compiled=cm,
        mu=mu_vec,
        lowered=pb,
    )
