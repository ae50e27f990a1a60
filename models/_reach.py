"""Mean-variance targets and Sharpe ratios that cannot be met, and returns in their own unit.

Private helpers of :mod:`models.mean_variance`:

* the target-return row on ``mu / m`` (``m`` the core's return unit), so that
  the solver and the verification see a unit-free row whatever the units of
  the expected returns, and its check and shadow price turned back into
  return units;
* the messages of a riskless portfolio (a singular covariance): the warning
  of ``min_variance``, the error of ``max_sharpe``; and of a Sharpe ratio
  without a maximum (unlimited shorts and a risk-free rate above the
  least-risk portfolio's return);
* the diagnosis of a target out of reach: the key, the reachable range and
  the constraints binding at the extreme portfolio, with how much each must
  give alone.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np

from optimizer.allocation import Allocation
from optimizer.compiled import Compiled
from optimizer.errors import InfeasibleError, InputError
from optimizer.objective import Objective, return_unit
from optimizer.pieces import Piece, Row
from optimizer.riskmodel import SINGULAR_FIX

#: Names of the model-made constraints (in ``binding`` and ``checks``).
TARGET_RETURN = "target return"
TARGET_VOLATILITY = "target volatility"


def target_row(mu_vec: np.ndarray, target: float, unit: float) -> Row:
    """``mu'w >= target`` on ``mu / unit`` (``unit``: :func:`optimizer.objective.return_unit`).

    Scaled like the core scales returns, so that the solver and the
    verification see the same row whatever the units of the expected returns.
    """
    return Row(TARGET_RETURN, TARGET_RETURN, mu_vec / unit, target / unit, math.inf)


def in_return_units(alloc: Allocation, unit: float) -> Allocation:
    """The target row's check and shadow price back in return units (from ``mu / unit``)."""
    if unit == 1.0:
        return alloc
    checks = dict(alloc.checks)
    if TARGET_RETURN in checks:
        entry = checks[TARGET_RETURN]
        checks[TARGET_RETURN] = {**entry, "max_violation": entry["max_violation"] * unit}
    binding = tuple(
        {**b, "shadow_price": b["shadow_price"] / unit}
        if b["name"] == TARGET_RETURN and b["shadow_price"] is not None
        else b
        for b in alloc.binding
    )
    return replace(alloc, checks=checks, binding=binding)


def _held(alloc: Allocation) -> str:
    """The assets a portfolio holds (by weight, relative to its largest), for messages."""
    w = alloc.weights
    held = w.index[w.abs().to_numpy() > 1e-6 * float(w.abs().max())]
    return ", ".join(map(str, held[:10])) + (", ..." if len(held) > 10 else "")


def warn_riskless(cm: Compiled, alloc: Allocation) -> None:
    """Warn (UserWarning) that the least-risk portfolio is riskless: a singular covariance."""
    warnings.warn(
        f"min_variance: the least-risk portfolio (of {_held(alloc)}) is riskless "
        f"(volatility {alloc.volatility:.3g}) because {cm.risk.singularity()}; the answer "
        f"stands only if such a perfect hedge is real: otherwise {SINGULAR_FIX}",
        UserWarning,
        stacklevel=4,
    )


def unbounded_sharpe(cm: Compiled, alloc: Allocation, rf: float) -> InputError:
    """The error of a riskless portfolio that earns more than the risk-free rate."""
    return InputError(
        f"max_sharpe: the Sharpe ratio is unbounded: a portfolio of {_held(alloc)} is riskless "
        f"under cov (volatility {alloc.volatility:.3g}) yet earns "
        f"{alloc.expected_return - rf:.6g} more than the risk-free rate {rf:.6g}, because "
        f"{cm.risk.singularity()}; {SINGULAR_FIX}"
    )


def no_max_sharpe(rf: float, low: float) -> InputError:
    """The error of a Sharpe ratio without a maximum (unlimited shorts, rf too high).

    ``low`` is the least-risk portfolio's expected return: at or below ``rf``
    the tangency from the risk-free rate touches the lower branch of the
    frontier, and the ratio only approaches its supremum as positions grow
    without limit (with the budget alone: ``1' C^-1 (mu - rf) <= 0``).
    """
    return InputError(
        f"max_sharpe: no portfolio has the highest Sharpe ratio: risk_free_rate {rf:.6g} is at "
        f"or above the expected return {low:.6g} of the least-risk portfolio, so with unlimited "
        "short positions the tangency from the risk-free rate lies on the lower branch of the "
        "frontier and the ratio only approaches its supremum as the positions grow without "
        f"limit; lower risk_free_rate below {low:.6g}, or add bounds or a leverage limit"
    )


def out_of_reach(
    cm: Compiled, key: str, target: float, ends: tuple, piece: Piece
) -> InfeasibleError:
    """A target return (or volatility) outside what the constraints allow, diagnosed.

    ``ends`` are the least-risk and the highest-return figures (the return for
    ``target_return``, the allocations for ``target_volatility``). The message
    names the key, the reachable range and the constraints binding at the
    extreme portfolio; the diagnosis gives, for each, how much it must give
    alone for the target to be reachable (None: relaxing it alone is not enough).
    """
    if key == "target_return":
        low, top = ends[0], ends[1].expected_return
        extreme, bound, side, where = ends[1], top, "at most", "the highest-return portfolio"
        ends_text = f"{low:.6g} (least risk) to {top:.6g} (highest return)"
        fix = f"lower {key} to at most {top:.6g}"
    else:
        low, top = ends[0].volatility, ends[1].volatility
        extreme, bound, side, where = ends[0], low, "at least", "the least-risk portfolio"
        ends_text = f"{low:.6g} (least risk) to {top:.6g} (the highest-return portfolio's)"
        fix = f"raise {key} to at least {bound:.6g}"
    names = list(dict.fromkeys(b["name"] for b in extreme.binding))
    alone = cm.relax_alone([piece], names)
    fixes = [f"'{nm}' by {v:.4g}" for nm, v in alone.items() if v is not None]
    binding = ", ".join(f"'{nm}'" for nm in names) or "none"
    relax = f", or relax {' or '.join(fixes)}" if fixes else ""
    if names and not fixes:
        relax = " (relaxing any one of those constraints alone is not enough)"
    gap = abs(target - bound)
    diagnosis = [
        {
            "name": key,
            "relax_by": gap,
            "side": "min" if key == "target_return" else "max",
            "limit": target,
            "reachable": [float(low), float(top)],
        }
    ] + [{"name": nm, "relax_by": v, "binding_at": where} for nm, v in alone.items()]
    return InfeasibleError(
        f"{key} {target:.6g} is outside the achievable range: {side} {bound:.6g} under these "
        f"constraints (efficient range of {key}: {ends_text}); binding at {where}: {binding}; "
        f"{fix}{relax}",
        diagnosis,
    )


#: Gross weight (per unit of budget) beyond which a max-Sharpe answer is checked for a ratio
#: without a maximum (an interior-point solver leaves the homogenizing ``t`` at about 1e-8
#: instead of 0, which reads as weights of 1e6 and more).
FAR_GROSS = 1e3


def far_gross(budget: float | None) -> float:
    """The gross weight beyond which a max-Sharpe answer is checked (:data:`FAR_GROSS`)."""
    return FAR_GROSS * abs(budget or 1.0)


def max_return_or_none(cm: Compiled, mu_vec: np.ndarray) -> Allocation | None:
    """The highest-return portfolio, or None when the expected return is unbounded."""
    try:
        return cm.run(Objective(mu_weight=1.0), mu=mu_vec)
    except InputError as exc:
        if "unbounded" in str(exc):
            return None
        raise


def check_beats_rf(top: Allocation, rf: float, mu_vec: np.ndarray) -> None:
    """Raise when no feasible portfolio earns more than the risk-free rate."""
    if top.expected_return - rf <= 1e-12 * return_unit(np.append(mu_vec, rf)):
        raise InputError(
            f"no feasible portfolio earns more than the risk-free rate {rf:.6g}: the highest "
            f"achievable expected return is {top.expected_return:.6g}; lower risk_free_rate "
            "or loosen the constraints"
        )
