"""``[backtest]`` and ``[montecarlo]``: the walk over history and the simulation of the future."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scenarios.backtest import (
    BuyAndHold,
    Calendar,
    DrawdownRule,
    Hybrid,
    Optimized,
    Policy,
    SpendingRule,
    TakeProfitRule,
    Threshold,
)
from scenarios.loader import Table, frozen_mapping, type_name
from scenarios.schema.common import PCT, Names, by_asset, check_sum, whole_number
from scenarios.schema.estimates import EstimatesSpec
from scenarios.schema.portfolio import Portfolio

_BACKTEST = (
    "policies",
    "initial_value",
    "start",
    "end",
    "spending_rate",
    "spending_window",
    "drawdown",
    "take_profit",
    "target",
)
#: Keys of a backtest policy table, and the ones each kind takes (besides kind and name).
_BT_POLICY = ("kind", "name", "every", "band", "relative", "tracking_weight")
POLICY_KINDS: dict[str, tuple[str, ...]] = {
    "calendar": ("every",),
    "threshold": ("band", "relative"),
    "hybrid": ("every", "band"),
    "buy_and_hold": (),
    "optimized": ("every", "tracking_weight"),
}
_BT_DRAWDOWN = ("threshold", "recover", "defensive")
_BT_TAKE_PROFIT = ("threshold", "safer", "reset")
BACKTEST_TARGETS = ("model", "policy")
_MONTECARLO = (
    "years",
    "paths",
    "seed",
    "distribution",
    "dof",
    "spending_rule",
    "spending_rate",
    "smoothing",
    "smoothing_window",
    "inflation",
    "drawdown",
)
MC_DISTRIBUTIONS = ("normal", "student_t", "bootstrap")
MC_SPENDING_RULES = ("yale", "trailing")
#: Largest Monte Carlo size, paths x (years + 1 + assets): the simulation holds
#: arrays of paths x (years + 1) and draws paths x assets per year (400 MB of floats).
MC_MAX_CELLS = 50_000_000


@dataclass(frozen=True, eq=False)
class BacktestSpec:
    """The ``[backtest]`` section, validated: arguments for :func:`scenarios.backtest.backtest`.

    ``policies``: policy objects (``Calendar``, ``Threshold``, ``Hybrid``,
    ``BuyAndHold``, ``Optimized``) in file order, with distinct names.
    ``initial_value``: currency invested at the first date. ``start`` /
    ``end``: the window of ``estimates.returns`` walked over (None: all of
    it). ``spending``: a :class:`~scenarios.backtest.SpendingRule` or None.
    ``drawdown``: a :class:`~scenarios.backtest.DrawdownRule` (defensive
    weights by asset, every asset) or None. ``take_profit``: a
    :class:`~scenarios.backtest.TakeProfitRule` (safer weights by asset, every
    asset, or None: back to the target) or None. ``target``: "model" (the
    run's target weights, held fixed) or "policy" (the ``[policy]`` weights).
    """

    policies: tuple[Policy, ...]
    initial_value: float
    start: dt.date | None = None
    end: dt.date | None = None
    spending: SpendingRule | None = None
    drawdown: DrawdownRule | None = None
    target: str = "model"
    take_profit: TakeProfitRule | None = None


@dataclass(frozen=True)
class MonteCarloSpec:
    """The ``[montecarlo]`` section, validated: keywords of :func:`scenarios.montecarlo.simulate`.

    ``spending_rate`` and ``inflation`` default to ``[validation]``'s when
    given there (else 0.04 and 0.025). ``dof`` applies to ``student_t``,
    ``smoothing`` to the ``yale`` rule, ``smoothing_window`` (years) to
    ``trailing``.
    """

    years: int = 30
    paths: int = 10_000
    seed: int | None = None
    distribution: str = "normal"
    dof: float = 5.0
    spending_rule: str = "yale"
    spending_rate: float = 0.04
    smoothing: float = 0.7
    smoothing_window: int = 3
    inflation: float = 0.025
    drawdown: float = 0.25

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`scenarios.montecarlo.simulate` (not weights, mu, cov)."""
        return {
            "years": self.years,
            "paths": self.paths,
            "seed": self.seed,
            "distribution": self.distribution,
            "dof": self.dof,
            "spending_rule": self.spending_rule,
            "spending_rate": self.spending_rate,
            "smoothing": self.smoothing,
            "smoothing_window": self.smoothing_window,
            "inflation": self.inflation,
            "drawdown": self.drawdown,
        }


_NEEDS_HISTORY = 'needs [estimates] source = "prices" or "returns"'


def _bt_policy(g: Table, names: Names) -> Policy:
    """One backtest policy table as a :mod:`scenarios.backtest` policy object."""
    kind = g.string("kind", choices=tuple(POLICY_KINDS))
    g.not_with(
        [k for k in _BT_POLICY if k not in ("kind", "name", *POLICY_KINDS[kind])],
        f"with kind = {kind!r}",
    )
    name = g.string("name", None)
    if kind == "buy_and_hold":
        return BuyAndHold() if name is None else BuyAndHold(name=name)
    if kind == "threshold":
        if isinstance(g.raw("band", None), dict):
            per = by_asset(g, "band", names, every=True, low=0, high=1, hint=PCT)
            band: Any = frozen_mapping({a: float(v) for a, v in per.items()})
        else:
            band = g.number("band", 0.05, low=0, high=1, strict_low=True, hint=PCT)
        relative = g.boolean("relative", False)
        if name is None:
            name = "threshold " + ("by asset" if isinstance(band, Mapping) else f"{band:g}")
            name += " relative" if relative else ""
        with g.r.wrap(g.where):
            return Threshold(band=band, relative=relative, name=name)
    every = whole_number(g, "every", 3 if kind == "hybrid" else 1, low=1)
    with g.r.wrap(g.where):
        if kind == "calendar":
            return Calendar(every=every, name=name)
        if kind == "hybrid":
            band = g.number("band", 0.05, low=0, high=1, strict_low=True, hint=PCT)
            return Hybrid(every=every, band=band, name=name)
        tw = g.number("tracking_weight", 100.0, low=0, strict_low=True)
        return Optimized(every=every, tracking_weight=tw, name=name)


def read_backtest(
    top: Table,
    names: Names,
    est: EstimatesSpec,
    policy: pd.Series | None,
    portfolio: Portfolio,
) -> BacktestSpec | None:
    """The ``[backtest]`` section, or None; it needs a returns history."""
    t = top.table("backtest", _BACKTEST)
    if t is None:
        return None
    if est.source == "cma":
        raise t.error(
            None,
            'a backtest needs [estimates] source = "prices" or "returns" (a history of '
            'returns to walk over), not "cma"',
        )
    raw = t.raw("policies")
    if not isinstance(raw, list) or not raw:
        raise t.error(
            "policies",
            'expected a non-empty array of policy tables, e.g. [{ kind = "calendar", '
            'every = 3 }, { kind = "buy_and_hold" }]',
        )
    policies: list[Policy] = []
    seen: dict[str, str] = {}
    for g in t.tables("policies", _BT_POLICY):
        pol = _bt_policy(g, names)
        if pol.name in seen:
            raise g.error(
                "name" if "name" in g else None,
                f"duplicate policy name {pol.name!r} (also {seen[pol.name]}): give a distinct name",
            )
        seen[pol.name] = g.where
        policies.append(pol)
    initial = t.number("initial_value", portfolio.value, low=0, strict_low=True)
    start, end = t.date("start", None), t.date("end", None)
    if start is not None and end is not None and start > end:
        raise t.error("end", f"{end} is before start {start}")
    idx = est.returns.index
    inside = np.ones(len(idx), dtype=bool)
    if start is not None:
        inside &= idx >= pd.Timestamp(start)
    if end is not None:
        inside &= idx <= pd.Timestamp(end)
    rows = int(inside.sum())
    if rows < 2:
        raise t.error(
            "start" if start is not None else "end",
            f"leaves {rows} return(s) of {idx[0].date()}..{idx[-1].date()}; need at least 2",
        )
    spending = None
    if "spending_rate" in t:
        rate = t.number("spending_rate", low=0, high=1, strict_high=True, hint=PCT)
        window = whole_number(t, "spending_window", 12, low=1)
        spending = SpendingRule(rate=rate, window=window)
    elif "spending_window" in t:
        raise t.error("spending_window", "needs backtest.spending_rate")
    drawdown = None
    d = t.table("drawdown", _BT_DRAWDOWN)
    if d is not None:
        threshold = d.number("threshold", low=0, high=1, strict_low=True, strict_high=True)
        recover = d.number("recover", 0.05, low=0, high=1)
        if recover >= threshold:
            raise d.error("recover", f"{recover:g} must be below threshold {threshold:g}")
        defensive = by_asset(d, "defensive", names, every=False, low=0, high=1, hint=PCT)
        check_sum(d, "defensive", float(defensive.sum()), "defensive weights")
        drawdown = DrawdownRule(
            threshold=threshold,
            defensive=defensive.reindex(names.assets, fill_value=0.0).rename("defensive"),
            recover=recover,
        )
    take_profit = _take_profit(t, names)
    target = t.string("target", "model", choices=BACKTEST_TARGETS)
    if target == "policy" and policy is None:
        raise t.error("target", "'policy' needs a [policy] table (or use target = 'model')")
    return BacktestSpec(
        policies=tuple(policies),
        initial_value=initial,
        start=start,
        end=end,
        spending=spending,
        drawdown=drawdown,
        target=target,
        take_profit=take_profit,
    )


def _take_profit(t: Table, names: Names) -> TakeProfitRule | None:
    """``backtest.take_profit``: threshold (a gain, > 0), safer? (weights), reset? [0.05]."""
    d = t.table("take_profit", _BT_TAKE_PROFIT)
    if d is None:
        return None
    threshold = d.number("threshold", low=0, strict_low=True, hint=PCT)
    safer = None
    if "safer" in d:
        weights = by_asset(d, "safer", names, every=False, low=0, high=1, hint=PCT)
        check_sum(d, "safer", float(weights.sum()), "safer weights")
        safer = weights.reindex(names.assets, fill_value=0.0).rename("safer")
    else:
        d.not_with(("reset",), "without take_profit.safer (the rule then rebalances to target)")
    reset = d.number("reset", 0.05, low=0, hint=PCT)
    if reset >= threshold:
        raise d.error("reset", f"{reset:g} must be below threshold {threshold:g}")
    return TakeProfitRule(threshold=threshold, safer=safer, reset=reset)


def read_montecarlo(
    top: Table, est: EstimatesSpec, validation: Mapping[str, float], n_assets: int = 0
) -> MonteCarloSpec | None:
    """The ``[montecarlo]`` section, or None; defaults from ``[validation]``.

    ``paths x (years + 1 + n_assets)`` is limited to :data:`MC_MAX_CELLS` (the
    simulation holds arrays of that many numbers).
    """
    t = top.table("montecarlo", _MONTECARLO)
    if t is None:
        return None
    distribution = t.string("distribution", "normal", choices=MC_DISTRIBUTIONS)
    if distribution != "student_t":
        t.not_with(("dof",), f"with distribution = {distribution!r} (only with 'student_t')")
    if distribution == "bootstrap" and est.source == "cma":
        raise t.error(
            "distribution",
            f"'bootstrap' resamples years of history: it {_NEEDS_HISTORY}",
        )
    rule = t.string("spending_rule", "yale", choices=MC_SPENDING_RULES)
    if rule == "yale":
        t.not_with(("smoothing_window",), "with spending_rule = 'yale' (only with 'trailing')")
    else:
        t.not_with(("smoothing",), "with spending_rule = 'trailing' (only with 'yale')")
    seed = t.raw("seed", None)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise t.error("seed", f"expected a non-negative integer, got {type_name(seed)} {seed!r}")
    years = whole_number(t, "years", 30, low=1)
    paths = whole_number(t, "paths", 10_000, low=1)
    size = paths * (years + 1 + n_assets)
    if size > MC_MAX_CELLS:
        raise t.error(
            "paths" if "paths" in t else "years",
            f"{paths:,} paths x ({years} years + 1 + {n_assets} assets) = {size:,.0f} numbers; "
            f"the limit is {MC_MAX_CELLS:,} (paths x (years + 1 + assets)): use fewer paths",
        )
    return MonteCarloSpec(
        years=years,
        paths=paths,
        seed=seed,
        distribution=distribution,
        dof=t.number("dof", 5.0, low=2, strict_low=True),
        spending_rule=rule,
        spending_rate=t.number(
            "spending_rate", validation.get("spending_rate", 0.04), low=0, high=1, hint=PCT
        ),
        smoothing=t.number("smoothing", 0.7, low=0, high=1),
        smoothing_window=whole_number(t, "smoothing_window", 3, low=1),
        inflation=t.number(
            "inflation",
            validation.get("inflation", 0.025),
            low=-1,
            strict_low=True,
            high=1,
            hint=PCT,
        ),
        drawdown=t.number("drawdown", 0.25, low=0, high=1, strict_low=True, hint=PCT),
    )
