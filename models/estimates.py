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

from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance

__all__ = ["Estimates"]

#: Relative tolerances of the checks (see Estimates).
SYMMETRY_TOL = 1e-8
PSD_TOL = 1e-8
FACTOR_TOL = 1e-8


def _names(labels: pd.Index, limit: int = 20) -> str:
    text = ", ".join(map(str, labels[:limit]))
    if len(labels) > limit:
        text += f" and {len(labels) - limit} more"
    return text


def _numeric(obj: pd.Series | pd.DataFrame, what: str) -> None:
    def ok(col: pd.Series) -> bool:
        return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)

    if isinstance(obj, pd.Series):
        if not ok(obj):
            raise InputError(f"Estimates: {what} must be numeric, got dtype {obj.dtype}")
        return
    bad = [str(c) for c in obj.columns if not ok(obj[c])]
    if bad:
        raise InputError(
            f"Estimates: {what} must be numeric; non-numeric columns: {', '.join(bad)}"
        )


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
    Tolerances, with ``s = max|C_ij|``:

    * symmetry: ``|C_ij - C_ji| <= 1e-8 * s``;
    * positive semidefinite: smallest eigenvalue of ``(C + C') / 2``
      ``>= -1e-8 * max(1, s)``;
    * factors: ``|F_ij - C_ij| <= 1e-8 * max(s, smallest normal float)``
      where ``F`` is ``factors.cov``.

    The inputs are copied (as float64) so that later changes to the
    caller's objects cannot alter a validated instance.
    """

    mu: pd.Series
    cov: pd.DataFrame
    factors: FactorCovariance | None = None
    periods_per_year: float | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        mu, cov, factors = self.mu, self.cov, self.factors
        # -- types --------------------------------------------------------------------------
        if not isinstance(mu, pd.Series):
            raise InputError(f"Estimates: mu must be a pandas Series, got {type(mu).__name__}")
        if not isinstance(cov, pd.DataFrame):
            raise InputError(f"Estimates: cov must be a pandas DataFrame, got {type(cov).__name__}")
        if factors is not None and not isinstance(factors, FactorCovariance):
            raise InputError(
                "Estimates: factors must be an optimizer.riskmodel.FactorCovariance or None, "
                f"got {type(factors).__name__}"
            )
        if self.periods_per_year is not None:
            ppy = self.periods_per_year
            if (
                isinstance(ppy, bool)
                or not isinstance(ppy, numbers.Real)
                or not (math.isfinite(ppy) and ppy > 0)
            ):
                raise InputError(
                    f"Estimates: periods_per_year must be a positive number, got {ppy!r}"
                )
        if self.source is not None and not isinstance(self.source, str):
            raise InputError(
                f"Estimates: source must be a string, got {type(self.source).__name__}"
            )
        if len(mu) == 0:
            raise InputError("Estimates: mu is empty (no assets)")
        # -- labels -------------------------------------------------------------------------
        for labels, what in (
            (mu.index, "mu"),
            (cov.index, "cov rows"),
            (cov.columns, "cov columns"),
        ):
            dup = labels[labels.duplicated()].unique()
            if len(dup):
                raise InputError(f"Estimates: duplicate asset ids in {what}: {_names(dup)}")
        assets = mu.index
        for labels, what in ((cov.index, "cov rows"), (cov.columns, "cov columns")):
            missing = assets.difference(labels, sort=False)
            extra = labels.difference(assets, sort=False)
            if len(missing) or len(extra):
                parts = []
                if len(missing):
                    parts.append(f"missing from {what}: {_names(missing)}")
                if len(extra):
                    parts.append(f"in {what} but not in mu: {_names(extra)}")
                raise InputError(
                    "Estimates: mu and cov must have the same assets; " + "; ".join(parts)
                )
        _numeric(mu, "mu")
        _numeric(cov, "cov")
        cov = cov.reindex(index=assets, columns=assets)
        m = mu.to_numpy(dtype=float, na_value=np.nan)
        c = cov.to_numpy(dtype=float, na_value=np.nan)
        # -- finite -------------------------------------------------------------------------
        if not np.isfinite(m).all():
            raise InputError(f"Estimates: mu has NaN or inf for: {_names(assets[~np.isfinite(m)])}")
        bad_rows = ~np.isfinite(c).all(axis=1)
        if bad_rows.any():
            raise InputError(f"Estimates: cov has NaN or inf for: {_names(assets[bad_rows])}")
        # -- symmetric ----------------------------------------------------------------------
        scale = float(np.abs(c).max())
        asym = np.abs(c - c.T)
        if asym.max() > SYMMETRY_TOL * scale:
            i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
            raise InputError(
                "Estimates: cov is not symmetric: the worst pair is "
                f"({assets[i]}, {assets[j]}) = {c[i, j]:.6g} vs ({assets[j]}, {assets[i]}) = "
                f"{c[j, i]:.6g} (tolerance {SYMMETRY_TOL:g} x max |cov|)"
            )
        # -- variances and PSD --------------------------------------------------------------
        neg = np.diag(c) < 0
        if neg.any():
            raise InputError(f"Estimates: negative variance in cov for: {_names(assets[neg])}")
        min_eig = float(np.linalg.eigvalsh((c + c.T) / 2.0)[0])
        if min_eig < -PSD_TOL * max(1.0, scale):
            raise InputError(
                "Estimates: cov is not positive semidefinite: smallest eigenvalue "
                f"{min_eig:.3g} (tolerance {-PSD_TOL * max(1.0, scale):.3g}); repair it with "
                "models.covariance.nearest_psd(cov)"
            )
        # -- factors ------------------------------------------------------------------------
        if factors is not None:
            missing = assets.difference(factors.assets, sort=False)
            extra = factors.assets.difference(assets, sort=False)
            if len(missing) or len(extra) or factors.assets.has_duplicates:
                parts = []
                if len(missing):
                    parts.append(f"missing from factors: {_names(missing)}")
                if len(extra):
                    parts.append(f"in factors but not in mu: {_names(extra)}")
                if factors.assets.has_duplicates:
                    parts.append("duplicate asset ids in factors")
                raise InputError(
                    "Estimates: factors must cover the same assets as mu; " + "; ".join(parts)
                )
            if not factors.assets.equals(assets):
                factors = factors.reindex(assets)
            fc = factors.cov.to_numpy(dtype=float)
            diff = np.abs(fc - c)
            tol = FACTOR_TOL * max(scale, np.finfo(float).tiny)
            if diff.max() > tol:
                i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
                raise InputError(
                    "Estimates: factors.cov does not match cov: the worst pair is "
                    f"({assets[i]}, {assets[j]}): factors give {fc[i, j]:.6g}, cov has "
                    f"{c[i, j]:.6g} (tolerance {FACTOR_TOL:g} x max |cov|)"
                )
        # -- store defensive float copies ----------------------------------------------------
        object.__setattr__(self, "mu", pd.Series(m, index=assets.copy(), name=mu.name))
        object.__setattr__(self, "cov", pd.DataFrame(c, index=assets.copy(), columns=assets.copy()))
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
