"""The benchmark harness: configuration, timing, rows and goals.

Every benchmark module (``benchmarks/bench_<name>.py``) describes its sides as :class:`Side`
objects, hands them to :func:`measure` and turns the medians into :class:`Row` objects with
:func:`make_row`. This module is the only place that times anything; the report and the
command line are in :mod:`benchmarks.cli`.

Timing. Each side is warmed up once, untimed. The timed work then runs interleaved across the
sides of a benchmark (a run of each in turn, or a chunk of calls of each in turn for per-call
sides), so that a burst of load on the shared machine hits every side alike. Rows report
medians. The BLAS thread variables are set to 1 by ``benchmarks/__init__.py`` before numpy is
imported.
"""

from __future__ import annotations

import gc
import importlib
import os
import statistics
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    """Problem sizes and run counts; ``--quick`` shrinks every problem.

    Attributes
    ----------
    quick : bool
        Small problems (a sanity run); the goals are set for the full sizes.
    repeat : int
        Timed runs of a cheap benchmark.
    repeat_slow : int
        Timed runs of a frontier-type (expensive) benchmark.
    """

    quick: bool
    repeat: int
    repeat_slow: int
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
    content_n: int = 500

    @classmethod
    def make(cls, *, quick: bool, repeat: int | None) -> Config:
        """The full configuration, or the ``--quick`` one; ``repeat`` overrides both counts."""
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
                content_n=100,
            )
        return cls(quick=False, repeat=repeat or 5, repeat_slow=repeat or 3)


def progress(text: str) -> None:
    """Progress goes to stderr; the report goes to stdout."""
    print(text, file=sys.stderr, flush=True)


#: How :func:`trimtab_api` starts its reason; rows that need the missing API say "pending".
API_MISSING = "trimtab API not available"


def trimtab_api(module: str, name: str) -> tuple[Any, str | None]:
    """``module.name`` from the working tree, or ``(None, why not)``.

    Rows written against an API that is still being built say "pending" with the reason
    rather than failing the whole benchmark.
    """
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        return None, f"{API_MISSING}: {module} ({type(exc).__name__}: {exc})"
    obj = getattr(mod, name, None)
    if obj is None:
        return None, f"{API_MISSING} yet: {module}.{name}"
    return obj, None


# --------------------------------------------------------------------------- timing


@dataclass
class Side:
    """One library's way of doing a benchmark's job.

    Two modes. By runs: ``call(*setup())`` is timed, once per run; ``setup`` (untimed, before
    each run) makes fresh inputs where a library keeps per-object state, and ``result`` is the
    last output. Per call: with ``items`` given, ``call(item)`` is timed once for each item;
    ``times`` then holds one entry per call and ``result`` the list of outputs. ``warmup`` runs
    once, untimed, before any timed work (imports, lazy initialization, a first compile).

    Parameters
    ----------
    label : str
        What the side does, as the notes show it.
    call : callable or None
        The timed function; None when the side cannot run (see ``missing``).
    setup : callable, optional
        Untimed, before each run: returns the arguments of ``call``.
    warmup : callable, optional
        Untimed, once, before the timed runs.
    missing : str, optional
        Why the side cannot run (a peer not installed, an API not there yet).
    runs : int, optional
        Overrides the benchmark's run count (by-run mode).
    items : sequence, optional
        Per-call mode: the arguments, one call each.
    """

    label: str
    call: Callable[..., Any] | None
    setup: Callable[[], tuple] | None = None
    warmup: Callable[[], Any] | None = None
    missing: str | None = None
    runs: int | None = None
    items: Sequence[Any] | None = None
    times: list[float] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    warned: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        """True when the side ran without error and has timings."""
        return self.missing is None and self.error is None and bool(self.times)

    @property
    def median(self) -> float | None:
        """Median of the timed runs (or calls), in seconds."""
        return statistics.median(self.times) if self.times else None

    def _fail(self, exc: BaseException, context: str = "") -> None:
        self.error = f"{context}{type(exc).__name__}: {exc}"
        if os.environ.get("TRIMTAB_BENCH_DEBUG"):
            traceback.print_exc()

    def _record(self, caught: Iterable[warnings.WarningMessage]) -> None:
        for w in caught:
            text = " ".join(str(w.message).split())
            self.warned[f"{w.category.__name__}: {text[:110]}"] += 1

    def do_warmup(self) -> None:
        """Run ``warmup`` once, untimed; a failure is recorded as the side's error."""
        if self.missing or self.warmup is None:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.warmup()
            except Exception as exc:  # a failing warm-up is reported, the run goes on
                self._fail(exc, "warm-up failed: ")

    def _timed(self, args: tuple) -> tuple[bool, Any, float]:
        start = time.perf_counter()
        try:
            out = self.call(*args)
        except Exception as exc:
            self._fail(exc)
            return False, None, 0.0
        return True, out, time.perf_counter() - start

    def run_once(self) -> None:
        """One timed run (by-run mode)."""
        if self.missing or self.error:
            return
        try:
            args = self.setup() if self.setup else ()
        except Exception as exc:
            self._fail(exc, "setup failed: ")
            return
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ok, out, elapsed = self._timed(args)
        self._record(caught)
        if ok:
            self.times.append(elapsed)
            self.result = out

    def run_items(self, batch: Sequence[Any]) -> None:
        """Time ``call(item)`` for each item of ``batch`` (per-call mode)."""
        if self.missing or self.error:
            return
        if self.result is None:
            self.result = []
        gc.collect()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for item in batch:
                ok, out, elapsed = self._timed((item,))
                if not ok:
                    break
                self.times.append(elapsed)
                self.result.append(out)
        self._record(caught)

    def work(self, runs: int, chunk: int) -> list[tuple[str, Callable[[], None]]]:
        """The side's timed work as units to interleave: (progress text, thunk) pairs."""
        if self.missing:
            return []
        if self.items is None:
            count = self.runs or runs
            return [(f"run {i + 1}/{count}", self.run_once) for i in range(count)]
        total = len(self.items)
        return [
            (
                f"calls {i + 1}-{min(i + chunk, total)}/{total}",
                lambda i=i: self.run_items(self.items[i : i + chunk]),
            )
            for i in range(0, total, chunk)
        ]


def measure(sides: Sequence[Side], runs: int, *, chunk: int = 100) -> None:
    """Warm every side up, then time them interleaved.

    Parameters
    ----------
    sides : sequence of Side
        The sides of one comparison, timed in this order within each round.
    runs : int
        Timed runs of a by-run side (unless the side sets ``runs``).
    chunk : int, default 100
        Calls per round of a per-call side.
    """
    for side in sides:
        side.do_warmup()
    plans = [side.work(runs, chunk) for side in sides]
    for i in range(max((len(p) for p in plans), default=0)):
        for side, plan in zip(sides, plans, strict=True):
            if i < len(plan) and not side.error:
                text, thunk = plan[i]
                progress(f"    {side.label[:60]}: {text}")
                thunk()


def combined(label: str, sides: Sequence[Side]) -> Side:
    """A side whose run ``i`` takes the sum of run ``i`` of each of ``sides`` (untimed itself).

    The parts must have been measured together (interleaved), so that the sums pair runs made
    under the same load.
    """
    out = Side(label, None)
    for side in sides:
        if not side.ok:
            out.missing = side.missing or f"{side.label}: {side.error or 'no timing'}"
            return out
    out.times = [sum(parts) for parts in zip(*(s.times for s in sides), strict=False)]
    return out


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Goal:
    """A speed goal.

    ``kind`` is "ratio" (ours / peer <= value), "speedup" (peer / ours >= value) or
    "absolute" (our median < value seconds).
    """

    kind: str
    value: float

    @property
    def text(self) -> str:
        """The goal as the table shows it."""
        if self.kind == "ratio":
            return f"ratio <= {self.value:g}"
        if self.kind == "speedup":
            return f">= {self.value:g}x faster"
        return f"< {fmt_seconds(self.value)}/call"

    def met(self, ours: float, peer: float | None) -> bool | None:
        """Whether the medians meet the goal; None when a peer figure is needed and missing."""
        if self.kind == "absolute":
            return ours < self.value
        if peer is None:
            return None
        if self.kind == "ratio":
            return ours / peer <= self.value
        return peer / ours >= self.value


@dataclass
class Row:
    """One line of the result table (medians in seconds)."""

    bench: str
    label: str
    ours: float | None
    peer: float | None
    goal: Goal | None
    result: str

    @property
    def ratio(self) -> float | None:
        """Our median over the peer's."""
        if self.ours is None or self.peer is None or self.peer <= 0:
            return None
        return self.ours / self.peer

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (seconds)."""
        return {
            "benchmark": self.bench,
            "label": self.label,
            "trimtab_s": self.ours,
            "peer_s": self.peer,
            "ratio": self.ratio,
            "goal": self.goal.text if self.goal else None,
            "result": self.result,
        }


@dataclass
class Outcome:
    """What a benchmark returns: its rows and its notes."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def make_row(
    bench: str,
    label: str,
    ours: Side,
    peer: Side | None,
    goal: Goal | None,
    accurate: bool | None = None,
) -> Row:
    """A table row; ``accurate`` (True, False or None) joins the speed verdict."""
    peer_median = peer.median if peer is not None and peer.ok else None
    if ours.missing:
        return Row(bench, label, None, peer_median, goal, f"pending ({ours.missing})")
    if not ours.ok:
        why = ours.error or "no timing"
        return Row(bench, label, None, peer_median, goal, f"ERROR (trimtab: {why})")
    if peer is not None and not peer.ok:
        why = peer.missing or f"peer error: {peer.error or 'no timing'}"
        if why.startswith(API_MISSING):  # a reference side built on trimtab's own new API
            return Row(bench, label, ours.median, None, goal, f"pending ({why})")
        if goal is not None and goal.kind == "absolute":
            verdict = "PASS" if goal.met(ours.median, None) else "FAIL"
            return Row(bench, label, ours.median, None, goal, f"{verdict} ({why})")
        return Row(bench, label, ours.median, None, goal, why)
    if goal is None:
        return Row(bench, label, ours.median, peer_median, None, "info")
    failed = []
    if goal.met(ours.median, peer_median) is False:
        failed.append("speed")
    if accurate is False:
        failed.append("accuracy")
    verdict = "PASS" if not failed else f"FAIL ({', '.join(failed)})"
    return Row(bench, label, ours.median, peer_median, goal, verdict)


def fmt_seconds(s: float | None) -> str:
    """Seconds in a readable unit."""
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e3:.3f} ms"
    if s < 1e-2:
        return f"{s * 1e3:.2f} ms"
    if s < 1.0:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_ratio(row: Row) -> str:
    """The ratio column: ours / peer, and in brackets how many times faster we are."""
    r = row.ratio
    if r is None:
        return "-"
    if row.goal is not None and row.goal.kind == "ratio":
        return f"{r:.2f}"
    return f"{r:.3g} ({1 / r:.1f}x)" if r < 1 else f"{r:.3g}"


def times_note(side: Side) -> str:
    """The raw timings of a by-run side."""
    if not side.times:
        return f"{side.label}: no timing"
    return f"{side.label}: runs " + ", ".join(fmt_seconds(t) for t in side.times)


def quantiles_note(side: Side, per: str = "call") -> str:
    """Quantiles of a per-call side's timings."""
    if not side.times:
        return f"{side.label}: no timing"
    q = statistics.quantiles(side.times, n=100, method="inclusive")
    return (
        f"{side.label} per {per}: p10 {fmt_seconds(q[9])}, median {fmt_seconds(side.median)}, "
        f"p90 {fmt_seconds(q[89])}, p99 {fmt_seconds(q[98])} over {len(side.times)} calls"
    )


def warning_notes(sides: Sequence[Side]) -> list[str]:
    """The three most frequent warnings each side raised while timed."""
    return [
        f"warning from {side.label} ({count}x): {text}"
        for side in sides
        for text, count in side.warned.most_common(3)
    ]


def error_notes(sides: Sequence[Side]) -> list[str]:
    """Why a side did not run or failed."""
    return [
        f"{side.label}: {side.missing or side.error}"
        for side in sides
        if side.missing or side.error
    ]
