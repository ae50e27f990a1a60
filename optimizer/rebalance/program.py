"""The rebalance program, with named variable blocks, compiled once per structure.

Every variable is in weight units (fractions of the post-trade value ``V1``):

=========  =====  ==============================================================
block      size   meaning
=========  =====  ==============================================================
weights    n      post-trade weights ``w``
buys       n      ``b >= 0``, bought value over ``V1``
sells      n      ``s >= 0``, sold value over ``V1``
impact     n      ``m_i >= (b_i + s_i)^1.5`` (power cones; only with impact costs)
=========  =====  ==============================================================

The rows tie them together: the holdings equation ``w - b + s = h / V1`` (one
row per asset), ``b, s >= 0``, ``b_i = s_i = 0`` for each frozen asset, the
impact cones, the tracking term (:func:`add_tracking`), then the constraint
pieces (:mod:`optimizer.pieces`) lowered against :meth:`Columns.layout`.

The tracking term ``lambda (w - target)' C (w - target)`` is kept as a
deviation: with ``C = R R' + diag(d)`` (:class:`Root`: a Cholesky factor of a
dense covariance, or the loadings and specific variances of a factor model),
``y = R'(w - target)``
and ``lambda (|y|^2 + sum(d w^2))`` in the objective. Expanded as
``lambda w'Cw - 2 lambda target'C w``, the program's optimum would be the
tracking variance less the constant ``lambda target' C target``, a figure
about ten thousand times larger than the variance left, and a solver's
relative gap tolerance would apply to that (measured on the adviser case
with a turnover cap, at tolerance 1e-9: trades up to 10 cents from the exact
optimum expanded, 3 cents as a deviation).

What changes from one account to the next is only ``q`` (the target, the cost
rates, the impact coefficient scaled by ``sqrt(V1)``) and ``b`` (the holdings
``h / V1`` and the limits of the *account pieces*: no-trade band edges,
minimum-trade floors, participation and turnover limits). A
:class:`RebalanceProgram` therefore keeps ``P``, ``A`` and the cones, knows
which rows of ``b`` each account piece fills, and makes each account's program
with :meth:`RebalanceProgram.instance`: the matrices are shared, so one
Clarabel workspace of its :class:`~optimizer.solvers.WorkspacePool` serves
every account by ``update(q=, b=)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.pieces import Layout, Piece, TradeNorm, lower_pieces
from optimizer.program import CONES, Builder, Program
from optimizer.riskmodel import RiskModel
from optimizer.solvers import WorkspacePool


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
    """

    n: int
    weights: range
    buys: range
    sells: range
    impact: range | None = None

    def layout(self, risk: RiskModel | None) -> Layout:
        """The :class:`~optimizer.pieces.Layout` pieces are lowered against."""
        return Layout(
            self.n, buy=np.asarray(self.buys), sell=np.asarray(self.sells), risk=risk
        )

    def weights_of(self, x: np.ndarray) -> np.ndarray:
        """``w`` from a solution ``x``, shape (n,)."""
        return x[self.weights.start : self.weights.stop]

    def trades_of(self, x: np.ndarray) -> np.ndarray:
        """``b - s`` from a solution ``x``: the trades in weight units, shape (n,)."""
        return x[self.buys.start : self.buys.stop] - x[self.sells.start : self.sells.stop]


def add_trades(
    b: Builder, n: int, h_w: np.ndarray, frozen: Sequence[int]
) -> tuple[Columns, int]:
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
        mat = sp.csr_matrix((np.ones(2 * m), (np.arange(2 * m), np.r_[idx, n + idx])), (2 * m, 2 * n))
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


@dataclass(frozen=True, eq=False)
class Root:
    """``C = R R' + diag(d)``: what the tracking term of a program is built from.

    Attributes
    ----------
    rt : numpy.ndarray or scipy.sparse matrix, shape (k, n)
        ``R'``: the transposed Cholesky factor of a positive definite dense
        covariance (upper triangular, ``k = n``), an eigen-root of a singular one,
        or the loadings ``G'`` of a factor model.
    d : numpy.ndarray, shape (n,), or None
        Specific variances of a factor model (None for a dense covariance).
    """

    rt: np.ndarray | sp.spmatrix
    d: np.ndarray | None = None

    @classmethod
    def of(cls, risk: RiskModel) -> Root:
        """The root of a risk model (computed once per rebalancer)."""
        if risk.kind == "factor":
            return cls(risk.G.T, risk.d)
        try:
            return cls(np.linalg.cholesky(risk.dense).T)
        except np.linalg.LinAlgError:  # singular: the eigen-root of the positive part
            return cls(risk.root_t())


def add_tracking(b: Builder, root: Root, weight: float, n: int) -> int | None:
    """Add the quadratic part of ``weight * (w - target)' C (w - target)`` to ``b``.

    A block ``y`` (one variable per row of ``R'``) with rows
    ``R'w - y = R' target`` (constants per account) and
    ``weight * (|y|^2 + sum(d w^2))`` in ``P``.

    Returns
    -------
    int or None
        Index among ``b.blocks`` of the rows ``R'w - y`` (None for a zero weight).
    """
    if weight == 0:
        return None
    k = root.rt.shape[0]
    y = b.var(k)
    block = len(b.blocks)
    b.add(
        "zero",
        sp.hstack([sp.csr_matrix(root.rt), -sp.eye(k)]),
        np.r_[np.arange(n), np.arange(y, y + k)],
        np.zeros(k),
        homogeneous=False,
    )
    b.quad(np.arange(y, y + k), np.arange(y, y + k), np.full(k, 2.0 * weight))
    if root.d is not None:
        b.quad(np.arange(n), np.arange(n), 2.0 * weight * root.d)
    return block


def tracking_data(
    root: Root, weight: float, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Per-account data of the tracking term of :func:`add_tracking`.

    Returns
    -------
    q_w : numpy.ndarray, shape (n,)
        Linear objective on the weights (``-2 weight d * target``).
    root_b : numpy.ndarray, shape (k,), or None
        Constants of the rows ``R'w - y``: ``R' target`` (None for a zero weight).
    constant : float
        What the program's objective lacks of ``weight * |w - target|_C^2``
        (``weight * sum(d target^2)``).
    """
    n = len(target)
    if weight == 0:
        return np.zeros(n), None, 0.0
    root_b = np.asarray(root.rt @ target).reshape(-1)
    if root.d is None:
        return np.zeros(n), root_b, 0.0
    d_tau = root.d * target
    return -2.0 * weight * d_tau, root_b, weight * float(target @ d_tau)


def shape_key(p: Piece) -> tuple:
    """What an account piece adds to a program's structure (its limits go in ``b``)."""
    lo, hi = p.limits
    key = (type(p).__name__, p.name, p.label, math.isfinite(lo), math.isfinite(hi), lo == hi)
    if isinstance(p, TradeNorm):
        key += (p.scale.tobytes(),)
    return key


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
    fill_rows, fill_piece, fill_max : numpy.ndarray
        Row of ``b``, index of the account piece, and side (True: the upper
        limit ``hi``, False: ``-lo``) of every row an account piece fills.
    pool : WorkspacePool
        Clarabel workspaces of this structure, shared by threads.
    """

    template: Program
    cols: Columns
    holdings_rows: np.ndarray
    root_rows: np.ndarray
    fill_rows: np.ndarray
    fill_piece: np.ndarray
    fill_max: np.ndarray
    pool: WorkspacePool

    @property
    def nbytes(self) -> int:
        """Bytes held by the matrices (approximate)."""
        t = self.template
        return int(
            sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in (t.P, t.A))
            + t.q.nbytes
            + t.b.nbytes
        )

    def instance(
        self,
        *,
        h_w: np.ndarray,
        q_w: np.ndarray,
        root_b: np.ndarray | None,
        buy: np.ndarray,
        sell: np.ndarray,
        impact: np.ndarray | None,
        account: Sequence[Piece],
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
            Impact coefficient per unit of ``m`` (``impact_i sqrt(V1)``).
        account : sequence of Piece
            The account pieces, in the order the program was compiled with.
        """
        t, c = self.template, self.cols
        q = t.q.copy()
        q[c.weights.start : c.weights.stop] = q_w
        q[c.buys.start : c.buys.stop] += buy
        q[c.sells.start : c.sells.stop] += sell
        if c.impact is not None:
            q[c.impact.start : c.impact.stop] = impact
        b = t.b.copy()
        b[self.holdings_rows] = h_w
        if self.root_rows.size:
            b[self.root_rows] = root_b
        if self.fill_rows.size:
            lim = _limits(account)[self.fill_piece]
            b[self.fill_rows] = np.where(self.fill_max, lim[:, 1], -lim[:, 0])
        return Program(t.P, q, t.A, b, t.cones, t.tags, t.P_upper)


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
    """
    b = Builder(n)
    cols, holdings_block = add_trades(b, n, np.zeros(n), frozen)
    if impact:
        m = b.var(n)
        cols = Columns(n, cols.weights, cols.buys, cols.sells, range(m, m + n))
        rows = np.r_[3 * np.arange(n), 3 * np.arange(n) + 2, 3 * np.arange(n) + 2]
        which = np.r_[np.arange(n), n + np.arange(n), 2 * n + np.arange(n)]
        mat = sp.csr_matrix((-np.ones(3 * n), (rows, which)), shape=(3 * n, 3 * n))
        block_cols = np.r_[np.asarray(cols.impact), np.asarray(cols.buys), np.asarray(cols.sells)]
        b.add("pow", mat, block_cols, np.tile([0.0, 1.0, 0.0], n), param=2.0 / 3.0)
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
    out = RebalanceProgram(
        prog,
        cols,
        np.arange(start, start + n),
        root_rows,
        np.array(rows, dtype=int),
        np.array(piece, dtype=int),
        np.array(upper, dtype=bool),
        WorkspacePool(prog, tol),
    )
    # the rows found must hold what the lowering put there (a change in the builder's
    # row order would otherwise fill the wrong rows silently)
    if out.fill_rows.size:
        lim = _limits(account)[out.fill_piece]
        want = np.where(out.fill_max, lim[:, 1], -lim[:, 0])
        if not np.array_equal(prog.b[out.fill_rows], want):
            raise RuntimeError("rebalance program: the account rows are not where expected")
    return out
