"""A tax-aware plan: its inputs checked, the lot-level solve, lot sales and the tax report.

:func:`tax_plan` is what ``Rebalancer.plan(..., lots=, tax=, recent=, substitutes=,
harvest=)`` runs (:mod:`optimizer.rebalance.tax` has the program and the method).

**Lot sales, exact and clean.** The solve decides how much of each asset's
short- and long-term lots is sold; within a term the lots go in order of
increasing gain (the highest basis first), so at most one lot per term is sold
in part. The plan's rounding (to ``lot_size`` or whole units) may change how much
of an asset is sold: the difference goes first to the terms the solve sold from,
at the least tax per unit of the next lot (to sell more), or comes from the term
whose last lot sold costs the most (to sell less). A term's sale below
:data:`DUST` of the account's value (the solver's accuracy) or below the asset's
trading unit is dust: dropped, or folded into the other term's sale; a dust end
of a term's sale is brought up to the tolerance with some of the largest lot sold
before it. When these moves would break a gains budget that binds, the solve's
own split is kept. So each asset's lot sales add up to its trade's quantity
exactly (to float rounding), and no lot sale is dust unless the whole trade is (or
the lots themselves are: a lot smaller than the tolerance may be sold whole).

**Wash sales.** A buy of asset A within ``wash_days`` before ``as_of`` (the plan's
date, today by default) makes any loss realized now on A a wash sale: the loss
earns no tax value (``f_k`` clipped at 0) and its row of ``lot_sales`` says
``wash`` True. A sale of A at a loss within the window blocks buying A now.
Without any tax (:attr:`TaxModel.zero`: no rate, loss value or budget) the rule
has nothing to protect and is not applied: the plan is the tax-blind one.

**Harvesting.** ``harvest=True`` values a net realized loss at ``loss_rate``
(0 otherwise). ``substitutes`` (asset -> substitutes, all in the covariance)
names assets that may stand in for an asset sold at a loss: with harvesting a
substitute may be bought (buying it does not trip the wash-sale rule, being
another security), and tracking, through the covariance, prices how close it
stands in; without harvesting (and with some tax) a substitute with no target
weight is not bought. Which substitute replaces which sale is not tied: the rule
"buy a substitute only when its asset is sold at a loss" is not convex, and is
left to the caller's map (name substitutes only for assets worth harvesting).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.rebalance.account import Account
from optimizer.rebalance.fixed import nonconvex_steps
from optimizer.rebalance.plan import assemble, liquidation
from optimizer.rebalance.session import Session
from optimizer.rebalance.tax import FREE, Groups, LotData, TaxHook, lot_solve
from optimizer.rebalance.taxlots import RecentTrades, TaxLots, TaxModel, as_date
from optimizer.trades import RebalancePlan
from optimizer.verify import FEAS_TOL

if TYPE_CHECKING:
    from optimizer.rebalance.rebalancer import Rebalancer

#: Relative tolerance of the lots' total quantity against the holdings.
QTY_RTOL = 1e-6
#: A lot sale below this fraction of the account's value (the solver's accuracy, like
#: :data:`~optimizer.verify.FEAS_TOL`) or below the asset's trading unit is dust: it is
#: folded into the lots sold most of (:func:`split_sells`).
DUST = 1e-7


@dataclasses.dataclass(frozen=True, eq=False)
class TaxInputs:
    """A tax-aware plan's inputs, checked (:func:`tax_inputs`)."""

    lots: TaxLots
    model: TaxModel
    as_of: dt.date
    pos: np.ndarray  # (K,) asset position of each lot
    short: np.ndarray  # (K,) short-term lots
    wash_assets: frozenset  # positions bought within the window (losses disallowed)
    blocked: frozenset  # positions sold at a loss within the window (no buy)
    no_buy: np.ndarray  # (n,) assets not bought (blocked, substitutes without harvest)
    harvest: bool


def tax_inputs(
    rb: Rebalancer, acct: Account, lots, tax, recent, substitutes, harvest, as_of
) -> TaxInputs:
    """Check a tax-aware plan's inputs against the rebalancer and the account.

    Raises
    ------
    InputError
        Lots of an unknown asset, lots whose quantities differ from the holdings
        (asset and both quantities named), no prices, a price missing for an asset
        with lots, a substitute not in the covariance, a bad ``tax``/``recent``.
    """
    assets, n = rb.assets, rb.n
    if lots is None:
        raise InputError("a tax-aware plan needs lots= (a TaxLots or a DataFrame of lots)")
    if not isinstance(lots, TaxLots | pd.DataFrame):
        raise InputError("lots= must be a TaxLots or a DataFrame (asset, lot_id, quantity, ...)")
    lots = TaxLots.from_frame(lots)
    model = TaxModel() if tax is None else tax
    if not isinstance(model, TaxModel):
        raise InputError("tax= must be an optimizer.rebalance.TaxModel")
    if not isinstance(harvest, bool | np.bool_):
        raise InputError(f"harvest= must be True or False, got {harvest!r}")
    if acct.price is None:
        raise InputError(
            "a tax-aware plan (lots=) needs prices=: the gain of a lot is its price less its basis"
        )
    pos = lots.positions(assets)
    if (pos < 0).any():
        bad = lots.asset[int(np.flatnonzero(pos < 0)[0])]
        raise InputError(
            f"lots name the asset {bad!r}, which is not in the covariance: drop its lots or "
            "add it to the covariance"
        )
    price = acct.price
    no_price = np.unique(pos[~np.isfinite(price[pos])])
    if no_price.size:
        raise InputError(f"prices missing for assets with lots: {', '.join(assets[no_price])}")
    have = np.bincount(pos, weights=lots.arrays["quantity"], minlength=n)
    held = np.where(np.isfinite(price), acct.h / np.where(np.isfinite(price), price, 1.0), 0.0)
    off = np.abs(have - held) > QTY_RTOL * np.maximum(1.0, np.abs(held))
    off &= np.bincount(pos, minlength=n) > 0
    for i in np.flatnonzero(off)[:1]:
        raise InputError(
            f"the lots of {assets[i]} hold {have[i]:g} units but the holdings hold "
            f"{held[i]:g}: make the lots' quantities add up to the holding"
        )
    day = dt.date.today() if as_of is None else as_of_date(as_of)
    age = (np.datetime64(day, "D") - lots.arrays["acquired"]).astype(int)
    short = age <= model.long_after_days
    bought: set = set()
    lost: set = set()
    if recent is not None:
        if not isinstance(recent, RecentTrades | pd.DataFrame):
            raise InputError("recent= must be a RecentTrades or a DataFrame of trades")
        # without any tax (TaxModel.zero) the wash-sale rule has nothing to protect: the
        # plan is the tax-blind one
        if not model.zero:
            bought, lost = RecentTrades.from_frame(recent).within(day, model.wash_days)
        else:
            RecentTrades.from_frame(recent)
    known = set(assets)
    no_buy = np.zeros(n, dtype=bool)
    blocked = frozenset(int(assets.get_loc(a)) for a in lost if a in known)
    no_buy[sorted(blocked)] = True
    if substitutes is not None:
        if not isinstance(substitutes, Mapping):
            raise InputError("substitutes= must be a mapping asset -> list of substitute assets")
        for a, subs in substitutes.items():
            subs = [subs] if isinstance(subs, str) else list(subs)
            for name in (a, *subs):
                if str(name) not in known:
                    raise InputError(
                        f"substitutes name {name!r}, which is not in the covariance: add it to "
                        "the covariance (a substitute must be priced by the risk model) or drop it"
                    )
            if not harvest and not model.zero:
                for name in subs:
                    j = int(assets.get_loc(str(name)))
                    no_buy[j] |= acct.tau[j] == 0
    wash = frozenset(int(assets.get_loc(a)) for a in bought if a in known)
    return TaxInputs(lots, model, day, pos, short, wash, blocked, no_buy, bool(harvest))


def as_of_date(as_of) -> dt.date:
    """The plan's date (``as_of`` as a date)."""
    return as_date(as_of, "as_of")


def lot_data(rb: Rebalancer, acct: Account, ti: TaxInputs) -> tuple[LotData, np.ndarray]:
    """The lots in the program's units, and the raw gain fraction per lot, shape (K,)."""
    price = acct.price[ti.pos]
    arr = ti.lots.arrays
    f_raw = 1.0 - arr["basis"] / price
    wash = np.isin(ti.pos, sorted(ti.wash_assets)) & (f_raw < 0)
    m = ti.model
    loss = (m.loss_rate or 0.0) if ti.harvest else 0.0
    v1 = acct.v1
    data = LotData(
        pos=ti.pos,
        cap=arr["quantity"] * price / v1,
        f=np.where(wash, 0.0, f_raw),
        short=ti.short,
        rates=(m.short_rate, m.long_rate, loss),
        gains_w=None if m.gains_budget is None else m.gains_budget / v1,
        short_w=None if m.short_budget is None else m.short_budget / v1,
        no_buy=ti.no_buy,
        free=FREE + float(np.abs(acct.h).sum() / v1 + np.abs(acct.tau).sum()),
    )
    return data, f_raw


def tax_of(short_gains: float, long_gains: float, rates: tuple[float, float, float]) -> float:
    """``max(c N, min(r_s, r_l) N, r_s g_s + r_l g_l)`` (currency in, currency out)."""
    r_s, r_l, c = rates
    net = short_gains + long_gains
    return max(c * net, min(r_s, r_l) * net, r_s * short_gains + r_l * long_gains)


def split_sells(
    sold: np.ndarray,
    ti: TaxInputs,
    solved: np.ndarray,
    data: LotData,
    dust: np.ndarray,
    clean: bool = True,
) -> np.ndarray:
    """Units sold from each lot, shape (K,): ``sold`` (units by asset, shape (n,)) split.

    ``solved`` (units, shape (K,)) holds the solve's lot sales; ``dust`` (units by
    asset, shape (n,)) the smallest lot sale kept. Each asset's lots sum to its
    ``sold`` exactly (to float rounding: 1e-12 relative), and no lot sale is below
    ``dust`` unless the whole sell is (module docstring). ``clean=False``: the solve's split, with no dust
    moved (the moves shift up to ``dust`` between lots: :func:`finish` falls back to it
    when they would break a gains budget that binds).
    """
    gr = Groups(data)
    qty = ti.lots.arrays["quantity"][gr.order]  # units, in order of sale
    rate = np.where(gr.short, data.rates[0], data.rates[1])
    cap = np.add.reduceat(qty, gr.first) if gr.first.size else np.zeros(0)
    # units before each lot in its group, summed group by group (a running sum over every
    # lot would round by the account's total)
    before = np.zeros(qty.size)
    for lo, hi in zip(gr.first, np.r_[gr.first[1:], qty.size], strict=True):
        before[lo + 1 : hi] = np.cumsum(qty[lo : hi - 1])
    took = np.add.reduceat(solved[gr.order], gr.first) if gr.first.size else np.zeros(0)
    a = np.clip(took, 0.0, cap)
    thr = dust[gr.pos]
    if clean:
        a[a < thr] = 0.0  # the solve's dust goes
    want = np.maximum(sold, 0.0)[gr.pos]
    # groups sorted by asset, a short-term group first: an asset's two groups are adjacent
    two = np.flatnonzero(np.r_[gr.pos[1:] == gr.pos[:-1], False])
    single = np.ones(a.size, dtype=bool)
    single[two] = single[two + 1] = False
    a[single] = np.minimum(want[single], cap[single])
    for g in two:
        gs = np.array([g, g + 1])
        b = _adjust(a[gs], float(want[g]), cap[gs], gs, gr, rate, before, qty)
        for _ in range(3 if clean else 0):  # each pass fixes one end of one term
            was = b.copy()
            b = _snap(b, float(want[g]), float(thr[g]), cap[gs], gs, gr, before, qty)
            if np.array_equal(b, was):
                break
        a[gs] = b
    sale = np.clip(a[gr.group] - before, 0.0, qty)
    first = np.zeros(qty.size, dtype=bool)
    first[gr.first] = True
    lot_thr = thr[gr.group]
    for k in np.flatnonzero((sale > 0) & (sale < qty) & (sale < lot_thr) & ~first & clean):
        # a dust end of a group's sale (the lots before it sold whole): brought up to the
        # tolerance with some of the largest lot sold before it, kept above it
        lo = gr.first[gr.group[k]]
        j = lo + int(np.argmax(sale[lo:k]))
        shift = lot_thr[k] - sale[k]
        if sale[j] - shift >= lot_thr[k]:
            sale[j] -= shift
            sale[k] += shift
    units = np.zeros(qty.size)
    units[gr.order] = sale
    return units


def _snap(a, want, thr, cap, gs, gr, before, qty) -> np.ndarray:
    """Move a dust end of one term's sale (``a``, units, two terms) to the other term.

    A term's sale that ends within ``thr`` past a whole lot is cut to that lot's end,
    the other term (when sold) taking the difference; when it cannot (it is sold to its
    end), it gives this term enough to end at least ``thr`` into a lot. Else a sale that leaves
    less than ``thr`` in its last lot sells that lot whole, the other term giving the
    difference when it stays clear of dust. The sum stays ``want`` exactly.
    """
    ends = np.r_[gr.first[1:], gr.slope.size]

    def end(g: int, v: float) -> tuple[float, float, float]:
        """Sale of the lot a sale ``v`` of term ``g`` ends in, its size and its start."""
        lo, hi = gr.first[gs[g]], ends[gs[g]]
        at = lo + min(int(np.searchsorted(before[lo:hi] + qty[lo:hi], v, "left")), hi - lo - 1)
        return v - before[at], qty[at], before[at]

    last = [end(g, a[g]) for g in range(2)]
    for g in range(2):
        r, o = last[g][0], 1 - g
        if not 0 < r < thr:
            continue
        if a[o] > 0 and a[o] + r <= cap[o]:  # never into a term not sold
            a[g] -= r
            a[o] = want - a[g]
            return a
        # the other term is sold to its end: it gives this term enough to end at least
        # ``thr`` into a lot (past any whole lot smaller than that)
        v = a[g]
        for _ in range(gr.slope.size):
            r, size, start = end(g, v)
            if r >= thr or v >= cap[g]:
                break
            nv = min(start + thr if r > 0 else v + thr, cap[g])
            if nv <= v:
                break
            v = nv
        if a[o] - (v - a[g]) >= thr:
            a[g] = v
            a[o] = want - a[g]
            return a
    for g in range(2):
        (r, size, _), o = last[g], 1 - g
        left = size - r
        if r > 0 and 1e-12 * size < left < thr and (a[o] - left >= thr or a[o] == left):
            a[g] += left
            a[o] = want - a[g]
            return a
    return a


def _adjust(a, want, cap, gs, gr, rate, before, qty) -> np.ndarray:
    """Sales ``a`` (units) of the two groups ``gs`` of one asset made to sum to ``want``.

    More is sold from the groups the solve sold from first, at the least tax per unit
    of the next lot; less is sold from the group whose last lot sold costs the most.
    The sum is exact: the last group changed takes ``want`` less the other.
    """
    diff = want - float(a.sum())
    if diff == 0:
        return a
    ends = np.r_[gr.first[1:], gr.slope.size]
    side = "right" if diff > 0 else "left"  # the lot of the next unit sold, or the last

    def marginal(g: int) -> float:
        lo, hi = gr.first[gs[g]], ends[gs[g]]
        at = min(int(np.searchsorted(before[lo:hi] + qty[lo:hi], a[g], side)), hi - lo - 1)
        return float(rate[gs[g]] * gr.slope[lo + at])

    sign = 1.0 if diff > 0 else -1.0
    seq = sorted(range(2), key=lambda g: (a[g] <= 0, sign * marginal(g)))
    last = seq[0]
    for g in seq:
        if diff == 0:
            break
        step = min(cap[g] - a[g], diff) if diff > 0 else -min(a[g], -diff)
        if step != 0:
            a[g] += step
            diff -= step
            last = g
    a[last] = min(max(want - a[1 - last], 0.0), cap[last])
    return a


def _over_budgets(units, ti: TaxInputs, data: LotData, price) -> float:
    """How far lot sales ``units`` exceed the gains budgets (currency, 0 within them)."""
    m = ti.model
    if m.gains_budget is None and m.short_budget is None:
        return 0.0
    taxable = units * price[ti.pos] * data.f
    over = 0.0
    if m.gains_budget is not None:
        over = max(over, float(taxable.sum()) - m.gains_budget)
    if m.short_budget is not None:
        over = max(over, float(taxable[ti.short].sum()) - m.short_budget)
    return max(over, 0.0)


def finish(
    rb: Rebalancer,
    acct: Account,
    plan: RebalancePlan,
    ti: TaxInputs,
    data: LotData,
    f_raw: np.ndarray,
    solved: np.ndarray,
    method: str,
    tol: float,
    search: dict | None = None,
) -> RebalancePlan:
    """The plan with its ``lot_sales``, ``tax``, tax notes and the lot-sales check.

    ``plan.tax`` also holds ``objective`` (currency: tracking, costs and tax of the
    plan) and ``search``: ``solves``, ``nodes`` (of the branch and bound), ``undecided``
    (assets the root relaxation both buys and sells), ``proven``
    (optimal over every direction pattern) and ``gap`` (currency: objective less the
    least open bound of a search stopped at its node limit; 0 otherwise).
    """
    assets = rb.assets
    price = acct.price
    sold = np.zeros(rb.n)
    table = plan.trades
    if len(table):
        is_sell = table["side"].to_numpy() == "sell"
        at = assets.get_indexer(table.index)
        sold[at[is_sell]] = table["quantity"].to_numpy(dtype=float)[is_sell]
    v = acct.v1 if acct.v1 > 0 else acct.v0
    dust = DUST * v / np.where(np.isfinite(price) & (price > 0), price, np.inf)
    if rb.lot is not None:
        dust = np.maximum(dust, np.nan_to_num(rb.lot, nan=0.0, posinf=0.0))
    units = split_sells(sold, ti, solved, data, dust)
    over = _over_budgets(units, ti, data, price)
    if over > tol:  # the dust moves broke a budget that binds: the solve's split, if better
        raw = split_sells(sold, ti, solved, data, dust, clean=False)
        if _over_budgets(raw, ti, data, price) < over:
            units = raw
    lots = ti.lots
    arr = lots.arrays
    p = price[ti.pos]
    gain_raw = units * (p - arr["basis"])
    taxable = units * p * data.f
    k = np.flatnonzero(units > 0)
    wash = (data.f != f_raw) & (units > 0)
    sales = pd.DataFrame(
        {
            "asset": [lots.asset[j] for j in k.tolist()],
            "lot_id": [lots.lot_id[j] for j in k.tolist()],
            "quantity": units[k],
            "basis": arr["basis"][k],
            "acquired": arr["acquired"][k].astype("datetime64[ns]"),
            "term": np.where(ti.short[k], "short", "long"),
            "proceeds": units[k] * p[k],
            "gain": gain_raw[k],
            "wash": wash[k],
        }
    )
    g_s = float(taxable[ti.short].sum())
    g_l = float(taxable[~ti.short].sum())
    tax = tax_of(g_s, g_l, data.rates)
    traded = float(table["notional"].to_numpy(dtype=float).sum()) if len(table) else 0.0
    gap = plan.weights_after.to_numpy() - acct.tau
    objective = (
        rb.lam * rb.risk.variance(gap) * acct.v1 + plan.total_cost + rb.penalty * traded + tax
    )
    # the check: lot sales add up to the sells and stay within each lot
    per_asset = np.zeros(rb.n)
    np.add.at(per_asset, ti.pos, units)
    has = np.zeros(rb.n, dtype=bool)
    has[ti.pos] = True
    # in currency over V1 (a sale of a whole holding may exceed it by the solver's tolerance)
    off = np.abs(per_asset - sold) * np.nan_to_num(price)
    worst = float(off[has].max(initial=0.0)) / v
    over = float((np.maximum(units - arr["quantity"], 0.0) * p).max(initial=0.0)) / v
    worst = max(worst, over)
    checks = {**plan.checks, "lot sales": {"ok": worst <= FEAS_TOL, "max_violation": worst}}
    notes = list(plan.notes)
    m = ti.model
    day = ti.as_of.isoformat()
    for j in np.flatnonzero(wash):
        notes.append(
            f"wash sale: the loss of {-gain_raw[j]:,.2f} on {lots.asset[j]} (lot "
            f"{lots.lot_id[j]}) is disallowed: {lots.asset[j]} was bought within the "
            f"{m.wash_days} days before {day}"
        )
    for i in sorted(ti.blocked):
        notes.append(
            f"wash sale: {assets[i]} was sold at a loss within the {m.wash_days} days before "
            f"{day}; it is not bought in this plan"
        )
    budgets = (
        ("gains budget", "net realized gains", g_s + g_l, m.gains_budget),
        ("short-term budget", "net short-term gains", g_s, m.short_budget),
    )
    for name, what, value, cap in budgets:
        if cap is None:
            continue
        checks[name] = {"ok": value <= cap + tol, "max_violation": max(value - cap, 0.0)}
        if value >= cap - max(tol, 1e-6 * acct.v1):
            notes.append(f"the {name} binds: {what} {value:,.2f} of at most {cap:,.2f}")
    report = {
        "short_gains": g_s,
        "long_gains": g_l,
        "net_gains": g_s + g_l,
        "tax": tax,
        "method": method,
        "blocked": tuple(assets[i] for i in sorted(ti.blocked)),
        "objective": float(objective),
        "search": search or {"solves": 0, "nodes": 0, "undecided": 0, "proven": True, "gap": 0.0},
    }
    return dataclasses.replace(plan, lot_sales=sales, tax=report, notes=tuple(notes), checks=checks)


def tax_plan(
    rb: Rebalancer,
    acct: Account,
    *,
    lots,
    tax,
    recent,
    substitutes,
    harvest,
    started: float,
    as_of=None,
    portfolio_id: str | None = None,
) -> RebalancePlan:
    """A tax-aware plan of one account (module docstring; the method in :mod:`~.tax`)."""
    ti = tax_inputs(rb, acct, lots, tax, recent, substitutes, harvest, as_of)
    if acct.v1 == 0:  # a liquidation: every lot sold, no solve
        plan = liquidation(rb, acct, started=started, as_of=as_of, portfolio_id=portfolio_id)
        v1 = 1.0
        data, f_raw = lot_data(rb, dataclasses.replace(acct, v1=v1), ti)
        solved = ti.lots.arrays["quantity"].copy()
        return finish(rb, acct, plan, ti, data, f_raw, solved, "exact", 0.0)
    data, f_raw = lot_data(rb, acct, ti)
    session = Session(rb, acct)
    session.hook = TaxHook(rb, data)
    t1 = time.perf_counter()
    sol, method, notes, search = lot_solve(session, session.hook, ti.model.exact_assets)
    sol, frozen, floors = nonconvex_steps(session, sol, notes)
    t2 = time.perf_counter()
    # rounding to whole lots keeps the directions: no buy of an asset sold or blocked
    no_buy, no_sell = sol.extra["sides"]  # every solve of the session records them
    sides = (np.where(no_sell, 0.0, -np.inf), np.where(no_buy, 0.0, np.inf))
    plan = assemble(
        session,
        sol,
        frozen,
        floors,
        notes,
        started=started,
        solved=(t1, t2),
        as_of=as_of,
        portfolio_id=portfolio_id,
        bounds=sides,
    )
    price = acct.price[ti.pos]
    solved = sol.extra["lots"] * acct.v1 / price
    tol = FEAS_TOL * acct.v1
    if rb.lot is not None:
        tol = max(tol, float((rb.lot * np.nan_to_num(acct.price)).max()))
    if not math.isfinite(tol):
        tol = FEAS_TOL * acct.v1
    info = {
        "solves": search.solves + 1,
        "nodes": search.nodes,
        "undecided": search.undecided,
        "proven": bool(search.proven),
        "gap": float(search.gap * acct.v1),
    }
    return finish(rb, acct, plan, ti, data, f_raw, solved, method, tol, info)
