"""Newton kernels of risk budgeting (private): Spinu's problem and its face-restricted form.

``min_x 1/2 x'Cx - sum_i b_i log x_i`` over ``x > 0`` (Spinu 2013, "An
algorithm for computing risk parity weights", SSRN 2297383), by Newton's
method with backtracking (Boyd and Vandenberghe 2004, *Convex Optimization*,
9.5 and 10.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, lapack

from optimizer.riskmodel import RiskModel

#: Armijo sufficient-decrease fraction and the Newton decrement (squared)
#: under which full steps are taken without a line search.
_ARMIJO = 0.25
_FULL_STEP_LAMBDA2 = 1e-10
#: Most Jacobi sweeps that improve the inverse-volatility start (each costs
#: one product with the covariance; they stop as soon as one does not halve
#: the spread).
_JACOBI_SWEEPS = 3


# ----------------------------------------------------------------------------- kernels


@dataclass
class _Newton:
    """Outcome of a Newton solve: ``x`` (unnormalized), its spread, iterations."""

    x: np.ndarray
    spread: float
    iterations: int
    converged: bool
    reason: str = ""


def _spread(x: np.ndarray, cx: np.ndarray, b: np.ndarray) -> float:
    """``max_i |x_i (Cx)_i / (b_i x'Cx) - 1|`` (``b`` sums to one)."""
    r = x * cx
    total = r.sum()
    if not (total > 0 and np.isfinite(total)):
        return math.inf
    return float(np.max(np.abs(r / (b * total) - 1.0)))


class _Hessian:
    """Solves ``(C + diag(h)) z = g`` for the risk model's ``C``.

    * Factor form ``C = G G' + diag(d)``: the Woodbury identity, O(n k^2).
    * Dense, small (n < 200): one Cholesky factorization (LAPACK ``potrf``)
      in a work buffer.
    * Dense, large: conjugate gradients preconditioned by the diagonal
      (O(n^2) per iteration). Near the solution the preconditioned Hessian
      ``I + D^-1/2 C D^-1/2`` (``D = diag(b / x^2)``, ``D x = C x``) has its
      eigenvalues in ``[1, 2]`` when the correlations are non-negative (the
      Perron vector is ``D^1/2 x``), so a few iterations suffice; when they do
      not (or on breakdown) the step falls back to the Cholesky solve.
    """

    #: Dense size from which conjugate gradients are tried first.
    CG_MIN_N = 200
    #: Most conjugate-gradient iterations before falling back to Cholesky.
    CG_MAX_ITER = 80

    def __init__(self, rm: RiskModel) -> None:
        self.rm = rm
        self.cg_iterations = 0
        self.factorizations = 0
        if rm.kind == "factor":
            self.G, self.d = rm.G, rm.d
            self.k = self.G.shape[1]
        else:
            self.C = rm.dense
            self.cdiag = np.diag(self.C).copy()
            self.work: np.ndarray | None = None

    def times(self, v: np.ndarray) -> np.ndarray:
        return self.rm.times(v)

    def diagonal(self) -> np.ndarray:
        return self.rm.variances()

    def solve(self, h: np.ndarray, g: np.ndarray, rtol: float = 0.0) -> np.ndarray | None:
        """``(C + diag(h))^-1 g`` to a relative residual ``rtol`` (None on failure)."""
        if self.rm.kind == "factor":
            dd = self.d + h
            gd = g / dd
            gs = self.G / dd[:, None]
            small = np.eye(self.k) + self.G.T @ gs
            try:
                fac = cho_factor(small, check_finite=False)
            except LinAlgError:
                return None
            return gd - gs @ cho_solve(fac, self.G.T @ gd, check_finite=False)
        if len(g) >= self.CG_MIN_N and rtol > 0:
            z = self._cg(h, g, rtol)
            if z is not None:
                return z
        return self._cholesky(h, g)

    def _cg(self, h: np.ndarray, g: np.ndarray, rtol: float) -> np.ndarray | None:
        c = self.C
        pinv = 1.0 / (self.cdiag + h)
        z = np.zeros_like(g)
        r = g.copy()
        s = pinv * r
        p = s.copy()
        rs = float(r @ s)
        stop = (rtol * float(np.linalg.norm(g))) ** 2
        for _ in range(self.CG_MAX_ITER):
            self.cg_iterations += 1
            q = c @ p + h * p
            pq = float(p @ q)
            if not pq > 0:
                return None
            alpha = rs / pq
            z += alpha * p
            r -= alpha * q
            if float(r @ r) <= stop:
                return z
            s = pinv * r
            rs_new = float(r @ s)
            p *= rs_new / rs
            p += s
            rs = rs_new
        return None

    def _cholesky(self, h: np.ndarray, g: np.ndarray) -> np.ndarray | None:
        self.factorizations += 1
        n = len(g)
        if self.work is None:
            self.work = np.empty_like(self.C)
        work = self.work
        np.copyto(work, self.C)
        work.flat[:: n + 1] += h
        # ``work`` is symmetric, so its transpose is the same matrix in Fortran
        # order: LAPACK factors it in place, without a copy.
        fac, info = lapack.dpotrf(work.T, lower=0, clean=0, overwrite_a=1)
        if info != 0:
            return None
        z, info = lapack.dpotrs(fac, g, lower=0)
        return z if info == 0 else None


def _spinu_newton(hess: _Hessian, b: np.ndarray, *, tol: float, max_iter: int) -> _Newton:
    """Newton's method on ``min 1/2 x'Cx - b' log x`` (Spinu 2013).

    Parameters
    ----------
    hess : _Hessian
        The covariance, shape (n, n), as products and Hessian solves.
    b : numpy.ndarray, shape (n,)
        Positive budgets summing to one.
    tol : float
        Stop when the relative risk-contribution spread is at most ``tol``.
    max_iter : int
        Most Newton steps.

    Notes
    -----
    Start: ``x0 ∝ sqrt(b) / sigma`` (inverse volatility, exact for a diagonal
    covariance), scaled along its ray to the minimum, ``x0'Cx0 = 1``; then up
    to three Jacobi sweeps, each solving every budget equation
    ``C_ii x_i^2 + a_i x_i = b_i`` (``a_i`` the rest of ``(Cx)_i``) with the
    other weights held fixed, kept only while each halves the spread (the
    simultaneous form of the coordinate update of Griveau-Billion, Richard
    and Roncalli 2013, "A fast algorithm for computing high-dimensional risk
    parity portfolios", arXiv:1311.4057). Step:
    ``dx = -(C + diag(b/x^2))^-1 (Cx - b/x)``, shortened to keep ``x > 0``
    (never more than 99% of the way to the boundary) and then backtracked
    until the Armijo condition holds (Boyd and Vandenberghe 2004, 9.5). Near
    the solution (Newton decrement below 1e-5) the full step is taken: the
    convergence is then quadratic. The iterations also stop when they stall
    at the rounding level.
    """
    diag = hess.diagonal()
    x = np.sqrt(b / diag)
    cx = hess.times(x)
    if not float(x @ cx) > 0:  # a long-only portfolio without risk: no solution
        return _Newton(x, math.inf, 0, False, "the start has zero variance")
    s = math.sqrt(1.0 / float(x @ cx))
    x *= s
    cx *= s
    spread = _spread(x, cx, b)
    for _ in range(_JACOBI_SWEEPS):
        # every x_i solves its own budget equation with the others held fixed
        a = cx - diag * x
        with np.errstate(divide="ignore", invalid="ignore"):  # a hedge: checked just below
            xj = 2.0 * b / (a + np.sqrt(a * a + 4.0 * diag * b))
            cxj = hess.times(xj)
        if not np.isfinite(xj).all() or not float(xj @ cxj) > 0:
            break
        s = math.sqrt(1.0 / float(xj @ cxj))
        xj *= s
        cxj *= s
        sj = _spread(xj, cxj, b)
        if not sj < 0.5 * spread:
            break
        x, cx, spread = xj, cxj, sj
    f = 0.5 * float(x @ cx) - float(b @ np.log(x))
    best, stalled = spread, 0
    for it in range(max_iter):
        if spread <= tol:
            return _Newton(x, spread, it, True)
        g = cx - b / x
        dx = hess.solve(b / (x * x), g, rtol=min(0.1, spread))
        if dx is None or not np.isfinite(dx).all():
            return _Newton(x, spread, it, False, "the Hessian could not be factored")
        dx = -dx
        lam2 = -float(g @ dx)
        step = 1.0
        neg = dx < 0
        if neg.any():
            step = min(1.0, 0.99 * float(np.min(x[neg] / -dx[neg])))
        if lam2 > _FULL_STEP_LAMBDA2 or step < 1.0:
            for _ in range(60):
                xn = x + step * dx
                cxn = hess.times(xn)
                fn = 0.5 * float(xn @ cxn) - float(b @ np.log(xn))
                if fn <= f - _ARMIJO * step * lam2:
                    break
                step *= 0.5
            else:
                return _Newton(x, spread, it, False, "the line search failed")
        else:
            xn = x + dx
            cxn = hess.times(xn)
            fn = 0.5 * float(xn @ cxn) - float(b @ np.log(xn))
        x, cx, f = xn, cxn, fn
        spread = _spread(x, cx, b)
        if not math.isfinite(spread):
            return _Newton(x, spread, it + 1, False, "the iterates left the positive orthant")
        if spread < 0.5 * best:
            best, stalled = spread, 0
        elif lam2 <= _FULL_STEP_LAMBDA2:
            stalled += 1
            if stalled >= 3:  # at the rounding level: further steps cannot help
                return _Newton(x, spread, it + 1, spread <= tol, "stalled at the rounding level")
    return _Newton(x, spread, max_iter, spread <= tol, f"no convergence in {max_iter} steps")


def _face_newton(
    hess: _Hessian, b: np.ndarray, y0: np.ndarray, z: np.ndarray, *, max_iter: int = 50
) -> np.ndarray | None:
    """Newton's method for ``min 1/2 y'Cy - b' log y`` over ``y = Z u > 0``.

    ``Z`` (n x m, orthonormal columns) spans the face cut out by the binding
    constraints; the start ``y0`` lies (nearly) on it. Returns ``y`` or None.
    """
    cdense = hess.rm.dense
    y = z @ (z.T @ y0)
    if not (y > 0).all():
        return None
    cy = cdense @ y
    f = 0.5 * float(y @ cy) - float(b @ np.log(y))
    for _ in range(max_iter):
        g = cy - b / y
        gu = z.T @ g
        hu = z.T @ ((cdense + np.diag(b / (y * y))) @ z)
        try:
            du = -cho_solve(cho_factor(hu, check_finite=False), gu, check_finite=False)
        except (LinAlgError, ValueError):
            return None
        dy = z @ du
        lam2 = -float(gu @ du)
        if lam2 <= 1e-28:
            return y
        step = 1.0
        neg = dy < 0
        if neg.any():
            step = min(1.0, 0.99 * float(np.min(y[neg] / -dy[neg])))
        for _ in range(60):
            yn = y + step * dy
            cyn = cdense @ yn
            fn = 0.5 * float(yn @ cyn) - float(b @ np.log(yn))
            if fn <= f - _ARMIJO * step * lam2 or (lam2 <= _FULL_STEP_LAMBDA2 and step == 1.0):
                break
            step *= 0.5
        else:
            return y
        y, cy, f = yn, cyn, fn
        if lam2 <= 1e-20:  # one more full step is already at the rounding level
            return y
    return y
