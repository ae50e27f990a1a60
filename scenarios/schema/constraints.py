"""``[constraints]``: the policy constraints, as :mod:`optimizer.constraints` objects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from optimizer import constraints as C
from scenarios.loader import Table, closest, join, type_name
from scenarios.schema.common import PCT, SHORTS, Names, by_asset
from scenarios.schema.portfolio import Holdings

#: Names the engine gives constraints it adds itself: a file may not use them.
RESERVED_NAMES = ("budget", "target return", "target volatility")

_CONSTRAINTS = (
    "long_only",
    "bounds",
    "group",
    "band",
    "exposure",
    "tracking_error",
    "turnover",
    "leverage",
    "linear",
)
#: Keys of ``constraints.bounds`` besides asset ids.
_BOUNDS = ("min", "max", "priority")

#: What a constraint's ``priority`` means, for messages.
PRIORITY_HINT = (
    " (a soft constraint's level: 1 is the most important, higher numbers are given up first; "
    "leave priority out for a hard constraint)"
)


def read_priority(t: Table) -> int | None:
    """A constraint table's ``priority``: None (absent: hard) or an integer >= 1 (soft).

    Parameters
    ----------
    t : Table
        The constraint's table.

    Returns
    -------
    int or None

    Raises
    ------
    InputError
        Naming the file and ``<table>.priority``: a value that is not a TOML
        integer (a float, a string, a boolean), or below 1.
    """
    return t.integer("priority", None, low=1, hint=PRIORITY_HINT)


def constraints_table(top: Table) -> tuple[Table | None, bool]:
    """The ``[constraints]`` table (None when absent) and its ``long_only`` flag (default true).

    The flag is read first: the policy and the holdings check their signs against it.
    """
    t = top.table("constraints", _CONSTRAINTS)
    return t, (t.boolean("long_only", True) if t is not None else True)


def _weight(t: Table, key: str, default: Any, long_only: bool | None) -> Any:
    """A number; with ``long_only`` (True) a weight in [0, 1], None: any number."""
    value = t.number(key, default)
    if key not in t or not long_only:
        return value
    if value < 0:
        raise t.error(key, f"negative weight {value:g}{SHORTS}")
    if value > 1:
        raise t.error(key, f"must be <= 1, got {value:g}{PCT}")
    return value


def read_constraints(
    t: Table | None,
    long_only: bool,
    names: Names,
    policy: pd.Series | None,
    holdings: Holdings | None,
) -> tuple:
    """The constraint objects of ``[constraints]``, in file order, with distinct names.

    Long-only (or, without it, an unbounded lower bound) first, then bounds,
    then the ``[[constraints.*]]`` tables kind by kind; each table's
    ``priority`` is passed to its constructor.
    """
    out: list[tuple[str, Any]] = []
    if long_only:
        out.append(("constraints.long_only", C.LongOnly()))
    bounds = _bounds(t, long_only, names) if t is not None else None
    if bounds is not None:
        out.append(("constraints.bounds", bounds))
    elif not long_only:
        out.append(("constraints.long_only", C.Bounds(lower=-np.inf, name="shorts allowed")))
    if t is None:
        return tuple(c for _, c in out)

    def build(g: Table, cls: type, **kwargs: Any) -> None:
        """Construct ``cls`` from table ``g`` with its priority; library errors get ``g``'s path."""
        priority = read_priority(g)
        with t.r.wrap(g.where):
            out.append((g.where, cls(**kwargs, priority=priority)))

    def reference(g: Table, key: str, what: str) -> pd.Series:
        """The reference weights of a band or tracking-error limit: the policy."""
        g.string(key, "policy", choices=("policy",))
        if policy is None:
            raise g.error(key if key in g else None, f"{what} 'policy' needs a [policy] table")
        return policy

    for g in t.tables("group", ("name", "tag", "assets", "min", "max", "priority")):
        name = g.string("name")
        if ("tag" in g) == ("assets" in g):
            raise g.error(None, "give exactly one of tag or assets")
        tag = names.tag(g.r, g.path("tag"), g.string("tag")) if "tag" in g else None
        assets = None
        if "assets" in g:
            assets = g.strings("assets")
            if not assets:
                raise g.error("assets", "is empty: name at least one asset")
            for i, a in enumerate(assets):
                names.asset(g.r, f"{g.path('assets')}[{i}]", a)
        lo, hi = _min_max(g, "min", "max", long_only)
        build(g, C.GroupLimit, tag=tag, assets=assets, min=lo, max=hi, name=name)

    for g in t.tables("band", ("name", "tag", "width", "reference", "priority")):
        ref = reference(g, "reference", "reference")
        tag = names.tag(g.r, g.path("tag"), g.string("tag")) if "tag" in g else None
        raw = g.raw("width")
        if isinstance(raw, dict):
            if tag is not None:
                raise g.error("width", "a band on a tag takes one number")
            width: Any = by_asset(g, "width", names, every=False, low=0, high=1, hint=PCT)
        else:
            width = g.number("width", low=0, high=1, hint=PCT)
        build(
            g,
            C.DeviationBand,
            reference=ref,
            width=width,
            tag=tag,
            name=g.string("name", None),
        )

    for g in t.tables("exposure", ("name", "scores", "min", "max", "priority")):
        name = g.string("name")
        scores = by_asset(g, "scores", names, every=True)
        lo, hi = _min_max(g, "min", "max", None)
        build(g, C.ExposureLimit, scores=scores, min=lo, max=hi, name=name)

    for g in t.tables("tracking_error", ("name", "max", "benchmark", "priority")):
        ref = reference(g, "benchmark", "benchmark")
        te = g.number("max", low=0, high=1, strict_low=True, hint=PCT)
        build(g, C.TrackingErrorLimit, benchmark=ref, max=te, name=g.string("name", None))

    for g in t.tables("turnover", ("name", "max", "priority")):
        if holdings is None:
            raise g.error(None, "a turnover limit needs [holdings] (turnover is against them)")
        cap = g.number("max", low=0, high=2, hint=" (two-way turnover, decimal: 0.2 is 20%)")
        build(g, C.TurnoverLimit, current=holdings.weights, max=cap, name=g.string("name", None))

    for g in t.tables("leverage", ("name", "max", "priority")):
        cap = g.number("max", low=0, strict_low=True, hint=" (gross exposure: 1.0 is unlevered)")
        build(g, C.LeverageLimit, max=cap, name=g.string("name", None))

    for g in t.tables("linear", ("name", "coefficients", "lower", "upper", "priority")):
        name = g.string("name")
        coef = by_asset(g, "coefficients", names, every=False)
        lo, hi = _min_max(g, "lower", "upper", None)
        build(g, C.LinearConstraint, coefficients=coef, lower=lo, upper=hi, name=name)

    seen: dict[str, str] = {}
    for where, c in out:
        if c.name in RESERVED_NAMES:
            raise t.r.error(where, f"the name {c.name!r} is reserved for the engine: rename it")
        if c.name in seen:
            raise t.r.error(
                where,
                f"the name {c.name!r} is already used by {seen[c.name]}: give a distinct name",
            )
        seen[c.name] = where
    return tuple(c for _, c in out)


def _min_max(g: Table, lo_key: str, hi_key: str, long_only: bool | None) -> tuple[Any, Any]:
    """A lower and an upper limit, at least one given, lower not above upper."""
    lo = _weight(g, lo_key, None, long_only)
    hi = _weight(g, hi_key, None, long_only)
    if lo is None and hi is None:
        raise g.error(None, f"needs {lo_key}, {hi_key} or both")
    if lo is not None and hi is not None and lo > hi:
        raise g.error(lo_key, f"{lo:g} is above {hi_key} {hi:g}")
    return lo, hi


def _bounds(t: Table, long_only: bool, names: Names) -> C.Bounds | None:
    """``constraints.bounds``: one min/max for all, per asset, or both; None when absent."""
    raw = t.raw("bounds", None)
    if raw is None:
        return None
    where = t.path("bounds")
    if not isinstance(raw, dict):
        raise t.error("bounds", f"expected a table (min, max, or per asset), got {type_name(raw)}")
    scalar = {k: v for k, v in raw.items() if k in _BOUNDS}
    per_asset = {k: v for k, v in raw.items() if k not in _BOUNDS}
    b = Table(t.r, scalar, where, _BOUNDS)
    lo_all, hi_all = _weight(b, "min", None, long_only), _weight(b, "max", None, long_only)
    priority = read_priority(b)
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    for asset, spec in per_asset.items():
        wa = join(where, asset)
        if not isinstance(spec, dict):
            raise t.r.error(
                wa,
                f"expected min, max or an asset id with a table {{ min = .., max = .. }}; "
                f"got {asset!r} = {type_name(spec)}"
                + (closest(asset, _BOUNDS) if asset not in names.asset_set else ""),
            )
        names.asset(t.r, wa, asset)
        a = Table(t.r, spec, wa, ("min", "max"))
        lo, hi = _weight(a, "min", lo_all, long_only), _weight(a, "max", hi_all, long_only)
        if lo is None and hi is None:
            raise a.error(None, "needs min, max or both")
        if lo is not None:
            lows[asset] = lo
        if hi is not None:
            highs[asset] = hi
    lower: Any = lo_all
    upper: Any = hi_all
    if per_asset:
        lower = {a: lows.get(a, lo_all) for a in names.assets if lows.get(a, lo_all) is not None}
        upper = {a: highs.get(a, hi_all) for a in names.assets if highs.get(a, hi_all) is not None}
        lower, upper = lower or None, upper or None
    if lower is None and upper is None:
        raise t.error("bounds", "needs min, max, or a table per asset")
    for a in names.assets:
        lo = lower.get(a) if isinstance(lower, dict) else lower
        hi = upper.get(a) if isinstance(upper, dict) else upper
        if lo is not None and hi is not None and lo > hi:
            w = join(where, a) if a in per_asset else where
            raise t.r.error(w, f"min {lo:g} is above max {hi:g} for {a}")
    if not long_only:  # no lower bound means no lower bound, not the long-only default
        if lower is None:
            lower = -np.inf
        elif isinstance(lower, dict):
            lower = {a: lower.get(a, -np.inf) for a in names.assets}
    with t.r.wrap(where):
        return C.Bounds(lower=lower, upper=upper, name="bounds", priority=priority)
