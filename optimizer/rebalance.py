"""Cost-aware rebalancing: current holdings plus a target become trades worth their cost.

With post-trade value ``V1 = V0 + cash_flow`` and trades ``t`` (currency), the
post-trade weights are ``w = (h + t) / V1``. In weight units (``b - s = t / V1``,
buys ``b`` and sells ``s`` non-negative) the optimizer minimizes

    tracking_weight * (w - target)' C (w - target)      ex-ante tracking variance
    + sum(buy_rate * b + sell_rate * s)                  proportional costs
    + sum(k_i * |b_i - s_i|^1.5),  k_i = impact_i sqrt(V1)   market impact
    + turnover_penalty * sum(b + s)

subject to the policy's constraints on ``w`` (fully invested and long-only by
default) and the trading constraints below. Costs are fractions of ``V1``.

``tracking_weight`` is what cutting the tracking error from one point (1%) to
zero is worth, in basis points of cost: ``tracking_weight * 0.01**2`` equals
``tracking_weight`` basis points. The default, 100, pays up to 100 bps to
remove a full point of tracking error, about 4 bps for the last 0.2 points.

Fixed ticket costs are not convex; a two-stage method handles them: solve the
convex problem, compute each trade's benefit (the objective increase when that
asset alone is frozen and the rest re-optimized), freeze the trade whose
benefit falls furthest below its ticket, and repeat until every remaining trade
is worth its ticket. Of the solutions visited
(the convex one with every ticket paid included) and trading nothing, when the
constraints allow it, the one with the least objective plus tickets is kept.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from optimizer import diagnosis
from optimizer.constraints import Bound, LongOnly, Norm1
from optimizer.core import (
    FEAS_TOL,
    _piece_key,
    add_risk,
    chain_of,
    lower_pieces,
    resolved,
    risk_model,
    solve_program,
    verify,
)
from optimizer.costs import CostModel, ResolvedCosts
from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.program import Builder, Program, Tag
from optimizer.trades import RebalancePlan, _iso, _series
from optimizer.universe import Universe

DEFAULT_TRACKING_WEIGHT = 100.0
_COLUMNS = pd.Index(
    ["notional", "quantity", "price", "cost_proportional", "cost_impact", "cost_fixed", "est_cost"]
)
_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 16


class _Compiled:
    """A rebalance program whose holdings, target and costs are filled per account."""

    def __init__(self, prog: Program, n: int, impact: bool, participation_rows: np.ndarray):
        self.prog = prog
        self.n = n
        self.impact = impact
        self.participation_rows = participation_rows

    def instance(self, h_w, q_w, buy, sell, k, part_caps) -> Program:
        n = self.n
        b = self.prog.b.copy()
        b[:n] = h_w
        if len(self.participation_rows):
            b[self.participation_rows] = part_caps
        q = self.prog.q.copy()
        q[:n] = q_w
        q[n : 2 * n] += buy
        q[2 * n : 3 * n] += sell
        if self.impact:
            q[3 * n : 4 * n] = k
        return Program(
            self.prog.P, q, self.prog.A, b, self.prog.cones, self.prog.tags, self.prog.P_upper
        )


def _compile(rm, n, lam, penalty, impact, frozen, pieces, max_turnover, participation):
    key = (
        id(rm),
        n,
        lam,
        penalty,
        impact,
        tuple(sorted(frozen)),
        tuple(_piece_key(p) for p in pieces),
        max_turnover,
        participation is not None,
    )
    hit = _CACHE.get(key)
    if hit is not None and hit[1] is rm:
        _CACHE.move_to_end(key)
        return hit[0]
    b = Builder(n)
    u = b.var(n)
    v = b.var(n)
    eye = sp.eye(n, format="csr")
    cols = np.concatenate([np.arange(n), np.arange(u, u + n), np.arange(v, v + n)])
    # rows 0..n-1 of the zero cone: w - b + s = h / V1 (holdings enter here)
    b.add("zero", sp.hstack([eye, -eye, eye]), cols, np.zeros(n), homogeneous=False)
    both = np.concatenate([np.arange(u, u + n), np.arange(v, v + n)])
    b.add("nonneg", -sp.eye(2 * n), both, np.zeros(2 * n))
    if frozen:
        idx = np.array(sorted(frozen))
        m = len(idx)
        mat = sp.csr_matrix(
            (np.ones(2 * m), (np.arange(2 * m), np.r_[idx, n + idx])), (2 * m, 2 * n)
        )
        b.add("zero", mat, both, np.zeros(2 * m))
    if impact:
        s = b.var(n)
        rows = np.concatenate([3 * np.arange(n), 3 * np.arange(n) + 2, 3 * np.arange(n) + 2])
        cc = np.concatenate([s + np.arange(n), u + np.arange(n), v + np.arange(n)])
        m = sp.csr_matrix((-np.ones(3 * n), (rows, cc)), shape=(3 * n, b.nx))
        b.add("pow", m, np.arange(b.nx), np.tile([0.0, 1.0, 0.0], n), param=2.0 / 3.0)
    if max_turnover is not None:
        b.add(
            "nonneg",
            np.ones((1, 2 * n)),
            both,
            [max_turnover],
            [Tag("turnover cap", "turnover cap", "max")],
        )
    part_rows = np.zeros(0, dtype=int)
    if participation is not None:
        mat = sp.hstack([eye, eye], format="csr")
        tags = [Tag("participation limit", f"participation limit [{i}]", "max") for i in range(n)]
        b.add("nonneg", mat, both, np.ones(n), tags)
    add_risk(b, rm, lam, n)
    lower_pieces(b, pieces, n, rm)
    prog = b.build()
    if participation is not None:
        part_rows = np.array(
            [
                i
                for i, t in enumerate(prog.tags)
                if t is not None and t.name == "participation limit"
            ]
        )
    compiled = _Compiled(prog, n, impact, part_rows)
    _CACHE[key] = (compiled, rm)
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled


def _vector(values, assets: pd.Index, what: str, *, fill: float | None = None) -> np.ndarray:
    if isinstance(values, pd.Series) and values.index.equals(assets):  # the batch fast path
        out = values.to_numpy(dtype=float)
        if np.isfinite(out).all() or fill is not None and np.isnan(fill):
            return out
    s = _series(values, what)
    extra = s.index.difference(assets)
    if len(extra):
        raise InputError(f"{what} names unknown assets: {', '.join(map(str, extra))}")
    if fill is None:
        missing = assets.difference(s.index)
        if len(missing):
            raise InputError(f"{what} is missing for {', '.join(map(str, missing))}")
    return s.reindex(assets, fill_value=0.0 if fill is None else fill).to_numpy(dtype=float)


def rebalance(
    holdings: pd.Series,
    target: pd.Series,
    *,
    cov,
    costs: CostModel | None = None,
    prices: pd.Series | None = None,
    holdings_as: str = "value",
    cash_flow: float = 0.0,
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
    as_of=None,
    portfolio_id: str | None = None,
    currency: str | None = None,
) -> RebalancePlan:
    """Trades that move ``holdings`` toward ``target`` when they are worth their cost.

    Parameters
    ----------
    holdings : pandas.Series
        Market values by asset (currency), or quantities with ``holdings_as="quantity"``
        and ``prices``. Assets of the covariance missing here hold nothing.
    target : pandas.Series
        Target weights (decimals) summing to the budget (1 unless a ``Budget`` is given).
    cov : pandas.DataFrame (n x n) or FactorCovariance
        Annualized covariance; fixes the assets and their order.
    costs : CostModel, optional
        Proportional, impact and fixed costs; none by default.
    prices : pandas.Series, optional
        Price per unit; turns notionals into quantities (rounded to ``lot_size``).
    cash_flow : float
        Currency to invest (> 0) or to raise (< 0); the trades sum to it exactly.
    constraints, universe
        Policy constraints on the post-trade weights, as for allocation.
    tracking_weight : float
        Basis points of cost worth paying to cut tracking error from 1 point to 0
        (module docstring); default 100.
    turnover_penalty : float
        Extra cost per unit of traded weight (decimal, 0.001 is 10 bps).
    max_turnover : float, optional
        Cap on traded notional over the post-trade value (buys plus sells).
    no_trade_bands : float or mapping asset -> float, optional
        Assets whose weight is within the band of target are not traded; the
        others are brought back inside the band (``band_to="edge"``, a hard
        limit) or traded freely toward target (``band_to="target"``).
    min_trade : float
        Smallest trade (currency); smaller trades are dropped unless dropping
        them would break a constraint, in which case they are kept at this size.
    lot_size : float or mapping, optional
        Round quantities to multiples of this (1 for whole shares); needs ``prices``.
    untradeable : sequence of str
        Assets that stay as they are (private equity, hedge funds).
    participation : float, optional
        Trade at most this fraction of the average daily value (``costs.adv``).
    as_of, portfolio_id, currency
        Carried into the orders.

    Returns
    -------
    RebalancePlan

    Raises
    ------
    InputError
        Unknown assets, negative holdings in a long-only account, a target not
        summing to the budget, missing prices for an asset that must trade, NaN.
    InfeasibleError
        A withdrawal above what the tradeable assets hold (the message says how
        much can be raised), or constraints that cannot hold after trading.
    """
    t0 = time.perf_counter()
    rm = risk_model(cov)
    assets = rm.assets
    n = len(assets)
    if universe is not None:
        universe.check_assets(assets, what="the covariance")
    costs = costs or CostModel()
    if not isinstance(costs, CostModel):
        raise InputError("costs= must be an optimizer.rebalance.CostModel")
    if holdings_as not in ("value", "quantity"):
        raise InputError(f"holdings_as must be 'value' or 'quantity', got {holdings_as!r}")
    if band_to not in ("edge", "target"):
        raise InputError(f"band_to must be 'edge' or 'target', got {band_to!r}")
    price = None if prices is None else _vector(prices, assets, "prices", fill=np.nan)
    if price is not None:
        bad = assets[(price <= 0) & np.isfinite(price)]
        if len(bad):
            raise InputError(f"prices must be positive: {', '.join(map(str, bad))}")
    h = _vector(holdings, assets, "holdings", fill=0.0)
    if holdings_as == "quantity":
        if price is None:
            raise InputError("holdings_as='quantity' needs prices=")
        held = (h != 0) & ~np.isfinite(price)
        if held.any():
            raise InputError(f"prices missing for held assets: {', '.join(assets[held])}")
        h = h * np.nan_to_num(price)
    tau = _vector(target, assets, "target", fill=0.0)
    flow = float(cash_flow)
    if not math.isfinite(flow):
        raise InputError("cash_flow must be finite")
    lam = float(tracking_weight)
    if not math.isfinite(lam) or lam < 0:
        raise InputError(f"tracking_weight must be non-negative, got {tracking_weight!r}")
    cset = resolved(constraints, assets, universe)
    budget = cset.budget if cset.budget is not None else 1.0
    if abs(tau.sum() - budget) > 1e-6:
        raise InputError(f"target weights sum to {tau.sum():.6g}, not the budget {budget:.6g}")
    long_only = any(isinstance(c, LongOnly) for c in cset.constraints)
    if long_only and (h < -1e-9).any():
        bad = assets[h < -1e-9]
        raise InputError(f"negative holdings in a long-only account: {', '.join(bad)}")
    if long_only and (tau < -1e-12).any():
        bad = assets[tau < -1e-12]
        raise InputError(f"negative target weights in a long-only account: {', '.join(bad)}")
    v0 = float(h.sum())
    v1 = v0 + flow
    fixed_idx = set()
    for a in untradeable:
        if str(a) not in set(assets):
            raise InputError(f"untradeable names unknown asset {a!r}")
        fixed_idx.add(int(assets.get_loc(str(a))))
    liquid = float(sum(h[i] for i in range(n) if i not in fixed_idx))
    if flow < 0 and -flow > liquid + 1e-9:
        raise InfeasibleError(
            f"the withdrawal of {-flow:,.2f} is more than the tradeable assets hold: at most "
            f"{liquid:,.2f} can be raised",
            [{"name": "cash_flow", "relax_by": -flow - liquid, "max_raise": liquid}],
        )
    if v1 <= 0:
        raise InputError(
            f"the portfolio value after the cash flow is {v1:,.2f}; it must be positive"
        )
    rc = _resolved_costs(costs, rm, universe)
    h_w = h / v1
    extra: list = []
    frozen = set(fixed_idx)
    if no_trade_bands is not None:
        band = _band_vector(no_trade_bands, assets)
        w0 = h / v0 if v0 > 0 else np.zeros(n)
        for i in range(n):
            if i in fixed_idx or not np.isfinite(band[i]):
                continue
            if abs(w0[i] - tau[i]) <= band[i] + 1e-12 and flow == 0:
                frozen.add(i)
            elif band_to == "edge":
                extra.append(
                    Bound(
                        "no-trade band",
                        f"no-trade band [{assets[i]}]",
                        i,
                        tau[i] - band[i],
                        tau[i] + band[i],
                    )
                )
    part_caps = None
    if participation is not None:
        if rc.adv is None:
            raise InputError("participation= needs CostModel(adv=...)")
        part_caps = float(participation) * rc.adv / v1
    pieces = list(cset.pieces) + extra
    diagnosis.precheck(pieces, n, budget=cset.budget, assets=assets)
    chain = chain_of(solvers)
    q_w = -2.0 * lam * rm.times(tau)  # linear part of lam * (w - tau)'C(w - tau)
    k = rc.impact * math.sqrt(v1)
    state = _State(
        rm, n, lam, turnover_penalty, rc, pieces, max_turnover, part_caps, chain, h_w, q_w, k, tau
    )
    t1 = time.perf_counter()
    sol = state.solve(frozen)
    notes: list[str] = []
    # two-stage fixed costs
    if rc.fixed > 0:

        def with_tickets(s, fz) -> float:  # convex objective plus the tickets, fractions of V1
            t = (s.x[:n] - h_w) * v1
            dust = 1e-6 * max(1.0, abs(v1))  # trades below this are dropped from the plan
            return s.objective + rc.fixed / v1 * sum(
                i not in fz and abs(t[i]) >= dust for i in range(n)
            )

        # drop one trade at a time, the one whose benefit falls furthest below its
        # ticket (dropping several at once can cost more than their tickets save);
        # keep the best solution seen, the convex one with every ticket paid included
        best = (with_tickets(sol, frozen), sol, frozen, len(notes))
        for _ in range(n + 1):
            trades = (sol.x[:n] - h_w) * v1
            traded = [i for i in range(n) if i not in frozen and abs(trades[i]) > 1e-6]
            options = []
            for i in traded:
                try:
                    alt = state.solve(frozen | {i})
                except (InfeasibleError, SolverError):
                    continue
                options.append((alt.objective - sol.objective - rc.fixed / v1, i, alt))
            if not options:
                break
            margin, i, alt = min(options, key=lambda o: o[0])
            if margin >= 0:
                break
            sol, frozen = alt, frozen | {i}
            notes.append(f"not worth a ticket of {rc.fixed:,.2f}: {assets[i]}")
            if with_tickets(sol, frozen) < best[0]:
                best = (with_tickets(sol, frozen), sol, frozen, len(notes))
        _, sol, frozen, kept = best
        del notes[kept:]
        # trading nothing pays no ticket: take it when it is allowed and cheaper
        if all(c["ok"] for c in verify(pieces, h_w, rm).values()):
            if lam * rm.variance(h_w - tau) < best[0] - 1e-9:
                try:
                    sol, frozen = state.solve(set(range(n))), set(range(n))
                    notes.append(f"no trade is worth a ticket of {rc.fixed:,.2f}")
                except (InfeasibleError, SolverError):
                    pass
    # minimum trade size
    if min_trade > 0:
        # trades kept at the minimum size stay so, and the others are checked again:
        # the re-solve can shrink a trade that was large enough before
        floors: dict[int, float] = {}
        for _ in range(n + 1):
            trades = (sol.x[:n] - h_w) * v1
            small = [
                i
                for i in range(n)
                if i not in frozen and i not in floors and 1e-6 < abs(trades[i]) < min_trade
            ]
            if not small:
                break
            try:
                sol = state.solve(frozen | set(small), floors=floors)
                frozen = frozen | set(small)
                notes.append(f"trades below {min_trade:,.2f} dropped: {', '.join(assets[small])}")
            except InfeasibleError:
                floors.update({i: math.copysign(min_trade / v1, trades[i]) for i in small})
                sol = state.solve(frozen, floors=floors)
                notes.append(
                    f"trades kept at the minimum size to stay feasible: {', '.join(assets[small])}"
                )
    t2 = time.perf_counter()
    w = sol.x[:n]
    trades = (w - h_w) * v1
    trades[np.abs(trades) < 1e-6 * max(1.0, abs(v1))] = 0.0
    trades[list(fixed_idx)] = 0.0
    # a withdrawal or contribution is met exactly: put rounding dust on the largest trade.
    # The trades sum to budget * V1 - V0: the cash flow when fully invested (Budget(1)),
    # less the cash a smaller budget keeps out of the assets.
    net = budget * v1 - v0
    if np.any(trades != 0):
        j = int(np.argmax(np.abs(trades)))
        trades[j] += net - trades.sum()
    quantity = np.full(n, np.nan)
    residual = 0.0
    if price is not None:
        need = (trades != 0) & ~np.isfinite(price)
        if need.any():
            raise InputError(
                f"prices missing for assets that must trade: {', '.join(assets[need])}"
            )
        if lot_size is not None:
            trades, residual = _round_lots(
                trades,
                price,
                _lot_vector(lot_size, assets),
                net,
                held=h if long_only else None,
                cap=None if part_caps is None else part_caps * v1,
            )
            notes.append(f"rounded to whole lots; uninvested cash {residual:,.2f}")
        quantity = np.where(trades != 0, trades / np.where(np.isfinite(price), price, 1.0), np.nan)
    elif lot_size is not None:
        raise InputError("lot_size= needs prices=")
    after = h + trades
    w_after = after / v1
    tol = FEAS_TOL
    if lot_size is not None and price is not None:
        lots = _lot_vector(lot_size, assets) * np.nan_to_num(price)
        tol = max(FEAS_TOL, float(lots.max()) / v1 + 1e-9)
    checks = verify(pieces, w_after, rm, tol=tol)
    bad = [name for name, c in checks.items() if not c["ok"]]
    if bad:
        raise SolverError(f"the trades fail verification of {', '.join(bad)}", state.attempts())
    parts = rc.breakdown(trades)
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
    # one float block, then the side column: far cheaper than a dict of columns per account
    table = pd.DataFrame(numbers, index=pd.Index(assets[traded], name="asset"), columns=_COLUMNS)
    table.insert(0, "side", np.where(trades[traded] > 0, "buy", "sell"))
    w_before = h / v0 if v0 > 0 else np.zeros(n)
    te_before = math.sqrt(rm.variance(w_before - tau))
    te_after = math.sqrt(rm.variance(w_after - tau))
    t3 = time.perf_counter()
    return RebalancePlan(
        trades=table,
        weights_before=pd.Series(w_before, index=assets, name="weight_before"),
        weights_after=pd.Series(w_after, index=assets, name="weight_after"),
        target=pd.Series(tau, index=assets, name="target"),
        drift=pd.Series(w_before - tau, index=assets, name="drift"),
        tracking_error_before=te_before,
        tracking_error_after=te_after,
        turnover=float(np.abs(trades).sum() / v0) if v0 > 0 else float("nan"),
        total_cost=float(est.sum()),
        costs={k_: float(v_.sum()) for k_, v_ in parts.items()},
        value_before=v0,
        value_after=v1,
        cash_flow=flow,
        cash_residual=residual,
        status=sol.status,
        solver=sol.solver,
        attempts=tuple(state.attempts()),
        notes=tuple(notes),
        checks=checks,
        timings={"compile": t1 - t0, "solve": t2 - t1, "other": t3 - t2},
        as_of=_iso(as_of),
        portfolio_id=portfolio_id,
        currency=currency,
    )


_COST_CACHE: OrderedDict = OrderedDict()


def _resolved_costs(costs: CostModel, rm, universe) -> ResolvedCosts:
    """``costs.resolve`` for this covariance, kept while the same objects are in use."""
    key = (id(costs), id(rm), id(universe))
    hit = _COST_CACHE.get(key)
    if hit is not None and hit[0] is costs and hit[1] is rm and hit[2] is universe:
        return hit[3]
    rc = costs.resolve(rm.assets, universe, np.diag(rm.dense) if costs.impact > 0 else None)
    _COST_CACHE[key] = (costs, rm, universe, rc)
    if len(_COST_CACHE) > _CACHE_SIZE:
        _COST_CACHE.popitem(last=False)
    return rc


class _State:
    """Everything fixed for one account; solves it for a set of frozen assets."""

    def attempts(self) -> list[dict]:
        """Every solver attempt so far."""
        return [o.attempt() for o in self.outcomes]

    def __init__(
        self,
        rm,
        n,
        lam,
        penalty,
        rc: ResolvedCosts,
        pieces,
        max_turnover,
        part_caps,
        chain,
        h_w,
        q_w,
        k,
        tau,
    ):
        self.rm, self.n, self.lam, self.penalty = rm, n, lam, float(penalty)
        self.rc, self.pieces, self.max_turnover = rc, pieces, max_turnover
        self.part_caps, self.chain = part_caps, chain
        self.h_w, self.q_w, self.k, self.tau = h_w, q_w, k, tau
        self.impact = bool(np.any(rc.impact > 0))
        self.outcomes: list = []
        self.const = lam * rm.variance(tau)

    def solve(self, frozen: set, floors: dict | None = None):
        n = self.n
        pieces = list(self.pieces)
        if floors:
            # keep a trade of at least the minimum size in its direction (convex once the sign is fixed)
            for i, f in floors.items():
                lo, hi = (self.h_w[i] + f, math.inf) if f > 0 else (-math.inf, self.h_w[i] + f)
                pieces.append(
                    Bound("minimum trade", f"minimum trade [{self.rm.assets[i]}]", i, lo, hi)
                )
        comp = _compile(
            self.rm,
            n,
            self.lam,
            self.penalty,
            self.impact,
            frozen,
            pieces,
            self.max_turnover,
            self.part_caps,
        )
        prog = comp.instance(
            self.h_w,
            self.q_w,
            self.rc.buy + self.penalty,
            self.rc.sell + self.penalty,
            self.k,
            self.part_caps,
        )

        def accept(out) -> bool:
            return all(c["ok"] for c in verify(pieces, out.x[:n], self.rm).values())

        winner, outs = solve_program(prog, chain=self.chain, accept=accept)
        self.outcomes.extend(outs)
        if winner is None:
            statuses = {o.status for o in outs}
            if "infeasible" in statuses:
                # the frozen assets are part of the problem: without them the elastic
                # check finds the pieces feasible and reports "numerical trouble"
                held = [
                    Bound("held as is", f"held as is [{self.rm.assets[i]}]", i, *[self.h_w[i]] * 2)
                    for i in sorted(frozen)
                ]
                # so are the trading limits, which are rows of the program but not pieces
                if self.max_turnover is not None:
                    held.append(
                        Norm1(
                            "turnover cap",
                            "turnover cap",
                            self.h_w,
                            np.ones(n),
                            float(self.max_turnover),
                        )
                    )
                if self.part_caps is not None:
                    held.extend(
                        Bound(
                            "participation limit",
                            f"participation limit [{self.rm.assets[i]}]",
                            i,
                            self.h_w[i] - self.part_caps[i],
                            self.h_w[i] + self.part_caps[i],
                        )
                        for i in range(n)
                    )
                err = diagnosis.elastic(
                    pieces + held, n, self.rm, attempts=[o.attempt() for o in outs]
                )
                if isinstance(err, InfeasibleError) and frozen:
                    err = InfeasibleError(
                        str(err) + " (with the untradeable or frozen assets held as they are)",
                        err.diagnosis,
                    )
                raise err
            raise SolverError("every solver in the chain failed", [o.attempt() for o in outs])
        winner.objective += self.const
        return winner


def _band_vector(bands, assets: pd.Index) -> np.ndarray:
    if isinstance(bands, int | float) and not isinstance(bands, bool):
        if bands < 0:
            raise InputError("no_trade_bands must be non-negative")
        return np.full(len(assets), float(bands))
    s = _series(bands, "no_trade_bands")
    extra = s.index.difference(assets)
    if len(extra):
        raise InputError(f"no_trade_bands names unknown assets: {', '.join(map(str, extra))}")
    if (s < 0).any():
        raise InputError("no_trade_bands must be non-negative")
    return s.reindex(assets).to_numpy(dtype=float)


def _lot_vector(lot, assets: pd.Index) -> np.ndarray:
    if isinstance(lot, int | float) and not isinstance(lot, bool):
        v = np.full(len(assets), float(lot))
    else:
        v = _series(lot, "lot_size").reindex(assets, fill_value=1.0).to_numpy(dtype=float)
    if (v <= 0).any():
        raise InputError("lot_size must be positive")
    return v


def _round_lots(trades, price, lot, flow, held=None, cap=None) -> tuple[np.ndarray, float]:
    """Round trades to whole lots without spending cash the portfolio does not have.

    Each trade is rounded to the nearest lot; while the rounded trades spend
    more than ``flow`` (sells plus contribution), the buy whose rounding added
    the most is cut by one lot; while the cash left would buy a whole lot, the
    trade whose rounding took the most gets one more lot. The leftover cash is
    returned (>= 0, less than a lot of every asset that can still take one).
    With ``held`` (the positions of a long-only account, currency), a sell
    never exceeds the position; with ``cap`` (currency), no trade exceeds its
    participation limit: such trades are rounded toward zero instead.
    """
    unit = lot * np.where(np.isfinite(price), price, 0.0)
    out = trades.copy()
    live = (trades != 0) & (unit > 0)
    out[live] = np.round(trades[live] / unit[live]) * unit[live]
    k = len(trades)
    hi = np.full(k, np.inf) if cap is None else cap * (1 + 1e-12) + 1e-9
    lo = -hi
    if held is not None:
        lo = np.maximum(lo, -(held * (1 + 1e-12) + 1e-9))
    safe = np.where(unit > 0, unit, 1.0)
    above, below = live & (out > hi), live & (out < lo)
    out[above] = np.floor(hi[above] / safe[above]) * unit[above]
    out[below] = -np.floor(-lo[below] / safe[below]) * unit[below]
    for _ in range(10 * k + 10):
        residual = flow - out.sum()
        if residual >= -1e-9:
            break
        buys = np.flatnonzero((out > 0) & live)
        if buys.size == 0:
            # sells rounded to zero count too; none may go past its limits
            sells = np.flatnonzero((trades < 0) & live & (out - unit >= lo))
            if sells.size == 0:
                break
            j = sells[np.argmax(unit[sells])]
            out[j] -= unit[j]
            continue
        excess = out[buys] - trades[buys]
        j = buys[int(np.argmax(excess))]
        out[j] -= unit[j]
    else:
        residual = flow - out.sum()
    if residual >= -1e-9:
        # idle cash: whole lots more where that brings a trade closer to the optimizer's
        # (after cuts above); while more than a lot of the dearest asset would stay idle
        # (more than the verification allows), a lot more of any trade with room
        biggest = float(unit[live].max(initial=0.0))
        for _ in range(10 * k + 10):
            short = trades - out
            ok = live & (unit <= residual + 1e-9) & (out + unit <= hi)
            pick = ok & (short >= unit / 2)
            if not pick.any():
                if residual < biggest - 1e-9:
                    break
                pick = ok
            if not pick.any():
                break
            j = int(np.flatnonzero(pick)[np.argmax(short[pick])])
            m = min(np.floor(short[j] / unit[j] + 0.5), np.floor((residual + 1e-9) / unit[j]))
            if np.isfinite(hi[j]):
                m = min(m, np.floor((hi[j] - out[j]) / unit[j]))
            out[j] += max(m, 1.0) * unit[j]
            residual = flow - out.sum()
        return out, float(max(residual, 0.0))
    raise InputError("could not round the trades to whole lots within the cash available")


def rebalance_batch(holdings: pd.DataFrame, target, **kwargs) -> dict[str, RebalancePlan]:
    """Rebalance many accounts that share a structure (one compiled program).

    Parameters
    ----------
    holdings : pandas.DataFrame
        One row per account (index: account id), one column per asset
        (market values, currency).
    target : pandas.Series or pandas.DataFrame
        One target for all accounts, or one row per account.
    **kwargs
        As for :func:`rebalance` (``cov``, ``costs``, ``constraints``, ...);
        ``cash_flow`` may be a Series by account.

    Returns
    -------
    dict
        Account id -> :class:`RebalancePlan`. An account that fails raises its
        error with the account id added to the message.
    """
    if not isinstance(holdings, pd.DataFrame):
        raise InputError("holdings must be a DataFrame, one row per account")
    flows = kwargs.pop("cash_flow", 0.0)
    plans = {}
    for account, row in holdings.iterrows():
        tgt = target.loc[account] if isinstance(target, pd.DataFrame) else target
        flow = flows.loc[account] if isinstance(flows, pd.Series) else flows
        try:
            plans[account] = rebalance(
                row, tgt, cash_flow=flow, portfolio_id=str(account), **kwargs
            )
        except InfeasibleError as exc:
            raise InfeasibleError(f"account {account}: {exc}", exc.diagnosis) from exc
        except SolverError as exc:
            raise SolverError(f"account {account}: {exc}", exc.attempts) from exc
        except InputError as exc:
            raise InputError(f"account {account}: {exc}") from exc
    return plans
