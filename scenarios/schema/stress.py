"""``[[stress]]`` and ``[validation]``: the shocks to apply and the figures to check against."""

from __future__ import annotations

from collections.abc import Mapping

from scenarios.loader import Table, frozen_mapping, join
from scenarios.schema.common import PCT, Names

_STRESS = ("name", "shocks")
_VALIDATION = ("return_target", "spending_rate", "inflation", "survival_floor", "esg_floor")


def read_stress(top: Table, names: Names) -> tuple[tuple[str, Mapping[str, float]], ...]:
    """The ``[[stress]]`` scenarios as (name, shocks), names distinct."""
    out = []
    seen: dict[str, str] = {}
    for g in top.tables("stress", _STRESS):
        name = g.string("name")
        if name in seen:
            raise g.error("name", f"duplicate stress name {name!r} (also {seen[name]})")
        seen[name] = g.where
        raw = g.raw("shocks")
        if not isinstance(raw, dict) or not raw:
            raise g.error("shocks", "expected a non-empty table of tag or asset id -> return")
        for k in raw:
            names.asset_or_tag(g.r, join(g.path("shocks"), k), k)
        shocks = g.numbers(
            "shocks", low=-1, strict_low=True, hint=" (returns are decimals: -0.35 is -35%)"
        )
        for asset in names.assets:
            if asset in shocks:
                continue
            hits = {k: v for k, v in shocks.items() if k in names.universe.tags.get(asset, ())}
            if len(hits) > 1:  # ambiguous even when equal: scenarios.stress rejects it too
                told = ", ".join(f"{k!r} ({v:g})" for k, v in hits.items())
                raise g.error(
                    "shocks",
                    f"asset {asset!r} carries two shocked tags, {told}: give {asset!r} its own "
                    "shock",
                )
        out.append((name, frozen_mapping(shocks)))
    return tuple(out)


def read_validation(top: Table) -> Mapping[str, float]:
    """The ``[validation]`` figures given (``return_target`` derived when it can be)."""
    t = top.table("validation", _VALIDATION)
    if t is None:
        return frozen_mapping({})
    out = {
        "return_target": t.number("return_target", None, low=-1, high=1, hint=PCT),
        "spending_rate": t.number("spending_rate", None, low=0, high=1, hint=PCT),
        "inflation": t.number("inflation", None, low=-1, high=1, hint=PCT),
        "survival_floor": t.number("survival_floor", None, low=0, high=1, strict_low=True),
        "esg_floor": t.number("esg_floor", None),
    }
    if out["return_target"] is None and None not in (out["spending_rate"], out["inflation"]):
        out["return_target"] = out["spending_rate"] + out["inflation"]
    return frozen_mapping({k: v for k, v in out.items() if v is not None})
