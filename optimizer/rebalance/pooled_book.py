"""One partition of a pooled rebalance: the accounts of one :class:`Rebalancer` structure.

An :class:`AccountBook` holds a :class:`~optimizer.rebalance.Rebalancer` and the
inputs of its accounts; :meth:`AccountBook.step` solves every account of the
book for the coordination signals of one iteration of the decomposition
(:mod:`optimizer.rebalance.pooled`) and returns what the driver's reduction
needs. A book holds no state between steps: it can be pickled to a Dask worker
and stepped there, once per iteration.

Each account's step reuses the account's compiled program
(:meth:`Rebalancer.program`), compiled once more with a
:class:`~optimizer.rebalance.program.Coupling`: the pooled quantities
``u = b - s`` (net) or ``u = b + s`` (gross, weight units) of the coupled
assets, a linear price on them and the diagonal proximal term
``rho / 2 ||u - anchor / V1||^2`` (the anchor in ``b``, so that ``q`` is
the same for every account of a target). In currency that is the account's
objective ``V1 f_i`` plus ``y' x_i + (rho / V1) / 2 ||x_i - z_i||^2`` with
``x_i = V1 u`` (the ADMM x-update with the penalty ``rho_i = rho / V1``,
which makes ``P`` the same for every account of a structure).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.pieces import Bound, TradeBound
from optimizer.program import Outcome
from optimizer.rebalance.account import Account, make_account
from optimizer.rebalance.fixed import DUST
from optimizer.rebalance.plan import assemble, liquidation
from optimizer.rebalance.program import Coupling
from optimizer.rebalance.rebalancer import Rebalancer
from optimizer.rebalance.session import Infeasible, PooledTerms, Session
from optimizer.trades import RebalancePlan
from optimizer.validation import finite_number

#: Name of the per-account bounds of the feasibility step (and of the pooled checks).
POOLED_LIMIT = "pooled limit"


@dataclass(frozen=True, eq=False)
class Signals:
    """The coordination signals of one iteration, for one book.

    Attributes
    ----------
    kind : {"net", "gross"}
        What is pooled.
    assets : tuple of int
        Coupled assets (positions in the rebalancer's assets), the columns below.
    price : numpy.ndarray, shape (c,), or None
        Price per unit of pooled quantity (currency per currency); None: the
        accounts' own solves (the start).
    rho : float
        Proximal weight (0: none).
    anchor : numpy.ndarray, shape (k, c), or None
        Proximal anchor of each account (currency).
    lo, hi : numpy.ndarray, shape (k, c), or None
        Hard bounds on each account's pooled quantity (currency): the
        feasibility step. NaN or inf: none.
    skip : frozenset of int
        Accounts (rows of the book) left out: they failed at the start.
    final : bool
        Make the plans.
    """

    kind: str
    assets: tuple[int, ...]
    price: np.ndarray | None = None
    rho: float = 0.0
    anchor: np.ndarray | None = None
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    skip: frozenset = frozenset()
    final: bool = False


@dataclass(frozen=True, eq=False)
class BookStep:
    """What one book's step returns to the driver.

    Attributes
    ----------
    accounts : pandas.Index
        The book's account ids (rows of the arrays below).
    pooled : numpy.ndarray, shape (k, c)
        Each account's pooled quantity on the coupled assets (currency; 0 for
        the accounts that failed).
    trades : numpy.ndarray, shape (k, n)
        Each account's trades (currency, buys positive).
    value : numpy.ndarray, shape (k,)
        ``V1``, each account's value after its cash flow (currency; 0 for a liquidation).
    objective : numpy.ndarray, shape (k,)
        Each account's own objective (currency: tracking and costs, without the
        signals' price and proximal terms).
    fixed : numpy.ndarray of bool, shape (k,)
        Accounts whose trades do not depend on the signals (liquidations).
    failed : dict
        Row -> the exception that stopped that account.
    plans : dict
        Row -> :class:`~optimizer.trades.RebalancePlan` (final step only).
    """

    accounts: pd.Index
    pooled: np.ndarray
    trades: np.ndarray
    value: np.ndarray
    objective: np.ndarray
    fixed: np.ndarray
    failed: dict = field(default_factory=dict)
    plans: dict = field(default_factory=dict)


def _frame(values, accounts: pd.Index, assets: pd.Index, what: str, book: str) -> pd.DataFrame:
    """A DataFrame account x asset in the rebalancer's asset order (missing assets 0)."""
    if isinstance(values, pd.Series):  # one row for every account
        values = pd.DataFrame(
            np.tile(values.to_numpy(dtype=float), (len(accounts), 1)),
            index=accounts,
            columns=values.index,
        )
    if not isinstance(values, pd.DataFrame):
        raise InputError(f"{book}: {what} must be a DataFrame, one row per account")
    extra = values.columns.astype(str).difference(assets)
    if len(extra):
        raise InputError(
            f"{book}: {what} names unknown assets: {', '.join(map(str, extra))}; "
            "use the rebalancer's assets"
        )
    out = values.copy()
    out.columns = out.columns.astype(str)
    if isinstance(out.index, pd.RangeIndex) and len(out) == len(accounts):
        out.index = accounts  # rows given in the accounts' order
    else:
        out.index = out.index.astype(str)
        missing = accounts.difference(out.index)
        extra = out.index.difference(accounts)
        if len(missing) or len(extra) or out.index.has_duplicates:
            who = missing[0] if len(missing) else (extra[0] if len(extra) else "a duplicate")
            raise InputError(
                f"{book}: {what} must have one row per account (index: the account ids); "
                f"account {who!r} does not match: give each account exactly one row"
            )
        out = out.loc[accounts]
    fill = np.nan if what == "prices" else 0.0
    return out.reindex(columns=assets, fill_value=fill).astype(float)


@dataclass(frozen=True, eq=False)
class AccountBook:
    """The accounts of one :class:`Rebalancer` structure, for a pooled rebalance.

    Parameters
    ----------
    rebalancer : Rebalancer
        The structure every account of the book shares (assets, costs, constraints).
    accounts : sequence of str
        Account ids, unique across the books of one pooled rebalance.
    holdings : pandas.DataFrame, shape (k, n)
        Market values (currency; quantities with ``holdings_as="quantity"``),
        one row per account (index: the account ids), columns asset ids.
    targets : pandas.DataFrame (k, n) or pandas.Series (n,)
        Target weights (decimals), by account or one for all.
    cash_flows : pandas.Series (k,) or float
        Cash flow of each account (currency; > 0 a contribution).
    prices : pandas.DataFrame (k, n) or pandas.Series (n,), optional
        Price per unit (turns notionals into quantities).
    name : str
        How errors name the book.

    Notes
    -----
    Frozen and stateless: its step depends on its fields and the signals only,
    so the book can be pickled to a worker and stepped there.
    """

    rebalancer: Rebalancer
    accounts: pd.Index
    holdings: pd.DataFrame
    targets: pd.DataFrame
    cash_flows: pd.Series
    prices: pd.DataFrame | None = None
    name: str = "book"

    def __post_init__(self) -> None:
        rb = self.rebalancer
        if not isinstance(rb, Rebalancer):
            raise InputError(f"{self.name}: rebalancer must be an optimizer.rebalance.Rebalancer")
        ids = pd.Index([str(a) for a in self.accounts], name="account")
        if ids.has_duplicates:
            dup = ids[ids.duplicated()][0]
            raise InputError(f"{self.name}: account {dup!r} is listed twice; give unique ids")
        object.__setattr__(self, "accounts", ids)
        for what in ("holdings", "targets", "prices"):
            v = getattr(self, what)
            if v is not None:
                object.__setattr__(self, what, _frame(v, ids, rb.assets, what, self.name))
        flows = self.cash_flows
        if isinstance(flows, pd.Series):
            frame = _frame(
                flows.to_frame("cash_flow"), ids, pd.Index(["cash_flow"]), "cash_flows", self.name
            )
            flows = frame["cash_flow"]
        else:
            flows = pd.Series(finite_number(flows, what="cash_flows"), index=ids)
        object.__setattr__(self, "cash_flows", flows)

    def __len__(self) -> int:
        return len(self.accounts)

    def step(self, sig: Signals) -> BookStep:
        """Solve every account of the book for the signals of one iteration.

        Parameters
        ----------
        sig : Signals

        Returns
        -------
        BookStep
            An account that fails (bad input, infeasible, solver failure) is
            recorded in ``failed`` and trades nothing; the others go on.
        """
        k, n = len(self), self.rebalancer.n
        cols = np.asarray(sig.assets, dtype=int)
        arrays = (
            self.holdings.to_numpy(),
            self.targets.to_numpy(),
            self.cash_flows.to_numpy(),
            None if self.prices is None else self.prices.to_numpy(),
            _Rows(self.rebalancer.assets),
        )
        pooled = np.zeros((k, len(cols)))
        trades = np.zeros((k, n))
        value = np.zeros(k)
        objective = np.zeros(k)
        fixed = np.zeros(k, dtype=bool)
        failed: dict = {}
        plans: dict = {}
        for r, account in enumerate(self.accounts):
            if r in sig.skip:
                continue
            try:
                t, v1, own, plan, is_fixed = self._account(r, account, sig, cols, arrays)
            except (InputError, InfeasibleError, SolverError) as exc:
                failed[r] = exc
                continue
            trades[r], value[r], objective[r], fixed[r] = t, v1, own, is_fixed
            pooled[r] = t[cols] if sig.kind == "net" else np.abs(t[cols])
            if plan is not None:
                plans[r] = plan
        return BookStep(self.accounts, pooled, trades, value, objective, fixed, failed, plans)

    # -- one account -----------------------------------------------------------------
    def _account(self, r: int, account: str, sig: Signals, cols: np.ndarray, arrays: tuple):
        rb = self.rebalancer
        hold, tgt, flows, price, rows = arrays
        holdings, target, prices = rows.fill(hold[r], tgt[r], None if price is None else price[r])
        flow = float(flows[r])
        started = time.perf_counter()
        acct = make_account(rb, holdings, target, prices, flow)
        if acct.v1 == 0:  # a liquidation: its trades are fixed
            plan = None
            if sig.final:
                plan = liquidation(rb, acct, started=started, portfolio_id=account)
            t = np.where(acct.h != 0, -acct.h, 0.0)
            return t, 0.0, own_objective(rb, acct, t), plan, True
        if sig.price is None and sig.final:  # no coupling: the account's own plan
            plan = rb.plan(holdings, target, prices=prices, cash_flow=flow, portfolio_id=account)
            t = _plan_trades(plan, rb.assets)
            return t, acct.v1, own_objective(rb, acct, t), plan, False
        session = Session(rb, acct)
        t1 = time.perf_counter()
        if sig.price is None or rb.soft:
            # the account's own solve (it relaxes the soft constraints, once for all steps)
            sol = session.convex()
        if sig.price is not None:
            sol = self._pooled_solve(session, acct, sig, cols, r, account)
        if sig.final and sig.hi is not None:
            _settle(rb, acct, sol, cols[np.isfinite(sig.hi).any(axis=0)])
        t = (sol.extra["cols"].weights_of(sol.x) - session.h_w) * acct.v1
        plan = None
        if sig.final:
            notes: list[str] = []
            plan = assemble(
                session,
                sol,
                acct.frozen,
                {},
                notes,
                started=started,
                solved=(t1, time.perf_counter()),
                portfolio_id=account,
                bounds=_trade_bounds(rb, sig, cols, r),
            )
            t = _plan_trades(plan, rb.assets)
        return t, acct.v1, own_objective(rb, acct, t), plan, False

    def _pooled_solve(
        self, session: Session, acct: Account, sig: Signals, cols: np.ndarray, r: int, account: str
    ) -> Outcome:
        """The account's program with the price, the proximal term and the bounds of ``sig``."""
        rb = self.rebalancer
        # u is the pooled quantity less the anchor (in b): q is the same for every account
        anchor = None if sig.anchor is None or sig.rho == 0 else sig.anchor[r] / acct.v1
        terms = PooledTerms(
            coupling=Coupling(sig.kind, tuple(int(c) for c in cols), float(sig.rho)),
            price=np.asarray(sig.price, dtype=float),
            anchor=anchor,
            boxes=_boxes(rb, acct, sig, cols, r),
        )
        try:
            return session.solve(acct.frozen, pooled=terms)
        except Infeasible:
            raise InfeasibleError(
                f"account {account}: its share of the pooled limits cannot hold with its own "
                "constraints; loosen the pooled caps or the account's constraints",
                [{"name": POOLED_LIMIT, "relax_by": math.nan}],
            ) from None
        except SolverError as exc:
            raise SolverError(f"account {account}: the pooled solve failed", exc.attempts) from None


class _Rows:
    """Three Series on the rebalancer's own index (its inputs' fast path), refilled per account.

    Each wraps a buffer of its own (no copy), so that an account's inputs cost three array
    copies rather than three new Series; the account's checks copy what they keep.
    """

    def __init__(self, assets: pd.Index) -> None:
        self.bufs = [np.zeros(len(assets)) for _ in range(3)]
        self.series = [pd.Series(b, index=assets, copy=False) for b in self.bufs]

    def fill(self, holdings, target, prices) -> tuple:
        for buf, values in zip(self.bufs, (holdings, target, prices), strict=True):
            if values is not None:
                buf[:] = values
        h, t, p = self.series
        return h, t, (None if prices is None else p)


def _boxes(rb: Rebalancer, acct: Account, sig: Signals, cols: np.ndarray, r: int) -> tuple:
    """The feasibility step's bounds on one account's pooled quantities, as pieces."""
    if sig.lo is None or sig.hi is None:
        return ()
    out = []
    v1, h_w = acct.v1, acct.h_w
    for c, j in enumerate(cols):
        if j in acct.frozen:
            continue
        lo, hi = float(sig.lo[r, c]), float(sig.hi[r, c])
        label = f"{POOLED_LIMIT} [{rb.assets[j]}]"
        if sig.kind == "gross":
            if np.isfinite(hi):
                out.append(TradeBound(POOLED_LIMIT, label, int(j), max(hi, 0.0) / v1))
        elif np.isfinite(lo) or np.isfinite(hi):
            lo_w = h_w[j] + lo / v1 if np.isfinite(lo) else -math.inf
            hi_w = h_w[j] + hi / v1 if np.isfinite(hi) else math.inf
            out.append(Bound(POOLED_LIMIT, label, int(j), lo_w, max(hi_w, lo_w)))
    return tuple(out)


def _trade_bounds(
    rb: Rebalancer, sig: Signals, cols: np.ndarray, r: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """One account's share of the pooled caps as limits on its trades (currency, (n,) each),
    for the rounding to whole lots; None before the feasibility step."""
    if sig.lo is None or sig.hi is None:
        return None
    lo, hi = np.full(rb.n, -np.inf), np.full(rb.n, np.inf)
    for c, j in enumerate(cols):
        share_lo, share_hi = float(sig.lo[r, c]), float(sig.hi[r, c])
        if sig.kind == "gross":
            lo[j], hi[j] = -max(share_hi, 0.0), max(share_hi, 0.0)
        else:
            lo[j], hi[j] = share_lo, share_hi
    return lo, hi


def _settle(rb: Rebalancer, acct: Account, sol: Outcome, capped: np.ndarray) -> None:
    """Clean the solution's trades as the plan will, the rounding put off the capped assets.

    The plan (:func:`optimizer.rebalance.plan.final_trades`) drops trades below
    ``DUST`` of the value and puts what the trades miss of the cash flow on the
    largest trade, which may be a capped asset; done here first, on the largest
    trade of an uncapped asset, it leaves the plan nothing to move.
    """
    layout = sol.extra["cols"]
    v1, h_w = acct.v1, acct.h_w
    w = layout.weights_of(sol.x)
    t = (w - h_w) * v1
    t[np.abs(t) < DUST * max(1.0, abs(v1))] = 0.0
    t[sorted(rb.untradeable)] = 0.0
    free = np.ones(rb.n, dtype=bool)
    free[capped] = False
    free[sorted(acct.frozen)] = False
    if np.any(t[free] != 0):
        j = int(np.flatnonzero(free)[np.argmax(np.abs(np.where(free, t, 0.0))[free])])
        t[j] += rb.budget * v1 - acct.v0 - t.sum()
    x = sol.x.copy()
    x[layout.weights.start : layout.weights.stop] = h_w + t / v1
    sol.x = x


def _plan_trades(plan: RebalancePlan, assets: pd.Index) -> np.ndarray:
    """The signed trades of a plan (currency, buys positive), shape (n,)."""
    tr = plan.trades
    signed = np.where(tr["side"].to_numpy() == "buy", 1.0, -1.0) * tr["notional"].to_numpy()
    out = pd.Series(0.0, index=assets)
    out.loc[tr.index] = signed
    return out.to_numpy()


def own_objective(rb: Rebalancer, acct: Account, t: np.ndarray) -> float:
    """An account's own objective at trades ``t`` (currency): tracking and costs.

    ``V1 (lambda (w - target)' C (w - target) + penalty sum |t| / V1)`` plus the
    proportional and impact costs of the account's :class:`CostModel` (the
    objective of :mod:`optimizer.rebalance` in currency; fixed costs excluded).
    """
    v1 = acct.v1
    parts = rb.rc.breakdown(t)
    tracking = 0.0 if v1 == 0 else rb.lam * v1 * rb.risk.variance((acct.h + t) / v1 - acct.tau)
    return float(
        tracking
        + rb.penalty * np.abs(t).sum()
        + parts["proportional"].sum()
        + parts["impact"].sum()
    )


__all__ = ["AccountBook", "BookStep", "Signals", "own_objective"]
