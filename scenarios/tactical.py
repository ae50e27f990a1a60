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
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from optimizer import validation
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
#: Longest rule condition accepted (characters).
MAX_CONDITION_LENGTH = 1000
#: Deepest nesting of operators and parentheses in a rule condition.
MAX_CONDITION_DEPTH = 50

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
            ``"rule condition '<text>': <what failed>"``: a division by zero
            (naming the divisor and its indicators' values), a result that
            overflows to infinity, or an indicator without a finite number.
        """
        try:
            return bool(self._test(indicators))
        except _Failure as exc:
            raise InputError(f"rule condition {_shown(self.text)}: {exc}") from None

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
        ``uses Attribute``, ``uses Pow`` ...), a constant too large for a
        float, a condition over :data:`MAX_CONDITION_LENGTH` characters or
        nested deeper than :data:`MAX_CONDITION_DEPTH` levels.
    """
    known = tuple(names)
    return Condition(text, known, _Grammar(text, known).parse())


class _Failure(Exception):
    """A condition that fails on given indicator values (re-raised as an InputError)."""


def _depth(node: ast.AST) -> int:
    """Nesting depth of an expression tree (without recursion)."""
    deepest, todo = 0, [(node, 1)]
    while todo:
        item, level = todo.pop()
        deepest = max(deepest, level)
        todo.extend((child, level + 1) for child in ast.iter_child_nodes(item))
    return deepest


def _number_text(value: float) -> str:
    return f"{value:.6g}"


def _shown(text: str) -> str:
    """A condition quoted for a message, cut short when long."""
    return repr(text) if len(text) <= 120 else f"{text[:100]!r}... ({len(text):,} characters)"


class _Grammar:
    """The checker and evaluator builder of one condition: each rule both checks and builds."""

    def __init__(self, text: str, names: tuple[str, ...]) -> None:
        self.text = text
        self.names = names
        self.known = set(names)

    def error(self, message: str) -> InputError:
        """``"rule condition '<text>' <message>"`` (no space before a leading ':')."""
        sep = "" if message.startswith(":") else " "
        return InputError(f"rule condition {_shown(self.text)}{sep}{message}")

    def parse(self) -> _Eval:
        if len(self.text) > MAX_CONDITION_LENGTH:
            raise InputError(
                f"rule condition {self.text[:40]!r}... is {len(self.text):,} characters "
                f"long; the limit is {MAX_CONDITION_LENGTH:,}: split it into several rules"
            )
        try:
            tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as exc:
            raise InputError(
                f"cannot parse rule condition {_shown(self.text)}: it does not parse as a Python "
                f"expression ({exc.msg}, column {exc.offset})"
            ) from None
        except ValueError as exc:  # e.g. a null character
            raise InputError(
                f"cannot parse rule condition {_shown(self.text)}: it does not parse ({exc})"
            ) from None
        except (RecursionError, MemoryError):
            tree = None
        if tree is None or _depth(tree) > MAX_CONDITION_DEPTH:
            raise self.error(
                f"is nested too deeply (the limit is {MAX_CONDITION_DEPTH} levels of "
                "operators and parentheses): simplify it"
            )
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
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                shown = ast.unparse(node)
                shown = shown if len(shown) <= 20 else f"{shown[:12]}... ({len(shown)} digits)"
                raise self.error(f"has a constant too large for a number: {shown}")
            return lambda env: number
        if isinstance(node, ast.Name):
            name = node.id
            if name not in self.known:
                raise self.error(
                    f"names unknown indicator {name!r}{closest(name, self.known)}; known: "
                    + ", ".join(sorted(self.known))
                )
            return lambda env: _indicator(env, name)
        if isinstance(node, ast.BinOp):
            fn = ARITHMETIC.get(type(node.op))
            if fn is None:
                raise self.not_allowed(
                    type(node.op).__name__, f"{ast.unparse(node)!r} is not allowed"
                )
            left, right = self.arithmetic(node.left), self.arithmetic(node.right)
            return self.binary(node, fn, left, right)
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

    def binary(
        self, node: ast.BinOp, fn: Callable[[float, float], float], left: _Eval, right: _Eval
    ) -> _Eval:
        """``left <op> right``, failing with what went wrong: a zero divisor, an overflow."""
        expr, divisor = ast.unparse(node), ast.unparse(node.right)
        names = sorted({n.id for n in ast.walk(node.right) if isinstance(n, ast.Name)})
        symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(node.op)]

        def apply(env: Mapping[str, float]) -> float:
            a, b = left(env), right(env)
            try:
                out = fn(a, b)
            except ZeroDivisionError:
                values = ", ".join(f"{n} = {_number_text(_indicator(env, n))}" for n in names)
                if isinstance(node.right, ast.Constant):
                    why, fix = "the divisor is the constant 0", "divide by a number other than 0"
                elif isinstance(node.right, ast.Name):
                    why, fix = f"{divisor} is 0", f"give {divisor} a value other than 0"
                elif values:
                    why, fix = f"{divisor} is 0 with {values}", "change the rule or the values"
                else:
                    why, fix = f"{divisor} is 0", "change the rule"
                raise _Failure(f"{expr!r} divides by zero ({why}): {fix}") from None
            except OverflowError:
                out = math.inf
            if not math.isfinite(out):
                raise _Failure(
                    f"{expr!r} overflows: {_number_text(a)} {symbol} {_number_text(b)} is too "
                    "large for a number (check the indicators' units)"
                )
            return out

        return apply


def _indicator(env: Mapping[str, float], name: str) -> float:
    """The value of indicator ``name`` as a finite float, or a :class:`_Failure` saying why not."""
    if name not in env:
        raise _Failure(f"indicator {name!r} has no value; given: {', '.join(sorted(env)) or '-'}")
    raw = env[name]
    try:
        if isinstance(raw, bool | str | bytes):
            raise TypeError
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise _Failure(f"indicator {name!r} is not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise _Failure(f"indicator {name!r} is {value} (not a finite number): give a number")
    return value


@dataclass(frozen=True)
class Rule:
    """``when`` (a condition over indicators) -> ``equity`` tilt (decimal weight)."""

    name: str
    when: str
    equity: float

    def __post_init__(self) -> None:
        what = f"tactical rule {self.name!r}: equity"
        object.__setattr__(self, "equity", validation.finite_number(self.equity, what=what))


def evaluate_rule(
    rule: Rule,
    indicators: Mapping[str, float],
    *,
    number: int | None = None,
    source: str | None = None,
) -> bool:
    """Whether ``rule`` fires on these indicator values (its condition parsed and evaluated).

    Parameters
    ----------
    rule : Rule
    indicators : mapping str -> float
        Indicator values by name; the names the condition may use.
    number, source : optional
        The rule's position (1-based) and the file it comes from, for messages.

    Raises
    ------
    InputError
        A condition outside the grammar, as :func:`parse_condition` says it
        (the same message the loader gives); a failure of the evaluation as
        ``"tactical rule '<name>' (rule <number>) in <source>: rule condition
        '<when>': ..."`` and what failed: a division by zero naming the
        divisor and what was 0 (``'mom / vol' divides by zero (vol is 0)``),
        an overflow, an indicator without a finite value.
    """
    condition = parse_condition(rule.when, [str(k) for k in indicators])
    try:
        return condition(indicators)
    except InputError as exc:
        where = "" if number is None else f" (rule {number})"
        where += f" in {source}" if source else ""
        raise InputError(f"tactical rule {rule.name!r}{where}: {exc}") from None


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
    source: str | None = None,
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
        Cap on the absolute total equity tilt (0.10: ten points), >= 0.
    offset : mapping tag -> share
        Where the opposite of the equity tilt goes (shares sum to 1).
    equity_tag : str
        The tag of the assets the tilt applies to.
    source : str, optional
        The file the rules come from, named in the message of a rule that
        fails (see :func:`evaluate_rule`).

    Raises
    ------
    InputError
        A rule that fails (naming the rule, its number, ``source`` and what
        failed), a policy asset outside the universe, offset shares that do
        not sum to 1, an unknown tag, a tilt that makes a weight negative, a
        negative ``band`` (it would flip the tilt's sign), text, NaN or inf.
    """
    band = validation.finite_number(band, what="band")
    if band < 0:
        raise InputError(
            f"band must be >= 0 (the cap on the absolute equity tilt, 0.10 for ten points), "
            f"got {band!r}"
        )
    policy = validation.series(policy, what="tactical policy weights")
    universe.check_assets(policy.index, what="tactical policy weights")
    policy = policy.reindex(universe.assets).fillna(0.0)
    fired = []
    total = 0.0
    for number, rule in enumerate(rules, start=1):
        hit = evaluate_rule(rule, indicators, number=number, source=source)
        fired.append(
            {"name": rule.name, "condition": rule.when, "fired": hit, "equity": rule.equity}
        )
        if hit:
            total += float(rule.equity)
    capped = max(-band, min(band, total))
    shares = validation.series(offset, what="tactical offset")
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
