"""Factor structure of a covariance matrix, usable by the convex core.

A covariance with factor structure is ``C = B F B' + diag(d)``: ``B`` the
loadings (n x k), ``F`` the factor covariance (k x k), ``d`` the specific
(idiosyncratic) variances. The core then measures risk as
``|L' B' w|^2 + sum(d w^2)`` with ``L L' = F``: k + n terms instead of the
dense n x n quadratic form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.errors import InputError


@dataclass(frozen=True, eq=False)
class FactorCovariance:
    """Covariance in factor form ``B F B' + diag(d)``, annualized.

    Parameters
    ----------
    loadings : pandas.DataFrame, shape (n, k)
        Exposure of each asset (rows) to each factor (columns).
    factor_cov : pandas.DataFrame, shape (k, k)
        Covariance of the factor returns, annualized, labelled by factor on
        both axes (same order as the loadings' columns).
    specific : pandas.Series, shape (n,)
        Specific (idiosyncratic) variances, annualized, non-negative,
        labelled by asset (same order as the loadings' rows).

    Raises
    ------
    InputError
        If labels do not line up, values are not finite, the factor
        covariance is not symmetric PSD, or a specific variance is negative.
    """

    loadings: pd.DataFrame
    factor_cov: pd.DataFrame
    specific: pd.Series

    def __post_init__(self) -> None:
        b, f, d = self.loadings, self.factor_cov, self.specific
        if not isinstance(b, pd.DataFrame) or not isinstance(f, pd.DataFrame):
            raise InputError("loadings and factor_cov must be pandas DataFrames")
        if not isinstance(d, pd.Series):
            raise InputError("specific must be a pandas Series")
        if not b.index.equals(d.index):
            raise InputError("loadings rows and specific variances must have the same asset labels")
        if not (f.index.equals(f.columns) and f.index.equals(b.columns)):
            raise InputError("factor_cov must be labelled by the loadings' factor columns")
        for what, arr in (("loadings", b), ("factor_cov", f), ("specific", d)):
            if not np.isfinite(arr.to_numpy(dtype=float)).all():
                raise InputError(f"{what} has NaN or inf values")
        fv = f.to_numpy(dtype=float)
        scale = max(1.0, float(np.abs(fv).max()))
        if not np.allclose(fv, fv.T, atol=1e-10 * scale):
            raise InputError("factor_cov is not symmetric")
        if len(fv) and float(np.linalg.eigvalsh((fv + fv.T) / 2).min()) < -1e-10 * scale:
            raise InputError("factor_cov is not positive semidefinite")
        neg = d.index[d.to_numpy(dtype=float) < 0]
        if len(neg):
            raise InputError(f"negative specific variance for: {', '.join(map(str, neg))}")

    @property
    def assets(self) -> pd.Index:
        """Asset ids, in order."""
        return self.loadings.index

    @property
    def cov(self) -> pd.DataFrame:
        """The implied dense covariance ``B F B' + diag(d)``, shape (n, n)."""
        b = self.loadings.to_numpy(dtype=float)
        c = b @ self.factor_cov.to_numpy(dtype=float) @ b.T
        c[np.diag_indices_from(c)] += self.specific.to_numpy(dtype=float)
        c = (c + c.T) / 2
        return pd.DataFrame(c, index=self.assets, columns=self.assets)

    def risk_factor(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``G`` (n x k) and ``d`` (n,) with ``C = G G' + diag(d)``.

        ``G = B L`` where ``L L' = F`` (a symmetric square root, so it
        exists for a semidefinite ``F``).
        """
        fv = self.factor_cov.to_numpy(dtype=float)
        vals, vecs = np.linalg.eigh((fv + fv.T) / 2)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        return self.loadings.to_numpy(dtype=float) @ root, self.specific.to_numpy(dtype=float)

    def reindex(self, assets: pd.Index) -> FactorCovariance:
        """The same model with assets in another order (a permutation)."""
        return FactorCovariance(
            self.loadings.loc[assets], self.factor_cov, self.specific.loc[assets]
        )
