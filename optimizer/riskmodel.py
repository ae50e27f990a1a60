"""Factor structure of a covariance matrix, usable by the convex core.

A covariance with factor structure is ``C = B F B' + diag(d)``: ``B`` the
loadings (n x k), ``F`` the factor covariance (k x k), ``d`` the specific
(idiosyncratic) variances. The core then measures risk as
``|L' B' w|^2 + sum(d w^2)`` with ``L L' = F``: k + n terms instead of the
dense n x n quadratic form.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from optimizer import validation
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
        both axes (matched to the loadings' columns by name; kept in their
        order).
    specific : pandas.Series, shape (n,)
        Specific (idiosyncratic) variances, annualized, non-negative,
        labelled by asset (matched to the loadings' rows by name; kept in
        their order).

    Raises
    ------
    InputError
        If labels do not line up, values are not finite, the factor
        covariance is not symmetric PSD (the rules of
        :func:`optimizer.validation.covariance`), or a specific variance is
        negative.
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
        assets = validation.labels(b.index, what="loadings rows")
        factors = validation.labels(b.columns, what="loadings columns")
        validation.finite_frame(b, what="loadings")
        # matched by name: specific and factor_cov are kept in the loadings' order
        d = validation.series(d, assets, what="specific", against="loadings rows")
        if len(factors) or f.shape != (0, 0):  # no factors: a diagonal covariance
            f = validation.covariance(
                f, what="factor_cov", assets=factors, against="loadings columns"
            )
            object.__setattr__(self, "factor_cov", f)
        object.__setattr__(self, "specific", d)
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


#: The fix for a singular or nearly singular estimated covariance, for messages.
SINGULAR_FIX = (
    "estimate cov with a shrinkage estimator (covariance.ledoit_wolf or covariance.oas) or "
    "from more history (more observations than assets)"
)


class RiskModel:
    """The covariance of a problem in the form the solver wants, a copy of its own.

    The data are copied when the model is made: editing the caller's
    DataFrame afterwards changes nothing here. A model is read-only after its
    lazily computed parts (dense form, root) are filled, so threads may share it.

    Parameters
    ----------
    cov : pandas.DataFrame (n x n), numpy.ndarray (n x n) or FactorCovariance
        Annualized covariance labelled by asset, already validated (an array:
        in ``assets`` order, kept without a copy). A factor covariance keeps
        its structure: risk is then ``|G'w|^2 + sum d w^2``.
    assets : pandas.Index
        Order of the weights.
    """

    def __init__(self, cov, assets: pd.Index) -> None:
        self.assets = pd.Index(assets).copy()
        if isinstance(cov, np.ndarray):  # validated values in ``assets`` order, ours to keep
            self.kind = "dense"
            self._dense = np.ascontiguousarray(cov, dtype=float)
            self.G = self.d = None
        elif isinstance(cov, FactorCovariance):
            model = cov if cov.assets.equals(assets) else cov.reindex(assets)
            self.G, self.d = model.risk_factor()
            self.kind = "factor"
            self._dense = None
        else:
            self.kind = "dense"
            same = cov.index.equals(assets) and cov.columns.equals(assets)
            frame = cov if same else cov.loc[assets, assets]
            self._dense = np.array(frame.to_numpy(dtype=float), order="C")  # our own copy
            self.G = self.d = None
        self._root = None
        self._unit: float | None = None

    @property
    def unit(self) -> float:
        """The mean variance of the assets (the covariance's units), its scale.

        Derived from the content alone (the mean of the covariance's diagonal,
        factor form included) and computed once; 1.0 for a zero covariance,
        which has no scale. The convex core scales its programs by it
        (:func:`optimizer.objective.risk_unit`), so that an answer does not
        depend on the units of the covariance (``c * C`` gives the answer of
        ``C``).
        """
        if self._unit is None:
            if self.kind == "factor":
                total = float(np.einsum("ij,ij->", self.G, self.G) + self.d.sum())
            else:
                total = float(np.trace(self._dense))
            n = max(len(self.assets), 1)
            unit = total / n
            self._unit = unit if math.isfinite(unit) and unit > 0 else 1.0
        return self._unit

    def variances(self) -> np.ndarray:
        """The assets' variances, the covariance's diagonal, shape (n,)."""
        if self.kind == "factor":
            return np.einsum("ij,ij->i", self.G, self.G) + self.d
        return np.diag(self._dense).copy()

    def singularity(self) -> str:
        """Why this covariance admits a riskless portfolio, for messages.

        ``"cov is singular (rank r of n; zero variance for: ...)"``, or
        ``"cov is zero"``, or, at full numerical rank, ``"cov is nearly
        singular (its smallest eigenvalue is ... of its largest)"``. The rank
        counts the eigenvalues above ``n * 1e-15`` times the largest. An
        eigendecomposition (O(n^3)): for error paths, not for every solve.
        """
        n = len(self.assets)
        var = self.variances()
        top_var = float(var.max(initial=0.0))
        zero = self.assets[var <= 1e-14 * top_var] if top_var > 0 else self.assets
        vals = np.linalg.eigvalsh(self.dense)
        top = float(vals.max(initial=0.0))
        if top <= 0:
            return f"cov is zero (every one of the {n} assets has zero variance)"
        rank = int((vals > top * max(n, 1) * 1e-15).sum())
        shown = ", ".join(map(str, zero[:10])) + (", ..." if len(zero) > 10 else "")
        zeros = f"; zero variance for: {shown}" if len(zero) else ""
        if rank < n:
            return f"cov is singular (rank {rank} of {n}{zeros})"
        low = max(float(vals.min()), 0.0) / top
        return f"cov is nearly singular (its smallest eigenvalue is {low:.2g} of its largest)"

    @property
    def nbytes(self) -> int:
        """Bytes held by the model's arrays (for bounded caches)."""
        parts = [self._dense, self.G, self.d, self._root]
        return int(sum(getattr(p, "nbytes", 0) for p in parts if p is not None))

    @property
    def dense(self) -> np.ndarray:
        """The n x n covariance (built on demand for a factor model)."""
        if self._dense is None:
            c = self.G @ self.G.T
            c[np.diag_indices_from(c)] += self.d
            self._dense = c
        return self._dense

    def times(self, w: np.ndarray) -> np.ndarray:
        """``C @ w`` (factor form when available)."""
        if self.kind == "factor":
            return self.G @ (self.G.T @ w) + self.d * w
        return self._dense @ w

    def variance(self, w: np.ndarray) -> float:
        """``w' C w`` (non-negative)."""
        return float(max(w @ self.times(w), 0.0))

    def root_t(self) -> sp.spmatrix | np.ndarray:
        """``R'`` with ``C = R R'``: ``||R' w||`` is the volatility of ``w``."""
        if self._root is None:
            if self.kind == "factor":
                self._root = sp.vstack(
                    [sp.csr_matrix(self.G.T), sp.diags(np.sqrt(self.d))], format="csr"
                )
            else:
                vals, vecs = np.linalg.eigh(self._dense)
                keep = vals > vals.max() * 1e-14
                self._root = (vecs[:, keep] * np.sqrt(vals[keep])).T
        return self._root


def content_key(cov) -> tuple:
    """A key equal for two covariances of equal content (labels and values).

    Hashes the values with SHA-256 (hardware-accelerated on current CPUs, about
    1 ms for a 500 x 500 matrix): two different matrices share a key only by a
    hash collision.
    """
    if isinstance(cov, FactorCovariance):
        parts = [cov.loadings, cov.factor_cov, cov.specific.to_frame()]
        return ("factor",) + tuple(content_key(p) for p in parts)
    if not isinstance(cov, pd.DataFrame):
        return ("object", id(cov))  # invalid input: validation rejects it next
    try:
        values = cov.to_numpy(dtype=float)
    except (TypeError, ValueError):
        return ("object", id(cov))
    # hash the memory as it lies (a DataFrame's block is column-major: its transpose is
    # C-ordered), with the layout in the key, rather than copy it
    layout = "F" if values.flags.f_contiguous and not values.flags.c_contiguous else "C"
    buffer = values.T if layout == "F" else np.ascontiguousarray(values)
    digest = hashlib.sha256(buffer).hexdigest()
    labels = (tuple(map(str, cov.index.tolist())), tuple(map(str, cov.columns.tolist())))
    return (*labels, values.shape, layout, digest)
