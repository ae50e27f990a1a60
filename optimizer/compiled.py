"""Compiled problems that the caller owns, and the bounded content cache of the one-shot calls.

A :class:`Compiled` holds everything structural about an allocation problem:
a copy of the covariance (as a :class:`~optimizer.riskmodel.RiskModel`), the
constraints lowered to pieces, their verifier, the solver chain, and the
programs compiled from them with their solver workspaces. What may change
between solves (expected returns, a target, a risk aversion) is given to
``solve``. A compiled object is safe to share between threads (its programs
are guarded by a lock, each concurrent solve takes a workspace of its own)
and pickles (the workspaces are rebuilt on first use after unpickling).

The one-shot functions of :mod:`models` read their inputs by content: they
look up a :class:`Compiled` in :data:`SHARED`, keyed by a hash of the
covariance's labels and values and by the constraint values, bounded in bytes.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from optimizer import diagnosis, soft
from optimizer.allocation import Allocation
from optimizer.constraints import constraint_tuple, resolve
from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.objective import Objective, compile_program, units_of
from optimizer.pieces import Piece, Point
from optimizer.program import Outcome
from optimizer.riskmodel import FactorCovariance, RiskModel, content_key
from optimizer.solve import chain_of, make_allocation, solve_program
from optimizer.solvers import WorkspacePool, run_solver
from optimizer.universe import Universe, check_universe
from optimizer.validation import covariance_or_factors, covariance_values
from optimizer.verify import Checker, stationary

#: Programs (with their workspaces) a compiled problem keeps, most recent first.
PROGRAMS_KEPT = 8


class Compiled:
    """An allocation problem compiled once: structure fixed, data per solve.

    Made by the models' ``compile`` functions
    (``models.mean_variance.compile("max_utility", cov, constraints=...)``,
    ``models.risk_parity.compile(cov, ...)``); ``solve(**data)`` returns an
    :class:`~optimizer.allocation.Allocation`.

    Parameters
    ----------
    cov : pandas.DataFrame (n x n) or FactorCovariance
        Annualized covariance labelled by asset; copied, so later edits of
        the caller's object change nothing here.
    constraints : sequence, optional
        Constraint objects (values; ``Budget(1)`` and long-only by default).
    universe : Universe, optional
        Tags for tag constraints.
    solvers : sequence of str, optional
        Solver chain.
    model : callable, optional
        ``model(compiled, **data) -> Allocation``: what ``solve`` runs (a
        module-level function of a model, so that the object pickles).
    objective : str, optional
        The objective's name, for messages and ``repr``.
    fixed : dict, optional
        Data fixed at compile time, passed to ``model`` on every solve.
    """

    def __init__(
        self,
        cov,
        *,
        constraints: Sequence | None = None,
        universe: Universe | None = None,
        solvers: Sequence[str] | None = None,
        model: Callable[..., Allocation] | None = None,
        objective: str | None = None,
        fixed: dict | None = None,
    ) -> None:
        if isinstance(cov, FactorCovariance):
            cov = covariance_or_factors(cov, what="cov")
            assets = cov.assets
        else:
            assets, cov = covariance_values(cov, what="cov")  # a fresh array of our own
        check_universe(universe, assets)
        self.risk = RiskModel(cov, assets)
        self.assets = self.risk.assets
        self.universe = universe
        self.constraints = constraint_tuple(constraints)
        structure = STRUCTURES.get(
            (self.constraints, tuple(self.assets.tolist()), universe),
            lambda: Structure(self.constraints, self.assets, universe),
        )
        self.cset = structure.cset
        self.checker = structure.checker
        # conflicts that arithmetic finds are raised at the first solve (after the model's
        # own checks of its data), not here
        self._conflict = structure.conflict
        self._pieces_key = structure.key
        self.chain = chain_of(solvers)
        self.model = model
        self.objective = objective
        self.fixed = dict(fixed or {})
        self._data_names = _data_keywords(model)
        self._lock = threading.Lock()
        self._programs: OrderedDict = OrderedDict()

    # -- plumbing ----------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"], state["_programs"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._programs = OrderedDict()

    def __repr__(self) -> str:
        what = self.objective or "problem"
        return f"Compiled({what!r}, {self.n} assets, {len(self.cset.constraints)} constraints)"

    @property
    def n(self) -> int:
        """Number of assets."""
        return len(self.assets)

    @property
    def nbytes(self) -> int:
        """Bytes held by the covariance copy and the compiled programs (approximate)."""
        held = self.risk.nbytes
        with self._lock:
            programs = [entry[0] for entry in self._programs.values()]
        for prog in programs:
            for m in (prog.P, prog.A):
                held += m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
        return held

    def solve(self, **data) -> Allocation:
        """Solve with this data (``mu``, ``target_return``, ... as the objective needs)."""
        if self.model is None:
            raise InputError("this compiled problem has no model to solve; use run()")
        data = {**self.fixed, **data}
        known, required = self._data_names
        if not data.keys() <= known.keys():
            unknown = sorted(set(data) - set(known))
            raise InputError(
                f"{self.objective} takes {', '.join(known)}; unknown: {', '.join(unknown)}"
            )
        missing = [name for name in required if name not in data]
        if missing:
            raise InputError(f"{self.objective} needs {', '.join(missing)} to solve")
        return self.model(self, **data)

    def program(self, objective: Objective, pieces: Sequence[Piece], mu) -> tuple:
        """The program of this objective and these pieces, compiled once.

        Returns ``(program, workspace pool, P, A')``: the last two ready for
        :func:`optimizer.verify.stationary`.
        """
        base = self.cset.pieces
        if len(pieces) >= len(base) and all(a is b for a, b in zip(base, pieces, strict=False)):
            # the problem's own pieces (keyed once, at compile time) and the model's extras
            shape = (self._pieces_key, tuple(p.key for p in pieces[len(base) :]))
        else:
            shape = (None, tuple(p.key for p in pieces))
        key = (objective.structure, mu.tobytes() if objective.mu_in_constraints else None, shape)
        with self._lock:
            hit = self._programs.get(key)
            if hit is not None:
                self._programs.move_to_end(key)
                return hit
        prog = compile_program(
            objective, pieces, self.risk, mu if objective.mu_in_constraints else None
        )
        # P and A' in row-compressed form, made once for the stationarity check of every solve
        entry = (prog, WorkspacePool(prog), prog.P.tocsr(), prog.A.T.tocsr())
        with self._lock:
            entry = self._programs.setdefault(key, entry)
            while len(self._programs) > PROGRAMS_KEPT:
                self._programs.popitem(last=False)
        return entry

    # -- the solve -------------------------------------------------------------------
    def run(
        self,
        objective: Objective,
        *,
        mu: np.ndarray | None = None,
        extra: Sequence[Piece] = (),
        notes: Sequence[str] = (),
        scale: float = 1.0,
    ) -> Allocation:
        """Solve ``objective`` under the constraints (and ``extra`` pieces), verified.

        Parameters
        ----------
        objective : Objective
            What to minimize.
        mu : numpy.ndarray, shape (n,), optional
            Expected returns in asset order (annualized decimals).
        extra : sequence of Piece
            Model-made hard constraints (a target return, a volatility limit).
        notes : sequence of str
            Carried into the allocation.
        scale : float
            Factor from the objective as solved to the objective as reported
            (multiplies ``objective`` and the shadow prices). The core's own
            scaling of the program (:func:`optimizer.objective.units_of`) is
            undone on top of it: ``objective``, shadow prices and every other
            field of the allocation are in the caller's units.

        Raises
        ------
        InfeasibleError
            The hard constraints cannot hold (with the diagnosis).
        InputError
            The objective is unbounded.
        SolverError
            Every solver failed.
        """
        pieces = list(self.cset.pieces) + list(extra)
        checker = self.checker.extended(extra)
        conflict = self._precheck(pieces) if extra else self._conflict
        if conflict is not None:
            if soft.has_soft(pieces) and self._precheck(soft.hard(pieces)) is None:
                return self._relaxed(objective, mu, pieces, notes, scale)
            # a fresh error each time: a stored exception would gather tracebacks
            raise InfeasibleError(str(conflict), conflict.diagnosis)
        try:
            return self._solve(objective, mu, pieces, checker, notes, scale)
        except _Infeasible as exc:
            if soft.has_soft(pieces):
                return self._relaxed(objective, mu, pieces, notes, scale)
            raise diagnosis.elastic(pieces, self.n, self.risk, attempts=exc.attempts) from None

    def _precheck(self, pieces) -> Exception | None:
        return _precheck(pieces, self.cset.budget, self.assets)

    def _relaxed(self, objective, mu, pieces, notes, scale) -> Allocation:
        base = diagnosis.weights_only(self.n, self.risk)
        amounts = soft.relaxation(pieces, base, n=self.n, risk=self.risk)
        widened = soft.widen(pieces, amounts)
        try:
            alloc = self._solve(objective, mu, widened, Checker(widened), notes, scale)
        except _Infeasible as exc:
            raise SolverError(
                "the soft constraints were relaxed, but the relaxed problem could not be solved",
                exc.attempts,
            ) from None
        at = Point(alloc.weights.to_numpy(), risk=self.risk)
        return dataclasses.replace(alloc, relaxed=soft.report(pieces, amounts, at))

    def _solve(self, objective, mu, pieces, checker, notes, scale) -> Allocation:
        t0 = time.perf_counter()
        n = self.n
        prog, pool, p_rows, a_cols = self.program(objective, pieces, mu)
        # the program is scaled (units_of): its objective and duals times units.objective are
        # the caller's
        units = units_of(objective, self.risk, mu)
        if objective.mu_weight and not objective.sharpe and mu is not None:
            q = prog.q.copy()
            q[:n] -= (objective.mu_weight / units.linear) * mu
            prog = prog.with_q(q)
        scale = scale * units.objective
        t1 = time.perf_counter()

        def weights_of(out: Outcome) -> np.ndarray:
            if objective.homogeneous:
                t = out.x[n]
                return out.x[:n] / t if t > 0 else np.full(n, np.nan)
            return out.x[:n]

        verified: dict = {}  # the checks of the accepted answer, kept for the report

        def accept(out: Outcome) -> bool:
            w = weights_of(out)
            if not np.isfinite(w).all():
                return False
            # objectives with extra terms (risk budgeting's log barrier, CVaR) are left to
            # their models' own checks
            if not objective.terms and not stationary(prog, out, p=p_rows, at=a_cols):
                return False
            verified["w"], verified["checks"] = w, checker.check(Point(w, risk=self.risk))
            return all(c["ok"] for c in verified["checks"].values())

        winner, outs = solve_program(prog, chain=self.chain, accept=accept, workspace=pool)
        t2 = time.perf_counter()
        attempts = tuple(o.attempt() for o in outs)
        if winner is None:
            statuses = {o.status for o in outs}
            if "infeasible" in statuses:
                raise _Infeasible(attempts)
            if "unbounded" in statuses:
                raise InputError(
                    "the problem is unbounded: the objective can improve without limit; "
                    "add bounds, a budget or a leverage limit"
                )
            raise SolverError("every solver in the chain failed", attempts)

        def binding(pt: Point) -> tuple:
            bind = checker.binding(prog, winner, pt, scale=scale)
            if objective.homogeneous:
                # duals of the homogenized problem are not in the objective's units
                bind = tuple({**b_, "shadow_price": None} for b_ in bind)
            return bind

        t3 = time.perf_counter()
        return self.answer(
            verified["w"],
            mu,
            checker,
            checks=verified["checks"],
            binding=binding,
            status=winner.status,
            solver=winner.solver,
            attempts=attempts,
            timings={"compile": t1 - t0, "solve": t2 - t1, "other": t3 - t2},
            objective=winner.objective * scale,
            notes=tuple(notes),
        )

    def answer(
        self,
        w: np.ndarray,
        mu: np.ndarray | None,
        checker: Checker,
        *,
        binding: Callable[[Point], tuple],
        checks: dict | None = None,
        **fields,
    ) -> Allocation:
        """The Allocation of a solver's verified weights, with their dust as exact zeros.

        Every answer a solver gives is made here: weights below the
        verification tolerance (``1e-11`` dust, ``-1e-12`` in a long-only
        problem) become exact zeros and the budget is restored
        (:meth:`~optimizer.verify.Checker.cleaned`), re-verified; when the
        cleaned weights do not verify the answer keeps the solver's weights.

        Parameters
        ----------
        w : numpy.ndarray, shape (n,)
            Verified weights.
        mu : numpy.ndarray, shape (n,), optional
            Expected returns (annualized decimals), for ``expected_return``.
        checker : Checker
            The verifier of the pieces solved (the problem's and the model's extras).
        binding : callable
            ``binding(point) -> tuple``: the binding sides at the reported weights.
        checks : dict, optional
            ``checker.check`` of ``w`` (redone when cleaning changed the weights).
        **fields
            The Allocation's other fields.
        """
        cleaned = checker.cleaned(Point(w, risk=self.risk), total=self.cset.budget)
        pt = Point(cleaned, risk=self.risk)
        if checks is None or cleaned is not w:
            checks = checker.check(pt)
        return make_allocation(
            cleaned, self.assets, self.risk, mu, binding=binding(pt), checks=checks, **fields
        )

    def relax_alone(self, extra: Sequence[Piece], names: Sequence[str]) -> dict[str, float | None]:
        """How much each named constraint must give, alone, for ``extra`` to hold as well.

        For each name, the elastic program (:func:`optimizer.diagnosis.elastic_program`)
        of the problem's pieces and ``extra``, all hard but that constraint,
        which relaxes by one slack (in its own units). One solve per name: for
        error messages, not for the hot path.

        Returns
        -------
        dict
            ``{name: amount}``; None when relaxing that constraint alone cannot
            make room for ``extra``.
        """
        pieces = [*self.cset.pieces, *extra]
        base = diagnosis.weights_only(self.n, self.risk)
        out: dict[str, float | None] = {}
        for name in dict.fromkeys(names):
            prog, col = diagnosis.elastic_program(pieces, base, {name: 1.0})
            res = run_solver("CLARABEL", prog)
            found = res.status.startswith("optimal") and res.x is not None
            out[name] = float(max(res.x[col[name]], 0.0)) if found else None
        return out

    def allocation(self, w: np.ndarray, mu: np.ndarray | None, **fields) -> Allocation:
        """An Allocation of given weights, checked against this problem's constraints."""
        pt = Point(np.asarray(w, dtype=float), risk=self.risk)
        if "checks" not in fields:
            fields["checks"] = self.checker.check(pt)
        return make_allocation(pt.w, self.assets, self.risk, mu, **fields)


def _precheck(pieces, budget: float | None, assets: pd.Index) -> Exception | None:
    """The arithmetic conflict of these pieces, or None (:func:`diagnosis.precheck`)."""
    try:
        diagnosis.precheck(pieces, len(assets), budget=budget, assets=assets)
    except InfeasibleError as exc:
        return exc
    return None


class Structure:
    """The constraints of a problem lowered once: pieces, verifier, content key, conflict.

    Read-only after construction and shared by every :class:`Compiled` of the
    same constraints, assets and universe (through :data:`STRUCTURES`).
    """

    def __init__(self, constraints: tuple, assets: pd.Index, universe: Universe | None) -> None:
        self.cset = resolve(constraints, assets, universe)
        self.checker = Checker(self.cset.pieces)
        self.key = tuple(p.key for p in self.cset.pieces)
        self.conflict = _precheck(self.cset.pieces, self.cset.budget, assets)

    @property
    def nbytes(self) -> int:
        """Approximate bytes held (the pieces' arrays dominate)."""
        return sum(
            200 + sum(getattr(v, "nbytes", 0) for v in vars(p).values()) for p in self.cset.pieces
        )


def _data_keywords(model) -> tuple[dict, list]:
    """A model's data keywords (all, in order, and those without a default)."""
    if model is None:
        return {}, []
    params = list(inspect.signature(model).parameters.values())[1:]
    return dict.fromkeys(p.name for p in params), [p.name for p in params if p.default is p.empty]


class _Infeasible(Exception):
    """A solver certified infeasibility (turned into a diagnosis or a soft relaxation)."""

    def __init__(self, attempts) -> None:
        super().__init__("infeasible")
        self.attempts = attempts


class ContentCache:
    """Compiled problems keyed by content, bounded in bytes, safe between threads.

    Holds nothing of the caller's: a :class:`Compiled` keeps copies. The
    least recently used entries go first once the total exceeds ``max_bytes``
    (or ``max_items``).

    Parameters
    ----------
    max_bytes : int
        Bytes the cached problems may hold (estimated by ``Compiled.nbytes``).
    max_items : int
        Entries at most.
    """

    def __init__(self, max_bytes: int = 16 * 2**20, max_items: int = 64) -> None:
        self.max_bytes = int(max_bytes)
        self.max_items = int(max_items)
        self._lock = threading.Lock()
        self._items: OrderedDict = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()

    def get(self, key, make: Callable[[], Compiled]) -> Compiled:
        """The entry for ``key``, made by ``make()`` when absent."""
        try:
            hash(key)
        except TypeError:  # an unhashable input: no caching (validation reports it)
            return make()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        value = make()
        with self._lock:
            value = self._items.setdefault(key, value)
            self._trim()
        return value

    def _trim(self) -> None:
        sizes = {k: v.nbytes for k, v in self._items.items()}
        total = sum(sizes.values())
        while self._items and (total > self.max_bytes or len(self._items) > self.max_items):
            k, _ = self._items.popitem(last=False)
            total -= sizes[k]


#: The one-shot functions' cache (content-keyed and bounded: it never changes an answer).
SHARED = ContentCache()
#: Lowered constraint sets by content (constraint values, asset ids, universe), bounded.
STRUCTURES = ContentCache(max_bytes=8 * 2**20, max_items=32)


def shared(
    model: Callable[..., Allocation],
    objective: str,
    cov,
    *,
    constraints=None,
    universe: Universe | None = None,
    solvers=None,
    fixed: dict | None = None,
) -> Compiled:
    """The :class:`Compiled` of this content from :data:`SHARED` (made on a miss)."""
    cons = constraint_tuple(constraints)
    chain = chain_of(solvers)
    fixed = dict(fixed or {})
    key = (
        model.__module__,
        model.__qualname__,
        objective,
        content_key(cov),
        cons,
        universe,
        chain,
        tuple(sorted(fixed.items())),
    )

    def make() -> Compiled:
        return Compiled(
            cov,
            constraints=cons,
            universe=universe,
            solvers=chain,
            model=model,
            objective=objective,
            fixed=fixed,
        )

    return SHARED.get(key, make)
