"""Transaction cost models for the rebalance optimizer.

Costs are charged on trades ``t`` (currency, positive buys, negative sells):

* proportional: ``rate_buy_i * max(t_i, 0) + rate_sell_i * max(-t_i, 0)``, rates in
  basis points, by asset, by tag or one default;
* market impact: ``impact * sigma_i * |t_i|^1.5 / sqrt(ADV_i)`` when average daily
  volumes are given (the square-root law, Almgren et al. 2005, "Direct estimation of
  equity market impact"; Grinold and Kahn 2000, ch. 16), ``sigma_i`` the daily
  volatility; convex, solved as a power cone;
* fixed: ``fixed`` currency per ticket (per traded asset); not convex, handled by the
  rebalance optimizer's two-stage method.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.universe import Universe
from optimizer.values import Value, read_only

Rate = float | Mapping[str, float] | pd.Series


def _rate_vector(rate: Rate | None, assets: pd.Index, universe: Universe | None, what: str):
    """Per-asset vector from a number or a mapping keyed by asset, tag or ``default``."""
    n = len(assets)
    if rate is None:
        return None
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        v = float(rate)
        if not math.isfinite(v) or v < 0:
            raise InputError(f"CostModel {what} must be a non-negative number, got {rate!r}")
        return np.full(n, v)
    if not isinstance(rate, Mapping | pd.Series):
        raise InputError(f"CostModel {what} must be a number or a mapping, got {rate!r}")
    items = dict(rate.items())
    out = np.full(n, np.nan)
    default = items.pop("default", None)
    # check every value before filling: a NaN given for an asset would otherwise be
    # taken for "not given" and silently replaced by the default
    for key, value in [*items.items(), *([("default", default)] if default is not None else [])]:
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v) or v < 0:
            raise InputError(
                f"CostModel {what} for {key!r} must be a non-negative number, got {value!r}"
            )
    known = set(map(str, assets))
    tags = set(universe.all_tags) if universe is not None else set()
    for key in items:
        if str(key) not in known and str(key) not in tags:
            raise InputError(
                f"CostModel {what} names {key!r}, which is neither an asset nor a tag"
                + ("" if universe is not None else " (pass universe= to use tags)")
            )
    # tags first, then assets override them
    for key, value in items.items():
        if str(key) in tags and str(key) not in known:
            for member in universe.members(str(key)):
                if member in known:
                    out[assets.get_loc(member)] = float(value)
    for key, value in items.items():
        if str(key) in known:
            out[assets.get_loc(str(key))] = float(value)
    if default is not None:
        out[np.isnan(out)] = float(default)
    if np.isnan(out).any():
        missing = [str(a) for a in assets[np.isnan(out)]]
        raise InputError(
            f"CostModel {what} gives no rate for {', '.join(missing)}: add them or a 'default'"
        )
    if (out < 0).any() or not np.isfinite(out).all():
        raise InputError(f"CostModel {what} must be non-negative and finite")
    return out


def _frozen_rates(value, what: str):
    """A mapping or Series of rates as a read-only Series copy keyed by str; others unchanged.

    Numbers (and invalid values, which :meth:`CostModel.resolve` reports with
    the asset at fault) are kept as given.
    """
    if not isinstance(value, Mapping | pd.Series):
        return value
    try:
        series = pd.Series(dict(value.items()), dtype=float)
    except (TypeError, ValueError):
        raise InputError(
            f"CostModel {what} must map asset ids or tags to numbers, got {value!r}"
        ) from None
    return read_only(series)


@dataclass(frozen=True, eq=False)
class CostModel(Value):
    """Transaction costs of a rebalance.

    Parameters
    ----------
    bps : float or mapping, default 0
        Proportional cost in basis points of the traded notional; a mapping is
        keyed by asset id, tag (with ``universe=``) or ``"default"``.
    buy_bps, sell_bps : float or mapping, optional
        Override ``bps`` for one side.
    fixed : float, default 0
        Currency per ticket (per traded asset).
    impact : float, default 0
        Coefficient of the market-impact term
        ``impact * sigma_i * |t_i|^1.5 / sqrt(adv_i)``.
    adv : mapping asset -> float, optional
        Average daily traded value (currency); needed for ``impact`` and
        participation limits.
    daily_volatility : mapping asset -> float, optional
        Daily return volatility (decimal) for the impact term; by default taken
        from the covariance as ``sqrt(C_ii / 252)``.

    Notes
    -----
    A cost model is a value: mappings and Series are held as read-only copies
    (editing the caller's object afterwards changes nothing), and two models
    of equal content compare equal and hash alike, so that compiled
    rebalances can be looked up by content.

    Examples
    --------
    >>> CostModel(bps=10, fixed=25.0)
    CostModel(bps=10, buy_bps=None, sell_bps=None, fixed=25.0, impact=0.0, adv=None, daily_volatility=None)
    """

    bps: Rate = 0.0
    buy_bps: Rate | None = None
    sell_bps: Rate | None = None
    fixed: float = 0.0
    impact: float = 0.0
    adv: Mapping[str, float] | pd.Series | None = None
    daily_volatility: Mapping[str, float] | pd.Series | None = None

    def __post_init__(self) -> None:
        for what in ("bps", "buy_bps", "sell_bps", "adv", "daily_volatility"):
            object.__setattr__(self, what, _frozen_rates(getattr(self, what), what))
        for what in ("fixed", "impact"):
            v = getattr(self, what)
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
                or v < 0
            ):
                raise InputError(f"CostModel {what} must be a non-negative number, got {v!r}")
        if self.impact > 0 and self.adv is None:
            raise InputError("CostModel impact needs adv= (average daily traded value per asset)")

    def resolve(
        self, assets: pd.Index, universe: Universe | None, cov_diag: np.ndarray | None
    ) -> ResolvedCosts:
        """Per-asset cost vectors for ``assets`` (rates as fractions, not bps)."""
        base = _rate_vector(self.bps, assets, universe, "bps")
        buy = _rate_vector(self.buy_bps, assets, universe, "buy_bps")
        sell = _rate_vector(self.sell_bps, assets, universe, "sell_bps")
        buy = (buy if buy is not None else base) / 1e4
        sell = (sell if sell is not None else base) / 1e4
        adv = None
        impact = np.zeros(len(assets))
        if self.adv is not None:
            adv = _positive(self.adv, assets, "adv")
        if self.impact > 0:
            if self.daily_volatility is not None:
                sigma = _positive(self.daily_volatility, assets, "daily_volatility")
            elif cov_diag is not None:
                sigma = np.sqrt(np.clip(cov_diag, 0, None) / 252.0)
            else:
                raise InputError("CostModel impact needs daily_volatility= or a covariance")
            impact = self.impact * sigma / np.sqrt(adv)
        return ResolvedCosts(buy, sell, impact, float(self.fixed), adv)


def _positive(values, assets: pd.Index, what: str) -> np.ndarray:
    s = pd.Series(values, dtype=float) if not isinstance(values, pd.Series) else values
    missing = assets.difference(s.index.astype(str))
    if len(missing):
        raise InputError(f"CostModel {what} is missing for {', '.join(map(str, missing))}")
    v = s.loc[assets].to_numpy(dtype=float)
    bad = assets[~(np.isfinite(v) & (v > 0))]
    if len(bad):
        raise InputError(f"CostModel {what} must be positive for {', '.join(map(str, bad))}")
    return v


@dataclass(frozen=True, eq=False)
class ResolvedCosts:
    """Cost vectors in the optimizer's units.

    ``buy``/``sell``: fractions of traded notional; ``impact``: currency cost is
    ``impact_i * |t_i|^1.5`` for a trade of ``t_i`` currency; ``fixed``: currency
    per ticket; ``adv``: average daily traded value or None.
    """

    buy: np.ndarray
    sell: np.ndarray
    impact: np.ndarray
    fixed: float
    adv: np.ndarray | None

    def breakdown(self, trades: np.ndarray, tol: float = 1e-9) -> dict[str, np.ndarray]:
        """Cost of each trade (currency) by component: proportional, impact, fixed."""
        t = np.asarray(trades, dtype=float)
        bought = np.maximum(t, 0.0)
        size = np.abs(t)
        prop = self.buy * bought + self.sell * (bought - t)
        imp = self.impact * size * np.sqrt(size)
        fixed = np.where(size > tol, self.fixed, 0.0)
        return {"proportional": prop, "impact": imp, "fixed": fixed}
