"""Values: frozen objects equal and hashable by content, their per-asset data read-only copies.

The constraint objects (:mod:`optimizer.constraints`) and the cost model
(:mod:`optimizer.costs`) are values: a compiled problem is looked up by their
content, so two objects with the same numbers must compare equal and hash
alike (whatever the order of the mapping they were given), and nothing may
change them after construction (the caller's Series is copied; the copy is
read-only, also after a pickle round trip).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

import numpy as np
import pandas as pd


def read_only(value):
    """A read-only copy of a Series or DataFrame (labels as str); anything else as it is."""
    if isinstance(value, pd.Series):
        data = np.array(value.to_numpy(dtype=float))  # a copy of our own
        data.setflags(write=False)
        return pd.Series(data, index=value.index.astype(str), name=value.name, copy=False)
    if isinstance(value, pd.DataFrame):
        data = np.array(value.to_numpy(dtype=float))
        data.setflags(write=False)
        return pd.DataFrame(
            data, index=value.index.copy(), columns=value.columns.astype(str), copy=False
        )
    return value


def content(value) -> object:
    """A hashable stand-in for a field's content.

    A Series or a mapping is keyed by asset: its order is not content. A
    DataFrame's rows keep their order (rows of a linear constraint), its
    columns (assets) are taken by name. ``True`` and ``1`` differ.
    """
    if isinstance(value, pd.Series):
        ordered = value.sort_index()
        return ("series", tuple(map(str, ordered.index)), ordered.to_numpy(dtype=float).tobytes())
    if isinstance(value, pd.DataFrame):
        ordered = value.sort_index(axis=1)
        return (
            "frame",
            tuple(map(str, ordered.index)),
            tuple(map(str, ordered.columns)),
            ordered.to_numpy(dtype=float).tobytes(),
        )
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.tobytes())
    if isinstance(value, Mapping):  # by key, whatever the order
        return ("mapping", tuple(sorted((str(k), content(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return tuple(content(v) for v in value)
    if isinstance(value, bool):
        return ("bool", value)
    return value


class Value:
    """Mixin for frozen dataclasses: equality and hashing by content, read-only after pickling.

    The content key is computed once (every field is immutable) and kept
    outside the dataclass fields.
    """

    def _content_key(self) -> tuple:
        key = self.__dict__.get("_key")
        if key is None:
            key = (type(self).__name__,) + tuple(
                content(getattr(self, f.name)) for f in fields(self)
            )
            object.__setattr__(self, "_key", key)
        return key

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self is other or self._content_key() == other._content_key()

    def __hash__(self) -> int:
        return hash(self._content_key())

    def __getstate__(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():  # read-only copies again (pickle drops the flag)
            object.__setattr__(self, name, read_only(value))
