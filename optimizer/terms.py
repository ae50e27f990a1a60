"""Objective terms beyond risk and return, added to a program by the core.

A term has a hashable ``key`` (its structure, for the compile cache) and
``apply(builder, n)``, which adds its variables, rows and objective entries
to a :class:`~optimizer.program.Builder` whose first ``n`` variables are the
weights.

The scenario risk measures (:class:`CVaRTerm`, :class:`SemiDeviationTerm`,
:class:`MADTerm`, :class:`CDaRTerm`, :class:`WorstRealizationTerm`) share one
protocol: ``epigraph(builder, n)`` adds auxiliary variables and rows and
returns a linear expression ``(cols, coefs)`` whose least value over the
auxiliaries, at fixed weights, is the measure (times ``scale``); ``apply``
minimizes ``weight`` times that expression, and :class:`RiskMeasureLimit`
bounds it as a constraint piece. ``value(w)`` recomputes the measure from
weights with numpy, independently of any solver: it is what the models report
and what the verification checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError
from optimizer.pieces import Layout, Piece, Point
from optimizer.program import Tag


def tail_mean(losses: np.ndarray, alpha: float) -> float:
    """CVaR of equally likely losses, from the sorted losses.

    Parameters
    ----------
    losses : numpy.ndarray, shape (S,)
        Loss in each scenario (a gain is a negative loss).
    alpha : float
        Confidence level in (0, 1).

    Returns
    -------
    float
        The mean of the worst ``k = (1 - alpha) S`` losses, the last one
        counted fractionally when ``k`` is not whole (Acerbi and Tasche 2002,
        "On the coherence of expected shortfall", proposition 3.2); equal to
        the Rockafellar-Uryasev minimum. With ``k < 1`` it is the worst loss.
    """
    l = np.sort(np.asarray(losses, dtype=float))[::-1]
    k = (1.0 - alpha) * len(l)
    # (1 - alpha) * S is often a whole number up to rounding (0.05 * 200)
    whole = round(k)
    if whole >= 1 and abs(k - whole) <= 1e-9 * k:
        k = float(whole)
    if k < 1.0:
        return float(l[0])
    m = min(int(math.floor(k)), len(l))
    tail = float(l[:m].sum())
    if m < len(l):
        tail += (k - m) * float(l[m])
    return tail / k


def drawdowns(path_returns: np.ndarray) -> np.ndarray:
    """Drawdowns of the uncompounded cumulative return, shape (T,).

    ``D_t = max(0, max_{s <= t} c_s) - c_t`` with ``c_t = r_1 + ... + r_t``:
    the fall from the highest cumulative return so far, the start (0)
    included (Chekhlov, Uryasev and Zabarankin 2005).
    """
    c = np.cumsum(np.asarray(path_returns, dtype=float))
    return np.maximum(np.maximum.accumulate(c), 0.0) - c


def _matrix(scenarios) -> np.ndarray:
    r = np.ascontiguousarray(scenarios, dtype=float)
    if r.ndim != 2 or r.shape[0] < 1:
        raise InputError(f"scenario returns must be a 2-D array (S x n), got shape {r.shape}")
    return r


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}")


def _digest(r: np.ndarray) -> tuple:
    return (r.shape, hash(r.tobytes()))


class _ScenarioMeasure:
    """The protocol shared by the scenario risk terms (see the module docstring)."""

    title = "scenario risk"
    weight: float
    scale: float

    def epigraph(self, b, n: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def value(self, w: np.ndarray) -> float:  # pragma: no cover
        raise NotImplementedError

    def _open(self, b) -> None:
        if b.homogenize:
            raise InputError(f"a {self.title} cannot be combined with a ratio objective")

    def apply(self, b, n: int) -> None:
        """Add ``weight`` times the measure to the objective."""
        cols, coefs = self.epigraph(b, n)
        b.lin(cols, self.weight * coefs)


@dataclass(frozen=True, eq=False)
class CVaRTerm(_ScenarioMeasure):
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
    scale : float
        Units factor of the measure (1: periodic losses).
    """

    scenarios: np.ndarray
    alpha: float
    weight: float = 1.0
    scale: float = 1.0
    key: tuple = field(init=False)
    title = "CVaR objective"

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)
        r = _matrix(self.scenarios)
        object.__setattr__(self, "scenarios", r)
        object.__setattr__(self, "key", ("cvar", _digest(r), self.alpha, self.weight, self.scale))

    def epigraph(self, b, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``u_s >= -r_s'w - z``, ``u >= 0``; expression ``z + sum(u) / ((1-alpha) S)``."""
        self._open(b)
        s = self.scenarios.shape[0]
        z = b.var(1)
        u = b.var(s)
        cols = np.concatenate([np.arange(n), [z], np.arange(u, u + s)])
        mat = sp.hstack(
            [sp.csr_matrix(-self.scenarios), -np.ones((s, 1)), -sp.eye(s)], format="csr"
        )
        b.add("nonneg", mat, cols, np.zeros(s), homogeneous=False)
        b.add("nonneg", -sp.eye(s), np.arange(u, u + s), np.zeros(s), homogeneous=False)
        coefs = np.concatenate([[1.0], np.full(s, 1.0 / ((1.0 - self.alpha) * s))])
        return np.concatenate([[z], np.arange(u, u + s)]), self.scale * coefs

    def value(self, w: np.ndarray) -> float:
        """``scale`` times the CVaR of the scenario losses ``-R w``."""
        return self.scale * tail_mean(-(self.scenarios @ w), self.alpha)


@dataclass(frozen=True, eq=False)
class SemiDeviationTerm(_ScenarioMeasure):
    """Semi-deviation ``sqrt(mean(max(b_t - r_t'w, 0)^2))``, as a second-order cone.

    Markowitz (1959), "Portfolio selection: efficient diversification of
    investments", chapter 9; Estrada (2008), "Mean-semivariance
    optimization: a heuristic approach", Journal of Applied Finance 18(1).
    With slacks ``s_t >= b_t - r_t'w``, ``s >= 0`` and ``||s||_2 <= t`` the
    measure is ``t / sqrt(T)`` at the optimum.

    Parameters
    ----------
    scenarios : numpy.ndarray, shape (T, n)
        Periodic returns (decimals).
    threshold : float, optional
        The least acceptable periodic return ``b``; None: the portfolio's own
        mean return ``mean(R) w`` (deviations below the mean).
    weight : float
        Multiplier of the term in the objective.
    scale : float
        Units factor (``sqrt(periods per year)`` annualizes).
    """

    scenarios: np.ndarray
    threshold: float | None = None
    weight: float = 1.0
    scale: float = 1.0
    key: tuple = field(init=False)
    title = "semi-deviation objective"

    def __post_init__(self) -> None:
        r = _matrix(self.scenarios)
        object.__setattr__(self, "scenarios", r)
        key = ("semi_deviation", _digest(r), self.threshold, self.weight, self.scale)
        object.__setattr__(self, "key", key)

    def _centred(self) -> tuple[np.ndarray, np.ndarray]:
        """``(M, c)``: the downside deviation of scenario t is ``max(c_t - M_t w, 0)``."""
        r = self.scenarios
        if self.threshold is None:
            return r - r.mean(axis=0), np.zeros(r.shape[0])
        return r, np.full(r.shape[0], float(self.threshold))

    def epigraph(self, b, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``s >= c - M w``, ``s >= 0``, ``(t, s)`` in the cone; expression ``t / sqrt(T)``."""
        self._open(b)
        m, c = self._centred()
        s_rows = m.shape[0]
        s = b.var(s_rows)
        t = b.var(1)
        scen = np.arange(s, s + s_rows)
        mat = sp.hstack([sp.csr_matrix(-m), -sp.eye(s_rows)], format="csr")
        b.add("nonneg", mat, np.concatenate([np.arange(n), scen]), -c, homogeneous=False)
        b.add("nonneg", -sp.eye(s_rows), scen, np.zeros(s_rows), homogeneous=False)
        b.add(
            "soc",
            -sp.eye(s_rows + 1),
            np.concatenate([[t], scen]),
            np.zeros(s_rows + 1),
            homogeneous=False,
        )
        return np.array([t]), np.array([self.scale / math.sqrt(s_rows)])

    def value(self, w: np.ndarray) -> float:
        """``scale * sqrt(mean(max(c - M w, 0)^2))``."""
        m, c = self._centred()
        down = np.maximum(c - m @ w, 0.0)
        return self.scale * math.sqrt(float(np.mean(down * down)))


@dataclass(frozen=True, eq=False)
class MADTerm(_ScenarioMeasure):
    """Mean absolute deviation ``mean(|(r_t - rbar)'w|)``, as an LP.

    Konno and Yamazaki (1991), "Mean-absolute deviation portfolio
    optimization model and its applications to Tokyo stock market",
    Management Science 37(5), 519-531: with ``d_t >= +-(r_t - rbar)'w``
    the measure is ``sum(d) / T`` at the optimum.

    Parameters
    ----------
    scenarios : numpy.ndarray, shape (T, n)
        Periodic returns (decimals).
    weight : float
        Multiplier of the term in the objective.
    scale : float
        Units factor (``sqrt(periods per year)`` annualizes).
    """

    scenarios: np.ndarray
    weight: float = 1.0
    scale: float = 1.0
    key: tuple = field(init=False)
    title = "mean absolute deviation objective"

    def __post_init__(self) -> None:
        r = _matrix(self.scenarios)
        object.__setattr__(self, "scenarios", r)
        object.__setattr__(self, "key", ("mad", _digest(r), self.weight, self.scale))

    def epigraph(self, b, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``d >= M w`` and ``d >= -M w`` (M centred); expression ``sum(d) / T``."""
        self._open(b)
        m = self.scenarios - self.scenarios.mean(axis=0)
        rows = m.shape[0]
        d = b.var(rows)
        cols = np.concatenate([np.arange(n), np.arange(d, d + rows)])
        up = sp.hstack([sp.csr_matrix(m), -sp.eye(rows)], format="csr")
        down = sp.hstack([sp.csr_matrix(-m), -sp.eye(rows)], format="csr")
        b.add("nonneg", sp.vstack([up, down]), cols, np.zeros(2 * rows), homogeneous=False)
        return np.arange(d, d + rows), np.full(rows, self.scale / rows)

    def value(self, w: np.ndarray) -> float:
        """``scale * mean(|(R - rbar) w|)``."""
        r = self.scenarios
        return self.scale * float(np.mean(np.abs((r - r.mean(axis=0)) @ w)))


@dataclass(frozen=True, eq=False)
class CDaRTerm(_ScenarioMeasure):
    """Conditional drawdown at risk of the uncompounded cumulative return, as an LP.

    Chekhlov, Uryasev and Zabarankin (2005), "Drawdown measure in portfolio
    optimization", International Journal of Theoretical and Applied Finance
    8(1), 13-58. With ``c_t = (r_1 + ... + r_t)'w`` and running peaks
    ``u_t >= c_t``, ``u_t >= u_{t-1}``, ``u_1 >= 0`` (the start counts as a
    peak), the drawdowns are ``u_t - c_t`` and their CVaR at ``alpha`` is
    ``min_z z + 1/((1-alpha) T) sum_t max(u_t - c_t - z, 0)``.

    Parameters
    ----------
    scenarios : numpy.ndarray, shape (T, n)
        Periodic returns in time order (decimals).
    alpha : float
        Confidence level in (0, 1): 0.95 averages the worst 5% of drawdowns.
    weight : float
        Multiplier of the term in the objective.
    scale : float
        Units factor (1: drawdowns in cumulative-return units).
    """

    scenarios: np.ndarray
    alpha: float
    weight: float = 1.0
    scale: float = 1.0
    key: tuple = field(init=False)
    title = "CDaR objective"

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)
        r = _matrix(self.scenarios)
        object.__setattr__(self, "scenarios", r)
        key = ("cdar", _digest(r), self.alpha, self.weight, self.scale)
        object.__setattr__(self, "key", key)

    def epigraph(self, b, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Peak rows, drawdown-tail rows; expression ``z + sum(v) / ((1-alpha) T)``."""
        self._open(b)
        cum = np.cumsum(self.scenarios, axis=0)
        rows = cum.shape[0]
        u = b.var(rows)
        z = b.var(1)
        v = b.var(rows)
        w_cols, u_cols, v_cols = np.arange(n), np.arange(u, u + rows), np.arange(v, v + rows)
        eye = sp.eye(rows, format="csr")
        # u_t >= c_t
        b.add(
            "nonneg",
            sp.hstack([sp.csr_matrix(cum), -eye], format="csr"),
            np.concatenate([w_cols, u_cols]),
            np.zeros(rows),
            homogeneous=False,
        )
        # u_1 >= 0 and u_t >= u_{t-1}
        steps = sp.eye(rows, format="csr") - sp.eye(rows, k=-1, format="csr")
        b.add("nonneg", -steps, u_cols, np.zeros(rows), homogeneous=False)
        # v_t >= u_t - c_t - z, v >= 0
        b.add(
            "nonneg",
            sp.hstack([sp.csr_matrix(-cum), eye, -np.ones((rows, 1)), -eye], format="csr"),
            np.concatenate([w_cols, u_cols, [z], v_cols]),
            np.zeros(rows),
            homogeneous=False,
        )
        b.add("nonneg", -eye, v_cols, np.zeros(rows), homogeneous=False)
        coefs = np.concatenate([[1.0], np.full(rows, 1.0 / ((1.0 - self.alpha) * rows))])
        return np.concatenate([[z], v_cols]), self.scale * coefs

    def value(self, w: np.ndarray) -> float:
        """``scale`` times the CVaR of the drawdowns of ``R w`` (:func:`drawdowns`)."""
        return self.scale * tail_mean(drawdowns(self.scenarios @ w), self.alpha)


@dataclass(frozen=True, eq=False)
class WorstRealizationTerm(_ScenarioMeasure):
    """The worst periodic loss ``max_t(-r_t'w)`` (minimax), as an LP.

    Young (1998), "A minimax portfolio selection rule with linear
    programming solution", Management Science 44(5), 673-683: with
    ``z >= -r_t'w`` for every t the measure is ``z`` at the optimum.

    Parameters
    ----------
    scenarios : numpy.ndarray, shape (T, n)
        Periodic returns (decimals).
    weight : float
        Multiplier of the term in the objective.
    scale : float
        Units factor (1: a periodic loss).
    """

    scenarios: np.ndarray
    weight: float = 1.0
    scale: float = 1.0
    key: tuple = field(init=False)
    title = "worst-realization objective"

    def __post_init__(self) -> None:
        r = _matrix(self.scenarios)
        object.__setattr__(self, "scenarios", r)
        key = ("worst_realization", _digest(r), self.weight, self.scale)
        object.__setattr__(self, "key", key)

    def epigraph(self, b, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``z >= -r_t'w``; expression ``z``."""
        self._open(b)
        rows = self.scenarios.shape[0]
        z = b.var(1)
        mat = sp.hstack([sp.csr_matrix(-self.scenarios), -np.ones((rows, 1))], format="csr")
        b.add("nonneg", mat, np.r_[np.arange(n), z], np.zeros(rows), homogeneous=False)
        return np.array([z]), np.array([self.scale])

    def value(self, w: np.ndarray) -> float:
        """``scale * max(-R w)``."""
        return self.scale * float(np.max(-(self.scenarios @ w)))


@dataclass(frozen=True, eq=False)
class RiskMeasureLimit(Piece):
    """``measure(w) <= max`` for a scenario risk term: a constraint piece.

    Lowered through the term's ``epigraph`` (its auxiliary variables and
    rows, then one row ``expression <= max`` tagged with the constraint's
    name), verified from the weights by ``term.value``, and relaxed like any
    piece by the diagnosis and the soft-constraint stages.

    Parameters
    ----------
    name, label : str
        The constraint's name (in messages, checks and binding) and label.
    term : CVaRTerm, SemiDeviationTerm, MADTerm, CDaRTerm or WorstRealizationTerm
        The measure (its ``weight`` is ignored here; its ``scale`` fixes the units).
    max : float
        The limit, in the measure's units.
    """

    term: object = None
    max: float = math.inf
    priority: int | None = None
    kind: str = ""

    @property
    def key(self) -> tuple:
        meta = (type(self).__name__, self.name, self.label, self.priority, self.kind)
        return (*meta, self.term.key, self.max)

    @property
    def limits(self) -> tuple[float, float]:
        return -math.inf, self.max

    def value(self, pt: Point) -> float:
        return self.term.value(pt.w)

    def widened(self, amount: float) -> RiskMeasureLimit:
        return replace(self, max=self.max + amount)

    @staticmethod
    def lower_all(
        pieces: Sequence[RiskMeasureLimit], b, layout: Layout, slack: dict | None = None
    ) -> None:
        for p in pieces:
            cols, coefs = p.term.epigraph(b, layout.n)
            if slack is not None:
                cols, coefs = np.r_[cols, slack[p.name]], np.r_[coefs, -1.0]
            b.add("nonneg", coefs[None, :], cols, [p.max], [Tag(p.name, p.label, "max")])


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
