"""The plan of a solved rebalance: trades, rounding to lots, verification, the orders table.

From the optimizer's weights the trades are ``(w - h / V1) * V1`` (currency);
trades below a millionth of the value are dropped, untradeable assets are
held exactly, and the rounding dust goes on the largest trade so that the
trades sum to ``budget * V1 - V0`` (the cash flow when fully invested). With
prices the trades become quantities, rounded to whole lots with ``lot_size=``
(:mod:`optimizer.rebalance.lots`).

The final plan, after rounding, is verified against every piece by name at
``Point(w_after, (after - before) / V1)``: the weight-space pieces (the
policy, the no-trade band edges, the minimum-trade floors) to within one lot
of the dearest asset when rounding to lots (``FEAS_TOL`` otherwise), the
trade-space pieces (turnover cap, participation limits) to ``FEAS_TOL``
always. A breach that rounding could not avoid is reported in ``checks``
(``ok`` False) and in the notes; without rounding a breach is a
:class:`~optimizer.errors.SolverError`.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from optimizer.errors import InputError, SolverError
from optimizer.pieces import Point
from optimizer.program import Outcome
from optimizer.rebalance.fixed import DUST
from optimizer.rebalance.lots import round_to_lots
from optimizer.rebalance.session import Session
from optimizer.trades import RebalancePlan, _iso
from optimizer.verify import FEAS_TOL

_COLUMNS = pd.Index(
    ["notional", "quantity", "price", "cost_proportional", "cost_impact", "cost_fixed", "est_cost"]
)
_SIDES = pd.Series(["sell", "buy"]).array  # the default string dtype of this pandas
#: Relative slack on the per-trade limits handed to the rounding (currency rounding error).
LIMIT_SLACK = 1e-12


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
    net = rb.budget * v1 - acct.v0
    if np.any(trades != 0):
        j = int(np.argmax(np.abs(trades)))
        trades[j] += net - trades.sum()
    return trades, net


def rounded(
    session: Session, trades: np.ndarray, net: float, frozen: frozenset
) -> tuple[np.ndarray, float]:
    """Trades rounded to whole lots within the trade limits and the cash (currency)."""
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
    cap = np.inf if rb.max_turnover is None else rb.max_turnover * acct.v1
    movable = np.ones(n, dtype=bool)
    movable[sorted(frozen)] = False
    return round_to_lots(trades, unit, net, lo=lo, hi=hi, held=held, turnover=cap, movable=movable)


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
        if lots:
            trades, residual = rounded(session, trades, net, frozen)
            notes.append(f"rounded to whole lots; uninvested cash {residual:,.2f}")
            unit = rb.lot * np.nan_to_num(price)
            tol = max(FEAS_TOL, float(unit.max()) / v1 + 1e-9)
        quantity = np.where(trades != 0, trades / np.where(np.isfinite(price), price, 1.0), np.nan)
    after = acct.h + trades
    w_after = after / v1
    pt = Point(w_after, trades / v1, rb.risk)
    wchk, tchk = session.checkers(floors)
    checks = {**wchk.check(pt, tol), **tchk.check(pt, FEAS_TOL)}
    bad = [name for name, c in checks.items() if not c["ok"]]
    if bad and not lots:
        raise SolverError(f"the trades fail verification of {', '.join(bad)}", session.attempts())
    for name in bad:
        c = checks[name]
        notes.append(
            f"after rounding to whole lots, '{name}' does not hold: {c.get('worst', name)} "
            f"is off by {c['max_violation']:.4g}"
        )
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
    index = assets.take(traded)
    index.name = "asset"
    table = pd.DataFrame(numbers, index=index, columns=_COLUMNS)
    table.insert(0, "side", _SIDES.take((trades[traded] > 0).astype(np.intp)))
    tau = acct.tau
    w_before = acct.h / v0 if v0 > 0 else np.zeros(n)
    done = time.perf_counter()
    return RebalancePlan(
        trades=table,
        weights_before=pd.Series(w_before, index=assets, name="weight_before"),
        weights_after=pd.Series(w_after, index=assets, name="weight_after"),
        target=pd.Series(tau, index=assets, name="target"),
        drift=pd.Series(w_before - tau, index=assets, name="drift"),
        tracking_error_before=math.sqrt(rb.risk.variance(w_before - tau)),
        tracking_error_after=math.sqrt(rb.risk.variance(w_after - tau)),
        turnover=float(np.abs(trades).sum() / v0) if v0 > 0 else float("nan"),
        total_cost=float(est.sum()),
        costs={k: float(v.sum()) for k, v in parts.items()},
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
