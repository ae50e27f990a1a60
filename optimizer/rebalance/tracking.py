"""The tracking term of a rebalance, ``lambda (w - target)' C (w - target)``, as a deviation.

With ``C = R R' + diag(d)`` (:class:`Root`: a Cholesky factor of a dense
covariance, or the loadings and specific variances of a factor model), the
program holds ``y = R'(w - target)`` and minimizes
``lambda (|y|^2 + sum(d w^2)) - 2 lambda (d * target)'w``: its optimum is the
tracking variance itself (less ``lambda sum(d target^2)`` for a factor model).
Expanded as ``lambda w'Cw - 2 lambda target'C w``, the optimum would be the
tracking variance less ``lambda target' C target``, a figure thousands of times
larger than the variance left, and the solver's relative gap tolerance would
apply to that. Measured on the adviser case ($1.089M, 10 bps, with and without
a 5% turnover cap) and a two-factor model of it, at Clarabel's tolerance 1e-9:
trades within 0.01 to 1.3 cents of the exact optimum as a deviation, 0.5 to
1.3 cents expanded, 12 cents for the factor model expanded (its factor rows
``y = G'w``); at tolerance 1e-12 the expanded form stops short ("almost
solved") where the deviation converges. The deviation costs ``k`` variables
and rows more (``k = n`` for a dense covariance, the number of factors for a
factor model), about 5% of a 12-asset solve with the triangular Cholesky root.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.program import Builder
from optimizer.riskmodel import RiskModel


@dataclass(frozen=True, eq=False)
class Root:
    """``C = R R' + diag(d)``: what the tracking term of a program is built from.

    Attributes
    ----------
    rt : numpy.ndarray or scipy.sparse matrix, shape (k, n)
        ``R'``: the transposed Cholesky factor of a positive definite dense
        covariance (upper triangular, ``k = n``), an eigen-root of a singular one,
        or the loadings ``G'`` of a factor model.
    d : numpy.ndarray, shape (n,), or None
        Specific variances of a factor model (None for a dense covariance).
    """

    rt: np.ndarray | sp.spmatrix
    d: np.ndarray | None = None

    @classmethod
    def of(cls, risk: RiskModel) -> Root:
        """The root of a risk model (computed once per rebalancer)."""
        if risk.kind == "factor":
            return cls(risk.G.T, risk.d)
        try:
            return cls(np.linalg.cholesky(risk.dense).T)
        except np.linalg.LinAlgError:  # singular: the eigen-root of the positive part
            return cls(risk.root_t())


def add_tracking(b: Builder, root: Root, weight: float, n: int) -> int | None:
    """Add the quadratic part of ``weight * (w - target)' C (w - target)`` to ``b``.

    A block ``y`` (one variable per row of ``R'``) with rows
    ``R'w - y = R' target`` (constants per account) and
    ``weight * (|y|^2 + sum(d w^2))`` in ``P``.

    Returns
    -------
    int or None
        Index among ``b.blocks`` of the rows ``R'w - y`` (None for a zero weight).
    """
    if weight == 0:
        return None
    k = root.rt.shape[0]
    y = b.var(k)
    block = len(b.blocks)
    b.add(
        "zero",
        sp.hstack([sp.csr_matrix(root.rt), -sp.eye(k)]),
        np.r_[np.arange(n), np.arange(y, y + k)],
        np.zeros(k),
        homogeneous=False,
    )
    b.quad(np.arange(y, y + k), np.arange(y, y + k), np.full(k, 2.0 * weight))
    if root.d is not None:
        b.quad(np.arange(n), np.arange(n), 2.0 * weight * root.d)
    return block


def tracking_data(
    root: Root, weight: float, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Per-account data of the tracking term of :func:`add_tracking`.

    Returns
    -------
    q_w : numpy.ndarray, shape (n,)
        Linear objective on the weights (``-2 weight d * target``).
    root_b : numpy.ndarray, shape (k,), or None
        Constants of the rows ``R'w - y``: ``R' target`` (None for a zero weight).
    constant : float
        What the program's objective lacks of ``weight * |w - target|_C^2``
        (``weight * sum(d target^2)``).
    """
    n = len(target)
    if weight == 0:
        return np.zeros(n), None, 0.0
    root_b = np.asarray(root.rt @ target).reshape(-1)
    if root.d is None:
        return np.zeros(n), root_b, 0.0
    d_tau = root.d * target
    return -2.0 * weight * d_tau, root_b, weight * float(target @ d_tau)
