"""The hostile-input catalogue through the Python API (issue 10).

Public functions of ``optimizer``, ``models`` and ``scenarios`` fed misaligned
labels, NaN or inf, wrong types, values out of range, asymmetric or non-PSD
covariances, empty inputs, duplicate labels, unknown tags and conflicting
constraints: each must raise the right type from :mod:`optimizer.errors` with a
message that names the culprit (asset, date, argument, constraint, value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import rebalance_cases as rc
from rebalance_cases import ASSETS, COV, HOLDINGS, TARGET, UNI

import scenarios
from models import covariance, expected_returns, returns, risk
from models import mean_variance as mv
from models.black_litterman import View, black_litterman
from models.cvar import min_cvar
from models.mean_risk import min_risk
from models.risk_parity import risk_parity
from optimizer import Universe
from optimizer import constraints as C
from optimizer.costs import CostModel
from optimizer.errors import InfeasibleError, InputError
from optimizer.rebalance import Rebalancer, rebalance
from scenarios import attribution, montecarlo, stress, tactical
from scenarios import backtest as bt
from scenarios.schema import load_scenario

MU = pd.Series([0.08, 0.08, 0.04, 0.07], index=ASSETS)
CORR = pd.DataFrame(rc.CORR, index=ASSETS, columns=ASSETS)
VOL = pd.Series(rc.VOL, index=ASSETS)
#: Correlations 0.9, 0.9 and -0.9 among three assets: not positive semidefinite.
BAD_CORR = pd.DataFrame(
    [[1, 0.9, -0.9, 0], [0.9, 1, 0.9, 0], [-0.9, 0.9, 1, 0], [0, 0, 0, 1.0]],
    index=ASSETS,
    columns=ASSETS,
)
NON_PSD = BAD_CORR * np.outer(VOL, VOL)
DATES = pd.date_range("2020-01-31", periods=36, freq="ME")
RETS = pd.DataFrame(
    np.random.default_rng(0).normal(0.005, 0.04, (36, 4)), index=DATES, columns=ASSETS
)
PRICES = (1 + RETS).cumprod() * 100
DAY = "2020-06-30"  # DATES[5]
DUP = ["US_EQ", "US_EQ", "BONDS", "REITS"]
EQUITY_FLOOR = C.GroupLimit(tag="equity", min=0.7, name="equity floor")
BOND_FLOOR = C.GroupLimit(tag="fixed income", min=0.5, name="bond floor")
RULE = tactical.Rule("rich", "pe > 20", -0.05)
W_ROW, MU_ROW = TARGET.to_frame().T, MU.to_frame().T
FACTORS = RETS.iloc[:, :2].set_axis(["F1", "F2"], axis=1)


def cell(frame: pd.DataFrame, row: int, col: str, value: object) -> pd.DataFrame:
    """A copy of ``frame`` with one cell changed."""
    out = frame.copy()
    out.iloc[row, out.columns.get_loc(col)] = value
    return out


def sym(frame: pd.DataFrame, a: str, b: str, value: float) -> pd.DataFrame:
    """A copy of a square ``frame`` with the (a, b) entry alone changed."""
    out = frame.copy()
    out.loc[a, b] = value
    return out


def without(series: pd.Series, label: str, value: float = np.nan) -> pd.Series:
    """A copy of ``series`` with ``label`` set to ``value``."""
    out = series.copy().astype(float)
    out[label] = value
    return out


def solve(*constraints: object, universe: Universe | None = None) -> object:
    """Minimum variance of COV under ``constraints``."""
    return mv.min_variance(COV, constraints=list(constraints), universe=universe)


def trade(**options: object) -> object:
    """The rebalance of HOLDINGS to TARGET with ``options``."""
    return rebalance(HOLDINGS, TARGET, cov=COV, **options)


def tilt(indicators: dict, offset: dict) -> object:
    """The tactical overlay of TARGET by RULE (P/E above 20: equity -5 points)."""
    return tactical.overlay(TARGET, indicators, [RULE], universe=UNI, band=0.1, offset=offset)


@dataclass(frozen=True)
class Api:
    """One API case: the call, the exception type it must raise, the culprits its message names."""

    id: str
    call: Callable[[], object]
    error: type[Exception]
    culprits: tuple[str, ...]


def api(id: str, call: Callable[[], object], error: type[Exception], *culprits: str) -> Api:
    """An :class:`Api` case in one line."""
    return Api(id, call, error, culprits)


I, F = InputError, InfeasibleError
CORR_12 = sym(sym(CORR, "US_EQ", "REITS", 1.2), "REITS", "US_EQ", 1.2)

# fmt: off
CASES = [
    # ---------------------------------------------------------------- models.returns
    api("from_prices-list", lambda: returns.from_prices([[1, 2], [3, 4]]), I, "prices", "list"),
    api("from_prices-nan", lambda: returns.from_prices(cell(PRICES, 5, "INTL_EQ", np.nan)), I,
        "missing values (NaN) for INTL_EQ: 2020-06-30", "missing='drop'"),
    api("from_prices-inf", lambda: returns.from_prices(cell(PRICES, 5, "BONDS", np.inf)), I,
        "infinite values: BONDS on 2020-06-30"),
    api("from_prices-negative", lambda: returns.from_prices(cell(PRICES, 5, "INTL_EQ", -3.0)), I,
        "prices must be positive", "INTL_EQ", DAY, "-3"),
    api("from_prices-zero", lambda: returns.from_prices(cell(PRICES, 5, "BONDS", 0.0)), I,
        "BONDS first on 2020-06-30 (0)"),
    api("from_prices-text",
        lambda: returns.from_prices(cell(PRICES.astype({"REITS": object}), 3, "REITS", "n/a")), I,
        "non-numeric columns: REITS"),
    api("from_prices-kind", lambda: returns.from_prices(PRICES, kind="logg"), I, "kind='logg'",
        "'log'"),
    api("from_prices-missing", lambda: returns.from_prices(PRICES, missing="dorp"), I,
        "missing='dorp'", "'drop'"),
    api("from_prices-duplicate-columns", lambda: returns.from_prices(PRICES.set_axis(DUP, axis=1)),
        I, "duplicate asset ids: US_EQ"),
    api("from_prices-duplicate-dates",
        lambda: returns.from_prices(PRICES.set_axis([*DATES[:-1], DATES[-2]])), I,
        "duplicate dates: 2022-11-30"),
    api("from_prices-empty", lambda: returns.from_prices(PRICES.iloc[:0]), I, "0 observation"),
    api("from_prices-no-dates", lambda: returns.from_prices(PRICES.reset_index(drop=True)), I,
        "DatetimeIndex", "RangeIndex"),
    api("to_prices-nan", lambda: returns.to_prices(cell(RETS, 3, "INTL_EQ", np.nan)), I,
        "NaN or inf", "INTL_EQ"),
    api("periods_per_year-one-date", lambda: returns.periods_per_year(RETS.iloc[:1]), I,
        "fewer than 2 dates"),
    # ---------------------------------------------------------------- models.covariance
    api("sample-nan", lambda: covariance.sample(cell(RETS, 3, "BONDS", np.nan)), I, "NaN or inf",
        "BONDS"),
    api("sample-inf", lambda: covariance.sample(cell(RETS, 3, "REITS", -np.inf)), I, "NaN or inf",
        "REITS"),
    api("sample-duplicate-columns", lambda: covariance.sample(RETS.set_axis(DUP, axis=1)), I,
        "duplicate asset ids: US_EQ"),
    api("sample-one-row", lambda: covariance.sample(RETS.iloc[:1], periods_per_year=12), I,
        "returns has 1 observations"),
    api("sample-ndarray", lambda: covariance.sample(RETS.to_numpy()), I, "pandas DataFrame",
        "ndarray"),
    api("sample-periods-zero", lambda: covariance.sample(RETS, periods_per_year=0), I,
        "periods_per_year must be a positive number", "got 0"),
    api("sample-periods-bool", lambda: covariance.sample(RETS, periods_per_year=True), I,
        "periods_per_year must be a positive number", "got True"),
    api("sample-periods-text", lambda: covariance.sample(RETS, periods_per_year="12"), I,
        "periods_per_year must be a positive number", "got '12'"),
    api("oas-nan", lambda: covariance.oas(cell(RETS, 3, "INTL_EQ", np.nan)), I, "NaN or inf",
        "INTL_EQ"),
    api("nonlinear_shrinkage-duplicates",
        lambda: covariance.nonlinear_shrinkage(RETS.set_axis(DUP, axis=1)), I,
        "duplicate asset ids: US_EQ"),
    api("factor_regression-dates",
        lambda: covariance.factor_regression(RETS, FACTORS.iloc[5:]),
        I, "factors and returns must have the same dates", "5 returns dates missing",
        "(2020-01-31, 2020-02-29, 2020-03-31, 2020-04-30, 2020-05-31)"),
    api("ewma-halflife-zero", lambda: covariance.ewma(RETS, halflife=0), I, "halflife", "got 0"),
    api("ewma-halflife-text", lambda: covariance.ewma(RETS, halflife="3"), I, "halflife", "'3'"),
    api("ewma-halflife-nan", lambda: covariance.ewma(RETS, halflife=float("nan")), I, "halflife",
        "nan"),
    api("ledoit_wolf-target", lambda: covariance.ledoit_wolf(RETS, target="idnetity"), I,
        "'idnetity'", "'identity'"),
    api("factor_model-too-many", lambda: covariance.factor_model(RETS, n_factors=9), I, "n_factors",
        "1..4", "got 9"),
    api("factor_model-fraction", lambda: covariance.factor_model(RETS, n_factors=1.5), I,
        "n_factors", "got 1.5"),
    api("from_cma-negative-vol", lambda: covariance.from_cma(without(VOL, "INTL_EQ", -0.18), CORR),
        I, "volatility must be > 0", "INTL_EQ"),
    api("from_cma-nan-vol", lambda: covariance.from_cma(without(VOL, "BONDS"), CORR), I,
        "volatility", "BONDS"),
    api("from_cma-list-vol", lambda: covariance.from_cma(list(VOL), CORR), I, "volatility", "list"),
    api("from_cma-corr-above-1", lambda: covariance.from_cma(VOL, CORR_12), I,
        "correlation must be in [-1, 1]", "US_EQ", "REITS", "1.2"),
    api("from_cma-asymmetric", lambda: covariance.from_cma(VOL, sym(CORR, "US_EQ", "INTL_EQ", 0.3)),
        I, "not symmetric", "(US_EQ, INTL_EQ) = 0.3", "0.8"),
    api("from_cma-diagonal", lambda: covariance.from_cma(VOL, sym(CORR, "BONDS", "BONDS", 0.9)), I,
        "diagonal must be 1", "BONDS has 0.9"),
    api("from_cma-misaligned", lambda: covariance.from_cma(VOL.rename({"REITS": "GOLD"}), CORR), I,
        "missing GOLD", "extra REITS"),
    api("from_cma-not-psd-strict", lambda: covariance.from_cma(VOL, BAD_CORR, strict=True), I,
        "not positive semidefinite", "smallest eigenvalue -0.8", "strict=False"),
    api("nearest_psd-nan", lambda: covariance.nearest_psd(sym(COV, "INTL_EQ", "BONDS", np.nan)), I,
        "NaN or inf", "(INTL_EQ, BONDS)"),
    api("nearest_psd-kind", lambda: covariance.nearest_psd(COV, kind="corr"), I, "'corr'",
        "'correlation'"),
    api("nearest_psd-not-square", lambda: covariance.nearest_psd(COV.iloc[:3]), I, "not square",
        "3 rows x 4"),
    # ---------------------------------------------------------------- models.expected_returns
    api("historical_mean-method", lambda: expected_returns.historical_mean(RETS, method="geo"), I,
        "method='geo'", "'geometric'"),
    api("historical_mean-nan",
        lambda: expected_returns.historical_mean(cell(RETS, 4, "INTL_EQ", np.nan)), I, "NaN or inf",
        "INTL_EQ"),
    api("ewma_mean-halflife-negative", lambda: expected_returns.ewma_mean(RETS, halflife=-2), I,
        "halflife", "-2"),
    api("shrunk_mean-target", lambda: expected_returns.shrunk_mean(RETS, target="grand"), I,
        "target='grand'", "'grand_mean'"),
    api("equilibrium-unknown-asset",
        lambda: expected_returns.equilibrium(COV, {"US_EQ": 0.5, "GOLD": 0.5}, risk_aversion=2.5),
        I, "market_weights", "GOLD", "INTL_EQ"),
    api("equilibrium-nan-weight",
        lambda: expected_returns.equilibrium(COV, without(TARGET, "BONDS"), risk_aversion=2.5), I,
        "market_weights", "NaN or inf", "BONDS"),
    api("equilibrium-negative-aversion",
        lambda: expected_returns.equilibrium(COV, TARGET, risk_aversion=-1), I, "risk_aversion",
        "got -1"),
    api("equilibrium-text-aversion",
        lambda: expected_returns.equilibrium(COV, TARGET, risk_aversion="2.5"), I, "risk_aversion",
        "'2.5'"),
    api("equilibrium-bool-aversion",
        lambda: expected_returns.equilibrium(COV, TARGET, risk_aversion=True), I, "risk_aversion",
        "True"),
    # ---------------------------------------------------------------- models.mean_variance
    api("min_variance-asymmetric", lambda: mv.min_variance(sym(COV, "US_EQ", "INTL_EQ", 0.05)), I,
        "cov is not symmetric", "(US_EQ, INTL_EQ) = 0.05"),
    api("min_variance-nan", lambda: mv.min_variance(sym(COV, "BONDS", "BONDS", np.nan)), I,
        "cov has NaN or inf", "BONDS"),
    api("min_variance-not-psd", lambda: mv.min_variance(NON_PSD), I, "not positive semidefinite",
        "nearest_psd"),
    api("min_variance-negative-variance",
        lambda: mv.min_variance(sym(COV, "BONDS", "BONDS", -0.01)), I, "negative variances",
        "BONDS"),
    api("min_variance-list", lambda: mv.min_variance(COV.to_numpy().tolist()), I, "cov", "list"),
    api("min_variance-duplicate-labels",
        lambda: mv.min_variance(COV.set_axis(DUP, axis=0).set_axis(DUP, axis=1)), I,
        "duplicate asset ids: US_EQ"),
    api("min_variance-empty", lambda: mv.min_variance(COV.iloc[:0, :0]), I, "cov is empty"),
    api("min_variance-misaligned-axes",
        lambda: mv.min_variance(COV.rename(columns={"REITS": "GOLD"})), I, "only in rows: REITS",
        "only in columns: GOLD"),
    api("min_variance-text", lambda: mv.min_variance(COV.astype(str)), I, "cov must be numeric"),
    api("max_sharpe-mu-missing", lambda: mv.max_sharpe(MU.drop("BONDS"), COV), I,
        "missing from expected returns (mu): BONDS"),
    api("max_sharpe-mu-extra",
        lambda: mv.max_sharpe(pd.concat([MU, pd.Series({"GOLD": 0.03})]), COV), I,
        "in expected returns (mu) but not in cov: GOLD"),
    api("max_sharpe-mu-nan", lambda: mv.max_sharpe(without(MU, "REITS"), COV), I, "NaN or inf",
        "REITS"),
    api("max_sharpe-mu-inf", lambda: mv.max_sharpe(without(MU, "REITS", np.inf), COV), I,
        "NaN or inf", "REITS"),
    api("max_sharpe-mu-text", lambda: mv.max_sharpe(MU.astype(str), COV), I,
        "(mu) must be numeric"),
    api("max_sharpe-mu-list", lambda: mv.max_sharpe(list(MU), COV), I, "(mu)", "list"),
    api("max_sharpe-mu-duplicates", lambda: mv.max_sharpe(MU.set_axis(DUP), COV), I,
        "duplicate asset ids: US_EQ"),
    api("max_sharpe-rf-nan", lambda: mv.max_sharpe(MU, COV, risk_free_rate=np.nan), I,
        "risk_free_rate", "nan"),
    api("efficient_return-nan", lambda: mv.efficient_return(MU, COV, target_return=np.nan), I,
        "target_return", "nan"),
    api("efficient_risk-negative", lambda: mv.efficient_risk(MU, COV, target_volatility=-0.1), I,
        "target_volatility", "-0.1"),
    api("max_utility-zero-aversion", lambda: mv.max_utility(MU, COV, risk_aversion=0), I,
        "risk_aversion", "got 0"),
    api("efficient_frontier-points", lambda: mv.efficient_frontier(MU, COV, points=1), I, "points",
        "got 1"),
    api("efficient_frontier-points-text", lambda: mv.efficient_frontier(MU, COV, points="10"), I,
        "points", "'10'"),
    api("efficient_frontier-mu-missing",
        lambda: mv.efficient_frontier(MU.drop("US_EQ"), COV, points=5), I,
        "missing from expected returns (mu): US_EQ"),
    api("compiled-solve-mu-nan",
        lambda: mv.compile("max_sharpe", COV).solve(mu=without(MU, "BONDS")), I, "NaN or inf",
        "BONDS"),
    api("compile-objective", lambda: mv.compile("max_sharp", COV), I, "'max_sharp'", "max_sharpe"),
    api("compiled-solve-without-parameter", lambda: mv.compile("max_utility", COV).solve(mu=MU), I,
        "max_utility needs risk_aversion"),
    api("unknown-solver", lambda: mv.min_variance(COV, solvers=["GUROBI2"]), I, "'GUROBI2'",
        "CLARABEL"),
    # -------------------------------------------------------- optimizer: universe and constraints
    api("universe-duplicates", lambda: Universe(assets=["A", "B", "A"]), I,
        "duplicate asset ids: A"),
    api("universe-empty", lambda: Universe(assets=[]), I, "at least one asset"),
    api("universe-tags-unknown-asset", lambda: Universe(assets=["A", "B"], tags={"C": ["equity"]}),
        I, "unknown asset 'C'"),
    api("universe-one-string", lambda: Universe(assets="AB"), I, "not one string"),
    api("universe-unknown-tag", lambda: UNI.members("equty"), I, "unknown tag 'equty'",
        "(did you mean 'equity'?)"),
    api("universe-misaligned",
        lambda: mv.min_variance(COV, universe=Universe(assets=["US_EQ", "INTL_EQ"])), I,
        "BONDS, REITS"),
    api("group-unknown-tag", lambda: solve(C.GroupLimit(tag="equty", max=0.5), universe=UNI), I,
        "unknown tag 'equty'", "(did you mean 'equity'?)"),
    api("group-tag-without-universe",
        lambda: mv.min_variance(COV, constraints=[C.GroupLimit(tag="equity", max=0.5, name="cap")]),
        I, "'cap'", "tag 'equity'", "universe="),
    api("group-min-above-max", lambda: C.GroupLimit(tag="equity", min=0.6, max=0.5, name="cap"), I,
        "'cap'", "min 0.6 is above max 0.5"),
    api("group-tag-and-assets", lambda: C.GroupLimit(tag="equity", assets=["US_EQ"], max=0.5), I,
        "exactly one of tag= or assets="),
    api("group-unknown-asset",
        lambda: solve(C.GroupLimit(assets=["US_EQ", "GOLD"], max=0.5, name="pair")), I, "'pair'",
        "unknown assets: GOLD"),
    api("group-max-nan", lambda: C.GroupLimit(tag="equity", max=np.nan), I, "'group equity'",
        "max is NaN"),
    api("group-max-text", lambda: C.GroupLimit(tag="equity", max="0.5"), I, "'group equity'",
        "max must be a number, got '0.5'"),
    api("budget-bool", lambda: C.Budget(True), I, "'budget'", "total must be a number, got True"),
    api("bounds-text-by-asset", lambda: C.Bounds(upper={"US_EQ": "0.5"}), I, "'bounds'",
        "not a number for US_EQ (got '0.5')"),
    api("band-width-text", lambda: C.DeviationBand(reference=TARGET, width="0.05"), I,
        "'deviation band'", "width must be a number", "'0.05'"),
    api("band-reference-text", lambda: C.DeviationBand(reference=TARGET.astype(str), width=0.05),
        I, "'deviation band'", "reference must map asset ids to numbers", "US_EQ"),
    api("turnover-max-text", lambda: C.TurnoverLimit(current=TARGET, max="0.1"), I,
        "'turnover limit'", "max must be a number, got '0.1'"),
    api("exposure-scores-text", lambda: C.ExposureLimit(scores={"US_EQ": "7"}, min=6, name="ESG"),
        I, "'ESG'", "scores must map asset ids to numbers", "US_EQ"),
    api("linear-upper-text",
        lambda: C.LinearConstraint(coefficients={"US_EQ": 1}, upper="0.1", name="cap"), I, "'cap'",
        "upper must be a number", "'0.1'"),
    api("linear-coefficients-text",
        lambda: C.LinearConstraint(pd.DataFrame({"US_EQ": ["1"]}), upper=0.1, name="cap"), I,
        "'cap'", "coefficients must be numbers", "US_EQ"),
    api("one-constraint-not-a-list",
        lambda: C.resolve(C.LongOnly(), ASSETS, None), I,
        "constraints must be a list of constraint objects", "LongOnly(", "pass [LongOnly(...)]"),
    api("constraints-string", lambda: trade(constraints="equity <= 0.5"), I,
        "constraints must be a list of constraint objects", "'equity <= 0.5'"),
    api("bounds-lower-above-upper",
        lambda: mv.min_variance(COV, constraints=[C.Bounds(lower=0.5, upper=0.2)]), I, "'bounds'",
        "lower bound 0.5 is above upper bound 0.2 for US_EQ"),
    api("bounds-unknown-asset",
        lambda: mv.min_variance(COV, constraints=[C.Bounds(upper={"US_EQ": 0.5, "GOLD": 0.3})]), I,
        "'bounds'", "unknown assets: GOLD"),
    api("bounds-boolean", lambda: C.Bounds(upper=True), I, "'bounds'", "got True"),
    api("band-negative", lambda: C.DeviationBand(reference=TARGET, width=-0.05), I,
        "'deviation band'", "width must be non-negative"),
    api("band-unknown-asset",
        lambda: solve(C.DeviationBand(reference=pd.Series({"US_EQ": 0.5, "GOLD": 0.5}), width=0.1)),
        I, "'deviation band'", "unknown assets: GOLD"),
    api("turnover-negative", lambda: C.TurnoverLimit(current=TARGET, max=-0.1), I,
        "'turnover limit'", "non-negative"),
    api("tracking-error-negative", lambda: C.TrackingErrorLimit(benchmark=TARGET, max=-0.01), I,
        "'tracking error limit'", "non-negative"),
    api("exposure-score-missing",
        lambda: solve(C.ExposureLimit(scores={"US_EQ": 7}, min=6, name="ESG")), I, "'ESG'",
        "score is missing for INTL_EQ, BONDS, REITS"),
    api("exposure-score-nan",
        lambda: solve(C.ExposureLimit(scores=without(MU, "INTL_EQ"), min=0, name="ESG")), I,
        "'ESG'", "score is NaN for INTL_EQ"),
    api("linear-unknown-asset",
        lambda: solve(C.LinearConstraint(coefficients={"GOLD": 1}, upper=0.1, name="gold")), I,
        "'gold'", "unknown assets: GOLD"),
    api("priority-zero", lambda: C.GroupLimit(tag="equity", max=0.5, priority=0), I, "priority",
        "got 0"),
    api("duplicate-constraint-names",
        lambda: solve(
            C.GroupLimit(tag="equity", max=0.5, name="cap"),
            C.GroupLimit(tag="real assets", max=0.5, name="cap"),
            universe=UNI,
        ),
        I, "share the name 'cap'"),
    api("not-a-constraint", lambda: mv.min_variance(COV, constraints=["equity <= 0.5"]), I,
        "'equity <= 0.5'", "optimizer.constraints"),
    api("conflicting-floors",
        lambda: mv.min_variance(COV, constraints=[EQUITY_FLOOR, BOND_FLOOR], universe=UNI), F,
        "'equity floor'", "'bond floor'", "relax 'equity floor' by 0.2"),
    api("caps-below-budget",
        lambda: mv.min_variance(COV, constraints=[C.Bounds(upper=0.2, name="cap 20")]), F,
        "'cap 20'", "sum to 0.8", "'budget'"),
    api("leverage-zero", lambda: mv.min_variance(COV, constraints=[C.LeverageLimit(max=0)]), F,
        "'leverage limit'", "'budget'"),
    api("view-unknown-asset", lambda: black_litterman(MU, COV, views=[View.absolute("GOLD", 0.1)]),
        I, "unknown asset 'GOLD'", "universe="),
    api("view-unknown-tag",
        lambda: black_litterman(MU, COV, views=[View.absolute("equty", 0.1)], universe=UNI), I,
        "'equty'", "(did you mean 'equity'?)"),
    api("view-confidence", lambda: View(picks={"US_EQ": 1}, value=0.1, confidence=1.5), I, "US_EQ",
        "confidence", "1.5"),
    api("view-same-asset", lambda: View.relative("US_EQ", "US_EQ", 0.02), I, "'US_EQ'",
        "same asset"),
    api("view-empty-picks", lambda: View(picks={}, value=0.1), I, "picks is empty"),
    api("view-value-nan", lambda: View(picks={"US_EQ": 1}, value=np.nan), I, "US_EQ",
        "value is not finite"),
    api("black_litterman-tau",
        lambda: black_litterman(MU, COV, views=[View.absolute("US_EQ", 0.1)], tau=0), I, "tau",
        "got 0"),
    api("black_litterman-prior-misaligned",
        lambda: black_litterman(MU.drop("BONDS"), COV, views=[View.absolute("US_EQ", 0.1)]), I,
        "prior_mu", "BONDS"),
    api("black_litterman-negative-omega",
        lambda: black_litterman(MU, COV, views=[View.absolute("US_EQ", 0.1)], omega=[-1.0]), I,
        "omega variances must be >= 0", "'US_EQ = 10.0%'"),
    api("black_litterman-omega-length",
        lambda: black_litterman(MU, COV, views=[View.absolute("US_EQ", 0.1)], omega=[0.1, 0.2]), I,
        "omega has 2 variances for 1 views"),
    api("black_litterman-one-view",
        lambda: black_litterman(MU, COV, views=View.absolute("US_EQ", 0.1)), I,
        "views must be a list", "View"),
    api("risk_parity-negative-budget",
        lambda: risk_parity(COV, budgets=without(TARGET, "BONDS", -0.1)), I,
        "budgets must be positive", "BONDS (-0.1)"),
    api("risk_parity-unknown-asset", lambda: risk_parity(COV, budgets={"US_EQ": 0.5, "GOLD": 0.5}),
        I, "budgets", "GOLD"),
    api("risk_parity-nan-budget", lambda: risk_parity(COV, budgets=without(TARGET, "INTL_EQ")), I,
        "budgets", "INTL_EQ"),
    api("risk_parity-not-psd", lambda: risk_parity(NON_PSD), I, "not positive semidefinite"),
    api("min_cvar-alpha", lambda: min_cvar(RETS, alpha=1.0), I, "alpha", "got 1.0"),
    api("min_cvar-alpha-text", lambda: min_cvar(RETS, alpha="0.95"), I, "alpha", "got '0.95'"),
    api("min_risk-alpha-text", lambda: min_risk(RETS, risk="cvar", alpha="0.95"), I, "alpha",
        "got '0.95'"),
    api("min_risk-periods-bool", lambda: min_risk(RETS, periods_per_year=True), I,
        "periods_per_year", "got True"),
    api("var-alpha-text", lambda: risk.value_at_risk(TARGET, RETS, alpha="0.95"), I, "alpha",
        "'0.95'"),
    api("min_cvar-nan", lambda: min_cvar(cell(RETS, 2, "BONDS", np.nan)), I, "scenario_returns",
        "BONDS"),
    api("volatility-misaligned", lambda: risk.portfolio_volatility(TARGET.drop("US_EQ"), COV), I,
        "weights", "US_EQ"),
    api("return-nan-weight", lambda: risk.portfolio_return(without(TARGET, "REITS"), MU), I,
        "weights", "REITS"),
    api("contributions-list", lambda: risk.risk_contributions(list(TARGET), COV), I, "weights",
        "list"),
    api("shortfall-nan", lambda: risk.expected_shortfall(TARGET, cell(RETS, 2, "BONDS", np.nan)), I,
        "NaN or inf", "BONDS"),
    api("var-method", lambda: risk.value_at_risk(TARGET, RETS, method="histrical"), I,
        "'histrical'", "'historical'"),
    api("var-alpha", lambda: risk.value_at_risk(TARGET, RETS, alpha=1.5), I, "alpha", "1.5"),
    # ---------------------------------------------------------------- optimizer.rebalance and costs
    api("rebalance-target-unknown-asset",
        lambda: rebalance(HOLDINGS, TARGET.rename({"REITS": "GOLD"}), cov=COV), I, "target",
        "GOLD"),
    api("rebalance-target-nan", lambda: rebalance(HOLDINGS, without(TARGET, "BONDS"), cov=COV), I,
        "target", "BONDS"),
    api("rebalance-negative-holding",
        lambda: rebalance(without(HOLDINGS, "BONDS", -5.0), TARGET, cov=COV), I,
        "negative holdings", "BONDS"),
    api("rebalance-holdings-list", lambda: rebalance(list(HOLDINGS), TARGET, cov=COV), I,
        "holdings", "list"),
    api("rebalance-target-sum", lambda: rebalance(HOLDINGS, TARGET * 1.1, cov=COV), I,
        "sum to 1.1"),
    api("rebalance-cash-flow-nan", lambda: trade(cash_flow=np.nan), I, "cash_flow"),
    api("rebalance-cash-flow-text", lambda: trade(cash_flow="1000"), I,
        "cash_flow must be a number, got '1000'"),
    api("rebalance-cash-flow-bool", lambda: trade(cash_flow=True), I,
        "cash_flow must be a number, got True"),
    api("rebalance-min-trade-text", lambda: trade(min_trade="5"), I,
        "min_trade must be a number, got '5'"),
    api("rebalance-tracking-weight-bool", lambda: trade(tracking_weight=True), I,
        "tracking_weight must be a number, got True"),
    api("rebalance-max-turnover-text", lambda: trade(max_turnover="0.1"), I,
        "max_turnover must be a number, got '0.1'"),
    api("rebalance-band-nan", lambda: trade(no_trade_bands=np.nan), I, "no_trade_bands", "nan"),
    api("rebalance-one-constraint", lambda: trade(constraints=C.LongOnly()), I,
        "constraints must be a list of constraint objects", "pass [LongOnly(...)]"),
    api("rebalancer-plan-cash-flow-text",
        lambda: Rebalancer(COV).plan(HOLDINGS, TARGET, cash_flow="-5e4"), I,
        "cash_flow must be a number, got '-5e4'"),
    api("rebalance-withdraw-too-much", lambda: trade(cash_flow=-2e6), F,
        "withdrawal of 2,000,000.00", "1,089,000.00"),
    api("rebalance-zero-price", lambda: trade(prices=pd.Series([100, 0, 50, 20.0], index=ASSETS)),
        I, "prices must be positive", "INTL_EQ"),
    api("rebalance-price-missing",
        lambda: trade(prices=pd.Series([100, 10, 50.0], index=ASSETS[:3])), I, "prices missing",
        "REITS"),
    api("rebalance-holdings_as", lambda: trade(holdings_as="values"), I, "holdings_as", "'values'"),
    api("rebalance-untradeable-unknown", lambda: trade(untradeable=["GOLD"]), I, "untradeable",
        "'GOLD'"),
    api("rebalance-lots-without-prices", lambda: trade(lot_size=10), I, "lot_size", "prices="),
    api("rebalance-negative-min-trade", lambda: trade(min_trade=-5), I, "min_trade", "-5"),
    api("rebalance-duplicate-holdings", lambda: rebalance(HOLDINGS.set_axis(DUP), TARGET, cov=COV),
        I, "holdings", "duplicate asset ids: US_EQ"),
    api("rebalance-conflicting-floors",
        lambda: trade(constraints=[EQUITY_FLOOR, BOND_FLOOR], universe=UNI), F, "'equity floor'",
        "'bond floor'"),
    api("rebalancer-unknown-holding",
        lambda: Rebalancer(COV).plan(HOLDINGS.rename({"REITS": "GOLD"}), TARGET), I,
        "holdings names unknown assets: GOLD"),
    api("rebalancer-nan-holding", lambda: Rebalancer(COV).plan(without(HOLDINGS, "BONDS"), TARGET),
        I, "holdings", "NaN or inf", "BONDS"),
    api("rebalancer-not-psd", lambda: Rebalancer(NON_PSD), I, "not positive semidefinite"),
    api("costs-negative-bps", lambda: trade(costs=CostModel(bps={"US_EQ": -5, "default": 10})), I,
        "bps", "'US_EQ'", "-5"),
    api("costs-text-bps", lambda: trade(costs=CostModel(bps="10")), I, "bps", "'10'"),
    api("costs-unknown-asset", lambda: trade(costs=CostModel(bps={"GOLD": 10})), I, "bps",
        "'GOLD'"),
    api("costs-negative-adv",
        lambda: trade(costs=CostModel(impact=0.1, adv=without(HOLDINGS, "US_EQ", -1.0))),
        I, "adv must be positive for US_EQ"),
    api("costs-fixed-nan", lambda: CostModel(fixed=np.nan), I, "fixed", "nan"),
    api("costs-impact-without-adv", lambda: CostModel(impact=0.1), I, "impact", "adv="),
    # -------------------------------------------------- scenarios: backtest, attribution, stress
    api("backtest-empty", lambda: bt.backtest(RETS.iloc[:0], TARGET), I, "0 observations"),
    api("backtest-target-unknown-asset",
        lambda: bt.backtest(RETS, TARGET.rename({"REITS": "GOLD"})), I, "GOLD"),
    api("backtest-target-sum", lambda: bt.backtest(RETS, TARGET * 2), I, "2020-01-31", "sum to 2"),
    api("backtest-nan-return", lambda: bt.backtest(cell(RETS, 4, "INTL_EQ", np.nan), TARGET), I,
        "INTL_EQ"),
    api("backtest-initial-value", lambda: bt.backtest(RETS, TARGET, initial_value=0), I,
        "initial_value", "0"),
    api("backtest-initial-value-text", lambda: bt.backtest(RETS, TARGET, initial_value="1e6"), I,
        "initial_value must be a number, got '1e6'"),
    api("backtest-risk-free-text", lambda: bt.backtest(RETS, TARGET, risk_free_rate="0.02"), I,
        "risk_free_rate must be a number, got '0.02'"),
    api("backtest-cov-refresh-fraction", lambda: bt.backtest(RETS, TARGET, cov_refresh=2.5), I,
        "cov_refresh must be a whole number, got 2.5"),
    api("metrics-periods-zero", lambda: bt.metrics(RETS["US_EQ"], periods_per_year=0), I,
        "periods_per_year must be a positive number", "got 0"),
    api("metrics-alpha-text", lambda: bt.metrics(RETS["US_EQ"], periods_per_year=12, alpha="x"),
        I, "alpha", "got 'x'"),
    api("spending-rate-text", lambda: bt.SpendingRule(rate="0.04"), I,
        "SpendingRule rate must be a number, got '0.04'"),
    api("drawdown-threshold-text", lambda: bt.DrawdownRule(threshold="0.2", defensive=TARGET), I,
        "DrawdownRule threshold must be a number, got '0.2'"),
    api("backtest-policy-name", lambda: bt.backtest(RETS, TARGET, policy="monthly"), I,
        "'monthly'"),
    api("backtest-cash-flow-date",
        lambda: bt.backtest(RETS, TARGET, cash_flows=pd.Series({pd.Timestamp("1999-01-31"): 1e4})),
        I, "cash_flows", "1999-01-31"),
    api("threshold-negative", lambda: bt.Threshold(band=-0.1), I, "Threshold band", "-0.1"),
    api("calendar-zero", lambda: bt.Calendar(0), I, "Calendar every", "0"),
    api("calendar-text", lambda: bt.Calendar("3"), I, "Calendar every", "'3'"),
    api("drawdown-threshold", lambda: bt.DrawdownRule(threshold=1.5, defensive=TARGET), I,
        "DrawdownRule threshold", "1.5"),
    api("spending-negative", lambda: bt.SpendingRule(rate=-0.04), I, "SpendingRule rate", "-0.04"),
    api("brinson-misaligned",
        lambda: attribution.brinson(TARGET, TARGET.rename({"REITS": "GOLD"}), MU, MU), I, "GOLD"),
    api("brinson-nan", lambda: attribution.brinson(without(TARGET, "BONDS"), TARGET, MU, MU), I,
        "port_weights", "BONDS"),
    api("brinson-duplicates", lambda: attribution.brinson(TARGET.set_axis(DUP), TARGET, MU, MU), I,
        "port_weights", "US_EQ"),
    api("brinson_multi-method",
        lambda: attribution.brinson_multi(W_ROW, W_ROW, MU_ROW, MU_ROW, method="carinno"), I,
        "'carinno'", "carino"),
    api("brinson_multi-dates",
        lambda: attribution.brinson_multi(W_ROW, W_ROW, MU_ROW, MU_ROW.set_axis([5])), I,
        "bench_returns does not cover the same dates as port_weights"),
    api("shock_vector-unknown", lambda: stress.shock_vector({"GOLD": -0.1}, ASSETS), I, "'GOLD'"),
    api("replay-nan",
        lambda: stress.replay(TARGET, cell(RETS, 3, "INTL_EQ", np.nan), "2020-01-31", "2020-12-31"),
        I, "INTL_EQ", "2020-04-30"),
    api("stress-unknown-key", lambda: stress.apply(TARGET, {"GOLD": -0.2}), I, "'GOLD'"),
    api("stress-unknown-tag", lambda: stress.apply(TARGET, {"equty": -0.2}, universe=UNI), I,
        "'equty'"),
    api("stress-below-100pct", lambda: stress.apply(TARGET, {"US_EQ": -1.5}), I, "'US_EQ'", "-1.5"),
    api("stress-nan-shock", lambda: stress.apply(TARGET, {"US_EQ": np.nan}), I, "'US_EQ'", "nan"),
    api("stress-text-shock", lambda: stress.apply(TARGET, {"US_EQ": "-0.2"}), I,
        "shock for 'US_EQ' must be a number, got '-0.2'"),
    api("stress-nan-weight", lambda: stress.apply(without(TARGET, "BONDS"), {"US_EQ": -0.2}), I,
        "weights are NaN or infinite for asset(s): BONDS"),
    api("stress-text-weight", lambda: stress.apply(TARGET.astype(object).where(
        TARGET.index != "REITS", "0.1"), {"US_EQ": -0.2}), I, "REITS", "'0.1'"),
    api("stress-floor-above-1", lambda: stress.apply(TARGET, {"US_EQ": -0.2}, value=1e6,
        floor=1.5), I, "floor must be in [0.0, 1.0], got 1.5"),
    api("stress-negative-value", lambda: stress.apply(TARGET, {"US_EQ": -0.2}, value=-1), I,
        "value must be a positive", "got -1"),
    api("stress-two-tags",
        lambda: stress.apply(TARGET, {"equity": -0.3, "liquid": -0.2}, universe=UNI), I, "US_EQ",
        "equity", "liquid"),
    api("replay-no-dates", lambda: stress.replay(TARGET, RETS, "2030-01-01", "2031-01-01"), I,
        "2030-01-01", "2031-01-01"),
    api("worst_window-too-long", lambda: stress.worst_window(TARGET, RETS, periods=100), I, "100",
        "36"),
    api("correlation_stress-intensity", lambda: stress.correlation_stress(TARGET, COV, intensity=2),
        I, "intensity", "2"),
    # ------------------------------------------------- scenarios: Monte Carlo, tactical, loading
    api("simulate-zero-paths", lambda: montecarlo.simulate(TARGET, MU, COV, paths=0), I, "paths",
        "0"),
    api("simulate-fraction-paths", lambda: montecarlo.simulate(TARGET, MU, COV, paths=10.5), I,
        "paths", "10.5"),
    api("simulate-negative-spending",
        lambda: montecarlo.simulate(TARGET, MU, COV, paths=10, spending_rate=-0.1), I,
        "spending_rate", "-0.1"),
    api("simulate-misaligned", lambda: montecarlo.simulate(TARGET, MU.drop("BONDS"), COV, paths=10),
        I, "mu", "BONDS"),
    api("simulate-spending-rule",
        lambda: montecarlo.simulate(TARGET, MU, COV, paths=10, spending_rule="yael"), I,
        "spending_rule", "'yael'"),
    api("simulate-negative-value", lambda: montecarlo.simulate(TARGET, MU, COV, paths=10, value=-1),
        I, "value", "-1"),
    api("simulate-paths-over-limit", lambda: montecarlo.simulate(TARGET, MU, COV, paths=10**12),
        I, "paths=1,000,000,000,000", "the limit is 50,000,000", "use fewer paths"),
    api("overlay-negative-band",
        lambda: tactical.overlay(TARGET, {"pe": 25}, [RULE], universe=UNI, band=-0.1,
                                 offset={"fixed income": 1.0}), I, "band must be >= 0",
        "got -0.1"),
    api("overlay-text-band",
        lambda: tactical.overlay(TARGET, {"pe": 25}, [RULE], universe=UNI, band="0.1",
                                 offset={"fixed income": 1.0}), I, "band must be a number",
        "'0.1'"),
    api("overlay-text-offset", lambda: tilt({"pe": 25}, offset={"fixed income": "1"}), I,
        "tactical offset must map asset ids to numbers", "'fixed income': '1'"),
    api("rule-text-tilt", lambda: tactical.Rule("rich", "pe > 20", "-0.05"), I,
        "tactical rule 'rich': equity must be a number, got '-0.05'"),
    api("condition-unknown-name",
        lambda: tactical.parse_condition("pe / pe_avg > 1.2", ["pe", "pe_average"]), I, "'pe_avg'",
        "(did you mean 'pe_average'?)"),
    api("condition-syntax", lambda: tactical.parse_condition("pe >> > 1", ["pe"]), I, "'pe >> > 1'",
        "column"),
    api("condition-call", lambda: tactical.parse_condition("__import__('os').getcwd() > 1", ["pe"]),
        I, "function calls are not allowed"),
    api("condition-attribute", lambda: tactical.parse_condition("pe.real > 1", ["pe"]), I,
        "attributes are not allowed", "pe.real"),
    api("overlay-offset-tag", lambda: tilt({"pe": 25}, offset={"bonds": 1.0}), I, "'bonds'"),
    api("overlay-unknown-indicator", lambda: tilt({"vix": 25}, offset={"fixed income": 1.0}), I,
        "'pe'", "known: vix"),
    api("load_scenario-number", lambda: load_scenario(123), I, "file path", "int"),
    api("load_scenario-missing", lambda: load_scenario("/nonexistent/x.toml"), I,
        "/nonexistent/x.toml", "not found"),
    api("run_scenario-missing-path", lambda: scenarios.run_scenario("/nonexistent/x.toml"), I,
        "/nonexistent/x.toml", "not found"),
    api("run_scenario-number", lambda: scenarios.run_scenario(123), I,
        "run_scenario takes a Scenario", "load_scenario", "got int"),
]
# fmt: on


def test_the_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 55
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_limits_the_loader_checks_hold_in_the_api() -> None:
    """One limit each: the scenario loader's and the command line's are the API's."""
    from scenarios import cli, engine
    from scenarios.schema import simulation

    assert simulation.MC_MAX_CELLS == montecarlo.MAX_CELLS
    assert cli.FRONTIER_POINTS_LIMIT == engine.MAX_FRONTIER_POINTS


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_api(c: Api) -> None:
    with pytest.raises(c.error) as info:
        c.call()
    message = str(info.value)
    for culprit in c.culprits:
        assert culprit in message, (culprit, message)
