"""Result objects of the convex core: :class:`Allocation` and :class:`Frontier`.

Also the cleaning of weights: :func:`zero_dust` (applied to every answer the
core makes) and its public convenience :func:`clean_weights`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optimizer.errors import InputError

#: A portfolio whose volatility is at most this fraction of the assets' root mean variance
#: (times its gross weight) is riskless: its volatility is what an interior-point solver leaves
#: of zero (weights of about 1e-6 on the risky assets), not a risk (for assets of 10% to 30%
#: volatility, at most 0.001% to 0.003% a year).
RISKLESS_RTOL = 1e-4


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
    volatility_floor : float
        Volatility (annualized) at or below which the portfolio counts as
        riskless: :data:`RISKLESS_RTOL` times the root mean variance of the
        assets times the gross weight ``sum |w|``, a floor relative to the
        covariance's own scale (0 when unknown). A Sharpe ratio is not
        defined there: :attr:`sharpe` is NaN.
    risk_free_rate : float
        The risk-free rate (annualized decimal) the model was given
        (``max_sharpe``, ``efficient_frontier``); 0 otherwise. :attr:`sharpe`
        is measured against it.
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
    volatility_floor: float = 0.0
    risk_free_rate: float = 0.0

    @property
    def riskless(self) -> bool:
        """True when the volatility is (relatively) zero: at most :attr:`volatility_floor`."""
        return self.volatility <= self.volatility_floor

    @property
    def sharpe(self) -> float | None:
        """``(expected_return - risk_free_rate) / volatility`` at the model's :attr:`risk_free_rate`.

        The ratio ``max_sharpe`` maximized; :meth:`sharpe_ratio` gives it at
        another rate.
        """
        return self.sharpe_ratio(self.risk_free_rate)

    def sharpe_ratio(self, risk_free_rate: float = 0.0) -> float | None:
        """``(expected_return - risk_free_rate) / volatility``, annualized.

        Parameters
        ----------
        risk_free_rate : float
            Annualized decimal.

        Returns
        -------
        float or None
            None without expected returns; NaN for a riskless portfolio
            (volatility at most :attr:`volatility_floor`, zero included): a
            ratio over a volatility that is rounding noise would be a huge
            meaningless number.
        """
        if self.expected_return is None:
            return None
        if self.riskless:
            return math.nan
        return (self.expected_return - risk_free_rate) / self.volatility

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
                "volatility_floor": self.volatility_floor,
                "risk_free_rate": self.risk_free_rate,
            }
        )


@dataclass(frozen=True)
class Frontier:
    """An efficient frontier.

    Attributes
    ----------
    points : pandas.DataFrame
        One row per solved point: ``target_return``, ``expected_return``,
        ``volatility``, ``sharpe`` (annualized, risk-free rate as given; NaN
        for a riskless point, see :attr:`Allocation.volatility_floor`).
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


#: Weights this small (relative to the gross weight, when that is below 1) are dust: the
#: verification tolerance of every weight (``optimizer.verify.FEAS_TOL``), a thousandth of a
#: basis point. Answers carry exact zeros in their place (:func:`zero_dust`).
DUST_TOL = 1e-7


def zero_dust(
    w: np.ndarray,
    tol: float = DUST_TOL,
    total: float | None = None,
    *,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> np.ndarray:
    """Weights ``w`` (n,) with the dust set to exact zeros and the total restored.

    Parameters
    ----------
    w : numpy.ndarray, shape (n,)
        Finite weights (decimals of value).
    tol : float
        Dust size: ``|w_i| <= tol * min(1, sum |w|)`` (relative for a portfolio of
        gross weight below 1, so that the answer does not depend on the scale of
        an unbudgeted portfolio).
    total : float, optional
        The sum to restore (a budget); default the sum of ``w``.
    lower, upper : numpy.ndarray, shape (n,), optional
        Per-weight bounds: the amount restored goes to the weights with room; a
        weight whose bounds exclude 0 is never dust.

    Returns
    -------
    numpy.ndarray, shape (n,)
        ``w`` itself when it holds no dust (or only dust); else a copy whose
        dust is exactly 0 (``+0.0``) and whose sum is ``total`` (to rounding):
        the amount removed goes to the remaining weights in proportion to
        their size (capped by their room to ``lower`` / ``upper``), which keeps
        their signs and the zeros exact.
    """
    gross = float(np.abs(w).sum())
    small = np.abs(w) <= tol * min(1.0, gross)
    if lower is not None:  # a weight whose bounds exclude 0 is no dust, however small
        small &= lower <= 0
    if upper is not None:
        small &= upper >= 0
    if small.all() or not (small & ((w != 0) | np.signbit(w))).any():
        return w  # nothing to clean (a -0.0 counts: it would print as "-0.0")
    out = w.copy()
    out[small] = 0.0
    gap = (float(w.sum()) if total is None else float(total)) - float(out.sum())
    if gap != 0.0:
        share = np.abs(out)
        if gap > 0 and upper is not None:
            share = np.minimum(share, np.maximum(upper - out, 0.0))
        elif gap < 0 and lower is not None:
            share = np.minimum(share, np.maximum(out - lower, 0.0))
        if share.sum() > 0:
            out += gap * share / share.sum()
            out[small] = 0.0
    return out


def clean_weights(weights, *, tol: float = DUST_TOL) -> pd.Series:
    """Weights with the dust set to exact zeros and their total kept.

    A convenience for weights from elsewhere (trimtab's own answers are
    cleaned already: :func:`zero_dust` is applied, and verified, where they
    are made). Like PyPortfolioOpt's ``clean_weights(cutoff=...)``, but the
    total is kept and nothing is rounded.

    Parameters
    ----------
    weights : pandas.Series, shape (n,), or Allocation
        Finite weights by asset (decimals of value).
    tol : float, keyword-only
        Dust size: weights with ``|w| <= tol`` (times the gross weight when that
        is below 1) become 0. Non-negative; default :data:`DUST_TOL` (1e-7);
        ``1e-4`` is PyPortfolioOpt's cutoff.

    Returns
    -------
    pandas.Series, shape (n,)
        Same index and name; dust exactly 0, the amount removed spread over
        the remaining weights in proportion to their size, so the sum is
        unchanged (to rounding). Weights that were non-negative stay non-negative.

    Raises
    ------
    InputError
        ``weights`` not a Series (or Allocation), a non-finite weight (naming
        the asset), ``tol`` not a non-negative number.

    Examples
    --------
    >>> w = pd.Series([0.6, 0.4 - 2e-12, 2e-12], index=["EQ", "BD", "CASH"])
    >>> clean_weights(w).round(9).tolist()
    [0.6, 0.4, 0.0]
    """
    if isinstance(weights, Allocation):
        weights = weights.weights
    if not isinstance(weights, pd.Series):
        raise InputError(
            f"clean_weights needs a pandas Series of weights by asset (or an Allocation), "
            f"got {type(weights).__name__}: pass pd.Series(weights, index=assets)"
        )
    if isinstance(tol, bool) or not isinstance(tol, int | float | np.integer | np.floating):
        raise InputError(f"clean_weights: tol must be a number, got {tol!r}")
    if not (math.isfinite(tol) and tol >= 0):
        raise InputError(f"clean_weights: tol must be finite and >= 0, got {tol!r}")
    try:
        w = weights.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise InputError(
            "clean_weights: weights must be numbers; fix the non-numeric entries"
        ) from None
    bad = ~np.isfinite(w)
    if bad.any():
        asset = weights.index[int(np.flatnonzero(bad)[0])]
        raise InputError(
            f"clean_weights: the weight of {asset!r} is {float(w[bad][0])}: "
            "every weight must be a finite number; fix or drop that asset"
        )
    return pd.Series(zero_dust(w, float(tol)), index=weights.index, name=weights.name)
