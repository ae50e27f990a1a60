"""Canonical conic programs.

A :class:`Program` is ``minimize 1/2 x'Px + q'x`` subject to ``b - A x in K``
with ``K`` a product of cones in the order zero, non-negative, second-order,
exponential and power cones (the convention shared by Clarabel and SCS).
Programs are assembled by :class:`Builder` straight from numpy arrays, with
no modelling layer between us and the solver: the modelling layer's own
overhead per solve (about 1 ms for a 12-asset problem through cvxpy's cached
parameters, measured) is larger than the whole solve.

The solvers that take a program live in :mod:`optimizer.solvers`, one module
per solver; every solve there returns an :class:`Outcome` with a normalised
status.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

#: The cone kinds of a program, in their canonical order.
CONES = ("zero", "nonneg", "soc", "exp", "pow")


@dataclass(frozen=True)
class Tag:
    """What one row of a program enforces: a constraint's ``name``, its ``label``,
    and ``side`` (``"min"``, ``"max"`` or ``"equal"``)."""

    name: str
    label: str
    side: str


@dataclass
class _Block:
    cone: str
    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    const: np.ndarray
    tags: list
    homogeneous: bool
    size: int
    param: float = 0.0  # power-cone exponent
    divisor: float = 1.0  # the rows (and constants) as added, divided by this


class Builder:
    """Assemble a :class:`Program` from blocks of rows.

    Parameters
    ----------
    n : int
        Number of leading variables (the weights).
    homogenize : bool
        If True, a scalar ``t >= 0`` (the last weight-like variable, index
        ``n``) multiplies every constant of a homogeneous block instead of 1:
        the perspective used by the max-Sharpe transformation.
    """

    def __init__(self, n: int, *, homogenize: bool = False) -> None:
        self.n = n
        self.homogenize = homogenize
        self.nx = n + (1 if homogenize else 0)
        self.blocks: list[_Block] = []
        self._p: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._q: list[tuple[np.ndarray, np.ndarray]] = []

    @property
    def t_index(self) -> int | None:
        """Index of the homogenizing scalar ``t``, or None when the builder does not homogenize."""
        return self.n if self.homogenize else None

    def var(self, k: int) -> int:
        """Add ``k`` auxiliary variables; return the index of the first."""
        start = self.nx
        self.nx += k
        return start

    # objective ---------------------------------------------------------------
    def quad(self, rows, cols, vals) -> None:
        """Add entries to P (give both triangles or a symmetric full block)."""
        self._p.append((np.asarray(rows), np.asarray(cols), np.asarray(vals, dtype=float)))

    def quad_dense(self, start: int, matrix: np.ndarray) -> None:
        """Add a dense symmetric block of P starting at variable ``start``."""
        k = matrix.shape[0]
        r, c = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        self.quad(r.ravel() + start, c.ravel() + start, matrix.ravel())

    def lin(self, cols, vals) -> None:
        """Add to q."""
        self._q.append((np.asarray(cols), np.asarray(vals, dtype=float)))

    # constraints ---------------------------------------------------------------
    def add(
        self,
        cone: str,
        matrix,
        cols,
        const,
        tags=None,
        *,
        homogeneous: bool = True,
        param: float = 0.0,
    ) -> None:
        """Add rows ``const - matrix @ x[cols] in cone``.

        ``matrix`` is dense (m x len(cols)) or sparse; ``const`` has m entries.
        Rows of a homogeneous block scale their constant by ``t`` when the
        builder homogenizes.
        """
        m = sp.coo_matrix(matrix)
        cols = np.asarray(cols)
        const = np.asarray(const, dtype=float).reshape(-1)
        if const.shape[0] != m.shape[0]:
            raise ValueError("const and matrix rows differ")
        self.blocks.append(
            _Block(
                cone,
                m.row.astype(np.int64),
                cols[m.col].astype(np.int64),
                m.data.astype(float),
                const,
                list(tags) if tags is not None else [None] * m.shape[0],
                homogeneous,
                m.shape[0],
                param,
            )
        )

    def scale_blocks(self, start: int, divisor: float) -> None:
        """Divide the rows and constants of the blocks added since block ``start`` by ``divisor``.

        The program's :attr:`Program.row_scale` records it, so that the duals
        of those rows are turned back into the units the rows were given in.
        """
        if divisor == 1.0:
            return
        for blk in self.blocks[start:]:
            blk.vals = blk.vals / divisor
            blk.const = blk.const / divisor
            blk.divisor *= divisor

    def build(self) -> Program:
        """Stack the blocks, cones in canonical order."""
        order = sorted(range(len(self.blocks)), key=lambda i: CONES.index(self.blocks[i].cone))
        rows, cols, vals, b, tags, cones, divisors = [], [], [], [], [], [], []
        offset = 0
        t = self.t_index
        for i in order:
            blk = self.blocks[i]
            rows.append(blk.rows + offset)
            cols.append(blk.cols)
            vals.append(blk.vals)
            if t is not None and blk.homogeneous:
                nz = np.flatnonzero(blk.const)
                rows.append(nz + offset)
                cols.append(np.full(nz.size, t))
                vals.append(-blk.const[nz])
                b.append(np.zeros(blk.size))
            else:
                b.append(blk.const)
            tags.extend(blk.tags)
            cones.append((blk.cone, blk.size, blk.param))
            divisors.append(np.full(blk.size, blk.divisor))
            offset += blk.size
        m = offset
        A = sp.csc_matrix(
            (
                np.concatenate(vals) if vals else np.zeros(0),
                (
                    np.concatenate(rows) if rows else np.zeros(0, int),
                    np.concatenate(cols) if cols else np.zeros(0, int),
                ),
            ),
            shape=(m, self.nx),
        )
        if self._p:
            pr = np.concatenate([p[0] for p in self._p])
            pc = np.concatenate([p[1] for p in self._p])
            pv = np.concatenate([p[2] for p in self._p])
            P = sp.csc_matrix((pv, (pr, pc)), shape=(self.nx, self.nx))
        else:
            P = sp.csc_matrix((self.nx, self.nx))
        q = np.zeros(self.nx)
        for c, v in self._q:
            np.add.at(q, c, v)
        scaled = any(blk.divisor != 1.0 for blk in self.blocks)
        return Program(
            P,
            q,
            A,
            np.concatenate(b) if b else np.zeros(0),
            _merge(cones),
            tags,
            row_scale=np.concatenate(divisors) if scaled else None,
        )


def _merge(cones):
    """Merge consecutive zero / non-negative blocks (they are one cone each)."""
    out: list[tuple[str, int, float]] = []
    for cone, size, param in cones:
        if out and cone in ("zero", "nonneg") and out[-1][0] == cone:
            out[-1] = (cone, out[-1][1] + size, param)
        elif cone == "exp":
            out.extend([("exp", 3, 0.0)] * (size // 3))
        elif cone == "pow":
            out.extend([("pow", 3, param)] * (size // 3))
        else:
            out.append((cone, size, param))
    return out


@dataclass
class Program:
    """``min 1/2 x'Px + q'x`` s.t. ``b - A x in K``; ``tags`` names every row.

    ``row_scale`` (m,), when not None, holds the divisor each row was scaled
    by (:meth:`Builder.scale_blocks`): the dual of row ``i`` in the units the
    row was given in is ``z[i] / row_scale[i]``.
    """

    P: sp.csc_matrix
    q: np.ndarray
    A: sp.csc_matrix
    b: np.ndarray
    cones: list
    tags: list
    _triu: sp.csc_matrix | None = field(default=None, repr=False)
    _rows: dict | None = field(default=None, repr=False)
    row_scale: np.ndarray | None = field(default=None, repr=False)

    @property
    def row_of(self) -> dict[tuple[str, str], int]:
        """The row of each tagged ``(label, side)``, computed once."""
        if self._rows is None:
            self._rows = {(t.label, t.side): i for i, t in enumerate(self.tags) if t is not None}
        return self._rows

    @property
    def P_upper(self) -> sp.csc_matrix:
        """Upper triangle of P (what Clarabel, OSQP and SCS take), computed once."""
        if self._triu is None:
            self._triu = sp.triu(self.P, format="csc")
        return self._triu

    def with_q(self, q: np.ndarray) -> Program:
        """The same program with another linear objective (shares every matrix)."""
        return Program(
            self.P,
            q,
            self.A,
            self.b,
            self.cones,
            self.tags,
            self.P_upper,
            self.row_of,
            self.row_scale,
        )

    @property
    def is_qp(self) -> bool:
        """True when every cone is zero or non-negative (a QP or LP)."""
        return all(c[0] in ("zero", "nonneg") for c in self.cones)

    def sizes(self) -> tuple[int, int]:
        """Numbers of rows in the zero cone (equalities) and the non-negative cone."""
        zero = sum(s for c, s, _ in self.cones if c == "zero")
        nonneg = sum(s for c, s, _ in self.cones if c == "nonneg")
        return zero, nonneg


@dataclass
class Outcome:
    """What one solver returned.

    ``status`` is one of ``optimal``, ``optimal_inaccurate``, ``infeasible``,
    ``unbounded``, ``max_iter``, ``error``. ``z`` holds the dual of every row
    of ``A`` (non-negative on inequality rows) when the solver gives it.
    """

    solver: str
    status: str
    x: np.ndarray | None = None
    z: np.ndarray | None = None
    objective: float = float("nan")
    seconds: float = 0.0
    error: str | None = None
    extra: dict = field(default_factory=dict)

    def attempt(self) -> dict:
        """The JSON-ready record of this attempt: solver, status, seconds (and error)."""
        out = {"solver": self.solver, "status": self.status, "seconds": round(self.seconds, 6)}
        if self.error:
            out["error"] = self.error
        return out
