"""Constraint objects of an investment policy.

Each constraint is a small frozen dataclass with a ``name`` that appears in
every message about it. Constraints are values: per-asset data are held as
read-only copies (editing the Series a caller passed in changes nothing), and
two constraints with the same content are equal and hash alike, so compiled
problems can be keyed by content. ``pieces(ctx)`` turns a constraint into the
canonical pieces of :mod:`optimizer.pieces` over the weight vector ``w``
(ordered like the problem's assets):

* ``Row``: ``lo <= a'w <= hi`` (``Bound`` for a single asset),
* ``Norm1``: ``sum_i s_i |w_i - c_i| <= max`` (turnover, leverage),
* ``RiskLimit``: ``sqrt((w - b)' C (w - b)) <= max`` (tracking error).

Every constraint takes ``priority``: None (the default) makes it hard; 1, 2,
... make it soft, and when the whole set cannot hold the highest-numbered
level gives way first (:mod:`optimizer.soft`).

Weights are decimals (0.05 is 5%) of the portfolio's value.
"""

from __future__ import annotations

import math
import numbers
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from optimizer import validation
from optimizer.errors import InputError
from optimizer.pieces import Bound, Norm1, Piece, RiskLimit, Row
from optimizer.universe import Universe
from optimizer.values import Value, read_only

Number = float | int
PerAsset = Mapping[str, float] | pd.Series


@dataclass(frozen=True)
class Context:
    """What a constraint needs to lower itself: the assets and their tags."""

    assets: pd.Index
    universe: Universe | None = None

    def group(self, tag: str | None, assets: Sequence[str] | None, owner: str) -> list[str]:
        """Asset ids of a group given by a tag or by ids, checked."""
        if assets is not None:
            self.check(assets, owner)
            return [str(a) for a in assets]
        if self.universe is None:
            raise InputError(f"constraint {owner!r} uses tag {tag!r}: pass universe= to use tags")
        members = self.universe.members(str(tag))
        return [m for m in members if m in set(self.assets)]

    def check(self, names, owner: str) -> None:
        known = set(map(str, self.assets))
        bad = [str(a) for a in names if str(a) not in known]
        if bad:
            raise InputError(f"constraint {owner!r} names unknown assets: {', '.join(bad)}")

    def vector(self, values, owner: str, *, what: str, default: float | None) -> np.ndarray:
        """A per-asset vector from a scalar or a mapping; ``default`` for assets not named."""
        n = len(self.assets)
        if values is None:
            return np.full(n, np.nan if default is None else default)
        if isinstance(values, Number) and not isinstance(values, bool):
            v = float(values)
            if math.isnan(v):
                raise InputError(f"constraint {owner!r}: {what} is NaN")
            return np.full(n, v)
        if not isinstance(values, Mapping | pd.Series):
            raise InputError(
                f"constraint {owner!r}: {what} must be a number or a mapping asset -> number"
            )
        series = pd.Series(values, dtype=float) if not isinstance(values, pd.Series) else values
        self.check(series.index, owner)
        out = np.full(n, np.nan if default is None else default)
        pos = self.assets.get_indexer(series.index.astype(str))
        vals = series.to_numpy(dtype=float)
        if np.isnan(vals).any():
            bad = series.index[np.isnan(vals)]
            raise InputError(f"constraint {owner!r}: {what} is NaN for {', '.join(map(str, bad))}")
        out[pos] = vals
        if default is None and np.isnan(out).any():
            missing = self.assets[np.isnan(out)]
            raise InputError(
                f"constraint {owner!r}: {what} is missing for {', '.join(map(str, missing))}"
            )
        return out

    def unit(self, members: Sequence[str]) -> np.ndarray:
        a = np.zeros(len(self.assets))
        a[self.assets.get_indexer(list(members))] = 1.0
        return a


def _num(value, owner: str, what: str, *, allow_none: bool = True) -> float | None:
    """A number (+-inf leaves that side open); bool, text and NaN are refused."""
    if value is None:
        if allow_none:
            return None
        raise InputError(f"constraint {owner!r}: {what} is required")
    v = validation.real_number(value, what=f"constraint {owner!r}: {what}")
    if math.isnan(v):
        raise InputError(f"constraint {owner!r}: {what} is NaN")
    return v


def _minmax(owner: str, lo, hi) -> tuple[float, float]:
    lo_v = _num(lo, owner, "min")
    hi_v = _num(hi, owner, "max")
    if lo_v is None and hi_v is None:
        raise InputError(f"constraint {owner!r} needs min=, max= or both")
    lo_f = -math.inf if lo_v is None else lo_v
    hi_f = math.inf if hi_v is None else hi_v
    if lo_f > hi_f:
        raise InputError(f"constraint {owner!r}: min {lo_f:g} is above max {hi_f:g}")
    return lo_f, hi_f


def _freeze(values, owner: str | None = None, what: str = "values"):
    """Mappings become read-only float Series copies so the dataclass stays value-like.

    Text and bool values are refused (``{"US_EQ": "0.5"}`` is not a number), naming the ids.
    """
    if isinstance(values, Mapping | pd.Series):
        s = values if isinstance(values, pd.Series) else pd.Series(dict(values), dtype=object)
        if not validation.is_numeric(s):
            bad = [str(k) for k, v in s.items() if not validation.is_real(v)]
            raise InputError(
                f"constraint {owner!r}: {what} must map asset ids to numbers; not a number "
                f"for {validation.names(bad)} (got {s[bad[0]]!r})"
            )
        return read_only(pd.Series(s, dtype=float))
    return values


def _per_asset(value, owner: str, what: str):
    """``None``, a number (not NaN) or a mapping asset -> number, frozen."""
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):  # numpy too
        if math.isnan(float(value)):
            raise InputError(f"constraint {owner!r}: {what} is NaN")
        return float(value)
    if isinstance(value, Mapping | pd.Series):
        return _freeze(value, owner, what)
    raise InputError(
        f"constraint {owner!r}: {what} must be a number or a mapping asset -> number, got {value!r}"
    )


def _fmt_assets(assets: Sequence[str]) -> str:
    shown = ", ".join(map(str, list(assets)[:4]))
    return f"[{shown}{', ...' if len(assets) > 4 else ''}]"


def _priority(value, owner: str) -> int | None:
    """``None`` (hard) or a soft level 1, 2, ... (higher levels give way first)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(
            f"constraint {owner!r}: priority must be None (hard) or an integer >= 1, got {value!r}"
        )
    return int(value)


class _Value(Value):
    """A constraint value: content equality and hashing, and its priority checked."""

    def _check_priority(self) -> None:
        object.__setattr__(self, "priority", _priority(self.priority, self.name))


# ----------------------------------------------------------------------------- constraint objects


@dataclass(frozen=True, eq=False)
class Budget(_Value):
    """Weights sum to ``total`` (1.0: fully invested).

    Parameters
    ----------
    total : float
        Sum of weights, decimal of portfolio value.
    name : str, optional
        Default ``"budget"``.
    """

    total: float = 1.0
    name: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or "budget")
        self._check_priority()
        object.__setattr__(self, "total", _num(self.total, self.name, "total", allow_none=False))

    def pieces(self, ctx: Context) -> list[Piece]:
        n = len(ctx.assets)
        return [
            Row(self.name, self.name, np.ones(n), self.total, self.total, self.priority, "budget")
        ]


@dataclass(frozen=True, eq=False)
class LongOnly(_Value):
    """Every weight is non-negative."""

    name: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or "long-only")
        self._check_priority()

    def pieces(self, ctx: Context) -> list[Piece]:
        return _bounds_rows(self, ctx.assets, np.zeros(len(ctx.assets)), None, kind="long-only")


def _bounds_rows(owner, assets: pd.Index, lo, hi, *, kind: str = "") -> list[Piece]:
    n = len(assets)
    lo = np.full(n, -np.inf) if lo is None else lo
    hi = np.full(n, np.inf) if hi is None else hi
    out: list[Piece] = []
    for i, asset in enumerate(assets):
        lo_i = -np.inf if np.isnan(lo[i]) else lo[i]
        hi_i = np.inf if np.isnan(hi[i]) else hi[i]
        if np.isfinite(lo_i) or np.isfinite(hi_i):
            label = f"{owner.name} [{asset}]"
            out.append(Bound(owner.name, label, i, float(lo_i), float(hi_i), owner.priority, kind))
    return out


@dataclass(frozen=True, eq=False)
class Bounds(_Value):
    """Per-asset weight bounds ``lower <= w_i <= upper``.

    Parameters
    ----------
    lower, upper : float or mapping asset -> float, optional
        A number applies to every asset; a mapping to the assets it names
        only. ``None`` leaves that side free. A negative lower bound allows
        short positions (and lifts the default long-only constraint).
    name : str, optional
        Default ``"bounds"``.
    """

    lower: float | PerAsset | None = None
    upper: float | PerAsset | None = None
    name: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or "bounds")
        self._check_priority()
        object.__setattr__(self, "lower", _per_asset(self.lower, self.name, "lower bound"))
        object.__setattr__(self, "upper", _per_asset(self.upper, self.name, "upper bound"))
        if self.lower is None and self.upper is None:
            raise InputError(f"constraint {self.name!r} needs lower=, upper= or both")

    @property
    def allows_short(self) -> bool:
        """True when some lower bound is negative."""
        if self.lower is None:
            return False
        if isinstance(self.lower, pd.Series):
            return bool((self.lower < 0).any())
        return float(self.lower) < 0

    def lower_vector(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        lo = ctx.vector(self.lower, self.name, what="lower bound", default=np.nan)
        hi = ctx.vector(self.upper, self.name, what="upper bound", default=np.nan)
        both = ~np.isnan(lo) & ~np.isnan(hi) & (lo > hi)
        if both.any():
            i = int(np.flatnonzero(both)[0])
            raise InputError(
                f"constraint {self.name!r}: lower bound {lo[i]:g} is above upper bound "
                f"{hi[i]:g} for {ctx.assets[i]}"
            )
        return lo, hi

    def pieces(self, ctx: Context) -> list[Piece]:
        lo, hi = self.lower_vector(ctx)
        return _bounds_rows(self, ctx.assets, lo, hi)


@dataclass(frozen=True, eq=False)
class GroupLimit(_Value):
    """Total weight of a group within ``[min, max]``.

    The group is a tag (``tag="equity"``, needs ``universe=``) or a list of
    asset ids (``assets=[...]``): equity caps, liquidity floors, sector limits.
    """

    tag: str | None = None
    assets: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    name: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        if (self.tag is None) == (self.assets is None):
            raise InputError(
                f"GroupLimit {self.name or ''!r} needs exactly one of tag= or assets=".replace(
                    "'' ", ""
                )
            )
        if self.assets is not None:
            if isinstance(self.assets, str):
                object.__setattr__(self, "assets", (self.assets,))
            object.__setattr__(self, "assets", tuple(map(str, self.assets)))
            if not self.assets:
                raise InputError("GroupLimit assets= is empty")
        default = (
            f"group {self.tag}" if self.tag is not None else f"group {_fmt_assets(self.assets)}"
        )
        object.__setattr__(self, "name", self.name or default)
        self._check_priority()
        _minmax(self.name, self.min, self.max)

    def pieces(self, ctx: Context) -> list[Piece]:
        lo, hi = _minmax(self.name, self.min, self.max)
        members = ctx.group(self.tag, self.assets, self.name)
        return [Row(self.name, self.name, ctx.unit(members), lo, hi, self.priority)]


@dataclass(frozen=True, eq=False)
class DeviationBand(_Value):
    """Tactical band around a strategic (policy) portfolio: ``|w - reference| <= width``.

    Parameters
    ----------
    reference : mapping asset -> weight
        Strategic weights; assets not named have reference 0.
    width : float or mapping asset -> float
        Half-width of the band (0.05: five points either side). A mapping
        bands only the assets it names.
    tag : str, optional
        When given, the band applies to the tag's total weight against the
        tag's total reference weight (``width`` must then be a number).
    """

    reference: PerAsset
    width: float | PerAsset
    tag: str | None = None
    name: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        default = f"band {self.tag}" if self.tag else "deviation band"
        object.__setattr__(self, "name", self.name or default)
        self._check_priority()
        if not isinstance(self.reference, Mapping | pd.Series):
            raise InputError(f"constraint {self.name!r}: reference must map asset -> weight")
        object.__setattr__(self, "reference", _freeze(self.reference, self.name, "reference"))
        width = _freeze(self.width, self.name, "width")
        if not isinstance(width, pd.Series):
            if not validation.is_real(width) or width is None:
                raise InputError(
                    f"constraint {self.name!r}: width must be a number or a mapping asset -> "
                    f"number, got {width!r}"
                )
            width = float(width)
        object.__setattr__(self, "width", width)
        if self.tag is not None and isinstance(width, pd.Series):
            raise InputError(f"constraint {self.name!r}: a band on a tag takes one number width")
        numeric = width if isinstance(width, pd.Series) else pd.Series([width])
        if numeric.isna().any():
            raise InputError(f"constraint {self.name!r}: width must be a number, not NaN")
        if (numeric < 0).any():
            raise InputError(f"constraint {self.name!r}: width must be non-negative")

    def pieces(self, ctx: Context) -> list[Piece]:
        ref = ctx.vector(self.reference, self.name, what="reference", default=0.0)
        if self.tag is not None:
            a = ctx.unit(ctx.group(self.tag, None, self.name))
            c, wd = float(a @ ref), float(self.width)
            return [Row(self.name, self.name, a, c - wd, c + wd, self.priority)]
        width = ctx.vector(self.width, self.name, what="width", default=np.nan)
        lo, hi = ref - width, ref + width
        return _bounds_rows(self, ctx.assets, lo, hi)


@dataclass(frozen=True, eq=False)
class TurnoverLimit(_Value):
    """``sum_i |w_i - current_i| <= max`` (two-way turnover, decimal of value)."""

    current: PerAsset
    max: float
    name: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or "turnover limit")
        self._check_priority()
        object.__setattr__(self, "current", _freeze(self.current, self.name, "current"))
        if _num(self.max, self.name, "max", allow_none=False) < 0:
            raise InputError(f"constraint {self.name!r}: max must be non-negative")

    def pieces(self, ctx: Context) -> list[Piece]:
        cur = ctx.vector(self.current, self.name, what="current weight", default=0.0)
        n = len(ctx.assets)
        return [Norm1(self.name, self.name, cur, np.ones(n), float(self.max), self.priority)]


@dataclass(frozen=True, eq=False)
class LeverageLimit(_Value):
    """``sum_i |w_i| <= max`` (gross exposure, 1.0 for an unlevered long-only book)."""

    max: float
    name: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or "leverage limit")
        self._check_priority()
        if _num(self.max, self.name, "max", allow_none=False) < 0:
            raise InputError(f"constraint {self.name!r}: max must be non-negative")

    def pieces(self, ctx: Context) -> list[Piece]:
        n = len(ctx.assets)
        return [
            Norm1(self.name, self.name, np.zeros(n), np.ones(n), float(self.max), self.priority)
        ]


@dataclass(frozen=True, eq=False)
class TrackingErrorLimit(_Value):
    """Ex-ante tracking error ``sqrt((w - b)' C (w - b)) <= max`` (annualized volatility)."""

    benchmark: PerAsset
    max: float
    name: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or "tracking error limit")
        self._check_priority()
        object.__setattr__(self, "benchmark", _freeze(self.benchmark, self.name, "benchmark"))
        if _num(self.max, self.name, "max", allow_none=False) < 0:
            raise InputError(f"constraint {self.name!r}: max must be non-negative")

    def pieces(self, ctx: Context) -> list[Piece]:
        b = ctx.vector(self.benchmark, self.name, what="benchmark weight", default=0.0)
        return [RiskLimit(self.name, self.name, b, float(self.max), self.priority)]


@dataclass(frozen=True, eq=False)
class ExposureLimit(_Value):
    """Weighted exposure ``sum_i score_i w_i`` within ``[min, max]``.

    ``scores`` must name every asset: an ESG score, a factor beta, a duration.
    """

    scores: PerAsset
    min: float | None = None
    max: float | None = None
    name: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or "exposure limit")
        self._check_priority()
        object.__setattr__(self, "scores", _freeze(self.scores, self.name, "scores"))
        _minmax(self.name, self.min, self.max)

    def pieces(self, ctx: Context) -> list[Piece]:
        lo, hi = _minmax(self.name, self.min, self.max)
        s = ctx.vector(self.scores, self.name, what="score", default=None)
        if not np.isfinite(s).all():
            raise InputError(f"constraint {self.name!r}: scores must be finite")
        return [Row(self.name, self.name, s, lo, hi, self.priority)]


@dataclass(frozen=True, eq=False)
class LinearConstraint(_Value):
    """Any ``lower <= A w <= upper``.

    Parameters
    ----------
    coefficients : mapping asset -> float, Series, or DataFrame (rows x assets)
        One row (mapping or Series) or several (DataFrame); assets not named
        have coefficient 0.
    lower, upper : float or sequence, optional
        Bounds per row; ``None`` is unbounded on that side.
    """

    coefficients: PerAsset | pd.DataFrame
    lower: float | Sequence[float] | None = None
    upper: float | Sequence[float] | None = None
    name: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.name or "linear constraint")
        self._check_priority()
        coef = self.coefficients
        if isinstance(coef, Mapping | pd.Series):
            row = _freeze(coef, self.name, "coefficients")
            if row.isna().any():
                bad = ", ".join(map(str, row.index[row.isna()]))
                raise InputError(f"constraint {self.name!r}: coefficient is NaN for {bad}")
            coef = pd.DataFrame([row])
        if not isinstance(coef, pd.DataFrame):
            raise InputError(
                f"constraint {self.name!r}: coefficients must be a mapping or DataFrame"
            )
        bad = [str(c) for c, col in coef.items() if not validation.is_numeric(col)]
        if bad:
            raise InputError(
                f"constraint {self.name!r}: coefficients must be numbers; not so for "
                f"{validation.names(bad)}"
            )
        coef = read_only(coef.astype(float))
        object.__setattr__(self, "coefficients", coef)
        if self.lower is None and self.upper is None:
            raise InputError(f"constraint {self.name!r} needs lower=, upper= or both")
        k = len(coef)
        sides = {}
        for what, value, default in (("lower", self.lower, -np.inf), ("upper", self.upper, np.inf)):
            arr = np.asarray(default if value is None else value)
            if arr.dtype.kind not in "fiu":  # text, bool, None: refused, not converted
                raise InputError(
                    f"constraint {self.name!r}: {what} must be a number or one number per row, "
                    f"got {value!r}"
                )
            arr = arr.astype(float)
            if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != k):
                raise InputError(
                    f"constraint {self.name!r}: {what} has {arr.size} values for {k} rows"
                )
            if np.isnan(arr).any():
                raise InputError(f"constraint {self.name!r}: {what} is NaN")
            sides[what] = np.broadcast_to(arr, (k,))
        bad_rows = np.flatnonzero(sides["lower"] > sides["upper"])
        if bad_rows.size:
            raise InputError(
                f"constraint {self.name!r}: lower above upper in row {coef.index[bad_rows[0]]}"
            )

    def pieces(self, ctx: Context) -> list[Piece]:
        coef = self.coefficients.fillna(0.0)
        ctx.check(coef.columns, self.name)
        k = len(coef)
        lo = np.broadcast_to(np.asarray(-np.inf if self.lower is None else self.lower, float), (k,))
        hi = np.broadcast_to(np.asarray(np.inf if self.upper is None else self.upper, float), (k,))
        out: list[Piece] = []
        for j in range(k):
            a = ctx.vector(coef.iloc[j], self.name, what="coefficient", default=0.0)
            if lo[j] > hi[j]:
                raise InputError(f"constraint {self.name!r}: lower above upper in row {j}")
            label = self.name if k == 1 else f"{self.name} [{coef.index[j]}]"
            out.append(Row(self.name, label, a, float(lo[j]), float(hi[j]), self.priority))
        return out


Constraint = (
    Budget
    | LongOnly
    | Bounds
    | GroupLimit
    | DeviationBand
    | TurnoverLimit
    | LeverageLimit
    | TrackingErrorLimit
    | ExposureLimit
    | LinearConstraint
)

#: The constraint classes, for ``isinstance`` checks.
CONSTRAINT_TYPES = typing.get_args(Constraint)


def lower_constraint(c, ctx: Context) -> list[Piece]:
    """Canonical pieces of one constraint object."""
    return c.pieces(ctx)


@dataclass(frozen=True)
class ConstraintSet:
    """The constraints of one problem with the defaults applied, lowered to pieces."""

    constraints: tuple
    pieces: tuple = field(repr=False)
    budget: float | None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.constraints]


def constraint_tuple(constraints: Iterable[Constraint] | None) -> tuple:
    """The ``constraints=`` argument of a public function (None, a list or tuple), checked.

    One constraint object instead of a list is refused: ``"constraints must be a list
    of constraint objects, got LongOnly(...): pass [LongOnly(...)]"``; so are text, a
    mapping, and items that are not constraint objects (InputError).
    """
    if constraints is None:
        return ()
    if isinstance(constraints, CONSTRAINT_TYPES):
        kind = type(constraints).__name__
        raise InputError(
            f"constraints must be a list of constraint objects, got {constraints!r}: "
            f"pass [{kind}(...)]"
        )
    if isinstance(constraints, str | bytes | Mapping | pd.Series) or not isinstance(
        constraints, Iterable
    ):
        raise InputError(
            f"constraints must be a list of constraint objects, got {constraints!r} "
            "(use the classes in optimizer.constraints)"
        )
    out = tuple(constraints)
    for c in out:
        if not isinstance(c, CONSTRAINT_TYPES):
            raise InputError(
                f"unknown constraint object {c!r}: use the classes in optimizer.constraints"
            )
    return out


def with_defaults(constraints: Iterable[Constraint] | None) -> list:
    """Add ``Budget(1)`` unless a budget is given, and long-only unless shorts are allowed."""
    out = list(constraint_tuple(constraints))
    if not any(isinstance(c, Budget) for c in out):
        out.insert(0, Budget(1.0))
    shorts = any(isinstance(c, Bounds) and c.allows_short for c in out)
    if not shorts and not any(isinstance(c, LongOnly) for c in out):
        out.insert(1, LongOnly())
    names = [c.name for c in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"two constraints share the name {dup[0]!r}: give each a distinct name=")
    return out


def resolve(constraints, assets: pd.Index, universe: Universe | None) -> ConstraintSet:
    """Apply defaults, check names and lower every constraint to canonical pieces."""
    cons = with_defaults(constraints)
    ctx = Context(pd.Index(assets).astype(str), universe)
    pieces: list[Piece] = []
    for c in cons:
        pieces.extend(lower_constraint(c, ctx))
    budgets = [c.total for c in cons if isinstance(c, Budget)]
    return ConstraintSet(tuple(cons), tuple(pieces), budgets[0] if len(budgets) == 1 else None)
