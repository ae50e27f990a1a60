"""Canonical constraint pieces: the one protocol every constraint is lowered to.

A constraint object (:mod:`optimizer.constraints`) lowers itself to pieces over
the post-trade weights ``w`` (and, in a rebalance, the trades ``t = b - s`` in
weight units). Every piece knows, by itself,

* ``lower_all(pieces, builder, layout, slack)``: how to add its rows to a
  :class:`~optimizer.program.Builder` (a class method, so that pieces of one
  kind go in as one block), optionally widened by an elastic slack variable;
* ``value(point)``: the constrained quantity at a :class:`Point`;
* ``limits``: ``(lo, hi)`` of that quantity, in the constraint's own units;
* ``key``: its content, hashable (what a compiled program is keyed by);
* ``widened(amount)``: the same piece with its limits relaxed by ``amount``;
* ``name``, ``label``, ``priority`` (None: hard; 1, 2, ...: soft) and
  ``kind`` (``"budget"``, ``"long-only"`` or ``""``): the diagnosis and the
  soft-constraint solver recognise the structural constraints by kind, never
  by name.

Two optional views serve arithmetic that needs no solver: ``box()`` (a bound
on one weight) and ``linear(n)`` (a linear row in ``w``). Trade-space pieces
(:class:`TradeNorm`, :class:`TradeBound`) constrain the trades of a
rebalance and are verified on the final plan, after rounding to lots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from optimizer.errors import InputError
from optimizer.program import Builder, Tag

INF = math.inf


@dataclass(frozen=True)
class Layout:
    """Where a piece finds its variables in a program.

    Attributes
    ----------
    n : int
        Number of assets; the weights are ``x[:n]``.
    buy, sell : numpy.ndarray of int, optional
        Columns of the buys and sells (weight units) of a rebalance program.
    risk : RiskModel, optional
        The problem's covariance (risk limits need it).
    """

    n: int
    buy: np.ndarray | None = None
    sell: np.ndarray | None = None
    risk: object = None

    @property
    def w(self) -> np.ndarray:
        return np.arange(self.n)


@dataclass(frozen=True)
class Point:
    """Where pieces are evaluated: weights ``w`` (n,) and trades (n,) in weight units."""

    w: np.ndarray
    trades: np.ndarray | None = None
    risk: object = None


def _arr_key(a: np.ndarray) -> tuple:
    a = np.ascontiguousarray(a, dtype=float)
    return (a.shape, a.tobytes())


def _slack_cols(slack: int | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Extra column and coefficient that widen ``k`` rows by the slack variable."""
    if slack is None:
        return np.zeros(0, int), np.zeros((k, 0))
    return np.array([slack]), -np.ones((k, 1))


@dataclass(frozen=True, eq=False)
class Piece:
    """Base of every piece: identity, priority and the default (absent) views."""

    name: str
    label: str

    @property
    def limits(self) -> tuple[float, float]:  # pragma: no cover - every piece overrides
        raise NotImplementedError

    def box(self) -> tuple[int, float, float] | None:
        """``(index, lo, hi)`` when the piece bounds one weight, else None."""
        return None

    @property
    def shape(self) -> tuple:
        """What the piece adds to a program's matrices: its key without its limit values.

        Two pieces of one shape differ only in the constants of their rows
        (the program's ``b``), so a compiled program serves both.
        """
        lo, hi = self.limits
        return (
            type(self).__name__,
            self.name,
            self.label,
            math.isfinite(lo),
            math.isfinite(hi),
            lo == hi,
        )

    def linear(self, n: int) -> tuple[np.ndarray, float, float] | None:
        """``(a, lo, hi)`` when the piece is ``lo <= a'w <= hi``, else None."""
        return None

    def conflict(self, lo: np.ndarray, hi: np.ndarray, budget: float | None) -> tuple | None:
        """Why this piece cannot hold inside the box ``[lo, hi]`` (arithmetic only).

        Returns ``(side, gap, reachable)``: the side that fails, by how much it
        must give, and the nearest value the box (and budget) allow; None when
        arithmetic finds no conflict.
        """
        return None


def _meta_key(p) -> tuple:
    return (type(p).__name__, p.name, p.label, p.priority, p.kind)


def _linear_rows(b: Builder, rows: list, layout: Layout, slack: int | None) -> None:
    """Add ``lo <= a'w <= hi`` rows (a list of (a, lo, hi, tag-name, label, slack-col))."""
    for a, lo, hi, name, label, s in rows:
        cols_extra = np.zeros(0, int) if s is None else np.array([s])
        cols = np.concatenate([layout.w, cols_extra])
        if lo == hi and s is None:
            b.add("zero", a[None, :], cols, [hi], [Tag(name, label, "equal")])
            continue
        widen = [] if s is None else [-1.0]
        if np.isfinite(hi) or lo == hi:
            b.add("nonneg", np.r_[a, widen][None, :], cols, [hi], [Tag(name, label, "max")])
        if np.isfinite(lo) or lo == hi:
            b.add("nonneg", np.r_[-a, widen][None, :], cols, [-lo], [Tag(name, label, "min")])


@dataclass(frozen=True, eq=False)
class Row(Piece):
    """``lo <= coef @ w <= hi``."""

    coef: np.ndarray = field(default=None)
    lo: float = -INF
    hi: float = INF
    priority: int | None = None
    kind: str = ""

    @property
    def key(self) -> tuple:
        return (*_meta_key(self), _arr_key(self.coef), self.lo, self.hi)

    @property
    def limits(self) -> tuple[float, float]:
        return self.lo, self.hi

    def value(self, pt: Point) -> float:
        return float(self.coef @ pt.w)

    def linear(self, n: int) -> tuple[np.ndarray, float, float]:
        return self.coef, self.lo, self.hi

    def widened(self, amount: float) -> Row:
        return replace(self, lo=self.lo - amount, hi=self.hi + amount)

    @staticmethod
    def lower_all(pieces: Sequence[Row], b: Builder, layout: Layout, slack=None) -> None:
        if slack is not None:
            rows = [(p.coef, p.lo, p.hi, p.name, p.label, slack[p.name]) for p in pieces]
            _linear_rows(b, rows, layout, None)
            return
        eq_a, eq_c, eq_t, le_a, le_c, le_t = [], [], [], [], [], []
        for p in pieces:
            if p.lo == p.hi:
                eq_a.append(p.coef), eq_c.append(p.hi), eq_t.append(Tag(p.name, p.label, "equal"))
                continue
            if np.isfinite(p.hi):
                le_a.append(p.coef), le_c.append(p.hi), le_t.append(Tag(p.name, p.label, "max"))
            if np.isfinite(p.lo):
                le_a.append(-p.coef), le_c.append(-p.lo), le_t.append(Tag(p.name, p.label, "min"))
        if eq_a:
            b.add("zero", np.vstack(eq_a), layout.w, eq_c, eq_t)
        if le_a:
            b.add("nonneg", np.vstack(le_a), layout.w, le_c, le_t)


@dataclass(frozen=True, eq=False)
class Bound(Piece):
    """``lo <= w[index] <= hi``: a row with one unit coefficient, kept sparse."""

    index: int = 0
    lo: float = -INF
    hi: float = INF
    priority: int | None = None
    kind: str = ""

    @property
    def key(self) -> tuple:
        return (*_meta_key(self), self.index, self.lo, self.hi)

    @property
    def limits(self) -> tuple[float, float]:
        return self.lo, self.hi

    def value(self, pt: Point) -> float:
        return float(pt.w[self.index])

    def box(self) -> tuple[int, float, float]:
        return self.index, self.lo, self.hi

    def linear(self, n: int) -> tuple[np.ndarray, float, float]:
        a = np.zeros(n)
        a[self.index] = 1.0
        return a, self.lo, self.hi

    def widened(self, amount: float) -> Bound:
        return replace(self, lo=self.lo - amount, hi=self.hi + amount)

    @staticmethod
    def lower_all(pieces: Sequence[Bound], b: Builder, layout: Layout, slack=None) -> None:
        n = layout.n
        if slack is not None:
            rows = [(p.linear(n)[0], p.lo, p.hi, p.name, p.label, slack[p.name]) for p in pieces]
            _linear_rows(b, rows, layout, None)
            return
        idx, sign, const, tags = [], [], [], []
        for p in pieces:
            if p.lo == p.hi:
                b.add("zero", np.ones((1, 1)), [p.index], [p.hi], [Tag(p.name, p.label, "equal")])
                continue
            if np.isfinite(p.hi):
                idx.append(p.index), sign.append(1.0), const.append(p.hi)
                tags.append(Tag(p.name, p.label, "max"))
            if np.isfinite(p.lo):
                idx.append(p.index), sign.append(-1.0), const.append(-p.lo)
                tags.append(Tag(p.name, p.label, "min"))
        if idx:
            k = len(idx)
            mat = sp.csr_matrix((sign, (np.arange(k), idx)), shape=(k, n))
            b.add("nonneg", mat, layout.w, const, tags)


@dataclass(frozen=True, eq=False)
class Norm1(Piece):
    """``sum(scale * |w - center|) <= max`` (turnover and leverage on weights)."""

    center: np.ndarray = field(default=None)
    scale: np.ndarray = field(default=None)
    max: float = INF
    priority: int | None = None
    kind: str = ""

    @property
    def key(self) -> tuple:
        return (*_meta_key(self), _arr_key(self.center), _arr_key(self.scale), self.max)

    @property
    def limits(self) -> tuple[float, float]:
        return -INF, self.max

    def value(self, pt: Point) -> float:
        return float(self.scale @ np.abs(pt.w - self.center))

    def widened(self, amount: float) -> Norm1:
        return replace(self, max=self.max + amount)

    def conflict(self, lo, hi, budget):
        if budget is None or np.any(self.center != 0):
            return None
        need = abs(budget) * float(self.scale.min())
        if self.max < need - 1e-9:
            return "max", need - self.max, need
        return None

    @staticmethod
    def lower_all(pieces: Sequence[Norm1], b: Builder, layout: Layout, slack=None) -> None:
        n = layout.n
        eye = sp.eye(n, format="csr")
        for p in pieces:
            u = b.var(n)
            cols = np.concatenate([layout.w, np.arange(u, u + n)])
            b.add("nonneg", sp.hstack([eye, -eye]), cols, p.center)
            b.add("nonneg", sp.hstack([-eye, -eye]), cols, -p.center)
            extra, widen = _slack_cols(None if slack is None else slack[p.name], 1)
            b.add(
                "nonneg",
                np.hstack([p.scale[None, :], widen]),
                np.concatenate([np.arange(u, u + n), extra]),
                [p.max],
                [Tag(p.name, p.label, "max")],
            )


@dataclass(frozen=True, eq=False)
class RiskLimit(Piece):
    """``sqrt((w - benchmark)' C (w - benchmark)) <= max`` with the problem's covariance."""

    benchmark: np.ndarray = field(default=None)
    max: float = INF
    priority: int | None = None
    kind: str = ""

    @property
    def key(self) -> tuple:
        return (*_meta_key(self), _arr_key(self.benchmark), self.max)

    @property
    def limits(self) -> tuple[float, float]:
        return -INF, self.max

    def value(self, pt: Point) -> float:
        return float(np.sqrt(pt.risk.variance(pt.w - self.benchmark)))

    def widened(self, amount: float) -> RiskLimit:
        return replace(self, max=self.max + amount)

    @staticmethod
    def lower_all(pieces: Sequence[RiskLimit], b: Builder, layout: Layout, slack=None) -> None:
        n = layout.n
        for p in pieces:
            if layout.risk is None:
                raise InputError(f"constraint {p.name!r} needs a covariance")
            rt = layout.risk.root_t()
            extra, widen = _slack_cols(None if slack is None else slack[p.name], 1)
            top = sp.hstack([sp.csr_matrix((1, n)), sp.csr_matrix(widen)])
            body = sp.hstack([sp.csr_matrix(rt), sp.csr_matrix((rt.shape[0], extra.size))])
            mat = sp.vstack([top, body], format="csr")
            const = np.concatenate([[p.max], rt @ p.benchmark])
            tags = [Tag(p.name, p.label, "max")] + [None] * rt.shape[0]
            b.add("soc", mat, np.concatenate([layout.w, extra]), const, tags)


@dataclass(frozen=True, eq=False)
class TradeNorm(Piece):
    """``sum(scale * |t|) <= max`` over the trades ``t`` (weight units): a turnover cap."""

    scale: np.ndarray = field(default=None)
    max: float = INF
    priority: int | None = None
    kind: str = ""

    @property
    def key(self) -> tuple:
        return (*_meta_key(self), _arr_key(self.scale), self.max)

    @property
    def limits(self) -> tuple[float, float]:
        return -INF, self.max

    def value(self, pt: Point) -> float:
        return float(self.scale @ np.abs(pt.trades))

    @property
    def shape(self) -> tuple:
        return (*super().shape, _arr_key(self.scale))

    def widened(self, amount: float) -> TradeNorm:
        return replace(self, max=self.max + amount)

    @staticmethod
    def lower_all(pieces: Sequence[TradeNorm], b: Builder, layout: Layout, slack=None) -> None:
        both = np.concatenate([layout.buy, layout.sell])
        for p in pieces:
            extra, widen = _slack_cols(None if slack is None else slack[p.name], 1)
            b.add(
                "nonneg",
                np.hstack([np.r_[p.scale, p.scale][None, :], widen]),
                np.concatenate([both, extra]),
                [p.max],
                [Tag(p.name, p.label, "max")],
            )


@dataclass(frozen=True, eq=False)
class TradeBound(Piece):
    """``|t[index]| <= cap``: the trade in one asset (weight units), a participation limit."""

    index: int = 0
    cap: float = INF
    priority: int | None = None
    kind: str = ""

    @property
    def key(self) -> tuple:
        return (*_meta_key(self), self.index, self.cap)

    @property
    def limits(self) -> tuple[float, float]:
        return -INF, self.cap

    def value(self, pt: Point) -> float:
        return float(abs(pt.trades[self.index]))

    def widened(self, amount: float) -> TradeBound:
        return replace(self, cap=self.cap + amount)

    @staticmethod
    def lower_all(pieces: Sequence[TradeBound], b: Builder, layout: Layout, slack=None) -> None:
        for p in pieces:
            extra, widen = _slack_cols(None if slack is None else slack[p.name], 1)
            b.add(
                "nonneg",
                np.hstack([np.ones((1, 2)), widen]),
                np.concatenate([[layout.buy[p.index], layout.sell[p.index]], extra]),
                [p.cap],
                [Tag(p.name, p.label, "max")],
            )


def lower_pieces(
    b: Builder, pieces: Sequence[Piece], layout: Layout, slack: dict | None = None
) -> None:
    """Add every piece to ``b``, each kind as one block, in a fixed order of kinds.

    ``slack`` maps a constraint name to the column of its elastic slack
    (the constraint's limits widen by that variable); None lowers the pieces
    as they are.
    """
    groups: dict[type, list] = {}
    for p in pieces:
        groups.setdefault(type(p), []).append(p)
    for kind, group in groups.items():
        kind.lower_all(group, b, layout, slack)


def violation(p: Piece, pt: Point) -> tuple[float, float]:
    """``(violation, scale)`` of one piece at a point (violation 0 when it holds)."""
    lo, hi = p.limits
    v = p.value(pt)
    scale = max(1.0, abs(lo) if math.isfinite(lo) else 0.0, abs(hi) if math.isfinite(hi) else 0.0)
    return max(lo - v, v - hi, 0.0), scale


def slack_sides(p: Piece, pt: Point) -> list[tuple[str, float]]:
    """Each side of a piece with its slack at a point (``equal``: distance to the value)."""
    lo, hi = p.limits
    v = p.value(pt)
    if lo == hi:
        return [("equal", abs(v - hi))]
    return [("max", hi - v), ("min", v - lo)]
