"""Post-solve verification: every constraint checked by name, binding sides, KKT residual.

A solution is returned only after :class:`Checker` finds every piece within
``FEAS_TOL`` (in the constraint's own units, relative to the size of its
limits) and, where the solver gave duals, the stationarity residual
``Px + q + A'z`` is small (:func:`stationary`). The stationarity check runs on
the program as solved, which the core scales to unit-free sizes
(:func:`optimizer.objective.units_of`), so its tolerance, relative to
``1 + max(|Px|, |q|, |A'z|)``, means the same whatever the units of the data.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np

from optimizer.allocation import zero_dust
from optimizer.objective import risk_unit
from optimizer.pieces import Piece, Point, RiskLimit, slack_sides, violation
from optimizer.program import Outcome, Program

#: Verification tolerance on every constraint, in the constraint's own units
#: (weights: 1e-7 is a thousandth of a basis point).
FEAS_TOL = 1e-7
#: A constraint side is reported binding when its slack is below this.
BINDING_TOL = 1e-6
#: Relative tolerance on the stationarity residual ``Px + q + A'z`` of a solver's answer
#: (looser for an answer the solver itself calls inaccurate).
KKT_TOL = 1e-6
KKT_TOL_INACCURATE = 1e-4


class Checker:
    """Verifies a fixed list of pieces at any point; the bounds are checked in numpy.

    Made once per compiled problem (the gathering of per-asset bounds into
    arrays is the costly part) and read-only afterwards, so threads share it.

    Parameters
    ----------
    pieces : sequence of Piece
        Every constraint piece of the problem, in the order given.
    """

    def __init__(self, pieces: Sequence[Piece]) -> None:
        self.pieces = tuple(pieces)
        boxes = [(p, p.box()) for p in self.pieces]
        self.owners = [p for p, bx in boxes if bx is not None]
        self.rest = [p for p, bx in boxes if bx is None]
        self.idx = np.array([bx[0] for _, bx in boxes if bx is not None], dtype=int)
        self.lo = np.array([bx[1] for _, bx in boxes if bx is not None], dtype=float)
        self.hi = np.array([bx[2] for _, bx in boxes if bx is not None], dtype=float)
        finite_lo = np.where(np.isfinite(self.lo), np.abs(self.lo), 0.0)
        finite_hi = np.where(np.isfinite(self.hi), np.abs(self.hi), 0.0)
        self.scale = np.maximum(1.0, np.maximum(finite_lo, finite_hi))
        # the bounds of one constraint come in runs: their largest violations by reduceat
        names = [p.name for p in self.owners]
        self.run_starts = np.array(
            [k for k in range(len(names)) if k == 0 or names[k] != names[k - 1]], dtype=int
        )
        self.run_names = [names[k] for k in self.run_starts]
        self.order = list(dict.fromkeys(p.name for p in self.pieces))

    def extended(self, extra: Sequence[Piece]) -> Checker:
        """A checker of these pieces and ``extra`` (cheap when ``extra`` bounds no single weight)."""
        if not extra:
            return self
        if any(p.box() is not None for p in extra):
            return Checker(self.pieces + tuple(extra))
        out = copy.copy(self)
        out.pieces = self.pieces + tuple(extra)
        out.rest = self.rest + list(extra)
        out.order = list(dict.fromkeys([*self.order, *(p.name for p in extra)]))
        return out

    def check(self, pt: Point, tol: float = 1e-7) -> dict[str, dict]:
        """``{name: {"ok", "max_violation"[, "worst"]}}`` in the order the constraints came."""
        checks: dict[str, dict] = {name: {"ok": True, "max_violation": 0.0} for name in self.order}

        def record(p: Piece, viol: float, scale: float) -> None:
            entry = checks[p.name]
            entry["max_violation"] = max(entry["max_violation"], viol)
            if viol > tol * scale:
                entry["ok"] = False
                entry.setdefault("worst", p.label)

        if len(self.idx):
            viol = self._box_violations(pt)
            tops = np.maximum.reduceat(viol, self.run_starts)
            for name, top in zip(self.run_names, tops, strict=True):
                entry = checks[name]
                entry["max_violation"] = max(entry["max_violation"], float(top))
            for k in np.flatnonzero(viol > tol * self.scale):
                record(self.owners[k], float(viol[k]), float(self.scale[k]))
        for p in self.rest:
            record(p, *violation(p, pt))
        return checks

    def _box_violations(self, pt: Point) -> np.ndarray:
        v = pt.w[self.idx]
        return np.maximum(np.maximum(self.lo - v, v - self.hi), 0.0)

    def ok(self, pt: Point, tol: float = 1e-7) -> bool:
        """True when every piece holds at ``pt`` (what :meth:`check` says, without the report)."""
        if len(self.idx) and bool((self._box_violations(pt) > tol * self.scale).any()):
            return False
        for p in self.rest:
            viol, scale = violation(p, pt)
            if viol > tol * scale:
                return False
        return True

    def near_binding(self, pt: Point) -> dict[tuple[str, str, str], float]:
        """Slack of every side within ``BINDING_TOL`` of binding: ``{(name, label, side): slack}``."""
        found: dict[tuple[str, str, str], float] = {}
        if len(self.idx):
            v = pt.w[self.idx]
            lo, hi = self.lo, self.hi
            for k in np.flatnonzero((hi - v <= BINDING_TOL) | (v - lo <= BINDING_TOL)):
                p = self.owners[k]
                if lo[k] == hi[k]:
                    found[(p.name, p.label, "equal")] = float(abs(v[k] - hi[k]))
                    continue
                if hi[k] - v[k] <= BINDING_TOL:
                    found[(p.name, p.label, "max")] = float(hi[k] - v[k])
                if v[k] - lo[k] <= BINDING_TOL:
                    found[(p.name, p.label, "min")] = float(v[k] - lo[k])
        for p in self.rest:
            tol = BINDING_TOL * _binding_scale(p, pt)
            for side, slack in slack_sides(p, pt):
                if slack <= tol:
                    found[(p.name, p.label, side)] = slack
        return found

    def binding_sides(self, pt: Point) -> tuple:
        """Binding sides without shadow prices (as ``Allocation.binding`` reports them)."""
        return tuple(
            {"name": name, "label": label, "side": side, "shadow_price": None}
            for name, label, side in self.near_binding(pt)
        )

    def binding(self, prog: Program, out: Outcome, pt: Point, *, scale: float = 1.0) -> tuple:
        """Binding sides with their shadow prices (the solver's duals times ``scale``).

        In the order of the program's rows; sides the program has no row for
        (none in practice) are left out. Rows the program scaled
        (:attr:`Program.row_scale`) have their duals turned back into the
        constraint's own units.
        """
        rows = prog.row_of
        z = out.z
        found = []
        for name, label, side in self.near_binding(pt):
            i = rows.get((label, side))
            if i is None:
                continue
            price = float(z[i]) * scale if z is not None and i < len(z) else None
            if price is not None and prog.row_scale is not None:
                price /= float(prog.row_scale[i])
            found.append((i, {"name": name, "label": label, "side": side, "shadow_price": price}))
        found.sort(key=lambda item: item[0])
        return tuple(entry for _, entry in found)

    def cleaned(self, pt: Point, total: float | None = None) -> np.ndarray:
        """The weights with their dust set to exact zeros, when that still verifies.

        Dust is a weight below the verification tolerance
        (:func:`optimizer.allocation.zero_dust` with ``FEAS_TOL``): a solver's
        ``1e-11`` or ``-1e-12`` for an asset it does not hold. The amount removed
        goes back to the remaining weights, within their bounds, so that the
        sum is ``total`` (the budget) or, when that does not verify (a relaxed budget), the sum the
        weights had; when neither verifies the weights are returned as they were.

        Parameters
        ----------
        pt : Point
            The verified answer.
        total : float, optional
            The budget to restore (None: the weights' own sum).

        Returns
        -------
        numpy.ndarray, shape (n,)
            ``pt.w`` itself when nothing changed, else a cleaned copy.
        """
        w = pt.w
        lower, upper = np.full(len(w), -np.inf), np.full(len(w), np.inf)
        if len(self.idx):  # the tightest bounds on each weight: restore within them
            np.maximum.at(lower, self.idx, self.lo)
            np.minimum.at(upper, self.idx, self.hi)
        tried = []
        for target in (total, None):
            out = zero_dust(w, FEAS_TOL, target, lower=lower, upper=upper)
            if out is w:
                return w
            if any(np.array_equal(out, t) for t in tried):
                continue
            tried.append(out)
            if self.ok(Point(out, pt.trades, pt.risk)):
                return out
        return w


def _binding_scale(p: Piece, pt: Point) -> float:
    """The size a piece's slack is measured against when deciding that a side binds.

    1 for constraints on weights (unit-free). A volatility limit is in the
    covariance's units: its slack is measured against the larger of its limit
    and the volatility unit the core solves in (``sqrt`` of
    :func:`optimizer.objective.risk_unit`, 1 for annualized data of about 20%
    volatility), so that a limit binds, or not, whatever the units of the
    covariance.
    """
    if isinstance(p, RiskLimit) and pt.risk is not None:
        _, hi = p.limits
        return max(abs(hi) if math.isfinite(hi) else 0.0, math.sqrt(risk_unit(pt.risk)))
    return 1.0


def stationary(prog: Program, out: Outcome, *, p=None, at=None) -> bool:
    """The cheap KKT check: the solver's pair satisfies ``Px + q + A'z = 0``.

    Every solver of the chain returns duals ``z`` with this sign convention
    (Clarabel, SCS: ``b - Ax in K``; OSQP: ``l <= Ax <= u``). It catches an
    answer called optimal that is not, such as a huge feasible ``x`` returned
    for an unbounded LP. Skipped when the solver gave no duals. The residual
    must be below ``KKT_TOL`` (``KKT_TOL_INACCURATE`` for an answer the solver
    calls inaccurate) relative to ``1 + max(|Px|, |q|, |A'z|)``.

    ``p`` and ``at`` are ``P`` and ``A'`` in a form made once for many solves
    (row-compressed: the products are cheaper); by default the program's own.
    """
    p = prog.P if p is None else p
    at = prog.A.T if at is None else at
    if out.x is None or out.z is None or len(out.z) != at.shape[1]:
        return True
    px = p @ out.x
    atz = at @ out.z
    resid = float(np.abs(px + prog.q + atz).max(initial=0.0))
    size = max(
        float(np.abs(px).max(initial=0.0)),
        float(np.abs(prog.q).max(initial=0.0)),
        float(np.abs(atz).max(initial=0.0)),
    )
    tol = KKT_TOL if out.status == "optimal" else KKT_TOL_INACCURATE
    return resid <= tol * (1.0 + size)
