"""Compile, solve, verify: the convex core shared by every allocation model.

:func:`solve_portfolio` takes an :class:`Objective`, the constraint objects and
a risk model, lowers them to a canonical conic program (:mod:`optimizer.program`),
runs the solver chain, verifies the answer against every constraint by name,
and returns an :class:`~optimizer.allocation.Allocation`. When the
constraints cannot all hold it raises :class:`InfeasibleError` with a
diagnosis (:mod:`optimizer.diagnosis`).
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.linalg import lapack

from optimizer import diagnosis
from optimizer.allocation import Allocation
from optimizer.constraints import Bound, ConstraintSet, Norm1, Piece, RiskLimit, Row, resolve
from optimizer.errors import InputError, SolverError
from optimizer.program import (
    DEFAULT_CHAIN,
    KNOWN_SOLVERS,
    Builder,
    Outcome,
    Program,
    Tag,
    run_solver,
)
from optimizer.riskmodel import FactorCovariance
from optimizer.universe import Universe

#: Verification tolerance on every constraint, in the constraint's own units
#: (weights: 1e-7 is a thousandth of a basis point).
FEAS_TOL = 1e-7
#: A constraint side is reported binding when its slack is below this.
BINDING_TOL = 1e-6
#: Relative tolerance on the stationarity residual ``Px + q + A'z`` of a solver's answer
#: (looser for an answer the solver itself calls inaccurate).
KKT_TOL = 1e-6
KKT_TOL_INACCURATE = 1e-4


# ----------------------------------------------------------------------------- risk model


class RiskModel:
    """The covariance of a problem in the form the solver wants.

    Parameters
    ----------
    cov : pandas.DataFrame (n x n) or FactorCovariance
        Annualized covariance labelled by asset. A factor covariance keeps its
        structure: risk is then ``|G'w|^2 + sum d w^2``.
    assets : pandas.Index
        Order of the weights.
    """

    def __init__(self, cov, assets: pd.Index) -> None:
        self.assets = assets
        if isinstance(cov, FactorCovariance):
            model = cov if cov.assets.equals(assets) else cov.reindex(assets)
            self.G, self.d = model.risk_factor()
            self.kind = "factor"
            self._dense = None
        else:
            self.kind = "dense"
            same = cov.index.equals(assets) and cov.columns.equals(assets)
            frame = cov if same else cov.loc[assets, assets]
            self._dense = np.array(frame.to_numpy(dtype=float), order="C")
            self.G = self.d = None
        self._root = None

    @property
    def dense(self) -> np.ndarray:
        """The n x n covariance (built on demand for a factor model)."""
        if self._dense is None:
            c = self.G @ self.G.T
            c[np.diag_indices_from(c)] += self.d
            self._dense = c
        return self._dense

    def times(self, w: np.ndarray) -> np.ndarray:
        """``C @ w`` (factor form when available)."""
        if self.kind == "factor":
            return self.G @ (self.G.T @ w) + self.d * w
        return self._dense @ w

    def variance(self, w: np.ndarray) -> float:
        return float(max(w @ self.times(w), 0.0))

    def root_t(self) -> sp.spmatrix | np.ndarray:
        """``R'`` with ``C = R R'``: ``||R' w||`` is the volatility of ``w``."""
        if self._root is None:
            if self.kind == "factor":
                self._root = sp.vstack(
                    [sp.csr_matrix(self.G.T), sp.diags(np.sqrt(self.d))], format="csr"
                )
            else:
                vals, vecs = np.linalg.eigh(self._dense)
                keep = vals > vals.max() * 1e-14
                self._root = (vecs[:, keep] * np.sqrt(vals[keep])).T
        return self._root


_RISK_CACHE: dict[int, tuple] = {}


def risk_model(cov) -> RiskModel:
    """Validate ``cov`` and wrap it as a :class:`RiskModel`, reused while the object lives.

    Compile once, solve many: the validation and factorization of a
    covariance (its eigen-root for volatility limits, its factor blocks) are
    kept per object, so a frontier sweep or a batch of accounts pays once.
    (A covariance changed in place after a solve is not noticed: pass a new
    object.)
    """
    key = id(cov)
    hit = _RISK_CACHE.get(key)
    if hit is not None:
        ref, shape, model = hit
        if ref() is cov and getattr(cov, "shape", None) == shape:
            return model
    assets = check_cov(cov)
    model = RiskModel(cov, assets)
    try:
        ref = weakref.ref(cov)
    except TypeError:
        return model
    if len(_RISK_CACHE) > 16:
        _RISK_CACHE.clear()
    _RISK_CACHE[key] = (ref, getattr(cov, "shape", None), model)
    return model


def check_cov(cov, assets: pd.Index | None = None, *, what: str = "cov") -> pd.Index:
    """Validate a covariance (labels, finite, symmetric, PSD); return its assets."""
    if isinstance(cov, FactorCovariance):
        return cov.assets
    if not isinstance(cov, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame or a FactorCovariance")
    if not cov.index.equals(cov.columns):
        if set(cov.index) == set(cov.columns) and len(cov.index) == len(cov.columns):
            raise InputError(f"{what} rows and columns list the assets in different orders")
        raise InputError(f"{what} rows and columns are not labelled by the same assets")
    if cov.index.has_duplicates:
        raise InputError(f"{what} has duplicate asset ids")
    values = cov.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        bad = cov.index[~np.isfinite(values).all(axis=1)]
        raise InputError(f"{what} has NaN or inf values for {', '.join(map(str, bad))}")
    scale = max(1.0, float(np.abs(values).max()))
    exact = np.array_equal(values, values.T)  # the common case, cheaper than allclose
    if not exact and not np.allclose(values, values.T, atol=1e-10 * scale, rtol=1e-8):
        i, j = np.unravel_index(np.argmax(np.abs(values - values.T)), values.shape)
        raise InputError(
            f"{what} is not symmetric: ({cov.index[i]}, {cov.index[j]}) differs from its mirror"
        )
    # a Cholesky factorization is the cheap proof of positive definiteness; a semidefinite
    # matrix (it fails) gets the eigenvalue test with its tolerance
    _, info = lapack.dpotrf(values, lower=1, clean=0, overwrite_a=0)
    if info == 0:
        return cov.index
    lam = float(np.linalg.eigvalsh(values).min()) if len(values) else 0.0
    if lam < -1e-8 * scale:
        raise InputError(
            f"{what} is not positive semidefinite (smallest eigenvalue {lam:.3g}); "
            "repair it with models.covariance.nearest_psd"
        )
    return cov.index


def align(values, assets: pd.Index, *, what: str) -> np.ndarray:
    """A Series (or mapping) labelled by asset as a vector in ``assets`` order."""
    if isinstance(values, dict):
        values = pd.Series(values, dtype=float)
    if not isinstance(values, pd.Series):
        raise InputError(f"{what} must be a pandas Series labelled by asset")
    if values.index.equals(assets):  # the common case, without a reindex
        out = values.to_numpy(dtype=float)
        if np.isfinite(out).all():
            return out
    if values.index.has_duplicates:
        raise InputError(f"{what} has duplicate asset ids")
    missing = assets.difference(values.index)
    extra = values.index.difference(assets)
    if len(missing) or len(extra):
        parts = []
        if len(missing):
            parts.append(f"missing {', '.join(map(str, missing))}")
        if len(extra):
            parts.append(f"unknown {', '.join(map(str, extra))}")
        raise InputError(f"{what} does not line up with the covariance: {'; '.join(parts)}")
    try:
        out = values.loc[assets].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be numeric") from None
    if not np.isfinite(out).all():
        bad = assets[~np.isfinite(out)]
        raise InputError(f"{what} has NaN or inf values for {', '.join(map(str, bad))}")
    return out


# ----------------------------------------------------------------------------- objective


@dataclass(frozen=True)
class Objective:
    """``minimize variance * w'Cw - mu_weight * mu'w + sum(extra terms)``.

    Parameters
    ----------
    variance : float
        Weight on the variance ``w'Cw``.
    mu_weight : float
        Weight on the expected return ``mu'w`` (maximized when positive).
    sharpe : bool
        Maximize ``(mu'w - rf) / sqrt(w'Cw)`` instead, by the homogenized
        (Charnes-Cooper) transformation; ``risk_free_rate`` gives rf.
    risk_free_rate : float
        Used with ``sharpe``.
    terms : tuple
        Further objective terms: objects with ``apply(builder, n)`` and
        ``key`` (see :mod:`optimizer.terms`).
    homogenize : bool
        Solve over ``y = t w`` with ``t >= 0`` free and every constraint in
        its perspective form, then report ``w = y / t``: the constraints hold
        for the normalized weights whatever scale the objective picks (used by
        constrained risk budgeting, whose log barrier fixes the scale).
    """

    variance: float = 0.0
    mu_weight: float = 0.0
    sharpe: bool = False
    risk_free_rate: float = 0.0
    terms: tuple = ()
    homogenize: bool = False

    @property
    def homogeneous(self) -> bool:
        return self.sharpe or self.homogenize


# ----------------------------------------------------------------------------- lowering


def lower_pieces(b: Builder, pieces: Sequence[Piece], n: int, rm: RiskModel | None) -> None:
    """Add every constraint piece to the builder as rows over ``w = x[:n]``."""
    w_cols = np.arange(n)
    eq_a, eq_c, eq_t = [], [], []
    le_a, le_c, le_t = [], [], []
    bnd_i, bnd_s, bnd_c, bnd_t = [], [], [], []
    for p in pieces:
        if isinstance(p, Bound):
            if p.lo == p.hi:
                b.add("zero", np.ones((1, 1)), [p.index], [p.hi], [Tag(p.name, p.label, "equal")])
                continue
            if np.isfinite(p.hi):
                bnd_i.append(p.index), bnd_s.append(1.0), bnd_c.append(p.hi)
                bnd_t.append(Tag(p.name, p.label, "max"))
            if np.isfinite(p.lo):
                bnd_i.append(p.index), bnd_s.append(-1.0), bnd_c.append(-p.lo)
                bnd_t.append(Tag(p.name, p.label, "min"))
        elif isinstance(p, Row):
            if p.lo == p.hi:
                eq_a.append(p.coef), eq_c.append(p.hi), eq_t.append(Tag(p.name, p.label, "equal"))
                continue
            if np.isfinite(p.hi):
                le_a.append(p.coef), le_c.append(p.hi), le_t.append(Tag(p.name, p.label, "max"))
            if np.isfinite(p.lo):
                le_a.append(-p.coef), le_c.append(-p.lo), le_t.append(Tag(p.name, p.label, "min"))
        elif isinstance(p, Norm1):
            u = b.var(n)
            eye = sp.eye(n, format="csr")
            cols = np.concatenate([w_cols, np.arange(u, u + n)])
            b.add("nonneg", sp.hstack([eye, -eye]), cols, p.center)
            b.add("nonneg", sp.hstack([-eye, -eye]), cols, -p.center)
            b.add(
                "nonneg",
                p.scale[None, :],
                np.arange(u, u + n),
                [p.max],
                [Tag(p.name, p.label, "max")],
            )
        elif isinstance(p, RiskLimit):
            if rm is None:
                raise InputError(f"constraint {p.name!r} needs a covariance")
            rt = rm.root_t()
            top = sp.csr_matrix((1, n))
            mat = sp.vstack([top, sp.csr_matrix(rt)], format="csr")
            const = np.concatenate([[p.max], rt @ p.benchmark])
            tags = [Tag(p.name, p.label, "max")] + [None] * rt.shape[0]
            b.add("soc", mat, w_cols, const, tags)
        else:  # pragma: no cover - resolve() only makes the pieces above
            raise InputError(f"unknown constraint piece {p!r}")
    if eq_a:
        b.add("zero", np.vstack(eq_a), w_cols, eq_c, eq_t)
    if le_a:
        b.add("nonneg", np.vstack(le_a), w_cols, le_c, le_t)
    if bnd_i:
        k = len(bnd_i)
        mat = sp.csr_matrix((bnd_s, (np.arange(k), bnd_i)), shape=(k, n))
        b.add("nonneg", mat, w_cols, bnd_c, bnd_t)


def add_risk(b: Builder, rm: RiskModel, weight: float, n: int) -> None:
    """Add ``weight * w'Cw`` to the objective (factor form when available)."""
    if weight == 0:
        return
    if rm.kind == "factor":
        k = rm.G.shape[1]
        y = b.var(k)
        b.add(
            "zero",
            sp.hstack([sp.csr_matrix(rm.G.T), -sp.eye(k)]),
            np.concatenate([np.arange(n), np.arange(y, y + k)]),
            np.zeros(k),
            homogeneous=False,
        )
        b.quad(np.arange(y, y + k), np.arange(y, y + k), np.full(k, 2.0 * weight))
        b.quad(np.arange(n), np.arange(n), 2.0 * weight * rm.d)
    else:
        b.quad_dense(0, 2.0 * weight * rm.dense)


def compile_program(
    objective: Objective,
    cset: ConstraintSet,
    rm: RiskModel | None,
    mu: np.ndarray | None,
    extra: Sequence[Piece] = (),
) -> Program:
    """Lower an objective and constraint set to a canonical program."""
    n = len(rm.assets) if rm is not None else len(mu)
    b = Builder(n, homogenize=objective.homogeneous)
    pieces = list(cset.pieces) + list(extra)
    if objective.homogenize and not objective.sharpe:
        b.add("nonneg", -np.ones((1, 1)), [b.t_index], [0.0], homogeneous=False)
    if objective.sharpe:
        t = b.t_index
        excess = np.concatenate([mu, [-objective.risk_free_rate]])
        b.add("zero", excess[None, :], np.r_[np.arange(n), t], [1.0], homogeneous=False)
        b.add("nonneg", -np.ones((1, 1)), [t], [0.0], homogeneous=False)
        add_risk(b, rm, 1.0, n)
    else:
        if rm is not None:
            add_risk(b, rm, objective.variance, n)
    for term in objective.terms:
        term.apply(b, n)
    lower_pieces(b, pieces, n, rm)
    return b.build()


def _piece_key(p: Piece) -> tuple:
    if isinstance(p, Bound):
        return ("B", p.label, p.index, p.lo, p.hi)
    if isinstance(p, Row):
        return ("R", p.label, p.coef.tobytes(), p.lo, p.hi)
    if isinstance(p, Norm1):
        return ("N", p.label, p.center.tobytes(), p.scale.tobytes(), p.max)
    return ("T", p.label, p.benchmark.tobytes(), p.max)


_PROGRAM_CACHE: OrderedDict = OrderedDict()
_CSET_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 32


def _remember(cache: OrderedDict, key, make):
    hit = cache.get(key)
    if hit is not None:
        cache.move_to_end(key)
        return hit
    value = make()
    cache[key] = value
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def resolved(constraints, assets: pd.Index, universe: Universe | None) -> ConstraintSet:
    """:func:`~optimizer.constraints.resolve`, remembered for the same constraint objects."""
    items = list(constraints or [])
    key = (tuple(id(c) for c in items), tuple(assets.tolist()), id(universe))
    # the value keeps the objects alive so that their ids cannot be reused
    return _remember(_CSET_CACHE, key, lambda: (items, universe, resolve(items, assets, universe)))[
        2
    ]


def compiled(objective: Objective, cset, rm, mu, extra=()) -> Program:
    """The program of this structure, compiled once and reused (a small LRU cache).

    The key is the objective, the risk model and every constraint piece with
    its values; expected returns enter only the linear objective, so a new
    ``mu`` re-uses the compiled program (``Program.with_q``).
    """
    key = (
        id(rm),
        objective.variance,
        objective.sharpe,
        objective.homogenize,
        objective.risk_free_rate,
        mu.tobytes() if objective.sharpe else None,
        tuple(t.key for t in objective.terms),
        tuple(_piece_key(p) for p in cset.pieces),
        tuple(_piece_key(p) for p in extra),
    )
    prog, _ = _remember(
        _PROGRAM_CACHE, key, lambda: (compile_program(objective, cset, rm, mu, extra), rm)
    )
    if objective.mu_weight and not objective.sharpe:
        q = prog.q.copy()
        q[: len(mu)] -= objective.mu_weight * mu
        return prog.with_q(q)
    return prog


# ----------------------------------------------------------------------------- verification


def piece_value(p: Piece, w: np.ndarray, rm: RiskModel | None) -> float:
    """The constrained quantity of one piece at ``w``."""
    if isinstance(p, Bound):
        return float(w[p.index])
    if isinstance(p, Row):
        return float(p.coef @ w)
    if isinstance(p, Norm1):
        return float(p.scale @ np.abs(w - p.center))
    d = w - p.benchmark
    return float(np.sqrt(rm.variance(d)))


def piece_limits(p: Piece) -> tuple[float, float]:
    if isinstance(p, Row | Bound):
        return p.lo, p.hi
    return -np.inf, p.max


_BOUND_CACHE: OrderedDict = OrderedDict()


def _bound_arrays(pieces: Sequence[Piece]):
    """Bounds gathered into arrays (index, lo, hi) and the other pieces, in order.

    Remembered for the same piece objects (a solve checks the same pieces twice,
    a batch of accounts many times).
    """
    key = tuple(map(id, pieces))
    hit = _BOUND_CACHE.get(key)
    if hit is not None:
        _BOUND_CACHE.move_to_end(key)
        return hit[1]
    out = _gather_bounds(pieces)
    _BOUND_CACHE[key] = (list(pieces), out)  # the list keeps the ids from being reused
    if len(_BOUND_CACHE) > _CACHE_SIZE:
        _BOUND_CACHE.popitem(last=False)
    return out


def _gather_bounds(pieces: Sequence[Piece]):
    idx, lo, hi, owners, rest = [], [], [], [], []
    for p in pieces:
        if type(p) is Bound:
            idx.append(p.index)
            lo.append(p.lo)
            hi.append(p.hi)
            owners.append(p)
        else:
            rest.append(p)
    return np.asarray(idx, dtype=int), np.asarray(lo), np.asarray(hi), owners, rest


def verify(pieces: Sequence[Piece], w: np.ndarray, rm: RiskModel | None, tol: float = FEAS_TOL):
    """Check every piece at ``w``; return ``{name: {"ok", "max_violation"}}``.

    Per-asset bounds are checked together in numpy; the rest one by one.
    """
    checks: dict[str, dict] = {}

    def record(name: str, label: str, viol: float, scale: float) -> None:
        entry = checks.setdefault(name, {"ok": True, "max_violation": 0.0})
        entry["max_violation"] = max(entry["max_violation"], viol)
        if viol > tol * scale:
            entry["ok"] = False
            entry.setdefault("worst", label)

    idx, lo, hi, owners, rest = _bound_arrays(pieces)
    if len(idx):
        v = w[idx]
        viol = np.maximum(np.maximum(lo - v, v - hi), 0.0)
        scale = np.maximum(
            1.0,
            np.maximum(
                np.where(np.isfinite(lo), np.abs(lo), 0.0),
                np.where(np.isfinite(hi), np.abs(hi), 0.0),
            ),
        )
        bad = viol > tol * scale
        for name in dict.fromkeys(p.name for p in owners):
            checks.setdefault(name, {"ok": True, "max_violation": 0.0})
        names = np.array([p.name for p in owners], dtype=object)
        for name in checks:
            mask = names == name
            if mask.any():
                checks[name]["max_violation"] = float(viol[mask].max())
        for k in np.flatnonzero(bad):
            record(owners[k].name, owners[k].label, float(viol[k]), float(scale[k]))
    for p in rest:
        v = piece_value(p, w, rm)
        lo_, hi_ = piece_limits(p)
        viol_ = max(lo_ - v, v - hi_, 0.0)
        scale_ = max(
            1.0, abs(lo_) if np.isfinite(lo_) else 0.0, abs(hi_) if np.isfinite(hi_) else 0.0
        )
        record(p.name, p.label, viol_, scale_)
    # keep the constraints in the order they were given
    order = list(dict.fromkeys(p.name for p in pieces))
    return {name: checks[name] for name in order}


def stationary(prog: Program, out: Outcome) -> bool:
    """The cheap KKT check: the solver's pair satisfies ``Px + q + A'z = 0``.

    Every solver of the chain returns duals ``z`` with this sign convention
    (Clarabel, SCS: ``b - Ax in K``; OSQP: ``l <= Ax <= u``). It catches an
    answer called optimal that is not, such as a huge feasible ``x`` returned
    for an unbounded LP. Skipped when the solver gave no duals.
    """
    if out.x is None or out.z is None or len(out.z) != prog.A.shape[0]:
        return True
    px = prog.P @ out.x
    atz = prog.A.T @ out.z
    resid = float(np.abs(px + prog.q + atz).max(initial=0.0))
    size = max(
        float(np.abs(px).max(initial=0.0)),
        float(np.abs(prog.q).max(initial=0.0)),
        float(np.abs(atz).max(initial=0.0)),
    )
    tol = KKT_TOL if out.status == "optimal" else KKT_TOL_INACCURATE
    return resid <= tol * (1.0 + size)


def near_binding(pieces, w: np.ndarray, rm) -> dict[tuple[str, str, str], float]:
    """Slack of every constraint side within ``BINDING_TOL`` of binding at ``w``.

    Keys are ``(name, label, side)`` with side ``"min"``, ``"max"`` or ``"equal"``,
    in the order of the pieces; per-asset bounds are screened in numpy.
    """
    found: dict[tuple[str, str, str], float] = {}
    idx, lo, hi, owners, rest = _bound_arrays(pieces)
    if len(idx):
        v = w[idx]
        for k in np.flatnonzero((hi - v <= BINDING_TOL) | (v - lo <= BINDING_TOL)):
            p = owners[k]
            if lo[k] == hi[k]:
                found[(p.name, p.label, "equal")] = float(abs(v[k] - hi[k]))
                continue
            if hi[k] - v[k] <= BINDING_TOL:
                found[(p.name, p.label, "max")] = float(hi[k] - v[k])
            if v[k] - lo[k] <= BINDING_TOL:
                found[(p.name, p.label, "min")] = float(v[k] - lo[k])
    for p in rest:
        v_ = piece_value(p, w, rm)
        lo_, hi_ = piece_limits(p)
        sides = [("equal", abs(v_ - hi_))] if lo_ == hi_ else [("max", hi_ - v_), ("min", v_ - lo_)]
        for side, slack in sides:
            if slack <= BINDING_TOL:
                found[(p.name, p.label, side)] = slack
    return found


def binding_sides(pieces, w: np.ndarray, rm) -> tuple:
    """Binding constraint sides at ``w`` without shadow prices (as ``binding`` reports them)."""
    return tuple(
        {"name": name, "label": label, "side": side, "shadow_price": None}
        for name, label, side in near_binding(pieces, w, rm)
    )


def binding(prog: Program, out: Outcome, pieces, w, rm, *, scale: float = 1.0) -> tuple:
    """Binding constraint sides with their shadow prices (duals of the solver)."""
    slack_of = {(label, side): v for (_, label, side), v in near_binding(pieces, w, rm).items()}
    found = []
    for i, tag in enumerate(prog.tags):
        if tag is None:
            continue
        slack = slack_of.get((tag.label, tag.side))
        if slack is None or slack > BINDING_TOL:
            continue
        price = None
        if out.z is not None and i < len(out.z):
            price = float(out.z[i]) * scale
        found.append(
            {"name": tag.name, "label": tag.label, "side": tag.side, "shadow_price": price}
        )
    return tuple(found)


# ----------------------------------------------------------------------------- solve


def chain_of(solvers: Sequence[str] | None) -> tuple[str, ...]:
    chain = tuple(s.upper() for s in (solvers or DEFAULT_CHAIN))
    bad = [s for s in chain if s not in KNOWN_SOLVERS]
    if bad:
        raise InputError(f"unknown solver {bad[0]!r}; choose from {', '.join(KNOWN_SOLVERS)}")
    return chain


def solve_program(
    prog: Program,
    *,
    chain: Sequence[str],
    accept,
) -> tuple[Outcome | None, list[Outcome]]:
    """Run the chain until ``accept(outcome)`` holds; return (winner, all outcomes).

    Stops early on a certified infeasible or unbounded status.
    """
    outs = []
    for name in chain:
        if name in ("OSQP", "PROXQP") and not prog.is_qp:
            continue
        out = run_solver(name, prog)
        outs.append(out)
        if out.status.startswith("optimal"):
            if accept(out):
                return out, outs
            out.status = f"{out.status}, rejected by verification"
            continue
        if out.status in ("infeasible", "unbounded") and name == "CLARABEL":
            return None, outs
    return None, outs


def clean_weights(w: np.ndarray, pieces, rm, tol: float = 1e-9) -> np.ndarray:
    """Zero tiny negatives (|w| < tol) when the result still verifies."""
    small = (w < 0) & (w > -tol)
    if not small.any():
        return w
    cleaned = w.copy()
    cleaned[small] = 0.0
    if all(c["ok"] for c in verify(pieces, cleaned, rm).values()):
        return cleaned
    return w


def solve_portfolio(
    objective: Objective,
    *,
    cov,
    mu: pd.Series | None = None,
    constraints=None,
    universe: Universe | None = None,
    extra: Sequence[Piece] = (),
    solvers: Sequence[str] | None = None,
    notes: Sequence[str] = (),
) -> Allocation:
    """Solve one allocation problem end to end.

    Parameters
    ----------
    objective : Objective
        What to minimize.
    cov : pandas.DataFrame (n x n) or FactorCovariance
        Annualized covariance; its labels fix the assets and their order.
    mu : pandas.Series, optional
        Annualized expected returns (needed by return objectives; reported).
    constraints : list, optional
        Constraint objects; ``Budget(1)`` and long-only apply by default.
    universe : Universe, optional
        Needed when constraints use tags; its assets must match the covariance's.
    extra : sequence of pieces
        Model-made constraints (a target return, a volatility limit).
    solvers : sequence of str, optional
        Solver chain, default Clarabel, OSQP, SCS.

    Returns
    -------
    Allocation

    Raises
    ------
    InputError, InfeasibleError, SolverError
    """
    t0 = time.perf_counter()
    rm = risk_model(cov)
    assets = rm.assets
    if universe is not None:
        if not isinstance(universe, Universe):
            raise InputError("universe= must be an optimizer.Universe")
        universe.check_assets(assets, what="the covariance")
        missing = [a for a in universe.assets if a not in set(assets)]
        if missing:
            raise InputError(f"the covariance has no row for universe assets: {', '.join(missing)}")
    mu_vec = None if mu is None else align(mu, assets, what="expected returns (mu)")
    chain = chain_of(solvers)
    cset = resolved(constraints, assets, universe)
    pieces = list(cset.pieces) + list(extra)
    diagnosis.precheck(pieces, len(assets), budget=cset.budget, assets=assets)
    prog = compiled(objective, cset, rm, mu_vec, extra)
    t1 = time.perf_counter()
    n = len(assets)

    def weights_of(out: Outcome) -> np.ndarray:
        if objective.homogeneous:
            t = out.x[n]
            return out.x[:n] / t if t > 0 else np.full(n, np.nan)
        return out.x[:n]

    def accept(out: Outcome) -> bool:
        w = weights_of(out)
        if not np.isfinite(w).all():
            return False
        # Objectives with extra terms (risk budgeting's log barrier, CVaR) are left to their
        # models' own checks: risk_parity diagnoses an unbounded barrier (a perfect hedge)
        # from the answer the solver returns.
        if not objective.terms and not stationary(prog, out):
            return False
        return all(c["ok"] for c in verify(pieces, w, rm).values())

    winner, outs = solve_program(prog, chain=chain, accept=accept)
    t2 = time.perf_counter()
    attempts = tuple(o.attempt() for o in outs)
    if winner is None:
        statuses = {o.status for o in outs}
        if "infeasible" in statuses:
            raise diagnosis.elastic(pieces, n, rm, attempts=attempts)
        if "unbounded" in statuses:
            raise InputError(
                "the problem is unbounded: the objective can improve without limit; "
                "add bounds, a budget or a leverage limit"
            )
        raise SolverError("every solver in the chain failed", attempts)
    w = clean_weights(weights_of(winner), pieces, rm)
    checks = verify(pieces, w, rm)
    bind = binding(prog, winner, pieces, w, rm)
    if objective.homogeneous:
        # duals of the homogenized problem are not in the objective's units
        bind = tuple({**b_, "shadow_price": None} for b_ in bind)
    t3 = time.perf_counter()
    return make_allocation(
        w,
        assets,
        rm,
        mu_vec,
        status=winner.status,
        solver=winner.solver,
        attempts=attempts,
        binding=bind,
        checks=checks,
        timings={"compile": t1 - t0, "solve": t2 - t1, "other": t3 - t2},
        objective=winner.objective,
        notes=tuple(notes),
    )


def make_allocation(w, assets, rm, mu_vec, **fields) -> Allocation:
    """Fill the analytics of an :class:`Allocation` from weights."""
    cw = rm.times(w)
    var = float(max(w @ cw, 0.0))
    vol = float(np.sqrt(var))
    rc = w * cw / vol if vol > 0 else np.zeros_like(w)
    return Allocation(
        weights=pd.Series(w, index=assets, name="weight"),
        expected_return=None if mu_vec is None else float(mu_vec @ w),
        volatility=vol,
        risk_contributions=pd.Series(rc, index=assets, name="risk_contribution"),
        **fields,
    )
