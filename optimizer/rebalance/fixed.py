"""The discrete steps of a rebalance: fixed ticket costs and minimum trade sizes.

Neither is convex. Both work on the convex solution by freezing assets (and,
for minimum trades, by keeping a trade at its floor) and solving again.

**Fixed tickets, two stages.** Solve the convex problem; for every traded
asset compute its benefit, the increase of the objective when that asset
alone is frozen and the rest re-optimized; freeze the trade whose benefit
falls furthest below its ticket; repeat until every remaining trade is worth
its ticket. Dropping one trade per round matters: dropping every trade below
its ticket at once can cost more than the tickets save. Of the solutions
visited (the convex one with every ticket paid included) and trading
nothing, when the constraints allow it, the one with the least objective plus
tickets is kept.

**Minimum trade.** Trades smaller than ``min_trade`` (currency) are dropped
(frozen) unless dropping them makes the problem infeasible; those are kept at
the minimum size in their direction (a floor, convex once the sign is fixed).
The re-solve can shrink another trade below the minimum, so the check repeats.

Objectives here are fractions of ``V1``; tickets enter as ``fixed / V1`` each.
"""

from __future__ import annotations

import math

import numpy as np

from optimizer.errors import SolverError
from optimizer.program import Outcome
from optimizer.rebalance.session import Infeasible, Session

#: Trades below this fraction of ``max(1, V1)`` (currency) count as no trade.
DUST = 1e-6


def _trades(session: Session, sol: Outcome) -> np.ndarray:
    """Trades of a solution, currency, shape (n,)."""
    w = sol.extra["cols"].weights_of(sol.x)
    return (w - session.h_w) * session.acct.v1


def drop_tickets(
    session: Session, sol: Outcome, frozen: frozenset, notes: list[str]
) -> tuple[Outcome, frozenset]:
    """The two-stage fixed-cost method (module docstring); appends a note per dropped trade.

    Parameters
    ----------
    session : Session
        The account's solves.
    sol : Outcome
        The convex solution with ``frozen`` held.
    frozen : frozenset of int
        Assets frozen so far.
    notes : list of str
        The plan's notes, extended in place.

    Returns
    -------
    (Outcome, frozenset)
        The kept solution and its frozen assets.
    """
    rb, acct = session.rb, session.acct
    n, v1, fixed = rb.n, acct.v1, rb.rc.fixed
    dust = DUST * max(1.0, abs(v1))

    def with_tickets(s: Outcome, fz: frozenset) -> float:
        t = _trades(session, s)
        return s.objective + fixed / v1 * sum(i not in fz and abs(t[i]) >= dust for i in range(n))

    if not any(i not in frozen and abs(t) >= dust for i, t in enumerate(_trades(session, sol))):
        return sol, frozen  # no trade, no ticket (a turnover cap of 0, say): nothing to weigh
    best = (with_tickets(sol, frozen), sol, frozen, len(notes))
    for _ in range(n + 1):
        trades = _trades(session, sol)
        options = []
        for i in (i for i in range(n) if i not in frozen and abs(trades[i]) >= dust):
            try:
                alt = session.solve(frozen | {i})
            except (Infeasible, SolverError):
                continue
            options.append((alt.objective - sol.objective - fixed / v1, i, alt))
        if not options:
            break
        margin, i, alt = min(options, key=lambda o: o[0])
        if margin >= 0:
            break
        sol, frozen = alt, frozen | {i}
        notes.append(f"not worth a ticket of {fixed:,.2f}: {rb.assets[i]}")
        if with_tickets(sol, frozen) < best[0]:
            best = (with_tickets(sol, frozen), sol, frozen, len(notes))
    _, sol, frozen, kept = best
    del notes[kept:]
    # trading nothing pays no ticket: take it when it is allowed and cheaper
    if session.untraded_allowed():
        if rb.lam * rb.risk.variance(session.h_w - acct.tau) < best[0] - 1e-9:
            everything = frozenset(range(n))
            try:
                sol, frozen = session.solve(everything), everything
                notes.append(f"no trade is worth a ticket of {fixed:,.2f}")
            except (Infeasible, SolverError):
                pass
    return sol, frozen


def minimum_trades(
    session: Session, sol: Outcome, frozen: frozenset, notes: list[str]
) -> tuple[Outcome, frozenset, dict[int, float]]:
    """Drop trades below ``min_trade``, or keep them at that size when dropping is infeasible.

    Returns
    -------
    (Outcome, frozenset, dict)
        The solution, its frozen assets, and the floors kept (asset -> signed
        floor in weight units).

    Raises
    ------
    InfeasibleError
        When even the floors cannot hold (the diagnosis names the conflict).
    """
    rb, acct = session.rb, session.acct
    n, v1, size = rb.n, acct.v1, rb.min_trade
    dust = DUST * max(1.0, abs(v1))  # below this a trade counts as none (as in the final plan)
    floors: dict[int, float] = {}
    for _ in range(n + 1):
        trades = _trades(session, sol)
        small = [
            i
            for i in range(n)
            if i not in frozen and i not in floors and dust <= abs(trades[i]) < size
        ]
        if not small:
            break
        try:
            sol = session.solve(frozen | set(small), floors)
            frozen = frozen | set(small)
            notes.append(f"trades below {size:,.2f} dropped: {', '.join(rb.assets[small])}")
        except Infeasible:
            floors.update({i: math.copysign(size / v1, trades[i]) for i in small})
            try:
                sol = session.solve(frozen, floors)
            except Infeasible as exc:
                err = session.diagnosis(frozen, floors, exc.attempts)
                raise err from None
            notes.append(
                f"trades kept at the minimum size to stay feasible: {', '.join(rb.assets[small])}"
            )
    return sol, frozen, floors


def nonconvex_steps(
    session: Session, sol: Outcome, notes: list[str]
) -> tuple[Outcome, frozenset, dict[int, float]]:
    """The steps after the convex solve: :func:`drop_tickets`, then :func:`minimum_trades`.

    Each runs only when the rebalancer has its cost (fixed tickets) or limit (``min_trade``).

    Returns
    -------
    (Outcome, frozenset, dict)
        The solution, its frozen assets (the account's own plus those dropped), and
        the minimum-trade floors kept (asset -> signed floor in weight units).
    """
    rb = session.rb
    frozen = session.acct.frozen
    if rb.rc.fixed > 0:
        sol, frozen = drop_tickets(session, sol, frozen, notes)
    floors: dict[int, float] = {}
    if rb.min_trade > 0:
        sol, frozen, floors = minimum_trades(session, sol, frozen, notes)
    return sol, frozen, floors
