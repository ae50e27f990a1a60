"""Efficient frontiers as results (private): the corner portfolios of the critical line
(:class:`CriticalLine`, made by :func:`models._critical_line.critical_line`) with exact,
verified points between them, and the tables of a frontier (:func:`tabulate`), made in one
place for :func:`models.mean_variance.efficient_frontier` and :meth:`CriticalLine.frontier`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import pandas as pd

from models._reach import TARGET_RETURN, in_return_units, target_row
from optimizer.allocation import Allocation, Frontier
from optimizer.compiled import Compiled
from optimizer.errors import InfeasibleError, InputError
from optimizer.objective import Objective, return_unit, units_of
from optimizer.pieces import Point
from optimizer.solvers import ProxQP

#: The ``solver`` of every point interpolated between corner portfolios.
SOLVER = "CRITICAL_LINE"


def tabulate(
    targets: np.ndarray,
    allocations: Sequence[Allocation | None],
    reasons: dict[int, str],
    risk_free_rate: float,
    assets: pd.Index,
) -> Frontier:
    """A :class:`~optimizer.allocation.Frontier` of solved points and failed ones.

    Parameters
    ----------
    targets : numpy.ndarray, shape (p,)
        The target return of each point (annualized decimals).
    allocations : sequence of Allocation or None, length p
        The verified answer of each point; None for a point not solved.
    reasons : dict
        ``{point: why it failed}`` for every point without an answer.
    risk_free_rate : float
        Annualized, set on every allocation (its ``sharpe`` is at this rate).
    assets : pandas.Index, shape (n,)
        The weights' columns.

    Returns
    -------
    Frontier
        ``points`` (target_return, expected_return, volatility, sharpe) and
        ``weights`` indexed by point number, ``failed`` (target_return, reason).
    """
    solved = [i for i, a in enumerate(allocations) if a is not None]
    allocs = tuple(replace(allocations[i], risk_free_rate=risk_free_rate) for i in solved)
    index = pd.Index(solved, name="point")
    table = pd.DataFrame(
        {
            "target_return": np.asarray(targets, dtype=float)[solved],
            "expected_return": [a.expected_return for a in allocs],
            "volatility": [a.volatility for a in allocs],
            "sharpe": [a.sharpe for a in allocs],
        },
        index=index,
    )
    weights = pd.DataFrame(
        np.array([a.weights.to_numpy() for a in allocs]).reshape(len(allocs), len(assets)),
        index=index,
        columns=assets,
    )
    failed = pd.DataFrame(
        {"target_return": [float(targets[i]) for i in reasons], "reason": list(reasons.values())},
        index=pd.Index(list(reasons), name="point"),
    )
    return Frontier(table, weights, failed, allocs)


# ----------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class CriticalLine:
    """The corner portfolios of an efficient frontier and exact points between them.

    Attributes
    ----------
    corners : pandas.DataFrame
        One row per corner, in increasing expected return: ``risk_tolerance``
        (``lam`` of ``1/2 w'Cw - lam mu'w``, in the units of ``C / mu``: the
        corner's portfolio is optimal from this ``lam`` up to the next
        corner's), ``expected_return``, ``volatility`` (annualized, like the
        inputs) and ``active`` (the labels of the active constraints).
    weights : pandas.DataFrame
        One row per corner, one column per asset.
    row_multipliers : pandas.DataFrame
        Per corner, the multiplier ``nu_j`` of each linear constraint (by
        label; 0 when inactive), such that ``C w - lam mu + A'nu + pi = 0``.
    bound_multipliers : pandas.DataFrame
        Per corner and asset, ``pi_i``: positive at an upper bound, negative at
        a lower bound, 0 for a free weight.
    """

    corners: pd.DataFrame
    weights: pd.DataFrame
    row_multipliers: pd.DataFrame
    bound_multipliers: pd.DataFrame
    compiled: Compiled
    mu: np.ndarray
    lowered: object = field(repr=False, compare=False)  # the lowered constraints

    @property
    def return_range(self) -> tuple[float, float]:
        """``(least-variance return, highest return)``."""
        r = self.corners["expected_return"].to_numpy()
        return float(r[0]), float(r[-1])

    def interpolate(self, targets: Sequence[float] | np.ndarray) -> pd.DataFrame:
        """The efficient portfolios of the target returns, exact between corners.

        Parameters
        ----------
        targets : sequence of float, shape (p,)
            Annualized expected returns (decimals). A target at or below the
            least-variance return gives the least-variance portfolio (as
            ``efficient_return``, whose target is a floor).

        Returns
        -------
        pandas.DataFrame, shape (p, n)
            One row per target (index: the targets), one column per asset.

        Raises
        ------
        InputError
            If a target is not a finite number.
        InfeasibleError
            If a target is above the highest expected return the constraints
            allow; the message names the target and the reachable range.
        """
        t, k, theta = self._locate(targets)
        w = self.weights.to_numpy()
        out = w[k - 1] + theta[:, None] * (w[k] - w[k - 1]) if len(w) > 1 else w[k]
        return pd.DataFrame(
            out, index=pd.Index(t, name="target_return"), columns=self.weights.columns
        )

    def _locate(self, targets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Targets (p,), the corner ``k`` each ends at and its ``theta`` from corner ``k - 1``."""
        t = np.atleast_1d(np.asarray(targets, dtype=float))
        if not np.isfinite(t).all():
            raise InputError(f"targets must be finite numbers, got {t[~np.isfinite(t)][:3]}")
        r = self.corners["expected_return"].to_numpy()
        top = r[-1] + 1e-9 * return_unit(self.mu)
        if (t > top).any():
            bad = float(t[t > top][0])
            raise InfeasibleError(
                f"target_return {bad:.6g} is above the highest expected return the constraints "
                f"allow ({r[-1]:.6g}): choose targets from {r[0]:.6g} (least variance) to "
                f"{r[-1]:.6g}, or loosen the constraints binding at the top: "
                f"{', '.join(self.corners['active'].iloc[-1][:5]) or 'none'}",
                [{"name": TARGET_RETURN, "gap": bad - float(r[-1])}],
            )
        if len(r) == 1:
            return t, np.zeros(len(t), dtype=int), np.ones(len(t))
        k = np.clip(np.searchsorted(r, t, side="left"), 1, len(r) - 1)
        span = r[k] - r[k - 1]
        theta = np.where(span > 0, (t - r[k - 1]) / np.where(span > 0, span, 1.0), 1.0)
        return t, k, np.clip(theta, 0.0, 1.0)

    def kkt_residuals(self) -> pd.DataFrame:
        """How exactly each corner solves its problem, recomputed from the constraints.

        Returns
        -------
        pandas.DataFrame, shape (corners, 4)
            ``stationarity``: ``max |C w - lam mu + A'nu + pi|`` over the
            largest of ``|C w|`` and ``|lam mu|``; ``primal``: the largest
            violation of a bound or row (weight units); ``complementarity``:
            the largest ``|multiplier x slack|`` (slack capped at 1, so a
            multiplier on an infinite or unreached limit counts in full),
            relative to the scale of the stationarity terms.
        """
        cm = self.compiled
        pb = self.lowered
        out = []
        for k in range(len(self.weights)):
            w = self.weights.to_numpy()[k]
            lam = float(self.corners["risk_tolerance"].iloc[k])
            nu = self.row_multipliers.to_numpy()[k]
            pi = self.bound_multipliers.to_numpy()[k]
            cw = cm.risk.times(w)
            scale = max(np.abs(cw).max(), lam * np.abs(self.mu).max(), 1e-300)
            stat = cw - lam * self.mu + pb.a.T @ nu + pi
            v = pb.a @ w
            primal = max(
                np.maximum(pb.lb - w, w - pb.ub).max(initial=0.0),
                np.maximum(pb.lo - v, v - pb.hi).max(initial=0.0),
            )
            eq_v, eq_r = pb.lb == pb.ub, pb.lo == pb.hi
            # a multiplier on a limit not reached (a wrong sign included); slack capped at 1
            slack_v = np.where(pi > 0, pb.ub - w, np.where(pi < 0, w - pb.lb, 0.0))
            slack_r = np.where(nu > 0, pb.hi - v, np.where(nu < 0, v - pb.lo, 0.0))
            comp = max(
                np.abs(np.where(eq_v, 0.0, pi * np.minimum(slack_v, 1.0))).max(initial=0.0),
                np.abs(np.where(eq_r, 0.0, nu * np.minimum(slack_r, 1.0))).max(initial=0.0),
            )
            out.append(
                {
                    "stationarity": float(np.abs(stat).max() / scale),
                    "primal": float(primal),
                    "complementarity": float(comp / scale),
                }
            )
        return pd.DataFrame(out, index=self.weights.index)

    def allocation(self, target_return: float) -> Allocation:
        """The verified efficient portfolio of one target (as ``efficient_return``)."""
        return self.allocations([float(target_return)])[0]

    def allocations(self, targets: Sequence[float] | np.ndarray) -> list[Allocation]:
        """The efficient portfolios of the targets, each verified like any answer.

        Parameters
        ----------
        targets : sequence of float, shape (p,)
            Annualized expected returns (decimals), as for :meth:`interpolate`.

        Returns
        -------
        list of Allocation, length p
            Made by :meth:`optimizer.compiled.Compiled.answer` (dust as exact
            zeros), ``solver`` ``"CRITICAL_LINE"``, ``status`` ``"optimal"``
            when every constraint and the target verify (``"inaccurate"``
            otherwise), ``objective`` the variance ``w'Cw``, and shadow prices
            (variance per unit of constraint, as ``efficient_return`` reports
            them) from the multipliers interpolated like the weights.
        """
        cm, unit = self.compiled, return_unit(self.mu)
        t, k, theta = self._locate(targets)
        pick = partial(_between, k=k, theta=theta[:, None])
        weights = pick(self.weights.to_numpy())
        lams = pick(self.corners["risk_tolerance"].to_numpy()[:, None])[:, 0]
        nus, pis = pick(self.row_multipliers.to_numpy()), pick(self.bound_multipliers.to_numpy())
        where = _Where.of(self.lowered, cm.cset.pieces)
        out = []
        for target, w, lam, nu, pi in zip(t, weights, lams, nus, pis, strict=True):
            checker = cm.checker.extended([target_row(self.mu, float(target), unit)])
            checks = checker.check(Point(w, risk=cm.risk))
            prices = partial(where.prices, lam * unit, nu, pi)
            alloc = cm.answer(
                w,
                self.mu,
                checker,
                checks=checks,
                binding=lambda pt, c=checker, f=prices: f(c.near_binding(pt)),
                status="optimal" if all(c["ok"] for c in checks.values()) else "inaccurate",
                solver=SOLVER,
                objective=float(w @ cm.risk.times(w)),
                notes=("interpolated exactly between corner portfolios (critical line)",),
            )
            if not all(c["ok"] for c in alloc.checks.values()):
                alloc = replace(alloc, status="inaccurate")
            out.append(in_return_units(alloc, unit))
        return out

    def frontier(self, points: int = 50, risk_free_rate: float = 0.0) -> Frontier:
        """``points`` verified portfolios evenly spaced in return, as ``efficient_frontier``.

        A point whose verification fails is reported in ``failed`` (never
        dropped); with exact corners none is expected.
        """
        if isinstance(points, bool) or not isinstance(points, int | np.integer) or points < 2:
            raise InputError(f"points must be an integer >= 2, got {points!r}")
        targets = np.linspace(*self.return_range, points)
        allocs: list[Allocation | None] = list(self.allocations(targets))
        reasons = {}
        for i, a in enumerate(allocs):
            if a.status != "optimal":
                bad = {k: v for k, v in a.checks.items() if not v["ok"]}
                reasons[i], allocs[i] = f"verification failed: {bad}", None
        return tabulate(targets, allocs, reasons, risk_free_rate, self.weights.columns)


def _between(values: np.ndarray, *, k: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (corners x columns) interpolated from corner ``k - 1`` to ``k``."""
    if len(values) == 1:
        return values[k]
    return values[k - 1] + theta * (values[k] - values[k - 1])


@dataclass(frozen=True)
class _Where:
    """Where each constraint's multiplier is: rows by label, bounds by label (their asset)."""

    rows: dict
    bounds: dict

    @classmethod
    def of(cls, pb, pieces) -> _Where:
        boxes = ((p.label, p.box()) for p in pieces)
        return cls(
            {label: j for j, label in enumerate(pb.row_names)},
            {label: box[0] for label, box in boxes if box is not None},
        )

    def prices(self, target_price: float, nu: np.ndarray, pi: np.ndarray, sides) -> tuple:
        """Binding sides with shadow prices: the multipliers of ``1/2 w'Cw - lam mu'w`` times 2
        (the objective is ``w'Cw``), signed as the solver's duals (>= 0 on an inequality);
        ``target_price`` (``lam`` in the target row's units) for the target. Bounds binding
        alike on one weight (long-only and a zero floor) share its multiplier equally."""
        sides = list(sides)
        shared = Counter(
            (self.bounds[label], side) for _, label, side in sides if label in self.bounds
        )
        out = []
        for name, label, side in sides:
            price = None
            if label == TARGET_RETURN:
                price = 2.0 * target_price
            elif label in self.rows:
                price = 2.0 * float(nu[self.rows[label]]) * (-1.0 if side == "min" else 1.0)
            elif label in self.bounds:
                i = self.bounds[label]
                price = 2.0 * float(pi[i]) * (-1.0 if side == "min" else 1.0) / shared[i, side]
            out.append({"name": name, "label": label, "side": side, "shadow_price": price})
        return tuple(out)


def qp_sweep(cm: Compiled, mu_vec: np.ndarray, targets, indices) -> dict:
    """Warm-started ProxQP solves of ``efficient_return`` at each target (QPs only).

    Returns the verified allocations by point index; points missing from the
    result are left to the full solver chain.
    """
    rm = cm.risk
    if rm.kind == "factor":
        # a factor program is large and sparse: ProxQP's dense backend is the wrong tool
        # (measured: 2.5 s a point at n=2000 against 0.17 s for Clarabel)
        return {}
    unit = return_unit(mu_vec)
    objective = Objective(variance=1.0)
    row = target_row(mu_vec, float(targets[0]), unit)
    prog = cm.program(objective, [*cm.cset.pieces, row], None)[0]
    scale = units_of(objective, rm, None).objective  # the program's objective is scaled
    if not prog.is_qp:
        return {}
    target_index = next(
        i for i, t in enumerate(prog.tags) if t is not None and t.name == TARGET_RETURN
    )
    try:
        dense = ProxQP(prog)
    except Exception:  # the sweep is an optimization; the chain remains
        return {}
    if target_index not in dense.row_of_general:
        # mu with a single non-zero entry makes the target row a box bound in ProxQP,
        # whose constant set_row_bound cannot change: leave the points to the chain
        return {}
    out: dict[int, Allocation] = {}
    for i in indices:
        r = float(targets[i])
        checker = cm.checker.extended([target_row(mu_vec, r, unit)])
        dense.set_row_bound(target_index, -r / unit)
        res = dense.solve()
        if res.x is None:
            continue
        w = res.x[: cm.n]
        checks = checker.check(Point(w, risk=rm))
        if not all(c["ok"] for c in checks.values()):
            continue
        alloc = cm.answer(
            w,
            mu_vec,
            checker,
            checks=checks,
            binding=partial(checker.binding, prog, res, scale=scale),
            status=res.status,
            solver="PROXQP",
            attempts=(res.attempt(),),
            timings={"compile": 0.0, "solve": res.seconds, "other": 0.0},
            objective=res.objective * scale,
        )
        out[i] = in_return_units(alloc, unit)
    return out
