"""Mean-risk allocation over return scenarios: semi-deviation, MAD, CDaR, worst realization, CVaR.

Each risk measure is a convex function of the weights computed from a table
of periodic returns ``R`` (T x n, one row per period or equally likely
scenario), and each is minimized as a linear or second-order cone program
through the convex core (:mod:`optimizer.terms` lowers it), under the
policy's constraint objects, like every other model:

================== ============================================== ==============================
``risk``           measure of the portfolio returns ``x = R w``   formulation (reference)
================== ============================================== ==============================
semi_deviation     ``sqrt(mean(max(b - x_t, 0)^2))``, ``b`` the   SOCP (Markowitz 1959,
                   mean of ``x`` (or a fixed ``threshold``)       Estrada 2008)
mad                ``mean(|x_t - mean(x)|)``                      LP (Konno and Yamazaki 1991)
cdar               CVaR at ``alpha`` of the drawdowns of the      LP (Chekhlov, Uryasev and
                   uncompounded cumulative return                 Zabarankin 2005)
worst_realization  ``max_t(-x_t)``, the worst periodic loss       LP (Young 1998)
cvar               CVaR at ``alpha`` of the losses ``-x_t``       LP (Rockafellar and Uryasev
                                                                  2000), as :func:`models.cvar.min_cvar`
================== ============================================== ==============================

Units. Returns in are periodic decimals. The semi-deviation and the MAD are
dispersions of one period's return, reported annualized like a volatility:
times ``sqrt(periods per year)`` (exact for independent normal returns; the
usual convention, PyPortfolioOpt's for the semi-deviation). The CDaR is a fall
of the cumulative return along the whole sample path; the worst realization
and the CVaR are losses of one period: none of the three is scaled. The
periods per year come from a DatetimeIndex (daily 252, weekly 52, monthly
12, ...) or ``periods_per_year``; any other index means no scaling. Means
divide by ``T`` (skfolio and Riskfolio-Lib divide the semi-deviation by
``T - 1``: the same weights, a measure ``sqrt(T / (T - 1))`` larger).

:func:`min_risk` finds the least-risk weights (above a target return when
given); :func:`efficient_risk` the highest expected return whose risk is at
most a target; :func:`portfolio_risk` computes a measure for given weights.

References
----------
H. Markowitz (1959), "Portfolio selection: efficient diversification of
investments", Wiley, chapter 9 (the semi-variance).
J. Estrada (2008), "Mean-semivariance optimization: a heuristic approach",
Journal of Applied Finance 18(1), 57-72.
H. Konno and H. Yamazaki (1991), "Mean-absolute deviation portfolio
optimization model and its applications to Tokyo stock market", Management
Science 37(5), 519-531.
A. Chekhlov, S. Uryasev and M. Zabarankin (2005), "Drawdown measure in
portfolio optimization", International Journal of Theoretical and Applied
Finance 8(1), 13-58.
M. R. Young (1998), "A minimax portfolio selection rule with linear
programming solution", Management Science 44(5), 673-683.
R. T. Rockafellar and S. Uryasev (2000), "Optimization of conditional
value-at-risk", Journal of Risk 2(3), 21-41.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models._common import resolve_periods
from optimizer.allocation import Allocation
from optimizer.compiled import Compiled
from optimizer.errors import InfeasibleError, InputError
from optimizer.objective import Objective
from optimizer.pieces import Row
from optimizer.terms import (
    CDaRTerm,
    CVaRTerm,
    MADTerm,
    RiskMeasureLimit,
    SemiDeviationTerm,
    WorstRealizationTerm,
)
from optimizer.universe import Universe
from optimizer.validation import finite_number, is_real, names, vector

__all__ = ["RISK_MEASURES", "efficient_risk", "min_risk", "portfolio_risk"]

#: The risk measures of :func:`min_risk`, :func:`efficient_risk` and :func:`portfolio_risk`.
RISK_MEASURES = ("semi_deviation", "mad", "cdar", "worst_realization", "cvar")
#: Names of the constraints the models add (in checks, binding and diagnoses).
TARGET_RETURN = "target return"
TARGET_RISK = "target risk"
#: The measures with a confidence level.
_WITH_ALPHA = ("cdar", "cvar")
#: How messages name each measure.
_LABELS = {
    "semi_deviation": "semi-deviation",
    "mad": "mean absolute deviation",
    "cdar": "CDaR",
    "worst_realization": "worst realization",
    "cvar": "CVaR",
}


# ----------------------------------------------------------------------------- input checks
# (shared with models.cvar: one implementation of each check)


def scenario_values(frame, what: str) -> np.ndarray:
    """The values (T, n) of a returns table ``frame`` (argument ``what``), checked.

    Raises InputError, naming ``what``: not a DataFrame, no columns, duplicate
    or non-numeric columns, fewer than 2 rows, NaN or inf (naming the assets
    and the first row).
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            f"{what} must be a pandas DataFrame (periods or scenarios x assets), "
            f"got {type(frame).__name__}"
        )
    if frame.shape[1] == 0:
        raise InputError(f"{what} has no columns (assets)")
    dup = frame.columns[frame.columns.duplicated()].unique()
    if len(dup):
        raise InputError(f"{what} has duplicate asset ids: {names(dup)}")
    bad = [
        str(c)
        for c in frame.columns
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
    ]
    if bad:
        raise InputError(f"{what} has non-numeric columns: {names(bad)}")
    if len(frame) < 2:
        raise InputError(f"{what} has {len(frame)} scenario(s); at least 2 are needed")
    values = frame.to_numpy(dtype=float)
    finite = np.isfinite(values)
    if not finite.all():
        cols = frame.columns[~finite.all(axis=0)]
        first = frame.index[int(np.flatnonzero(~finite.all(axis=1))[0])]
        if isinstance(first, pd.Timestamp) and first == first.normalize():
            first = first.strftime("%Y-%m-%d")
        raise InputError(
            f"{what} has NaN or inf values for assets: {names(cols)} (first in row {first}); "
            "drop or fill those rows (returns.from_prices(missing=...) does it from prices)"
        )
    return values


def confidence(alpha: float) -> float:
    """``alpha`` as a float in (0, 1), or an InputError naming it (bool and text refused).

    Parameters
    ----------
    alpha : float
        A confidence level (0.95: the worst 5% of outcomes).

    Returns
    -------
    float
    """
    if alpha is None or not is_real(alpha):  # bool and text are refused, not converted
        raise InputError(f"alpha must be a number in (0, 1), got {alpha!r}")
    a = float(alpha)
    if not 0.0 < a < 1.0:  # NaN too
        raise InputError(
            f"alpha must be in (0, 1) (the confidence level, e.g. 0.95), got {alpha!r}"
        )
    return a


def periods(index: pd.Index, periods_per_year) -> float:
    """Periods per year: given (checked), inferred from a DatetimeIndex, else 1."""
    if periods_per_year is not None or isinstance(index, pd.DatetimeIndex):
        return resolve_periods(pd.DataFrame(index=index), periods_per_year)
    return 1.0


def _risk_name(risk) -> str:
    key = risk.strip().lower() if isinstance(risk, str) else risk
    if key not in RISK_MEASURES:
        raise InputError(
            f"unknown risk measure {risk!r}; choose from {', '.join(map(repr, RISK_MEASURES))}"
        )
    return key


def _term(risk: str, values: np.ndarray, alpha: float, threshold, ppy: float):
    """The risk term of ``risk`` over ``values`` (T, n), in the reported units."""
    if threshold is not None and risk != "semi_deviation":
        raise InputError(
            f"threshold applies only to risk='semi_deviation', not risk={risk!r}; drop it"
        )
    if risk == "semi_deviation":
        b = None if threshold is None else finite_number(threshold, what="threshold")
        return SemiDeviationTerm(values, threshold=b, scale=math.sqrt(ppy))
    if risk == "mad":
        return MADTerm(values, scale=math.sqrt(ppy))
    if risk == "cdar":
        return CDaRTerm(values, alpha)
    if risk == "worst_realization":
        return WorstRealizationTerm(values)
    return CVaRTerm(values, alpha)


# ----------------------------------------------------------------------------- the problem


@dataclass(frozen=True)
class _Setup:
    """Checked inputs of one call: the term, the expected returns and the compiled problem."""

    risk: str
    term: object
    mu: np.ndarray
    cm: Compiled
    notes: tuple

    def run(self, objective: Objective, extra=()) -> Allocation:
        return self.cm.run(objective, mu=self.mu, extra=list(extra), notes=self.notes)

    def least_risk(self) -> Allocation:
        alloc = self.run(Objective(terms=(self.term,)))
        return dataclasses.replace(alloc, objective=self.term.value(alloc.weights.to_numpy()))

    def highest_return(self) -> Allocation | None:
        """The highest-return portfolio, or None when the return is unbounded."""
        try:
            alloc = self.run(Objective(mu_weight=1.0))
        except InputError as exc:
            if "unbounded" in str(exc):
                return None
            raise
        return dataclasses.replace(alloc, objective=self.term.value(alloc.weights.to_numpy()))


def _setup(frame, what: str, risk, alpha, threshold, mu, periods_per_year, problem) -> _Setup:
    """Check the inputs and compile the problem (``problem``: constraints, universe, solvers)."""
    values = scenario_values(frame, what)
    key = _risk_name(risk)
    a = confidence(alpha)
    ppy = periods(frame.index, periods_per_year)
    term = _term(key, values, a, threshold, ppy)
    assets = frame.columns
    n = len(assets)
    c = np.cov(values, rowvar=False, ddof=1).reshape(n, n) * ppy
    cov = pd.DataFrame((c + c.T) / 2.0, index=assets, columns=assets)
    if mu is None:
        mu_v = values.mean(axis=0) * ppy
    else:
        mu_v = vector(mu, assets, what="mu", against=what)
    notes = []
    t = values.shape[0]
    if key in _WITH_ALPHA and (1.0 - a) * t < 1.0:
        thing, worst = (
            ("scenarios", "the worst scenario loss")
            if key == "cvar"
            else ("drawdowns", "the maximum drawdown")
        )
        notes.append(
            f"the tail at alpha={a:g} holds {(1.0 - a) * t:.3g} of {t} {thing} (less than "
            f"one): the {_LABELS[key]} is {worst}"
        )
    cm = Compiled(cov, **problem)
    return _Setup(key, term, mu_v, cm, tuple(notes))


def _out_of_reach(setup: _Setup, key: str, target: float, piece, low, top, extreme):
    """A target return (or risk) outside what the constraints allow, diagnosed.

    The shape of :func:`models.mean_variance.efficient_return`'s error: the
    message names ``key``, the bound, the efficient range ``low`` (least risk)
    to ``top`` (highest return; None when unbounded), the constraints binding
    at ``extreme`` and how much each must give alone for ``piece`` to hold.
    """
    label = _LABELS[setup.risk]
    top_text = "unbounded" if top is None else f"{top:.6g}"
    if key == "target_return":
        side, bound, where = "at most", top, "the highest-return portfolio"
        fix = f"lower {key} to at most {bound:.6g}"
    else:
        side, bound, where = "at least", low, f"the portfolio of least {label}"
        fix = f"raise {key} to at least {bound:.6g}"
    names = list(dict.fromkeys(b["name"] for b in extreme.binding))
    alone = setup.cm.relax_alone([piece], names)
    fixes = [f"'{nm}' by {v:.4g}" for nm, v in alone.items() if v is not None]
    relax = f", or relax {' or '.join(fixes)}" if fixes else ""
    first = {
        "name": piece.name,
        "key": key,
        "relax_by": abs(target - bound),
        "side": "min" if key == "target_return" else "max",
        "limit": target,
        "reachable": [float(low), None if top is None else float(top)],
    }
    return InfeasibleError(
        f"{key} {target:.6g} is outside the achievable range: {side} {bound:.6g} under these "
        f"constraints (efficient range of {key} for the {label}: {low:.6g} (least risk) to "
        f"{top_text} (highest return)); binding at {where}: "
        f"{', '.join(f'{nm!r}' for nm in names) or 'none'}; {fix} (constraint "
        f"{piece.name!r}){relax}",
        [first] + [{"name": nm, "relax_by": v, "binding_at": where} for nm, v in alone.items()],
    )


def _return_out_of_reach(setup: _Setup, target: float, row: Row) -> InfeasibleError | None:
    """The error for a target return above the highest return, or None when it is not."""
    try:
        top = setup.highest_return()
    except InfeasibleError:
        return None  # the constraints conflict whatever the target
    if top is None or target <= top.expected_return + 1e-9 * max(1.0, abs(target)):
        return None
    low = setup.least_risk().expected_return
    return _out_of_reach(setup, "target_return", target, row, low, top.expected_return, top)


def _risk_out_of_reach(setup: _Setup, target: float, limit) -> InfeasibleError | None:
    """The error for a target risk below the least risk, or None when it is not."""
    try:
        floor = setup.least_risk()
    except InfeasibleError:
        return None  # the constraints conflict whatever the target
    if target >= floor.objective - 1e-9 * max(1.0, abs(floor.objective)):
        return None
    top = setup.highest_return()
    top_risk = None if top is None else top.objective
    return _out_of_reach(setup, "target_risk", target, limit, floor.objective, top_risk, floor)


def _warn_if_riskless(setup: _Setup, value: float) -> None:
    """Warn when a dispersion reaches zero in sample: the deviations are linearly dependent."""
    dev = setup.term.scenarios - setup.term.scenarios.mean(axis=0)
    if value > 1e-9 * setup.term.scale * float(np.abs(dev).max(initial=0.0)):
        return
    t, n = dev.shape
    warnings.warn(
        f"min_risk: the least {_LABELS[setup.risk]} is {value:.3g}, a riskless portfolio in "
        f"sample: the deviations of the {n} assets over {t} rows have rank "
        f"{np.linalg.matrix_rank(dev)} (fewer rows than assets, or redundant assets); the answer "
        "stands only if such a hedge is real: otherwise use more history or fewer assets",
        UserWarning,
        stacklevel=4,  # min_risk's caller
    )


# ----------------------------------------------------------------------------- public functions


def min_risk_of(
    frame,
    *,
    what: str,
    risk,
    alpha=0.95,
    threshold=None,
    mu=None,
    target_return=None,
    constraints=None,
    universe=None,
    solvers=None,
    periods_per_year=None,
) -> Allocation:
    """:func:`min_risk` for a returns table given under another argument name (``what``)."""
    problem = {"constraints": constraints, "universe": universe, "solvers": solvers}
    setup = _setup(frame, what, risk, alpha, threshold, mu, periods_per_year, problem)
    extra = []
    target = None
    if target_return is not None:
        target = finite_number(target_return, what="target_return")
        extra.append(Row(TARGET_RETURN, TARGET_RETURN, setup.mu, target, math.inf))
    try:
        alloc = setup.run(Objective(terms=(setup.term,)), extra)
    except InfeasibleError:
        err = None if target is None else _return_out_of_reach(setup, target, extra[0])
        if err is None:
            raise
        raise err from None
    risk_value = setup.term.value(alloc.weights.to_numpy())
    if setup.risk == "mad" or getattr(setup.term, "threshold", 0.0) is None:
        _warn_if_riskless(setup, risk_value)
    return dataclasses.replace(alloc, objective=risk_value)


def min_risk(
    returns: pd.DataFrame,
    *,
    risk: str = "semi_deviation",
    alpha: float = 0.95,
    threshold: float | None = None,
    mu: pd.Series | Mapping[str, float] | None = None,
    target_return: float | None = None,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    periods_per_year: float | None = None,
) -> Allocation:
    """Weights of least risk over a returns table, for one of :data:`RISK_MEASURES`.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic simple returns (decimals), one row per period (in time
        order: the CDaR follows the path) or equally likely scenario, one
        column per asset.
    risk : str
        ``"semi_deviation"`` (SOCP), ``"mad"``, ``"cdar"``,
        ``"worst_realization"`` or ``"cvar"`` (LPs); see the module docstring.
    alpha : float
        Confidence level in (0, 1) of ``"cdar"`` and ``"cvar"``: 0.95
        averages the worst 5% of drawdowns (losses). Checked, and unused by
        the other measures.
    threshold : float, optional
        ``"semi_deviation"`` only: the least acceptable periodic return (0.0
        counts only losses, as PyPortfolioOpt's ``benchmark=0``). Default:
        the portfolio's own mean return (Markowitz's semi-deviation).
    mu : pandas.Series or mapping asset -> float, optional
        Annualized expected returns (when the periods per year are known),
        used for ``target_return`` and reported as ``expected_return``.
        Default: the mean return times the periods per year.
    target_return : float, optional
        Least expected return ``mu'w`` (units of ``mu``), added as the
        constraint ``"target return"``.
    constraints : list, optional
        Constraint objects of :mod:`optimizer.constraints`; ``Budget(1)``
        and long-only apply by default.
    universe : Universe, optional
        Needed when constraints use tags; its assets must match the columns.
    solvers : sequence of str, optional
        Solver chain of the convex core, default Clarabel, OSQP, SCS.
    periods_per_year : float, optional
        Periods per year, to annualize ``mu``, the covariance and the
        semi-deviation or MAD. Default: inferred from a DatetimeIndex (daily
        252, weekly 52, monthly 12, ...); 1 (no scaling) for any other index.

    Returns
    -------
    Allocation
        ``objective`` is the risk measure of the returned weights,
        recomputed from them with numpy (not the solver's value), in the
        units of the module docstring: semi-deviation and MAD annualized
        (times ``sqrt(periods per year)``), CDaR in cumulative-return units of
        the sample path, worst realization and CVaR periodic losses.
        ``volatility`` and ``risk_contributions`` use the sample covariance of
        the returns times the periods per year; ``expected_return`` is
        ``mu'w``. Every constraint is verified (``checks``).

    Raises
    ------
    InputError
        Not a DataFrame, duplicate or non-numeric columns, NaN or inf (naming
        the assets and the first row), fewer than 2 rows, an unknown ``risk``
        (naming the choices), ``alpha`` outside (0, 1), ``threshold`` with
        another measure, ``mu`` misaligned with the columns (naming the
        assets), a bad ``target_return`` or ``periods_per_year``, an irregular
        DatetimeIndex (pass ``periods_per_year=``).
    InfeasibleError
        The constraints cannot all hold; or ``target_return`` is above the
        highest expected return they allow, reported as
        :func:`models.mean_variance.efficient_return` does ("target_return X
        is outside the achievable range: at most Y ...", the efficient range,
        the constraints binding at the highest-return portfolio and what each
        must give alone); ``diagnosis[0]`` is ``{"name": "target return",
        "key": "target_return", "relax_by", "side", "limit", "reachable"}``.
    SolverError
        Every solver of the chain failed.

    Warns
    -----
    UserWarning
        A least semi-deviation (below the mean) or MAD of zero: the rows leave
        the assets' deviations linearly dependent (rank named), a riskless
        portfolio in sample only.

    Notes
    -----
    Program sizes for T periods and n assets (the references are in the
    module docstring): semi-deviation ``n + T + 1`` variables, ``2T`` rows
    and one cone of dimension ``T + 1``; MAD ``n + T`` variables, ``2T``
    rows; CDaR ``n + 2T + 1`` variables, ``4T`` rows (running peaks of the
    cumulative return, then the Rockafellar-Uryasev tail of the drawdowns);
    worst realization ``n + 1`` variables, ``T`` rows; CVaR ``n + T + 1``
    variables, ``2T`` rows. When ``(1 - alpha) T < 1`` the CDaR (CVaR) is the
    largest drawdown (loss); a note says so.
    """
    return min_risk_of(
        returns,
        what="returns",
        risk=risk,
        alpha=alpha,
        threshold=threshold,
        mu=mu,
        target_return=target_return,
        constraints=constraints,
        universe=universe,
        solvers=solvers,
        periods_per_year=periods_per_year,
    )


def efficient_risk(
    returns: pd.DataFrame,
    *,
    target_risk: float,
    risk: str = "semi_deviation",
    alpha: float = 0.95,
    threshold: float | None = None,
    mu: pd.Series | Mapping[str, float] | None = None,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    periods_per_year: float | None = None,
) -> Allocation:
    """Highest expected return whose risk is at most ``target_risk``.

    The mean-risk counterpart of :func:`models.mean_variance.efficient_risk`:
    maximize ``mu'w`` subject to ``risk(w) <= target_risk`` (the constraint
    ``"target risk"``, verified from the weights like any other) and the
    policy's constraints. The other side of the frontier, least risk above a
    target return, is ``min_risk(..., target_return=...)``.

    Parameters
    ----------
    returns, risk, alpha, threshold, mu, constraints, universe, solvers, periods_per_year
        As :func:`min_risk`.
    target_risk : float
        The most risk allowed, in the reported units of ``risk`` (annualized
        semi-deviation or MAD; CDaR, worst realization and CVaR unscaled).

    Returns
    -------
    Allocation
        ``objective`` is the risk measure of the returned weights (at most
        ``target_risk``, recomputed from them); ``expected_return`` is the
        maximized ``mu'w``; ``checks["target risk"]`` its verification.

    Raises
    ------
    InputError
        As :func:`min_risk`; a ``target_risk`` that is not a finite number;
        an unbounded expected return ("the problem is unbounded").
    InfeasibleError
        The constraints cannot all hold; or ``target_risk`` is below the least
        risk they allow ("target_risk X is outside the achievable range: at
        least Y ...", as :func:`min_risk` for a target return, binding
        constraints taken at the least-risk portfolio); ``diagnosis[0]``
        names ``"target risk"``.
    SolverError
        Every solver of the chain failed.
    """
    problem = {"constraints": constraints, "universe": universe, "solvers": solvers}
    setup = _setup(returns, "returns", risk, alpha, threshold, mu, periods_per_year, problem)
    target = finite_number(target_risk, what="target_risk")
    limit = RiskMeasureLimit(TARGET_RISK, TARGET_RISK, term=setup.term, max=target)
    try:
        alloc = setup.run(Objective(mu_weight=1.0), [limit])
    except InfeasibleError:
        err = _risk_out_of_reach(setup, target, limit)
        if err is None:
            raise
        raise err from None
    return dataclasses.replace(alloc, objective=setup.term.value(alloc.weights.to_numpy()))


def portfolio_risk(
    weights: pd.Series | Mapping[str, float],
    returns: pd.DataFrame,
    *,
    risk: str = "semi_deviation",
    alpha: float = 0.95,
    threshold: float | None = None,
    periods_per_year: float | None = None,
) -> float:
    """The risk measure of given weights over a returns table, in the units of :func:`min_risk`.

    Parameters
    ----------
    weights : pandas.Series or mapping asset -> float, shape (n,)
        Portfolio weights by asset (matched to the columns by name).
    returns, risk, alpha, threshold, periods_per_year
        As :func:`min_risk`.

    Returns
    -------
    float
        Semi-deviation or MAD annualized (times ``sqrt(periods per year)``);
        CDaR in cumulative-return units; worst realization and CVaR as
        periodic losses (positive when money is lost).

    Raises
    ------
    InputError
        As :func:`min_risk`; weights misaligned with the columns (naming
        the assets).
    """
    values = scenario_values(returns, "returns")
    key = _risk_name(risk)
    a = confidence(alpha)
    ppy = periods(returns.index, periods_per_year)
    w = vector(weights, returns.columns, what="weights", against="returns")
    return _term(key, values, a, threshold, ppy).value(w)
