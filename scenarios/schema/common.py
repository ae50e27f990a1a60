"""What every section of a scenario file shares: asset and tag references, tables by asset, sums.

The section readers of :mod:`scenarios.schema` build on :mod:`scenarios.loader`
(the :class:`~scenarios.loader.Reader` that locates every message and the
:class:`~scenarios.loader.Table` that reads typed values) and on the helpers
here: :class:`Names` checks references to asset ids and tags with
suggestions, :func:`by_asset` reads a table asset id -> number in universe
order, :func:`check_sum` checks that weights sum to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from optimizer.universe import Universe
from scenarios.loader import MISSING, Reader, Table, closest, join, type_name

#: Weights (policy, holdings weights, tactical offsets) must sum to 1 within this.
WEIGHT_TOL = 1e-6

#: Hint for decimals in messages.
PCT = " (decimals: 0.05 is 5%)"
#: Hint for a negative weight while long-only.
SHORTS = "; set constraints.long_only = false to allow short positions"


class Names:
    """Asset ids and tags of the universe, for checking references with suggestions."""

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self.assets = list(universe.assets)
        self.asset_set = set(self.assets)
        self.tags = set(universe.all_tags)

    def asset(self, r: Reader, where: str, key: object) -> str:
        """``key`` when it is an asset id, else an error with the closest id."""
        if key not in self.asset_set:
            raise r.error(where, f"unknown asset {key!r}{closest(str(key), self.assets)}")
        return str(key)

    def tag(self, r: Reader, where: str, key: object) -> str:
        """``key`` when it is a tag, else an error with the closest tag (or: it is an asset id)."""
        if key not in self.tags:
            hint = closest(str(key), self.tags)
            if key in self.asset_set:
                hint = f" ({key!r} is an asset id, not a tag)"
            known = ", ".join(sorted(self.tags)) or "none"
            raise r.error(where, f"unknown tag {key!r}{hint}; tags in [[assets]]: {known}")
        return str(key)

    def asset_or_tag(self, r: Reader, where: str, key: object) -> str:
        """``key`` when it is an asset id or a tag, else an error with the closest."""
        if key not in self.asset_set and key not in self.tags:
            hint = closest(str(key), self.asset_set | self.tags)
            raise r.error(where, f"{key!r} is neither an asset id nor a tag{hint}")
        return str(key)

    def members(self, key: str) -> list[str]:
        """An asset id itself, or a tag's members."""
        return [key] if key in self.asset_set else self.universe.members(key)


def by_asset(
    t: Table,
    key: str,
    names: Names,
    *,
    every: bool,
    default: Any = MISSING,
    **limits: Any,
) -> pd.Series | None:
    """A table asset -> number as a Series in universe order.

    ``every``: each asset must be named (else the Series holds only the
    assets named, in universe order).
    """
    if key not in t:
        if default is MISSING:
            raise t.error(key, "missing (required)")
        return default
    raw = t.raw(key)
    if not isinstance(raw, dict):
        raise t.error(key, f"expected a table asset id -> number, got {type_name(raw)} {raw!r}")
    if not raw:
        raise t.error(key, "is empty: name at least one asset")
    for k in raw:
        names.asset(t.r, join(t.path(key), k), k)
    values = t.numbers(key, **limits)
    if every:
        missing = [a for a in names.assets if a not in values]
        if missing:
            raise t.error(key, f"missing for {listing(missing)}: every asset needs a value")
    order = [a for a in names.assets if a in values]
    return pd.Series([values[a] for a in order], index=pd.Index(order, dtype=object), dtype=float)


def listing(items: Sequence[str], limit: int = 8) -> str:
    """Up to ``limit`` items joined by commas, and how many more."""
    text = ", ".join(map(str, items[:limit]))
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_sum(t: Table, key: str, total: float, what: str) -> None:
    """Weights at ``key`` that must sum to 1 (within :data:`WEIGHT_TOL`); ``what`` names them."""
    if abs(total - 1.0) > WEIGHT_TOL:
        raise t.error(
            key,
            f"{what} sum to {total:.10g}, not 1 (off by {total - 1:+.3g}; tolerance "
            f"{WEIGHT_TOL:g}); weights are decimals of the portfolio value",
        )


def whole_number(t: Table, key: str, default: Any, *, low: int) -> Any:
    """A whole number (TOML integer, or a float with no fraction) >= ``low``, as an int."""
    value = t.number(key, default, low=low)
    if key not in t:
        return value
    if value != int(value):
        raise t.error(key, f"expected a whole number, got {t.raw(key)!r}")
    return int(value)
