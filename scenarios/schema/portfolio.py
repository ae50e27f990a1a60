"""Who the portfolio is and what it holds.

The sections ``[portfolio]``, ``[[assets]]`` (the universe), ``[policy]`` and ``[holdings]``.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from models import profiles
from optimizer.universe import Universe
from scenarios.loader import Table, frozen_mapping, join
from scenarios.schema.common import SHORTS, Names, by_asset, check_sum, listing
from scenarios.schema.tax import read_lots, read_recent

_PORTFOLIO = ("name", "id", "value", "currency", "as_of")
_ASSET = ("id", "name", "tags")
_HOLDINGS = (
    "values",
    "quantities",
    "prices",
    "weights",
    "cash",
    "lots",
    "lots_file",
    "recent",
    "recent_file",
)
_POLICY = ("weights", "profile", "horizon")


@dataclass(frozen=True)
class Portfolio:
    """Who the portfolio is.

    ``value`` is the total in ``currency``: as given, or the holdings' total
    (positions plus cash) when ``[portfolio]`` has no ``value``.
    """

    name: str
    id: str
    value: float
    currency: str = "USD"
    as_of: dt.date | None = None


@dataclass(frozen=True, eq=False)
class Holdings:
    """The current portfolio.

    ``values``: market value by asset (currency), every asset of the
    universe (0 when not held). ``cash``: currency outside the assets.
    ``quantities`` and ``prices``: as given (``values`` is their product when
    quantities are given); ``prices`` names only the assets priced.
    ``lots`` (:class:`~optimizer.rebalance.taxlots.TaxLots`) and ``recent``
    (:class:`~optimizer.rebalance.taxlots.RecentTrades`): the tax lots and the
    trades before this one (:mod:`scenarios.schema.tax`), None when not given.
    """

    values: pd.Series
    cash: float = 0.0
    quantities: pd.Series | None = None
    prices: pd.Series | None = None
    lots: Any = None
    recent: Any = None

    @property
    def total(self) -> float:
        """Positions plus cash (currency)."""
        return float(self.values.sum()) + self.cash

    @property
    def weights(self) -> pd.Series:
        """Each asset's value over :attr:`total` (these sum to 1 only without cash).

        All 0 for an empty account (nothing held yet, a deposit to invest).
        """
        if self.total == 0:
            return self.values * 0.0
        return self.values / self.total


def _slug(name: str) -> str:
    """An id from a name: ASCII, lower case, words joined by '-'."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def read_portfolio(top: Table) -> dict[str, Any]:
    """The ``[portfolio]`` keys (``value`` None when not given: the holdings give it)."""
    if "portfolio" not in top:
        raise top.error("portfolio", "missing (required): add a [portfolio] table with a name")
    t = top.table("portfolio", _PORTFOLIO)
    name = t.string("name")
    pid = t.string("id", None)
    if pid is None:
        pid = _slug(name)
        if not pid:
            raise t.error("id", f"missing, and no id can be made from the name {name!r}: give one")
    currency = t.string("currency", "USD")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise t.error(
            "currency", f"expected a 3-letter ISO 4217 code such as 'USD', got {currency!r}"
        )
    return {
        "name": name,
        "id": pid,
        "value": t.number("value", None, low=0, strict_low=True),
        "currency": currency,
        "as_of": t.date("as_of", None),
    }


def read_assets(top: Table) -> tuple[Universe, Mapping[str, str]]:
    """The universe of ``[[assets]]`` (ids unique, with their tags) and display names."""
    if "assets" not in top:
        raise top.error("assets", "missing (required): add one [[assets]] table per asset")
    tables = top.tables("assets", _ASSET)
    if not tables:
        raise top.error("assets", "is empty: add one [[assets]] table per asset")
    ids: dict[str, int] = {}
    names: dict[str, str] = {}
    tags: dict[str, list[str]] = {}
    for i, t in enumerate(tables):
        aid = t.string("id")
        if aid in ids:
            raise t.error("id", f"duplicate asset id {aid!r} (also assets[{ids[aid]}])")
        if aid == "default":
            raise t.error("id", "'default' is reserved (cost tables use it): rename the asset")
        ids[aid] = i
        names[aid] = t.string("name", aid)
        tags[aid] = t.strings("tags", [])
    with top.r.wrap("assets"):
        universe = Universe(assets=list(ids), tags=tags)
    return universe, frozen_mapping(names)


def read_policy(top: Table, names: Names, long_only: bool) -> pd.Series | None:
    """The ``[policy]`` weights, every asset (0 when not named), or None.

    Either ``weights`` (by asset, summing to 1) or an investor profile:
    ``profile`` ("conservative" | "moderate" | "aggressive") with ``horizon``
    (years, > 0), the weights of :func:`models.profiles.policy` (the profile's
    base allocation adjusted for the horizon); the profile's asset classes
    with a weight must be asset ids of ``[[assets]]``.
    """
    t = top.table("policy", _POLICY)
    if t is None:
        return None
    if "weights" in t:
        t.not_with(("profile", "horizon"), "with policy.weights (give weights or a profile)")
        named = by_asset(t, "weights", names, every=False)
        if long_only and (named < 0).any():
            bad = named.index[named < 0][0]
            raise t.r.error(join(t.path("weights"), bad), f"negative weight {named[bad]:g}{SHORTS}")
        check_sum(t, "weights", float(named.sum()), "policy weights")
    elif "profile" in t:
        named = _profile_policy(t, names)
    elif "horizon" in t:
        raise t.error("horizon", 'needs policy.profile (e.g. profile = "moderate")')
    else:
        raise t.error(
            None,
            "give weights (by asset) or a profile with a horizon, e.g. "
            'profile = "moderate" and horizon = 10 (years)',
        )
    return named.reindex(names.assets, fill_value=0.0).rename("policy")


def _profile_policy(t: Table, names: Names) -> pd.Series:
    """``policy.profile`` and ``policy.horizon`` as weights by asset (profile order)."""
    name = t.string("profile", choices=tuple(profiles.PROFILES))
    if "horizon" not in t:
        raise t.error(
            "horizon",
            f"missing (required with profile {name!r}): the investment horizon in years, "
            "e.g. horizon = 10",
        )
    years = t.number("horizon", low=0, strict_low=True, hint=" (years)")
    with t.r.wrap(t.where):
        weights = profiles.policy(name, years)
    held = weights[weights > 0]
    absent = [c for c in held.index if c not in names.asset_set]
    if absent:
        raise t.error(
            "profile",
            f"{name!r} allocates to {listing(absent)}, not assets of [[assets]]: add "
            f"[[assets]] with these ids (the profiles' asset classes are "
            f"{', '.join(profiles.ASSET_CLASSES)}) or give policy.weights instead",
        )
    return held


def read_holdings(
    top: Table, names: Names, value: float | None, long_only: bool
) -> Holdings | None:
    """The ``[holdings]`` section in any of its three forms, or None."""
    t = top.table("holdings", _HOLDINGS)
    if t is None:
        return None
    forms = [k for k in ("values", "quantities", "weights") if k in t]
    if len(forms) != 1:
        raise t.error(
            None,
            "give exactly one of values (currency by asset), quantities (with prices) or "
            f"weights (with portfolio.value); got {', '.join(forms) or 'none'}",
        )
    form = forms[0]
    cash = t.number("cash", 0.0, low=0.0 if long_only else None, hint=SHORTS if long_only else "")
    prices = by_asset(t, "prices", names, every=False, default=None, low=0, strict_low=True)
    quantities = None
    if form == "values":
        values = by_asset(t, "values", names, every=False)
    elif form == "quantities":
        quantities = by_asset(t, "quantities", names, every=False)
        unpriced = [a for a in quantities.index if prices is None or a not in prices.index]
        if unpriced:
            raise t.error("prices", f"missing for {listing(unpriced)}: quantities need prices")
        values = quantities * prices.reindex(quantities.index)
    else:
        if value is None:
            raise t.error("weights", "needs portfolio.value to turn weights into values")
        weights = by_asset(t, "weights", names, every=False)
        check_sum(t, "weights", float(weights.sum()) + cash / value, "holdings weights plus cash")
        values = weights * value
    if long_only and (values < 0).any():
        bad = values.index[values < 0][0]
        raise t.r.error(join(t.path(form), bad), f"negative holding {values[bad]:g}{SHORTS}")
    full = values.reindex(names.assets, fill_value=0.0).rename("value")
    lots = read_lots(t, names, full, quantities, prices)
    recent = read_recent(t, names)
    if recent is not None and lots is None:
        raise t.error(
            "recent_file" if "recent_file" in t else "recent",
            "needs tax lots (holdings.lots or holdings.lots_file): recent trades only matter "
            "to a tax-aware rebalance",
        )
    holdings = Holdings(
        values=full, cash=cash, quantities=quantities, prices=prices, lots=lots, recent=recent
    )
    if holdings.total < 0:
        raise t.error(form, f"the holdings total {holdings.total:g}: must not be negative")
    # a total of 0 is an empty account: [rebalance] then needs a deposit (read_rebalance)
    return holdings
