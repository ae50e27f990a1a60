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
                            missing? ["raise"] (prices only; "keep" needs overlap),
                            overlap? ["full"] ("pairwise", "stambaugh"), covariance? ["ledoit_wolf"],
                            covariance_options? [{}], expected_returns? ["historical_mean"],
                            expected_returns_options? [{}]
    [model]                 kind? ["mean_variance"], objective? ["max_sharpe"] (mean_variance,
                            black_litterman), target_return, target_volatility, risk_aversion
                            (as the objective needs), l2_gamma? [0], tau? [0.05], prior? ["policy"],
                            [[model.views]] (black_litterman), budgets? (risk_parity),
                            alpha? [0.95] and target_return? (min_cvar)
    [policy]                weights (by asset; sum to 1; assets not named are 0) | profile
                            ("conservative" | "moderate" | "aggressive") with horizon
                            (years, > 0): models.profiles.policy
    [constraints]           long_only? [true], bounds? { min?, max?, <asset id> = { min?,
                            max? } }, and arrays of tables:
      [[constraints.group]]           name, tag | assets, min?, max?
      [[constraints.band]]            name?, tag?, width (a number, or by asset),
                                      reference? ["policy"]
      [[constraints.exposure]]        name, scores (by asset, every asset), min?, max?
      [[constraints.tracking_error]]  name?, max, benchmark? ["policy"]
      [[constraints.turnover]]        name?, max (two-way; needs [holdings])
      [[constraints.leverage]]        name?, max (gross exposure)
      [[constraints.linear]]          name, coefficients (by asset), lower?, upper?
      priority:             every table above, and bounds, takes priority? [absent: hard]:
                            an integer >= 1 makes the constraint soft, 1 the most
                            important; when not all can hold, the highest number is given
                            up first, by the least amount (then the next)
    [tactical]              indicators (name -> number), band, offset (by tag, sums to 1),
                            [[tactical.rules]] { name, when, equity }: ``when`` compares
                            (< <= > >= == !=) arithmetic (+ - * /) on numbers and
                            indicator names, comparisons joined by and/or/not (the grammar
                            of scenarios.tactical.parse_condition)
    [holdings]              values | quantities (+ prices) | weights (+ portfolio.value); cash? [0];
                            lots? | lots_file? (tax lots: asset, lot_id, quantity, basis,
                            acquired; need prices; add up to the units held), recent? |
                            recent_file? (asset, date, side, quantity, gain): scenarios.schema.tax
    [tax]                   short_rate? [0], long_rate? [0], long_after_days? [365], loss_rate?,
                            gains_budget?, short_budget?, wash_days? [30], exact_assets? [10],
                            harvest? [false], substitutes? (asset -> [assets]); needs lots or
                            [batch] (scenarios.schema.tax)
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
                            to 1) }, take_profit? { threshold (a gain > 0), safer?
                            (weights by asset, sum to 1; without it: back to the target),
                            reset? [0.05] (< threshold; only with safer) }, target? ["model": the run's target weights, held
                            fixed; "policy": the [policy] weights]. Needs a returns
                            history: [estimates] source = "prices" or "returns"; the
                            backtest walks over its returns (cut to start..end).
    [batch]                 prices? (by asset; needed when the accounts give quantities),
                            [[batch.models]] { id, weights (by asset, sum to 1) } (at least
                            one; ids unique), [batch.pooled]? { kind? ["gross"] | "net",
                            cap_adv? | cap? (by asset), impact? }: trimtab batch
                            (scenarios.schema.batch); with [batch], [rebalance] holds the
                            options every account shares and needs no [holdings]
    [montecarlo]            years? [30], paths? [10_000], seed?, distribution? ["normal"] |
                            "student_t" (dof? [5], > 2) | "bootstrap" (needs source "prices"
                            or "returns"; resamples their calendar years), spending_rule?
                            ["yale"] | "trailing", spending_rate? [validation.spending_rate,
                            else 0.04], smoothing? [0.7] (yale), smoothing_window? [3]
                            (trailing, years), inflation? [validation.inflation, else
                            0.025], drawdown? [0.25]. Simulated on the run's target
                            weights with the estimates' mu and covariance.

One module per group of sections: :mod:`~scenarios.schema.common` (asset and
tag references, tables by asset), :mod:`~scenarios.schema.portfolio`
(portfolio, assets, policy, holdings), :mod:`~scenarios.schema.estimates`,
:mod:`~scenarios.schema.model`, :mod:`~scenarios.schema.constraints`,
:mod:`~scenarios.schema.tactical`, :mod:`~scenarios.schema.trading` (costs,
rebalance), :mod:`~scenarios.schema.stress` (stress, validation), :mod:`~scenarios.schema.batch`,
:mod:`~scenarios.schema.simulation` (backtest, Monte Carlo), :mod:`~scenarios.schema.tax`
(tax lots, recent trades, ``[tax]``) and
:mod:`~scenarios.schema.scenario` (the :class:`Scenario` and
:func:`load_scenario`). The names below are the public ones.
"""

from scenarios.schema.common import WEIGHT_TOL
from scenarios.schema.constraints import RESERVED_NAMES
from scenarios.schema.estimates import (
    COVARIANCE_ESTIMATORS,
    MEAN_ESTIMATORS,
    SOURCES,
    EstimatesSpec,
)
from scenarios.schema.model import MODEL_KINDS, OBJECTIVE_PARAM, OBJECTIVES, PRIORS, ModelSpec
from scenarios.schema.portfolio import Holdings, Portfolio
from scenarios.schema.scenario import Scenario, load_scenario
from scenarios.schema.simulation import (
    BACKTEST_TARGETS,
    MC_DISTRIBUTIONS,
    MC_SPENDING_RULES,
    POLICY_KINDS,
    BacktestSpec,
    MonteCarloSpec,
)
from scenarios.schema.tactical import Tactical, TacticalRule, check_expression
from scenarios.schema.tax import TaxSpec
from scenarios.schema.trading import RebalanceSpec

__all__ = [
    "BACKTEST_TARGETS",
    "COVARIANCE_ESTIMATORS",
    "MC_DISTRIBUTIONS",
    "MC_SPENDING_RULES",
    "MEAN_ESTIMATORS",
    "MODEL_KINDS",
    "OBJECTIVES",
    "OBJECTIVE_PARAM",
    "POLICY_KINDS",
    "PRIORS",
    "RESERVED_NAMES",
    "SOURCES",
    "WEIGHT_TOL",
    "BacktestSpec",
    "EstimatesSpec",
    "Holdings",
    "ModelSpec",
    "MonteCarloSpec",
    "Portfolio",
    "RebalanceSpec",
    "Scenario",
    "Tactical",
    "TacticalRule",
    "TaxSpec",
    "check_expression",
    "load_scenario",
]
