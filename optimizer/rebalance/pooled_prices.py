"""The prices of the coupled assets of a pooled rebalance, by a secant search on the dual.

Dual decomposition (Everett 1963; Boyd and Vandenberghe 2004, section 5.5.5):
at prices ``y`` (shape (c,), currency per currency of pooled quantity) every
account solves its own program plus ``y' x_i`` on its pooled quantities
``x_i`` (one map), and the accounts' pooled trade ``G(y) = sum_i x_i(y) + c``
(``c``: the liquidations, which do not depend on ``y``) is reduced. The
prices are right when the pooled trade is what the desk supplies at them,

    ``G_j(y) = D_j(y_j)``, ``D_j(y) = sign(y) min(cap_j, (|y| / a_j)^2)``,
    ``a_j = 1.5 impact_j``

(``D_j`` inverts the marginal pooled impact ``a_j sqrt|Q|``, and the cap
clips it; without impact ``D_j(y) = sign(y) cap_j`` and at ``y_j = 0`` any
pooled trade within the cap will do). ``G_j`` falls as ``y_j`` rises (each
account's own pooled quantity does: the monotonicity of the solution of a
convex program in a linear price), ``D_j`` rises, so each price has one root,
and only ``c`` prices (the coupled assets, a handful) are searched for, however
many accounts there are.

:class:`PriceSearch` moves the prices to the root of a model of these
equations: ``G`` affine, with a Jacobian that starts as a guess of each
account's own curvature (diagonal) and learns from every reduction by
Broyden's update (the prices move together, and a price moves the pooled trade
of the other coupled assets too), ``D`` exact; the model's root is found one
price at a time (a few sweeps of a closed form per price). Each account's
pooled trade is piecewise linear in the prices and the accounts' responses add
up, so the search takes a handful of maps where ADMM takes about a hundred. It
needs each account's response to be continuous in the prices (a tracking term
with a positive definite covariance: one answer per price); without that it
may stall, and :func:`~optimizer.rebalance.pooled_rebalance` goes on by ADMM
from where it stopped.
"""

from __future__ import annotations

import numpy as np

from optimizer.rebalance.rebalancer import _variances

#: Most reductions of the price search before ADMM takes over.
DUAL_MAX = 30
#: The search's default tolerance on the relative residual ``|G - D| / max(cap, gross)``.
DUAL_TOL = 1e-4
#: Most sweeps of the inner solve of the model's equations.
INNER = 50


def supply(y: np.ndarray, g: np.ndarray, cap: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``D(y)``: the pooled trade the desk supplies at prices ``y`` (currency, shape (c,)).

    At ``y_j = 0`` without impact, any pooled trade within the cap is supplied:
    ``D_j = clip(g_j, -cap_j, cap_j)`` (``g``: the accounts' pooled trade).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(a > 0, (np.abs(y) / np.where(a > 0, a, 1.0)) ** 2, np.inf)
    d = np.sign(y) * np.minimum(cap, inner)
    free = (y == 0) & (a == 0)
    return np.where(free, np.clip(g, -cap, cap), np.nan_to_num(d, posinf=0.0))


def _model_root(
    g: np.ndarray, y: np.ndarray, s: np.ndarray, cap: np.ndarray, a: np.ndarray
) -> np.ndarray:
    """The root ``y' >= 0`` of ``g + s (y' - y) = D(y')`` on the positive side (``s < 0``).

    ``r1`` solves it where ``D = (y'/a)^2`` and ``r2`` where ``D = cap``; the root is
    the larger of the two (and of 0): each is below the other's region when it is not
    in its own.
    """
    c0 = np.maximum(g - s * y, 0.0)  # the model's pooled trade at a zero price
    a2 = a * a
    r1 = np.where(a > 0, (a2 * s + np.sqrt((a2 * s) ** 2 + 4.0 * a2 * c0)) / 2.0, 0.0)
    with np.errstate(invalid="ignore"):
        r2 = np.where(np.isfinite(cap), y + (cap - g) / s, -np.inf)
    return np.maximum(np.maximum(r1, r2), 0.0)


class PriceSearch:
    """Quasi-Newton search for the prices of the coupled assets (see the module's notes).

    Parameters
    ----------
    cap, impact : numpy.ndarray, shape (c,)
        The pooled caps (currency, inf: none) and impact coefficients of the coupled assets.
    kind : {"gross", "net"}
        Gross pooled trades are ``>= 0`` and so are their prices; net ones take either sign.
    slope : numpy.ndarray, shape (c,)
        A guess of ``dG_j / dy_j`` (currency per price unit, < 0) for the first step.
    """

    def __init__(self, cap: np.ndarray, impact: np.ndarray, kind: str, slope: np.ndarray):
        self.cap, self.a, self.kind = cap, 1.5 * impact, kind
        self.guess = np.minimum(np.asarray(slope, dtype=float), -1e-300)
        self.jac = np.diag(self.guess)  # dG / dy, by Broyden's updates
        self.last: tuple[np.ndarray, np.ndarray] | None = None

    def residual(self, y: np.ndarray, g: np.ndarray) -> np.ndarray:
        """``G(y) - D(y)`` (currency, shape (c,)): zero at the right prices."""
        return g - supply(y, g, self.cap, self.a)

    def next(self, y: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The next prices from the pooled trade ``g`` (currency, (c,)) at prices ``y``."""
        if self.last is not None:
            dy, dg = y - self.last[0], g - self.last[1]
            nn = float(dy @ dy)
            if nn > 0:
                self.jac += np.outer(dg - self.jac @ dy, dy) / nn
        self.last = (y.copy(), g.copy())
        d = np.diag(self.jac).copy()
        bad = d >= 0  # the pooled trade falls as its own price rises: a guess again
        d[bad] = self.guess[bad]
        off = self.jac - np.diag(np.diag(self.jac))
        new = y.copy()
        for _ in range(INNER):  # the model's root, one price at a time (Jacobi)
            gj = g + off @ (new - y)
            up = _model_root(gj, y, d, self.cap, self.a)
            if self.kind == "gross":
                step = up
            else:  # the mirror image for a pooled trade the model puts below zero
                down = -_model_root(-gj, -y, d, self.cap, self.a)
                step = np.where(gj - d * y >= 0, up, down)
            moved = float(np.max(np.abs(step - new)))
            new = step
            if moved <= 1e-12 * max(1.0, float(np.max(np.abs(new)))):
                break
        return new


def own_slope(books: list, coupled: np.ndarray, v1: list, active: list) -> np.ndarray:
    """A guess of ``dG_j / dy_j`` (currency per price unit, shape (c,)) for the first step.

    Every active account moves its pooled quantity in asset ``j`` by about
    ``V1 / (2 lambda var_j)`` per unit of price (its tracking curvature in that asset).

    Parameters
    ----------
    books : list of AccountBook
    coupled : numpy.ndarray of int, shape (c,)
        The coupled assets.
    v1, active : list of numpy.ndarray, shape (k,) each
        Each book's accounts' ``V1`` (currency) and which take part.
    """
    out = np.zeros(len(coupled))
    for b, vi, a in zip(books, v1, active, strict=True):
        rb = b.rebalancer
        curv = np.maximum(2.0 * rb.lam * np.asarray(_variances(rb.risk))[coupled], 1e-12)
        out -= float(vi[a].sum()) / curv
    return out


__all__ = ["DUAL_MAX", "DUAL_TOL", "PriceSearch", "own_slope", "supply"]
