"""The hand-off between estimation and allocation: expected returns and covariance.

An :class:`Estimates` is built once, validated once, and then read by the
allocation models: they can rely on aligned labels, finite numbers and a
symmetric positive semidefinite covariance.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer import validation
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance

__all__ = ["Estimates"]

#: Largest ``|F_ij - C_ij|`` accepted between ``factors.cov`` and ``cov``, relative to
#: ``max |C_ij|`` (see Estimates).
FACTOR_TOL = 1e-8


@dataclass(frozen=True, eq=False)
class Estimates:
    """Annualized expected returns and covariance of a set of assets.

    Parameters
    ----------
    mu : pandas.Series, shape (n,)
        Expected returns by asset id, annualized (decimals).
    cov : pandas.DataFrame, shape (n, n)
        Covariance of returns, annualized (decimals squared), labelled by
        the same asset ids on both axes. If its labels are the same set as
        ``mu``'s in another order, it is reordered to ``mu``'s order (so
        ``est.cov.index`` always equals ``est.mu.index``).
    factors : FactorCovariance, optional
        The factor structure of ``cov``, when it has one (the optimizer then
        uses it for speed). Reordered like ``cov`` when needed.
    periods_per_year : float, optional
        Frequency of the data the estimates came from (metadata only: the
        figures are annualized whatever it is).
    source : str, optional
        Free-text description of where the estimates came from, e.g.
        ``"ledoit_wolf(prices 2010-2022)"`` or ``"cma 2024"``.

    Raises
    ------
    InputError
        Naming the failed check: wrong types; duplicate labels; ``mu`` and
        ``cov`` labels differing (naming the missing and extra assets);
        non-numeric or non-finite values (naming the assets); an asymmetric
        ``cov`` (naming the worst pair); a negative variance (naming the
        assets); a ``cov`` that is not positive semidefinite (giving the
        smallest eigenvalue); ``factors`` on other assets or not matching
        ``cov`` (naming the worst pair).

    Notes
    -----
    ``mu`` and ``cov`` are checked by :mod:`optimizer.validation`, with the
    rules every other entry point uses: with ``s = max|C_ij|``, symmetry
    ``|C_ij - C_ji| <= SYMMETRY_RTOL * s`` (``cov`` is stored as
    ``(C + C') / 2``) and smallest eigenvalue ``>= -PSD_RTOL * s`` (both
    1e-8, so the verdict does not depend on the units of ``cov``). The
    factor structure must match: ``|F_ij - C_ij| <= FACTOR_TOL * max(s,
    smallest normal float)`` where ``F`` is ``factors.cov``.

    The inputs are copied (as float64) so that later changes to the
    caller's objects cannot alter a validated instance.
    """

    mu: pd.Series
    cov: pd.DataFrame
    factors: FactorCovariance | None = None
    periods_per_year: float | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        try:
            self._validate()
        except InputError as exc:
            raise InputError(f"Estimates: {exc}") from None

    def _validate(self) -> None:
        mu, cov, factors = self.mu, self.cov, self.factors
        # -- types (mu and cov themselves, not mappings or factor models) ------------------
        if not isinstance(mu, pd.Series):
            raise InputError(f"mu must be a pandas Series, got {type(mu).__name__}")
        if not isinstance(cov, pd.DataFrame):
            raise InputError(f"cov must be a pandas DataFrame, got {type(cov).__name__}")
        if factors is not None and not isinstance(factors, FactorCovariance):
            raise InputError(
                "factors must be an optimizer.riskmodel.FactorCovariance or None, "
                f"got {type(factors).__name__}"
            )
        if self.periods_per_year is not None:
            ppy = self.periods_per_year
            if (
                isinstance(ppy, bool)
                or not isinstance(ppy, numbers.Real)
                or not (math.isfinite(ppy) and ppy > 0)
            ):
                raise InputError(f"periods_per_year must be a positive number, got {ppy!r}")
        if self.source is not None and not isinstance(self.source, str):
            raise InputError(f"source must be a string, got {type(self.source).__name__}")
        if len(mu) == 0:
            raise InputError("mu is empty (no assets)")
        # -- labels, numbers, symmetry, PSD: the rules of optimizer.validation -------------
        m = validation.series(mu, what="mu")
        assets = m.index
        c = validation.covariance(cov, assets=assets, against="mu")
        # -- factors ------------------------------------------------------------------------
        if factors is not None:
            validation.labels(factors.assets, what="factors", assets=assets, against="mu")
            if not factors.assets.equals(assets):
                factors = factors.reindex(assets)
            cv = c.to_numpy()
            fc = factors.cov.to_numpy(dtype=float)
            diff = np.abs(fc - cv)
            scale = float(np.abs(cv).max())
            tol = FACTOR_TOL * max(scale, np.finfo(float).tiny)
            if diff.max() > tol:
                i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
                raise InputError(
                    "factors.cov does not match cov: the worst pair is "
                    f"({assets[i]}, {assets[j]}): factors give {fc[i, j]:.6g}, cov has "
                    f"{cv[i, j]:.6g} (tolerance {FACTOR_TOL:g} x max |cov|)"
                )
        # -- store the validated float copies ------------------------------------------------
        object.__setattr__(self, "mu", m)
        object.__setattr__(self, "cov", c)
        object.__setattr__(self, "factors", factors)

    @property
    def assets(self) -> pd.Index:
        """Asset ids, in order (shape (n,))."""
        return self.mu.index

    @property
    def volatility(self) -> pd.Series:
        """Annualized volatility of each asset, ``sqrt(diag(cov))`` (decimals), shape (n,)."""
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.assets.copy())

    @property
    def correlation(self) -> pd.DataFrame:
        """Correlation matrix, shape (n, n), labelled by asset on both axes.

        An asset with zero variance (cash, say) has correlation 0 with the
        others and 1 with itself.
        """
        c = self.cov.to_numpy()
        sd = np.sqrt(np.diag(c))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = c / np.outer(sd, sd)
        corr[~np.isfinite(corr)] = 0.0
        corr = np.clip((corr + corr.T) / 2.0, -1.0, 1.0)
        np.fill_diagonal(corr, 1.0)
        return pd.DataFrame(corr, index=self.assets.copy(), columns=self.assets.copy())
