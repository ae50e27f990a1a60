"""The lot-level rebalance: lot sales, the convex tax, gains budgets and the trade directions.

The method is that of Moehle, Kochenderfer, Boyd and Ang (2021), "Tax-aware
portfolio construction via convex optimization", J. Optim. Theory Appl. 189,
364-383: the tax is a convex function of how much is sold from each lot once
each asset's direction (buy or sell) is fixed, and a relaxation that lets an
asset be both bought and sold decides the directions.

The lots of one asset and term (a *group*) are sold in order of increasing gain
fraction ``f_k = 1 - basis_k / p_i`` (the highest basis first): the tax and the
budgets grow with the gains, so that order is optimal, and the least gain of
selling value ``x_j`` from group ``j`` is the convex piecewise-linear
``phi_j(x_j) = max_k (f_k x_j + c_k)`` (:class:`Groups`). The lot-level blocks
(added to the rebalance program by
:func:`~optimizer.rebalance.program.compile_rebalance`'s ``extend`` hook, after
the trades) are, in weight units (fractions of the post-trade value ``V1``):

==========  =====  ============================================================
block       rows   meaning
==========  =====  ============================================================
sums        m      ``sum_{j of i} x_j = s_i`` for each of the ``m`` assets with lots
gains       2      ``g_s = sum_{j short} G_j``, ``g_l = sum_{j long} G_j``
epigraph    K + J  ``G_j >= f_k x_j + c_k`` for each lot ``k`` of group ``j``, and
                   ``G_j <= f_max,j x_j`` (keeps ``G_j`` bounded when the tax is flat)
caps        2J     ``0 <= x_j <= `` the group's value over ``V1``
tax         3      ``t >= c N``, ``t >= min(r_s, r_l) N``, ``t >= r_s g_s + r_l g_l``
budget      <= 2   ``N <= gains_budget / V1``, ``g_s <= short_budget / V1``
direction   2n     ``b_i <= U_i``, ``s_i <= U_i`` (``U`` 0 to forbid a side, else a
                   bound no plan reaches: :data:`FREE` plus the account's gross weight)
==========  =====  ============================================================

with ``f_k`` clipped at 0 for a loss lot of an asset bought within the wash-sale
window, ``N = g_s + g_l`` and ``t`` priced 1 in ``q`` (tax in currency over
``V1``, like the costs). A lot's sale follows from its group's: the lots in order,
whole, and the last one in part (:meth:`Groups.lots`). K lots in J <= 2m groups
give 2J variables and about K + 3J rows (a row and a variable per lot with bounds
would give K variables and 2K rows). The program's structure depends on the group
sizes and the rates only: it is compiled once per rebalancer
(:meth:`~optimizer.rebalance.Rebalancer.program`, keyed by them) and each plan
patches its slopes into a copy of ``A`` (:meth:`TaxHook._patched`) and its
constants into ``b`` (:meth:`TaxHook.fill`).

**The tax is convex by construction, and conservative.** ``T = max(c N, r N,
r_s g_s + r_l g_l)`` with ``r = min(r_s, r_l)`` and ``c`` the value of a net loss
(``loss_rate`` with ``harvest=True``, else 0). It equals the netting rules when
both nets are gains, when a short-term loss offsets long-term gains, and for a
net loss (valued at ``c``); it values a long-term loss that offsets short-term
gains at ``r_l`` instead of ``r_s`` (the true rules are not convex there), so it
never overstates what a loss is worth.

**Directions.** No asset is both bought and sold in one plan (an asset sold at a
loss is not bought back: the wash-sale rule). Solve 1 is the relaxation with
both sides allowed; each asset's direction is the sign of its net trade (ties:
no trade), and solve 2 is the lot-level problem with the directions fixed (when
a gains budget binds there, or it is infeasible, a third solve sells every asset
the relaxation both buys and sells, and the better of the two is kept: a budget's
room is made by selling loss lots the relaxation would buy back). The exact
method (:meth:`Directions.branch`) is a best-first branch and bound over the
assets the relaxation both buys and sells: a node's relaxation, with the
directions branched on fixed, is a lower bound for every pattern below it; the
incumbent starts from solve 2 and its sell-everything variant and improves by
solve 2 at the first :data:`FIXED_NODES` nodes and at every leaf; a node within :data:`GAP_TOL` of the incumbent is closed;
the asset branched on is the one the node's relaxation both buys and sells most.
It runs when at most ``TaxModel.exact_assets`` assets are undecided at the root,
and whenever the fixed directions are infeasible (so a plan is found whenever one
exists); it stops at :data:`NODE_LIMIT` nodes (the plan's ``tax["search"]`` gives
the bound gap left). Every solve of one plan shares one program and its Clarabel
workspace: only ``b`` changes.

**The default** ``exact_assets=10``, from measurements (2 shared cores, load 2-4):
on random accounts of 10-16 assets with 10 lots each and harvesting, 7-10
undecided assets were proven optimal in 13-62 nodes (50-220 ms, 5-20 times the
two-solve method), 11-14 took 69 to more than 256 nodes; 17 and more (and the
50-asset benchmark's 45) were never proven within :data:`NODE_LIMIT` (the
relaxation, which lets an asset be both bought and sold, bounds loosely when many
assets harvest losses and buy them back). On the 60-month, 20-stock taxable
backtest (118 plans): 109 exact (33 with nothing undecided), 4 stopped at the node
limit, 5 with more than 10 undecided (two solves): 6,598 solves, 13 s (207 solves
and 1.2 s with ``exact_assets=0``). A lower default would
not bound the worst plans: the size of the tree is not the number undecided at the
root (a root with one undecided asset grew past the limit); the node limit does.
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InfeasibleError, SolverError
from optimizer.program import Builder, Outcome
from optimizer.rebalance.program import Columns, RebalanceProgram
from optimizer.rebalance.session import Infeasible, Session
from optimizer.solvers.clarabel import WorkspacePool

if TYPE_CHECKING:
    from optimizer.rebalance.rebalancer import Rebalancer

#: A trade below this (weight units) is no trade when reading a solution's directions.
SIDE_TOL = 1e-7
#: Objective gap (weight units) under which a node of the branch and bound is closed.
GAP_TOL = 1e-9
#: Nodes the branch and bound may expand (each two or three solves); a search stopped by it
#: keeps the best plan found, reported as the relaxation method with a note and its bound gap.
NODE_LIMIT = 256
#: Nodes of the branch and bound (after the root) that also try their directions fixed (an
#: incumbent): the first ones, where it improves most (the 20-asset backtest: a quarter fewer
#: solves than at every node, no plan left unproven more; the 50-asset benchmark: the same plan).
FIXED_NODES = 16
#: The bound of a side left free (weight units), plus the account's gross weight.
FREE = 100.0


@dataclass(frozen=True, eq=False)
class LotData:
    """The lots of one plan in the program's units.

    Attributes
    ----------
    pos : numpy.ndarray of int, shape (K,)
        Position of each lot's asset.
    cap : numpy.ndarray, shape (K,)
        Value of each lot over ``V1`` (the most ``l_k`` can be).
    f : numpy.ndarray, shape (K,)
        Taxable gain per unit of value sold (wash-sale losses clipped to 0).
    short : numpy.ndarray of bool, shape (K,)
        Short-term lots.
    rates : (float, float, float)
        ``r_s``, ``r_l`` and ``c`` (the value of a net loss).
    gains_w, short_w : float or None
        The budgets over ``V1``.
    no_buy : numpy.ndarray of bool, shape (n,)
        Assets that may not be bought (wash sale, or a substitute without harvesting).
    free : float
        The bound of a free side (weight units).
    tie : numpy.ndarray, shape (K,), optional
        Order among lots of equal ``f`` (ascending: sold first; the raw gain fraction,
        so the highest basis first). None: the lot order.
    """

    pos: np.ndarray
    cap: np.ndarray
    f: np.ndarray
    short: np.ndarray
    rates: tuple[float, float, float]
    gains_w: float | None
    short_w: float | None
    no_buy: np.ndarray
    free: float
    tie: np.ndarray | None = None

    def tax_rows(self) -> np.ndarray:
        """The three affine pieces of ``T`` as rows over ``(g_s, g_l)``, shape (3, 2)."""
        r_s, r_l, c = self.rates
        r = min(r_s, r_l)
        return np.array([[c, c], [r, r], [r_s, r_l]])


class Groups:
    """The lots of one plan grouped by asset and term, each group in its order of sale.

    Within a group (the short- or long-term lots of one asset) the tax is least
    when the lots are sold in order of increasing gain fraction ``f`` (the highest
    basis first): the tax and the budgets grow with ``g_s`` and ``g_l``. So the
    least gain of selling value ``x`` from group ``j`` is the convex piecewise-linear
    ``phi_j(x) = max_k (f_k x + c_k)`` over its lots ``k`` in that order, with
    ``c_k = sum_{i before k} (f_i - f_k) cap_i``, and a lot's sale follows from its
    group's: ``l_k = clip(x - C_k, 0, cap_k)`` with ``C_k`` the caps before ``k``.

    Attributes
    ----------
    order : numpy.ndarray of int, shape (K,)
        Lots in order: by asset, short-term group first, then order of sale.
    group : numpy.ndarray of int, shape (K,)
        Group of each lot of ``order``.
    pos, short : numpy.ndarray, shape (J,)
        Asset position and term of each group.
    cap : numpy.ndarray, shape (J,)
        Value of each group over ``V1``.
    slope, intercept, before, cap_sorted : numpy.ndarray, shape (K,)
        ``f_k``, ``c_k``, ``C_k`` and the cap of the lots of ``order``.
    top : numpy.ndarray, shape (J,)
        The largest ``f`` of each group (``phi_j(x) <= top_j x``).
    """

    def __init__(self, d: LotData) -> None:
        tie = d.f if d.tie is None else d.tie
        order = np.lexsort((tie, d.f, ~d.short, d.pos))
        pos, short = d.pos[order], d.short[order]
        new = np.r_[True, (pos[1:] != pos[:-1]) | (short[1:] != short[:-1])] if pos.size else []
        group = np.cumsum(new) - 1
        first = np.flatnonzero(new)
        cap, f = d.cap[order], d.f[order]
        self.order, self.group, self.cap_sorted = order, group.astype(int), cap
        self.pos, self.short = pos[first], short[first]
        self.cap = np.add.reduceat(cap, first) if first.size else np.zeros(0)
        # sums over the lots before each one in its group (exact 0 at a group's first)
        excl = np.r_[0.0, np.cumsum(cap)[:-1]] if cap.size else np.zeros(0)
        excl_f = np.r_[0.0, np.cumsum(f * cap)[:-1]] if cap.size else np.zeros(0)
        self.before = excl - excl[first][self.group]
        self.slope = f
        self.intercept = (excl_f - excl_f[first][self.group]) - f * self.before
        last = np.r_[first[1:], pos.size] - 1 if first.size else np.zeros(0, dtype=int)
        self.top = f[last]
        self.first = first

    @property
    def key(self) -> tuple:
        """The structure (groups, sizes): programs with the same key differ in data only."""
        sizes = np.diff(np.r_[self.first, self.order.size])
        return (self.pos.tobytes(), self.short.tobytes(), sizes.tobytes())

    def lots(self, x: np.ndarray) -> np.ndarray:
        """Lot sales (original lot order, shape (K,)) of group sales ``x`` (shape (J,))."""
        out = np.empty(self.order.size)
        cap = self.cap_sorted
        out[self.order] = np.clip(x[self.group] - self.before, 0.0, cap)
        return out


class TaxHook:
    """The lot-level blocks of one plan, hooked into a :class:`Session`.

    The session asks it for the program of a set of frozen assets
    (:meth:`program`: the structure compiled once per rebalancer and kept, this
    plan's lot data patched in), has it fill the constant rows of each solve
    (:meth:`fill`) and record the lot sales of the solution (:meth:`record`, into
    ``outcome.extra["lots"]``).
    """

    def __init__(self, rb: Rebalancer, data: LotData) -> None:
        self.rb, self.data = rb, data
        self.programs: dict = {}
        n = rb.n
        self.no_buy = data.no_buy.copy()  # b_i = 0
        self.no_sell = np.zeros(n, dtype=bool)  # s_i = 0
        self.budgets_on = True
        self.groups = Groups(data)
        self.key = (
            "tax",
            self.groups.key,
            tuple(map(float, data.rates)),
            data.gains_w is None,
            data.short_w is None,
        )

    def set_sides(self, no_buy: np.ndarray, no_sell: np.ndarray) -> None:
        """Forbid buying (``no_buy``) and selling (``no_sell``) these assets in later solves."""
        self.no_buy = no_buy | self.data.no_buy
        self.no_sell = no_sell.copy()

    def program(self, frozen, policy, policy_key, account) -> RebalanceProgram:
        """The plan's program for these frozen assets, policy and account pieces.

        The compiled structure is kept by the rebalancer (:meth:`Rebalancer.program`,
        keyed by the lot groups and the rates); this plan's gain fractions are patched
        into a copy of ``A`` (its own Clarabel workspaces, shared by the plan's solves).
        """
        key = (tuple(sorted(frozen)), policy_key, tuple(p.shape for p in account))
        hit = self.programs.get(key)
        if hit is None:
            base = self.rb.program(
                frozen, policy, policy_key, account, extend=self.extend, extend_key=self.key
            )
            hit = self._patched(base)
            self.programs[key] = hit
        return hit

    def _patched(self, entry: RebalanceProgram) -> RebalanceProgram:
        """``entry`` with this plan's slopes in ``A`` (and a workspace pool of its own)."""
        t, gr = entry.template, self.groups
        if "patch" not in entry.extra_rows:
            lot_layout(entry, gr)
        idx = entry.extra_rows["patch"]
        A = t.A.copy()
        A.data[idx] = np.r_[gr.slope, -gr.top]
        prog = dataclasses.replace(t, A=A)
        return dataclasses.replace(
            entry, template=prog, pool=WorkspacePool(prog, entry.pool.tol), a_cols=A.T.tocsr()
        )

    def extend(self, b: Builder, cols: Columns) -> dict[str, int]:
        """Add the lot-level blocks (module docstring); their block indices by name.

        The slopes in ``A`` are placeholders (1) here: :meth:`_patched` writes each
        plan's; every constant is written by :meth:`fill`.
        """
        gr, n = self.groups, cols.n
        d = self.data
        k, j = gr.order.size, gr.pos.size
        blocks: dict[str, int] = {}
        x = b.var(j)
        gv = b.var(j)
        g = b.var(2)
        t = b.var(1)
        sells = np.asarray(cols.sells)
        buys = np.asarray(cols.buys)
        xs, gs = np.arange(x, x + j), np.arange(gv, gv + j)
        if j:
            held, row = np.unique(gr.pos, return_inverse=True)
            m = held.size
            mat = sp.coo_matrix(
                (np.r_[np.ones(j), -np.ones(m)], (np.r_[row, np.arange(m)], np.arange(j + m))),
                shape=(m, j + m),
            )
            b.add("zero", mat, np.r_[xs, sells[held]], np.zeros(m))
        # g_s = sum of the short groups' G, g_l of the long ones'
        mat = sp.coo_matrix(
            (
                np.r_[-np.ones(j), np.ones(2)],
                (np.r_[np.where(gr.short, 0, 1), [0, 1]], np.arange(j + 2)),
            ),
            shape=(2, j + 2),
        )
        b.add("zero", mat, np.r_[gs, g, g + 1], np.zeros(2))
        # epigraph rows f_k x_j - G_j <= -c_k, then G_j - top_j x_j <= 0 (slopes patched)
        rows = np.r_[np.arange(k), np.arange(k), k + np.arange(j), k + np.arange(j)]
        cidx = np.r_[gr.group, j + gr.group, j + np.arange(j), np.arange(j)]
        vals = np.r_[np.ones(k), -np.ones(k), np.ones(j), np.ones(j)]
        blocks["epigraph"] = len(b.blocks)
        b.add(
            "nonneg",
            sp.coo_matrix((vals, (rows, cidx)), shape=(k + j, 2 * j)),
            np.r_[xs, gs],
            np.zeros(k + j),
        )
        blocks["caps"] = len(b.blocks)
        caps = sp.coo_matrix(
            (np.r_[-np.ones(j), np.ones(j)], (np.arange(2 * j), np.r_[np.arange(j), np.arange(j)])),
            shape=(2 * j, j),
        )
        b.add("nonneg", caps, xs, np.zeros(2 * j))
        b.add(
            "nonneg",
            np.hstack([d.tax_rows(), -np.ones((3, 1))]),
            np.r_[g, g + 1, t],
            np.zeros(3),
        )
        b.lin([t], [1.0])
        limits = [([1.0, 1.0], d.gains_w), ([1.0, 0.0], d.short_w)]
        limits = [r for r, v in limits if v is not None]
        if limits:
            blocks["budget"] = len(b.blocks)
            b.add("nonneg", np.array(limits), [g, g + 1], np.zeros(len(limits)))
        blocks["direction"] = len(b.blocks)
        eye = sp.coo_matrix((np.ones(2 * n), (np.arange(2 * n), np.arange(2 * n))))
        b.add("nonneg", eye, np.r_[buys, sells], np.full(2 * n, d.free))
        return blocks

    def fill(self, prog, entry: RebalanceProgram) -> None:
        """Set the constant rows of one solve: intercepts, caps, budgets and directions."""
        d, gr, rows = self.data, self.groups, entry.extra_rows
        prog.b[rows["epigraph"]] = np.r_[-gr.intercept, np.zeros(gr.pos.size)]
        prog.b[rows["caps"]] = np.r_[np.zeros(gr.pos.size), gr.cap]
        if "budget" in rows:
            lim = [v for v in (d.gains_w, d.short_w) if v is not None]
            prog.b[rows["budget"]] = lim if self.budgets_on else d.free
        prog.b[rows["direction"]] = np.r_[
            np.where(self.no_buy, 0.0, d.free), np.where(self.no_sell, 0.0, d.free)
        ]

    def binds(self, out: Outcome) -> bool:
        """True when a gains budget binds at a solution (to 1e-7 of ``V1``)."""
        d, lots = self.data, out.extra["lots"]
        net, short = float(d.f @ lots), float((d.f * d.short) @ lots)
        return (d.gains_w is not None and net >= d.gains_w - 1e-7) or (
            d.short_w is not None and short >= d.short_w - 1e-7
        )

    def record(self, out: Outcome, entry: RebalanceProgram) -> None:
        """Keep the lot sales (weight units, shape (K,)) of a solution in ``out.extra``.

        Each group's sale is split across its lots in order of sale (:class:`Groups`).
        """
        xs = entry.extra_rows["x"]
        x = np.clip(out.x[xs], 0.0, self.groups.cap)
        out.extra["lots"] = self.groups.lots(x)
        out.extra["sides"] = (self.no_buy.copy(), self.no_sell.copy())


def lot_layout(entry: RebalanceProgram, gr: Groups) -> None:
    """Record in ``entry.extra_rows`` the group columns and the ``A`` entries of the slopes.

    ``extra_rows["x"]``: the columns of the group sales (read off the rows ``-x <= 0``
    of the caps block); ``extra_rows["patch"]``: the positions in ``A.data`` of the
    epigraph slopes, then of the ``-top`` entries (:meth:`TaxHook._patched`).
    """
    k, j = gr.order.size, gr.pos.size
    rows = entry.extra_rows["epigraph"]
    A = entry.template.A
    xs = entry.a_cols[:, entry.extra_rows["caps"][:j]].tocsc().indices.astype(int)
    want_rows = rows[np.r_[np.arange(k), k + np.arange(j)]]
    want_cols = xs[np.r_[gr.group, np.arange(j)]]
    m = A.shape[0]
    keys = np.repeat(np.arange(A.shape[1]), np.diff(A.indptr)) * m + A.indices
    at = np.searchsorted(keys, want_cols * m + want_rows)
    found = keys[np.minimum(at, keys.size - 1)] if keys.size else keys
    if at.size and not (
        np.array_equal(found, want_cols * m + want_rows) and (A.data[at] == 1.0).all()
    ):
        raise RuntimeError("tax program: the slope entries of A are not where expected")
    entry.extra_rows["x"] = xs
    entry.extra_rows["patch"] = at


def _sides(out: Outcome) -> tuple[np.ndarray, np.ndarray]:
    """Buys and sells of a solution (weight units), each shape (n,)."""
    c = out.extra["cols"]
    return out.x[c.buys.start : c.buys.stop], out.x[c.sells.start : c.sells.stop]


def undecided(out: Outcome) -> np.ndarray:
    """Assets a solution both buys and sells (both above :data:`SIDE_TOL`), by overlap, largest first."""
    b, s = _sides(out)
    both = np.minimum(b, s)
    idx = np.flatnonzero(both > SIDE_TOL)
    return idx[np.argsort(-both[idx], kind="stable")]


def directions(out: Outcome) -> np.ndarray:
    """Each asset's direction in a solution: +1 buy, -1 sell, 0 no trade (net within tolerance)."""
    b, s = _sides(out)
    net = b - s
    return np.where(net > SIDE_TOL, 1, np.where(net < -SIDE_TOL, -1, 0))


class Directions:
    """The direction search of one plan (module docstring): relaxation, then fixed or exact.

    Attributes
    ----------
    solves, nodes : int
        Solves run after the root relaxation, and nodes of the branch and bound expanded.
    proven : bool
        The plan found is optimal over every direction pattern (to :data:`GAP_TOL`).
    gap : float
        Objective of the plan found less the least bound still open (weight units;
        0 when proven).
    undecided : int
        Assets the root relaxation both buys and sells.
    """

    def __init__(self, session: Session, hook: TaxHook, exact_assets: int) -> None:
        self.session, self.hook, self.exact_assets = session, hook, exact_assets
        self.solves = 0
        self.nodes = 0
        self.proven = True
        self.gap = 0.0
        self.undecided = 0

    def _solve(self, no_buy: np.ndarray, no_sell: np.ndarray) -> Outcome | None:
        self.hook.set_sides(no_buy, no_sell)
        self.solves += 1
        try:
            return self.session.solve(self.session.acct.frozen)
        except Infeasible:
            return None

    def _fixed(self, rel: Outcome, no_buy: np.ndarray, no_sell: np.ndarray) -> Outcome | None:
        """Solve 2: the directions of ``rel`` fixed (on top of the node's own)."""
        d = directions(rel)
        return self._solve(no_buy | (d <= 0), no_sell | (d >= 0))

    def _sell_all(self, rel: Outcome, no_buy: np.ndarray, no_sell: np.ndarray) -> Outcome | None:
        """The variant of solve 2 that sells every asset ``rel`` both buys and sells."""
        d = directions(rel)
        d[undecided(rel)] = -1
        return self._solve(no_buy | (d <= 0), no_sell | (d >= 0))

    def run(self, root: Outcome) -> tuple[Outcome, str]:
        """The plan's solution and its method, from the root relaxation ``root`` (solve 1).

        Raises
        ------
        InfeasibleError
            No direction pattern is feasible (the relaxation was).
        """
        n = self.session.rb.n
        none = np.zeros(n, dtype=bool)
        conflicts = undecided(root)
        self.undecided = len(conflicts)
        exact = 0 < len(conflicts) <= self.exact_assets or (
            self.exact_assets > 0 and not len(conflicts)
        )
        if not len(conflicts):
            return root, "exact" if exact else "relaxation"
        if not exact:
            # solve 2, and its variant selling every undecided asset (a gains budget's room
            # is made by selling loss lots the relaxation buys back): the better of the two
            fixed = self._fixed(root, none, none)
            other = None
            if fixed is None or self.hook.binds(fixed):
                other = self._sell_all(root, none, none)
            pick = [o for o in (fixed, other) if o is not None]
            if pick:
                self.proven = False
                return min(pick, key=lambda o: o.objective), "relaxation"
        best = self.branch(root)
        if best is None:
            raise InfeasibleError(
                "no plan buys or sells each asset in one direction only: the relaxation that "
                "allows both is feasible, every direction pattern is not; loosen the limits "
                "(gains budget, turnover cap, bands) or allow more trades",
                [],
            )
        return best, "exact" if self.proven else "relaxation"

    def branch(self, root: Outcome) -> Outcome | None:
        """Best-first branch and bound over the undecided assets.

        A node fixes the directions of the assets branched on; its relaxation (both
        sides allowed for the others) is a lower bound on every pattern below it, and
        its directions fixed (:meth:`_fixed`, the first :data:`FIXED_NODES` nodes) give
        a plan (the incumbent when better).
        Nodes are expanded least bound first; a node whose bound is within
        :data:`GAP_TOL` of the incumbent is closed. The asset branched on is the one the
        node's relaxation both buys and sells most. The search stops at
        :data:`NODE_LIMIT` nodes (``proven`` False, ``gap`` the bound gap left).
        """
        n = self.session.rb.n
        none = np.zeros(n, dtype=bool)
        best: Outcome | None = None

        def close(bound: float) -> bool:
            return best is not None and bound >= best.objective - GAP_TOL * (1 + abs(bound))

        def offer(out: Outcome | None) -> None:
            nonlocal best
            if out is not None and (best is None or out.objective < best.objective):
                best = out

        # the incumbent from the start: solve 2 and its sell-everything variant
        offer(self._fixed(root, none, none))
        offer(self._sell_all(root, none, none))
        heap: list = [(root.objective, 0, none, none, root)]
        count = 1
        while heap:
            bound, _, no_buy, no_sell, rel = heap[0]
            if close(bound):
                heap.clear()
                break
            if self.nodes >= NODE_LIMIT:
                break
            heapq.heappop(heap)
            self.nodes += 1
            conflicts = undecided(rel)
            if not len(conflicts):
                offer(rel)
                continue
            if 1 < self.nodes <= FIXED_NODES:
                offer(self._fixed(rel, no_buy, no_sell))
            i = int(conflicts[0])
            for nb, ns in ((no_buy.copy(), no_sell), (no_buy, no_sell.copy())):
                if nb is not no_buy:
                    nb[i] = True  # the sell side: no buy of i
                else:
                    ns[i] = True  # the buy side: no sell of i
                child = self._solve(nb, ns)
                if child is None or close(child.objective):
                    continue
                if not len(undecided(child)):
                    offer(child)
                    continue
                heapq.heappush(heap, (child.objective, count, nb, ns, child))
                count += 1
        self.proven = not heap
        if best is not None and heap:
            self.gap = max(best.objective - heap[0][0], 0.0)
        return best


def lot_solve(
    session: Session, hook: TaxHook, exact_assets: int
) -> tuple[Outcome, str, list[str], Directions]:
    """Solve 1 (the relaxation, through ``session.convex``), then the directions.

    Returns
    -------
    (Outcome, str, list of str, Directions)
        The solution (its directions fixed on ``hook`` for any later solve), the
        method (``"relaxation"`` or ``"exact"``), notes (a search stopped by
        :data:`NODE_LIMIT`) and the search (its solves, nodes and bound gap).

    Raises
    ------
    InfeasibleError
        The hard constraints cannot hold (the diagnosis names them; a gains budget
        that cannot hold is named as such).
    """
    try:
        root = session.convex()
    except (InfeasibleError, SolverError) as exc:
        # the diagnosis sees no lots: a budget that alone cannot hold is named here
        raise _budget_error(session, hook) or exc from None
    search = Directions(session, hook, exact_assets)
    sol, method = search.run(root)
    d = directions(sol)
    hook.set_sides(d <= 0, d >= 0)
    notes = []
    if search.nodes and not search.proven:
        v1 = session.acct.v1
        notes.append(
            f"the exact direction search stopped at {NODE_LIMIT} nodes ({search.solves + 1} "
            f"solves) with a bound gap of {search.gap * v1:,.2f} ({search.gap:.2e} of the "
            "value): the best plan found is kept, not proven optimal; lower "
            "TaxModel.exact_assets to use the two-solve method"
        )
    return sol, method, notes, search


def _budget_error(session: Session, hook: TaxHook) -> InfeasibleError | None:
    """An error naming the gains budgets when they alone make the plan infeasible."""
    d = hook.data
    if d.gains_w is None and d.short_w is None:
        return None
    hook.budgets_on = False
    try:
        session.solve(session.acct.frozen)
    except (Infeasible, InfeasibleError):
        return None
    finally:
        hook.budgets_on = True
    v1 = session.acct.v1
    names = [
        f"{name} {value * v1:,.2f}"
        for name, value in (("gains_budget", d.gains_w), ("short_budget", d.short_w))
        if value is not None
    ]
    return InfeasibleError(
        f"the plan cannot keep realized gains within {' and '.join(names)}: the other "
        "constraints force sales of gains above it; raise the budget or loosen the constraints",
        [{"name": "gains budget", "relax_by": float("nan")}],
    )
