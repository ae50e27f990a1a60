"""Result objects of the convex core: :class:`Allocation` and :class:`Frontier`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


def to_jsonable(value: Any) -> Any:
    """Convert pandas / numpy values to plain JSON types (NaN and inf become null)."""
    if isinstance(value, pd.DataFrame):
        return {str(k): to_jsonable(v) for k, v in value.to_dict(orient="index").items()}
    if isinstance(value, pd.Series):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Allocation:
    """Target weights and everything needed to trust them.

    Attributes
    ----------
    weights : pandas.Series, shape (n,)
        Portfolio weights by asset (decimals of value).
    expected_return : float or None
        ``mu @ w``, annualized, when expected returns were given.
    volatility : float
        ``sqrt(w' C w)``, annualized.
    risk_contributions : pandas.Series, shape (n,)
        Euler contributions ``w_i (C w)_i / volatility``; they sum to the volatility.
    status : str
        ``"optimal"`` or ``"optimal_inaccurate"`` (verified) for a solved problem.
    solver : str
        Solver that produced the weights.
    attempts : tuple of dict
        Every solver tried: ``solver``, ``status``, ``seconds`` (and ``error``).
    binding : tuple of dict
        Binding constraints: ``name``, ``label``, ``side`` (``"min"``, ``"max"``
        or ``"equal"``) and ``shadow_price``: how much the objective would
        improve per unit of relaxation (objective units per constraint unit).
    checks : dict
        Post-solve verification by constraint name: ``ok``, ``max_violation``.
    timings : dict
        Seconds spent in ``compile``, ``solve`` and ``other``.
    objective : float
        Optimal objective value of the solved problem (model-specific units).
    notes : tuple of str
        Anything the caller should know (e.g. budgets that could not be met).
    relaxed : tuple of dict
        Soft constraints that had to give (``optimizer.soft``): ``name``,
        ``priority`` and ``amount`` (in the constraint's own units). Empty
        when every constraint holds as given; ``checks`` then verify the
        relaxed limits.
    """

    weights: pd.Series
    expected_return: float | None
    volatility: float
    risk_contributions: pd.Series
    status: str
    solver: str
    attempts: tuple = ()
    binding: tuple = ()
    checks: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    objective: float = float("nan")
    notes: tuple = ()
    relaxed: tuple = ()

    @property
    def sharpe(self) -> float | None:
        """``expected_return / volatility`` (risk-free rate 0), or None without returns."""
        if self.expected_return is None or self.volatility <= 0:
            return None
        return self.expected_return / self.volatility

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return to_jsonable(
            {
                "weights": self.weights,
                "expected_return": self.expected_return,
                "volatility": self.volatility,
                "risk_contributions": self.risk_contributions,
                "status": self.status,
                "solver": self.solver,
                "attempts": list(self.attempts),
                "binding": list(self.binding),
                "checks": self.checks,
                "timings": self.timings,
                "objective": self.objective,
                "notes": list(self.notes),
                "relaxed": list(self.relaxed),
            }
        )


@dataclass(frozen=True)
class Frontier:
    """An efficient frontier.

    Attributes
    ----------
    points : pandas.DataFrame
        One row per solved point: ``target_return``, ``expected_return``,
        ``volatility``, ``sharpe`` (annualized, risk-free rate as given).
    weights : pandas.DataFrame
        One row per solved point (same index as ``points``), one column per asset.
    failed : pandas.DataFrame
        Points that could not be solved: ``target_return`` and ``reason``.
        Never silently dropped.
    allocations : tuple of Allocation
        The full result of every solved point.
    """

    points: pd.DataFrame
    weights: pd.DataFrame
    failed: pd.DataFrame
    allocations: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: points, weights and failed points as records."""
        return to_jsonable(
            {
                "points": self.points.reset_index().to_dict(orient="records"),
                "weights": self.weights.reset_index().to_dict(orient="records"),
                "failed": self.failed.to_dict(orient="records"),
            }
        )
