"""Stress tests: instantaneous shocks by asset or tag applied to a portfolio."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.universe import Universe


@dataclass(frozen=True)
class StressResult:
    """One scenario applied to one portfolio.

    Attributes
    ----------
    name : str
        Scenario name.
    asset_returns : pandas.Series
        Shock applied to each asset (decimal; 0 where the scenario is silent).
    contributions : pandas.Series
        ``weight * shock`` by asset; they sum to ``portfolio_return``.
    portfolio_return : float
        Decimal return of the portfolio under the shock.
    value_before, value_after : float or None
        Portfolio value (currency) before and after, when a value was given.
    survives : bool or None
        ``value_after >= floor * value_before`` when a floor was given.
    """

    name: str
    asset_returns: pd.Series
    contributions: pd.Series
    portfolio_return: float
    value_before: float | None = None
    value_after: float | None = None
    floor: float | None = None
    survives: bool | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "portfolio_return": self.portfolio_return,
            "value_before": self.value_before,
            "value_after": self.value_after,
            "floor": self.floor,
            "survives": self.survives,
            "contributions": {str(k): float(v) for k, v in self.contributions.items()},
        }


def shock_vector(
    shocks: Mapping[str, float], assets: Sequence[str], universe: Universe | None = None
) -> pd.Series:
    """Per-asset shocks from a mapping keyed by asset id or tag (an asset id wins).

    Raises
    ------
    InputError
        A key that is neither an asset nor a tag, or an asset that two tag
        shocks would both hit (give it an asset-level shock).
    """
    assets = [str(a) for a in assets]
    known = set(assets)
    tags = set(universe.all_tags) if universe is not None else set()
    out = pd.Series(0.0, index=assets)
    by_tag: dict[str, list[str]] = {}
    for key, value in shocks.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InputError(f"shock for {key!r} must be a number, got {value!r}") from None
        if not np.isfinite(v) or v <= -1.0:
            raise InputError(f"shock for {key!r} must be finite and above -100%, got {value!r}")
        if str(key) in known:
            continue
        if str(key) not in tags:
            raise InputError(f"shock names {key!r}, which is neither an asset nor a tag")
        for member in universe.members(str(key)):
            if member in known:
                by_tag.setdefault(member, []).append(str(key))
                out[member] = v
    for member, hit in by_tag.items():
        if len(hit) > 1 and member not in {str(k) for k in shocks}:
            raise InputError(
                f"asset {member} is hit by shocks on several tags ({', '.join(hit)}): "
                "give it its own shock"
            )
    for key, value in shocks.items():
        if str(key) in known:
            out[str(key)] = float(value)
    return out


def apply(
    weights: pd.Series,
    shocks: Mapping[str, float],
    *,
    name: str = "stress",
    universe: Universe | None = None,
    value: float | None = None,
    floor: float | None = None,
) -> StressResult:
    """Apply one instantaneous shock to a portfolio.

    Parameters
    ----------
    weights : pandas.Series
        Portfolio weights by asset (decimals).
    shocks : mapping
        Return by asset id or tag (decimal: -0.35 is a 35% fall).
    universe : Universe, optional
        Needed for tag shocks.
    value : float, optional
        Portfolio value today (currency).
    floor : float, optional
        Survival check: the value after the shock must be at least ``floor``
        times today's (0.80 for 80%).
    """
    if not isinstance(weights, pd.Series):
        raise InputError("weights must be a pandas Series labelled by asset")
    r = shock_vector(shocks, list(weights.index), universe)
    contrib = weights.astype(float) * r
    ret = float(contrib.sum())
    after = None if value is None else float(value) * (1.0 + ret)
    survives = None
    if floor is not None and value is not None:
        survives = bool(after >= float(floor) * float(value) - 1e-9)
    return StressResult(name, r, contrib, ret, value, after, floor, survives)
