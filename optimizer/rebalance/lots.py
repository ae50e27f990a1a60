"""Rounding trades to whole lots without spending cash the account does not have.

The optimizer's trades are continuous; an order is a whole number of lots
(``lot_size`` units at ``price``). :func:`round_to_lots` rounds them so that

1. no trade passes its own limits: the participation limit (both sides) and,
   in a long-only account, the position (never sell more than is held);
   such trades are rounded toward zero;
2. the total traded stays within the turnover cap: while it does not, the
   trade whose rounding added the most loses a lot (toward zero);
3. the rounded trades never spend more than the cash available (``net``:
   sells plus the contribution, less any cash the budget keeps out): while
   they do, the buy whose rounding added the most loses a lot; with no buy
   left, a sell grows by a lot: the smallest lot that covers the shortfall
   within every limit and the cap (of an asset the optimizer sells, else of
   any asset free to trade), else a lot of a sell the optimizer wanted (the
   smallest that covers the shortfall, else the largest), within its limits
   when it can, else only within the position;
4. idle cash is put back to work: a lot more where that brings a trade
   closer to the optimizer's, then, while more than a lot of the dearest asset
   would stay idle, a lot more of any trade with room, always within the
   trade limits, the turnover cap and the cash.

The leftover cash is returned (>= 0). Step 3 can break the turnover cap or a
participation limit (a withdrawal must be met in whole lots); the plan's
checks then report it by name (:mod:`optimizer.rebalance.plan`).
"""

from __future__ import annotations

import numpy as np

from optimizer.errors import InputError

#: Currency slack of every comparison (rounding error of sums of lots).
EPS = 1e-9


def lot_vector(lot, assets) -> np.ndarray:
    """Lot sizes (units) by asset, shape (n,): a number for all, or a mapping (1 elsewhere).

    Raises
    ------
    InputError
        A lot size that is not positive, or a mapping naming unknown assets.
    """
    from optimizer.trades import _series

    if isinstance(lot, int | float) and not isinstance(lot, bool):
        v = np.full(len(assets), float(lot))
    else:
        s = _series(lot, "lot_size")
        extra = s.index.difference(assets)
        if len(extra):
            raise InputError(f"lot_size names unknown assets: {', '.join(map(str, extra))}")
        v = s.reindex(assets, fill_value=1.0).to_numpy(dtype=float)
    if not (np.isfinite(v) & (v > 0)).all():
        raise InputError("lot_size must be positive")
    return v


def _cut(out: np.ndarray, unit: np.ndarray, j: int) -> None:
    """One lot less of trade ``j``, toward zero."""
    out[j] -= np.sign(out[j]) * unit[j]


def round_to_lots(
    trades: np.ndarray,
    unit: np.ndarray,
    net: float,
    *,
    lo: np.ndarray,
    hi: np.ndarray,
    held: np.ndarray | None = None,
    turnover: float = np.inf,
    movable: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Round trades to whole lots (module docstring).

    Parameters
    ----------
    trades : numpy.ndarray, shape (n,)
        The optimizer's trades, currency (buys positive), summing to ``net``.
    unit : numpy.ndarray, shape (n,)
        Value of one lot (lot size times price, currency); 0 where there is no
        price (such a trade must be zero).
    net : float
        Most the rounded trades may sum to (currency).
    lo, hi : numpy.ndarray, shape (n,)
        Limits of each trade, currency, ``lo <= 0 <= hi`` (participation, position).
    held : numpy.ndarray, shape (n,), optional
        Positions of a long-only account (currency): a sell never passes them,
        not even to raise cash.
    turnover : float
        Cap on ``sum(|trades|)``, currency.
    movable : numpy.ndarray of bool, shape (n,), optional
        Assets free to take a sell the optimizer did not make, to raise cash
        within the turnover cap (default: none).

    Returns
    -------
    (numpy.ndarray, float)
        The rounded trades and the cash left idle (>= 0).

    Raises
    ------
    InputError
        When no whole-lot sell can raise the cash the trades need.
    """
    k = len(trades)
    guard = 10 * k + 10
    live = (trades != 0) & (unit > 0)
    safe = np.where(unit > 0, unit, 1.0)
    out = np.zeros(k)
    out[live] = np.round(trades[live] / safe[live]) * unit[live]
    # 1. each trade within its limits, rounded toward zero
    above, below = live & (out > hi + EPS), live & (out < lo - EPS)
    out[above] = np.floor((hi[above] + EPS) / safe[above]) * unit[above]
    out[below] = -np.floor((-lo[below] + EPS) / safe[below]) * unit[below]
    floor = np.full(k, -np.inf) if held is None else -held
    movable = np.zeros(k, dtype=bool) if movable is None else movable & (unit > 0)
    # 2. the turnover cap: a lot less of the trade whose rounding added the most, among the
    #    cuts that leave enough cash (any buy; a sell when the cash left covers its lot) if any
    for _ in range(guard):
        if np.abs(out).sum() <= turnover + EPS:
            break
        has = live & (out != 0)
        keeps = has & ((out > 0) | (unit <= net - out.sum() + EPS))
        pick = np.flatnonzero(keeps if keeps.any() else has)
        if pick.size == 0:
            break
        _cut(out, unit, int(pick[np.argmax(np.abs(out[pick]) - np.abs(trades[pick]))]))
    # 3. cash: never spend more than there is
    for _ in range(guard):
        short = out.sum() - net
        if short <= EPS:
            break
        buys = np.flatnonzero(live & (out > 0))
        if buys.size:
            j = int(buys[np.argmax(out[buys] - trades[buys])])
            out[j] -= unit[j]
            continue
        # a lot more to sell: first the smallest lot that raises the shortfall within every
        # limit and the cap, of an asset the optimizer sells, else of any asset free to trade
        wanted = (trades < 0) & live
        room = turnover - np.abs(out).sum()
        good = (out - unit >= lo - EPS) & (unit >= short - EPS) & (unit <= room + EPS)
        good &= unit > 0
        for pool in (wanted, movable):
            found = np.flatnonzero(pool & good)
            if found.size:
                j = found[np.argmin(unit[found])]
                break
        else:
            # then a sell the optimizer wanted, within its limits first, else within the
            # position (sells rounded to zero count too): the smallest lot that covers the
            # shortfall, else the largest
            sells = np.flatnonzero(wanted & (out - unit >= lo - EPS))
            if sells.size == 0:
                sells = np.flatnonzero(wanted & (out - unit >= floor - EPS))
            if sells.size == 0:
                break
            cover = sells[unit[sells] >= short - EPS]
            j = cover[np.argmin(unit[cover])] if cover.size else sells[np.argmax(unit[sells])]
        out[j] -= unit[j]
    if out.sum() - net > EPS:
        raise InputError("could not round the trades to whole lots within the cash available")
    # the cash step may have sold more: back within the cap by cutting buys (frees cash)
    for _ in range(guard):
        buys = np.flatnonzero(live & (out > 0))
        if np.abs(out).sum() <= turnover + EPS or buys.size == 0:
            break
        _cut(out, unit, int(buys[np.argmax(out[buys] - trades[buys])]))
    # 4. idle cash back to work
    residual = net - out.sum()
    biggest = float(unit[live].max(initial=0.0))
    for _ in range(guard):
        room = turnover - np.abs(out).sum()
        short = trades - out
        grows = np.abs(out + unit) - np.abs(out)  # turnover added by one lot more
        ok = live & (unit <= residual + EPS) & (out + unit <= hi + EPS) & (grows <= room + EPS)
        pick = ok & (short >= unit / 2)
        if not pick.any():
            if residual < biggest - EPS:
                break
            pick = ok
        if not pick.any():
            break
        j = int(np.flatnonzero(pick)[np.argmax(short[pick])])
        m = min(np.floor(short[j] / unit[j] + 0.5), np.floor((residual + EPS) / unit[j]))
        m = min(m, np.floor((hi[j] - out[j] + EPS) / unit[j]))
        back = np.round(max(-out[j], 0.0) / unit[j])  # lots that shrink a sell
        m = min(m, 2 * back + np.floor((room + EPS) / unit[j]))
        out[j] += max(m, 1.0) * unit[j]
        residual = net - out.sum()
    return out, float(max(residual, 0.0))
