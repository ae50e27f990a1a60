"""Tactical overlay: declarative rules on market indicators tilt a policy portfolio.

Each rule is a condition over named indicators (``"pe / pe_average - 1 > 0.20"``)
and an equity tilt in weight (``-0.05``: five points less equity). The tilts
of the rules that fire add up, capped by the overlay's band; the equity change
is taken from (or given to) the equity assets in proportion to their policy
weights, and its opposite is spread over offset tags (say 70% fixed income,
30% cash), each within its tag in proportion to policy weights.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from optimizer.errors import InputError
from optimizer.universe import Universe

_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_CMP = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def parse_condition(text: str, names: Sequence[str]) -> ast.Expression:
    """Parse a rule condition, allowing numbers, indicator names, + - * /, comparisons, and/or/not.

    Raises
    ------
    InputError
        A syntax error, an unknown indicator name, or anything else (calls,
        attributes, subscripts ...).
    """
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InputError(f"rule condition {text!r} does not parse: {exc.msg}") from None
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.BinOp,
        ast.UnaryOp,
        ast.USub,
        ast.UAdd,
        ast.Not,
        ast.Compare,
        ast.Name,
        ast.Load,
        ast.Constant,
        *_BIN,
        *_CMP,
    )
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise InputError(
                f"rule condition {text!r} uses {type(node).__name__}, which is not allowed"
            )
        if isinstance(node, ast.Name) and node.id not in names:
            raise InputError(
                f"rule condition {text!r} names unknown indicator {node.id!r}; "
                f"known: {', '.join(sorted(names))}"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise InputError(f"rule condition {text!r} has a non-numeric constant")
    return tree


def _eval(node, env: Mapping[str, float]):
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return float(env[node.id])
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        return (
            -v
            if isinstance(node.op, ast.USub)
            else (+v if isinstance(node.op, ast.UAdd) else not v)
        )
    if isinstance(node, ast.BinOp):
        try:
            return _BIN[type(node.op)](_eval(node.left, env), _eval(node.right, env))
        except ZeroDivisionError:
            raise InputError("rule condition divides by zero") from None
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, env) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    left = _eval(node.left, env)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _eval(right_node, env)
        if not _CMP[type(op)](left, right):
            return False
        left = right
    return True


@dataclass(frozen=True)
class Rule:
    """``when`` (a condition over indicators) -> ``equity`` tilt (decimal weight)."""

    name: str
    when: str
    equity: float


@dataclass(frozen=True)
class Overlay:
    """The outcome of a tactical overlay.

    Attributes
    ----------
    target : pandas.Series
        Tilted weights (before re-optimization).
    fired : tuple of dict
        Each rule with ``name``, ``condition``, ``fired`` (bool) and ``equity`` (its tilt).
    equity_tilt : float
        Total equity tilt after the band cap (decimal weight).
    uncapped_tilt : float
        Sum of the tilts of the rules that fired.
    """

    target: pd.Series
    fired: tuple
    equity_tilt: float
    uncapped_tilt: float


def _spread(amount: float, members: list[str], policy: pd.Series) -> pd.Series:
    base = policy.reindex(members).fillna(0.0).clip(lower=0.0)
    share = base / base.sum() if base.sum() > 0 else pd.Series(1.0 / len(members), index=members)
    return amount * share


def overlay(
    policy: pd.Series,
    indicators: Mapping[str, float],
    rules: Sequence[Rule],
    *,
    universe: Universe,
    band: float,
    offset: Mapping[str, float],
    equity_tag: str = "equity",
) -> Overlay:
    """Apply the rules to the policy weights.

    Parameters
    ----------
    policy : pandas.Series
        Strategic weights by asset (sum 1); assets of the universe it does not
        name weigh 0. The tilted target is labelled by the universe's assets,
        in universe order.
    indicators : mapping
        Indicator values by name.
    rules : sequence of Rule
    universe : Universe
        Asset tags: ``equity_tag`` and the offset tags must exist.
    band : float
        Cap on the absolute total equity tilt (0.10: ten points).
    offset : mapping tag -> share
        Where the opposite of the equity tilt goes (shares sum to 1).
    """
    universe.check_assets(policy.index, what="tactical policy weights")
    policy = policy.astype(float).reindex(universe.assets).fillna(0.0)
    names = list(indicators)
    fired = []
    total = 0.0
    for rule in rules:
        hit = bool(_eval(parse_condition(rule.when, names), indicators))
        fired.append(
            {"name": rule.name, "condition": rule.when, "fired": hit, "equity": rule.equity}
        )
        if hit:
            total += float(rule.equity)
    capped = max(-band, min(band, total))
    shares = pd.Series(offset, dtype=float)
    if abs(shares.sum() - 1.0) > 1e-9:
        raise InputError(f"tactical offset shares sum to {shares.sum():.6g}, not 1")
    target = policy.copy()
    if capped != 0.0:
        equity = universe.members(equity_tag)
        target = target.add(_spread(capped, equity, policy), fill_value=0.0)
        for tag, share in shares.items():
            target = target.add(
                _spread(-capped * share, universe.members(str(tag)), policy), fill_value=0.0
            )
    if (target < -1e-12).any():
        bad = target.index[target < -1e-12]
        raise InputError(f"the tactical tilt makes weights negative for {', '.join(bad)}")
    target = target.reindex(policy.index).fillna(0.0)
    return Overlay(target.clip(lower=0.0), tuple(fired), capped, total)
