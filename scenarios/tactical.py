"""Tactical overlay: declarative rules on market indicators tilt a policy portfolio.

Each rule is a condition over named indicators (``"pe / pe_average - 1 > 0.20"``)
and an equity tilt in weight (``-0.05``: five points less equity). The tilts
of the rules that fire add up, capped by the overlay's band; the equity change
is taken from (or given to) the equity assets in proportion to their policy
weights, and its opposite is spread over offset tags (say 70% fixed income,
30% cash), each within its tag in proportion to policy weights.

The grammar of a condition lives here and only here: :func:`parse_condition`
checks a condition and returns a :class:`Condition` that evaluates it. The
scenario loader checks a file's rules with it, the overlay evaluates them with
it.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from optimizer.errors import InputError
from optimizer.universe import Universe
from scenarios.loader import closest

# ----------------------------------------------------------------------------- the rule grammar
#
# A condition is comparisons joined by and/or/not; a comparison compares arithmetic on numbers
# and indicator names. These tables are the grammar: parsing admits exactly the operators they
# name, and the evaluator they build applies them. The loader (scenarios.schema) checks a
# scenario's rules with parse_condition, the overlay evaluates them with it: one grammar.

#: Arithmetic operators.
ARITHMETIC: Mapping[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
#: Signs in front of a number, a name or a parenthesised expression.
SIGNS: Mapping[type[ast.unaryop], Callable[[float], float]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
#: Comparison operators (chains such as ``10 < vix <= 40`` hold when every link holds).
COMPARISONS: Mapping[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
#: Logical connectives between conditions.
CONNECTIVES: Mapping[type[ast.boolop], Callable[..., bool]] = {ast.And: all, ast.Or: any}

#: What a condition may use, for messages.
ALLOWED = "indicator names, numbers, + - * /, comparisons, and/or/not"

#: An evaluator: indicator values by name -> a number (arithmetic) or a truth value (condition).
_Eval = Callable[[Mapping[str, float]], float]


@dataclass(frozen=True)
class Condition:
    """A rule condition, checked against the grammar; call it with indicator values.

    Made by :func:`parse_condition`. Pickles as its text and names (it is parsed again).

    Attributes
    ----------
    text : str
        The condition as written, e.g. ``"pe / pe_average - 1 > 0.20 and vix > 25"``.
    names : tuple of str
        The indicator names it may use.
    """

    text: str
    names: tuple[str, ...]
    _test: _Eval = field(repr=False, compare=False)

    def __call__(self, indicators: Mapping[str, float]) -> bool:
        """Whether the condition holds for these indicator values.

        Raises
        ------
        InputError
            A division by zero.
        """
        return bool(self._test(indicators))

    def __reduce__(self) -> tuple[Callable[..., Condition], tuple[str, tuple[str, ...]]]:
        return parse_condition, (self.text, self.names)


def parse_condition(text: str, names: Sequence[str]) -> Condition:
    """Parse a rule condition and check that it uses only the grammar.

    The grammar: a comparison (``<  <=  >  >=  ==  !=``, chains allowed), or
    comparisons joined by ``and``, ``or`` and ``not``, over arithmetic
    (``+ - * /``, signs, parentheses) on numbers and indicator names.

    Parameters
    ----------
    text : str
        E.g. ``"pe / pe_average - 1 > 0.20 and vix > 25"``.
    names : sequence of str
        The indicator names the condition may use.

    Returns
    -------
    Condition
        Call it with the indicator values: ``parse_condition("vix > 25", ["vix"])({"vix": 28})``.

    Raises
    ------
    InputError
        ``"rule condition '<text>' ..."``: a syntax error (with its column), a
        name that is not an indicator (with the closest one), a constant that
        is not a number, an expression that is not a condition, or a construct
        outside the grammar (named by its Python AST class: ``uses Call``,
        ``uses Attribute``, ``uses Pow`` ...).
    """
    known = tuple(names)
    return Condition(text, known, _Grammar(text, known).parse())


class _Grammar:
    """The checker and evaluator builder of one condition: each rule both checks and builds."""

    def __init__(self, text: str, names: tuple[str, ...]) -> None:
        self.text = text
        self.names = names
        self.known = set(names)

    def error(self, message: str) -> InputError:
        """``"rule condition '<text>' <message>"`` (no space before a leading ':')."""
        sep = "" if message.startswith(":") else " "
        return InputError(f"rule condition {self.text!r}{sep}{message}")

    def parse(self) -> _Eval:
        try:
            tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as exc:
            raise InputError(
                f"cannot parse rule condition {self.text!r}: it does not parse as a Python "
                f"expression ({exc.msg}, column {exc.offset})"
            ) from None
        except ValueError as exc:  # e.g. a null character
            raise InputError(
                f"cannot parse rule condition {self.text!r}: it does not parse ({exc})"
            ) from None
        return self.condition(tree.body)

    def not_allowed(self, what: str, why: str) -> InputError:
        """A construct outside the grammar, named by its AST class."""
        return self.error(f"uses {what}: {why}; allowed: {ALLOWED}")

    def condition(self, node: ast.expr) -> _Eval:
        """Comparisons joined by and/or/not."""
        if isinstance(node, ast.BoolOp) and type(node.op) in CONNECTIVES:
            join = CONNECTIVES[type(node.op)]
            parts = [self.condition(value) for value in node.values]
            return lambda env: join([part(env) for part in parts])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.condition(node.operand)
            return lambda env: not inner(env)
        if isinstance(node, ast.Compare):
            return self.comparison(node)
        self.arithmetic(node)  # a construct outside the grammar is named first
        raise self.error(
            f": {ast.unparse(node)!r} is not a condition: compare it (e.g. 'vix > 25'), and "
            "join comparisons with and/or/not"
        )

    def comparison(self, node: ast.Compare) -> _Eval:
        for op in node.ops:
            if type(op) not in COMPARISONS:
                raise self.error(
                    f"uses {type(op).__name__}: only < <= > >= == != compare ({ast.unparse(node)})"
                )
        ops = [COMPARISONS[type(op)] for op in node.ops]
        terms = [self.arithmetic(node.left), *(self.arithmetic(c) for c in node.comparators)]

        def test(env: Mapping[str, float]) -> bool:
            left = terms[0](env)
            for op, term in zip(ops, terms[1:], strict=True):
                right = term(env)
                if not op(left, right):
                    return False
                left = right
            return True

        return test

    def arithmetic(self, node: ast.expr) -> _Eval:
        """Numbers and indicator names under + - * / and signs."""
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.error(
                    f"has a non-numeric constant: {ast.unparse(node)} is not a number; "
                    f"allowed: {ALLOWED}"
                )
            number = float(value)
            return lambda env: number
        if isinstance(node, ast.Name):
            name = node.id
            if name not in self.known:
                raise self.error(
                    f"names unknown indicator {name!r}{closest(name, self.known)}; known: "
                    + ", ".join(sorted(self.known))
                )
            return lambda env: float(env[name])
        if isinstance(node, ast.BinOp):
            fn = ARITHMETIC.get(type(node.op))
            if fn is None:
                raise self.not_allowed(
                    type(node.op).__name__, f"{ast.unparse(node)!r} is not allowed"
                )
            left, right = self.arithmetic(node.left), self.arithmetic(node.right)
            return lambda env: self.apply(fn, left(env), right(env))
        if isinstance(node, ast.UnaryOp):
            sign = SIGNS.get(type(node.op))
            if sign is None:
                raise self.not_allowed(
                    type(node.op).__name__, f"{ast.unparse(node)!r} is not allowed"
                )
            inner = self.arithmetic(node.operand)
            return lambda env: sign(inner(env))
        if isinstance(node, ast.Call):
            why = f"function calls are not allowed ({ast.unparse(node)})"
        elif isinstance(node, ast.Attribute):
            why = f"attributes are not allowed ({ast.unparse(node)})"
        else:
            why = f"{ast.unparse(node)!r} is not allowed"
        raise self.not_allowed(type(node).__name__, why)

    def apply(self, fn: Callable[[float, float], float], a: float, b: float) -> float:
        try:
            return fn(a, b)
        except ZeroDivisionError:
            raise self.error("divides by zero") from None


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
        hit = parse_condition(rule.when, names)(indicators)
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
