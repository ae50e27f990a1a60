"""Canonical conic programs and the solvers that take them.

A :class:`Program` is ``minimize 1/2 x'Px + q'x`` subject to ``b - A x in K``
with ``K`` a product of cones in the order zero, non-negative, second-order,
exponential and power cones (the convention shared by Clarabel and SCS).
Programs are assembled by :class:`Builder` straight from numpy arrays, with
no modelling layer between us and the solver: the modelling layer's own
overhead per solve (about 1 ms for a 12-asset problem through cvxpy's cached
parameters, measured) is larger than the whole solve.

Solvers: Clarabel (interior point, every cone), OSQP (ADMM, QPs only), SCS
(ADMM, every cone) and ProxQP's dense backend (QPs, warm-startable; used for
hot loops such as frontier sweeps). Every call returns a :class:`Outcome`
with a normalised status; no solver exception escapes.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

CONES = ("zero", "nonneg", "soc", "exp", "pow")
DEFAULT_CHAIN = ("CLARABEL", "OSQP", "SCS")
KNOWN_SOLVERS = ("CLARABEL", "OSQP", "SCS", "PROXQP")


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

    def build(self) -> Program:
        """Stack the blocks, cones in canonical order."""
        order = sorted(range(len(self.blocks)), key=lambda i: CONES.index(self.blocks[i].cone))
        rows, cols, vals, b, tags, cones = [], [], [], [], [], []
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
        return Program(P, q, A, np.concatenate(b) if b else np.zeros(0), _merge(cones), tags)


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
    """``min 1/2 x'Px + q'x`` s.t. ``b - A x in K``; ``tags`` names every row."""

    P: sp.csc_matrix
    q: np.ndarray
    A: sp.csc_matrix
    b: np.ndarray
    cones: list
    tags: list
    _triu: sp.csc_matrix | None = field(default=None, repr=False)

    @property
    def P_upper(self) -> sp.csc_matrix:
        """Upper triangle of P (what Clarabel, OSQP and SCS take), computed once."""
        if self._triu is None:
            self._triu = sp.triu(self.P, format="csc")
        return self._triu

    def with_q(self, q: np.ndarray) -> Program:
        """The same program with another linear objective (shares every matrix)."""
        return Program(self.P, q, self.A, self.b, self.cones, self.tags, self.P_upper)

    @property
    def is_qp(self) -> bool:
        """True when every cone is zero or non-negative (a QP or LP)."""
        return all(c[0] in ("zero", "nonneg") for c in self.cones)

    def sizes(self) -> tuple[int, int]:
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
        out = {"solver": self.solver, "status": self.status, "seconds": round(self.seconds, 6)}
        if self.error:
            out["error"] = self.error
        return out


_CLARABEL_STATUS = {
    "Solved": "optimal",
    "AlmostSolved": "optimal_inaccurate",
    "PrimalInfeasible": "infeasible",
    "AlmostPrimalInfeasible": "infeasible",
    "DualInfeasible": "unbounded",
    "AlmostDualInfeasible": "unbounded",
    "MaxIterations": "max_iter",
    "MaxTime": "max_iter",
    # no certificate: the iterate may be far from optimal (an unbounded LP ends here),
    # so it is a failure and the chain moves on (cvxpy maps it to SOLVER_ERROR too)
    "InsufficientProgress": "error",
    "NumericalError": "error",
}


_CLARABEL_CONES: dict[int, tuple] = {}
_CLARABEL_SOLVERS: dict[tuple, tuple] = {}


def _clarabel_cones(cones: list) -> list:
    """Clarabel's cone objects for a program's cone list, made once per list object."""
    import clarabel

    hit = _CLARABEL_CONES.get(id(cones))
    if hit is not None and hit[0] is cones:
        return hit[1]
    out = []
    for cone, size, param in cones:
        if cone == "zero":
            out.append(clarabel.ZeroConeT(size))
        elif cone == "nonneg":
            out.append(clarabel.NonnegativeConeT(size))
        elif cone == "soc":
            out.append(clarabel.SecondOrderConeT(size))
        elif cone == "exp":
            out.append(clarabel.ExponentialConeT())
        else:
            out.append(clarabel.PowerConeT(param))
    if len(_CLARABEL_CONES) > 64:
        _CLARABEL_CONES.clear()
    _CLARABEL_CONES[id(cones)] = (cones, out)  # keeps the list alive so its id stays unique
    return out


def _clarabel(prog: Program, tol: float) -> Outcome:
    import clarabel

    cones = _clarabel_cones(prog.cones)
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = tol
    settings.tol_gap_rel = tol
    settings.tol_feas = tol
    settings.presolve_enable = False
    # programs that share their matrices (a batch of accounts, new expected returns) keep one
    # solver and only update q and b: the setup is a third of a small solve
    key = (id(prog.A), id(prog.P_upper), id(prog.cones), tol)
    hit = _CLARABEL_SOLVERS.get(key)
    if hit is not None and hit[0] is prog.A and hit[1] is prog.P_upper and hit[2] is prog.cones:
        solver = hit[3]
        solver.update(q=prog.q, b=prog.b)
    else:
        solver = clarabel.DefaultSolver(prog.P_upper, prog.q, prog.A, prog.b, cones, settings)
        if len(_CLARABEL_SOLVERS) > 32:
            _CLARABEL_SOLVERS.clear()
        _CLARABEL_SOLVERS[key] = (prog.A, prog.P_upper, prog.cones, solver)
    sol = solver.solve()
    raw = str(sol.status).split(".")[-1]
    status = _CLARABEL_STATUS.get(raw, "error")
    x = np.asarray(sol.x) if status.startswith("optimal") else None
    z = np.asarray(sol.z) if status.startswith("optimal") else None
    error = f"Clarabel status {raw}" if status == "error" else None
    return Outcome("CLARABEL", status, x, z, float(sol.obj_val), error=error)


def _osqp(prog: Program, tol: float) -> Outcome:
    import osqp

    if not prog.is_qp:
        return Outcome("OSQP", "error", error="OSQP takes only QPs (no cones)")
    n_eq, _ = prog.sizes()
    u = prog.b.copy()
    lo = np.full_like(u, -np.inf)
    lo[:n_eq] = u[:n_eq]
    solver = osqp.OSQP()
    solver.setup(
        prog.P_upper,
        prog.q,
        prog.A,
        lo,
        u,
        verbose=False,
        eps_abs=tol,
        eps_rel=tol,
        max_iter=200_000,
        polishing=True,
    )
    res = solver.solve()
    text = str(res.info.status).lower()
    if "solved inaccurate" in text:
        status = "optimal_inaccurate"
    elif "solved" in text:
        status = "optimal"
    elif "primal infeasible" in text:
        status = "infeasible"
    elif "dual infeasible" in text:
        status = "unbounded"
    elif "maximum iterations" in text:
        status = "max_iter"
    else:
        status = "error"
    ok = status.startswith("optimal")
    return Outcome(
        "OSQP",
        status,
        np.asarray(res.x) if ok else None,
        np.asarray(res.y) if ok else None,
        float(res.info.obj_val) if ok else float("nan"),
    )


def _scs(prog: Program, tol: float) -> Outcome:
    import scs

    cone: dict = {"z": 0, "l": 0, "q": [], "ep": 0, "p": []}
    for kind, size, param in prog.cones:
        if kind == "zero":
            cone["z"] += size
        elif kind == "nonneg":
            cone["l"] += size
        elif kind == "soc":
            cone["q"].append(size)
        elif kind == "exp":
            cone["ep"] += 1
        else:
            cone["p"].append(param)
    data = {"P": prog.P_upper, "A": prog.A, "b": prog.b, "c": prog.q}
    solver = scs.SCS(data, cone, verbose=False, eps_abs=tol, eps_rel=tol, max_iters=200_000)
    sol = solver.solve()
    text = str(sol["info"]["status"]).lower()
    if "inaccurate" in text and "solved" in text:
        status = "optimal_inaccurate"
    elif text == "solved":
        status = "optimal"
    elif "infeasible" in text and "unbounded" not in text:
        status = "infeasible"
    elif "unbounded" in text:
        status = "unbounded"
    else:
        status = "error"
    ok = status.startswith("optimal")
    return Outcome(
        "SCS",
        status,
        np.asarray(sol["x"]) if ok else None,
        np.asarray(sol["y"]) if ok else None,
        float(sol["info"]["pobj"]) if ok else float("nan"),
    )


def _proxqp(prog: Program, tol: float) -> Outcome:
    if not prog.is_qp:
        return Outcome("PROXQP", "error", error="ProxQP takes only QPs (no cones)")
    dense = ProxQP(prog, tol)
    return dense.solve()


class ProxQP:
    """A program held by ProxQP's dense backend, for warm-started re-solves.

    Inequality rows with a single non-zero become box constraints on their
    variable (ProxQP handles those cheaply); the others stay general rows.
    ``set_row_bound(row, value)`` changes the constant of one row of the
    program (say a target return) before the next ``solve()``, which starts
    from the previous solution (Bambade et al. 2022, "PROX-QP: Yet another
    quadratic programming solver for robotics and beyond").
    """

    def __init__(self, prog: Program, tol: float = 1e-9) -> None:
        import proxsuite

        self.prog = prog
        n_eq, n_in = prog.sizes()
        nx = prog.A.shape[1]
        A = prog.A.tocsr()
        ineq = A[n_eq:]
        counts = np.diff(ineq.indptr)
        single = np.flatnonzero(counts == 1)
        general = np.flatnonzero(counts != 1)
        lo_box = np.full(nx, -1e20)
        hi_box = np.full(nx, 1e20)
        self.box_rows: list[tuple[int, int, float]] = []  # (row, variable, coefficient)
        for r in single:
            var = int(ineq.indices[ineq.indptr[r]])
            coef = float(ineq.data[ineq.indptr[r]])
            self.box_rows.append((n_eq + int(r), var, coef))
        self.general = general
        self.n_eq, self.n_in = n_eq, n_in
        self.b = prog.b.copy()
        self._fill_box(lo_box, hi_box)
        qp = proxsuite.proxqp.dense.QP(nx, n_eq, len(general), True)
        qp.settings.eps_abs = tol
        qp.settings.eps_rel = 0.0
        qp.settings.verbose = False
        qp.settings.max_iter = 100_000
        # ProxQP may keep views of what it is given: hold every array on self
        self._data = (
            np.ascontiguousarray(prog.P.toarray()),
            np.ascontiguousarray(prog.q, dtype=float),
            np.ascontiguousarray(A[:n_eq].toarray()) if n_eq else None,
            np.ascontiguousarray(self.b[:n_eq]) if n_eq else None,
            np.ascontiguousarray(ineq[general].toarray()) if len(general) else None,
            np.full(len(general), -1e20) if len(general) else None,
            np.ascontiguousarray(self.b[n_eq:][general]) if len(general) else None,
            self.lo_box,
            self.hi_box,
        )
        qp.init(*self._data)
        self.qp = qp
        self.row_of_general = {n_eq + int(r): j for j, r in enumerate(general)}
        self.box_of_row = {row: (var, coef) for row, var, coef in self.box_rows}

    def _fill_box(self, lo_box: np.ndarray, hi_box: np.ndarray) -> None:
        for row, var, coef in self.box_rows:
            bound = self.b[row] / coef
            if coef > 0:
                hi_box[var] = min(hi_box[var], bound)
            else:
                lo_box[var] = max(lo_box[var], bound)
        self.lo_box, self.hi_box = lo_box, hi_box

    def set_row_bound(self, row: int, value: float) -> None:
        """Set ``b[row]`` (an inequality row of a general constraint)."""
        if row not in self.row_of_general:
            raise KeyError(f"row {row} is not a general inequality row")
        self.b[row] = value
        self._u = np.ascontiguousarray(self.b[self.n_eq :][self.general])
        self.qp.update(u=self._u, update_preconditioner=False)

    def solve(self) -> Outcome:
        import proxsuite

        start = time.perf_counter()
        self.qp.solve()
        # warm start from here on (asking for it before a first result crashes ProxQP 0.8)
        self.qp.settings.initial_guess = (
            proxsuite.proxqp.InitialGuess.WARM_START_WITH_PREVIOUS_RESULT
        )
        out = proxqp_outcome(self.qp, self.prog, time.perf_counter() - start)
        if out.x is not None:
            out.z = self._duals()
        return out

    def _duals(self) -> np.ndarray:
        """Duals on the program's rows (non-negative on inequality rows)."""
        res = self.qp.results
        z = np.zeros(self.prog.A.shape[0])
        # ProxQP's stationarity is Hx + g + A'y + C'z = 0, the same convention as the
        # chain's solvers (Px + q + A'z = 0): its equality duals are ours as they are
        z[: self.n_eq] = np.asarray(res.y)
        zin = np.asarray(res.z)
        ng = len(self.general)
        z[self.n_eq + self.general] = np.maximum(zin[:ng], 0.0)
        zbox = zin[ng:]
        for row, var, coef in self.box_rows:
            # ProxQP's box dual is positive at the upper bound, negative at the lower; it
            # prices the bound x <= b/coef, so the row coef * x <= b gets it divided by |coef|
            val = zbox[var] if coef > 0 else -zbox[var]
            z[row] = max(val, 0.0) / abs(coef)
        return z


def proxqp_outcome(qp, prog: Program, seconds: float = 0.0) -> Outcome:
    """Read a solved ProxQP problem into an :class:`Outcome`."""
    text = str(qp.results.info.status)
    if text.endswith("PROXQP_SOLVED"):
        status = "optimal"
    elif "PRIMAL_INFEASIBLE" in text:
        status = "infeasible"
    elif "DUAL_INFEASIBLE" in text:
        status = "unbounded"
    elif "MAX_ITER" in text:
        status = "max_iter"
    elif "CLOSEST" in text:
        status = "infeasible"
    else:
        status = "error"
    if not status.startswith("optimal"):
        return Outcome("PROXQP", status, seconds=seconds)
    x = np.array(qp.results.x)
    obj = 0.5 * x @ (prog.P @ x) + prog.q @ x
    return Outcome("PROXQP", status, x, None, float(obj), seconds=seconds)


_SOLVERS = {"CLARABEL": _clarabel, "OSQP": _osqp, "SCS": _scs, "PROXQP": _proxqp}


def run_solver(name: str, prog: Program, *, tol: float = 1e-9) -> Outcome:
    """Solve ``prog`` with one solver; never raises, times the call."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = _SOLVERS[name](prog, tol)
    except Exception as exc:  # a solver's own failure is recorded, never leaked
        out = Outcome(name, "error", error=f"{type(exc).__name__}: {exc}")
    out.seconds = time.perf_counter() - start
    if out.x is not None and not np.isfinite(out.x).all():
        out.status, out.x, out.z = "error", None, None
        out.error = "non-finite solution"
    return out
