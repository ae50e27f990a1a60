"""The plan of a solved rebalance: trades, rounding to lots, verification, the orders table.

From the optimizer's weights the trades are ``(w - h / V1) * V1`` (currency);
trades below a millionth of the value are dropped, untradeable assets are
held exactly, and the rounding dust goes on the largest trade so that the
trades sum to ``budget * V1 - V0`` (the cash flow when fully invested). With
prices the trades become quantities, rounded to whole lots with ``lot_size=``
(:mod:`optimizer.rebalance.lots`): the whole lots that minimise the rebalance's own
objective and leave less cash idle than the cheapest lot that fits, unless they
break a check that the plain rounding of the optimizer's trades keeps (the
search knows the trade limits, the cash and the turnover cap, not the policy's
other constraints); then that rounding is the plan.

The final plan, after rounding, is verified against every piece by name at
``Point(w_after, (after - before) / V1)``: the weight-space pieces (the
policy, the no-trade band edges, the minimum-trade floors) to within one lot
of the dearest asset when rounding to lots (``FEAS_TOL`` otherwise), the
trade-space pieces (turnover cap, participation limits) to ``FEAS_TOL``
always. A breach that rounding could not avoid is reported in ``checks``
(``ok`` False) and in the notes; without rounding a breach is a
:class:`~optimizer.errors.SolverError`.

The reported turnover is the traded notional over ``V0``, or over ``V1`` for an
account of cash only (``V0 = 0``): always finite. The notes name what keeps the
plan off its target besides costs: a turnover cap of 0 that allows no trade, a
cap that binds, untradeable assets held off their target (each with the
largest weight gap left and the tracking error).

A withdrawal of the whole portfolio (``V1 = 0``) is not solved:
:func:`liquidation` sells every position, within the turnover cap and the
participation limits (else an :class:`~optimizer.errors.InfeasibleError`
naming them). Both plans share one orders table (:func:`_orders`).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.pieces import Point
from optimizer.program import Outcome
from optimizer.rebalance.fixed import DUST
from optimizer.rebalance.lots import SEARCH_MAX, LotObjective, round_to_lots, search_lots
from optimizer.rebalance.session import Session
from optimizer.trades import RebalancePlan, _iso
from optimizer.verify import FEAS_TOL

if TYPE_CHECKING:
    from optimizer.rebalance.account import Account
    from optimizer.rebalance.rebalancer import Rebalancer

_COLUMNS = pd.Index(
    ["notional", "quantity", "price", "cost_proportional", "cost_impact", "cost_fixed", "est_cost"]
)
_SIDES = pd.Series(["sell", "buy"]).array  # the default string dtype of this pandas
#: Relative slack on the per-trade limits handed to the rounding (currency rounding error).
LIMIT_SLACK = 1e-12
#: A weight gap below this (decimals; 0.005 points) is no gap worth a note.
GAP_TOL = 5e-5


def final_trades(session: Session, sol: Outcome) -> tuple[np.ndarray, float]:
    """The optimizer's trades (currency, shape (n,)) cleaned, and the total they must meet."""
    rb, acct = session.rb, session.acct
    v1 = acct.v1
    w = sol.extra["cols"].weights_of(sol.x)
    trades = (w - session.h_w) * v1
    trades[np.abs(trades) < DUST * max(1.0, abs(v1))] = 0.0
    trades[sorted(rb.untradeable)] = 0.0
    # the trades sum to budget * V1 - V0: the cash flow when fully invested (Budget(1)),
    # less the cash a smaller budget keeps out of the assets; the dust goes on the largest
    # trade that can take it without selling more than is held (a position sold whole)
    net = rb.budget * v1 - acct.v0
    if np.any(trades != 0):
        dust = net - trades.sum()
        size = np.abs(trades)
        if rb.long_only and dust < 0:
            size = np.where((trades != 0) & (acct.h + trades + dust >= 0), size, -1.0)
        j = int(np.argmax(size))
        if size[j] < 0:  # every traded position would go short: the largest, as before
            j = int(np.argmax(np.abs(trades)))
        trades[j] += dust
    return trades, net


def rounded(
    session: Session,
    trades: np.ndarray,
    net: float,
    frozen: frozenset,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[tuple[np.ndarray, float]]:
    """Whole-lot trades within the trade limits and the cash (currency), best first.

    Returns
    -------
    list of (numpy.ndarray, float)
        The lots minimising the rebalance's objective (tracking, proportional,
        fixed and impact costs, turnover penalty) among those that leave less
        cash idle than the cheapest lot that fits
        (:func:`optimizer.rebalance.lots.search_lots`), then the rounding of the
        optimizer's trades it starts from; each with the cash left idle. They
        are the same when the search finds nothing better. ``bounds`` (currency,
        ``lo <= 0 <= hi`` by asset) narrow each trade's limits: an account's share of
        the pooled caps (:mod:`optimizer.rebalance.pooled`), a tax-aware plan's directions.
    """
    rb, acct = session.rb, session.acct
    n = rb.n
    unit = rb.lot * np.nan_to_num(acct.price)
    hi = np.full(n, np.inf)
    if rb.participation is not None:
        hi = rb.participation * rb.rc.adv * (1 + LIMIT_SLACK) + 1e-9
    lo = -hi
    held = None
    if rb.long_only:
        held = acct.h * (1 + LIMIT_SLACK) + 1e-9
        lo = np.maximum(lo, -held)
    if bounds is not None:
        lo = np.maximum(lo, np.minimum(bounds[0], 0.0))
        hi = np.minimum(hi, np.maximum(bounds[1], 0.0))
    cap = np.inf if rb.max_turnover is None else rb.max_turnover * acct.v1
    movable = np.ones(n, dtype=bool)
    movable[sorted(frozen)] = False
    out, idle = round_to_lots(
        trades, unit, net, lo=lo, hi=hi, held=held, turnover=cap, movable=movable
    )
    if ((unit > 0) & (movable | (trades != 0))).sum() > SEARCH_MAX:
        return [(out, idle)]  # too many assets to search (the dense covariance alone)
    objective = LotObjective(
        Q=rb.lam * rb.risk.dense,
        a=session.h_w - acct.tau,
        v1=acct.v1,
        buy=rb.buy_q,
        sell=rb.sell_q,
        ticket=np.full(n, rb.rc.fixed),
        impact=rb.rc.impact,
    )
    best = search_lots(out, trades, unit, net, lo, hi, cap, movable, objective)
    if np.array_equal(best, out):
        return [(out, idle)]
    return [(best, float(max(net - best.sum(), 0.0))), (out, idle)]


def assemble(
    session: Session,
    sol: Outcome,
    frozen: frozenset,
    floors: dict[int, float],
    notes: list[str],
    *,
    started: float,
    solved: tuple[float, float],
    as_of=None,
    portfolio_id: str | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> RebalancePlan:
    """The :class:`~optimizer.trades.RebalancePlan` of a solution, rounded and verified.

    Parameters
    ----------
    session : Session
        The account's solves (its pieces in force, its attempts).
    sol : Outcome
        The solution kept.
    frozen : frozenset of int
        Assets it holds as they are (no lot is added to them).
    floors : dict
        Minimum-trade floors in force (asset -> signed floor, weight units).
    notes : list of str
        Notes so far (extended here).
    started, solved
        ``perf_counter`` readings: start of the plan, and start and end of the solves.
    as_of, portfolio_id
        Carried into the orders.
    bounds : (numpy.ndarray, numpy.ndarray), optional
        Lower and upper limits of each asset's trade (currency, shape (n,)) that the
        rounding to whole lots keeps: an account's share of the pooled caps, or a
        tax-aware plan's directions (0 on the side an asset may not trade).

    Raises
    ------
    InputError
        Prices missing for an asset that must trade.
    SolverError
        The trades fail verification (without rounding to lots).
    """
    rb, acct = session.rb, session.acct
    n, assets, v0, v1, price = rb.n, rb.assets, acct.v0, acct.v1, acct.price
    trades, net = final_trades(session, sol)
    quantity = np.full(n, np.nan)
    residual = 0.0
    tol = FEAS_TOL
    lots = price is not None and rb.lot is not None
    if price is not None:
        need = (trades != 0) & ~np.isfinite(price)
        if need.any():
            raise InputError(
                f"prices missing for assets that must trade: {', '.join(assets[need])}"
            )
    wchk, tchk = session.checkers(floors)
    candidates = [(trades, 0.0)]
    if lots:
        candidates = rounded(session, trades, net, frozen, bounds)
        unit = rb.lot * np.nan_to_num(price)
        tol = max(FEAS_TOL, float(unit.max()) / v1 + 1e-9)
    # the best whole lots unless they break a check the plain rounding keeps
    verified = []
    for cand, idle in candidates:
        pt = Point((acct.h + cand) / v1, cand / v1, rb.risk)
        checks = {**wchk.check(pt, tol), **tchk.check(pt, FEAS_TOL)}
        verified.append((cand, idle, pt, checks, {k for k, c in checks.items() if not c["ok"]}))
    pick = verified[0] if verified[0][4] <= verified[-1][4] else verified[-1]
    trades, residual, pt, checks, _ = pick
    if lots:
        notes.append(f"rounded to whole lots; uninvested cash {residual:,.2f}")
    if price is not None:
        quantity = np.where(trades != 0, trades / np.where(np.isfinite(price), price, 1.0), np.nan)
    w_after = (acct.h + trades) / v1
    bad = [name for name, c in checks.items() if not c["ok"]]
    if bad and not lots:
        raise SolverError(f"the trades fail verification of {', '.join(bad)}", session.attempts())
    for name in bad:
        c = checks[name]
        notes.append(
            f"after rounding to whole lots, '{name}' does not hold: {c.get('worst', name)} "
            f"is off by {c['max_violation']:.4g}"
        )
    table, costs, total = _orders(rb, trades, quantity, price)
    notes.extend(_cause_notes(rb, trades, w_after, acct.tau, v1))
    traded = float(np.abs(trades).sum())
    done = time.perf_counter()
    return RebalancePlan(
        trades=table,
        **_weights(rb, acct, w_after),
        # over V0; an account of cash only is measured against the cash it invests
        turnover=traded / v0 if v0 > 0 else traded / v1,
        total_cost=total,
        costs=costs,
        value_before=v0,
        value_after=v1,
        cash_flow=acct.flow,
        cash_residual=residual,
        status=sol.status,
        solver=sol.solver,
        attempts=tuple(session.attempts()),
        notes=tuple(notes),
        checks=checks,
        timings={
            "compile": solved[0] - started,
            "solve": solved[1] - solved[0],
            "other": done - solved[1],
        },
        as_of=_iso(as_of),
        portfolio_id=portfolio_id,
        currency=rb.currency,
        relaxed=session.relaxed(pt),
        binding=wchk.binding_sides(pt),
    )


def liquidation(
    rb: Rebalancer, acct: Account, *, started: float, as_of=None, portfolio_id: str | None = None
) -> RebalancePlan:
    """The plan of a withdrawal of the whole portfolio: every position sold, no solve.

    Parameters
    ----------
    rb : Rebalancer
        The rebalancer (costs, trade limits, assets).
    acct : Account
        An account whose value after the cash flow is 0 (``acct.v1 == 0``).
    started : float
        ``perf_counter`` reading at the start of the plan.
    as_of, portfolio_id
        Carried into the orders.

    Returns
    -------
    RebalancePlan
        ``status`` ``"liquidation"``, solver ``"none"``, every weight after 0
        (an account holding nothing trades nothing, and its note says so).
        The policy constraints are not checked (nothing is held after); the
        trade limits are, in ``checks``.

    Raises
    ------
    InputError
        Prices given but missing for a held asset.
    InfeasibleError
        A turnover cap (which no sale can meet: its measure is the value after,
        0) or a participation limit forbids selling everything; each named.
    """
    assets, n, price, v0 = rb.assets, rb.n, acct.price, acct.v0
    trades = np.where(acct.h != 0, -acct.h, 0.0)
    sold = trades != 0
    traded = float(np.abs(trades).sum())
    checks: dict[str, dict] = {}
    if rb.max_turnover is not None:
        if traded > 0:
            raise InfeasibleError(
                f"the liquidation sells {traded:,.2f}, which no turnover cap allows "
                f"(max_turnover = {rb.max_turnover:g} of the value after trading, which is 0): "
                "remove max_turnover for a liquidation, or withdraw less",
                [{"name": "turnover cap", "relax_by": math.inf}],
            )
        checks["turnover cap"] = {"ok": True, "max_violation": 0.0}
    if rb.participation is not None:
        most = rb.participation * rb.rc.adv
        over = np.flatnonzero(np.abs(trades) > most * (1 + LIMIT_SLACK) + 1e-9)
        if len(over):
            names = "; ".join(
                f"{assets[i]} ({abs(trades[i]):,.2f} to sell, at most {most[i]:,.2f})" for i in over
            )
            raise InfeasibleError(
                f"the liquidation sells more than the participation limit allows "
                f"(participation = {rb.participation:g} of ADV) in {names}: raise participation "
                "to allow the sales, or withdraw less",
                [
                    {
                        "name": "participation limit",
                        "label": f"participation limit [{assets[i]}]",
                        "relax_by": float(abs(trades[i]) - most[i]),
                    }
                    for i in over
                ],
            )
        checks["participation limit"] = {"ok": True, "max_violation": 0.0}
    quantity = np.full(n, np.nan)
    if price is not None:
        missing = sold & ~np.isfinite(price)
        if missing.any():
            raise InputError(
                f"prices missing for held assets to sell: {', '.join(assets[missing])}; "
                "give a price for every held asset"
            )
        quantity = np.where(sold, trades / np.where(np.isfinite(price), price, 1.0), np.nan)
    table, costs, total = _orders(rb, trades, quantity, price)
    if sold.any():
        count = int(sold.sum())
        note = (
            f"liquidation: the withdrawal of {-acct.flow:,.2f} is the whole portfolio and sells "
            f"everything; {count} position{'s' if count != 1 else ''} sold, {-trades.sum():,.2f} "
            f"raised, estimated cost {total:,.2f}"
        )
    else:
        note = (
            f"no positions to sell and no value left after the cash flow of {acct.flow:,.2f}: "
            "the account is empty, no trade"
        )
    return RebalancePlan(
        trades=table,
        **_weights(rb, acct, np.zeros(n)),
        # everything sold: 1 of the value before (of the gross positions when they net to 0)
        turnover=traded / v0 if v0 > 0 else (1.0 if traded > 0 else 0.0),
        total_cost=total,
        costs=costs,
        value_before=v0,
        value_after=0.0,
        cash_flow=acct.flow,
        cash_residual=0.0,
        status="liquidation",
        solver="none",
        notes=(note,),
        checks=checks,
        timings={"compile": 0.0, "solve": 0.0, "other": time.perf_counter() - started},
        as_of=_iso(as_of),
        portfolio_id=portfolio_id,
        currency=rb.currency,
    )


def _weights(rb: Rebalancer, acct: Account, w_after: np.ndarray) -> dict:
    """A plan's weight fields: before (``h / V0``, zeros for an empty account), after, the
    target, the drift and the tracking errors before and after (Series by asset)."""
    assets, tau = rb.assets, acct.tau
    w_before = acct.h / acct.v0 if acct.v0 > 0 else np.zeros(rb.n)
    return {
        "weights_before": pd.Series(w_before, index=assets, name="weight_before"),
        "weights_after": pd.Series(w_after, index=assets, name="weight_after"),
        "target": pd.Series(tau, index=assets, name="target"),
        "drift": pd.Series(w_before - tau, index=assets, name="drift"),
        "tracking_error_before": math.sqrt(rb.risk.variance(w_before - tau)),
        "tracking_error_after": math.sqrt(rb.risk.variance(w_after - tau)),
    }


def _orders(
    rb: Rebalancer, trades: np.ndarray, quantity: np.ndarray, price: np.ndarray | None
) -> tuple[pd.DataFrame, dict[str, float], float]:
    """The orders table of the trades, their costs by component and the total (currency).

    ``trades`` (currency, buys positive), ``quantity`` (units, NaN where none) and
    ``price`` (or None) have shape (n,); one row per asset traded.
    """
    parts = rb.rc.breakdown(trades)
    est = parts["proportional"] + parts["impact"] + parts["fixed"]
    traded = np.flatnonzero(trades != 0)
    numbers = np.column_stack(
        [
            np.abs(trades[traded]),
            np.abs(quantity[traded]),
            price[traded] if price is not None else np.full(len(traded), np.nan),
            parts["proportional"][traded],
            parts["impact"][traded],
            parts["fixed"][traded],
            est[traded],
        ]
    )
    # one float block, then the side column taken from a ready string array: far cheaper
    # than a dict of columns per account
    index = rb.assets.take(traded)
    index.name = "asset"
    table = pd.DataFrame(numbers, index=index, columns=_COLUMNS)
    table.insert(0, "side", _SIDES.take((trades[traded] > 0).astype(np.intp)))
    return table, {k: float(v.sum()) for k, v in parts.items()}, float(est.sum())


def _gap(rb: Rebalancer, w_after: np.ndarray, tau: np.ndarray) -> str:
    """``the largest weight gap is 3.28 points (BONDS), tracking error 0.53%``."""
    gap = w_after - tau
    j = int(np.argmax(np.abs(gap)))
    te = math.sqrt(rb.risk.variance(gap))
    return (
        f"the largest weight gap is {abs(gap[j]) * 100:.2f} points ({rb.assets[j]}), "
        f"tracking error {te:.2%}"
    )


def _cause_notes(
    rb: Rebalancer, trades: np.ndarray, w_after: np.ndarray, tau: np.ndarray, v1: float
) -> list[str]:
    """Notes naming what keeps the plan off its target besides costs (module docstring).

    ``trades`` (currency), ``w_after`` and ``tau`` (decimals) have shape (n,).
    """
    notes = []
    off = float(np.abs(w_after - tau).max(initial=0.0)) > GAP_TOL
    cap = rb.max_turnover
    traded = float(np.abs(trades).sum())
    if cap is not None and off:
        if cap == 0 and traded == 0:
            notes.append(
                f"the turnover cap (max_turnover = {cap:g}) allows no trade: {_gap(rb, w_after, tau)}"
            )
        elif cap > 0 and traded >= cap * v1 * (1 - 1e-6):
            notes.append(
                f"the turnover cap (max_turnover = {cap:g}) binds at {traded / v1:.2%} of the "
                f"value after trading: {_gap(rb, w_after, tau)}"
            )
    held = [i for i in sorted(rb.untradeable) if abs(w_after[i] - tau[i]) > GAP_TOL]
    if held:
        which = ", ".join(f"{rb.assets[i]} {w_after[i]:.2%} against {tau[i]:.2%}" for i in held)
        notes.append(
            f"the target is out of reach: untradeable assets are held off it ({which}); "
            f"{_gap(rb, w_after, tau)}"
        )
    return notes
