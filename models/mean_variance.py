"""Mean-variance allocation (Markowitz 1952, "Portfolio selection").

Every function takes annualized expected returns ``mu`` (Series) and an
annualized covariance ``cov`` (DataFrame or
:class:`~optimizer.riskmodel.FactorCovariance`), the policy's constraint
objects and, for tag constraints, a :class:`~optimizer.universe.Universe`;
each returns a verified :class:`~optimizer.allocation.Allocation`
(:func:`efficient_frontier` a :class:`~optimizer.allocation.Frontier`).
Fully invested and long-only apply unless a ``Budget`` or shorting
``Bounds`` say otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from optimizer.allocation import Allocation, Frontier
from optimizer.constraints import RiskLimit, Row
from optimizer.core import (
    Objective,
    align,
    binding,
    compiled,
    make_allocation,
    resolved,
    risk_model,
    solve_portfolio,
    verify,
)
from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.program import ProxQP
from optimizer.universe import Universe

TARGET_RETURN = "target return"
TARGET_VOLATILITY = "target volatility"


def _number(value, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{what} must be finite, got {value!r}")
    return v


def _mu(mu, cov) -> pd.Series:
    assets = risk_model(cov).assets  # validated once per covariance object
    if isinstance(mu, dict):
        mu = pd.Series(mu, dtype=float)
    vec = align(mu, assets, what="expected returns (mu)")
    return pd.Series(vec, index=assets)


def min_variance(
    cov,
    *,
    mu: pd.Series | None = None,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
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

    Returns
    -------
    Allocation
        ``objective`` is the variance ``w'Cw``; shadow prices are in variance
        per unit of constraint.

    Notes
    -----
    With the budget alone the answer is ``C^-1 1 / (1' C^-1 1)``.
    """
    return solve_portfolio(
        Objective(variance=1.0),
        cov=cov,
        mu=None if mu is None else _mu(mu, cov),
        constraints=constraints,
        universe=universe,
        solvers=solvers,
    )


def max_utility(
    mu: pd.Series,
    cov,
    *,
    risk_aversion: float,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
) -> Allocation:
    """Maximize ``mu'w - risk_aversion / 2 * w'Cw``.

    Parameters
    ----------
    mu : pandas.Series, shape (n,)
        Annualized expected returns (decimals).
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Annualized covariance.
    risk_aversion : float
        Positive; 2 to 4 is typical for a balanced investor.

    Returns
    -------
    Allocation
        ``objective`` is ``risk_aversion/2 w'Cw - mu'w`` (the negated utility).

    Notes
    -----
    Without constraints the answer is ``C^-1 mu / risk_aversion`` (then the
    budget must be lifted: pass ``Budget`` and ``Bounds`` accordingly).
    Compiled once per structure: re-solving with new ``mu`` reuses the
    program and only changes its linear term.
    """
    delta = _number(risk_aversion, "risk_aversion")
    if delta <= 0:
        raise InputError(f"risk_aversion must be positive, got {risk_aversion!r}")
    return solve_portfolio(
        Objective(variance=delta / 2.0, mu_weight=1.0),
        cov=cov,
        mu=_mu(mu, cov),
        constraints=constraints,
        universe=universe,
        solvers=solvers,
    )


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
    try:
        return solve_portfolio(
            Objective(mu_weight=1.0, variance=0.0),
            cov=cov,
            mu=_mu(mu, cov),
            constraints=constraints,
            universe=universe,
            solvers=solvers,
        )
    except InputError as exc:
        if "unbounded" in str(exc):
            raise InputError(
                "the expected return is unbounded under these constraints: "
                "add bounds or a leverage limit"
            ) from None
        raise


def efficient_return(
    mu: pd.Series,
    cov,
    *,
    target_return: float,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
) -> Allocation:
    """Least volatility for an expected return of at least ``target_return``.

    Parameters
    ----------
    target_return : float
        Annualized decimal (0.065 is 6.5% a year).

    Raises
    ------
    InputError
        If the target is above the highest return the constraints allow (the
        message gives that figure).
    InfeasibleError
        If the constraints conflict whatever the target.
    """
    target = _number(target_return, "target_return")
    mu_s = _mu(mu, cov)
    row = Row(TARGET_RETURN, TARGET_RETURN, mu_s.to_numpy(), target, math.inf)
    try:
        return solve_portfolio(
            Objective(variance=1.0),
            cov=cov,
            mu=mu_s,
            constraints=constraints,
            universe=universe,
            extra=[row],
            solvers=solvers,
        )
    except InfeasibleError:
        top = max_return(mu_s, cov, constraints=constraints, universe=universe, solvers=solvers)
        if target > top.expected_return - 1e-9:
            raise InputError(
                f"target_return {target:.6g} is outside the achievable range: at most "
                f"{top.expected_return:.6g} under these constraints"
            ) from None
        raise


def efficient_risk(
    mu: pd.Series,
    cov,
    *,
    target_volatility: float,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
) -> Allocation:
    """Highest expected return for a volatility of at most ``target_volatility``.

    Parameters
    ----------
    target_volatility : float
        Annualized decimal (0.10 is 10% a year).

    Raises
    ------
    InputError
        If the target is below the least volatility the constraints allow (the
        message gives that figure).
    """
    target = _number(target_volatility, "target_volatility")
    if target < 0:
        raise InputError(f"target_volatility must be non-negative, got {target_volatility!r}")
    mu_s = _mu(mu, cov)
    n = len(mu_s)
    limit = RiskLimit(TARGET_VOLATILITY, TARGET_VOLATILITY, np.zeros(n), target)
    floor = min_variance(cov, mu=mu_s, constraints=constraints, universe=universe, solvers=solvers)
    if target < floor.volatility * (1 - 1e-9):
        raise InputError(
            f"target_volatility {target:.6g} is outside the achievable range: at least "
            f"{floor.volatility:.6g} under these constraints"
        )
    return solve_portfolio(
        Objective(mu_weight=1.0),
        cov=cov,
        mu=mu_s,
        constraints=constraints,
        universe=universe,
        extra=[limit],
        solvers=solvers,
    )


def max_sharpe(
    mu: pd.Series,
    cov,
    *,
    risk_free_rate: float = 0.0,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    solvers: Sequence[str] | None = None,
) -> Allocation:
    """The tangency portfolio: maximize ``(mu'w - rf) / sqrt(w'Cw)``.

    Solved exactly under every constraint type by the homogenized
    (Charnes-Cooper) transformation: with ``y = t w``, minimize ``y'Cy``
    subject to ``mu'y - rf t = 1`` and every constraint in its perspective
    form (Cornuejols and Tutuncu 2007, *Optimization Methods in Finance*,
    8.2). It is valid when some feasible portfolio earns more than ``rf`` and
    the budget is positive; otherwise a one-dimensional golden-section search
    along the efficient frontier maximizes the Sharpe ratio (quasi-concave
    along the frontier).

    Parameters
    ----------
    risk_free_rate : float
        Annualized decimal.

    Raises
    ------
    InputError
        If no feasible portfolio earns more than the risk-free rate.

    Notes
    -----
    Shadow prices are not reported for this objective (the duals of the
    homogenized problem are not in Sharpe units): ``binding`` lists the
    binding constraints with ``shadow_price`` None.
    """
    rf = _number(risk_free_rate, "risk_free_rate")
    mu_s = _mu(mu, cov)
    top = max_return(mu_s, cov, constraints=constraints, universe=universe, solvers=solvers)
    if top.expected_return <= rf + 1e-12:
        raise InputError(
            f"no feasible portfolio earns more than the risk-free rate {rf:.6g}: the highest "
            f"achievable expected return is {top.expected_return:.6g}"
        )
    cset = resolved(constraints, mu_s.index, universe)
    if cset.budget is not None and cset.budget > 0:
        try:
            return solve_portfolio(
                Objective(sharpe=True, risk_free_rate=rf),
                cov=cov,
                mu=mu_s,
                constraints=constraints,
                universe=universe,
                solvers=solvers,
            )
        except SolverError:
            pass
    return _sharpe_search(mu_s, cov, rf, top, constraints, universe, solvers)


def _sharpe_search(mu_s, cov, rf, top, constraints, universe, solvers) -> Allocation:
    """Golden-section search of the Sharpe ratio over target returns."""
    low = min_variance(cov, mu=mu_s, constraints=constraints, universe=universe, solvers=solvers)
    cache: dict[float, Allocation] = {}

    def alloc(r: float) -> Allocation:
        if r not in cache:
            cache[r] = efficient_return(
                mu_s,
                cov,
                target_return=r,
                constraints=constraints,
                universe=universe,
                solvers=solvers,
            )
        return cache[r]

    def sharpe(a: Allocation) -> float:
        return (a.expected_return - rf) / a.volatility if a.volatility > 0 else -math.inf

    a, b = max(low.expected_return, rf), top.expected_return
    golden = (math.sqrt(5) - 1) / 2
    c, d = b - golden * (b - a), a + golden * (b - a)
    for _ in range(80):
        if b - a <= 1e-10 * max(1.0, abs(b)):
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
        why; never silently dropped) and ``allocations``.

    Notes
    -----
    The program of ``efficient_return`` is compiled once; only the target
    changes from point to point. When it is a QP (no volatility or
    tracking-error limits) the sweep runs on ProxQP's dense backend, warm
    started from the previous point; every point is verified against every
    constraint, and a point that fails is re-solved through the full solver
    chain before it is reported as failed.
    """
    if isinstance(points, bool) or not isinstance(points, int | np.integer) or points < 2:
        raise InputError(f"points must be an integer >= 2, got {points!r}")
    rf = _number(risk_free_rate, "risk_free_rate")
    mu_s = _mu(mu, cov)
    kw = {"constraints": constraints, "universe": universe, "solvers": solvers}
    low = min_variance(cov, mu=mu_s, **kw)
    top = max_return(mu_s, cov, **kw)
    targets = np.linspace(low.expected_return, top.expected_return, points)
    allocations: list[Allocation | None] = [None] * points
    reasons: dict[int, str] = {}
    allocations[0] = low
    if progress:
        progress(1, points)
    rest = list(range(1, points))
    sweep = _qp_sweep(mu_s, cov, targets, rest, **kw)
    for done, i in enumerate(rest, start=2):
        alloc = sweep.get(i)
        if alloc is None:
            try:
                alloc = efficient_return(mu_s, cov, target_return=float(targets[i]), **kw)
            except (InfeasibleError, SolverError, InputError) as exc:
                reasons[i] = f"{type(exc).__name__}: {exc}"
        allocations[i] = alloc
        if progress:
            progress(done, points)
    solved = [i for i in range(points) if allocations[i] is not None]
    table = pd.DataFrame(
        {
            "target_return": targets[solved],
            "expected_return": [allocations[i].expected_return for i in solved],
            "volatility": [allocations[i].volatility for i in solved],
        },
        index=pd.Index(solved, name="point"),
    )
    vol = table["volatility"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        table["sharpe"] = np.where(vol > 0, (table["expected_return"] - rf) / vol, np.nan)
    weights = pd.DataFrame(
        [allocations[i].weights.to_numpy() for i in solved],
        index=table.index,
        columns=mu_s.index,
    )
    failed = pd.DataFrame(
        {"target_return": [targets[i] for i in reasons], "reason": list(reasons.values())},
        index=pd.Index(list(reasons), name="point"),
    )
    return Frontier(table, weights, failed, tuple(allocations[i] for i in solved))


def _qp_sweep(mu_s, cov, targets, indices, *, constraints, universe, solvers) -> dict:
    """Warm-started ProxQP solves of ``efficient_return`` at each target (QPs only).

    Returns the verified allocations by point index; points missing from the
    result are left to the full solver chain.
    """
    rm = risk_model(cov)
    assets = rm.assets
    mu_vec = mu_s.to_numpy()
    cset = resolved(constraints, assets, universe)
    if rm.kind == "factor" or any(isinstance(p, RiskLimit) for p in cset.pieces):
        # a factor program is large and sparse: ProxQP's dense backend is the wrong tool
        # (measured: 2.5 s a point at n=2000 against 0.17 s for Clarabel)
        return {}
    row = Row(TARGET_RETURN, TARGET_RETURN, mu_vec, float(targets[0]), math.inf)
    prog = compiled(Objective(variance=1.0), cset, rm, mu_vec, [row])
    if not prog.is_qp:
        return {}
    target_row = next(
        i for i, t in enumerate(prog.tags) if t is not None and t.name == TARGET_RETURN
    )
    try:
        dense = ProxQP(prog)
    except Exception:  # the sweep is an optimization; the chain remains
        return {}
    if target_row not in dense.row_of_general:
        # mu with a single non-zero entry makes the target row a box bound in ProxQP,
        # whose constant set_row_bound cannot change: leave the points to the chain
        return {}
    out: dict[int, Allocation] = {}
    n = len(assets)
    for i in indices:
        r = float(targets[i])
        pieces = list(cset.pieces) + [Row(TARGET_RETURN, TARGET_RETURN, mu_vec, r, math.inf)]
        dense.set_row_bound(target_row, -r)
        res = dense.solve()
        if res.x is None:
            continue
        w = res.x[:n]
        checks = verify(pieces, w, rm)
        if not all(c["ok"] for c in checks.values()):
            continue
        out[i] = make_allocation(
            w,
            assets,
            rm,
            mu_vec,
            status=res.status,
            solver="PROXQP",
            attempts=(res.attempt(),),
            binding=binding(prog, res, pieces, w, rm),
            checks=checks,
            timings={"compile": 0.0, "solve": res.seconds, "other": 0.0},
            objective=res.objective,
        )
    return out
