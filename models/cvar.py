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
constraints. It is ``models.mean_risk.min_risk(..., risk="cvar")`` with the
scenario table as its first argument: one implementation of the input checks,
the reporting and the out-of-reach target for every mean-risk model.

References
----------
R. T. Rockafellar and S. Uryasev (2000), "Optimization of conditional
value-at-risk", Journal of Risk 2(3), 21-41.
C. Acerbi and D. Tasche (2002), "On the coherence of expected shortfall",
Journal of Banking and Finance 26(7), 1487-1503.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from models.mean_risk import min_risk_of
from optimizer.allocation import Allocation
from optimizer.universe import Universe

__all__ = ["min_cvar"]


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
        (naming the assets and the first row), fewer than 2 scenarios,
        ``alpha`` outside (0, 1), bad ``mu``, ``target_return`` or
        ``periods_per_year``, an irregular DatetimeIndex (pass
        ``periods_per_year=``).
    InfeasibleError
        The constraints cannot all hold; or ``target_return`` is above the
        highest expected return they allow (the message names
        ``target_return``, the reachable range and the binding constraints;
        ``diagnosis`` names ``"target return"``), as
        :func:`models.mean_risk.min_risk`.
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
    return min_risk_of(
        scenario_returns,
        what="scenario_returns",
        risk="cvar",
        alpha=alpha,
        mu=mu,
        target_return=target_return,
        constraints=constraints,
        universe=universe,
        solvers=solvers,
        periods_per_year=periods_per_year,
    )
