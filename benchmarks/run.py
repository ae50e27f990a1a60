#!/usr/bin/env python
"""trimtab benchmark harness: trimtab side by side with its peers, in one process.

Usage::

    python benchmarks/run.py [--quick] [--only NAME ...] [--repeat K]

Every benchmark builds its inputs once from a seeded synthetic data set and
hands the very same objects to trimtab and to each peer library. Each side is
warmed up once (imports, lazy initialization) and then timed several times,
interleaved with the other sides so that load on the machine hits them alike;
the table reports medians and the ratio ``trimtab / peer``. Accuracy is judged
by the harness from the returned weights, with trimtab's inputs (``mu``,
covariance), never from a library's own report.

The harness sets ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` to 1 before numpy is imported, so that every library runs
single-threaded BLAS. A peer that is not installed gives a row that says so;
only trimtab's runtime dependencies are needed. See benchmarks/README.md.
"""

# ruff: noqa: E402  (the BLAS thread variables must be set before numpy is imported)
from __future__ import annotations

import os
import sys

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
PREVIOUS_THREADS = {name: os.environ.get(name) for name in THREAD_VARS}
for _name in THREAD_VARS:
    os.environ[_name] = "1"

import argparse
import datetime as dt
import gc
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import math
import platform
import statistics
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # measure the working tree this file belongs to
    sys.path.insert(0, str(ROOT))

import numpy as np
import pandas as pd
import sklearn.covariance

from models import covariance
from models.mean_variance import (
    efficient_frontier,
    efficient_return,
    max_utility,
    min_variance,
)
from models.risk_parity import risk_parity
from optimizer.riskmodel import FactorCovariance

PERIODS = 252  # daily data, annualized figures

# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    """Problem sizes and run counts; ``--quick`` shrinks every problem."""

    quick: bool
    repeat: int  # timed runs of a cheap benchmark
    repeat_slow: int  # timed runs of a frontier-type (expensive) benchmark
    est_t: int = 2520
    est_n: int = 500
    frontier_n: int = 500
    frontier_points: int = 50
    factor_n: int = 2000
    factor_k: int = 50
    factor_frontier_points: int = 5
    rp_n: int = 500
    resolve_n: int = 12
    resolve_calls: int = 1000
    resolve_peer_calls: int = 100
    rebalance_n: int = 12
    rebalance_accounts: int = 1000
    rebalance_peer_accounts: int = 100
    rebalance_large_n: int = 500
    backtest_years: int = 20
    backtest_n: int = 50
    mc_paths: int = 100_000

    @classmethod
    def make(cls, *, quick: bool, repeat: int | None) -> Config:
        if quick:
            return cls(
                quick=True,
                repeat=repeat or 3,
                repeat_slow=repeat or 2,
                est_t=1260,
                est_n=200,
                frontier_n=100,
                frontier_points=20,
                factor_n=400,
                factor_k=20,
                factor_frontier_points=3,
                rp_n=100,
                resolve_calls=200,
                resolve_peer_calls=30,
                rebalance_accounts=100,
                rebalance_peer_accounts=20,
                rebalance_large_n=100,
                backtest_years=5,
                backtest_n=10,
                mc_paths=10_000,
            )
        return cls(quick=False, repeat=repeat or 5, repeat_slow=repeat or 3)


# --------------------------------------------------------------------------- synthetic data


@cache
def daily_returns(t: int, n: int, seed: int, k: int = 5) -> pd.DataFrame:
    """Daily returns, T x n, from a k-factor model (a market and k - 1 styles).

    Annualized: market volatility about 17%, specific volatility 10% to 32%,
    drifts spread from -5% to +25% a year, so the covariance has a realistic
    spectrum (a few large eigenvalues over a bulk) and the means have spread.
    """
    rng = np.random.default_rng(seed)
    factor_vol = 0.011 * 0.6 ** np.arange(k)
    factors = rng.standard_normal((t, k)) * factor_vol
    loadings = np.column_stack([rng.normal(1.0, 0.3, n), rng.normal(0.0, 0.6, (n, k - 1))])
    specific = rng.uniform(0.10, 0.32, n) / math.sqrt(PERIODS)
    drift = rng.uniform(-0.05, 0.25, n) / PERIODS
    values = drift + factors @ loadings.T + rng.standard_normal((t, n)) * specific
    index = pd.bdate_range("2015-01-02", periods=t, name="date")
    return pd.DataFrame(values, index=index, columns=[f"EQ{i:04d}" for i in range(n)])


@cache
def lw_inputs(t: int, n: int, seed: int) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """(returns, mu, cov): annualized mean and scikit-learn Ledoit-Wolf times 252."""
    rets = daily_returns(t, n, seed)
    lw, _ = sklearn.covariance.ledoit_wolf(rets.to_numpy())
    cov = pd.DataFrame(lw * PERIODS, index=rets.columns, columns=rets.columns)
    return rets, rets.mean() * PERIODS, cov


@cache
def factor_inputs(
    n: int, k: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """(loadings n x k, factor_cov k x k, specific n, mu n), annualized.

    The factor covariance is the sample covariance of five years of simulated
    daily factor returns (a market, then styles of falling volatility, mixed so
    that the factors correlate); expected returns are factor premia plus noise.
    """
    rng = np.random.default_rng(seed)
    assets = pd.Index([f"S{i:04d}" for i in range(n)])
    names = pd.Index([f"F{j:02d}" for j in range(k)])
    vol = np.r_[0.16, 0.08 * 0.95 ** np.arange(k - 1)] / math.sqrt(PERIODS)
    mix = np.eye(k) + 0.15 * rng.standard_normal((k, k))
    daily = (rng.standard_normal((5 * PERIODS, k)) @ mix) * vol
    factor_cov = np.cov(daily, rowvar=False) * PERIODS
    loadings = rng.normal(0.0, 0.4, (n, k))
    loadings[:, 0] = rng.normal(1.0, 0.25, n)
    specific = rng.uniform(0.12, 0.40, n) ** 2
    premia = np.r_[0.05, rng.normal(0.0, 0.02, k - 1)]
    mu = 0.02 + loadings @ premia + rng.normal(0.0, 0.03, n)
    return (
        pd.DataFrame(loadings, index=assets, columns=names),
        pd.DataFrame((factor_cov + factor_cov.T) / 2, index=names, columns=names.copy()),
        pd.Series(specific, index=assets.copy()),
        pd.Series(mu, index=assets.copy()),
    )


@cache
def small_inputs(n: int, calls: int, seed: int) -> tuple[pd.DataFrame, list[pd.Series]]:
    """A policy-sized (n-asset) covariance and ``calls + 1`` expected-return vectors."""
    rng = np.random.default_rng(seed)
    names = [f"AC{i:02d}" for i in range(n)]
    load = rng.normal(0.0, 0.1, (n, 3))
    load[:, 0] = rng.uniform(0.05, 0.18, n)
    cov = load @ load.T + np.diag(rng.uniform(0.02, 0.08, n) ** 2)
    base = rng.uniform(0.02, 0.09, n)
    mus = [pd.Series(base + rng.normal(0.0, 0.01, n), index=names) for _ in range(calls + 1)]
    return pd.DataFrame(cov, index=names, columns=names), mus


def tiny_inputs(n: int = 12) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """A small problem of the same kind, for warm-up calls."""
    return lw_inputs(260, n, 99)


# --------------------------------------------------------------------------- peers


@dataclass(frozen=True)
class Peer:
    label: str
    distribution: str  # name on PyPI, for the version
    module: str  # import name


PYPFOPT = Peer("PyPortfolioOpt", "pyportfolioopt", "pypfopt")
SKFOLIO = Peer("skfolio", "skfolio", "skfolio")
RISKFOLIO = Peer("Riskfolio-Lib", "riskfolio-lib", "riskfolio")
RPP = Peer("riskparityportfolio", "riskparityportfolio", "riskparityportfolio")
PEERS = (PYPFOPT, SKFOLIO, RISKFOLIO, RPP)


@cache
def peer_problem(peer: Peer) -> str | None:
    """None when ``peer`` imports; otherwise why not ("peer not installed", ...)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(peer.module)
    except ModuleNotFoundError as exc:
        if exc.name == peer.module or exc.name is None:
            return "peer not installed"
        return f"peer not importable (ModuleNotFoundError: {exc})"
    except Exception as exc:
        return f"peer not importable ({type(exc).__name__}: {exc})"
    return None


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def skfolio_prior(mu: pd.Series, cov: pd.DataFrame):
    """``EmpiricalPrior(mu_estimator=<fixed mu>, covariance_estimator=<fixed cov>)``.

    skfolio estimates moments with estimator objects; its documented extension
    point is a subclass of ``BaseMu`` / ``BaseCovariance`` whose ``fit`` sets
    ``mu_`` / the covariance. These return the given annualized figures
    (``nearest=False``: the matrix is used as given; it is positive definite).
    """
    from skfolio.moments import BaseCovariance, BaseMu
    from skfolio.prior import EmpiricalPrior

    class FixedMu(BaseMu):
        def __init__(self, mu=None):
            self.mu = mu

        def fit(self, X, y=None):
            self.mu_ = np.asarray(self.mu, dtype=float)
            return self

    class FixedCovariance(BaseCovariance):
        def __init__(self, covariance=None, nearest=False, higham=False, higham_max_iteration=100):
            super().__init__(
                nearest=nearest, higham=higham, higham_max_iteration=higham_max_iteration
            )
            self.covariance = covariance

        def fit(self, X, y=None):
            self._set_covariance(np.asarray(self.covariance, dtype=float))
            return self

    return EmpiricalPrior(
        mu_estimator=FixedMu(mu.to_numpy()),
        covariance_estimator=FixedCovariance(cov.to_numpy()),
    )


@cache
def rpp_design() -> tuple[Callable | None, str]:
    """riskparityportfolio's C++ "vanilla" solver ``design(Sigma, b, tol, maxiter)``.

    It is the package-level ``riskparityportfolio.design`` (also what the
    ``RiskParityPortfolio`` constructor calls). ``RiskParityPortfolio.design()``
    is a different path: successive convex approximation in Python with quadprog.
    When the package's ``__init__`` cannot be imported (0.6 imports jax and
    quadprog without declaring them), the compiled ``vanilla`` extension is
    loaded from the installed package directory: the same C++ function.
    """
    problem = peer_problem(RPP)
    if problem is None:
        import riskparityportfolio

        return riskparityportfolio.design, "riskparityportfolio.design (C++ vanilla)"
    if problem == "peer not installed":
        return None, problem
    try:
        spec = importlib.util.find_spec(RPP.module)
        folder = Path(next(iter(spec.submodule_search_locations)))
        library = next(folder.glob("vanilla*.so"), None) or next(folder.glob("vanilla*.pyd"))
        loader = importlib.machinery.ExtensionFileLoader("vanilla", str(library))
        module = importlib.util.module_from_spec(
            importlib.util.spec_from_file_location("vanilla", library, loader=loader)
        )
        loader.exec_module(module)
    except Exception as exc:
        return None, f"{problem}; C++ extension not loadable ({type(exc).__name__}: {exc})"
    return (
        module.design,
        "riskparityportfolio vanilla.design (C++; loaded from its extension: "
        + problem.removeprefix("peer not importable (").removesuffix(")")
        + ")",
    )


# --------------------------------------------------------------------------- timing


@dataclass
class Side:
    """One library's way of doing a benchmark's job.

    ``call(*setup())`` is timed; ``setup`` (untimed, once per run) makes fresh
    inputs where a library keeps per-object caches. ``warmup`` runs once,
    untimed, before the timed runs (imports, lazy initialization).
    """

    label: str
    call: Callable[..., Any] | None
    setup: Callable[[], tuple] | None = None
    warmup: Callable[[], Any] | None = None
    missing: str | None = None
    runs: int | None = None  # overrides the benchmark's count
    times: list[float] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    warned: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.missing is None and self.error is None and bool(self.times)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    def _record(self, caught) -> None:
        for w in caught:
            text = " ".join(str(w.message).split())
            self.warned[f"{w.category.__name__}: {text[:110]}"] += 1

    def do_warmup(self) -> None:
        if self.missing or self.warmup is None:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.warmup()
            except Exception as exc:  # a failing warm-up is reported, the run goes on
                self.error = f"warm-up failed: {type(exc).__name__}: {exc}"

    def run_once(self) -> None:
        if self.missing or self.error:
            return
        args = self.setup() if self.setup else ()
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            try:
                out = self.call(*args)
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                if os.environ.get("TRIMTAB_BENCH_DEBUG"):
                    traceback.print_exc()
                out = None
            elapsed = time.perf_counter() - start
        self._record(caught)
        if self.error is None:
            self.times.append(elapsed)
            self.result = out


def measure(sides: Sequence[Side], runs: int) -> None:
    """Warm every side up, then time them in turn (interleaved), ``runs`` times each."""
    for side in sides:
        side.do_warmup()
    for i in range(max(side.runs or runs for side in sides)):
        for side in sides:
            if i < (side.runs or runs):
                progress(f"    {side.label[:60]}: run {i + 1}/{side.runs or runs}")
                side.run_once()


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Goal:
    """``kind``: "ratio" (ours / peer <= value), "speedup" (peer / ours >= value),
    "absolute" (ours median <= value seconds)."""

    kind: str
    value: float

    @property
    def text(self) -> str:
        if self.kind == "ratio":
            return f"ratio <= {self.value:g}"
        if self.kind == "speedup":
            return f">= {self.value:g}x faster"
        return f"< {fmt_seconds(self.value)}/call"

    def met(self, ours: float, peer: float | None) -> bool | None:
        if self.kind == "absolute":
            return ours < self.value
        if peer is None:
            return None
        if self.kind == "ratio":
            return ours / peer <= self.value
        return peer / ours >= self.value


@dataclass
class Row:
    bench: str
    label: str
    ours: float | None
    peer: float | None
    goal: Goal | None
    result: str

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.peer is None or self.peer <= 0:
            return None
        return self.ours / self.peer


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def make_row(
    bench: str, label: str, ours: Side, peer: Side | None, goal: Goal | None, accurate=None
) -> Row:
    """A table row; ``accurate`` (True, False or None) joins the speed verdict."""
    if not ours.ok:
        why = ours.missing or ours.error or "no timing"
        return Row(
            bench, label, None, peer.median if peer else None, goal, f"ERROR (trimtab: {why})"
        )
    if peer is not None and not peer.ok:
        why = peer.missing or f"peer error: {peer.error}"
        if goal is not None and goal.kind == "absolute":
            verdict = "PASS" if goal.met(ours.median, None) else "FAIL"
            return Row(bench, label, ours.median, None, goal, f"{verdict} ({why})")
        return Row(bench, label, ours.median, None, goal, why)
    peer_median = peer.median if peer is not None else None
    if goal is None:
        return Row(bench, label, ours.median, peer_median, None, "info")
    speed = goal.met(ours.median, peer_median)
    failed = []
    if speed is False:
        failed.append("speed")
    if accurate is False:
        failed.append("accuracy")
    return Row(
        bench,
        label,
        ours.median,
        peer_median,
        goal,
        "PASS" if not failed else f"FAIL ({', '.join(failed)})",
    )


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e3:.3f} ms"
    if s < 1.0:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_ratio(row: Row) -> str:
    r = row.ratio
    if r is None:
        return "-"
    if row.goal is not None and row.goal.kind == "ratio":
        return f"{r:.2f}"
    return f"{r:.3g} ({1 / r:.1f}x)" if r < 1 else f"{r:.3g}"


def times_note(side: Side) -> str:
    if not side.times:
        return f"{side.label}: no timing"
    shown = ", ".join(fmt_seconds(t) for t in side.times)
    return f"{side.label}: runs {shown}"


def warning_notes(sides: Sequence[Side]) -> list[str]:
    out = []
    for side in sides:
        for text, count in side.warned.most_common(3):
            out.append(f"warning from {side.label} ({count}x): {text}")
    return out


# --------------------------------------------------------------------------- portfolio math


def stats(weights: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> dict[str, np.ndarray]:
    """Return, volatility and constraint slack of each row of ``weights`` (k x n)."""
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    var = np.einsum("ij,jk,ik->i", w, cov, w)
    return {
        "ret": w @ mu,
        "vol": np.sqrt(np.maximum(var, 0.0)),
        "budget": np.abs(w.sum(axis=1) - 1.0),
        "min_w": w.min(axis=1),
    }


def rc_spread(w: np.ndarray, cov: np.ndarray, budgets: np.ndarray | None = None) -> float:
    """Largest relative risk-contribution error ``max_i |RC_i / (b_i sigma) - 1|``."""
    w = np.asarray(w, dtype=float)
    b = np.full(len(w), 1.0 / len(w)) if budgets is None else budgets
    share = w * (cov @ w) / float(w @ cov @ w)
    return float(np.max(np.abs(share / b - 1.0)))


#: A peer's point counts only if it satisfies the problem to trimtab's own verification
#: tolerance (optimizer.core.FEAS_TOL): budget, long-only and the return target.
FEAS_TOL = 1e-7


def infeasible(s: dict[str, np.ndarray], targets: np.ndarray | None = None) -> np.ndarray:
    """Rows of :func:`stats` that violate the budget, long-only or the return target."""
    bad = (s["budget"] > FEAS_TOL) | (s["min_w"] < -FEAS_TOL)
    if targets is not None:
        bad |= (targets - s["ret"]) > FEAS_TOL * np.maximum(1.0, np.abs(targets))
    return bad


def infeasible_note(name: str, s: dict[str, np.ndarray], bad: np.ndarray, targets=None) -> str:
    idx = np.flatnonzero(bad)
    short = (targets - s["ret"])[idx].max() if targets is not None else 0.0
    return (
        f"{name}: {len(idx)} point(s) {idx.tolist()} violate the problem beyond {FEAS_TOL:g} and "
        f"are not compared: return shortfall up to {short:.1e}, weights down to "
        f"{s['min_w'][idx].min():.1e}, budget error up to {s['budget'][idx].max():.1e}"
    )


def excess(ours_vol: np.ndarray, theirs_vol: np.ndarray) -> np.ndarray:
    """Relative excess of our volatility over theirs (negative: ours is lower)."""
    return ours_vol / theirs_vol - 1.0


def describe_excess(
    name: str, ex: np.ndarray, excluded: np.ndarray, tol: float = 1e-6
) -> tuple[str, bool | None]:
    """Worst relative excess over the peer's feasible points, and whether it meets ``tol``."""
    valid = np.isfinite(ex) & ~excluded
    if not valid.any():
        return f"vs {name}: no comparable point", None
    idx = np.flatnonzero(valid)
    worst = int(idx[np.argmax(ex[valid])])
    n_bad = int(np.sum(ex[valid] > tol))
    text = (
        f"vs {name}: worst relative excess of our volatility {ex[worst]:+.2e} (point {worst}; "
        f"goal <= {tol:g}); median {np.median(ex[valid]):+.2e}; {n_bad} of {len(idx)} "
        "feasible peer points above the goal"
    )
    raw = np.isfinite(ex)
    if (raw & excluded).any():
        text += f"; counting the infeasible ones too: worst {np.max(ex[raw]):+.2e}"
    return text, n_bad == 0


# --------------------------------------------------------------------------- 1. estimators


def bench_estimators(cfg: Config) -> Outcome:
    out = Outcome()
    rets = daily_returns(cfg.est_t, cfg.est_n, 11)
    x = rets.to_numpy()
    sample = np.cov(x, rowvar=False)
    size = f"T={cfg.est_t}, n={cfg.est_n}"

    ours = Side("covariance.ledoit_wolf(returns)", lambda: covariance.ledoit_wolf(rets))
    ours.warmup = ours.call
    peer = Side("sklearn.covariance.ledoit_wolf(X)", lambda: sklearn.covariance.ledoit_wolf(x))
    peer.warmup = peer.call
    measure([ours, peer], cfg.repeat)
    accurate = None
    if ours.ok and peer.ok:
        ref = peer.result[0] * PERIODS
        gap = float(np.max(np.abs(ours.result.to_numpy() - ref)) / np.max(np.abs(ref)))
        accurate = gap <= 1e-12
        out.notes.append(
            f"Ledoit-Wolf: max |ours - sklearn * 252| / max |sklearn * 252| = {gap:.1e} "
            f"(shrinkage {peer.result[1]:.4f})"
        )
    out.rows.append(
        make_row(
            "1 estimators",
            f"ledoit_wolf vs sklearn ({size})",
            ours,
            peer,
            Goal("ratio", 1.2),
            accurate,
        )
    )
    out.notes += [times_note(ours), times_note(peer)]

    ours = Side(
        "covariance.nonlinear_shrinkage(returns)", lambda: covariance.nonlinear_shrinkage(rets)
    )
    ours.warmup = ours.call
    peer = Side(f"numpy.linalg.eigh ({cfg.est_n}x{cfg.est_n})", lambda: np.linalg.eigh(sample))
    peer.warmup = peer.call
    measure([ours, peer], cfg.repeat)
    accurate = None
    if ours.ok:
        lam = np.linalg.eigvalsh(ours.result.to_numpy())
        s_lam = np.linalg.eigvalsh(sample * PERIODS)
        accurate = bool(lam[0] > 0)
        out.notes.append(
            f"nonlinear shrinkage: eigenvalues {lam[0]:.3g} .. {lam[-1]:.3g} (sample "
            f"{s_lam[0]:.3g} .. {s_lam[-1]:.3g}); positive definite: {accurate}; "
            f"trace ratio to the sample {lam.sum() / s_lam.sum():.4f}"
        )
    out.rows.append(
        make_row(
            "1 estimators",
            f"nonlinear_shrinkage vs one eigh ({size})",
            ours,
            peer,
            Goal("ratio", 3.0),
            accurate,
        )
    )
    out.notes += [times_note(ours), times_note(peer)]
    return out


# --------------------------------------------------------------------------- 2. frontier


def pypfopt_frontier(mu: pd.Series, cov: pd.DataFrame, targets: np.ndarray):
    """One ``EfficientFrontier(mu, cov).efficient_return(r)`` per target (new object
    each time, as PyPortfolioOpt's docs require). Returns (weights, errors by point)."""
    from pypfopt import EfficientFrontier

    weights = np.full((len(targets), len(mu)), np.nan)
    errors: dict[int, str] = {}
    for i, r in enumerate(targets):
        try:
            ef = EfficientFrontier(mu, cov)
            ef.efficient_return(float(r))
            weights[i] = ef.weights
        except Exception as exc:
            errors[i] = f"{type(exc).__name__}: {exc}"
    return weights, errors


def skfolio_frontier(rets: pd.DataFrame, mu: pd.Series, cov: pd.DataFrame, size: int) -> np.ndarray:
    """``MeanRisk(risk_measure=VARIANCE, efficient_frontier_size=size)`` fitted with our
    mu and covariance through ``EmpiricalPrior`` (long-only, fully invested: its defaults)."""
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk

    model = MeanRisk(
        risk_measure=RiskMeasure.VARIANCE,
        efficient_frontier_size=size,
        prior_estimator=skfolio_prior(mu, cov),
    )
    model.fit(rets)
    return np.asarray(model.weights_, dtype=float)


def bench_frontier(cfg: Config) -> Outcome:
    out = Outcome()
    n, points = cfg.frontier_n, cfg.frontier_points
    rets, mu, cov = lw_inputs(cfg.est_t, n, 21)
    mu_v, cov_v = mu.to_numpy(), cov.to_numpy()
    small_r, small_mu, small_cov = tiny_inputs()
    progress("  reference frontier (untimed) for the targets")
    reference = efficient_frontier(mu, cov.copy(), points=points)
    targets = reference.points["target_return"].to_numpy()
    out.notes.append(
        f"inputs: n={n}, {points} points, mu = annualized mean of T={cfg.est_t} daily returns "
        f"({mu.min():.1%} .. {mu.max():.1%}, sd {mu.std():.1%}), cov = sklearn Ledoit-Wolf x 252; "
        f"frontier targets {targets[0]:.2%} .. {targets[-1]:.2%}"
    )

    ours = Side(
        f"efficient_frontier(points={points})",
        lambda c: efficient_frontier(mu, c, points=points),
        setup=lambda: (
            cov.copy(),
        ),  # a new object each run: trimtab's per-object caches start cold
        warmup=lambda: efficient_frontier(small_mu, small_cov.copy(), points=5),
    )
    pyp = Side(f"PyPortfolioOpt efficient_return x{points}", None, missing=peer_problem(PYPFOPT))
    if pyp.missing is None:
        pyp.call = lambda: pypfopt_frontier(mu, cov, targets)
        pyp.warmup = lambda: pypfopt_frontier(small_mu, small_cov, [float(small_mu.mean())])
    skf = Side(
        f"skfolio MeanRisk(efficient_frontier_size={points})", None, missing=peer_problem(SKFOLIO)
    )
    if skf.missing is None:
        skf.call = lambda: skfolio_frontier(rets, mu, cov, points)
        skf.warmup = lambda: skfolio_frontier(small_r, small_mu, small_cov, 3)
    measure([ours, pyp, skf], cfg.repeat_slow)

    ours_ok = ours.ok
    if ours_ok:
        fr = ours.result
        if len(fr.failed):
            out.notes.append(
                f"trimtab frontier: {len(fr.failed)} failed points: {fr.failed.to_dict('index')}"
            )
        ours_w = np.full((points, n), np.nan)
        ours_w[fr.weights.index.to_numpy()] = fr.weights.to_numpy()
        ours_s = stats(ours_w, mu_v, cov_v)
        solvers = Counter(a.solver for a in fr.allocations)
        out.notes.append(
            f"trimtab: solvers {dict(solvers)}; worst return shortfall "
            f"{np.nanmax(targets - ours_s['ret']):.1e}; worst budget error {np.nanmax(ours_s['budget']):.1e}; "
            f"min weight {np.nanmin(ours_s['min_w']):.1e}"
        )

    # PyPortfolioOpt: the same targets.
    accurate = None
    if ours_ok and pyp.ok:
        w, errors = pyp.result
        s = stats(w, mu_v, cov_v)
        ex = excess(ours_s["vol"], s["vol"])
        bad = infeasible(s, targets)
        text, accurate = describe_excess("PyPortfolioOpt (same targets)", ex, bad)
        out.notes.append(text)
        if bad.any():
            out.notes.append(infeasible_note("PyPortfolioOpt", s, bad, targets))
        short = targets - s["ret"]
        out.notes.append(
            f"PyPortfolioOpt: worst return shortfall {np.nanmax(short):.1e}, worst budget error "
            f"{np.nanmax(s['budget']):.1e}, min weight {np.nanmin(s['min_w']):.1e}"
        )
        if errors:
            first = next(iter(errors.items()))
            out.notes.append(
                f"PyPortfolioOpt failed on {len(errors)} of {points} points {sorted(errors)}: "
                f"first: point {first[0]}: {first[1][:160]}"
            )
    out.rows.append(
        make_row(
            "2 frontier",
            f"frontier n={n} x{points} vs PyPortfolioOpt",
            ours,
            pyp,
            Goal("speedup", 25),
            accurate,
        )
    )

    # skfolio: its own targets (min-variance return x 1.01 .. max return); ours re-solved there.
    accurate = None
    if ours_ok and skf.ok:
        w = skf.result
        s = stats(w, mu_v, cov_v)
        top = float(targets[-1])
        progress(
            f"  trimtab efficient_return at skfolio's {len(w)} returns (untimed, for accuracy)"
        )
        ours_vol = np.full(len(w), np.nan)
        failures = []
        for i, r in enumerate(s["ret"]):
            try:
                ours_vol[i] = efficient_return(mu, cov, target_return=min(float(r), top)).volatility
            except Exception as exc:
                failures.append(f"{i}: {type(exc).__name__}: {exc}"[:160])
        ex = excess(ours_vol, s["vol"])
        bad = infeasible(s)
        text, accurate = describe_excess("skfolio (its realized returns as our targets)", ex, bad)
        out.notes.append(text)
        if bad.any():
            out.notes.append(infeasible_note("skfolio", s, bad))
        out.notes.append(
            f"skfolio: {len(w)} portfolios, returns {np.min(s['ret']):.2%} .. {np.max(s['ret']):.2%}; worst "
            f"budget error {np.max(s['budget']):.1e}, min weight {np.min(s['min_w']):.1e}"
        )
        if failures:
            out.notes.append(
                f"trimtab efficient_return failed at {len(failures)} skfolio points: {failures[0]}"
            )
            accurate = False
    out.rows.append(
        make_row(
            "2 frontier",
            f"frontier n={n} x{points} vs skfolio",
            ours,
            skf,
            Goal("speedup", 50),
            accurate,
        )
    )
    out.notes += [times_note(x) for x in (ours, pyp, skf) if x.missing is None]
    out.notes += warning_notes([pyp, skf])
    return out


# --------------------------------------------------------------------------- 3. factor model


def bench_factor(cfg: Config) -> Outcome:
    out = Outcome()
    n, k = cfg.factor_n, cfg.factor_k
    loadings, fcov, specific, mu = factor_inputs(n, k, 31)

    def fresh() -> FactorCovariance:
        return FactorCovariance(loadings, fcov, specific)

    fc = fresh()
    dense = fc.cov
    mu_v, dense_v = mu.to_numpy(), dense.to_numpy()
    low = min_variance(fc, mu=mu)
    target = float(low.expected_return + 0.5 * (mu.max() - low.expected_return))
    out.notes.append(
        f"inputs: n={n}, k={k} factors; mu {mu.min():.1%} .. {mu.max():.1%}; one efficient_return at "
        f"{target:.2%} (halfway from the min-variance return {low.expected_return:.2%} to the top "
        f"{mu.max():.2%}); trimtab gets FactorCovariance, PyPortfolioOpt fc.cov ({n}x{n} dense)"
    )
    small_r, small_mu, small_cov = tiny_inputs()

    ours = Side(
        "efficient_return(mu, FactorCovariance)",
        lambda c: efficient_return(mu, c, target_return=target),
        setup=lambda: (fresh(),),
        warmup=lambda: efficient_return(small_mu, small_cov, target_return=float(small_mu.mean())),
    )
    dense_side = Side(
        "efficient_return(mu, dense fc.cov)",
        lambda c: efficient_return(mu, c, target_return=target),
        setup=lambda: (dense.copy(),),
    )
    pyp = Side("PyPortfolioOpt efficient_return (dense)", None, missing=peer_problem(PYPFOPT))
    if pyp.missing is None:
        pyp.call = lambda: pypfopt_frontier(mu, dense, np.array([target]))
        pyp.warmup = lambda: pypfopt_frontier(small_mu, small_cov, [float(small_mu.mean())])
    measure([ours, dense_side, pyp], cfg.repeat_slow)

    accurate = None
    if ours.ok and pyp.ok:
        w, errors = pyp.result
        s = stats(w, mu_v, dense_v)
        o = stats(ours.result.weights.to_numpy(), mu_v, dense_v)
        if errors:
            out.notes.append(f"PyPortfolioOpt failed: {errors[0][:200]}")
            accurate = None
        else:
            ex = float(excess(o["vol"], s["vol"])[0])
            bad = bool(infeasible(s, np.array([target]))[0])
            accurate = None if bad else ex <= 1e-6
            out.notes.append(
                f"volatility: trimtab {o['vol'][0]:.8f}, PyPortfolioOpt {s['vol'][0]:.8f} "
                f"(relative excess of ours {ex:+.2e}; goal <= 1e-6)"
            )
            out.notes.append(
                f"return shortfall below the target: trimtab {target - o['ret'][0]:+.1e}, "
                f"PyPortfolioOpt {target - s['ret'][0]:+.1e}; budget error: trimtab {o['budget'][0]:.1e}, "
                f"PyPortfolioOpt {s['budget'][0]:.1e}; min weight: trimtab {o['min_w'][0]:.1e}, "
                f"PyPortfolioOpt {s['min_w'][0]:.1e}"
            )
            if bad:
                out.notes.append(
                    f"PyPortfolioOpt's point violates the problem beyond {FEAS_TOL:g}: not compared"
                )
    if ours.ok and dense_side.ok:
        gap = abs(dense_side.result.volatility / ours.result.volatility - 1)
        out.notes.append(
            f"trimtab dense vs factor form: same volatility to {gap:.1e}; solver "
            f"{ours.result.solver}, timings (factor) "
            + ", ".join(f"{k_} {fmt_seconds(v)}" for k_, v in ours.result.timings.items())
        )
    out.rows.append(
        make_row(
            "3 factor",
            f"efficient_return n={n} k={k} vs PyPortfolioOpt",
            ours,
            pyp,
            Goal("speedup", 30),
            accurate,
        )
    )
    out.rows.append(
        make_row("3 factor", "  trimtab factor form vs trimtab dense", ours, dense_side, None)
    )

    # Information: a short frontier with the factor object (one run; see the README).
    points = cfg.factor_frontier_points
    frontier_side = Side(
        f"efficient_frontier(points={points}, FactorCovariance)",
        lambda c: efficient_frontier(mu, c, points=points),
        setup=lambda: (fresh(),),
        runs=1,
    )
    measure([frontier_side], 1)
    if frontier_side.ok:
        per_point = frontier_side.median / points
        solvers = Counter(a.solver for a in frontier_side.result.allocations)
        out.notes.append(
            f"information: efficient_frontier(points={points}) with the factor object took "
            f"{fmt_seconds(frontier_side.median)} ({fmt_seconds(per_point)} a point; solvers {dict(solvers)}) "
            f"against {fmt_seconds(ours.median)} for one efficient_return"
        )
    out.rows.append(
        make_row(
            "3 factor",
            f"  trimtab frontier x{points} (factor) vs one solve",
            frontier_side,
            ours,
            None,
        )
    )
    out.notes += [
        times_note(x) for x in (ours, dense_side, pyp, frontier_side) if x.missing is None
    ]
    out.notes += warning_notes([pyp])
    return out


# --------------------------------------------------------------------------- 4. risk parity


def bench_risk_parity(cfg: Config) -> Outcome:
    out = Outcome()
    n = cfg.rp_n
    rets, mu, cov = lw_inputs(cfg.est_t, n, 21)
    cov_v = cov.to_numpy()
    budgets = np.full(n, 1.0 / n)
    small_r, small_mu, small_cov = tiny_inputs()

    ours = Side(
        "risk_parity(cov)",
        lambda c: risk_parity(c),
        setup=lambda: (cov.copy(),),
        warmup=lambda: risk_parity(small_cov.copy()),
    )

    skf = Side("skfolio RiskBudgeting(VARIANCE)", None, missing=peer_problem(SKFOLIO))
    if skf.missing is None:
        from skfolio import RiskMeasure
        from skfolio.optimization import RiskBudgeting

        def skfolio_rb(r, m, c):
            model = RiskBudgeting(
                risk_measure=RiskMeasure.VARIANCE, prior_estimator=skfolio_prior(m, c)
            )
            return np.asarray(model.fit(r).weights_, dtype=float)

        skf.call = lambda: skfolio_rb(rets, mu, cov)
        skf.warmup = lambda: skfolio_rb(small_r, small_mu, small_cov)

    rfl = Side("Riskfolio-Lib rp_optimization(Classic, MV)", None, missing=peer_problem(RISKFOLIO))
    if rfl.missing is None:
        import riskfolio

        def riskfolio_rp(r, m, c):
            port = riskfolio.Portfolio(returns=r)
            port.mu = m.to_frame().T  # our estimates, set as Riskfolio's docs show
            port.cov = c
            w = port.rp_optimization(model="Classic", rm="MV", rf=0, b=None, hist=True)
            if w is None:
                raise RuntimeError("rp_optimization returned None (the solver failed)")
            return w.to_numpy(dtype=float).ravel()

        rfl.call = lambda: riskfolio_rp(rets, mu, cov)
        rfl.warmup = lambda: riskfolio_rp(small_r, small_mu, small_cov)

    design, rpp_label = rpp_design()
    rpp = Side(rpp_label, None, missing=None if design else rpp_label)
    if design is not None:
        rpp.call = lambda: np.asarray(design(cov_v, budgets))
        rpp.warmup = rpp.call

    tight = Side("riskparityportfolio design(tol=1e-12, maxiter=1000)", None, missing=rpp.missing)
    if design is not None:
        tight.call = lambda: np.asarray(design(cov_v, budgets, 1e-12, 1000))
        tight.warmup = tight.call

    measure([ours, skf, rfl, rpp, tight], cfg.repeat)

    spreads = {}
    if ours.ok:
        spreads["trimtab"] = rc_spread(ours.result.weights.to_numpy(), cov_v)
    for name, side in (("skfolio", skf), ("Riskfolio-Lib", rfl), ("riskparityportfolio", rpp)):
        if side.ok:
            spreads[name] = rc_spread(side.result, cov_v)
            w = side.result
            out.notes.append(
                f"{name}: budget error {abs(w.sum() - 1):.1e}, min weight {w.min():.2e}, "
                f"max |w - w_trimtab| {np.max(np.abs(w - ours.result.weights.to_numpy())) if ours.ok else float('nan'):.1e}"
            )
    out.notes.append(
        "max relative risk-contribution spread max_i |RC_i / (sigma / n) - 1|: "
        + ", ".join(f"{k_} {v:.1e}" for k_, v in spreads.items())
    )
    if tight.ok:
        out.notes.append(
            "riskparityportfolio runs at its defaults (tol 1e-4, maxiter 50); with tol=1e-12, "
            f"maxiter=1000 its spread is {rc_spread(tight.result, cov_v):.1e} in "
            f"{fmt_seconds(tight.median)}"
        )

    def accurate(name: str) -> bool | None:
        if "trimtab" not in spreads or name not in spreads:
            return None
        return spreads["trimtab"] < spreads[name] or spreads["trimtab"] < 1e-12

    out.rows.append(
        make_row(
            "4 risk parity",
            f"risk_parity n={n} vs skfolio",
            ours,
            skf,
            Goal("speedup", 50),
            accurate("skfolio"),
        )
    )
    out.rows.append(
        make_row(
            "4 risk parity",
            f"risk_parity n={n} vs Riskfolio-Lib",
            ours,
            rfl,
            Goal("speedup", 50),
            accurate("Riskfolio-Lib"),
        )
    )
    out.rows.append(
        make_row(
            "4 risk parity",
            f"risk_parity n={n} vs riskparityportfolio (C++)",
            ours,
            rpp,
            Goal("ratio", 5.0),
            accurate("riskparityportfolio"),
        )
    )
    out.rows.append(
        make_row("4 risk parity", "  same, riskparityportfolio at tol=1e-12", ours, tight, None)
    )
    if ours.ok:
        att = ours.result.attempts[0] if ours.result.attempts else {}
        out.notes.append(
            f"trimtab: solver {ours.result.solver}, {att.get('iterations', '?')} Newton steps; timings "
            + ", ".join(f"{k_} {fmt_seconds(v)}" for k_, v in ours.result.timings.items())
        )
    out.notes += [times_note(x) for x in (ours, skf, rfl, rpp, tight) if x.missing is None]
    out.notes += warning_notes([skf, rfl, rpp])
    return out


# --------------------------------------------------------------------------- 5. re-solve


def bench_resolve(cfg: Config) -> Outcome:
    out = Outcome()
    n = cfg.resolve_n
    cov, mus = small_inputs(n, cfg.resolve_calls, 41)
    cov_v = cov.to_numpy()
    delta = 3.0

    def per_call(fn, items) -> tuple[list[float], list]:
        times, results = [], []
        gc.collect()
        for m in items:
            start = time.perf_counter()
            results.append(fn(m))
            times.append(time.perf_counter() - start)
        return times, results

    # The first call compiles the program; the benchmark is the re-solve, so it is untimed.
    max_utility(mus[-1], cov, risk_aversion=delta)
    ours = Side(f"max_utility x{cfg.resolve_calls} (new mu each)", None)
    progress(f"    {ours.label}")
    try:
        times, allocs = per_call(lambda m: max_utility(m, cov, risk_aversion=delta), mus[:-1])
        ours.times, ours.result = times, [a.weights.to_numpy() for a in allocs]
    except Exception as exc:
        ours.error = f"{type(exc).__name__}: {exc}"

    calls = cfg.resolve_peer_calls
    pyp = Side(
        f"PyPortfolioOpt max_quadratic_utility x{calls}", None, missing=peer_problem(PYPFOPT)
    )
    if pyp.missing is None:
        from pypfopt import EfficientFrontier

        def theirs(m):
            ef = EfficientFrontier(m, cov)
            ef.max_quadratic_utility(risk_aversion=delta)
            return ef.weights

        progress(f"    {pyp.label}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                theirs(mus[-1])
                pyp.times, pyp.result = per_call(theirs, mus[:calls])
            except Exception as exc:
                pyp.error = f"{type(exc).__name__}: {exc}"
        pyp._record(caught)

    accurate = None
    if ours.ok and pyp.ok:

        def utility(w, m):
            return float(m.to_numpy() @ w - delta / 2 * w @ cov_v @ w)

        gaps = np.array(
            [
                utility(t, m) - utility(o, m)
                for o, t, m in zip(ours.result, pyp.result, mus, strict=False)
            ]
        )
        accurate = bool(gaps.max() <= 1e-8)  # both solve to about 1e-9
        out.notes.append(
            f"utility mu'w - 3/2 w'Cw over {len(gaps)} calls: PyPortfolioOpt minus trimtab worst "
            f"{gaps.max():+.1e} (positive: theirs better), median {np.median(gaps):+.1e}"
        )
    if ours.ok:
        q = np.quantile(ours.times, [0.1, 0.5, 0.9, 0.99])
        out.notes.append(
            "trimtab per call: p10 {}, median {}, p90 {}, p99 {}".format(
                *(fmt_seconds(v) for v in q)
            )
        )
    if pyp.ok:
        out.notes.append(
            f"PyPortfolioOpt per call: median {fmt_seconds(pyp.median)} over {len(pyp.times)} calls"
        )
    row = make_row(
        "5 re-solve",
        f"max_utility n={n}, new mu, per call",
        ours,
        pyp,
        Goal("absolute", 1e-3),
        accurate,
    )
    out.rows.append(row)
    out.notes += warning_notes([pyp])
    return out


def cvxpy_rebalance(h, target, cov_v, buy, sell, k, lam):
    """The same rebalance as a new cvxpy problem per account (what the peers do)."""
    import cvxpy as cp

    n = len(h)
    v1 = float(h.sum())
    hw = h / v1
    w = cp.Variable(n)
    u = cp.Variable(n, nonneg=True)
    s = cp.Variable(n, nonneg=True)
    root = np.linalg.cholesky(cov_v + 1e-12 * np.eye(n))
    objective = (
        lam * cp.sum_squares(root.T @ (w - target))
        + buy @ u
        + sell @ s
        + (k * np.sqrt(v1)) @ cp.power(u + s, 1.5)
    )
    prob = cp.Problem(cp.Minimize(objective), [w - u + s == hw, cp.sum(w) == 1, w >= 0])
    prob.solve(solver=cp.CLARABEL)
    return (w.value - hw) * v1


def bench_rebalance(cfg: Config) -> Outcome:
    from optimizer.costs import CostModel
    from optimizer.rebalance import rebalance

    out = Outcome()
    n = cfg.rebalance_n
    cov, _ = small_inputs(n, 1, 53)
    assets = cov.index
    target = pd.Series(1.0 / n, index=assets)
    rng = np.random.default_rng(7)
    accounts = [
        pd.Series(rng.uniform(50_000, 150_000, n), index=assets)
        for _ in range(cfg.rebalance_accounts + 1)
    ]
    adv = pd.Series(rng.uniform(2e7, 2e8, n), index=assets)
    costs = CostModel(bps=10, impact=0.1, adv=adv)
    rc = costs.resolve(assets, None, np.diag(cov.to_numpy()))
    rebalance(accounts[-1], target, cov=cov, costs=costs)  # compiles once, untimed

    def per_call(fn, items):
        times, results = [], []
        gc.collect()
        for h in items:
            start = time.perf_counter()
            results.append(fn(h))
            times.append(time.perf_counter() - start)
        return times, results

    ours = Side(f"rebalance x{cfg.rebalance_accounts} accounts (prop + impact)", None)
    progress(f"    {ours.label}")
    try:
        times, plans = per_call(lambda h: rebalance(h, target, cov=cov, costs=costs), accounts[:-1])
        ours.times = times
        ours.result = [
            p.weights_after.to_numpy() * p.value_after - h.to_numpy()
            for p, h in zip(plans, accounts, strict=False)
        ]
    except Exception as exc:
        ours.error = f"{type(exc).__name__}: {exc}"
    peer = Side(f"new cvxpy problem per account x{cfg.rebalance_peer_accounts}", None)
    progress(f"    {peer.label}")
    cov_v = cov.to_numpy()
    lam = 100.0
    try:
        cvxpy_rebalance(
            accounts[-1].to_numpy(), target.to_numpy(), cov_v, rc.buy, rc.sell, rc.impact, lam
        )
        times, trades = per_call(
            lambda h: cvxpy_rebalance(
                h.to_numpy(), target.to_numpy(), cov_v, rc.buy, rc.sell, rc.impact, lam
            ),
            accounts[: cfg.rebalance_peer_accounts],
        )
        peer.times, peer.result = times, trades
    except Exception as exc:
        peer.error = f"{type(exc).__name__}: {exc}"
    accurate = None
    if ours.ok and peer.ok:

        def objective(trades, h):
            v = h.sum()
            w = (h + trades) / v
            d = w - target.to_numpy()
            cost = (
                rc.buy @ np.clip(trades, 0, None)
                + rc.sell @ np.clip(-trades, 0, None)
                + rc.impact @ np.abs(trades) ** 1.5
            )
            return lam * d @ cov_v @ d + cost / v

        gaps = [
            objective(o, accounts[i].to_numpy()) - objective(t, accounts[i].to_numpy())
            for i, (o, t) in enumerate(zip(ours.result, peer.result, strict=False))
        ]
        accurate = bool(max(gaps) <= 1e-9)
        out.notes.append(
            f"objective (fraction of value), trimtab minus the cvxpy formulation: worst "
            f"{max(gaps):+.1e}, median {np.median(gaps):+.1e} over {len(gaps)} accounts "
            "(negative: ours is better)"
        )
    if ours.ok:
        q = np.quantile(ours.times, [0.1, 0.5, 0.9, 0.99])
        out.notes.append(
            "trimtab per account: p10 {}, median {}, p90 {}, p99 {}".format(
                *(fmt_seconds(v) for v in q)
            )
        )
    out.rows.append(
        make_row(
            "6 rebalance",
            f"rebalance n={n} per account vs cvxpy per account",
            ours,
            peer,
            Goal("speedup", 10.0),
            accurate,
        )
    )
    out.rows.append(
        make_row(
            "6 rebalance",
            f"rebalance n={n} per account (median)",
            ours,
            None,
            Goal("absolute", 1e-3),
            None,
        )
    )
    # n=500 with a factor covariance: one rebalance, cold (new covariance object per run)
    big_n, k = cfg.rebalance_large_n, 20
    loadings, fcov, specific, _ = factor_inputs(big_n, k, 61)
    big_assets = loadings.index
    big_target = pd.Series(1.0 / big_n, index=big_assets)
    big_h = pd.Series(rng.uniform(0.5, 1.5, big_n) * 1e6, index=big_assets)
    big = Side(
        f"rebalance n={big_n}, {k}-factor covariance, 10 bps",
        lambda fc: rebalance(big_h, big_target, cov=fc, costs=CostModel(bps=10)),
        setup=lambda: (FactorCovariance(loadings.copy(), fcov, specific),),
        warmup=lambda: rebalance(big_h, big_target, cov=FactorCovariance(loadings, fcov, specific)),
    )
    measure([big], cfg.repeat)
    out.rows.append(
        make_row(
            "6 rebalance",
            f"rebalance n={big_n} factor, one call",
            big,
            None,
            Goal("absolute", 0.05),
            None,
        )
    )
    return out


def bench_backtest(cfg: Config) -> Outcome:
    from optimizer.costs import CostModel
    from scenarios.backtest import Optimized, backtest
    from scenarios.montecarlo import simulate

    out = Outcome()
    years, n = cfg.backtest_years, cfg.backtest_n
    rng = np.random.default_rng(83)
    months = years * 12
    market = rng.normal(0.007, 0.045, months)
    rets = pd.DataFrame(
        market[:, None] * rng.uniform(0.6, 1.4, n) + rng.normal(0.0, 0.03, (months, n)),
        index=pd.date_range("2000-01-31", periods=months, freq="ME"),
        columns=[f"A{i:02d}" for i in range(n)],
    )
    target = pd.Series(1.0 / n, index=rets.columns)
    costs = CostModel(bps=10)
    side = Side(
        f"backtest {years}y monthly n={n}, optimized policy every month, 10 bps",
        lambda: backtest(rets, target, policy=Optimized(1), costs=costs),
        warmup=lambda: backtest(rets.iloc[:24], target, policy=Optimized(1), costs=costs),
    )
    measure([side], cfg.repeat_slow)
    if side.ok:
        m = side.result.metrics
        out.notes.append(
            f"optimized policy: {m['rebalances']} rebalances, turnover {m['turnover']:.2f} a year, "
            f"costs {m['total_costs']:,.0f} on 1,000,000"
        )
    out.rows.append(
        make_row(
            "7 backtest",
            f"backtest {years}y monthly n={n}, optimized",
            side,
            None,
            Goal("absolute", 5.0),
            None,
        )
    )
    w = pd.Series(1.0 / 6, index=[f"C{i}" for i in range(6)])
    mu = pd.Series(np.linspace(0.03, 0.09, 6), index=w.index)
    vol = np.linspace(0.02, 0.20, 6)
    corr = 0.3 + 0.7 * np.eye(6)
    cov = pd.DataFrame(np.outer(vol, vol) * corr, index=w.index, columns=w.index)
    mc = Side(
        f"Monte Carlo {cfg.mc_paths:,} paths x 30 years, 6 assets, normal",
        lambda: simulate(w, mu, cov, years=30, paths=cfg.mc_paths, seed=1),
        warmup=lambda: simulate(w, mu, cov, years=3, paths=100, seed=1),
    )
    measure([mc], cfg.repeat_slow)
    out.rows.append(
        make_row("7 backtest", "Monte Carlo 30 years", mc, None, Goal("absolute", 5.0), None)
    )
    return out


# --------------------------------------------------------------------------- driver

BENCHMARKS: dict[str, tuple[str, Callable[[Config], Outcome]]] = {
    "estimators": (
        "1 Ledoit-Wolf and nonlinear shrinkage vs scikit-learn / eigh",
        bench_estimators,
    ),
    "frontier": ("2 efficient frontier vs PyPortfolioOpt and skfolio", bench_frontier),
    "factor": ("3 factor covariance (n=2000, k=50) vs PyPortfolioOpt dense", bench_factor),
    "risk_parity": (
        "4 risk parity vs skfolio, Riskfolio-Lib, riskparityportfolio",
        bench_risk_parity,
    ),
    "resolve": ("5 max_utility re-solve with new expected returns", bench_resolve),
    "rebalance": (
        "6 rebalance: a batch of accounts, and n=500 with a factor covariance",
        bench_rebalance,
    ),
    "backtest": ("7 backtest (20 years monthly, n=50) and Monte Carlo", bench_backtest),
}


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "unknown"


def environment(cfg: Config) -> list[str]:
    lines = [
        f"trimtab benchmarks, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
        f"{' (--quick: small problems, goals indicative only)' if cfg.quick else ''}",
        f"machine: {platform.machine()}, {os.cpu_count()} cores visible; Python "
        f"{platform.python_version()}; {platform.platform(terse=True)}",
        "threads: " + ", ".join(f"{v}=1" for v in THREAD_VARS) + " set by the harness before "
        "importing numpy"
        + (
            " (were: "
            + ", ".join(f"{k}={v}" for k, v in PREVIOUS_THREADS.items() if v is not None)
            + ")"
            if any(v not in (None, "1") for v in PREVIOUS_THREADS.values())
            else ""
        ),
    ]
    try:
        from threadpoolctl import threadpool_info

        pools = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} thread"
            f"{'s' if p.get('num_threads') != 1 else ''})"
            for p in threadpool_info()
        ]
        lines.append("BLAS/OpenMP pools loaded: " + ("; ".join(pools) or "none"))
    except Exception:  # threadpoolctl comes with scikit-learn; only informative
        pass
    versions = [
        f"{d} {version(d)}"
        for d in (
            "numpy",
            "scipy",
            "pandas",
            "scikit-learn",
            "cvxpy",
            "clarabel",
            "osqp",
            "proxsuite",
        )
    ]
    lines.append("runtime: " + ", ".join(versions))
    lines.append(
        "peers: "
        + ", ".join(
            f"{p.label} {version(p.distribution)}"
            + (f" [{peer_problem(p)}]" if peer_problem(p) else "")
            for p in PEERS
        )
    )
    lines.append(f"load average at start: {load()}")
    lines.append(
        f"runs: {cfg.repeat} per benchmark, {cfg.repeat_slow} for frontier-type ones; medians"
    )
    return lines


def table(rows: Sequence[Row]) -> list[str]:
    header = ("benchmark", "trimtab", "peer", "ratio", "goal", "result")
    body = [
        (
            f"{r.bench}: {r.label}",
            fmt_seconds(r.ours),
            fmt_seconds(r.peer),
            fmt_ratio(r),
            r.goal.text if r.goal else "-",
            r.result,
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header[:5]) + "  " + header[5]]
    lines.append("-" * (sum(widths) + 2 * 5 + 6))
    lines += [fmt.format(*b[:5]) + "  " + b[5] for b in body]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time trimtab against peer libraries on the same inputs (see benchmarks/README.md)."
    )
    parser.add_argument(
        "--quick", action="store_true", help="small problems: a sanity run under a minute"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only these: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--repeat", type=int, metavar="K", help="timed runs per side (default 5; frontier-type 3)"
    )
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    cfg = Config.make(quick=args.quick, repeat=args.repeat)
    header = environment(cfg)
    for line in header:
        progress(line)
    start = time.perf_counter()
    outcomes: dict[str, Outcome] = {}
    for name in [b for b in BENCHMARKS if not args.only or b in args.only]:
        title, fn = BENCHMARKS[name]
        progress(f"[{name}] {title}")
        t0 = time.perf_counter()
        try:
            outcomes[name] = fn(cfg)
        except Exception as exc:  # a broken benchmark is reported; the others still run
            traceback.print_exc()
            outcomes[name] = Outcome(
                rows=[
                    Row(
                        title.split()[0] + " " + name,
                        "harness error",
                        None,
                        None,
                        None,
                        f"ERROR: {type(exc).__name__}: {exc}",
                    )
                ]
            )
        progress(f"[{name}] done in {time.perf_counter() - t0:.1f} s")
    elapsed = time.perf_counter() - start

    rows = [r for o in outcomes.values() for r in o.rows]
    if cfg.quick:  # the goals are set for the full sizes
        for r in rows:
            if r.result.startswith(("PASS", "FAIL")):
                r.result = r.result[:4] + "*" + r.result[4:]
    print("\n".join(header))
    print()
    print("\n".join(table(rows)))
    print()
    print("ratio = trimtab median / peer median (in brackets: how many times faster trimtab is)")
    if cfg.quick:
        print("* --quick: small problems; the goals are set for the full sizes (indicative only)")
    for name, o in outcomes.items():
        if o.notes:
            print(f"\n[{name}]")
            for note in o.notes:
                print(f"  - {note}")
    print(f"\ntotal wall time {elapsed:.0f} s; load average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
