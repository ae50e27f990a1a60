"""Objectives and their lowering: one objective plus the constraint pieces become a program.

:func:`compile_program` assembles the canonical conic program of
:mod:`optimizer.program` from an :class:`Objective`, the risk model and the
constraint pieces (each lowers itself, :mod:`optimizer.pieces`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError
from optimizer.pieces import Layout, Piece, RiskLimit, lower_pieces
from optimizer.program import Builder, Program
from optimizer.riskmodel import RiskModel


@dataclass(frozen=True)
class Objective:
    """``minimize variance * w'Cw + l2 * ||w||^2 - mu_weight * mu'w + sum(extra terms)``.

    Parameters
    ----------
    variance : float
        Weight on the variance ``w'Cw``.
    mu_weight : float
        Weight on the expected return ``mu'w`` (maximized when positive).
    sharpe : bool
        Maximize ``(mu'w - rf) / sqrt(w'Cw)`` instead, by the homogenized
        (Charnes-Cooper) transformation; ``risk_free_rate`` gives rf.
    risk_free_rate : float
        Used with ``sharpe``.
    terms : tuple
        Further objective terms: objects with ``apply(builder, n)`` and
        ``key`` (see :mod:`optimizer.terms`).
    homogenize : bool
        Solve over ``y = t w`` with ``t >= 0`` free and every constraint in
        its perspective form, then report ``w = y / t``: the constraints hold
        for the normalized weights whatever scale the objective picks (used by
        constrained risk budgeting, whose log barrier fixes the scale).
    l2 : float
        Weight on ``||w||^2`` (an L2 regularization, in variance units: with
        ``variance = 1`` the quadratic is ``w'(C + l2 I)w``). With ``sharpe``
        it applies to the homogenized ``y``: ``y'(C + l2 I)y``, the Sharpe
        ratio of ``C + l2 I``. It is in the program only: risk is reported and
        verified on ``C``. Non-negative (:func:`l2_weight`).
    """

    variance: float = 0.0
    mu_weight: float = 0.0
    sharpe: bool = False
    risk_free_rate: float = 0.0
    terms: tuple = ()
    homogenize: bool = False
    l2: float = 0.0

    @property
    def homogeneous(self) -> bool:
        """True when the program is solved over ``y = t w``."""
        return self.sharpe or self.homogenize

    @property
    def mu_in_constraints(self) -> bool:
        """True when expected returns enter the program's rows (not only its linear term)."""
        return self.sharpe

    @property
    def structure(self) -> tuple:
        """What fixes the program's matrices (expected returns aside)."""
        return (
            self.variance,
            self.sharpe,
            self.homogenize,
            self.risk_free_rate if self.sharpe else None,
            tuple(t.key for t in self.terms),
            self.l2,
        )


@dataclass(frozen=True)
class Units:
    """How the core scales a program so that its answer does not depend on the data's units.

    The program minimizes the caller's objective divided by a constant:
    ``C / risk`` replaces the covariance, ``mu / linear`` the expected returns
    of the linear term, ``(mu - rf) / excess`` the homogenizing row of a
    Sharpe objective. The argmin is unchanged; ``objective`` turns the solved
    objective (and the duals) back into the caller's units.

    Attributes
    ----------
    risk : float
        Risk unit ``s`` (variance units): :func:`risk_unit`.
    linear : float
        Divisor of the expected returns in the linear term.
    excess : float
        Divisor of the Sharpe row: the largest ``|mu_i - rf|`` over
        :data:`REFERENCE_RETURN`.
    objective : float
        Factor from the solved objective (and its duals) to the caller's.
    """

    risk: float = 1.0
    linear: float = 1.0
    excess: float = 1.0
    objective: float = 1.0


#: The variance the core scales a covariance to: ``C / s`` with ``s = mean variance / 0.04``
#: has a mean variance of 0.04 (20% volatility), the regime of annualized data in which the
#: solver settings were tuned, so typical inputs are solved as they always were.
REFERENCE_VARIANCE = 0.04

#: The size the core scales expected returns to: the largest ``|mu_i|`` (or excess return)
#: becomes 0.1 (10% a year), again the regime in which the solver settings were tuned.
REFERENCE_RETURN = 0.1

#: No scaling: objectives with further terms (CVaR, log barrier) keep the caller's units;
#: their models choose the weights of the quadratic themselves.
NO_UNITS = Units()


def return_unit(returns: np.ndarray) -> float:
    """The core's return unit: the largest ``|returns_i|`` over :data:`REFERENCE_RETURN`.

    1.0 when every return is zero (no scale to take out). Content-derived.
    """
    top = float(np.max(np.abs(returns), initial=0.0))
    return top / REFERENCE_RETURN if math.isfinite(top) and top > 0 else 1.0


def risk_unit(rm: RiskModel | None) -> float:
    """The core's risk unit ``s``: the covariance's mean variance over :data:`REFERENCE_VARIANCE`.

    Content-derived (:attr:`RiskModel.unit`); 1.0 without a risk model.
    """
    return rm.unit / REFERENCE_VARIANCE if rm is not None else 1.0


def units_of(objective: Objective, rm: RiskModel | None, mu: np.ndarray | None) -> Units:
    """The scaling of ``objective`` for this covariance and these expected returns.

    Derived from the content only (never from module state), so a cached
    program and a fresh one are scaled alike.

    * a quadratic objective (``variance > 0``): everything over the risk
      unit ``s`` (:func:`risk_unit`): ``variance * w'(C/s)w - mu_weight * (mu/s)'w``;
    * a Sharpe objective: ``y'(C/s)y`` subject to ``((mu - rf)/m)'y = 1``
      with ``m = max |mu_i - rf| / REFERENCE_RETURN``; the solved objective
      times ``s / m^2``;
    * an L2 term (``l2 > 0``) scales like a variance: ``(l2/s) ||w||^2``, and
      makes a linear objective quadratic (scaled as above);
    * a linear objective (``variance = 0``, ``l2 = 0``): ``-mu_weight * (mu/m)'w``
      with ``m = max |mu_i| / REFERENCE_RETURN``;
    * an objective with further terms: no scaling (:data:`NO_UNITS`).

    With these, ``min_variance(c * C)`` and ``max_sharpe(a * mu, a^2 * C)``
    solve the same program as ``C`` and ``(mu, C)`` up to rounding, for any
    positive ``c`` and ``a`` with the products inside float64's normal range
    (about 1e-150 to 1e150 for the variances).
    """
    if objective.terms:
        return NO_UNITS
    s = risk_unit(rm)
    if objective.sharpe:
        if mu is None:
            return Units(risk=s, objective=s)
        m = return_unit(mu - objective.risk_free_rate)
        return Units(risk=s, excess=m, objective=s / (m * m))
    if objective.variance or objective.l2:
        return Units(risk=s, linear=s, objective=s)
    if objective.mu_weight and mu is not None:
        m = return_unit(mu)
        return Units(linear=m, objective=m)
    return NO_UNITS


def l2_weight(value: object) -> float:
    """The weight ``gamma`` of an L2 regularization ``gamma * ||w||^2``, checked.

    Parameters
    ----------
    value : object
        A real, finite, non-negative number (decimals, in the objective's
        variance units); bool and text are refused.

    Returns
    -------
    float

    Raises
    ------
    InputError
        Naming ``l2_gamma`` and the fix, for text, bool, NaN, infinity or a
        negative number.
    """
    fix = "give a finite number >= 0 (0 turns the regularization off; 0.01 to 1 is typical)"
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InputError(f"l2_gamma must be a number, got {value!r}: {fix}")
    gamma = float(value)
    if not math.isfinite(gamma) or gamma < 0:
        raise InputError(f"l2_gamma must be finite and non-negative, got {value!r}: {fix}")
    return gamma


def add_risk(b: Builder, rm: RiskModel, weight: float, n: int) -> None:
    """Add ``weight * w'Cw`` to the objective (factor form when available)."""
    if weight == 0:
        return
    if rm.kind == "factor":
        k = rm.G.shape[1]
        y = b.var(k)
        b.add(
            "zero",
            sp.hstack([sp.csr_matrix(rm.G.T), -sp.eye(k)]),
            np.concatenate([np.arange(n), np.arange(y, y + k)]),
            np.zeros(k),
            homogeneous=False,
        )
        b.quad(np.arange(y, y + k), np.arange(y, y + k), np.full(k, 2.0 * weight))
        b.quad(np.arange(n), np.arange(n), 2.0 * weight * rm.d)
    else:
        b.quad_dense(0, 2.0 * weight * rm.dense)


def compile_program(
    objective: Objective,
    pieces: Sequence[Piece],
    rm: RiskModel | None,
    mu: np.ndarray | None,
) -> Program:
    """Lower an objective and constraint pieces to a canonical program, scaled.

    The program is scaled by :func:`units_of` (the covariance over its risk
    unit, the expected returns over theirs): its objective is the caller's
    divided by ``units_of(...).objective``, its argmin the caller's. The
    expected returns enter the linear term as ``-mu_weight * mu / linear`` (or
    the homogenizing row of a Sharpe objective). The constraint rows keep the
    caller's units, but for the cones of volatility limits (tracking error, a
    target volatility), divided by ``sqrt(s)`` and recorded in
    :attr:`Program.row_scale`.
    """
    n = len(rm.assets) if rm is not None else len(mu)
    units = units_of(objective, rm, mu)
    b = Builder(n, homogenize=objective.homogeneous)
    if objective.homogenize and not objective.sharpe:
        b.add("nonneg", -np.ones((1, 1)), [b.t_index], [0.0], homogeneous=False)
    if objective.sharpe:
        t = b.t_index
        excess = np.concatenate([mu, [-objective.risk_free_rate]]) / units.excess
        b.add("zero", excess[None, :], np.r_[np.arange(n), t], [1.0], homogeneous=False)
        b.add("nonneg", -np.ones((1, 1)), [t], [0.0], homogeneous=False)
        add_risk(b, rm, 1.0 / units.risk, n)
    elif rm is not None:
        add_risk(b, rm, objective.variance / units.risk, n)
    if objective.l2:
        # gamma * ||w||^2 (of y for a Sharpe objective) scales like a variance: over s
        b.quad(np.arange(n), np.arange(n), np.full(n, 2.0 * objective.l2 / units.risk))
    if objective.mu_weight and not objective.sharpe and mu is not None:
        b.lin(np.arange(n), -objective.mu_weight / units.linear * mu)
    for term in objective.terms:
        term.apply(b, n)
    layout = Layout(n, risk=rm)
    limits = [p for p in pieces if isinstance(p, RiskLimit)]
    lower_pieces(b, [p for p in pieces if not isinstance(p, RiskLimit)], layout)
    if limits:
        # volatility limits in volatility units: their cones over sqrt(s), unit-free too
        start = len(b.blocks)
        lower_pieces(b, limits, layout)
        if rm is not None:
            b.scale_blocks(start, math.sqrt(risk_unit(rm)))
    return b.build()
