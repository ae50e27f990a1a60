"""``[tactical]``: indicators, rules over them, the band and where the equity cut goes.

The rules' conditions are checked with :func:`scenarios.tactical.parse_condition`,
the grammar the overlay evaluates them with (there is one grammar; the loader's
:func:`check_expression` is the same function), then evaluated on the file's
indicators with :func:`scenarios.tactical.evaluate_rule`: a rule that divides
by zero or overflows on them is refused at load time, naming the file, the
rule and what was zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scenarios.loader import Table, frozen_mapping, identifier, join
from scenarios.schema.common import PCT, Names, check_sum
from scenarios.tactical import Rule, evaluate_rule, parse_condition

_TACTICAL = ("indicators", "band", "offset", "rules")
_RULE = ("name", "when", "equity")

#: A rule of ``[[tactical.rules]]``: the overlay's own :class:`scenarios.tactical.Rule`.
TacticalRule = Rule

#: Check a rule condition against the grammar (:func:`scenarios.tactical.parse_condition`).
check_expression = parse_condition


@dataclass(frozen=True)
class Tactical:
    """The ``[tactical]`` section, validated (applied by :func:`scenarios.tactical.overlay`).

    Attributes
    ----------
    indicators : mapping str -> float
        Indicator values by name (each a Python identifier).
    band : float
        Cap on the absolute total equity tilt (decimal).
    offset : mapping str -> float
        Tag -> share of the equity cut it receives (shares sum to 1).
    rules : tuple of TacticalRule
        The rules in file order, with distinct names; every ``when`` passes
        :func:`scenarios.tactical.parse_condition` over the indicator names and
        evaluates on the indicators (:func:`scenarios.tactical.evaluate_rule`).
    """

    indicators: Mapping[str, float]
    band: float
    offset: Mapping[str, float]
    rules: tuple[TacticalRule, ...]


def read_tactical(top: Table, names: Names) -> Tactical | None:
    """The ``[tactical]`` section, or None when the file has none."""
    t = top.table("tactical", _TACTICAL)
    if t is None:
        return None
    if "equity" not in names.tags:
        raise t.error(
            None, "the overlay tilts the assets tagged 'equity', but no asset has that tag"
        )
    ind_raw = t.raw("indicators")
    if not isinstance(ind_raw, dict) or not ind_raw:
        raise t.error("indicators", "expected a non-empty table of indicator name -> number")
    for k in ind_raw:
        identifier(t.r, join(t.path("indicators"), k), k)
    indicators = t.numbers("indicators")
    band = t.number("band", low=0, high=1, hint=PCT)
    off_raw = t.raw("offset")
    if not isinstance(off_raw, dict) or not off_raw:
        raise t.error("offset", "expected a non-empty table of tag -> share of the equity cut")
    for k in off_raw:
        w = join(t.path("offset"), k)
        names.tag(t.r, w, k)
        if k == "equity":
            raise t.r.error(w, "the equity cut cannot go to equity")
    offset = t.numbers("offset", low=0, high=1)
    check_sum(t, "offset", sum(offset.values()), "offset shares")
    rules = []
    seen: dict[str, str] = {}
    tables = t.tables("rules", _RULE)
    if not tables:
        raise t.error("rules", "missing: add at least one [[tactical.rules]]")
    for g in tables:
        name = g.string("name")
        if name in seen:
            raise g.error("name", f"duplicate rule name {name!r} (also {seen[name]})")
        seen[name] = g.where
        when = g.string("when")
        with g.r.wrap(g.path("when")):
            parse_condition(when, list(indicators))
        equity = g.number("equity", low=-1, high=1, hint=PCT)
        rule = TacticalRule(name=name, when=when, equity=equity)
        # the indicators are the file's own numbers: a rule that cannot be evaluated on
        # them (a zero divisor, an overflow) fails every run, so it is refused here
        with g.r.wrap(g.path("when")):
            evaluate_rule(rule, indicators)
        rules.append(rule)
    return Tactical(
        indicators=frozen_mapping(indicators),
        band=band,
        offset=frozen_mapping(offset),
        rules=tuple(rules),
    )
