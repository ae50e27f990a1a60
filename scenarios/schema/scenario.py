"""The :class:`Scenario` a file loads into, and :func:`load_scenario`, which reads every section."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from optimizer.costs import CostModel
from optimizer.errors import InputError
from optimizer.universe import Universe
from scenarios.loader import Reader, Table
from scenarios.schema.batch import BatchSpec, read_batch
from scenarios.schema.common import Names
from scenarios.schema.constraints import constraints_table, read_constraints
from scenarios.schema.estimates import EstimatesSpec, read_estimates
from scenarios.schema.model import ModelSpec, read_model
from scenarios.schema.portfolio import (
    Holdings,
    Portfolio,
    read_assets,
    read_holdings,
    read_policy,
    read_portfolio,
)
from scenarios.schema.simulation import (
    BacktestSpec,
    MonteCarloSpec,
    read_backtest,
    read_montecarlo,
)
from scenarios.schema.stress import read_stress, read_validation
from scenarios.schema.tactical import Tactical, read_tactical
from scenarios.schema.tax import TaxSpec, read_tax
from scenarios.schema.trading import RebalanceSpec, read_costs, read_rebalance

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
    "batch",
    "tax",
)


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
    rebalance : RebalanceSpec or None
        How to trade toward the target: the ``[rebalance]`` options (defaults
        when the section is absent), the threshold trigger, the cash flow and
        the holdings' prices; ``rebalance.kwargs()`` are the keyword arguments
        of :func:`optimizer.rebalance.rebalance`. None without ``[holdings]``.
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
    batch : BatchSpec or None
        The ``[batch]`` section: model portfolios and prices of ``trimtab batch``
        (:mod:`scenarios.schema.batch`); with it, ``rebalance`` holds the
        options every account shares even without ``[holdings]``.
    tax : TaxSpec or None
        The ``[tax]`` section (:mod:`scenarios.schema.tax`): rates, budgets,
        wash-sale window, harvesting and substitutes. Lots without it plan with
        all rates 0; the lots themselves are ``holdings.lots``.
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
    rebalance: RebalanceSpec | None
    stress: tuple[tuple[str, Mapping[str, float]], ...]
    validation: Mapping[str, float]
    backtest: BacktestSpec | None = None
    montecarlo: MonteCarloSpec | None = None
    batch: BatchSpec | None = None
    tax: TaxSpec | None = None

    @property
    def taxable(self) -> bool:
        """True when the rebalance is tax-aware (``holdings.lots`` given)."""
        return self.holdings is not None and self.holdings.lots is not None

    @property
    def assets(self) -> pd.Index:
        """Asset ids, in ``[[assets]]`` order."""
        return self.universe.index


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

    port = read_portfolio(top)
    port_given = port["value"]
    universe, asset_names = read_assets(top)
    names = Names(universe)
    cons_t, long_only = constraints_table(top)
    policy = read_policy(top, names, long_only)
    holdings = read_holdings(top, names, port["value"], long_only)
    batch = read_batch(top, names, long_only)
    lots = holdings is not None and holdings.lots is not None
    tax = read_tax(top, names, lots=lots, batch=batch is not None)
    if port["value"] is None and holdings is None and batch is not None:
        port["value"] = 0.0  # a batch: each account has its own value (the accounts file)
    if port["value"] is None:
        if holdings is None:
            raise reader.error(
                "portfolio.value", "missing (required unless [holdings] gives the values)"
            )
        port["value"] = holdings.total  # 0 for an empty account: the deposit, below
    elif (
        holdings is not None
        and holdings.total > 0
        and abs(holdings.total - port["value"]) > 1e-6 * port["value"]
    ):
        raise reader.error(
            "portfolio.value",
            f"{port['value']:,.2f} but the holdings total {holdings.total:,.2f} "
            "(positions plus cash); omit portfolio.value to use the holdings' total",
        )
    portfolio = Portfolio(**port)
    estimates = read_estimates(top, names)
    model = read_model(top, names, estimates, policy)
    constraints = read_constraints(cons_t, long_only, names, policy, holdings)
    tactical = read_tactical(top, names)
    costs = read_costs(top, names)
    rebalance = read_rebalance(
        top,
        names,
        holdings,
        portfolio,
        batch=batch is not None,
        batch_prices=None if batch is None else batch.prices,
    )
    if holdings is not None and holdings.total == 0:
        portfolio = _empty_account_value(reader, portfolio, rebalance, given=port_given)
    stress = read_stress(top, names)
    validation = read_validation(top)
    backtest = read_backtest(top, names, estimates, policy, portfolio)
    montecarlo = read_montecarlo(top, estimates, validation, len(names.assets))
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
        stress=stress,
        validation=validation,
        backtest=backtest,
        montecarlo=montecarlo,
        batch=batch,
        tax=tax,
    )


def _empty_account_value(
    reader: Reader, portfolio: Portfolio, spec: RebalanceSpec, *, given: float | None
) -> Portfolio:
    """The portfolio of an empty account (holdings total 0): its value is the deposit.

    Raises
    ------
    InputError
        ``portfolio.value`` given and not the deposit (both named).
    """
    deposit = spec.cash_flow
    if given is not None and abs(given - deposit) > 1e-6 * deposit:
        raise reader.error(
            "portfolio.value",
            f"{given:,.2f} but the account holds nothing and rebalance.cash_flow deposits "
            f"{deposit:,.2f}; omit portfolio.value to use the deposit",
        )
    return replace(portfolio, value=deposit)
