"""The rebalance program, with named variable blocks, compiled once per structure.

Every variable is in weight units (fractions of the post-trade value ``V1``):

=========  =====  ==============================================================
block      size   meaning
=========  =====  ==============================================================
weights    n      post-trade weights ``w``
buys       n      ``b >= 0``, bought value over ``V1``
sells      n      ``s >= 0``, sold value over ``V1``
impact     n      ``m_i >= sqrt(V1 / V_IMPACT) (b_i + s_i)^1.5`` (power cones; only
                  with impact costs)
pooled     k      ``u = b - s - a`` (net) or ``u = b + s - a`` (gross) on the ``k``
                  assets of a :class:`Coupling` (only for pooled limits across
                  accounts, :mod:`optimizer.rebalance.pooled`), ``a`` an anchor in
                  ``b``: ``u`` is priced in ``q`` and carries the proximal term
                  ``rho / 2 ||u||^2`` in ``P``
=========  =====  ==============================================================

The rows tie them together: the holdings equation ``w - b + s = h / V1`` (one
row per asset), ``b, s >= 0``, ``b_i = s_i = 0`` for each frozen asset, the
impact cones, the tracking term (:mod:`optimizer.rebalance.tracking`), then the
constraint
pieces (:mod:`optimizer.pieces`) lowered against :meth:`Columns.layout`.

The impact cost of trade ``t_i = V1 (b_i + s_i)``, as a fraction of ``V1``, is
``impact_i sqrt(V1) (b_i + s_i)^1.5``. The account's value enters the cones'
constants, not the objective: the cone ``(m_i, V_IMPACT / V1, b_i + s_i)`` of
exponent 2/3 holds ``m_i >= sqrt(V1 / V_IMPACT) (b_i + s_i)^1.5``, and ``m_i``
costs ``impact_i sqrt(V_IMPACT)``, the same for every account.

So from one account to the next only ``b`` changes (the holdings ``h / V1``,
the target through ``R' target``, the impact cones' ``V_IMPACT / V1``, and the
limits of the *account pieces*: no-trade band edges, minimum-trade floors,
participation and turnover limits), and ``q`` (the cost rates, the impact
prices) stays as it is for one target. A :class:`RebalanceProgram` keeps ``P``,
``A`` and the cones, knows which rows of ``b`` each account piece fills, and
makes each account's program with :meth:`RebalanceProgram.instance`: the
matrices are shared, and with ``q`` unchanged one Clarabel solver of its
:class:`~optimizer.solvers.WorkspacePool` serves every account by
``update(b=)`` (a solver is set up again whenever ``q`` changes, so that an
answer never depends on what was solved before).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from optimizer.pieces import Layout, Piece, lower_pieces
from optimizer.program import CONES, Builder, Outcome, Program
from optimizer.rebalance.tracking import Root, add_tracking
from optimizer.riskmodel import RiskModel
from optimizer.solvers import WorkspacePool
from optimizer.verify import stationary

#: Account value (currency) at which the impact cones are scaled one to one (any positive
#: number gives the same optimum; a typical account keeps the cones' constants near 1).
V_IMPACT = 1e6


@dataclass(frozen=True)
class Columns:
    """Where each variable block of a rebalance program lives: column ranges of ``x``.

    Attributes
    ----------
    n : int
        Number of assets.
    weights, buys, sells : range
        Columns of ``w``, ``b`` and ``s`` (each of length ``n``).
    impact : range or None
        Columns of the impact epigraph variables ``m``; None without impact costs.
    pooled : range or None
        Columns of the pooled quantities ``u`` of a :class:`Coupling`; None without one.
    """

    n: int
    weights: range
    buys: range
    sells: range
    impact: range | None = None
    pooled: range | None = None

    def layout(self, risk: RiskModel | None) -> Layout:
        """The :class:`~optimizer.pieces.Layout` pieces are lowered against."""
        return Layout(self.n, buy=np.asarray(self.buys), sell=np.asarray(self.sells), risk=risk)

    def weights_of(self, x: np.ndarray) -> np.ndarray:
        """``w`` from a solution ``x``, shape (n,)."""
        return x[self.weights.start : self.weights.stop]

    def trades_of(self, x: np.ndarray) -> np.ndarray:
        """``b - s`` from a solution ``x``: the trades in weight units, shape (n,)."""
        return x[self.buys.start : self.buys.stop] - x[self.sells.start : self.sells.stop]


@dataclass(frozen=True)
class Coupling:
    """The pooled quantities of one account in a pooled rebalance (:mod:`~.pooled`).

    Attributes
    ----------
    kind : {"net", "gross"}
        ``u = b - s - a`` (the net trade) or ``u = b + s - a`` (the gross trade) less
        the anchor ``a`` (the constants of the rows, per account), weight units.
    assets : tuple of int
        The coupled assets (positions), in the order of ``u``.
    rho : float
        The proximal weight: ``P`` holds ``rho`` on the diagonal of ``u`` (0 or more).
    """

    kind: str
    assets: tuple[int, ...]
    rho: float


def _add_coupling(b: Builder, cols: Columns, coupling: Coupling) -> tuple[Columns, int]:
    """The block ``u - b -/+ s = -a`` on the coupled assets and ``rho / 2 ||u||^2``.

    The anchor ``a`` is in ``b`` (0 here): a price on ``u`` common to the accounts
    leaves ``q`` the same for all of them, so one solver set-up serves them.
    Returns the columns and the index of the block among ``b.blocks``.
    """
    k = len(coupling.assets)
    start = b.var(k)
    u = np.arange(start, start + k)
    idx = np.asarray(coupling.assets, dtype=int)
    eye = sp.eye(k, format="csr")
    sign = -1.0 if coupling.kind == "gross" else 1.0
    block = len(b.blocks)
    b.add(
        "zero",
        sp.hstack([eye, -eye, sign * eye], format="csr"),
        np.r_[u, np.asarray(cols.buys)[idx], np.asarray(cols.sells)[idx]],
        np.zeros(k),
    )
    if coupling.rho > 0:
        b.quad(u, u, np.full(k, float(coupling.rho)))
    out = Columns(cols.n, cols.weights, cols.buys, cols.sells, cols.impact, range(start, start + k))
    return out, block


def add_trades(b: Builder, n: int, h_w: np.ndarray, frozen: Sequence[int]) -> tuple[Columns, int]:
    """Add buys, sells, the holdings equation and the frozen assets to a builder.

    Parameters
    ----------
    b : Builder
        Its first ``n`` columns are the weights.
    n : int
        Number of assets.
    h_w : numpy.ndarray, shape (n,)
        Holdings over the post-trade value (the constants of the holdings equation).
    frozen : sequence of int
        Assets that do not trade (``b_i = s_i = 0``).

    Returns
    -------
    (Columns, int)
        The blocks, and the index of the holdings equation among ``b.blocks``.
    """
    buy = b.var(n)
    sell = b.var(n)
    cols = Columns(n, range(0, n), range(buy, buy + n), range(sell, sell + n))
    eye = sp.eye(n, format="csr")
    both = np.r_[np.asarray(cols.buys), np.asarray(cols.sells)]
    holdings_block = len(b.blocks)
    b.add(
        "zero",
        sp.hstack([eye, -eye, eye], format="csr"),
        np.r_[np.asarray(cols.weights), both],
        h_w,
        homogeneous=False,
    )
    b.add("nonneg", -sp.eye(2 * n), both, np.zeros(2 * n))
    if len(frozen):
        idx = np.array(sorted(frozen), dtype=int)
        m = len(idx)
        mat = sp.csr_matrix(
            (np.ones(2 * m), (np.arange(2 * m), np.r_[idx, n + idx])), (2 * m, 2 * n)
        )
        b.add("zero", mat, both, np.zeros(2 * m))
    return cols, holdings_block


def elastic_base(
    n: int, h_w: np.ndarray, frozen: Sequence[int], risk: RiskModel
) -> Callable[[Builder], Layout]:
    """The ``base`` of an elastic program (:func:`optimizer.diagnosis.elastic`) of a rebalance.

    It adds the weights, buys and sells, the holdings equation and the frozen
    assets (hard: an untradeable asset is never "relaxed"), so that the
    diagnosis and the soft-constraint relaxation see the trade-space pieces
    (turnover cap, participation limits) as constraints like any other.
    """

    def base(b: Builder) -> Layout:
        b.var(n)
        cols, _ = add_trades(b, n, h_w, frozen)
        return cols.layout(risk)

    return base


def _block_starts(b: Builder) -> list[int]:
    """First row of each block of ``b`` in the built program (blocks go in cone order)."""
    order = sorted(range(len(b.blocks)), key=lambda i: CONES.index(b.blocks[i].cone))
    starts = [0] * len(b.blocks)
    row = 0
    for i in order:
        starts[i] = row
        row += b.blocks[i].size
    return starts


def _limits(pieces: Sequence[Piece]) -> np.ndarray:
    return np.array([p.limits for p in pieces], dtype=float).reshape(len(pieces), 2)


@dataclass(frozen=True, eq=False)
class RebalanceProgram:
    """A compiled rebalance: the matrices once, ``q`` and ``b`` per account.

    Attributes
    ----------
    template : Program
        ``P``, ``A``, the cones and the row tags (its ``q`` and ``b`` are placeholders).
    cols : Columns
        The variable blocks.
    holdings_rows : numpy.ndarray of int
        Rows of ``b`` holding ``h / V1``.
    root_rows : numpy.ndarray of int
        Rows of ``b`` holding ``R' target`` (empty without a tracking term).
    impact_rows : numpy.ndarray of int
        Rows of ``b`` holding ``V_IMPACT / V1`` (empty without impact costs).
    fill_rows, fill_piece, fill_max : numpy.ndarray
        Row of ``b``, index of the account piece, and side (True: the upper
        limit ``hi``, False: ``-lo``) of every row an account piece fills.
    pool : WorkspacePool
        Clarabel workspaces of this structure, shared by threads.
    p_rows, a_cols : scipy.sparse.csr_matrix
        ``P`` and ``A'`` as row-major matrices, for the stationarity check.
    pooled_rows : numpy.ndarray of int
        Rows of ``b`` holding ``-a``, the anchor of the pooled quantities (empty
        without a :class:`Coupling`).
    extra_rows : dict of str -> numpy.ndarray of int
        Rows of each block an ``extend`` hook of :func:`compile_rebalance` added, by the
        name it gave (the lot-level blocks of :mod:`optimizer.rebalance.tax`).
    """

    template: Program
    cols: Columns
    holdings_rows: np.ndarray
    root_rows: np.ndarray
    impact_rows: np.ndarray
    fill_rows: np.ndarray
    fill_piece: np.ndarray
    fill_max: np.ndarray
    pool: WorkspacePool
    p_rows: sp.csr_matrix
    a_cols: sp.csr_matrix
    pooled_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    extra_rows: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes held by the matrices (approximate)."""
        t = self.template
        mats = (t.P, t.A, self.p_rows, self.a_cols)
        return int(
            sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in mats)
            + t.q.nbytes
            + t.b.nbytes
        )

    def stationary(self, prog: Program, out: Outcome) -> bool:
        """:func:`optimizer.verify.stationary` with ``P`` and ``A'`` made once."""
        return stationary(prog, out, p=self.p_rows, at=self.a_cols)

    def instance(
        self,
        *,
        h_w: np.ndarray,
        q_w: np.ndarray,
        root_b: np.ndarray | None,
        buy: np.ndarray,
        sell: np.ndarray,
        impact: np.ndarray | None,
        value: float,
        account: Sequence[Piece],
        pooled_q: np.ndarray | None = None,
        pooled_anchor: np.ndarray | None = None,
    ) -> Program:
        """The program of one account (the matrices shared with the template).

        Parameters
        ----------
        h_w : numpy.ndarray, shape (n,)
            Holdings over ``V1``.
        q_w, root_b : numpy.ndarray
            Linear objective on the weights and constants of the rows
            ``R'w - y`` (:func:`tracking_data`).
        buy, sell : numpy.ndarray, shape (n,)
            Cost per unit of bought and sold weight (rates plus the turnover penalty).
        impact : numpy.ndarray, shape (n,), or None
            Price of ``m`` (``impact_i sqrt(V_IMPACT)``).
        value : float
            ``V1``, the account's value after the cash flow (currency).
        account : sequence of Piece
            The account pieces, in the order the program was compiled with.
        pooled_q : numpy.ndarray, shape (k,), optional
            Linear price of the pooled quantities ``u`` (a program compiled with a
            :class:`Coupling` only; 0 when not given).
        pooled_anchor : numpy.ndarray, shape (k,), optional
            The anchor ``a`` of ``u`` (weight units; 0 when not given).
        """
        t, c = self.template, self.cols
        q = t.q.copy()
        q[c.weights.start : c.weights.stop] = q_w
        q[c.buys.start : c.buys.stop] += buy
        q[c.sells.start : c.sells.stop] += sell
        if c.impact is not None:
            q[c.impact.start : c.impact.stop] = impact
        if pooled_q is not None:
            q[c.pooled.start : c.pooled.stop] = pooled_q
        b = t.b.copy()
        b[self.holdings_rows] = h_w
        if self.root_rows.size:
            b[self.root_rows] = root_b
        if self.impact_rows.size:
            b[self.impact_rows] = V_IMPACT / value
        if pooled_anchor is not None:
            b[self.pooled_rows] = -pooled_anchor
        if self.fill_rows.size:
            lim = _limits(account)[self.fill_piece]
            b[self.fill_rows] = np.where(self.fill_max, lim[:, 1], -lim[:, 0])
        return Program(t.P, q, t.A, b, t.cones, t.tags, t.P_upper, t.row_of)


def _add_impact(b: Builder, cols: Columns, frozen: Sequence[int]) -> int | None:
    """The impact cones ``(m_i, V_IMPACT / V1, b_i + s_i)`` of the assets that trade.

    A frozen asset's ``m_i`` is held at 0 by an equality instead: a cone whose
    every entry goes to zero is a point an interior-point solver reaches
    poorly (Clarabel then stops on "insufficient progress").

    Returns
    -------
    int or None
        Index among ``b.blocks`` of the cones (None when every asset is frozen).
    """
    n = cols.n
    held = np.array(sorted(frozen), dtype=int)
    free = np.setdiff1d(np.arange(n), held)
    m, buy, sell = (np.asarray(r) for r in (cols.impact, cols.buys, cols.sells))
    if held.size:
        b.add("zero", np.eye(held.size), m[held], np.zeros(held.size))
    if not free.size:
        return None
    k = free.size
    rows = np.r_[3 * np.arange(k), 3 * np.arange(k) + 2, 3 * np.arange(k) + 2]
    which = np.r_[np.arange(k), k + np.arange(k), 2 * k + np.arange(k)]
    mat = sp.csr_matrix((-np.ones(3 * k), (rows, which)), shape=(3 * k, 3 * k))
    block = len(b.blocks)
    b.add(
        "pow", mat, np.r_[m[free], buy[free], sell[free]], np.tile([0.0, 1.0, 0.0], k), param=2 / 3
    )
    return block


def compile_rebalance(
    *,
    n: int,
    risk: RiskModel,
    root: Root,
    tracking_weight: float,
    impact: bool,
    frozen: Sequence[int],
    policy: Sequence[Piece],
    account: Sequence[Piece],
    tol: float = 1e-9,
    coupling: Coupling | None = None,
    extend: Callable[[Builder, Columns], dict[str, int]] | None = None,
) -> RebalanceProgram:
    """Compile the rebalance program of one structure.

    Parameters
    ----------
    n : int
        Number of assets.
    risk : RiskModel
        The covariance (for the pieces that need it).
    root : Root
        Its root (the tracking term ``lambda (w - target)' C (w - target)``).
    tracking_weight : float
        ``lambda``.
    impact : bool
        Add the impact blocks (power cones).
    frozen : sequence of int
        Assets that do not trade.
    policy : sequence of Piece
        Pieces whose limits are fixed (the policy's constraints): lowered as they are.
    account : sequence of Piece
        Pieces whose limits change by account; their rows are filled by
        :meth:`RebalanceProgram.instance`.
    tol : float
        Solver tolerance of the workspaces.
    coupling : Coupling, optional
        Add the pooled quantities ``u`` (pooled limits across accounts); None:
        the program is the same as without the argument.
    extend : callable, optional
        ``extend(builder, cols)`` adds variables and rows of its own (the lot-level
        tax blocks, :mod:`optimizer.rebalance.tax`) after the trade blocks and
        returns ``{name: index among builder.blocks}``; their rows are kept in
        :attr:`RebalanceProgram.extra_rows`. None: the program is the same as without it.
    """
    b = Builder(n)
    cols, holdings_block = add_trades(b, n, np.zeros(n), frozen)
    impact_block = None
    if impact:
        m = b.var(n)
        cols = Columns(n, cols.weights, cols.buys, cols.sells, range(m, m + n))
        impact_block = _add_impact(b, cols, frozen)
    coupling_block = None
    if coupling is not None:
        cols, coupling_block = _add_coupling(b, cols, coupling)
    extra_blocks = {} if extend is None else extend(b, cols)
    root_block = add_tracking(b, root, tracking_weight, n)
    layout = cols.layout(risk)
    lower_pieces(b, policy, layout)
    first_account = len(b.blocks)
    lower_pieces(b, account, layout)
    prog = b.build()
    starts = _block_starts(b)
    owner = {p.label: j for j, p in enumerate(account)}
    rows, piece, upper = [], [], []
    for i in range(first_account, len(b.blocks)):
        for r, tag in enumerate(b.blocks[i].tags):
            rows.append(starts[i] + r)
            piece.append(owner[tag.label])
            upper.append(tag.side != "min")
    start = starts[holdings_block]
    root_rows = np.zeros(0, dtype=int)
    if root_block is not None:
        first = starts[root_block]
        root_rows = np.arange(first, first + b.blocks[root_block].size)
    impact_rows = np.zeros(0, dtype=int)
    if impact_block is not None:
        cones = b.blocks[impact_block].size // 3
        impact_rows = starts[impact_block] + 3 * np.arange(cones) + 1
    out = RebalanceProgram(
        prog,
        cols,
        np.arange(start, start + n),
        root_rows,
        impact_rows,
        np.array(rows, dtype=int),
        np.array(piece, dtype=int),
        np.array(upper, dtype=bool),
        WorkspacePool(prog, tol),
        prog.P.tocsr(),
        prog.A.T.tocsr(),
    )
    if coupling_block is not None:
        first = starts[coupling_block]
        object.__setattr__(
            out, "pooled_rows", np.arange(first, first + b.blocks[coupling_block].size)
        )
    if extra_blocks:
        object.__setattr__(
            out,
            "extra_rows",
            {k: starts[i] + np.arange(b.blocks[i].size) for k, i in extra_blocks.items()},
        )
    # the rows found must hold what the lowering put there (a change in the builder's
    # row order would otherwise fill the wrong rows silently)
    if out.fill_rows.size:
        lim = _limits(account)[out.fill_piece]
        want = np.where(out.fill_max, lim[:, 1], -lim[:, 0])
        if not np.array_equal(prog.b[out.fill_rows], want):
            raise RuntimeError("rebalance program: the account rows are not where expected")
    return out
