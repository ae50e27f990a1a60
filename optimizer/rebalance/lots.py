"""Rounding trades to whole lots without spending cash the account does not have.

The optimizer's trades are continuous; an order is a whole number of lots
(``lot_size`` units at ``price``). :func:`round_to_lots` rounds each trade to
the nearest lot, then

1. brings every trade within its own limits, rounding toward zero: the
   participation limit (both sides) and, in a long-only account, the position
   (never sell more than is held);
2. brings the total traded within the turnover cap: lots come off the trades
   whose rounding added the most (toward zero);
3. never spends more cash than there is (``net``: sells plus the
   contribution, less any cash the budget keeps out): lots come off the buys
   whose rounding added the most; with no buy left, a sell grows: first by
   the smallest lot that covers the shortfall within every limit and the cap
   (of an asset the optimizer sells, else of any asset free to trade), else a
   sell the optimizer wanted (the smallest lot covering the shortfall, else
   the largest), within its limits when it can, else only within the position;
4. if selling for cash broke the cap, lots come off the buys, then off the
   sells whose lot the cash left can spare;
5. puts idle cash back to work: lots where that brings a trade closer to the
   optimizer's, then, while more than a lot of the dearest asset would stay
   idle, lots of any trade with room, always within the trade limits, the
   turnover cap and the cash.

"The trades whose rounding added the most" is a greedy order: one lot at a
time off the trade with the largest excess ``|rounded| - |optimal|``. It is
computed in one pass (:func:`_cuts`, a water level over the excesses), so
that small lots against a large shortfall cost no more than large ones.

The result of these steps is the starting point of :func:`search_lots` (the
plan calls both, :mod:`optimizer.rebalance.plan`): with the rebalance's tracking
and cost terms (:class:`LotObjective`) it minimises the rebalance's own objective
over whole lots within the same limits (trade limits, long-only positions, the
cash and the turnover cap) among the lots that leave less cash idle than the
cheapest lot that still fits (:func:`optimizer.rebalance.discrete.solve_lots`),
exactly when its enumeration completes within ``SEARCH_NODES`` nodes, else by a
local search with the same guarantee on the cash. When the steps above had to
break a limit (a withdrawal met in whole lots) their answer is kept.

The leftover cash is returned (>= 0). Step 3 can break the turnover cap or a
participation limit (a withdrawal must be met in whole lots); the plan's
checks then report it by name (:mod:`optimizer.rebalance.plan`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from optimizer.errors import InputError
from optimizer.rebalance.discrete import LotProblem, fill, solve_lots
from optimizer.validation import series

#: Currency slack of every comparison (rounding error of sums of lots).
EPS = 1e-9
#: Bisection steps of the water level in :func:`_cuts`.
LEVEL_STEPS = 80
#: Most assets free to trade that :func:`search_lots` searches (its local search is
#: quadratic in them per move); beyond it the rounding above is the answer.
SEARCH_MAX = 200
#: Enumeration nodes of :func:`search_lots` before its local search answers (about 30 us a
#: node: a plan's whole lots cost at most a few tens of milliseconds).
SEARCH_NODES = 2_000


@dataclass(frozen=True, eq=False)
class LotObjective:
    """The rebalance's objective in a form :func:`round_to_lots` can minimise over lots.

    Attributes
    ----------
    Q : numpy.ndarray, shape (n, n)
        Tracking weight times the covariance (dense).
    a : numpy.ndarray, shape (n,)
        Weights before trading less the target (``h / V1 - target``).
    v1 : float
        Value after the cash flow (currency).
    buy, sell : numpy.ndarray, shape (n,), optional
        Proportional cost per unit of weight bought or sold (rates plus turnover penalty).
    ticket : numpy.ndarray, shape (n,), optional
        Fixed cost per traded asset, currency.
    impact : numpy.ndarray, shape (n,), optional
        Market impact: ``impact_i * |t_i|^1.5`` currency for a trade of ``t_i`` currency.
    """

    Q: np.ndarray
    a: np.ndarray
    v1: float
    buy: np.ndarray | None = None
    sell: np.ndarray | None = None
    ticket: np.ndarray | None = None
    impact: np.ndarray | None = None


def lot_vector(lot, assets) -> np.ndarray:
    """Lot sizes (units) by asset, shape (n,): a number for all, or a mapping (1 elsewhere).

    Raises
    ------
    InputError
        A lot size that is not positive, or a mapping naming unknown assets.
    """

    if isinstance(lot, int | float) and not isinstance(lot, bool):
        v = np.full(len(assets), float(lot))
    else:
        s = series(lot, what="lot_size")
        extra = s.index.difference(assets)
        if len(extra):
            raise InputError(f"lot_size names unknown assets: {', '.join(map(str, extra))}")
        v = s.reindex(assets, fill_value=1.0).to_numpy(dtype=float)
    if not (np.isfinite(v) & (v > 0)).all():
        raise InputError("lot_size must be positive")
    return v


def _cuts(out: np.ndarray, trades: np.ndarray, unit: np.ndarray, pool, need: float) -> np.ndarray:
    """Lots to take off each trade (toward zero), largest rounding excess first, to free ``need``.

    The greedy takes one lot at a time off the trade with the largest current
    excess ``|out| - |trades|``; after ``m`` lots, trade ``j``'s excess is
    ``e_j - m u_j``. Taking every lot whose excess before the cut is at least
    a level ``L`` frees ``sum_j u_j * clip(floor((e_j - L) / u_j) + 1, 0, lots_j)``,
    which falls as ``L`` rises: the highest level that frees ``need`` is the
    greedy's stopping point (ties at that level may free a little more).

    Returns
    -------
    numpy.ndarray of float, shape (n,)
        Whole numbers of lots (0 outside ``pool``); all of the pool's lots when
        even that does not free ``need``.
    """
    lots = np.where(pool, np.round(np.abs(out) / np.where(unit > 0, unit, 1.0)), 0.0)
    if need <= EPS or not lots.any():
        return np.zeros(len(out))
    safe = np.where(unit > 0, unit, 1.0)
    excess = np.abs(out) - np.abs(trades)

    def taken(level: float) -> np.ndarray:
        return np.clip(np.floor((excess - level) / safe) + 1.0, 0.0, lots)

    if float(unit @ lots) <= need + EPS:
        return lots
    high = float(excess[lots > 0].max())  # at this level one lot of the largest goes
    low = float((excess - lots * safe)[lots > 0].min())  # here every lot goes
    for _ in range(LEVEL_STEPS):
        mid = 0.5 * (low + high)
        if float(unit @ taken(mid)) >= need - EPS:
            low = mid
        else:
            high = mid
    return taken(low)


def _take(out: np.ndarray, unit: np.ndarray, lots: np.ndarray) -> None:
    """Take ``lots`` lots off each trade, toward zero (in place)."""
    out -= np.sign(out) * lots * unit


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
    objective: LotObjective | None = None,
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
    objective : LotObjective, optional
        Minimise the rebalance's objective over whole lots (module docstring).

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
    live = (trades != 0) & (unit > 0)
    safe = np.where(unit > 0, unit, 1.0)
    out = np.zeros(k)
    out[live] = np.round(trades[live] / safe[live]) * unit[live]
    floor = np.full(k, -np.inf) if held is None else -held
    movable = np.zeros(k, dtype=bool) if movable is None else movable & (unit > 0)
    # 1. each trade within its limits, rounded toward zero
    above, below = live & (out > hi + EPS), live & (out < lo - EPS)
    out[above] = np.floor((hi[above] + EPS) / safe[above]) * unit[above]
    out[below] = -np.floor((-lo[below] + EPS) / safe[below]) * unit[below]
    # 2. the turnover cap
    _take(out, unit, _cuts(out, trades, unit, out != 0, np.abs(out).sum() - turnover))
    # 3. cash: buys first, then sells grow
    _take(out, unit, _cuts(out, trades, unit, out > 0, out.sum() - net))
    for _ in range(2 * k + 2):
        short = out.sum() - net
        if short <= EPS:
            break
        j = _seller(out, trades, unit, short, turnover - np.abs(out).sum(), lo, floor, movable)
        if j is None:
            break
        room = lo[j] if out[j] - unit[j] >= lo[j] - EPS else floor[j]
        most = np.floor((out[j] - room + EPS) / unit[j])
        out[j] -= min(max(np.ceil((short - EPS) / unit[j]), 1.0), most) * unit[j]
    if out.sum() - net > EPS:
        raise InputError(
            f"could not round the trades to whole lots within the cash available: "
            f"{out.sum() - net:,.2f} short after selling every lot the positions allow"
        )
    # 4. back within the cap: buys (frees cash), then sells the cash left can spare
    _take(out, unit, _cuts(out, trades, unit, out > 0, np.abs(out).sum() - turnover))
    for _ in range(2 * k + 2):
        over = np.abs(out).sum() - turnover
        spare = net - out.sum()
        sells = np.flatnonzero((out < 0) & (unit <= spare + EPS))
        if over <= EPS or sells.size == 0:
            break
        j = int(sells[np.argmax(np.abs(out[sells]) - np.abs(trades[sells]))])
        m = min(np.ceil((over - EPS) / unit[j]), np.floor((spare + EPS) / unit[j]))
        out[j] += min(m, np.round(-out[j] / unit[j])) * unit[j]
    _fill(out, trades, unit, net, hi, turnover, live)
    if objective is not None:
        out = search_lots(out, trades, unit, net, lo, hi, turnover, movable, objective)
    return out, float(max(net - out.sum(), 0.0))


def search_lots(
    out: np.ndarray,
    trades: np.ndarray,
    unit: np.ndarray,
    net: float,
    lo: np.ndarray,
    hi: np.ndarray,
    turnover: float,
    movable: np.ndarray,
    objective: LotObjective,
) -> np.ndarray:
    """The whole lots minimising ``objective`` from the rounded trades ``out`` (currency).

    The lots range over the assets that trade or may (``movable``) within the
    trade limits ``lo``/``hi``, the cash ``net`` and the turnover cap, and must
    leave less cash idle than the cheapest lot that still fits
    (:func:`optimizer.rebalance.discrete.solve_lots`, exact when its enumeration
    completes). ``out`` comes back unchanged when it breaks those limits (a
    withdrawal met in whole lots), when more than ``SEARCH_MAX`` assets are free,
    or when the search finds nothing better.
    """
    free = (unit > 0) & (movable | (trades != 0))
    v1 = objective.v1
    if free.sum() > SEARCH_MAX or not math.isfinite(v1) or v1 <= 0:
        return out
    safe = np.where(unit > 0, unit, 1.0)
    zlo = np.where(free, np.ceil((lo - EPS) / safe), 0.0)
    zhi = np.where(free, np.floor((hi + EPS) / safe), 0.0)
    ticket = None if objective.ticket is None else objective.ticket / v1
    p = LotProblem(
        objective.Q, objective.a, unit, v1, zlo, zhi, net, turnover,
        objective.buy, objective.sell, ticket, maximal=True, impact=objective.impact,
    )  # fmt: skip
    start = np.round(out / safe)
    if not dataclasses.replace(p, maximal=False).feasible(start):
        return out
    start = fill(p, start)
    sol = solve_lots(p, start, node_limit=SEARCH_NODES)
    return sol.z * unit if sol.objective <= p.value(start) else start * unit


def _seller(out, trades, unit, short, room, lo, floor, movable) -> int | None:
    """The asset that sells more lots to raise ``short`` (step 3 of the module docstring)."""
    wanted = (trades < 0) & (unit > 0)
    within = (out - unit >= lo - EPS) & (unit > 0)
    good = within & (unit >= short - EPS) & (unit <= room + EPS)
    for pool in (wanted, movable):
        found = np.flatnonzero(pool & good)
        if found.size:
            return int(found[np.argmin(unit[found])])
    sells = np.flatnonzero(wanted & within)
    if sells.size == 0:
        sells = np.flatnonzero(wanted & (out - unit >= floor - EPS))
    if sells.size == 0:
        return None
    cover = sells[unit[sells] >= short - EPS]
    return int(cover[np.argmin(unit[cover])] if cover.size else sells[np.argmax(unit[sells])])


def _fill(out, trades, unit, net, hi, turnover, live) -> None:
    """Step 5: idle cash back to work, within the limits, the cap and the cash (in place)."""
    biggest = float(unit[live].max(initial=0.0))
    for _ in range(4 * len(out) + 4):
        residual = net - out.sum()
        room = turnover - np.abs(out).sum()
        short = trades - out
        grows = np.abs(out + unit) - np.abs(out)  # turnover added by one lot more
        ok = live & (unit <= residual + EPS) & (out + unit <= hi + EPS) & (grows <= room + EPS)
        pick = ok & (short >= unit / 2)
        if pick.any():
            j = int(np.flatnonzero(pick)[np.argmax(short[pick])])
            m = np.floor(short[j] / unit[j] + 0.5)  # the lots that bring it nearest
        elif residual >= biggest - EPS and ok.any():
            j = int(np.flatnonzero(ok)[np.argmax(short[ok])])
            m = np.ceil((residual - biggest + EPS) / unit[j])  # idle below the dearest lot
        else:
            break
        m = min(m, np.floor((residual + EPS) / unit[j]), np.floor((hi[j] - out[j] + EPS) / unit[j]))
        back = np.round(max(-out[j], 0.0) / unit[j])  # lots that shrink a sell
        m = min(m, 2 * back + np.floor((room + EPS) / unit[j]))
        out[j] += max(m, 1.0) * unit[j]
