"""The held rebalance: structure fixed once, one plan per account.

A :class:`Rebalancer` validates and copies the covariance, resolves the
constraints and the cost model once, and owns the rebalance programs compiled
from them (:mod:`optimizer.rebalance.program`) with their Clarabel
workspaces. ``plan(holdings, target, ...)`` solves one account: only ``q``
and ``b`` of a compiled program change from one account to the next. The
object is safe to share between threads (its programs are guarded by a lock,
each concurrent solve takes a workspace of its own from the program's pool)
and pickles (the programs and workspaces are rebuilt on first use).
"""

from __future__ import annotations

import numbers
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from optimizer import diagnosis, soft
from optimizer.constraints import LongOnly, constraint_tuple, resolve
from optimizer.costs import CostModel
from optimizer.errors import InfeasibleError, InputError
from optimizer.pieces import Piece
from optimizer.rebalance.account import make_account
from optimizer.rebalance.fixed import nonconvex_steps
from optimizer.rebalance.lots import lot_vector
from optimizer.rebalance.plan import assemble, liquidation
from optimizer.rebalance.program import Coupling, RebalanceProgram, compile_rebalance
from optimizer.rebalance.session import Session
from optimizer.rebalance.taxplan import tax_plan
from optimizer.rebalance.tracking import Root
from optimizer.riskmodel import RiskModel
from optimizer.solve import chain_of
from optimizer.trades import RebalancePlan
from optimizer.universe import Universe, check_universe
from optimizer.validation import covariance_or_factors, finite_number, series
from optimizer.verify import Checker

#: Default ``tracking_weight``: basis points of cost worth paying to cut tracking error
#: from one point (1%) to zero.
DEFAULT_TRACKING_WEIGHT = 100.0
#: Compiled programs a rebalancer keeps (most recent first), and the bytes they may hold.
PROGRAMS_KEPT = 32
PROGRAM_BYTES = 64 * 2**20


def _number(value, what: str, *, minimum: float = 0.0, strict: bool = False) -> float:
    """A finite number at least ``minimum`` (above it when ``strict``); bool and text refused."""
    v = finite_number(value, what=what)
    if v < minimum or (strict and v == minimum):
        side = "positive" if strict and minimum == 0 else "non-negative"
        raise InputError(f"{what} must be {side} and finite, got {value!r}")
    return v


def _band_vector(bands, assets: pd.Index) -> np.ndarray:
    """No-trade band half-widths by asset (NaN: no band), shape (n,)."""
    if isinstance(bands, numbers.Real) and not isinstance(bands, bool | np.bool_):
        return np.full(len(assets), _number(bands, "no_trade_bands"))
    s = series(bands, what="no_trade_bands")
    extra = s.index.difference(assets)
    if len(extra):
        raise InputError(f"no_trade_bands names unknown assets: {', '.join(map(str, extra))}")
    if (s < 0).any():
        raise InputError("no_trade_bands must be non-negative")
    return s.reindex(assets).to_numpy(dtype=float)


def _variances(risk: RiskModel) -> np.ndarray:
    """The annualized variances ``C_ii``, shape (n,), without forming a factor model's ``C``."""
    if risk.kind == "factor":
        return risk.d + (risk.G**2).sum(axis=1)
    return np.diag(risk.dense).copy()


class Rebalancer:
    """A rebalance compiled once: covariance, constraints, costs and options fixed.

    Parameters
    ----------
    cov : pandas.DataFrame (n x n) or FactorCovariance
        Annualized covariance; fixes the assets and their order. Copied: later
        edits of the caller's object change nothing here.
    costs : CostModel, optional
        Proportional, impact and fixed costs; none by default.
    constraints : sequence, optional
        Policy constraints on the post-trade weights (``Budget(1)`` and
        long-only by default), hard or soft (``priority=``).
    universe : Universe, optional
        Tags for tag constraints and tag cost rates.
    tracking_weight : float
        Basis points of cost worth paying to cut tracking error from 1 point to
        0 (:mod:`optimizer.rebalance`); default 100.
    turnover_penalty : float
        Extra cost per unit of traded weight (decimal, 0.001 is 10 bps).
    max_turnover : float, optional
        Cap on traded notional, buys plus sells, over the post-trade value
        ``V1`` (the ``"turnover cap"``).
    no_trade_bands : float or mapping asset -> float, optional
        Assets whose weight is within the band of target are not traded; the
        others are brought back inside the band (``band_to="edge"``, a hard
        limit, ``"no-trade band"``) or traded freely toward target
        (``band_to="target"``).
    band_to : {"edge", "target"}
    min_trade : float
        Smallest trade (currency); smaller trades are dropped unless dropping
        them would break a constraint, in which case they are kept at this size.
    lot_size : float or mapping, optional
        Round quantities to multiples of this (1 for whole shares); plans need ``prices``.
    untradeable : sequence of str
        Assets that stay as they are (private equity, hedge funds).
    participation : float, optional
        Trade at most this fraction of the average daily value (``costs.adv``)
        in any asset (the ``"participation limit"``).
    solvers : sequence of str, optional
        Solver chain (Clarabel, OSQP, SCS by default).
    holdings_as : {"value", "quantity"}
        Holdings are market values, or quantities priced by ``prices``.
    currency : str, optional
        Carried into the orders.

    Raises
    ------
    InputError
        A bad covariance, option or cost model (named).
    """

    def __init__(
        self,
        cov,
        *,
        costs: CostModel | None = None,
        constraints: Sequence | None = None,
        universe: Universe | None = None,
        tracking_weight: float = DEFAULT_TRACKING_WEIGHT,
        turnover_penalty: float = 0.0,
        max_turnover: float | None = None,
        no_trade_bands: float | Mapping[str, float] | None = None,
        band_to: str = "edge",
        min_trade: float = 0.0,
        lot_size: float | Mapping[str, float] | None = None,
        untradeable: Sequence[str] = (),
        participation: float | None = None,
        solvers: Sequence[str] | None = None,
        holdings_as: str = "value",
        currency: str | None = None,
    ) -> None:
        cov = covariance_or_factors(cov, what="cov")
        assets = cov.index if isinstance(cov, pd.DataFrame) else cov.assets
        check_universe(universe, assets)
        self.risk = RiskModel(cov, assets)
        self.root = Root.of(self.risk)
        self.assets = self.risk.assets
        self.universe = universe
        costs = CostModel() if costs is None else costs
        if not isinstance(costs, CostModel):
            raise InputError("costs= must be an optimizer.rebalance.CostModel")
        self.costs = costs
        if holdings_as not in ("value", "quantity"):
            raise InputError(f"holdings_as must be 'value' or 'quantity', got {holdings_as!r}")
        if band_to not in ("edge", "target"):
            raise InputError(f"band_to must be 'edge' or 'target', got {band_to!r}")
        self.holdings_as, self.band_to, self.currency = holdings_as, band_to, currency
        self.lam = _number(tracking_weight, "tracking_weight")
        self.penalty = _number(turnover_penalty, "turnover_penalty")
        self.max_turnover = None if max_turnover is None else _number(max_turnover, "max_turnover")
        self.min_trade = _number(min_trade, "min_trade")
        self.band = None if no_trade_bands is None else _band_vector(no_trade_bands, self.assets)
        self.lot = None if lot_size is None else lot_vector(lot_size, self.assets)
        names = [untradeable] if isinstance(untradeable, str) else list(untradeable)
        known = set(self.assets)
        for a in names:
            if str(a) not in known:
                raise InputError(f"untradeable names unknown asset {a!r}")
        self.untradeable = frozenset(int(self.assets.get_loc(str(a))) for a in names)
        self.chain = chain_of(solvers)
        self.constraints = constraint_tuple(constraints)
        self.cset = resolve(self.constraints, self.assets, universe)
        self.pieces: tuple[Piece, ...] = tuple(self.cset.pieces)
        self.budget = self.cset.budget if self.cset.budget is not None else 1.0
        self.long_only = any(isinstance(c, LongOnly) for c in self.cset.constraints)
        self.rc = costs.resolve(self.assets, universe, _variances(self.risk))
        self.impact = bool(np.any(self.rc.impact > 0))
        self.buy_q = self.rc.buy + self.penalty
        self.sell_q = self.rc.sell + self.penalty
        self.participation = None
        if participation is not None:
            if self.rc.adv is None:
                raise InputError("participation= needs CostModel(adv=...)")
            self.participation = _number(participation, "participation", strict=True)
        self._check_names()
        self.checker = Checker(self.pieces)
        self.no_limits = Checker(())
        self.soft = soft.has_soft(self.pieces)
        # conflicts found by arithmetic are raised at the first plan, after its inputs' checks
        self.conflict = self.precheck(self.pieces)
        self.hard_conflict = self.precheck(soft.hard(self.pieces)) if self.soft else self.conflict
        self._lock = threading.Lock()
        self._programs: OrderedDict = OrderedDict()
        self._index_seen: pd.Index | None = None

    # -- plumbing ----------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"], state["_programs"], state["_index_seen"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._programs = OrderedDict()
        self._index_seen = None

    def labelled_like(self, index: pd.Index) -> bool:
        """True when ``index`` lists exactly the rebalancer's assets, in order.

        The last index found equal is remembered (a pandas Index is immutable,
        so the same object stays equal): a batch of Series sharing one index
        pays the comparison once.
        """
        if index is self._index_seen:
            return True
        if index.equals(self.assets):
            self._index_seen = index
            return True
        return False

    def __repr__(self) -> str:
        return (
            f"Rebalancer({self.n} assets, {len(self.cset.constraints)} constraints, "
            f"tracking_weight={self.lam:g})"
        )

    @property
    def n(self) -> int:
        """Number of assets."""
        return len(self.assets)

    @property
    def nbytes(self) -> int:
        """Bytes held by the covariance copy and the compiled programs (approximate)."""
        with self._lock:
            programs = list(self._programs.values())
        root = self.root.rt
        held = root.nbytes if isinstance(root, np.ndarray) else root.data.nbytes
        return self.risk.nbytes + held + sum(p.nbytes for p in programs)

    @property
    def programs_kept(self) -> int:
        """Number of compiled programs held now (one per structure met, bounded)."""
        with self._lock:
            return len(self._programs)

    def _check_names(self) -> None:
        active = {
            "turnover cap": self.max_turnover is not None,
            "participation limit": self.participation is not None,
            "no-trade band": self.band is not None and self.band_to == "edge",
            "minimum trade": self.min_trade > 0,
        }
        taken = [c.name for c in self.cset.constraints if active.get(c.name)]
        if taken:
            raise InputError(
                f"constraint name {taken[0]!r} is the rebalance's own limit: give it another name="
            )

    def precheck(self, pieces: Sequence[Piece]) -> InfeasibleError | None:
        """The conflict arithmetic finds among ``pieces``, or None."""
        try:
            diagnosis.precheck(pieces, self.n, budget=self.cset.budget, assets=self.assets)
        except InfeasibleError as exc:
            return exc
        return None

    def program(
        self,
        frozen: frozenset,
        policy: Sequence[Piece],
        policy_key,
        account: Sequence[Piece],
        coupling: Coupling | None = None,
        *,
        extend=None,
        extend_key=None,
    ) -> RebalanceProgram:
        """The program of this structure, compiled once and kept (bounded, thread-safe).

        Parameters
        ----------
        frozen : frozenset of int
            Assets that do not trade.
        policy : sequence of Piece
            The policy's pieces (the rebalancer's own, or widened by a relaxation).
        policy_key : hashable or None
            Their key (None for the rebalancer's own pieces).
        account : sequence of Piece
            The account pieces (their structure is part of the key, their limits are not).
        coupling : Coupling, optional
            The pooled quantities of a pooled rebalance (:mod:`optimizer.rebalance.pooled`);
            part of the key when given.
        extend, extend_key : optional
            The ``extend`` hook of :func:`compile_rebalance` (a tax-aware plan's lot blocks,
            :class:`~optimizer.rebalance.tax.TaxHook`) and the key of the structure it adds
            (part of this program's key).
        """
        key = (tuple(sorted(frozen)), policy_key, tuple(p.shape for p in account))
        if coupling is not None:
            key = (*key, coupling)
        if extend is not None:
            key = (*key, extend_key)
        with self._lock:
            hit = self._programs.get(key)
            if hit is not None:
                self._programs.move_to_end(key)
                return hit
        entry = compile_rebalance(
            n=self.n,
            risk=self.risk,
            root=self.root,
            tracking_weight=self.lam,
            impact=self.impact,
            frozen=sorted(frozen),
            policy=policy,
            account=account,
            coupling=coupling,
            extend=extend,
        )
        with self._lock:
            entry = self._programs.setdefault(key, entry)
            total = sum(p.nbytes for p in self._programs.values())
            while len(self._programs) > 1 and (
                len(self._programs) > PROGRAMS_KEPT or total > PROGRAM_BYTES
            ):
                _, old = self._programs.popitem(last=False)
                total -= old.nbytes
        return entry

    # -- the plan ------------------------------------------------------------------------
    def plan(
        self,
        holdings: pd.Series,
        target: pd.Series,
        *,
        prices: pd.Series | None = None,
        cash_flow: float = 0.0,
        as_of=None,
        portfolio_id: str | None = None,
        lots=None,
        tax=None,
        recent=None,
        substitutes=None,
        harvest: bool = False,
    ) -> RebalancePlan:
        """Trades that move ``holdings`` toward ``target`` when they are worth their cost.

        Parameters
        ----------
        holdings : pandas.Series
            Market values by asset (currency), or quantities with
            ``holdings_as="quantity"``. Assets of the covariance missing here
            hold nothing.
        target : pandas.Series
            Target weights (decimals) summing to the budget (1 unless a
            ``Budget`` is given).
        prices : pandas.Series, optional
            Price per unit; turns notionals into quantities (rounded to ``lot_size``).
        cash_flow : float
            Currency to invest (> 0) or to raise (< 0). Raising the whole
            portfolio is a liquidation: every position is sold (the notes say so).
        as_of, portfolio_id
            Carried into the orders; ``as_of`` is also the date of a tax-aware plan
            (holding periods, the wash-sale window; today when not given).
        lots : TaxLots or pandas.DataFrame, optional
            The account's tax lots: a tax-aware plan (:mod:`optimizer.rebalance.tax`),
            with lot-level sells, the tax in the objective and ``plan.lot_sales`` /
            ``plan.tax``. Their quantities must equal the holdings'; needs ``prices``.
        tax : TaxModel, optional
            Rates, holding period, gains budgets (default: all 0, the tax-blind plan).
        recent : RecentTrades or pandas.DataFrame, optional
            Trades before this plan, for the wash-sale window.
        substitutes : mapping asset -> list of assets, optional
            Assets that may stand in for an asset sold at a loss (harvesting).
        harvest : bool
            Value net realized losses at ``tax.loss_rate`` and allow the substitutes.

        Returns
        -------
        RebalancePlan

        Raises
        ------
        InputError
            Unknown assets, NaN, negative holdings in a long-only account, a
            target not summing to the budget, missing prices for an asset that
            must trade.
        InfeasibleError
            A withdrawal above what the tradeable assets hold, or hard
            constraints that cannot hold after trading (with the diagnosis).
        SolverError
            Every solver failed.
        """
        started = time.perf_counter()
        acct = make_account(self, holdings, target, prices, cash_flow)
        taxed = (lots, tax, recent, substitutes)
        if harvest is not False or any(v is not None for v in taxed):
            return tax_plan(
                self,
                acct,
                lots=lots,
                tax=tax,
                recent=recent,
                substitutes=substitutes,
                harvest=harvest,
                started=started,
                as_of=as_of,
                portfolio_id=portfolio_id,
            )
        if acct.v1 == 0:  # the whole portfolio withdrawn: sell everything
            return liquidation(self, acct, started=started, as_of=as_of, portfolio_id=portfolio_id)
        session = Session(self, acct)
        t1 = time.perf_counter()
        sol = session.convex()
        notes: list[str] = []
        sol, frozen, floors = nonconvex_steps(session, sol, notes)
        t2 = time.perf_counter()
        return assemble(
            session,
            sol,
            frozen,
            floors,
            notes,
            started=started,
            solved=(t1, t2),
            as_of=as_of,
            portfolio_id=portfolio_id,
        )
