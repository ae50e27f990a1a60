"""The solves of one plan: the pieces in force, every solver attempt, the diagnosis.

A :class:`Session` solves one account's program for a set of frozen assets
(and minimum-trade floors), as often as the fixed-cost and minimum-trade steps
ask, on the :class:`~optimizer.rebalance.Rebalancer`'s compiled programs.
:meth:`Session.convex` is the first solve: when the whole set of constraints
cannot hold but the hard ones can, it relaxes the soft constraints
(:mod:`optimizer.soft`) over the rebalance's own variables, so that the trade
limits and the frozen assets count, and every later solve uses the widened
limits; when the hard set cannot hold it raises the elastic diagnosis
(:func:`optimizer.diagnosis.elastic`), which sees the turnover cap and the
participation limits as constraints and the frozen assets as held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from optimizer import diagnosis, soft
from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.pieces import Piece, Point
from optimizer.program import Outcome
from optimizer.rebalance.account import Account, floor_pieces
from optimizer.rebalance.program import V_IMPACT, Coupling, elastic_base
from optimizer.rebalance.tracking import tracking_data
from optimizer.solve import solve_program
from optimizer.verify import Checker

if TYPE_CHECKING:
    from optimizer.rebalance.rebalancer import Rebalancer

HELD_NOTE = " (with the untradeable or frozen assets held as they are)"


@dataclass(frozen=True, eq=False)
class PooledTerms:
    """What a pooled rebalance adds to one account's solve (:meth:`Session.solve`).

    Attributes
    ----------
    coupling : Coupling
        The pooled quantities (part of the program's structure).
    price : numpy.ndarray
        Price on each pooled quantity (weight units).
    anchor : numpy.ndarray or None
        Proximal anchor of the pooled quantities (weight units), None without one.
    boxes : tuple of Piece
        The account's share of the pooled caps, as account pieces (verified too).
    """

    coupling: Coupling
    price: np.ndarray
    anchor: np.ndarray | None
    boxes: tuple = ()


class Infeasible(Exception):
    """A solver certified this program infeasible (the caller decides what follows)."""

    def __init__(self, attempts: list[dict]) -> None:
        super().__init__("infeasible")
        self.attempts = attempts


class Session:
    """Solves one account for any set of frozen assets; keeps every attempt.

    Parameters
    ----------
    rb : Rebalancer
        The structure and its compiled programs.
    acct : Account
        The account.
    """

    def __init__(self, rb: Rebalancer, acct: Account) -> None:
        self.rb = rb
        self.acct = acct
        self.policy: tuple[Piece, ...] = rb.pieces
        self.policy_key: object = None  # None: the rebalancer's own policy pieces
        self.checker = rb.checker.extended(acct.bands)
        self.trade_checker = Checker(acct.limits) if acct.limits else rb.no_limits
        self.amounts: dict[str, float] = {}  # soft relaxation by constraint name
        self.original: tuple[Piece, ...] = ()  # the pieces before it
        self.outcomes: list[Outcome] = []
        h_w = acct.h_w
        self.h_w = h_w
        self.q_w, self.root_b, self.const = tracking_data(rb.root, rb.lam, acct.tau)
        self.impact = rb.rc.impact * np.sqrt(V_IMPACT) if rb.impact else None
        # a tax-aware plan's lot-level blocks (optimizer.rebalance.tax.TaxHook): it compiles
        # the plan's own programs and fills their direction rows; None: tax-blind
        self.hook = None

    # -- bookkeeping ------------------------------------------------------------------
    def attempts(self) -> list[dict]:
        """Every solver attempt so far."""
        return [o.attempt() for o in self.outcomes]

    def pieces(self, floors: dict | None = None) -> list[Piece]:
        """The pieces in force: the policy's (widened if relaxed), then the account's."""
        extra = floor_pieces(floors, self.h_w, self.rb.assets) if floors else ()
        return [*self.policy, *self.acct.pieces(extra)]

    def checkers(self, floors: dict | None = None) -> tuple[Checker, Checker]:
        """The weight-space checker (policy, bands, floors) and the trade-space one."""
        if not floors:
            return self.checker, self.trade_checker
        return self.checker.extended(floor_pieces(floors, self.h_w, self.rb.assets)), (
            self.trade_checker
        )

    def point(self, x: np.ndarray, cols) -> Point:
        """Weights and trades (weight units) of a solution."""
        return Point(cols.weights_of(x), cols.trades_of(x), self.rb.risk)

    # -- solves -----------------------------------------------------------------------
    def solve(
        self,
        frozen: frozenset,
        floors: dict | None = None,
        *,
        pooled: PooledTerms | None = None,
    ) -> Outcome:
        """Solve with these assets frozen (and floors); the objective includes its constant.

        ``pooled``: the coupling of a pooled rebalance (:mod:`optimizer.rebalance.pooled`):
        its bounds as account pieces (verified too), its price and proximal anchor.

        Raises
        ------
        Infeasible
            A solver certified infeasibility.
        InputError
            The objective is unbounded (shorts without bounds and no risk term).
        SolverError
            Every solver failed.
        """
        rb, acct = self.rb, self.acct
        extra = floor_pieces(floors, self.h_w, rb.assets) if floors else ()
        boxes = () if pooled is None else pooled.boxes
        account = acct.pieces(extra) + boxes
        coupling = None if pooled is None else pooled.coupling
        hook = self.hook
        if hook is None:
            entry = rb.program(frozen, self.policy, self.policy_key, account, coupling)
        else:
            entry = hook.program(frozen, self.policy, self.policy_key, account)
        terms = {} if pooled is None else {"pooled_q": pooled.price, "pooled_anchor": pooled.anchor}
        prog = entry.instance(
            h_w=self.h_w,
            q_w=self.q_w,
            root_b=self.root_b,
            buy=rb.buy_q,
            sell=rb.sell_q,
            impact=self.impact,
            value=acct.v1,
            account=account,
            **terms,
        )
        if hook is not None:
            hook.fill(prog, entry)
        wchk, tchk = self.checkers(floors)
        bounds = Checker(boxes) if boxes else None
        cols = entry.cols

        def accept(out: Outcome) -> bool:
            pt = self.point(out.x, cols)
            if not (np.isfinite(pt.w).all() and entry.stationary(prog, out)):
                return False
            return wchk.ok(pt) and tchk.ok(pt) and (bounds is None or bounds.ok(pt))

        winner, outs = solve_program(prog, chain=rb.chain, accept=accept, workspace=entry.pool)
        self.outcomes.extend(outs)
        if winner is None:
            statuses = {o.status for o in outs}
            attempts = [o.attempt() for o in outs]
            if "infeasible" in statuses:
                raise Infeasible(attempts)
            if "unbounded" in statuses:
                raise InputError(
                    "the rebalance is unbounded: the objective can improve without limit; "
                    "add bounds, a budget or a leverage limit"
                )
            raise SolverError("every solver in the chain failed", attempts)
        winner.objective += self.const
        winner.extra["cols"] = cols
        if hook is not None:
            hook.record(winner, entry)
        return winner

    def convex(self) -> Outcome:
        """The first solve, with the account's own frozen assets (soft constraints relaxed
        when the whole set cannot hold).

        Raises
        ------
        InfeasibleError
            The hard constraints cannot hold (the diagnosis names them).
        """
        rb, acct = self.rb, self.acct
        if acct.bands:
            pieces = self.pieces()
            conflict = rb.precheck(pieces)
            hard_conflict = rb.precheck(soft.hard(pieces)) if rb.soft and conflict else conflict
        else:
            conflict, hard_conflict = rb.conflict, rb.hard_conflict
        if conflict is not None:
            if rb.soft and hard_conflict is None:
                return self.relax()
            # a fresh error each time: a stored exception would gather tracebacks
            raise InfeasibleError(str(hard_conflict), hard_conflict.diagnosis)
        try:
            return self.solve(acct.frozen)
        except Infeasible as exc:
            if rb.soft:
                return self.relax()
            raise self.diagnosis(acct.frozen, None, exc.attempts) from None

    def relax(self) -> Outcome:
        """Relax the soft constraints by priority, then solve with the widened limits."""
        rb, acct = self.rb, self.acct
        pieces = self.pieces()
        base = elastic_base(rb.n, self.h_w, sorted(acct.frozen), rb.risk)
        try:
            amounts = soft.relaxation(pieces, base, n=rb.n, risk=rb.risk)
        except InfeasibleError as exc:
            raise self._held(exc, acct.frozen) from None
        self.original, self.amounts = tuple(pieces), amounts
        self.policy = tuple(soft.widen(self.policy, amounts))
        self.policy_key = tuple(p.key for p in self.policy)
        self.checker = Checker(self.policy).extended(acct.bands)
        try:
            return self.solve(acct.frozen)
        except Infeasible as exc:
            raise SolverError(
                "the soft constraints were relaxed, but the relaxed rebalance could not be solved",
                exc.attempts,
            ) from None

    def diagnosis(self, frozen: frozenset, floors: dict | None, attempts) -> Exception:
        """Why the program with these frozen assets (and floors) is infeasible, as an error."""
        base = elastic_base(self.rb.n, self.h_w, sorted(frozen), self.rb.risk)
        err = diagnosis.elastic(
            self.pieces(floors), self.rb.n, self.rb.risk, attempts=attempts, base=base
        )
        return self._held(err, frozen)

    @staticmethod
    def _held(err: Exception, frozen: frozenset) -> Exception:
        if isinstance(err, InfeasibleError) and frozen:
            out = InfeasibleError(str(err) + HELD_NOTE, err.diagnosis)
            out.attempts = getattr(err, "attempts", [])
            return out
        return err

    def relaxed(self, pt: Point) -> tuple[dict, ...]:
        """What the soft constraints gave at the final plan ``pt`` (``RebalancePlan.relaxed``)."""
        if not self.amounts:
            return ()
        return soft.report(self.original, self.amounts, pt)

    def untraded_allowed(self) -> bool:
        """True when trading nothing meets every constraint in force."""
        n = self.rb.n
        pt = Point(self.h_w, np.zeros(n), self.rb.risk)
        return self.checker.ok(pt) and self.trade_checker.ok(pt)
