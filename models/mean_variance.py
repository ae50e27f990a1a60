"""Mean-variance allocation (Markowitz 1952, "Portfolio selection").

Every function takes annualized expected returns ``mu`` (Series) and an
annualized covariance ``cov`` (DataFrame or
:class:`~optimizer.riskmodel.FactorCovariance`), the policy's constraint
objects and, for tag constraints, a :class:`~optimizer.universe.Universe`;
each returns a verified :class:`~optimizer.allocation.Allocation`
(:func:`efficient_frontier` a :class:`~optimizer.allocation.Frontier`).
Fully invested and long-only apply unless a ``Budget`` or shorting
``Bounds`` say otherwise.

Every objective but ``max_return`` takes ``l2_gamma``, an L2 regularization
``l2_gamma * ||w||^2`` added to the objective as PyPortfolioOpt's
``objective_functions.L2_reg`` adds it (for variance objectives the covariance
of the program becomes ``C + l2_gamma I``). It is in the program only: the
allocation's ``volatility``, risk contributions and every risk limit are
measured on ``C``. ``l2_gamma = 0`` (the default) solves the unregularized
program exactly as without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from models._critical_line import corners
from models._frontier import qp_sweep, tabulate
from models._reach import (
    TARGET_VOLATILITY,
    check_beats_rf,
    far_gross,
    in_return_units,
    max_return_or_none,
    no_max_sharpe,
    out_of_reach,
    target_row,
    unbounded_sharpe,
    warn_riskless,
)
from optimizer.allocation import Allocation, Frontier
from optimizer.compiled import Compiled, shared
from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.objective import Objective, l2_weight, return_unit
from optimizer.pieces import RiskLimit
from optimizer.universe import Universe
from optimizer.validation import finite_number, vector


def _number(value, what: str) -> float:
    """A finite number (bool and text refused), or an InputError naming ``what``."""
    return finite_number(value, what=what)


def _mu(cm: Compiled, mu) -> np.ndarray:
    """Expected returns as a vector in the problem's asset order (read now, by content)."""
    if isinstance(mu, dict):
        mu = pd.Series(mu, dtype=float)
    return vector(mu, cm.assets, what="expected returns (mu)")


# ----------------------------------------------------------------------------- solves on a problem
# Each takes a compiled problem and the data of one solve; the public functions and
# ``compile(...).solve(...)`` both call them.


def _solve_min_variance(cm: Compiled, *, mu=None, l2_gamma=0.0) -> Allocation:
    objective = Objective(variance=1.0, l2=l2_weight(l2_gamma))
    alloc = cm.run(objective, mu=None if mu is None else _mu(cm, mu))
    if alloc.riskless:
        warn_riskless(cm, alloc)
    return alloc


def _solve_max_utility(cm: Compiled, *, mu, risk_aversion, l2_gamma=0.0) -> Allocation:
    delta = _number(risk_aversion, "risk_aversion")
    if delta <= 0:
        raise InputError(f"risk_aversion must be positive, got {risk_aversion!r}")
    gamma = l2_weight(l2_gamma)
    # minimize 1/2 w'Cw + gamma/delta ||w||^2 - mu'w / delta: the weights of delta/2 w'Cw +
    # gamma ||w||^2 - mu'w, one compiled program for every risk aversion when gamma = 0;
    # objective and duals scale back by delta
    objective = Objective(variance=0.5, mu_weight=1.0 / delta, l2=gamma / delta)
    return cm.run(objective, mu=_mu(cm, mu), scale=delta)


def _solve_max_return(cm: Compiled, *, mu) -> Allocation:
    top = max_return_or_none(cm, _mu(cm, mu))
    if top is None:
        raise InputError(
            "the expected return is unbounded under these constraints: "
            "add bounds or a leverage limit"
        )
    return top


def _solve_efficient_return(cm: Compiled, *, mu, target_return, l2_gamma=0.0) -> Allocation:
    target = _number(target_return, "target_return")
    gamma = l2_weight(l2_gamma)
    mu_vec = _mu(cm, mu)
    unit = return_unit(mu_vec)
    row = target_row(mu_vec, target, unit)
    try:
        alloc = cm.run(Objective(variance=1.0, l2=gamma), mu=mu_vec, extra=[row])
    except InfeasibleError:
        top = _solve_max_return(cm, mu=_as_series(cm, mu_vec))
        if target > top.expected_return - 1e-9 * unit:
            mu_s = _as_series(cm, mu_vec)
            low = _solve_min_variance(cm, mu=mu_s, l2_gamma=gamma).expected_return
            raise out_of_reach(cm, "target_return", target, (low, top), row) from None
        raise
    return in_return_units(alloc, unit)


def _solve_efficient_risk(cm: Compiled, *, mu, target_volatility, l2_gamma=0.0) -> Allocation:
    target = _number(target_volatility, "target_volatility")
    if target < 0:
        raise InputError(f"target_volatility must be non-negative, got {target_volatility!r}")
    gamma = l2_weight(l2_gamma)
    mu_vec = _mu(cm, mu)
    floor = _solve_min_variance(cm, mu=_as_series(cm, mu_vec))  # the true least risk
    limit = RiskLimit(TARGET_VOLATILITY, TARGET_VOLATILITY, np.zeros(cm.n), target)
    if target < floor.volatility * (1 - 1e-9):
        top = _solve_max_return(cm, mu=_as_series(cm, mu_vec))
        raise out_of_reach(cm, "target_volatility", target, (floor, top), limit)
    return cm.run(Objective(mu_weight=1.0, l2=gamma), mu=mu_vec, extra=[limit])


def _solve_max_sharpe(cm: Compiled, *, mu, risk_free_rate=0.0, l2_gamma=0.0) -> Allocation:
    rf = _number(risk_free_rate, "risk_free_rate")
    gamma = l2_weight(l2_gamma)
    mu_vec = _mu(cm, mu)
    if not (cm.risk.variances() > 0).any():
        top = _solve_max_return(cm, mu=_as_series(cm, mu_vec))
        check_beats_rf(top, rf, mu_vec)
        raise unbounded_sharpe(cm, top, rf)
    alloc, failure = None, None
    budget = cm.cset.budget
    if budget is not None and budget > 0:
        # the homogenized program needs no max_return first: it is infeasible when no
        # portfolio beats rf, and its t goes to 0 when the ratio has no maximum (both below)
        try:
            alloc = cm.run(Objective(sharpe=True, risk_free_rate=rf, l2=gamma), mu=mu_vec)
        except (SolverError, InfeasibleError) as exc:
            failure = exc
    if alloc is None or float(alloc.weights.abs().sum()) > far_gross(budget):
        # no answer, or one of suspicious size: is the expected return bounded?
        top = max_return_or_none(cm, mu_vec)
        if top is None:
            if alloc is None and failure is None:  # no positive budget: the search needs a top
                _solve_max_return(cm, mu=_as_series(cm, mu_vec))  # raises: unbounded
            low = cm.run(Objective(variance=1.0, l2=gamma), mu=mu_vec).expected_return
            if rf >= low - 1e-9 * return_unit(np.append(mu_vec, rf)):  # at low: to rounding
                raise no_max_sharpe(rf, low)
            if alloc is None:
                raise failure
        else:
            check_beats_rf(top, rf, mu_vec)
            if alloc is None:
                alloc = _sharpe_search(cm, mu_vec, rf, top, gamma)
    if alloc.riskless:
        raise unbounded_sharpe(cm, alloc, rf)
    return replace(alloc, risk_free_rate=rf)


def _as_series(cm: Compiled, mu_vec: np.ndarray) -> pd.Series:
    """Aligned expected returns back as a Series (for a nested solve)."""
    return pd.Series(mu_vec, index=cm.assets)


_MODELS: dict[str, Callable[..., Allocation]] = {
    "min_variance": _solve_min_variance,
    "max_utility": _solve_max_utility,
    "max_return": _solve_max_return,
    "efficient_return": _solve_efficient_return,
    "efficient_risk": _solve_efficient_risk,
    "max_sharpe": _solve_max_sharpe,
}
_DATA = {
    "min_variance": ("mu", "l2_gamma"),
    "max_utility": ("mu", "risk_aversion", "l2_gamma"),
    "max_return": ("mu",),
    "efficient_return": ("mu", "target_return", "l2_gamma"),
    "efficient_risk": ("mu", "target_volatility", "l2_gamma"),
    "max_sharpe": ("mu", "risk_free_rate", "l2_gamma"),
}


def compile(  # noqa: A001 - the name DESIGN.md fixes
    objective: str,
    cov,
    *,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    **fixed,
) -> Compiled:
    """Compile a mean-variance problem once, to solve it many times.

    Parameters
    ----------
    objective : str
        ``"min_variance"``, ``"max_utility"``, ``"efficient_return"``,
        ``"efficient_risk"``, ``"max_sharpe"`` (or ``"max_return"``).
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Annualized covariance, labelled by asset; copied (later edits of the
        caller's object change nothing).
    constraints, universe, solvers
        As for the one-shot functions.
    **fixed
        Data fixed for every solve (``risk_aversion=3.0``, ``mu=...``); the
        rest is given to ``solve``.

    Returns
    -------
    optimizer.Compiled
        ``solve(**data)`` takes what the objective needs: ``mu``
        (Series), ``risk_aversion``, ``target_return``,
        ``target_volatility``, ``risk_free_rate``, and ``l2_gamma`` (the L2
        regularization of the one-shot functions; not for ``max_return``).
        Thread-safe and picklable.

    Examples
    --------
    >>> import pandas as pd
    >>> ids = ["EQ", "BD"]
    >>> cov = pd.DataFrame([[0.04, 0.0], [0.0, 0.01]], index=ids, columns=ids)
    >>> cm = compile("max_utility", cov)
    >>> cm.solve(mu=pd.Series([0.08, 0.03], ids), risk_aversion=4.0).weights.round(3).tolist()
    [0.3, 0.7]
    """
    if objective not in _MODELS:
        raise InputError(
            f"unknown mean-variance objective {objective!r}; choose from {', '.join(_MODELS)}"
        )
    unknown = sorted(set(fixed) - set(_DATA[objective]))
    if unknown:
        raise InputError(
            f"{objective} takes {', '.join(_DATA[objective])}; unknown: {', '.join(unknown)}"
        )
    return Compiled(
        cov,
        constraints=constraints,
        universe=universe,
        solvers=solvers,
        model=_MODELS[objective],
        objective=objective,
        fixed=fixed,
    )


def _problem(objective: str, cov, constraints, universe, solvers) -> Compiled:
    """The compiled problem of a one-shot call, from the content cache."""
    return shared(
        _MODELS[objective],
        objective,
        cov,
        constraints=constraints,
        universe=universe,
        solvers=solvers,
    )


# ----------------------------------------------------------------------------- public one-shot


def min_variance(
    cov,
    *,
    mu: pd.Series | None = None,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    l2_gamma: float = 0.0,
) -> Allocation:
    """The least-volatility portfolio under the constraints.

    Parameters
    ----------
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Annualized covariance, labelled by asset.
    mu : pandas.Series, shape (n,), optional
        Annualized expected returns, only to report ``expected_return``.
    constraints : list, optional
        Constraint objects (``optimizer.constraints``).
    universe : Universe, optional
        Asset tags, for tag constraints.
    solvers : sequence of str, optional
        Solver chain; default ``("CLARABEL", "OSQP", "SCS")``.
    l2_gamma : float
        L2 regularization: minimize ``w'Cw + l2_gamma * ||w||^2``, that is
        ``w'(C + l2_gamma I)w`` (PyPortfolioOpt's ``L2_reg``). Decimals, in
        variance units (annualized, like ``cov``); non-negative; default 0
        (off). Larger values pull the weights towards equal weights.

    Returns
    -------
    Allocation
        ``objective`` is the variance ``w'Cw`` (plus ``l2_gamma * ||w||^2``);
        shadow prices are in variance per unit of constraint. ``volatility``
        and the risk contributions are always the true ``sqrt(w'Cw)``, without
        the regularization.

    Warns
    -----
    UserWarning
        When the least-risk portfolio is riskless (volatility at most
        ``volatility_floor``): the covariance is singular (the warning names
        its rank and the zero-variance assets, and the fix). The answer stands:
        a riskless portfolio is a meaningful least-risk portfolio.

    Notes
    -----
    With the budget alone the answer is ``C^-1 1 / (1' C^-1 1)``. Inputs are
    read by content at every call (an edited DataFrame gives a new answer).
    The answer does not depend on the covariance's units: the core solves on
    ``C / s`` (``s`` in proportion to the mean variance), so ``min_variance(c * cov)`` equals
    ``min_variance(cov)`` for any ``c > 0`` that keeps the variances within
    about 1e-150 to 1e150 (and ``min_variance(c * cov, l2_gamma=c * g)`` equals
    ``min_variance(cov, l2_gamma=g)``: ``l2_gamma`` scales like a variance).
    With a :class:`~optimizer.riskmodel.FactorCovariance` the regularized
    problem keeps the factor form (``l2_gamma`` adds to the specific variances).
    """
    cm = _problem("min_variance", cov, constraints, universe, solvers)
    return _solve_min_variance(cm, mu=mu, l2_gamma=l2_gamma)


def max_utility(
    mu: pd.Series,
    cov,
    *,
    risk_aversion: float,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    l2_gamma: float = 0.0,
) -> Allocation:
    """Maximize ``mu'w - risk_aversion / 2 * w'Cw`` (``- l2_gamma * ||w||^2``).

    Parameters
    ----------
    mu : pandas.Series, shape (n,)
        Annualized expected returns (decimals).
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Annualized covariance.
    risk_aversion : float
        Positive; 2 to 4 is typical for a balanced investor.
    l2_gamma : float
        L2 regularization: maximize ``mu'w - risk_aversion/2 w'Cw -
        l2_gamma ||w||^2`` (PyPortfolioOpt's ``L2_reg`` added to its
        ``max_quadratic_utility``: the covariance becomes ``C + 2 l2_gamma /
        risk_aversion I``). Decimals, non-negative; default 0 (off).

    Returns
    -------
    Allocation
        ``objective`` is ``risk_aversion/2 w'Cw + l2_gamma ||w||^2 - mu'w`` (the
        negated utility); ``volatility`` is the true ``sqrt(w'Cw)``.

    Notes
    -----
    Without constraints the answer is ``C^-1 mu / risk_aversion`` (then the
    budget must be lifted: pass ``Budget`` and ``Bounds`` accordingly). One
    program serves every ``mu`` and risk aversion (only its linear term
    changes; with ``l2_gamma > 0``, one per ``l2_gamma / risk_aversion``); hold
    ``compile("max_utility", cov, ...)`` to re-solve fastest.
    """
    cm = _problem("max_utility", cov, constraints, universe, solvers)
    return _solve_max_utility(cm, mu=mu, risk_aversion=risk_aversion, l2_gamma=l2_gamma)


def max_return(
    mu: pd.Series,
    cov,
    *,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
) -> Allocation:
    """The highest expected return the constraints allow (an LP).

    Raises
    ------
    InputError
        When the return is unbounded (e.g. shorts allowed without limits).
    """
    cm = _problem("max_return", cov, constraints, universe, solvers)
    return _solve_max_return(cm, mu=mu)


def efficient_return(
    mu: pd.Series,
    cov,
    *,
    target_return: float,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    l2_gamma: float = 0.0,
) -> Allocation:
    """Least volatility for an expected return of at least ``target_return``.

    Parameters
    ----------
    target_return : float
        Annualized decimal (0.065 is 6.5% a year).
    l2_gamma : float
        L2 regularization: minimize ``w'Cw + l2_gamma * ||w||^2`` (as
        :func:`min_variance`); ``volatility`` stays the true ``sqrt(w'Cw)``.

    Raises
    ------
    InfeasibleError
        If the target is above the highest return the constraints allow: the
        message names ``target_return``, the reachable range (at most the
        highest return; the efficient range from the least-risk portfolio's
        return) and the constraints binding at the highest-return portfolio;
        the diagnosis has the key's gap and how much each binding constraint
        must give alone (None: not enough alone). Also if the constraints
        conflict whatever the target.
    """
    cm = _problem("efficient_return", cov, constraints, universe, solvers)
    return _solve_efficient_return(cm, mu=mu, target_return=target_return, l2_gamma=l2_gamma)


def efficient_risk(
    mu: pd.Series,
    cov,
    *,
    target_volatility: float,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    l2_gamma: float = 0.0,
) -> Allocation:
    """Highest expected return for a volatility of at most ``target_volatility``.

    Parameters
    ----------
    target_volatility : float
        Annualized decimal (0.10 is 10% a year).
    l2_gamma : float
        L2 regularization: maximize ``mu'w - l2_gamma * ||w||^2`` subject to
        ``sqrt(w'Cw) <= target_volatility`` (PyPortfolioOpt's convention: the
        limit is on the true volatility, which may then end below the target).
        Decimals, in return units per squared weight; default 0 (off).

    Raises
    ------
    InfeasibleError
        If the target is below the least volatility the constraints allow: the
        message names ``target_volatility``, the reachable range (from the least
        volatility to the highest-return portfolio's) and the constraints
        binding at the least-risk portfolio; the diagnosis as for
        :func:`efficient_return`.
    """
    cm = _problem("efficient_risk", cov, constraints, universe, solvers)
    return _solve_efficient_risk(cm, mu=mu, target_volatility=target_volatility, l2_gamma=l2_gamma)


def max_sharpe(
    mu: pd.Series,
    cov,
    *,
    risk_free_rate: float = 0.0,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    l2_gamma: float = 0.0,
) -> Allocation:
    """The tangency portfolio: maximize ``(mu'w - rf) / sqrt(w'Cw)``.

    Solved exactly under every constraint type by the homogenized
    (Charnes-Cooper) transformation: with ``y = t w``, minimize ``y'Cy``
    subject to ``mu'y - rf t = 1`` and every constraint in its perspective
    form (Cornuejols and Tutuncu 2007, *Optimization Methods in Finance*,
    8.2). It is valid when some feasible portfolio earns more than ``rf`` and
    the budget is positive, also when the expected return is unbounded
    (unlimited shorts): with the budget alone the answer is the closed form
    ``C^-1 (mu - rf) / 1'C^-1 (mu - rf)``. Otherwise a one-dimensional
    golden-section search along the efficient frontier maximizes the Sharpe
    ratio (quasi-concave along the frontier).

    Parameters
    ----------
    risk_free_rate : float
        Annualized decimal.
    l2_gamma : float
        L2 regularization of the homogenized program: minimize ``y'Cy +
        l2_gamma ||y||^2`` (PyPortfolioOpt's ``L2_reg`` in its ``max_sharpe``),
        that is, maximize the Sharpe ratio measured with ``C + l2_gamma I``.
        Decimals, variance units; default 0 (off).

    Returns
    -------
    Allocation
        With ``risk_free_rate`` set: its ``sharpe`` is the ratio maximized
        (with ``l2_gamma > 0``, the true ratio at the regularized answer).

    Raises
    ------
    InputError
        If no feasible portfolio earns more than the risk-free rate; if the
        ratio has no maximum (unlimited shorts and a risk-free rate at or above
        the least-risk portfolio's expected return: the ratio only approaches
        its supremum as the positions grow without limit); or if a
        riskless portfolio (volatility at most ``volatility_floor``, relative to
        the covariance's scale) earns more than it: the Sharpe ratio is then
        unbounded. That happens with a zero or singular covariance (too few
        observations for the number of assets); the message names the rank and
        the zero-variance assets, and the fix (a shrinkage estimator, more
        history).

    Notes
    -----
    Shadow prices are not reported for this objective (the duals of the
    homogenized problem are not in Sharpe units): ``binding`` lists the
    binding constraints with ``shadow_price`` None. The answer does not
    depend on units: the program is solved on ``C / s`` and
    ``(mu - rf) / m`` (``s`` in proportion to the mean variance, ``m`` the
    largest excess return), so ``max_sharpe(a * mu, a**2 * cov)`` equals
    ``max_sharpe(mu, cov)`` for any ``a > 0`` that keeps the variances within
    about 1e-150 to 1e150.
    """
    cm = _problem("max_sharpe", cov, constraints, universe, solvers)
    return _solve_max_sharpe(cm, mu=mu, risk_free_rate=risk_free_rate, l2_gamma=l2_gamma)


def _sharpe_search(
    cm: Compiled, mu_vec: np.ndarray, rf: float, top: Allocation, gamma: float = 0.0
) -> Allocation:
    """Golden-section search of the Sharpe ratio (of ``C + gamma I``) over target returns."""
    mu_s = _as_series(cm, mu_vec)
    low = _solve_min_variance(cm, mu=mu_s, l2_gamma=gamma)
    cache: dict[float, Allocation] = {}

    def alloc(r: float) -> Allocation:
        if r not in cache:
            cache[r] = _solve_efficient_return(cm, mu=mu_s, target_return=r, l2_gamma=gamma)
        return cache[r]

    def sharpe(a: Allocation) -> float:
        w = a.weights.to_numpy()
        if a.riskless and (gamma == 0 or not w.any()):  # unbounded (max_sharpe raises then)
            return math.inf if a.expected_return > rf else -math.inf
        return (a.expected_return - rf) / math.sqrt(a.volatility**2 + gamma * (w @ w))

    a, b = max(low.expected_return, rf), top.expected_return
    golden = (math.sqrt(5) - 1) / 2
    c, d = b - golden * (b - a), a + golden * (b - a)
    unit = return_unit(np.append(mu_vec, rf))  # 1.0 for returns of about 10%
    for _ in range(80):
        if b - a <= 1e-10 * unit:
            break
        if sharpe(alloc(c)) >= sharpe(alloc(d)):
            b, d = d, c
            c = b - golden * (b - a)
        else:
            a, c = c, d
            d = a + golden * (b - a)
    best = max([low, top, *cache.values()], key=sharpe)
    note = "max Sharpe found by a golden-section search along the frontier"
    return replace(best, notes=best.notes + (note,))


def efficient_frontier(
    mu: pd.Series,
    cov,
    *,
    points: int = 50,
    risk_free_rate: float = 0.0,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Frontier:
    """The efficient frontier from the least-risk to the highest-return portfolio.

    Parameters
    ----------
    points : int
        Number of points, evenly spaced in expected return (>= 2).
    risk_free_rate : float
        Annualized, for the ``sharpe`` column.
    progress : callable, optional
        Called as ``progress(done, total)`` after each point.

    Returns
    -------
    Frontier
        ``points`` (target_return, expected_return, volatility, sharpe),
        ``weights`` (one row per point), ``failed`` (points not solved and
        why; never silently dropped) and ``allocations`` (each with
        ``risk_free_rate`` set).

    Notes
    -----
    The problem is compiled once. When every constraint is linear and hard the
    frontier is exact: the corner portfolios of the critical line
    (:mod:`models._critical_line`, from the least-variance portfolio up) and
    each point interpolated between the two corners around its target
    (``solver`` ``"CRITICAL_LINE"``, shadow prices from the interpolated
    multipliers). Otherwise (a soft or non-linear constraint, a covariance
    singular where the frontier moves, an active set that does not settle)
    the points are solved one by one: when the problem is a QP on ProxQP's
    dense backend, warm started from the previous point, else through the
    solver chain. Every point is verified against every constraint, and a
    point that fails is re-solved through the full solver chain before it is
    reported as failed.
    """
    if isinstance(points, bool) or not isinstance(points, int | np.integer) or points < 2:
        raise InputError(f"points must be an integer >= 2, got {points!r}")
    rf = _number(risk_free_rate, "risk_free_rate")
    cm = _problem("efficient_return", cov, constraints, universe, solvers)
    mu_s = _as_series(cm, _mu(cm, mu))
    mu_vec = mu_s.to_numpy()
    low = _solve_min_variance(cm, mu=mu_s)
    found: dict[int, Allocation] = {}
    try:
        line = corners(cm, mu_vec, low.weights.to_numpy())
    except (InputError, SolverError, np.linalg.LinAlgError):
        line = None  # not linear and hard, or not settled: point by point
    if line is not None:
        targets = np.linspace(*line.return_range, points)
        exact = line.allocations(targets)
        found = {i: a for i, a in enumerate(exact) if a.status == "optimal"}
    else:
        top = _solve_max_return(cm, mu=mu_s)
        targets = np.linspace(low.expected_return, top.expected_return, points)
        found = {0: low, **qp_sweep(cm, mu_vec, targets, range(1, points))}
    allocations: list[Allocation | None] = [None] * points
    reasons: dict[int, str] = {}
    for i in range(points):
        alloc = found.get(i)
        if alloc is None:
            try:
                alloc = _solve_efficient_return(cm, mu=mu_s, target_return=float(targets[i]))
            except (InfeasibleError, SolverError, InputError) as exc:
                reasons[i] = f"{type(exc).__name__}: {exc}"
        allocations[i] = alloc
        if progress:
            progress(i + 1, points)
    return tabulate(targets, allocations, reasons, rf, mu_s.index)
