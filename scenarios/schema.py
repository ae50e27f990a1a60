"""Scenario files: the schema, the frozen objects the engine reads, and :func:`load_scenario`.

A scenario is one TOML file (read with the standard library's ``tomllib``)
that says who the portfolio is, what it may hold, how to estimate risk and
return, which model allocates, under which policy constraints, and what to
rebalance, stress and check. :func:`load_scenario` validates all of it before
any work is done and returns a frozen :class:`Scenario`; anything wrong is an
:class:`~optimizer.errors.InputError` naming the file, the key path and what
was expected, e.g.::

    riverside.toml: constraints.group[1].max: must be <= 1, got 70 (decimals: 0.05 is 5%)
    riverside.toml: estimates.expected_retrun: unknown key (did you mean 'expected_return'?)
    riverside.toml: invalid TOML: Expected '=' after a key in a key/value pair (at line 12, column 7)

Array indices in key paths count from 0 (``constraints.group[0]`` is the
first ``[[constraints.group]]``). Relative file paths in a scenario are
relative to the scenario file's folder. Units: weights, returns, volatilities
and rates are decimals (0.05 is 5%), annualized; ``value``, holdings and cash
are in the portfolio's currency; costs are in basis points (``bps``) or
currency (``fixed_per_trade``).

The schema, section by section (``?`` marks an optional key; defaults in
brackets)::

    [portfolio]             name, id? [slug of name], value? (> 0; required unless
                            [holdings] gives it), currency? ["USD"], as_of? (date)
    [[assets]]              id, name? [id], tags? [[]]          (at least one; ids unique)
    [estimates]             source = "cma" | "prices" | "returns", risk_free_rate? [0]
      cma:                  expected_return, volatility (tables by asset, every asset),
                            correlation (CSV file, inline matrix in [[assets]] order, or
                            pairs { A = { B = 0.8 } })
      prices / returns:     file (CSV, dates x asset ids; extra columns ignored), start?, end?,
                            missing? ["raise"] (prices only), covariance? ["ledoit_wolf"],
                            covariance_options? [{}], expected_returns? ["historical_mean"],
                            expected_returns_options? [{}]
    [model]                 kind? ["mean_variance"], objective? ["max_sharpe"] (mean_variance,
                            black_litterman), target_return, target_volatility, risk_aversion
                            (as the objective needs), tau? [0.05], prior? ["policy"],
                            [[model.views]] (black_litterman), budgets? (risk_parity),
                            alpha? [0.95] and target_return? (min_cvar)
    [policy]                weights (by asset; sum to 1; assets not named are 0)
    [constraints]           long_only? [true], bounds?, [[constraints.group|band|exposure|
                            tracking_error|turnover|leverage|linear]]
    [tactical]              indicators, band, offset (by tag, sums to 1), [[tactical.rules]]
    [holdings]              values | quantities (+ prices) | weights (+ portfolio.value); cash? [0]
    [costs]                 bps?, buy_bps?, sell_bps?, fixed_per_trade?, impact?, adv?
    [rebalance]             tracking_weight?, threshold?, min_trade?, lot_size?, untradeable?,
                            cash_flow?, max_turnover?, no_trade_band?  (needs [holdings])
    [[stress]]              name, shocks (by tag or asset id; an asset's own shock wins)
    [validation]            return_target?, spending_rate?, inflation?, survival_floor?,
                            esg_floor?
    [backtest]              policies (array of tables, each with kind = "calendar" (every? [1]) |
                            "threshold" (band? [0.05]: a number or a table by asset, every
                            asset; relative? [false]) | "hybrid" (every? [3], band? [0.05]) |
                            "buy_and_hold" | "optimized" (every? [1], tracking_weight? [100]);
                            name? [from the kind and settings]; names distinct),
                            initial_value? [portfolio.value], start?, end? (dates),
                            spending_rate? and spending_window? [12] (periods), drawdown?
                            { threshold, recover? [0.05], defensive (weights by asset, sum
                            to 1) }, target? ["model": the run's target weights, held
                            fixed; "policy": the [policy] weights]. Needs a returns
                            history: [estimates] source = "prices" or "returns"; the
                            backtest walks over its returns (cut to start..end).
    [montecarlo]            years? [30], paths? [10_000], seed?, distribution? ["normal"] |
                            "student_t" (dof? [5], > 2) | "bootstrap" (needs source "prices"
                            or "returns"; resamples their calendar years), spending_rule?
                            ["yale"] | "trailing", spending_rate? [validation.spending_rate,
                            else 0.04], smoothing? [0.7] (yale), smoothing_window? [3]
                            (trailing, years), inflation? [validation.inflation, else
                            0.025], drawdown? [0.25]. Simulated on the run's target
                            weights with the estimates' mu and covariance.
"""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models import covariance as _covariance
from models import expected_returns as _expected_returns
from models import returns as _returns
from models.black_litterman import View, views_matrix
from models.estimates import Estimates
from optimizer import constraints as C
from optimizer.costs import CostModel
from optimizer.errors import InputError
from optimizer.universe import Universe
from scenarios.backtest import (
    BuyAndHold,
    Calendar,
    DrawdownRule,
    Hybrid,
    Optimized,
    Policy,
    SpendingRule,
    Threshold,
)
from scenarios.loader import (
    MISSING,
    Reader,
    Table,
    check_number,
    closest,
    frozen_mapping,
    identifier,
    join,
    type_name,
)

__all__ = [
    "BacktestSpec",
    "EstimatesSpec",
    "MonteCarloSpec",
    "Holdings",
    "ModelSpec",
    "Portfolio",
    "Scenario",
    "Tactical",
    "TacticalRule",
    "load_scenario",
]

#: Weights (policy, holdings weights, tactical offsets) must sum to 1 within this.
WEIGHT_TOL = 1e-6

SOURCES = ("cma", "prices", "returns")
MODEL_KINDS = ("mean_variance", "black_litterman", "risk_parity", "min_cvar", "policy")
OBJECTIVES = ("max_sharpe", "min_variance", "target_return", "target_risk", "max_utility")
#: The model key each objective needs.
OBJECTIVE_PARAM = {
    "max_sharpe": None,
    "min_variance": None,
    "target_return": "target_return",
    "target_risk": "target_volatility",
    "max_utility": "risk_aversion",
}
PRIORS = ("policy", "equal")
COVARIANCE_ESTIMATORS = ("sample", "ewma", "ledoit_wolf", "oas", "nonlinear_shrinkage")
MEAN_ESTIMATORS = ("historical_mean", "ewma_mean", "shrunk_mean")
#: Names the engine gives constraints it adds itself: a file may not use them.
RESERVED_NAMES = ("budget", "target return", "target volatility")

_PCT = " (decimals: 0.05 is 5%)"
_SHORTS = "; set constraints.long_only = false to allow short positions"

_TOP = (
    "portfolio",
    "assets",
    "estimates",
    "model",
    "policy",
    "constraints",
    "tactical",
    "holdings",
    "costs",
    "rebalance",
    "stress",
    "validation",
    "backtest",
    "montecarlo",
)
_PORTFOLIO = ("name", "id", "value", "currency", "as_of")
_ASSET = ("id", "name", "tags")
_EST_COMMON = ("source", "risk_free_rate")
_EST_CMA = ("expected_return", "volatility", "correlation")
_EST_DATA = (
    "file",
    "start",
    "end",
    "missing",
    "covariance",
    "covariance_options",
    "expected_returns",
    "expected_returns_options",
)
_MODEL = (
    "kind",
    "objective",
    "target_return",
    "target_volatility",
    "risk_aversion",
    "tau",
    "prior",
    "views",
    "budgets",
    "alpha",
)
_VIEW = ("picks", "value", "confidence", "name")
_CONSTRAINTS = (
    "long_only",
    "bounds",
    "group",
    "band",
    "exposure",
    "tracking_error",
    "turnover",
    "leverage",
    "linear",
)
_TACTICAL = ("indicators", "band", "offset", "rules")
_RULE = ("name", "when", "equity")
_HOLDINGS = ("values", "quantities", "prices", "weights", "cash")
_COSTS = ("bps", "buy_bps", "sell_bps", "fixed_per_trade", "impact", "adv")
_REBALANCE = (
    "tracking_weight",
    "threshold",
    "min_trade",
    "lot_size",
    "untradeable",
    "cash_flow",
    "max_turnover",
    "no_trade_band",
)
_STRESS = ("name", "shocks")
_VALIDATION = ("return_target", "spending_rate", "inflation", "survival_floor", "esg_floor")
_BACKTEST = (
    "policies",
    "initial_value",
    "start",
    "end",
    "spending_rate",
    "spending_window",
    "drawdown",
    "target",
)
#: Keys of a backtest policy table, and the ones each kind takes (besides kind and name).
_BT_POLICY = ("kind", "name", "every", "band", "relative", "tracking_weight")
POLICY_KINDS: dict[str, tuple[str, ...]] = {
    "calendar": ("every",),
    "threshold": ("band", "relative"),
    "hybrid": ("every", "band"),
    "buy_and_hold": (),
    "optimized": ("every", "tracking_weight"),
}
_BT_DRAWDOWN = ("threshold", "recover", "defensive")
BACKTEST_TARGETS = ("model", "policy")
_MONTECARLO = (
    "years",
    "paths",
    "seed",
    "distribution",
    "dof",
    "spending_rule",
    "spending_rate",
    "smoothing",
    "smoothing_window",
    "inflation",
    "drawdown",
)
MC_DISTRIBUTIONS = ("normal", "student_t", "bootstrap")
MC_SPENDING_RULES = ("yale", "trailing")


# ============================================================================= the result


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
class EstimatesSpec:
    """How to estimate expected returns and covariance, with the data already parsed.

    ``source="cma"``: ``expected_return`` and ``volatility`` (Series by asset,
    annualized decimals) and ``correlation`` (DataFrame, assets x assets, unit
    diagonal, symmetric; positive semidefiniteness is left to
    :func:`models.covariance.from_cma`, which repairs with a warning).

    ``source="prices"`` / ``"returns"``: ``data`` is the file's table (dates x
    assets, universe order, cut to ``start``..``end``), ``returns`` the
    periodic returns (``models.returns.from_prices(data, missing=missing)``
    for prices, ``data`` itself for returns), and the estimator names and
    keyword options, checked against the estimators' signatures.

    Every Series and DataFrame is labelled by asset id in the universe's order.
    """

    source: str
    risk_free_rate: float = 0.0
    expected_return: pd.Series | None = None
    volatility: pd.Series | None = None
    correlation: pd.DataFrame | None = None
    file: Path | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    missing: str | None = None
    data: pd.DataFrame | None = None
    returns: pd.DataFrame | None = None
    covariance: str | None = None
    covariance_options: Mapping[str, Any] = field(default_factory=lambda: frozen_mapping({}))
    expected_returns: str | None = None
    expected_returns_options: Mapping[str, Any] = field(default_factory=lambda: frozen_mapping({}))

    def cov(self) -> pd.DataFrame:
        """The annualized covariance (runs the estimator, or ``from_cma``)."""
        if self.source == "cma":
            return _covariance.from_cma(self.volatility, self.correlation)
        fn = getattr(_covariance, str(self.covariance))
        return fn(self.returns, **self.covariance_options)

    def mu(self) -> pd.Series:
        """The annualized expected returns (runs the estimator, or the CMA figures)."""
        if self.source == "cma":
            return self.expected_return.copy()
        fn = getattr(_expected_returns, str(self.expected_returns))
        return fn(self.returns, **self.expected_returns_options)

    def build(self) -> Estimates:
        """:class:`models.estimates.Estimates` from :meth:`mu` and :meth:`cov`."""
        if self.source == "cma":
            return Estimates(mu=self.mu(), cov=self.cov(), source="cma")
        idx = self.returns.index
        what = (
            f"{self.covariance}/{self.expected_returns}({self.source} {self.file.name} "
            f"{idx[0].date()}..{idx[-1].date()})"
        )
        return Estimates(mu=self.mu(), cov=self.cov(), source=what)


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """The allocation model.

    ``kind``: mean_variance | black_litterman | risk_parity | min_cvar | policy.
    ``objective``: the mean-variance objective (mean_variance and
    black_litterman only, else None). ``params``: the model keys that apply,
    with defaults filled in: ``target_return``, ``target_volatility`` or
    ``risk_aversion`` as the objective needs; for black_litterman also
    ``tau``, ``prior`` ("policy" | "equal") and ``risk_aversion``; for
    risk_parity ``budgets`` (Series by asset, or None for equal risk); for
    min_cvar ``alpha`` and, when given, ``target_return``. ``views``: the
    Black-Litterman views (may name tags: pass ``universe=``).
    """

    kind: str
    objective: str | None
    params: Mapping[str, Any]
    views: tuple[View, ...] = ()


@dataclass(frozen=True, eq=False)
class Holdings:
    """The current portfolio.

    ``values``: market value by asset (currency), every asset of the
    universe (0 when not held). ``cash``: currency outside the assets.
    ``quantities`` and ``prices``: as given (``values`` is their product when
    quantities are given); ``prices`` names only the assets priced.
    """

    values: pd.Series
    cash: float = 0.0
    quantities: pd.Series | None = None
    prices: pd.Series | None = None

    @property
    def total(self) -> float:
        """Positions plus cash (currency)."""
        return float(self.values.sum()) + self.cash

    @property
    def weights(self) -> pd.Series:
        """Each asset's value over :attr:`total` (these sum to 1 only without cash)."""
        return self.values / self.total


@dataclass(frozen=True)
class TacticalRule:
    """When ``when`` (an expression over indicator names) holds, tilt equity by ``equity``."""

    name: str
    when: str
    equity: float


@dataclass(frozen=True)
class Tactical:
    """The tactical overlay, validated (applied by the overlay module).

    ``indicators``: name -> value; ``band``: cap on the total equity tilt
    (decimal); ``offset``: tag -> share of the equity cut it receives (sums
    to 1); ``rules``: the rules in file order. Every rule's ``when`` parses as
    a Python expression using only indicator names, numbers, ``+ - * /``,
    comparisons and ``and``/``or``.
    """

    indicators: Mapping[str, float]
    band: float
    offset: Mapping[str, float]
    rules: tuple[TacticalRule, ...]


@dataclass(frozen=True, eq=False)
class BacktestSpec:
    """The ``[backtest]`` section, validated: arguments for :func:`scenarios.backtest.backtest`.

    ``policies``: policy objects (``Calendar``, ``Threshold``, ``Hybrid``,
    ``BuyAndHold``, ``Optimized``) in file order, with distinct names.
    ``initial_value``: currency invested at the first date. ``start`` /
    ``end``: the window of ``estimates.returns`` walked over (None: all of
    it). ``spending``: a :class:`~scenarios.backtest.SpendingRule` or None.
    ``drawdown``: a :class:`~scenarios.backtest.DrawdownRule` (defensive
    weights by asset, every asset) or None. ``target``: "model" (the run's
    target weights, held fixed) or "policy" (the ``[policy]`` weights).
    """

    policies: tuple[Policy, ...]
    initial_value: float
    start: dt.date | None = None
    end: dt.date | None = None
    spending: SpendingRule | None = None
    drawdown: DrawdownRule | None = None
    target: str = "model"


@dataclass(frozen=True)
class MonteCarloSpec:
    """The ``[montecarlo]`` section, validated: keywords of :func:`scenarios.montecarlo.simulate`.

    ``spending_rate`` and ``inflation`` default to ``[validation]``'s when
    given there (else 0.04 and 0.025). ``dof`` applies to ``student_t``,
    ``smoothing`` to the ``yale`` rule, ``smoothing_window`` (years) to
    ``trailing``.
    """

    years: int = 30
    paths: int = 10_000
    seed: int | None = None
    distribution: str = "normal"
    dof: float = 5.0
    spending_rule: str = "yale"
    spending_rate: float = 0.04
    smoothing: float = 0.7
    smoothing_window: int = 3
    inflation: float = 0.025
    drawdown: float = 0.25

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`scenarios.montecarlo.simulate` (not weights, mu, cov)."""
        return {
            "years": self.years,
            "paths": self.paths,
            "seed": self.seed,
            "distribution": self.distribution,
            "dof": self.dof,
            "spending_rule": self.spending_rule,
            "spending_rate": self.spending_rate,
            "smoothing": self.smoothing,
            "smoothing_window": self.smoothing_window,
            "inflation": self.inflation,
            "drawdown": self.drawdown,
        }


@dataclass(frozen=True, eq=False)
class Scenario:
    """A validated scenario file, ready for the engine.

    Attributes
    ----------
    path : pathlib.Path
        The file, absolute.
    sha256 : str
        Hex SHA-256 of the file's bytes (to record which file a result came from).
    portfolio : Portfolio
    universe : optimizer.Universe
        Asset ids in ``[[assets]]`` order, with their tags.
    asset_names : mapping asset id -> display name
    estimates : EstimatesSpec
    model : ModelSpec
    policy : pandas.Series or None
        Strategic weights by asset (every asset, 0 when not named), summing to 1.
    constraints : tuple
        :mod:`optimizer.constraints` objects in file order (long-only, bounds,
        group, band, exposure, tracking_error, turnover, leverage, linear),
        with the file's names; distinct names. ``Budget(1)`` is not included:
        the allocation functions add it.
    tactical : Tactical or None
    holdings : Holdings or None
    costs : optimizer.costs.CostModel or None
    rebalance : mapping
        Keyword arguments for :func:`optimizer.rebalance.rebalance` beyond
        ``holdings``, ``target``, ``cov``, ``costs``, ``constraints`` and
        ``universe``: the ``[rebalance]`` options given (``no_trade_band`` as
        ``no_trade_bands``, ``untradeable`` with tags expanded to asset ids),
        ``cash_flow`` (holdings cash plus ``[rebalance].cash_flow``: cash is
        invested), ``prices`` when the holdings give them, ``as_of``,
        ``portfolio_id`` and ``currency``. Empty without ``[holdings]``.
    rebalance_threshold : float or None
        Trade only when some weight drifts more than this from target.
    stress : tuple of (name, shocks)
        ``shocks`` maps tag or asset id to a return (decimal, > -1); an asset's
        own shock wins over its tags'. Checked: no asset without its own shock
        carries two shocked tags.
    validation : mapping
        The ``[validation]`` figures given; ``return_target`` is
        ``spending_rate + inflation`` when both are given and it is not.
    backtest : BacktestSpec or None
        The ``[backtest]`` section (only with a returns history).
    montecarlo : MonteCarloSpec or None
        The ``[montecarlo]`` section.
    """

    path: Path
    sha256: str
    portfolio: Portfolio
    universe: Universe
    asset_names: Mapping[str, str]
    estimates: EstimatesSpec
    model: ModelSpec
    policy: pd.Series | None
    constraints: tuple
    tactical: Tactical | None
    holdings: Holdings | None
    costs: CostModel | None
    rebalance: Mapping[str, Any]
    rebalance_threshold: float | None
    stress: tuple[tuple[str, Mapping[str, float]], ...]
    validation: Mapping[str, float]
    backtest: BacktestSpec | None = None
    montecarlo: MonteCarloSpec | None = None

    @property
    def assets(self) -> pd.Index:
        """Asset ids, in ``[[assets]]`` order."""
        return self.universe.index


# ============================================================================= names


class _Names:
    """Asset ids and tags of the universe, for checking references with suggestions."""

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self.assets = list(universe.assets)
        self.asset_set = set(self.assets)
        self.tags = set(universe.all_tags)

    def asset(self, r: Reader, where: str, key: object) -> str:
        if key not in self.asset_set:
            raise r.error(where, f"unknown asset {key!r}{closest(str(key), self.assets)}")
        return str(key)

    def tag(self, r: Reader, where: str, key: object) -> str:
        if key not in self.tags:
            hint = closest(str(key), self.tags)
            if key in self.asset_set:
                hint = f" ({key!r} is an asset id, not a tag)"
            known = ", ".join(sorted(self.tags)) or "none"
            raise r.error(where, f"unknown tag {key!r}{hint}; tags in [[assets]]: {known}")
        return str(key)

    def asset_or_tag(self, r: Reader, where: str, key: object) -> str:
        if key not in self.asset_set and key not in self.tags:
            hint = closest(str(key), self.asset_set | self.tags)
            raise r.error(where, f"{key!r} is neither an asset id nor a tag{hint}")
        return str(key)

    def members(self, key: str) -> list[str]:
        """An asset id itself, or a tag's members."""
        return [key] if key in self.asset_set else self.universe.members(key)


def _by_asset(
    t: Table,
    key: str,
    names: _Names,
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
            raise t.error(key, f"missing for {_list(missing)}: every asset needs a value")
    order = [a for a in names.assets if a in values]
    return pd.Series([values[a] for a in order], index=pd.Index(order, dtype=object), dtype=float)


def _list(items: Sequence[str], limit: int = 8) -> str:
    text = ", ".join(map(str, items[:limit]))
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _check_sum(t: Table, key: str, total: float, what: str) -> None:
    if abs(total - 1.0) > WEIGHT_TOL:
        raise t.error(
            key,
            f"{what} sum to {total:.10g}, not 1 (off by {total - 1:+.3g}; tolerance "
            f"{WEIGHT_TOL:g}); weights are decimals of the portfolio value",
        )


# ============================================================================= sections


def _slug(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _portfolio(top: Table) -> dict[str, Any]:
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


def _assets(top: Table) -> tuple[Universe, Mapping[str, str]]:
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


def _policy(top: Table, names: _Names, long_only: bool) -> pd.Series | None:
    t = top.table("policy", ("weights",))
    if t is None:
        return None
    named = _by_asset(t, "weights", names, every=False)
    if long_only and (named < 0).any():
        bad = named.index[named < 0][0]
        raise t.r.error(join(t.path("weights"), bad), f"negative weight {named[bad]:g}{_SHORTS}")
    _check_sum(t, "weights", float(named.sum()), "policy weights")
    return named.reindex(names.assets, fill_value=0.0).rename("policy")


def _holdings(top: Table, names: _Names, value: float | None, long_only: bool) -> Holdings | None:
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
    cash = t.number("cash", 0.0, low=0.0 if long_only else None, hint=_SHORTS if long_only else "")
    prices = _by_asset(t, "prices", names, every=False, default=None, low=0, strict_low=True)
    quantities = None
    if form == "values":
        values = _by_asset(t, "values", names, every=False)
    elif form == "quantities":
        quantities = _by_asset(t, "quantities", names, every=False)
        unpriced = [a for a in quantities.index if prices is None or a not in prices.index]
        if unpriced:
            raise t.error("prices", f"missing for {_list(unpriced)}: quantities need prices")
        values = quantities * prices.reindex(quantities.index)
    else:
        if value is None:
            raise t.error("weights", "needs portfolio.value to turn weights into values")
        weights = _by_asset(t, "weights", names, every=False)
        _check_sum(t, "weights", float(weights.sum()) + cash / value, "holdings weights plus cash")
        values = weights * value
    if long_only and (values < 0).any():
        bad = values.index[values < 0][0]
        raise t.r.error(join(t.path(form), bad), f"negative holding {values[bad]:g}{_SHORTS}")
    full = values.reindex(names.assets, fill_value=0.0).rename("value")
    holdings = Holdings(values=full, cash=cash, quantities=quantities, prices=prices)
    if not holdings.total > 0:
        raise t.error(form, f"the holdings total {holdings.total:g}: must be positive")
    return holdings


def _estimates(top: Table, names: _Names) -> EstimatesSpec:
    if "estimates" not in top:
        raise top.error("estimates", "missing (required): add an [estimates] table with a source")
    t = top.table("estimates", _EST_COMMON + _EST_CMA + _EST_DATA)
    source = t.string("source", choices=SOURCES)
    rf = t.number("risk_free_rate", 0.0, low=-1, high=1, hint=_PCT)
    if source == "cma":
        t.not_with(_EST_DATA, "with source = 'cma'")
        mu = _by_asset(t, "expected_return", names, every=True, low=-1, high=1, hint=_PCT)
        vol = _by_asset(
            t, "volatility", names, every=True, low=0, high=2, strict_low=True, hint=_PCT
        )
        corr = _correlation(t, names)
        return EstimatesSpec(
            source="cma",
            risk_free_rate=rf,
            expected_return=mu.rename("expected_return"),
            volatility=vol.rename("volatility"),
            correlation=corr,
        )
    t.not_with(_EST_CMA, f"with source = {source!r} (only with source = 'cma')")
    if source == "returns":
        t.not_with(("missing",), "with source = 'returns' (only with source = 'prices')")
    missing = t.string("missing", "raise", choices=_returns.MISSING) if source == "prices" else None
    cov_name = t.string("covariance", "ledoit_wolf", choices=COVARIANCE_ESTIMATORS)
    mean_name = t.string("expected_returns", "historical_mean", choices=MEAN_ESTIMATORS)
    cov_opts = _options(t, "covariance_options", getattr(_covariance, cov_name), cov_name)
    mean_opts = _options(
        t, "expected_returns_options", getattr(_expected_returns, mean_name), mean_name
    )
    path = t.r.file(t.path("file"), t.raw("file"))
    start, end = t.date("start", None), t.date("end", None)
    if start is not None and end is not None and start > end:
        raise t.error("end", f"{end} is before start {start}")
    data, rets = _data_file(t, names, source, path, start, end, missing)
    if "periods_per_year" not in cov_opts or "periods_per_year" not in mean_opts:
        try:
            _returns.periods_per_year(rets)
        except InputError as exc:
            raise t.error(
                "file",
                f"{exc} (as estimates.covariance_options and "
                "estimates.expected_returns_options = { periods_per_year = ... })",
            ) from None
    return EstimatesSpec(
        source=source,
        risk_free_rate=rf,
        file=path,
        start=start,
        end=end,
        missing=missing,
        data=data,
        returns=rets,
        covariance=cov_name,
        covariance_options=frozen_mapping(cov_opts),
        expected_returns=mean_name,
        expected_returns_options=frozen_mapping(mean_opts),
    )


def _data_file(
    t: Table,
    names: _Names,
    source: str,
    path: Path,
    start: dt.date | None,
    end: dt.date | None,
    missing: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    where = t.path("file")
    raw = t.r.read_csv(where, path, dates=True)
    absent = [a for a in names.assets if a not in raw.columns]
    if absent:
        extra = [c for c in raw.columns if c not in names.asset_set]
        hint = closest(absent[0], extra)
        hint = f"; for {absent[0]!r}{hint}" if hint else ""
        raise t.r.error(
            where, f"{source} file {path.name!r} has no column for {_list(absent)}{hint}"
        )
    data = raw[names.assets].sort_index()
    if start is not None:
        data = data[data.index >= pd.Timestamp(start)]
    if end is not None:
        data = data[data.index <= pd.Timestamp(end)]
    data = t.r.numeric(where, data, f"{source} file {path.name!r}")  # the rows used only
    need = 3 if source == "prices" else 2
    if len(data) < need:
        window = f" between {start or 'the start'} and {end or 'the end'}" if start or end else ""
        raise t.r.error(
            where, f"{source} file {path.name!r} has {len(data)} rows{window}; need at least {need}"
        )
    if source == "prices":
        with t.r.wrap(where):
            rets = _returns.from_prices(data, missing=missing)
        if len(rets) < 2:
            raise t.r.error(where, f"only {len(rets)} return(s) left; need at least 2")
        return data, rets
    if data.isna().any().any():
        col = data.columns[data.isna().any().to_numpy()][0]
        day = data.index[data[col].isna().to_numpy()][0]
        raise t.r.error(where, f"returns file {path.name!r} has no value for {col} on {day.date()}")
    return data, data


def _correlation(t: Table, names: _Names) -> pd.DataFrame:
    where = t.path("correlation")
    value = t.raw("correlation")
    n = len(names.assets)
    if isinstance(value, str):
        path = t.r.file(where, value)
        frame = t.r.read_csv(where, path, dates=False)
        what = f"correlation file {path.name!r}"
        if set(frame.index) != set(frame.columns):
            rows_only = [x for x in frame.index if x not in set(frame.columns)]
            cols_only = [x for x in frame.columns if x not in set(frame.index)]
            raise t.r.error(
                where,
                f"{what}: rows and columns must name the same assets; rows only: "
                f"{_list(rows_only) or '-'}; columns only: {_list(cols_only) or '-'}",
            )
        absent = [a for a in names.assets if a not in frame.columns]
        if absent:
            extra = [c for c in frame.columns if c not in names.asset_set]
            hint = closest(absent[0], extra)
            hint = f"; for {absent[0]!r}{hint}" if hint else ""
            raise t.r.error(where, f"{what} has no row/column for {_list(absent)}{hint}")
        matrix = t.r.numeric(where, frame.loc[names.assets, names.assets], what).to_numpy()
    elif isinstance(value, list):
        what = "correlation"
        if len(value) != n:
            raise t.r.error(
                where, f"expected {n} rows (one per asset, in [[assets]] order), got {len(value)}"
            )
        matrix = np.empty((n, n))
        for i, row in enumerate(value):
            if not isinstance(row, list) or len(row) != n:
                got = f"{len(row)} values" if isinstance(row, list) else type_name(row)
                raise t.r.error(f"{where}[{i}]", f"expected an array of {n} numbers, got {got}")
            for j, x in enumerate(row):
                matrix[i, j] = check_number(t.r, f"{where}[{i}][{j}]", x)
    elif isinstance(value, dict):
        what = "correlation"
        matrix = np.full((n, n), np.nan)
        np.fill_diagonal(matrix, 1.0)
        pos = {a: i for i, a in enumerate(names.assets)}
        seen = np.zeros((n, n), dtype=bool)
        for a, inner in value.items():
            wa = join(where, a)
            names.asset(t.r, wa, a)
            if not isinstance(inner, dict):
                raise t.r.error(
                    wa, f"expected a table asset id -> correlation, got {type_name(inner)}"
                )
            for b, x in inner.items():
                wb = join(wa, b)
                names.asset(t.r, wb, b)
                rho = check_number(t.r, wb, x, low=-1, high=1)
                i, j = pos[a], pos[b]
                if i == j:
                    if rho != 1:
                        raise t.r.error(wb, f"an asset's correlation with itself is 1, got {rho:g}")
                    continue
                if seen[i, j] and matrix[i, j] != rho:
                    raise t.r.error(
                        wb, f"given twice with different values: {matrix[i, j]:g} and {rho:g}"
                    )
                matrix[i, j] = matrix[j, i] = rho
                seen[i, j] = seen[j, i] = True
        gaps = [
            f"{names.assets[i]}-{names.assets[j]}"
            for i in range(n)
            for j in range(i + 1, n)
            if not seen[i, j]
        ]
        if gaps:
            raise t.r.error(where, f"missing pairs: {_list(gaps)}; every pair needs a correlation")
    else:
        raise t.r.error(
            where,
            "expected a CSV file name, an array of rows, or a table of pairs; "
            f"got {type_name(value)}",
        )
    _check_correlation(t.r, where, matrix, names.assets, what)
    index = pd.Index(names.assets, dtype=object)
    return pd.DataFrame(matrix, index=index, columns=index.copy())


def _check_correlation(r: Reader, where: str, m: np.ndarray, assets: list[str], what: str) -> None:
    tol = 1e-8
    n = len(assets)
    if not np.isfinite(m).all():
        i, j = np.argwhere(~np.isfinite(m))[0]
        raise r.error(where, f"{what}: missing or not finite for {assets[i]}-{assets[j]}")
    for i in range(n):
        if abs(m[i, i] - 1) > tol:
            raise r.error(where, f"{what}: the diagonal must be 1; {assets[i]} has {m[i, i]:g}")
    if (np.abs(m) > 1 + tol).any():
        i, j = np.argwhere(np.abs(m) > 1 + tol)[0]
        raise r.error(
            where, f"{what}: {assets[i]}-{assets[j]} is {m[i, j]:g}; correlations are in [-1, 1]"
        )
    asym = np.abs(m - m.T) > tol
    if asym.any():
        i, j = np.argwhere(asym)[0]
        raise r.error(
            where,
            f"{what} is not symmetric: {assets[i]}-{assets[j]} is {m[i, j]:g} but "
            f"{assets[j]}-{assets[i]} is {m[j, i]:g}",
        )


#: Options that are not estimator settings.
_NOT_OPTIONS = ("return_intensity",)
#: Valid values of string options, by (estimator, option).
_CHOICES: dict[tuple[str, str], Sequence[str]] = {
    ("ledoit_wolf", "target"): _covariance.TARGETS,
    ("historical_mean", "method"): _expected_returns.METHODS,
    ("shrunk_mean", "target"): _expected_returns.SHRINK_TARGETS,
}
#: Options that must be positive numbers.
_POSITIVE = ("halflife", "periods_per_year", "n_factors")


def _options(t: Table, key: str, fn: Callable[..., Any], fn_name: str) -> dict[str, Any]:
    """Keyword options of an estimator, checked against its signature."""
    raw = t.raw(key, {})
    where = t.path(key)
    if not isinstance(raw, dict):
        raise t.r.error(where, f"expected a table of options, got {type_name(raw)} {raw!r}")
    params = list(inspect.signature(fn).parameters.values())[1:]  # the first is the data
    accepted = {
        p.name: p
        for p in params
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _NOT_OPTIONS
    }
    for name, value in raw.items():
        w = join(where, name)
        if name not in accepted:
            valid = ", ".join(sorted(accepted)) or "none"
            raise t.r.error(
                w, f"{fn_name} takes no option {name!r}{closest(name, accepted)}; valid: {valid}"
            )
        choices = _CHOICES.get((fn_name, name))
        if name in _POSITIVE:
            check_number(t.r, w, value, low=0, strict_low=True)
        elif choices is not None:
            if not isinstance(value, str) or value not in choices:
                raise t.r.error(
                    w,
                    f"unknown value {value!r}{closest(str(value), choices)}; valid: "
                    + ", ".join(map(repr, choices)),
                )
        else:
            _check_annotation(t.r, w, value, str(accepted[name].annotation))
    for name, p in accepted.items():
        if p.default is p.empty and name not in raw:
            raise t.r.error(where, f"{fn_name} needs the option {name!r}")
    return dict(raw)


def _check_annotation(r: Reader, where: str, value: object, annotation: str) -> None:
    """A TOML value of a type the parameter's annotation admits (when it says)."""
    allowed = {
        "str": isinstance(value, str),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }
    named = [k for k in allowed if re.search(rf"\b{k}\b", annotation)]
    if named and not any(allowed[k] for k in named):
        raise r.error(where, f"expected {' or '.join(named)}, got {type_name(value)} {value!r}")


def _model(top: Table, names: _Names, est: EstimatesSpec, policy: pd.Series | None) -> ModelSpec:
    t = top.table("model", _MODEL)
    if t is None:
        t = Table(top.r, {}, "model", _MODEL)
    kind = t.string("kind", "mean_variance", choices=MODEL_KINDS)
    objective = None
    applies = {"kind"}
    if kind in ("mean_variance", "black_litterman"):
        objective = t.string("objective", "max_sharpe", choices=OBJECTIVES)
        applies.add("objective")
        if OBJECTIVE_PARAM[objective]:
            applies.add(OBJECTIVE_PARAM[objective])
    if kind == "black_litterman":
        applies |= {"tau", "prior", "views", "risk_aversion"}
    elif kind == "risk_parity":
        applies.add("budgets")
    elif kind == "min_cvar":
        applies |= {"alpha", "target_return"}
    for key in t.data:
        if key not in applies:
            why = f"with kind = {kind!r}"
            if objective is not None and key in OBJECTIVE_PARAM.values():
                why += f" and objective = {objective!r}"
            raise t.error(key, f"not used {why}")

    params: dict[str, Any] = {}
    wanted = OBJECTIVE_PARAM[objective] if objective is not None else None
    if wanted == "target_return":
        params["target_return"] = t.number("target_return", low=-1, high=1, hint=_PCT)
    elif wanted == "target_volatility":
        params["target_volatility"] = t.number(
            "target_volatility", low=0, high=2, strict_low=True, hint=_PCT
        )
    if wanted == "risk_aversion" or kind == "black_litterman":
        params["risk_aversion"] = t.number("risk_aversion", low=0, strict_low=True)
    if kind == "black_litterman":
        params["tau"] = t.number("tau", 0.05, low=0, high=1, strict_low=True)
    if kind == "min_cvar":
        params["alpha"] = t.number("alpha", 0.95, low=0, high=1, strict_low=True, strict_high=True)
        if "target_return" in t:
            params["target_return"] = t.number("target_return", low=-1, high=1, hint=_PCT)
    views: tuple[View, ...] = ()
    if kind == "black_litterman":
        params["prior"] = t.string("prior", "policy", choices=PRIORS)
        if params["prior"] == "policy" and policy is None:
            raise t.error("prior", "'policy' needs a [policy] table (or set prior = 'equal')")
        views = _views(t, names)
    if kind == "risk_parity":
        budgets = _by_asset(t, "budgets", names, every=True, default=None, low=0, strict_low=True)
        params["budgets"] = None if budgets is None else budgets.rename("budget")
    if kind == "policy" and policy is None:
        raise t.error("kind", "'policy' needs a [policy] table with the weights")
    if kind == "min_cvar" and est.source == "cma":
        raise t.error(
            "kind", "'min_cvar' needs return scenarios: estimates.source = 'prices' or 'returns'"
        )
    return ModelSpec(kind=kind, objective=objective, params=frozen_mapping(params), views=views)


def _views(t: Table, names: _Names) -> tuple[View, ...]:
    out = []
    for v in t.tables("views", _VIEW):
        picks_raw = v.raw("picks")
        if not isinstance(picks_raw, dict) or not picks_raw:
            raise v.error("picks", "expected a non-empty table of asset id or tag -> coefficient")
        for key in picks_raw:
            names.asset_or_tag(v.r, join(v.path("picks"), key), key)
        picks = v.numbers("picks")
        value = v.number("value", low=-1, high=1, hint=_PCT)
        confidence = v.number("confidence", None, low=0, high=1)
        name = v.string("name", None)
        with v.r.wrap(v.where):
            out.append(View(picks=picks, value=value, confidence=confidence, name=name))
    with t.r.wrap(t.path("views")):
        views_matrix(out, names.assets, universe=names.universe)
    return tuple(out)


# ----------------------------------------------------------------------------- constraints


def _weight(t: Table, key: str, default: Any, long_only: bool | None) -> Any:
    """A number; with ``long_only`` (True) a weight in [0, 1], None: any number."""
    value = t.number(key, default)
    if key not in t or not long_only:
        return value
    if value < 0:
        raise t.error(key, f"negative weight {value:g}{_SHORTS}")
    if value > 1:
        raise t.error(key, f"must be <= 1, got {value:g}{_PCT}")
    return value


def _constraints(
    t: Table | None,
    long_only: bool,
    names: _Names,
    policy: pd.Series | None,
    holdings: Holdings | None,
) -> tuple:
    out: list[tuple[str, Any]] = []
    if long_only:
        out.append(("constraints.long_only", C.LongOnly()))
    bounds = _bounds(t, long_only, names) if t is not None else None
    if bounds is not None:
        out.append(("constraints.bounds", bounds))
    elif not long_only:
        out.append(("constraints.long_only", C.Bounds(lower=-np.inf, name="shorts allowed")))
    if t is None:
        return tuple(c for _, c in out)

    def build(where: str, cls: type, **kwargs: Any) -> None:
        with t.r.wrap(where):
            out.append((where, cls(**kwargs)))

    def reference(g: Table, key: str, what: str) -> pd.Series:
        g.string(key, "policy", choices=("policy",))
        if policy is None:
            raise g.error(key if key in g else None, f"{what} 'policy' needs a [policy] table")
        return policy

    for g in t.tables("group", ("name", "tag", "assets", "min", "max")):
        name = g.string("name")
        if ("tag" in g) == ("assets" in g):
            raise g.error(None, "give exactly one of tag or assets")
        tag = names.tag(g.r, g.path("tag"), g.string("tag")) if "tag" in g else None
        assets = None
        if "assets" in g:
            assets = g.strings("assets")
            if not assets:
                raise g.error("assets", "is empty: name at least one asset")
            for i, a in enumerate(assets):
                names.asset(g.r, f"{g.path('assets')}[{i}]", a)
        lo, hi = _min_max(g, "min", "max", long_only)
        build(g.where, C.GroupLimit, tag=tag, assets=assets, min=lo, max=hi, name=name)

    for g in t.tables("band", ("name", "tag", "width", "reference")):
        ref = reference(g, "reference", "reference")
        tag = names.tag(g.r, g.path("tag"), g.string("tag")) if "tag" in g else None
        raw = g.raw("width")
        if isinstance(raw, dict):
            if tag is not None:
                raise g.error("width", "a band on a tag takes one number")
            width: Any = _by_asset(g, "width", names, every=False, low=0, high=1, hint=_PCT)
        else:
            width = g.number("width", low=0, high=1, hint=_PCT)
        build(
            g.where,
            C.DeviationBand,
            reference=ref,
            width=width,
            tag=tag,
            name=g.string("name", None),
        )

    for g in t.tables("exposure", ("name", "scores", "min", "max")):
        name = g.string("name")
        scores = _by_asset(g, "scores", names, every=True)
        lo, hi = _min_max(g, "min", "max", None)
        build(g.where, C.ExposureLimit, scores=scores, min=lo, max=hi, name=name)

    for g in t.tables("tracking_error", ("name", "max", "benchmark")):
        ref = reference(g, "benchmark", "benchmark")
        te = g.number("max", low=0, high=1, strict_low=True, hint=_PCT)
        build(g.where, C.TrackingErrorLimit, benchmark=ref, max=te, name=g.string("name", None))

    for g in t.tables("turnover", ("name", "max")):
        if holdings is None:
            raise g.error(None, "a turnover limit needs [holdings] (turnover is against them)")
        cap = g.number("max", low=0, high=2, hint=" (two-way turnover, decimal: 0.2 is 20%)")
        build(
            g.where, C.TurnoverLimit, current=holdings.weights, max=cap, name=g.string("name", None)
        )

    for g in t.tables("leverage", ("name", "max")):
        cap = g.number("max", low=0, strict_low=True, hint=" (gross exposure: 1.0 is unlevered)")
        build(g.where, C.LeverageLimit, max=cap, name=g.string("name", None))

    for g in t.tables("linear", ("name", "coefficients", "lower", "upper")):
        name = g.string("name")
        coef = _by_asset(g, "coefficients", names, every=False)
        lo, hi = _min_max(g, "lower", "upper", None)
        build(g.where, C.LinearConstraint, coefficients=coef, lower=lo, upper=hi, name=name)

    seen: dict[str, str] = {}
    for where, c in out:
        if c.name in RESERVED_NAMES:
            raise t.r.error(where, f"the name {c.name!r} is reserved for the engine: rename it")
        if c.name in seen:
            raise t.r.error(
                where,
                f"the name {c.name!r} is already used by {seen[c.name]}: give a distinct name",
            )
        seen[c.name] = where
    return tuple(c for _, c in out)


def _min_max(g: Table, lo_key: str, hi_key: str, long_only: bool | None) -> tuple[Any, Any]:
    lo = _weight(g, lo_key, None, long_only)
    hi = _weight(g, hi_key, None, long_only)
    if lo is None and hi is None:
        raise g.error(None, f"needs {lo_key}, {hi_key} or both")
    if lo is not None and hi is not None and lo > hi:
        raise g.error(lo_key, f"{lo:g} is above {hi_key} {hi:g}")
    return lo, hi


def _bounds(t: Table, long_only: bool, names: _Names) -> C.Bounds | None:
    raw = t.raw("bounds", None)
    if raw is None:
        return None
    where = t.path("bounds")
    if not isinstance(raw, dict):
        raise t.error("bounds", f"expected a table (min, max, or per asset), got {type_name(raw)}")
    scalar = {k: v for k, v in raw.items() if k in ("min", "max")}
    per_asset = {k: v for k, v in raw.items() if k not in ("min", "max")}
    b = Table(t.r, scalar, where, ("min", "max"))
    lo_all, hi_all = _weight(b, "min", None, long_only), _weight(b, "max", None, long_only)
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    for asset, spec in per_asset.items():
        wa = join(where, asset)
        if not isinstance(spec, dict):
            raise t.r.error(
                wa,
                f"expected min, max or an asset id with a table {{ min = .., max = .. }}; "
                f"got {asset!r} = {type_name(spec)}"
                + (closest(asset, ("min", "max")) if asset not in names.asset_set else ""),
            )
        names.asset(t.r, wa, asset)
        a = Table(t.r, spec, wa, ("min", "max"))
        lo, hi = _weight(a, "min", lo_all, long_only), _weight(a, "max", hi_all, long_only)
        if lo is None and hi is None:
            raise a.error(None, "needs min, max or both")
        if lo is not None:
            lows[asset] = lo
        if hi is not None:
            highs[asset] = hi
    lower: Any = lo_all
    upper: Any = hi_all
    if per_asset:
        lower = {a: lows.get(a, lo_all) for a in names.assets if lows.get(a, lo_all) is not None}
        upper = {a: highs.get(a, hi_all) for a in names.assets if highs.get(a, hi_all) is not None}
        lower, upper = lower or None, upper or None
    if lower is None and upper is None:
        raise t.error("bounds", "needs min, max, or a table per asset")
    for a in names.assets:
        lo = lower.get(a) if isinstance(lower, dict) else lower
        hi = upper.get(a) if isinstance(upper, dict) else upper
        if lo is not None and hi is not None and lo > hi:
            w = join(where, a) if a in per_asset else where
            raise t.r.error(w, f"min {lo:g} is above max {hi:g} for {a}")
    if not long_only:  # no lower bound means no lower bound, not the long-only default
        if lower is None:
            lower = -np.inf
        elif isinstance(lower, dict):
            lower = {a: lower.get(a, -np.inf) for a in names.assets}
    with t.r.wrap(where):
        return C.Bounds(lower=lower, upper=upper, name="bounds")


# ----------------------------------------------------------------------------- tactical

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_CMPOPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
_ALLOWED = "indicator names, numbers, + - * /, comparisons and and/or"


def check_expression(text: str, indicators: Sequence[str]) -> ast.Expression:
    """Parse a tactical rule's condition and check it uses only what is allowed.

    Parameters
    ----------
    text : str
        E.g. ``"pe / pe_average - 1 > 0.20 and vix > 25"``.
    indicators : sequence of str
        The names the expression may use.

    Returns
    -------
    ast.Expression
        The parsed expression: a comparison, or comparisons joined by
        ``and``/``or``, over arithmetic (``+ - * /``, unary minus) on numbers
        and indicator names.

    Raises
    ------
    InputError
        A syntax error (with its column), a name that is not an indicator
        (with the closest one), a call, an attribute, or any other construct.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise InputError(f"cannot parse {text!r}: {exc.msg} (column {exc.offset})") from None
    known = set(indicators)

    def arith(node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise InputError(f"{ast.unparse(node)} is not a number; allowed: {_ALLOWED}")
        elif isinstance(node, ast.Name):
            if node.id not in known:
                hint = closest(node.id, known)
                raise InputError(
                    f"unknown indicator {node.id!r}{hint}; known: {', '.join(sorted(known))}"
                )
        elif isinstance(node, ast.BinOp) and isinstance(node.op, _BINOPS):
            arith(node.left)
            arith(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            arith(node.operand)
        elif isinstance(node, ast.Call):
            raise InputError(
                f"function calls are not allowed ({ast.unparse(node)}); allowed: {_ALLOWED}"
            )
        elif isinstance(node, ast.Attribute):
            raise InputError(
                f"attributes are not allowed ({ast.unparse(node)}); allowed: {_ALLOWED}"
            )
        else:
            raise InputError(f"{ast.unparse(node)!r} is not allowed; allowed: {_ALLOWED}")

    def condition(node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                condition(value)
        elif isinstance(node, ast.Compare):
            if not all(isinstance(op, _CMPOPS) for op in node.ops):
                raise InputError(f"{ast.unparse(node)!r}: only < <= > >= == != compare")
            arith(node.left)
            for comp in node.comparators:
                arith(comp)
        else:
            arith(node)
            raise InputError(
                f"{ast.unparse(node)!r} is not a condition: compare it (e.g. 'vix > 25'), "
                "and join comparisons with and/or"
            )

    condition(tree.body)
    return tree


def _tactical(top: Table, names: _Names) -> Tactical | None:
    t = top.table("tactical", _TACTICAL)
    if t is None:
        return None
    if "equity" not in names.tags:
        raise t.error(
            None, "the overlay tilts the assets tagged 'equity', but no asset has that tag"
        )
    ind_raw = t.raw("indicators")
    if not isinstance(ind_raw, dict) or not ind_raw:
        raise t.error("indicators", "expected a non-empty table of indicator name -> number")
    for k in ind_raw:
        identifier(t.r, join(t.path("indicators"), k), k)
    indicators = t.numbers("indicators")
    band = t.number("band", low=0, high=1, hint=_PCT)
    off_raw = t.raw("offset")
    if not isinstance(off_raw, dict) or not off_raw:
        raise t.error("offset", "expected a non-empty table of tag -> share of the equity cut")
    for k in off_raw:
        w = join(t.path("offset"), k)
        names.tag(t.r, w, k)
        if k == "equity":
            raise t.r.error(w, "the equity cut cannot go to equity")
    offset = t.numbers("offset", low=0, high=1)
    _check_sum(t, "offset", sum(offset.values()), "offset shares")
    rules = []
    seen: dict[str, str] = {}
    tables = t.tables("rules", _RULE)
    if not tables:
        raise t.error("rules", "missing: add at least one [[tactical.rules]]")
    for g in tables:
        name = g.string("name")
        if name in seen:
            raise g.error("name", f"duplicate rule name {name!r} (also {seen[name]})")
        seen[name] = g.where
        when = g.string("when")
        with g.r.wrap(g.path("when")):
            check_expression(when, list(indicators))
        equity = g.number("equity", low=-1, high=1, hint=_PCT)
        rules.append(TacticalRule(name=name, when=when, equity=equity))
    return Tactical(
        indicators=frozen_mapping(indicators),
        band=band,
        offset=frozen_mapping(offset),
        rules=tuple(rules),
    )


# ----------------------------------------------------------------------------- costs, rebalance


def _rate(t: Table, key: str, names: _Names) -> Any:
    raw = t.raw(key, None)
    if raw is None or not isinstance(raw, dict):
        return t.number(key, None, low=0, high=10_000, hint=" (basis points: 10 is 0.1%)")
    if not raw:
        raise t.error(key, "is empty")
    for k in raw:
        if k != "default":
            names.asset_or_tag(t.r, join(t.path(key), k), k)
    return t.numbers(key, low=0, high=10_000, hint=" (basis points: 10 is 0.1%)")


def _costs(top: Table, names: _Names) -> CostModel | None:
    t = top.table("costs", _COSTS)
    if t is None:
        return None
    bps = _rate(t, "bps", names)
    buy, sell = _rate(t, "buy_bps", names), _rate(t, "sell_bps", names)
    fixed = t.number("fixed_per_trade", 0.0, low=0)
    impact = t.number("impact", 0.0, low=0)
    adv = _by_asset(t, "adv", names, every=False, default=None, low=0, strict_low=True)
    if impact > 0 and adv is None:
        raise t.error("impact", "needs costs.adv (average daily traded value by asset)")
    with t.r.wrap(t.where):
        model = CostModel(
            bps=0.0 if bps is None else bps,
            buy_bps=buy,
            sell_bps=sell,
            fixed=fixed,
            impact=impact,
            adv=None if adv is None else dict(adv),
        )
        # cheap: checks every asset gets a rate and, with impact, an adv
        model.resolve(names.universe.index, names.universe, np.ones(len(names.assets)))
    return model


def _rebalance(
    top: Table, names: _Names, holdings: Holdings | None, portfolio: Portfolio
) -> tuple[Mapping[str, Any], float | None]:
    t = top.table("rebalance", _REBALANCE)
    if holdings is None:
        if t is not None:
            raise t.error(None, "needs [holdings] (the current portfolio to rebalance)")
        return frozen_mapping({}), None
    if t is None:
        t = Table(top.r, {}, "rebalance", _REBALANCE)
    opts: dict[str, Any] = {}
    if "tracking_weight" in t:
        opts["tracking_weight"] = t.number("tracking_weight", low=0)
    if "min_trade" in t:
        opts["min_trade"] = t.number("min_trade", low=0)
    if "max_turnover" in t:
        opts["max_turnover"] = t.number(
            "max_turnover", low=0, hint=" (two-way turnover, decimal: 0.2 is 20%)"
        )
    untradeable: list[str] = []
    for i, key in enumerate(t.strings("untradeable", [])):
        names.asset_or_tag(t.r, f"{t.path('untradeable')}[{i}]", key)
        untradeable += [a for a in names.members(key) if a not in untradeable]
    if untradeable:
        opts["untradeable"] = tuple(untradeable)
    for key, kwarg in (("lot_size", "lot_size"), ("no_trade_band", "no_trade_bands")):
        if key not in t:
            continue
        if isinstance(t.raw(key), dict):
            limits = {"low": 0, "strict_low": key == "lot_size"}
            per = _by_asset(t, key, names, every=False, **limits)
            opts[kwarg] = {a: float(v) for a, v in per.items()}
        elif key == "lot_size":
            opts[kwarg] = t.number(key, low=0, strict_low=True)
        else:
            opts[kwarg] = t.number(key, low=0, high=1, hint=_PCT)
    priced = set() if holdings.prices is None else set(holdings.prices.index)
    if "lot_size" in opts:
        lots = opts["lot_size"]
        sized = list(lots) if isinstance(lots, dict) else names.assets
        unpriced = [a for a in sized if a not in priced and a not in untradeable]
        if unpriced:
            raise t.error("lot_size", f"needs holdings.prices for {_list(unpriced)}")
    if priced:
        # the rebalance turns every trade into a quantity once prices are given
        unpriced = [a for a in names.assets if a not in priced and a not in untradeable]
        if unpriced:
            raise t.r.error(
                "holdings.prices",
                f"missing for {_list(unpriced)}: with prices, every tradeable asset needs one "
                "(or list it in rebalance.untradeable)",
            )
    flow = t.number("cash_flow", 0.0)
    if holdings.total + flow <= 0:
        raise t.error(
            "cash_flow",
            f"withdraws {-flow:,.2f}, more than the portfolio's {holdings.total:,.2f}",
        )
    opts["cash_flow"] = holdings.cash + flow
    if holdings.prices is not None:
        opts["prices"] = holdings.prices
    opts["as_of"] = portfolio.as_of
    opts["portfolio_id"] = portfolio.id
    opts["currency"] = portfolio.currency
    threshold = t.number("threshold", None, low=0, high=1, strict_low=True, hint=_PCT)
    return frozen_mapping(opts), threshold


# ----------------------------------------------------------------------------- stress, validation


def _stress(top: Table, names: _Names) -> tuple[tuple[str, Mapping[str, float]], ...]:
    out = []
    seen: dict[str, str] = {}
    for g in top.tables("stress", _STRESS):
        name = g.string("name")
        if name in seen:
            raise g.error("name", f"duplicate stress name {name!r} (also {seen[name]})")
        seen[name] = g.where
        raw = g.raw("shocks")
        if not isinstance(raw, dict) or not raw:
            raise g.error("shocks", "expected a non-empty table of tag or asset id -> return")
        for k in raw:
            names.asset_or_tag(g.r, join(g.path("shocks"), k), k)
        shocks = g.numbers(
            "shocks", low=-1, strict_low=True, hint=" (returns are decimals: -0.35 is -35%)"
        )
        for asset in names.assets:
            if asset in shocks:
                continue
            hits = {k: v for k, v in shocks.items() if k in names.universe.tags.get(asset, ())}
            if len(hits) > 1:  # ambiguous even when equal: scenarios.stress rejects it too
                told = ", ".join(f"{k!r} ({v:g})" for k, v in hits.items())
                raise g.error(
                    "shocks",
                    f"asset {asset!r} carries two shocked tags, {told}: give {asset!r} its own "
                    "shock",
                )
        out.append((name, frozen_mapping(shocks)))
    return tuple(out)


def _validation(top: Table) -> Mapping[str, float]:
    t = top.table("validation", _VALIDATION)
    if t is None:
        return frozen_mapping({})
    out = {
        "return_target": t.number("return_target", None, low=-1, high=1, hint=_PCT),
        "spending_rate": t.number("spending_rate", None, low=0, high=1, hint=_PCT),
        "inflation": t.number("inflation", None, low=-1, high=1, hint=_PCT),
        "survival_floor": t.number("survival_floor", None, low=0, high=1, strict_low=True),
        "esg_floor": t.number("esg_floor", None),
    }
    if out["return_target"] is None and None not in (out["spending_rate"], out["inflation"]):
        out["return_target"] = out["spending_rate"] + out["inflation"]
    return frozen_mapping({k: v for k, v in out.items() if v is not None})


# ----------------------------------------------------------------------------- backtest, montecarlo


def _integer(t: Table, key: str, default: Any, *, low: int) -> Any:
    """A whole number (TOML integer, or a float with no fraction) >= ``low``, as an int."""
    value = t.number(key, default, low=low)
    if key not in t:
        return value
    if value != int(value):
        raise t.error(key, f"expected a whole number, got {t.raw(key)!r}")
    return int(value)


_NEEDS_HISTORY = 'needs [estimates] source = "prices" or "returns"'


def _bt_policy(g: Table, names: _Names) -> Policy:
    kind = g.string("kind", choices=tuple(POLICY_KINDS))
    g.not_with(
        [k for k in _BT_POLICY if k not in ("kind", "name", *POLICY_KINDS[kind])],
        f"with kind = {kind!r}",
    )
    name = g.string("name", None)
    if kind == "buy_and_hold":
        return BuyAndHold() if name is None else BuyAndHold(name=name)
    if kind == "threshold":
        if isinstance(g.raw("band", None), dict):
            per = _by_asset(g, "band", names, every=True, low=0, high=1, hint=_PCT)
            band: Any = frozen_mapping({a: float(v) for a, v in per.items()})
        else:
            band = g.number("band", 0.05, low=0, high=1, strict_low=True, hint=_PCT)
        relative = g.boolean("relative", False)
        if name is None:
            name = "threshold " + ("by asset" if isinstance(band, Mapping) else f"{band:g}")
            name += " relative" if relative else ""
        with g.r.wrap(g.where):
            return Threshold(band=band, relative=relative, name=name)
    every = _integer(g, "every", 3 if kind == "hybrid" else 1, low=1)
    with g.r.wrap(g.where):
        if kind == "calendar":
            return Calendar(every=every, name=name)
        if kind == "hybrid":
            band = g.number("band", 0.05, low=0, high=1, strict_low=True, hint=_PCT)
            return Hybrid(every=every, band=band, name=name)
        tw = g.number("tracking_weight", 100.0, low=0, strict_low=True)
        return Optimized(every=every, tracking_weight=tw, name=name)


def _backtest(
    top: Table,
    names: _Names,
    est: EstimatesSpec,
    policy: pd.Series | None,
    portfolio: Portfolio,
) -> BacktestSpec | None:
    t = top.table("backtest", _BACKTEST)
    if t is None:
        return None
    if est.source == "cma":
        raise t.error(
            None,
            'a backtest needs [estimates] source = "prices" or "returns" (a history of '
            'returns to walk over), not "cma"',
        )
    raw = t.raw("policies")
    if not isinstance(raw, list) or not raw:
        raise t.error(
            "policies",
            'expected a non-empty array of policy tables, e.g. [{ kind = "calendar", '
            'every = 3 }, { kind = "buy_and_hold" }]',
        )
    policies: list[Policy] = []
    seen: dict[str, str] = {}
    for g in t.tables("policies", _BT_POLICY):
        pol = _bt_policy(g, names)
        if pol.name in seen:
            raise g.error(
                "name" if "name" in g else None,
                f"duplicate policy name {pol.name!r} (also {seen[pol.name]}): give a distinct name",
            )
        seen[pol.name] = g.where
        policies.append(pol)
    initial = t.number("initial_value", portfolio.value, low=0, strict_low=True)
    start, end = t.date("start", None), t.date("end", None)
    if start is not None and end is not None and start > end:
        raise t.error("end", f"{end} is before start {start}")
    idx = est.returns.index
    inside = np.ones(len(idx), dtype=bool)
    if start is not None:
        inside &= idx >= pd.Timestamp(start)
    if end is not None:
        inside &= idx <= pd.Timestamp(end)
    rows = int(inside.sum())
    if rows < 2:
        raise t.error(
            "start" if start is not None else "end",
            f"leaves {rows} return(s) of {idx[0].date()}..{idx[-1].date()}; need at least 2",
        )
    spending = None
    if "spending_rate" in t:
        rate = t.number("spending_rate", low=0, high=1, strict_high=True, hint=_PCT)
        window = _integer(t, "spending_window", 12, low=1)
        spending = SpendingRule(rate=rate, window=window)
    elif "spending_window" in t:
        raise t.error("spending_window", "needs backtest.spending_rate")
    drawdown = None
    d = t.table("drawdown", _BT_DRAWDOWN)
    if d is not None:
        threshold = d.number("threshold", low=0, high=1, strict_low=True, strict_high=True)
        recover = d.number("recover", 0.05, low=0, high=1)
        if recover >= threshold:
            raise d.error("recover", f"{recover:g} must be below threshold {threshold:g}")
        defensive = _by_asset(d, "defensive", names, every=False, low=0, high=1, hint=_PCT)
        _check_sum(d, "defensive", float(defensive.sum()), "defensive weights")
        drawdown = DrawdownRule(
            threshold=threshold,
            defensive=defensive.reindex(names.assets, fill_value=0.0).rename("defensive"),
            recover=recover,
        )
    target = t.string("target", "model", choices=BACKTEST_TARGETS)
    if target == "policy" and policy is None:
        raise t.error("target", "'policy' needs a [policy] table (or use target = 'model')")
    return BacktestSpec(
        policies=tuple(policies),
        initial_value=initial,
        start=start,
        end=end,
        spending=spending,
        drawdown=drawdown,
        target=target,
    )


def _montecarlo(
    top: Table, est: EstimatesSpec, validation: Mapping[str, float]
) -> MonteCarloSpec | None:
    t = top.table("montecarlo", _MONTECARLO)
    if t is None:
        return None
    distribution = t.string("distribution", "normal", choices=MC_DISTRIBUTIONS)
    if distribution != "student_t":
        t.not_with(("dof",), f"with distribution = {distribution!r} (only with 'student_t')")
    if distribution == "bootstrap" and est.source == "cma":
        raise t.error(
            "distribution",
            f"'bootstrap' resamples years of history: it {_NEEDS_HISTORY}",
        )
    rule = t.string("spending_rule", "yale", choices=MC_SPENDING_RULES)
    if rule == "yale":
        t.not_with(("smoothing_window",), "with spending_rule = 'yale' (only with 'trailing')")
    else:
        t.not_with(("smoothing",), "with spending_rule = 'trailing' (only with 'yale')")
    seed = t.raw("seed", None)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise t.error("seed", f"expected a non-negative integer, got {type_name(seed)} {seed!r}")
    return MonteCarloSpec(
        years=_integer(t, "years", 30, low=1),
        paths=_integer(t, "paths", 10_000, low=1),
        seed=seed,
        distribution=distribution,
        dof=t.number("dof", 5.0, low=2, strict_low=True),
        spending_rule=rule,
        spending_rate=t.number(
            "spending_rate", validation.get("spending_rate", 0.04), low=0, high=1, hint=_PCT
        ),
        smoothing=t.number("smoothing", 0.7, low=0, high=1),
        smoothing_window=_integer(t, "smoothing_window", 3, low=1),
        inflation=t.number(
            "inflation",
            validation.get("inflation", 0.025),
            low=-1,
            strict_low=True,
            high=1,
            hint=_PCT,
        ),
        drawdown=t.number("drawdown", 0.25, low=0, high=1, strict_low=True, hint=_PCT),
    )


# ============================================================================= entry point


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path : str or os.PathLike
        The TOML file. Data files it names (CSV, optionally compressed) are
        found relative to its folder.

    Returns
    -------
    Scenario
        Frozen, with every reference checked: ready for the engine.

    Raises
    ------
    InputError
        The first problem found, as ``"<file>: <key path>: <what is wrong>"``:
        TOML syntax (with line and column), unknown keys (with the closest
        valid key), wrong types (expected and got), values out of range,
        weights not summing to 1 (with the sum), unknown assets or tags (with
        the closest), missing data files, data files with wrong labels or
        values, estimator options the estimator does not take.

    Examples
    --------
    >>> scn = load_scenario("riverside.toml")  # doctest: +SKIP
    >>> scn.universe.assets, scn.model.kind, [c.name for c in scn.constraints]  # doctest: +SKIP
    """
    if not isinstance(path, str | os.PathLike):
        raise InputError(f"load_scenario expects a file path, got {type(path).__name__}")
    reader = Reader(Path(path))
    doc, digest = reader.load_toml()
    top = Table(reader, doc, "", _TOP)

    port = _portfolio(top)
    universe, asset_names = _assets(top)
    names = _Names(universe)
    cons_t = top.table("constraints", _CONSTRAINTS)
    long_only = cons_t.boolean("long_only", True) if cons_t is not None else True
    policy = _policy(top, names, long_only)
    holdings = _holdings(top, names, port["value"], long_only)
    if port["value"] is None:
        if holdings is None:
            raise reader.error(
                "portfolio.value", "missing (required unless [holdings] gives the values)"
            )
        port["value"] = holdings.total
    elif holdings is not None and abs(holdings.total - port["value"]) > 1e-6 * port["value"]:
        raise reader.error(
            "portfolio.value",
            f"{port['value']:,.2f} but the holdings total {holdings.total:,.2f} "
            "(positions plus cash); omit portfolio.value to use the holdings' total",
        )
    portfolio = Portfolio(**port)
    estimates = _estimates(top, names)
    model = _model(top, names, estimates, policy)
    constraints = _constraints(cons_t, long_only, names, policy, holdings)
    tactical = _tactical(top, names)
    costs = _costs(top, names)
    rebalance, threshold = _rebalance(top, names, holdings, portfolio)
    stress = _stress(top, names)
    validation = _validation(top)
    backtest = _backtest(top, names, estimates, policy, portfolio)
    montecarlo = _montecarlo(top, estimates, validation)
    return Scenario(
        path=reader.path.resolve(),
        sha256=digest,
        portfolio=portfolio,
        universe=universe,
        asset_names=asset_names,
        estimates=estimates,
        model=model,
        policy=policy,
        constraints=constraints,
        tactical=tactical,
        holdings=holdings,
        costs=costs,
        rebalance=rebalance,
        rebalance_threshold=threshold,
        stress=stress,
        validation=validation,
        backtest=backtest,
        montecarlo=montecarlo,
    )
