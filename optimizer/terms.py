"""Objective terms beyond risk and return, added to a program by the core.

A term has a hashable ``key`` (its structure, for the compile cache) and
``apply(builder, n)``, which adds its variables, rows and objective entries
to a :class:`~optimizer.program.Builder` whose first ``n`` variables are the
weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError


@dataclass(frozen=True, eq=False)
class CVaRTerm:
    """Conditional value at risk of the portfolio over scenarios, as an LP.

    ``CVaR_alpha(w) = min_z z + 1/((1-alpha) S) sum_s max(-r_s'w - z, 0)``
    (Rockafellar and Uryasev 2000, "Optimization of conditional
    value-at-risk", Journal of Risk 2(3)).

    Parameters
    ----------
    scenarios : numpy.ndarray, shape (S, n)
        Scenario returns (periodic decimals), one row per scenario.
    alpha : float
        Confidence level in (0, 1), e.g. 0.95.
    weight : float
        Multiplier of the term in the objective.
    """

    scenarios: np.ndarray
    alpha: float
    weight: float = 1.0
    key: tuple = field(init=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise InputError(f"alpha must be in (0, 1), got {self.alpha!r}")
        r = np.ascontiguousarray(self.scenarios, dtype=float)
        object.__setattr__(self, "scenarios", r)
        object.__setattr__(
            self, "key", ("cvar", r.shape, hash(r.tobytes()), self.alpha, self.weight)
        )

    def apply(self, b, n: int) -> None:
        if b.homogenize:
            raise InputError("a CVaR objective cannot be combined with a ratio objective")
        s = self.scenarios.shape[0]
        z = b.var(1)
        u = b.var(s)
        cols = np.concatenate([np.arange(n), [z], np.arange(u, u + s)])
        mat = sp.hstack(
            [sp.csr_matrix(-self.scenarios), -np.ones((s, 1)), -sp.eye(s)], format="csr"
        )
        b.add("nonneg", mat, cols, np.zeros(s), homogeneous=False)
        b.add("nonneg", -sp.eye(s), np.arange(u, u + s), np.zeros(s), homogeneous=False)
        b.lin([z], [self.weight])
        b.lin(np.arange(u, u + s), np.full(s, self.weight / ((1.0 - self.alpha) * s)))


@dataclass(frozen=True, eq=False)
class LogBarrierTerm:
    """``-weight * sum_i budgets_i * log(w_i)``: the risk-budgeting barrier.

    Minimizing ``1/2 w'Cw - sum b_i log w_i`` over ``w > 0`` gives weights
    whose risk contributions are proportional to ``b`` (Spinu 2013, "An
    algorithm for computing risk parity weights"; Roncalli 2013). Each
    ``tau_i <= log w_i`` is an exponential cone.

    Parameters
    ----------
    budgets : numpy.ndarray, shape (n,)
        Positive risk budgets.
    weight : float
        Multiplier of the barrier.
    """

    budgets: np.ndarray
    weight: float = 1.0
    key: tuple = field(init=False)

    def __post_init__(self) -> None:
        bud = np.asarray(self.budgets, dtype=float)
        object.__setattr__(self, "budgets", bud)
        object.__setattr__(self, "key", ("logbarrier", bud.tobytes(), self.weight))

    def apply(self, b, n: int) -> None:
        tau = b.var(n)
        rows = np.concatenate([3 * np.arange(n), 3 * np.arange(n) + 2])
        cols = np.concatenate([tau + np.arange(n), np.arange(n)])
        m = sp.csr_matrix((-np.ones(2 * n), (rows, cols)), shape=(3 * n, b.nx))
        const = np.tile([0.0, 1.0, 0.0], n)
        b.add("exp", m, np.arange(b.nx), const, homogeneous=False)
        b.lin(tau + np.arange(n), -self.weight * self.budgets)
