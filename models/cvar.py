"""Minimum conditional value at risk (CVaR, expected shortfall) over scenarios.

For scenario returns ``R`` (S x n, one row per equally likely scenario) and
weights ``w``, the portfolio loses ``l_s = -r_s'w`` in scenario ``s``. The CVaR
at confidence ``alpha`` is the mean loss in the worst ``(1 - alpha)`` share of
the scenarios. Rockafellar and Uryasev (2000) show that

    CVaR_alpha(w) = min_z  z + 1 / ((1 - alpha) S) * sum_s max(l_s - z, 0)

and that minimizing over ``(w, z)`` jointly is a linear program (with one
auxiliary variable per scenario); the minimizing ``z`` is the value at risk.
:func:`min_cvar` hands that program, through
:class:`optimizer.terms.CVaRTerm`, to the convex core with the policy's
constraints.

References
----------
R. T. Rockafellar and S. Uryasev (2000), "Optimization of conditional
value-at-risk", Journal of Risk 2(3), 21-41.
C. Acerbi and D. Tasche (2002), "On the coherence of expected shortfall",
Journal of Banking and Finance 26(7), 1487-1503.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from models._common import infer_periods_per_year
from optimizer.allocation import Allocation
from optimizer.compiled import Compiled
from optimizer.errors import InputError
from optimizer.objective import Objective
from optimizer.pieces import Row
from optimizer.terms import CVaRTerm
from optimizer.universe import Universe
from optimizer.validation import vector

__all__ = ["min_cvar"]


def _tail_mean(losses: np.ndarray, alpha: float) -> float:
    """CVaR of equally likely scenario losses, from the sorted losses.

    Parameters
    ----------
    losses : numpy.ndarray, shape (S,)
        Loss in each scenario (periodic decimals; a gain is a negative loss).
    alpha : float
        Confidence level in (0, 1).

    Returns
    -------
    float
        The mean of the worst ``k = (1 - alpha) S`` losses, the last one
        counted fractionally when ``k`` is not whole (Acerbi and Tasche 2002,
        proposition 3.2); equal to the Rockafellar-Uryasev minimum. With
        ``k < 1`` it is the worst loss.
    """
    l = np.sort(np.asarray(losses, dtype=float))[::-1]
    k = (1.0 - alpha) * len(l)
    # (1 - alpha) * S is often a whole number up to rounding (0.05 * 200)
    whole = round(k)
    if whole >= 1 and abs(k - whole) <= 1e-9 * k:
        k = float(whole)
    m = min(int(math.floor(k)), len(l))
    tail = float(l[:m].sum())
    if m < len(l):
        tail += (k - m) * float(l[m])
    return tail / k


def _scenarios(scenario_returns) -> np.ndarray:
    if not isinstance(scenario_returns, pd.DataFrame):
        raise InputError(
            "scenario_returns must be a pandas DataFrame (scenarios x assets), "
            f"got {type(scenario_returns).__name__}"
        )
    frame = scenario_returns
    if frame.shape[1] == 0:
        raise InputError("scenario_returns has no columns (assets)")
    dup = frame.columns[frame.columns.duplicated()].unique()
    if len(dup):
        raise InputError(f"scenario_returns has duplicate asset ids: {', '.join(map(str, dup))}")
    bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise InputError(f"scenario_returns has non-numeric columns: {', '.join(bad)}")
    if len(frame) < 2:
        raise InputError(f"scenario_returns has {len(frame)} scenario(s); at least 2 are needed")
    values = frame.to_numpy(dtype=float)
    finite = np.isfinite(values)
    if not finite.all():
        cols = frame.columns[~finite.all(axis=0)]
        raise InputError(
            f"scenario_returns has NaN or inf values for assets: {', '.join(map(str, cols))}"
        )
    return values


def _alpha(alpha) -> float:
    if isinstance(alpha, bool):
        raise InputError(f"alpha must be a number in (0, 1), got {alpha!r}")
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise InputError(f"alpha must be a number in (0, 1), got {alpha!r}") from None
    if not 0.0 < a < 1.0:
        raise InputError(
            f"alpha must be in (0, 1) (the confidence level, e.g. 0.95), got {alpha!r}"
        )
    return a


def _periods(index: pd.Index, periods_per_year) -> float:
    if periods_per_year is not None:
        try:
            value = float(periods_per_year)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(periods_per_year, bool) or not (math.isfinite(value) and value > 0):
            raise InputError(
                f"periods_per_year must be a positive number, got {periods_per_year!r}"
            )
        return value
    if isinstance(index, pd.DatetimeIndex):
        return float(infer_periods_per_year(index))
    return 1.0


def _number(value, what: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{what} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{what} must be finite, got {value!r}")
    return v


def min_cvar(
    scenario_returns: pd.DataFrame,
    alpha: float = 0.95,
    *,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    mu: pd.Series | Mapping[str, float] | None = None,
    target_return: float | None = None,
    solvers: Sequence[str] | None = None,
    periods_per_year: float | None = None,
) -> Allocation:
    """Weights of least conditional value at risk over return scenarios.

    Parameters
    ----------
    scenario_returns : pandas.DataFrame, shape (S, n)
        Periodic simple returns (decimals), one row per equally likely
        scenario (historical periods or simulations), one column per asset.
    alpha : float
        Confidence level in (0, 1): 0.95 averages the worst 5% of scenarios.
    constraints : list, optional
        Constraint objects of :mod:`optimizer.constraints`; ``Budget(1)``
        and long-only apply by default.
    universe : Universe, optional
        Needed when constraints use tags; its assets must match the columns.
    mu : pandas.Series or mapping asset -> float, optional
        Annualized expected returns (when the periods per year are known, see
        ``periods_per_year``), used for ``target_return`` and reported as
        ``expected_return``. Default: the scenario mean times the periods per
        year.
    target_return : float, optional
        Least expected return ``mu'w`` (same units as ``mu``), added as the
        constraint ``"target return"``.
    solvers : sequence of str, optional
        Solver chain of the convex core, default Clarabel, OSQP, SCS.
    periods_per_year : float, optional
        Scenarios per year, to annualize the covariance (and the default
        ``mu``). Default: inferred from a DatetimeIndex (daily 252, weekly 52,
        monthly 12, ...); 1 (no scaling) for any other index, e.g.
        simulated scenarios numbered 0..S-1.

    Returns
    -------
    Allocation
        ``objective`` is the CVaR of the returned weights: the mean loss of
        the worst ``(1 - alpha)`` share of the scenarios, a periodic decimal
        loss (positive when the tail loses money; NOT annualized), recomputed
        exactly from the sorted scenario losses (Acerbi and Tasche 2002).
        ``volatility`` and ``risk_contributions`` use the sample covariance
        of the scenarios times the periods per year (annualized when the
        frequency is known), ``expected_return`` is ``mu'w``.

    Raises
    ------
    InputError
        Not a DataFrame, duplicate or non-numeric columns, NaN or inf
        (naming the assets), fewer than 2 scenarios, ``alpha`` outside
        (0, 1), bad ``mu``, ``target_return`` or ``periods_per_year``, an
        irregular DatetimeIndex (pass ``periods_per_year=``).
    InfeasibleError
        The constraints (with the target return) cannot all hold.
    SolverError
        Every solver of the chain failed.

    Notes
    -----
    The program has ``n + 1 + S`` variables and ``S`` scenario rows
    (Rockafellar and Uryasev 2000). The covariance passed to the core is
    only used to report risk (it is not in the objective). When
    ``(1 - alpha) S < 1`` the tail holds less than one scenario and the CVaR
    is the worst scenario loss; a note says so.

    References
    ----------
    R. T. Rockafellar and S. Uryasev (2000), "Optimization of conditional
    value-at-risk", Journal of Risk 2(3), 21-41.
    """
    values = _scenarios(scenario_returns)
    a = _alpha(alpha)
    assets = scenario_returns.columns
    ppy = _periods(scenario_returns.index, periods_per_year)
    s = values.shape[0]
    c = np.cov(values, rowvar=False, ddof=1).reshape(len(assets), len(assets)) * ppy
    cov = pd.DataFrame((c + c.T) / 2.0, index=assets, columns=assets)
    if mu is None:
        mu_series = pd.Series(values.mean(axis=0) * ppy, index=assets, name="mu")
    else:
        mu_v = vector(mu, assets, what="mu", against="scenario_returns")
        mu_series = pd.Series(mu_v, index=assets, name="mu")
    extra = []
    if target_return is not None:
        target = _number(target_return, "target_return")
        extra.append(Row("target return", "target return", mu_series.to_numpy(), target, math.inf))
    notes = []
    if (1.0 - a) * s < 1.0:
        notes.append(
            f"the tail at alpha={a:g} holds {(1.0 - a) * s:.3g} of {s} scenarios (less than "
            "one): the CVaR is the worst scenario loss"
        )
    problem = Compiled(cov, constraints=constraints, universe=universe, solvers=solvers)
    alloc = problem.run(
        Objective(terms=(CVaRTerm(values, a),)),
        mu=mu_series.to_numpy(),
        extra=extra,
        notes=notes,
    )
    w = alloc.weights.to_numpy(dtype=float)
    return dataclasses.replace(alloc, objective=_tail_mean(-(values @ w), a))
