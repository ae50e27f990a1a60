"""One account's inputs, checked and in the optimizer's units, with its account pieces.

An :class:`Account` holds what a plan needs beyond the :class:`Rebalancer`:
holdings (currency), target weights, prices, the values before and after the
cash flow, the assets frozen for this account (untradeable, or inside their
no-trade band), and the *account pieces*, the constraints whose limits depend
on the account:

* ``no-trade band [asset]``: :class:`~optimizer.pieces.Bound` on the weight,
  ``target - band <= w <= target + band`` (``band_to="edge"``);
* ``turnover cap``: :class:`~optimizer.pieces.TradeNorm`,
  ``sum_i |t_i| <= max_turnover`` with ``t = (after - before) / V1``;
* ``participation limit [asset]``: :class:`~optimizer.pieces.TradeBound`,
  ``|t_i| <= participation * adv_i / V1``.

Minimum-trade floors are account pieces too (:func:`floor_pieces`), added by
the minimum-trade step of :mod:`optimizer.rebalance.fixed`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optimizer.errors import InfeasibleError, InputError
from optimizer.pieces import Bound, Piece, TradeBound, TradeNorm
from optimizer.validation import finite_number, series

if TYPE_CHECKING:
    from optimizer.rebalance.rebalancer import Rebalancer

#: A value after the cash flow within this fraction of the value before counts as 0: the
#: withdrawal is the whole portfolio, a liquidation.
LIQUIDATION_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class Account:
    """What one plan is made of, in the optimizer's units.

    Attributes
    ----------
    h : numpy.ndarray, shape (n,)
        Holdings, market value (currency).
    tau : numpy.ndarray, shape (n,)
        Target weights (decimals).
    price : numpy.ndarray, shape (n,), or None
        Price per unit (NaN where not given).
    v0, v1 : float
        Value before and after the cash flow (currency); ``v1 = v0 + flow``,
        0 for a withdrawal of the whole portfolio (a liquidation: see
        :func:`optimizer.rebalance.plan.liquidation`; such an account is never solved).
    flow : float
        Cash flow (currency, > 0 a contribution).
    frozen : frozenset of int
        Assets that do not trade (untradeable, or inside their no-trade band).
    bands, limits : tuple of Piece
        The no-trade band edges (weight space) and the trade limits (trade space).
    """

    h: np.ndarray
    tau: np.ndarray
    price: np.ndarray | None
    v0: float
    v1: float
    flow: float
    frozen: frozenset
    bands: tuple
    limits: tuple

    @property
    def h_w(self) -> np.ndarray:
        """Holdings over the post-trade value, shape (n,)."""
        return self.h / self.v1

    def pieces(self, floors: tuple = ()) -> tuple[Piece, ...]:
        """The account pieces in program order: band edges, floors, trade limits."""
        return self.bands + tuple(floors) + self.limits


def vector(
    values, assets: pd.Index, what: str, *, fill: float | None = None, same=None
) -> np.ndarray:
    """A Series by asset as a vector in ``assets`` order; ``fill`` for assets not named.

    ``same(index)`` (optional) says whether an index equals ``assets`` (the
    rebalancer's memo of the last one seen).
    """
    same = same or assets.equals
    if isinstance(values, pd.Series) and same(values.index):  # the batch fast path
        out = values.to_numpy(dtype=float)
        if np.isfinite(out).all() or fill is not None and np.isnan(fill):
            return out.copy()
    s = series(values, what=what)
    extra = s.index.difference(assets)
    if len(extra):
        raise InputError(f"{what} names unknown assets: {', '.join(map(str, extra))}")
    if fill is None:
        missing = assets.difference(s.index)
        if len(missing):
            raise InputError(f"{what} is missing for {', '.join(map(str, missing))}")
    return s.reindex(assets, fill_value=0.0 if fill is None else fill).to_numpy(dtype=float)


def floor_pieces(floors: dict[int, float], h_w: np.ndarray, assets: pd.Index) -> tuple:
    """Minimum-trade floors: keep the trade in asset ``i`` at least ``|f|`` in its direction.

    ``floors`` maps an asset to its signed floor (weight units); the trade
    keeps its sign, which makes the floor convex:
    ``w_i >= h_i / V1 + f`` for a buy, ``w_i <= h_i / V1 + f`` for a sell.
    """
    out = []
    for i in sorted(floors):
        f = floors[i]
        lo, hi = (h_w[i] + f, math.inf) if f > 0 else (-math.inf, h_w[i] + f)
        out.append(Bound("minimum trade", f"minimum trade [{assets[i]}]", i, lo, hi))
    return tuple(out)


def make_account(rb: Rebalancer, holdings, target, prices, cash_flow) -> Account:
    """Check one account's inputs against the rebalancer and build its :class:`Account`.

    Raises
    ------
    InputError
        Unknown assets, NaN, negative holdings or target weights in a long-only
        account, a target not summing to the budget, bad prices, a withdrawal
        above the portfolio's value (both named).
    InfeasibleError
        A withdrawal above what the tradeable assets hold.

    A withdrawal of the whole portfolio (to within :data:`LIQUIDATION_TOL`)
    gives an account with ``v1 = 0`` and no pieces: a liquidation.
    """
    assets, n = rb.assets, rb.n
    same = rb.labelled_like
    price = None if prices is None else vector(prices, assets, "prices", fill=np.nan, same=same)
    if price is not None:
        bad = assets[(price <= 0) & np.isfinite(price)]
        if len(bad):
            raise InputError(f"prices must be positive: {', '.join(map(str, bad))}")
    elif rb.lot is not None:
        raise InputError("lot_size= needs prices=")
    h = vector(holdings, assets, "holdings", fill=0.0, same=same)
    if rb.holdings_as == "quantity":
        if price is None:
            raise InputError("holdings_as='quantity' needs prices=")
        held = (h != 0) & ~np.isfinite(price)
        if held.any():
            raise InputError(f"prices missing for held assets: {', '.join(assets[held])}")
        h = h * np.nan_to_num(price)
    tau = vector(target, assets, "target", fill=0.0, same=same)
    flow = finite_number(cash_flow, what="cash_flow")  # bool, text, NaN and inf refused
    budget = rb.budget
    if abs(tau.sum() - budget) > 1e-6:
        raise InputError(f"target weights sum to {tau.sum():.6g}, not the budget {budget:.6g}")
    if rb.long_only and (h < -1e-9).any():
        raise InputError(
            f"negative holdings in a long-only account: {', '.join(assets[h < -1e-9])}"
        )
    if rb.long_only and (tau < -1e-12).any():
        raise InputError(
            f"negative target weights in a long-only account: {', '.join(assets[tau < -1e-12])}"
        )
    v0 = float(h.sum())
    v1 = v0 + flow
    # a withdrawal of the whole portfolio, to rounding, is a liquidation (value after 0)
    cents = LIQUIDATION_TOL * max(1.0, abs(v0))
    liquid = float(sum(h[i] for i in range(n) if i not in rb.untradeable))
    if flow < 0 and -flow > liquid + cents:
        raise InfeasibleError(
            f"the withdrawal of {-flow:,.2f} is more than the tradeable assets hold: at most "
            f"{liquid:,.2f} can be raised",
            [{"name": "cash_flow", "relax_by": -flow - liquid, "max_raise": liquid}],
        )
    if abs(v1) <= cents:
        return Account(h, tau, price, v0, 0.0, flow, frozenset(rb.untradeable), (), ())
    if v1 < 0:
        raise InputError(
            f"the withdrawal of {-flow:,.2f} is more than the portfolio's {v0:,.2f}: at most "
            f"{max(v0, 0.0):,.2f} can be withdrawn"
        )
    frozen = set(rb.untradeable)
    bands: list[Piece] = []
    if rb.band is not None:
        w0 = h / v0 if v0 > 0 else np.zeros(n)
        for i in range(n):
            if i in rb.untradeable or not np.isfinite(rb.band[i]):
                continue
            lo, hi = tau[i] - rb.band[i], tau[i] + rb.band[i]
            if abs(w0[i] - tau[i]) <= rb.band[i] + 1e-12 and flow == 0:
                frozen.add(i)
            elif rb.band_to == "edge":
                bands.append(Bound("no-trade band", f"no-trade band [{assets[i]}]", i, lo, hi))
    limits: list[Piece] = []
    if rb.max_turnover is not None:
        limits.append(TradeNorm("turnover cap", "turnover cap", np.ones(n), rb.max_turnover))
    if rb.participation is not None:
        caps = rb.participation * rb.rc.adv / v1
        limits.extend(
            TradeBound("participation limit", f"participation limit [{assets[i]}]", i, caps[i])
            for i in range(n)
        )
    return Account(
        h,
        tau,
        price,
        v0,
        v1,
        flow,
        frozen=frozenset(frozen),
        bands=tuple(bands),
        limits=tuple(limits),
    )
