"""Objectives and their lowering: one objective plus the constraint pieces become a program.

:func:`compile_program` assembles the canonical conic program of
:mod:`optimizer.program` from an :class:`Objective`, the risk model and the
constraint pieces (each lowers itself, :mod:`optimizer.pieces`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.pieces import Layout, Piece, lower_pieces
from optimizer.program import Builder, Program
from optimizer.riskmodel import RiskModel


@dataclass(frozen=True)
class Objective:
    """``minimize variance * w'Cw - mu_weight * mu'w + sum(extra terms)``.

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
    """

    variance: float = 0.0
    mu_weight: float = 0.0
    sharpe: bool = False
    risk_free_rate: float = 0.0
    terms: tuple = ()
    homogenize: bool = False

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
        )


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
    """Lower an objective and constraint pieces to a canonical program.

    The expected returns enter the linear term as ``-mu_weight * mu`` (or the
    homogenizing row of a Sharpe objective).
    """
    n = len(rm.assets) if rm is not None else len(mu)
    b = Builder(n, homogenize=objective.homogeneous)
    if objective.homogenize and not objective.sharpe:
        b.add("nonneg", -np.ones((1, 1)), [b.t_index], [0.0], homogeneous=False)
    if objective.sharpe:
        t = b.t_index
        excess = np.concatenate([mu, [-objective.risk_free_rate]])
        b.add("zero", excess[None, :], np.r_[np.arange(n), t], [1.0], homogeneous=False)
        b.add("nonneg", -np.ones((1, 1)), [t], [0.0], homogeneous=False)
        add_risk(b, rm, 1.0, n)
    elif rm is not None:
        add_risk(b, rm, objective.variance, n)
    if objective.mu_weight and not objective.sharpe and mu is not None:
        b.lin(np.arange(n), -objective.mu_weight * mu)
    for term in objective.terms:
        term.apply(b, n)
    lower_pieces(b, pieces, Layout(n, risk=rm))
    return b.build()
