"""The investable universe: asset ids and their free-form tags."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches

import pandas as pd

from optimizer.errors import InputError


class Tags(Mapping):
    """A read-only mapping asset id -> tuple of tags (a value: equal and hashable by content)."""

    def __init__(self, items: Mapping[str, tuple[str, ...]]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._items.items())))

    def __repr__(self) -> str:
        return repr(self._items)


def namespace_clash(ids: Iterable[str], tags: Mapping[str, Sequence[str]]) -> str | None:
    """The message for the first asset id that is also a tag, or None when there is none.

    Asset ids and tags share one namespace: constraints, cost rates, trigger
    bands and stress shocks look a key up as an asset id first, so an id equal
    to a tag would silently take the tag's place.

    Parameters
    ----------
    ids : iterable of str
        Asset ids.
    tags : mapping of str to sequence of str
        Tags of each asset (the assets carrying them need not be in ``ids``).
    """
    carriers: dict[str, list[str]] = {}
    for asset, asset_tags in tags.items():
        for tag in asset_tags:
            carriers.setdefault(str(tag), []).append(str(asset))
    for asset in ids:
        if str(asset) in carriers:
            return (
                f"asset id {str(asset)!r} is also a tag (carried by "
                f"{', '.join(carriers[str(asset)])}): ids and tags share one namespace; "
                "rename one"
            )
    return None


def _suggest(word: str, options: Iterable[str]) -> str:
    close = get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Universe:
    """Asset ids and their tags (``equity``, ``liquid``, ``alternatives``, ...).

    Parameters
    ----------
    assets : sequence of str
        Asset ids, unique, in the order weights are reported.
    tags : mapping of str to sequence of str, optional
        Tags of each asset. An asset missing from the mapping has no tags;
        a key that is not an asset is an error. The mapping is copied: editing
        it afterwards changes nothing.

    Asset ids and tags share one namespace: a tag equal to an asset id is an
    :class:`~optimizer.errors.InputError` naming both (constraints, costs,
    bands and shocks keyed by that name could not tell them apart).

    A universe is a value: equal ids and tags compare equal and hash alike.

    Examples
    --------
    >>> uni = Universe(assets=["US_EQ", "BONDS"], tags={"US_EQ": ["equity", "liquid"]})
    >>> uni.members("equity")
    ['US_EQ']
    """

    assets: tuple[str, ...]
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __init__(
        self, assets: Sequence[str], tags: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        if isinstance(assets, str):
            raise InputError("Universe assets must be a sequence of asset ids, not one string")
        ids = tuple(str(a) for a in assets)
        if not ids:
            raise InputError("Universe needs at least one asset")
        seen: set[str] = set()
        dups = sorted({a for a in ids if a in seen or seen.add(a)})
        if dups:
            raise InputError(f"Universe has duplicate asset ids: {', '.join(dups)}")
        clean: dict[str, tuple[str, ...]] = {}
        for asset, asset_tags in (tags or {}).items():
            if str(asset) not in seen:
                raise InputError(
                    f"Universe tags name unknown asset {asset!r}{_suggest(asset, ids)}"
                )
            if isinstance(asset_tags, str):
                asset_tags = [asset_tags]
            clean[str(asset)] = tuple(dict.fromkeys(str(t) for t in asset_tags))
        clash = namespace_clash(ids, clean)
        if clash is not None:
            raise InputError(clash)
        object.__setattr__(self, "assets", ids)
        object.__setattr__(self, "tags", Tags(clean))

    def __hash__(self) -> int:
        # a value: equal universes (same ids, same tags) hash alike
        return hash((self.assets, self.tags))

    @property
    def index(self) -> pd.Index:
        """Asset ids as a pandas Index."""
        return pd.Index(self.assets)

    @property
    def all_tags(self) -> list[str]:
        """Every tag used, sorted."""
        return sorted({t for ts in self.tags.values() for t in ts})

    def tags_of(self, asset: str) -> tuple[str, ...]:
        """Tags of one asset (empty when it has none)."""
        self.check_assets([asset], what="tags_of")
        return self.tags.get(asset, ())

    def members(self, tag: str) -> list[str]:
        """Assets carrying ``tag``, in universe order.

        Raises
        ------
        InputError
            If no asset carries the tag (names the closest known tag).
        """
        out = [a for a in self.assets if tag in self.tags.get(a, ())]
        if not out:
            raise InputError(
                f"unknown tag {tag!r}: no asset carries it{_suggest(tag, self.all_tags)}"
            )
        return out

    def check_assets(self, names: Iterable[str], *, what: str) -> None:
        """Raise an InputError naming every id in ``names`` not in the universe."""
        known = set(self.assets)
        bad = [str(n) for n in names if str(n) not in known]
        if bad:
            hints = "".join(_suggest(b, self.assets) for b in bad[:1])
            raise InputError(f"{what} names unknown assets: {', '.join(bad)}{hints}")


def check_universe(universe: Universe | None, assets: pd.Index) -> None:
    """Check that ``universe`` (when given) names exactly ``assets``, in any order.

    Raises
    ------
    InputError
        Not a Universe, or ids on one side only (named).
    """
    if universe is None:
        return
    if not isinstance(universe, Universe):
        raise InputError("universe= must be an optimizer.Universe")
    universe.check_assets(assets, what="the covariance")
    known = set(map(str, assets))
    missing = [a for a in universe.assets if a not in known]
    if missing:
        raise InputError(f"the covariance has no row for universe assets: {', '.join(missing)}")
