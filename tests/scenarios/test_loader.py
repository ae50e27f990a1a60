"""Scenario files: a full endowment scenario loads right; every kind of mistake is named."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.black_litterman import View
from optimizer import InputError, Universe
from optimizer import constraints as C
from optimizer.costs import CostModel
from scenarios.schema import RebalanceSpec, check_expression, load_scenario

DATA = Path(__file__).resolve().parent / "data"
BASE = (DATA / "endowment.toml").read_text(encoding="utf-8")
ASSETS = ["US_EQ", "INTL_EQ", "CORE_BOND", "TIPS", "REAL_ASSETS", "PE", "CASH"]


def edit(old: str, new: str, text: str = BASE) -> str:
    """``text`` with the first ``old`` replaced (which must be there)."""
    assert old in text, old
    return text.replace(old, new, 1)


def write(folder: Path, text: str, name: str = "scenario.toml") -> Path:
    shutil.copy(DATA / "correlation.csv", folder / "correlation.csv")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def error(folder: Path, text: str) -> str:
    path = write(folder, text)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message  # every message names the file
    return message


def monthly_prices(columns: list[str], periods: int = 40, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2019-01-31", periods=periods, freq="ME")
    rets = rng.normal(0.005, 0.03, size=(periods, len(columns)))
    return pd.DataFrame(100 * np.cumprod(1 + rets, axis=0), index=dates, columns=columns)


# ============================================================================ a full scenario


@pytest.fixture(scope="module")
def scn():
    return load_scenario(DATA / "endowment.toml")


def test_file_identity(scn) -> None:
    assert scn.path == (DATA / "endowment.toml").resolve()
    assert scn.sha256 == hashlib.sha256((DATA / "endowment.toml").read_bytes()).hexdigest()


def test_portfolio_and_assets(scn) -> None:
    p = scn.portfolio
    assert (p.name, p.id, p.value, p.currency) == (
        "Riverside University Endowment",
        "riverside",
        500_000_000.0,
        "USD",
    )
    assert p.as_of == dt.date(2024, 3, 31)
    assert isinstance(scn.universe, Universe)
    assert list(scn.universe.assets) == ASSETS
    assert list(scn.assets) == ASSETS
    assert scn.universe.members("equity") == ["US_EQ", "INTL_EQ"]
    assert scn.universe.tags_of("PE") == ("alternatives", "illiquid")
    assert scn.asset_names["US_EQ"] == "US Equity"
    assert scn.asset_names["CASH"] == "CASH"  # name defaults to the id


def test_cma_estimates(scn) -> None:
    est = scn.estimates
    assert est.source == "cma"
    assert est.risk_free_rate == 0.035
    assert list(est.expected_return.index) == ASSETS
    assert est.expected_return["PE"] == 0.10
    assert est.volatility["CORE_BOND"] == 0.05
    corr = est.correlation
    assert list(corr.index) == ASSETS and list(corr.columns) == ASSETS
    assert corr.loc["US_EQ", "INTL_EQ"] == 0.8
    assert np.allclose(np.diag(corr), 1.0)
    assert est.file is None and est.returns is None
    built = est.build()  # the trivial helper: from_cma + the CMA means
    assert np.allclose(np.sqrt(np.diag(built.cov)), est.volatility)
    assert built.mu.equals(est.expected_return)


def test_model(scn) -> None:
    m = scn.model
    assert (m.kind, m.objective) == ("black_litterman", "max_utility")
    assert dict(m.params) == {"risk_aversion": 3.0, "tau": 0.05, "prior": "policy"}
    assert all(isinstance(v, View) for v in m.views)
    first, second = m.views
    assert (first.name, dict(first.picks), first.value, first.confidence) == (
        "US over intl",
        {"US_EQ": 1.0, "INTL_EQ": -1.0},
        0.01,
        0.6,
    )
    assert dict(second.picks) == {"alternatives": 1.0}  # a tag: resolved with universe=
    assert second.name == "alternatives = 7.0%"


def test_policy(scn) -> None:
    assert list(scn.policy.index) == ASSETS
    assert scn.policy["US_EQ"] == 0.30
    assert scn.policy.sum() == pytest.approx(1.0)


def test_constraints(scn) -> None:
    by_name = {c.name: c for c in scn.constraints}
    assert [type(c).__name__ for c in scn.constraints] == [
        "LongOnly",
        "Bounds",
        "GroupLimit",
        "GroupLimit",
        "GroupLimit",
        "DeviationBand",
        "DeviationBand",
        "ExposureLimit",
        "TrackingErrorLimit",
        "TurnoverLimit",
        "LeverageLimit",
        "LinearConstraint",
    ]
    bounds = by_name["bounds"]
    assert bounds.upper["PE"] == 0.12 and bounds.upper["US_EQ"] == 0.40  # scalar + per asset
    assert dict(bounds.lower) == {"CASH": 0.02}
    cap = by_name["equity cap"]
    assert (cap.tag, cap.min, cap.max) == ("equity", None, 0.60)
    assert by_name["liquidity floor"].min == 0.70
    assert by_name["bonds"].assets == ("CORE_BOND", "TIPS")
    band = by_name["band equity"]  # default name from the class
    assert band.tag == "equity" and band.width == 0.10
    assert band.reference.equals(scn.policy)
    assert dict(by_name["asset bands"].width) == {"US_EQ": 0.05, "CORE_BOND": 0.05}
    assert by_name["esg floor"].scores["PE"] == 5.5
    te = by_name["tracking error limit"]
    assert te.max == 0.03 and te.benchmark.equals(scn.policy)
    turnover = by_name["annual turnover"]
    assert turnover.current.equals(scn.holdings.weights)
    assert by_name["leverage limit"].max == 1.0
    linear = by_name["tips vs bonds"]
    assert linear.upper == 0.0 and linear.coefficients.loc[0, "CORE_BOND"] == -0.5
    # the engine's own defaults add only the budget
    full = C.with_defaults(scn.constraints)
    assert [c.name for c in full][:2] == ["budget", "long-only"]


def test_tactical(scn) -> None:
    tac = scn.tactical
    assert tac.band == 0.10
    assert dict(tac.offset) == {"fixed_income": 0.7, "cash": 0.3}
    assert tac.indicators["pe"] == 25.0
    assert [(r.name, r.equity) for r in tac.rules] == [("valuation rich", -0.05), ("stress", -0.03)]
    assert tac.rules[0].when == "pe / pe_average - 1 > 0.20"


def test_holdings_costs_rebalance(scn) -> None:
    h = scn.holdings
    assert list(h.values.index) == ASSETS
    assert h.values["US_EQ"] == 160_000_000 and h.values["CASH"] == 0.0
    assert h.cash == 20_000_000
    assert h.total == pytest.approx(500_000_000)
    assert h.weights.sum() == pytest.approx(0.96)  # the rest is cash
    assert h.prices["US_EQ"] == 450.0
    assert isinstance(scn.costs, CostModel)
    assert scn.costs.fixed == 25.0
    assert dict(scn.costs.bps) == {"default": 10.0, "fixed_income": 5.0, "PE": 0.0}
    rates = scn.costs.resolve(scn.assets, scn.universe, None)
    assert rates.buy[ASSETS.index("TIPS")] == pytest.approx(5e-4)
    assert rates.sell[ASSETS.index("US_EQ")] == pytest.approx(12e-4)
    spec = scn.rebalance
    assert isinstance(spec, RebalanceSpec)
    assert spec.threshold == 0.05 and spec.max_turnover is None
    assert spec.untradeable == ("PE", "REAL_ASSETS") and spec.no_trade_bands == 0.01
    assert dict(spec.lot_size) == {"US_EQ": 1.0, "INTL_EQ": 1.0}
    rb = spec.kwargs()  # what the rebalance is called with
    assert rb.pop("prices").equals(h.prices)
    assert rb == {
        "tracking_weight": 100.0,
        "min_trade": 10_000.0,
        "untradeable": ("PE", "REAL_ASSETS"),  # "real" is a tag: expanded
        "lot_size": {"US_EQ": 1.0, "INTL_EQ": 1.0},
        "no_trade_bands": 0.01,
        "cash_flow": 20_000_000 - 25_000_000,  # cash held is invested, the withdrawal taken
        "as_of": dt.date(2024, 3, 31),
        "portfolio_id": "riverside",
        "currency": "USD",
    }


def test_stress_and_validation(scn) -> None:
    assert [name for name, _ in scn.stress] == ["2008 crisis", "inflation shock"]
    assert dict(scn.stress[0][1]) == {
        "equity": -0.35,
        "fixed_income": 0.05,
        "alternatives": -0.20,
        "PE": -0.30,
    }
    v = dict(scn.validation)
    assert v["return_target"] == pytest.approx(0.065)  # spending + inflation
    assert (v["spending_rate"], v["inflation"], v["survival_floor"], v["esg_floor"]) == (
        0.04,
        0.025,
        0.80,
        7.0,
    )


def test_frozen(scn) -> None:
    with pytest.raises(AttributeError):
        scn.policy = None
    with pytest.raises(TypeError):
        scn.rebalance.lot_size["US_EQ"] = 2.0
    with pytest.raises(AttributeError):
        scn.rebalance.cash_flow = 0.0


MINIMAL = """
[portfolio]
name = "Élan Family Office"
value = 1e6
[[assets]]
id = "A"
[[assets]]
id = "B"
[estimates]
source = "cma"
expected_return = { A = 0.05, B = 0.07 }
volatility = { A = 0.10, B = 0.20 }
correlation = [[1.0, 0.3], [0.3, 1.0]]
"""


def test_minimal_defaults(tmp_path: Path) -> None:
    scn = load_scenario(write(tmp_path, MINIMAL))
    assert scn.portfolio.id == "elan-family-office"  # slug of the name
    assert (scn.portfolio.currency, scn.portfolio.as_of) == ("USD", None)
    assert (scn.model.kind, scn.model.objective, dict(scn.model.params)) == (
        "mean_variance",
        "max_sharpe",
        {},
    )
    assert [type(c).__name__ for c in scn.constraints] == ["LongOnly"]
    assert scn.policy is None and scn.holdings is None and scn.costs is None
    assert scn.tactical is None and scn.stress == () and dict(scn.validation) == {}
    assert scn.rebalance is None  # nothing to rebalance without [holdings]
    assert scn.estimates.risk_free_rate == 0.0


def test_correlation_forms_agree(tmp_path: Path, scn) -> None:
    corr = scn.estimates.correlation
    rows = ", ".join("[" + ", ".join(f"{x:g}" for x in row) + "]" for row in corr.to_numpy())
    inline = edit('correlation = "correlation.csv"', f"correlation = [{rows}]")
    pairs = "\n".join(
        f"{a} = {{ " + ", ".join(f"{b} = {corr.loc[a, b]:g}" for b in ASSETS[i + 1 :]) + " }"
        for i, a in enumerate(ASSETS[:-1])
    )
    table = edit('correlation = "correlation.csv"\n', "") + f"\n[estimates.correlation]\n{pairs}\n"
    for text in (inline, table):
        got = load_scenario(write(tmp_path, text)).estimates.correlation
        pd.testing.assert_frame_equal(got, corr)


def test_prices_source(tmp_path: Path) -> None:
    prices = monthly_prices(["B", "A", "EXTRA"])
    prices.to_csv(tmp_path / "prices.csv", index_label="date")
    text = edit(
        'source = "cma"\nexpected_return = { A = 0.05, B = 0.07 }\nvolatility = { A = 0.10, B = 0.20 }\n'
        "correlation = [[1.0, 0.3], [0.3, 1.0]]",
        'source = "prices"\nfile = "prices.csv"\nstart = 2019-06-30\nend = 2021-12-31\n'
        'covariance = "ledoit_wolf"\ncovariance_options = { target = "constant_correlation" }\n'
        'expected_returns = "ewma_mean"\nexpected_returns_options = { halflife = 12 }',
        MINIMAL,
    )
    scn = load_scenario(write(tmp_path, text))
    est = scn.estimates
    assert (est.source, est.file) == ("prices", tmp_path / "prices.csv")
    assert list(est.data.columns) == ["A", "B"]  # universe order; the extra column dropped
    assert est.data.index[0] == pd.Timestamp("2019-06-30")
    assert est.data.index[-1] == pd.Timestamp("2021-12-31")
    assert len(est.returns) == len(est.data) - 1
    assert (est.start, est.end, est.missing) == (
        dt.date(2019, 6, 30),
        dt.date(2021, 12, 31),
        "raise",
    )
    assert (est.covariance, dict(est.covariance_options)) == (
        "ledoit_wolf",
        {"target": "constant_correlation"},
    )
    assert (est.expected_returns, dict(est.expected_returns_options)) == (
        "ewma_mean",
        {"halflife": 12},
    )
    built = est.build()
    assert list(built.cov.index) == ["A", "B"] and built.mu.notna().all()


def test_returns_source_with_min_cvar(tmp_path: Path) -> None:
    rets = monthly_prices(["A", "B"]).pct_change().dropna()
    rets.to_csv(tmp_path / "returns.csv")
    text = edit('source = "cma"', 'source = "returns"\nfile = "returns.csv"', MINIMAL)
    text = re.sub(r"expected_return = .*\nvolatility = .*\ncorrelation = .*\n", "", text)
    text += '[model]\nkind = "min_cvar"\nalpha = 0.9\n'
    scn = load_scenario(write(tmp_path, text))
    assert scn.estimates.returns.equals(scn.estimates.data)
    assert (scn.model.kind, scn.model.objective, dict(scn.model.params)) == (
        "min_cvar",
        None,
        {"alpha": 0.9},
    )
    assert (scn.estimates.covariance, scn.estimates.expected_returns) == (
        "ledoit_wolf",
        "historical_mean",
    )


def test_holdings_forms(tmp_path: Path) -> None:
    base = MINIMAL.replace("value = 1e6\n", "")
    by_quantity = base + "[holdings]\nquantities = { A = 100 }\nprices = { A = 50.0, B = 10.0 }\n"
    scn = load_scenario(write(tmp_path, by_quantity))
    assert scn.portfolio.value == 5_000  # from the holdings
    assert dict(scn.holdings.values) == {"A": 5_000.0, "B": 0.0}
    assert dict(scn.holdings.quantities) == {"A": 100.0}
    by_weight = MINIMAL + "[holdings]\nweights = { A = 0.6, B = 0.3 }\ncash = 100_000\n"
    scn = load_scenario(write(tmp_path, by_weight))
    assert dict(scn.holdings.values) == pytest.approx({"A": 600_000.0, "B": 300_000.0})


def test_long_only_false_allows_shorts(tmp_path: Path) -> None:
    text = (
        MINIMAL + "[constraints]\nlong_only = false\nbounds = { max = 1.5, B = { min = -0.3 } }\n"
    )
    scn = load_scenario(write(tmp_path, text))
    (bounds,) = scn.constraints
    assert bounds.allows_short
    assert bounds.lower["B"] == -0.3 and bounds.lower["A"] == -np.inf
    assert "long-only" not in [c.name for c in C.with_defaults(scn.constraints)]
    plain = MINIMAL + "[constraints]\nlong_only = false\n"
    (marker,) = load_scenario(write(tmp_path, plain)).constraints
    assert marker.allows_short
    assert "long-only" not in [c.name for c in C.with_defaults([marker])]


# ============================================================================ errors


def test_misspelt_key_names_the_closest(tmp_path: Path) -> None:
    msg = error(tmp_path, edit("expected_return =", "expected_retrun ="))
    assert "estimates.expected_retrun: unknown key (did you mean 'expected_return'?)" in msg


def test_misspelt_key_in_array_of_tables(tmp_path: Path) -> None:
    text = edit(
        'name = "liquidity floor"\ntag = "liquid"\nmin = 0.70',
        'name = "x"\ntag = "liquid"\nmni = 0.7',
    )
    msg = error(tmp_path, text)
    assert "constraints.group[1].mni: unknown key (did you mean 'min'?)" in msg


def test_unknown_top_level_key_without_close_match_lists_the_valid(tmp_path: Path) -> None:
    msg = error(tmp_path, BASE + "\n[zzz]\nx = 1\n")
    assert "zzz: unknown key; valid keys: assets, backtest, batch, constraints," in msg


def test_toml_syntax_error_has_the_line(tmp_path: Path) -> None:
    lines = BASE.splitlines()
    row = lines.index('name = "US Equity"')
    lines[row] = 'name = "US Equity'
    msg = error(tmp_path, "\n".join(lines))
    assert "invalid TOML" in msg and f"line {row + 1}" in msg


def test_unknown_tag_in_constraint(tmp_path: Path) -> None:
    msg = error(tmp_path, edit('tag = "equity"\nmax = 0.60', 'tag = "equities"\nmax = 0.60'))
    assert "constraints.group[0].tag: unknown tag 'equities' (did you mean 'equity'?)" in msg


def test_unknown_asset_in_group(tmp_path: Path) -> None:
    msg = error(tmp_path, edit('assets = ["CORE_BOND", "TIPS"]', 'assets = ["CORE_BOND", "TIP"]'))
    assert "constraints.group[2].assets[1]: unknown asset 'TIP' (did you mean 'TIPS'?)" in msg


def test_policy_weights_must_sum_to_one(tmp_path: Path) -> None:
    msg = error(
        tmp_path,
        edit(
            "PE = 0.10, CASH = 0.05 }\n\n[constraints]", "PE = 0.05, CASH = 0.00 }\n\n[constraints]"
        ),
    )
    assert "policy.weights: policy weights sum to 0.9, not 1" in msg


def test_holdings_weights_must_sum_to_one(tmp_path: Path) -> None:
    msg = error(tmp_path, MINIMAL + "[holdings]\nweights = { A = 0.6, B = 0.3 }\n")
    assert "holdings.weights: holdings weights plus cash sum to 0.9, not 1" in msg


def test_tactical_offset_must_sum_to_one(tmp_path: Path) -> None:
    msg = error(
        tmp_path,
        edit(
            "offset = { fixed_income = 0.7, cash = 0.3 }",
            "offset = { fixed_income = 0.7, cash = 0.2 }",
        ),
    )
    assert "tactical.offset: offset shares sum to 0.9" in msg


def test_missing_correlation_file(tmp_path: Path) -> None:
    msg = error(tmp_path, edit('"correlation.csv"', '"cma/corr.csv"'))
    assert "estimates.correlation: file not found: 'cma/corr.csv'" in msg
    assert str(tmp_path / "cma" / "corr.csv") in msg  # relative to the scenario's folder


def test_missing_prices_file(tmp_path: Path) -> None:
    text = edit('source = "cma"', 'source = "prices"\nfile = "prices.csv"', MINIMAL)
    text = re.sub(r"expected_return = .*\nvolatility = .*\ncorrelation = .*\n", "", text)
    assert "estimates.file: file not found: 'prices.csv'" in error(tmp_path, text)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "value = 500_000_000",
            'value = "500m"',
            "portfolio.value: expected a number, got string '500m'",
        ),
        (
            "long_only = true",
            'long_only = "yes"',
            "constraints.long_only: expected true or false, got string",
        ),
        (
            'tags = ["cash", "liquid"]',
            "tags = 3",
            "assets[6].tags: expected an array of strings, got integer 3",
        ),
        ('id = "CASH"', "id = 7", "assets[6].id: expected a string, got integer 7"),
        ("as_of = 2024-03-31", 'as_of = "2024-03-31"', "portfolio.as_of: expected a date"),
        (
            "max = 0.60",
            "max = true",
            "constraints.group[0].max: expected a number, got boolean True",
        ),
        (
            "equity = -0.05",
            "equity = [-0.05]",
            "tactical.rules[0].equity: expected a number, got array",
        ),
        (
            "[policy]\nweights = {",
            "[policy]\nweight = {",
            "policy.weight: unknown key (did you mean 'weights'?)",
        ),
        ("tau = 0.05", "tau = 0", "model.tau: must be > 0 and <= 1, got 0"),
        (
            "max = 0.60",
            "max = 60",
            "constraints.group[0].max: must be <= 1, got 60 (decimals: 0.05 is 5%)",
        ),
        (
            'kind = "black_litterman"',
            'kind = "black-litterman"',
            "model.kind: unknown value 'black-litterman' (did you mean 'black_litterman'?)",
        ),
        (
            'currency = "USD"',
            'currency = "usd"',
            "portfolio.currency: expected a 3-letter ISO 4217 code",
        ),
        (
            "volatility = { US_EQ = 0.16,",
            "volatility = { US_EQ = -0.16,",
            "estimates.volatility.US_EQ: must be > 0 and <= 2, got -0.16",
        ),
    ],
)
def test_wrong_types_and_values(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in error(tmp_path, edit(old, new))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "values = { US_EQ = 160_000_000,",
            "values = { US_EQQ = 160_000_000,",
            "holdings.values.US_EQQ: unknown asset 'US_EQQ' (did you mean 'US_EQ'?)",
        ),
        (
            "picks = { US_EQ = 1, INTL_EQ = -1 }",
            "picks = { US_EQ = 1, INT_EQ = -1 }",
            "model.views[0].picks.INT_EQ: 'INT_EQ' is neither an asset id nor a tag (did you mean 'INTL_EQ'?)",
        ),
        (
            "shocks = { equity = -0.35,",
            "shocks = { equitee = -0.35,",
            "stress[0].shocks.equitee: 'equitee' is neither an asset id nor a tag (did you mean 'equity'?)",
        ),
        (
            "weights = { US_EQ = 0.30,",
            "weights = { US = 0.30,",
            "policy.weights.US: unknown asset 'US'",
        ),
        (
            "bps = { default = 10, fixed_income = 5,",
            "bps = { default = 10, fixed_incme = 5,",
            "costs.bps.fixed_incme: 'fixed_incme' is neither an asset id nor a tag (did you mean 'fixed_income'?)",
        ),
        (
            'untradeable = ["PE", "real"]',
            'untradeable = ["PE", "reel"]',
            "rebalance.untradeable[1]: 'reel' is neither an asset id nor a tag (did you mean 'real'?)",
        ),
        (
            "offset = { fixed_income = 0.7,",
            "offset = { bonds = 0.7,",
            "tactical.offset.bonds: unknown tag 'bonds'",
        ),
        (
            "PE = { max = 0.12 }",
            "PEE = { max = 0.12 }",
            "constraints.bounds.PEE: unknown asset 'PEE' (did you mean 'PE'?)",
        ),
        (
            "scores = { US_EQ = 6.5,",
            "scores = {",
            "constraints.exposure[0].scores: missing for US_EQ: every asset needs a value",
        ),
    ],
)
def test_unknown_assets_and_tags(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in error(tmp_path, edit(old, new))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("max(pe, 3) > 2", "function calls are not allowed"),
        ("pe.real > 2", "attributes are not allowed"),
        ("pe / pe_avg > 1.2", "unknown indicator 'pe_avg' (did you mean 'pe_average'?)"),
        ("pe - 20", "is not a condition"),
        ("pe > > 2", "cannot parse"),
        ("pe > 'high'", "is not a number"),
        ("pe ** 2 > 400", "is not allowed"),
        ("pe in [1, 2]", "only < <= > >= == != compare"),
        ("__import__('os') > 1", "function calls are not allowed"),
    ],
)
def test_bad_tactical_expression(tmp_path: Path, when: str, expected: str) -> None:
    text = edit(
        'when = "pe / pe_average - 1 > 0.20"',
        f"when = '''{when}'''",
    )
    msg = error(tmp_path, text)
    assert "tactical.rules[0].when: " in msg and expected in msg


def test_check_expression_accepts_the_grammar() -> None:
    names = ["pe", "pe_average", "vix"]
    for text in (
        "pe / pe_average - 1 > 0.20",
        "-vix < -25 or pe >= 2 * pe_average and vix != 0",
        "1 < pe < 30",
    ):
        check_expression(text, names)


def test_correlation_csv_with_wrong_labels(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    text = (DATA / "correlation.csv").read_text().replace("REAL_ASSETS", "REAL_ASSET")
    (tmp_path / "correlation.csv").write_text(text)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert (
        "estimates.correlation: correlation file 'correlation.csv' has no row/column for REAL_ASSETS"
        in msg
    )
    assert "did you mean 'REAL_ASSET'?" in msg


def test_correlation_csv_rows_and_columns_differ(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    lines = (DATA / "correlation.csv").read_text().splitlines()
    lines[2] = lines[2].replace("INTL_EQ", "INTL")
    (tmp_path / "correlation.csv").write_text("\n".join(lines))
    with pytest.raises(InputError, match="rows only: INTL; columns only: INTL_EQ"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        ("[[1.0, 0.3], [0.2, 1.0]]", "is not symmetric: A-B is 0.3 but B-A is 0.2"),
        ("[[1.0, 1.3], [1.3, 1.0]]", "A-B is 1.3; correlations are in [-1, 1]"),
        ("[[0.9, 0.3], [0.3, 1.0]]", "the diagonal must be 1; A has 0.9"),
        ("[[1.0, 0.3]]", "expected 2 rows (one per asset, in [[assets]] order), got 1"),
        ("{ A = { C = 0.3 } }", "estimates.correlation.A.C: unknown asset 'C'"),
        ("{ A = { A = 1.0 } }", "missing pairs: A-B"),
    ],
)
def test_bad_inline_correlation(tmp_path: Path, matrix: str, expected: str) -> None:
    assert expected in error(tmp_path, edit("[[1.0, 0.3], [0.3, 1.0]]", matrix, MINIMAL))


def _prices_scenario(tmp_path: Path, options: str) -> str:
    monthly_prices(["A", "B"]).to_csv(tmp_path / "prices.csv")
    text = edit('source = "cma"', f'source = "prices"\nfile = "prices.csv"\n{options}', MINIMAL)
    return re.sub(r"expected_return = .*\nvolatility = .*\ncorrelation = .*\n", "", text)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            "covariance_options = { shrinkage = 0.1 }",
            "estimates.covariance_options.shrinkage: ledoit_wolf takes no option 'shrinkage'; valid: overlap, periods_per_year, target",
        ),
        (
            "covariance_options = { targe = 'identity' }",
            "ledoit_wolf takes no option 'targe' (did you mean 'target'?)",
        ),
        (
            "covariance_options = { target = 'diagonal' }",
            "estimates.covariance_options.target: unknown value 'diagonal'",
        ),
        ("covariance = 'ewma'", "estimates.covariance_options: ewma needs the option 'halflife'"),
        (
            "covariance = 'ewma'\ncovariance_options = { halflife = -3 }",
            "covariance_options.halflife: must be > 0",
        ),
        (
            "covariance = 'oas'\ncovariance_options = { target = 'identity' }",
            "oas takes no option 'target'",
        ),
        (
            "expected_returns_options = { method = 'log' }",
            "expected_returns_options.method: unknown value 'log'",
        ),
        (
            "expected_returns = 'shrunk_mean'\nexpected_returns_options = { return_intensity = true }",
            "shrunk_mean takes no option 'return_intensity'",
        ),
        ("covariance = 'shrunk'", "estimates.covariance: unknown value 'shrunk'"),
        ("missing = 'interpolate'", "estimates.missing: unknown value 'interpolate'"),
        (
            "volatility = { A = 0.1, B = 0.2 }",
            "estimates.volatility: not used with source = 'prices'",
        ),
    ],
)
def test_estimator_options_checked_against_signatures(
    tmp_path: Path, options: str, expected: str
) -> None:
    assert expected in error(tmp_path, _prices_scenario(tmp_path, options))


def test_prices_file_problems(tmp_path: Path) -> None:
    text = _prices_scenario(tmp_path, "")
    frame = monthly_prices(["A", "BB"])
    frame.to_csv(tmp_path / "prices.csv")
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    with pytest.raises(
        InputError,
        match=r"estimates.file: prices file 'prices.csv' has no column for B; for 'B' \(did you mean 'BB'\?\)",
    ):
        load_scenario(path)
    frame = monthly_prices(["A", "B"])
    frame.iloc[5, 1] = np.nan
    frame.to_csv(tmp_path / "prices.csv")
    with pytest.raises(
        InputError, match=r"estimates.file: prices has missing values \(NaN\) for B"
    ):
        load_scenario(path)
    frame = frame.astype(object)
    frame.iloc[5, 1] = "abc"  # not a number
    frame.to_csv(tmp_path / "prices.csv")
    with pytest.raises(InputError, match=r"not a number in column 'B', row 2019-06-30: 'abc'"):
        load_scenario(path)
    path.write_text(edit('file = "prices.csv"', 'file = "prices.csv"\nstart = 2019-07-01', text))
    load_scenario(path)  # the bad row is outside the window: only the rows used are checked
    path.write_text(edit('file = "prices.csv"', 'file = "prices.csv"\nstart = 2030-01-01', text))
    with pytest.raises(
        InputError, match="has 0 rows between 2030-01-01 and the end; need at least 3"
    ):
        load_scenario(path)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "tau = 0.05",
            "tau = 0.05\nbudgets = { US_EQ = 1 }",
            "model.budgets: not used with kind = 'black_litterman'",
        ),
        (
            'objective = "max_utility"\nrisk_aversion = 3.0',
            'objective = "target_return"\nrisk_aversion = 3.0',
            "model.target_return: missing (required)",
        ),
        (
            'objective = "max_utility"',
            'objective = "max_sharpe"\ntarget_volatility = 0.1',
            "model.target_volatility: not used with kind = 'black_litterman' and objective = 'max_sharpe'",
        ),
        (
            "[policy]\nweights = { US_EQ = 0.30, INTL_EQ = 0.20, CORE_BOND = 0.20, TIPS = 0.05, REAL_ASSETS = 0.10, PE = 0.10, CASH = 0.05 }",
            "",
            "model.prior: 'policy' needs a [policy] table (or set prior = 'equal')",
        ),
        (
            'kind = "black_litterman"',
            'kind = "min_cvar"',
            "model.objective: not used with kind = 'min_cvar'",
        ),
        (
            "confidence = 0.6",
            "confidence = 1.5",
            "model.views[0].confidence: must be >= 0 and <= 1, got 1.5",
        ),
        (
            "picks = { alternatives = 1 }",
            'name = "US over intl"\npicks = { alternatives = 1 }',
            "model.views: views have duplicate names: 'US over intl'",
        ),
    ],
)
def test_model_checks(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in error(tmp_path, edit(old, new))


def test_min_cvar_needs_scenarios(tmp_path: Path) -> None:
    msg = error(tmp_path, MINIMAL + '[model]\nkind = "min_cvar"\n')
    assert "model.kind: 'min_cvar' needs return scenarios" in msg


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('id = "CASH"', 'id = "PE"', "assets[6].id: duplicate asset id 'PE' (also assets[5])"),
        (
            'name = "bonds"',
            'name = "equity cap"',
            "constraints.group[2]: the name 'equity cap' is already used by constraints.group[0]",
        ),
        ('name = "bonds"', 'name = "budget"', "the name 'budget' is reserved"),
        (
            "value = 500_000_000",
            "value = 400_000_000",
            "portfolio.value: 400,000,000.00 but the holdings total 500,000,000.00",
        ),
        (
            'name = "bonds"\nassets',
            'name = "bonds"\ntag = "fixed_income"\nassets',
            "constraints.group[2]: give exactly one of tag or assets",
        ),
        (
            "min = 0.15\nmax = 0.40",
            "min = 0.45\nmax = 0.40",
            "constraints.group[2].min: 0.45 is above max 0.4",
        ),
        (
            "bounds = { max = 0.40,",
            "bounds = { min = -0.1, max = 0.40,",
            "constraints.bounds.min: negative weight -0.1; set constraints.long_only = false to allow short positions",
        ),
        (
            "CASH = { min = 0.02 }",
            "CASH = { min = 0.5 }",
            "constraints.bounds.CASH: min 0.5 is above max 0.4 for CASH",
        ),
        (
            ", CASH = 1.0 }",
            " }",
            "holdings.prices: missing for CASH: with prices, every tradeable asset needs one",
        ),
        (
            "lot_size = { US_EQ = 1, INTL_EQ = 1 }",
            "lot_size = { US_EQ = 1, TIPS = 0 }",
            "rebalance.lot_size.TIPS: must be > 0, got 0",
        ),
        (
            "cash_flow = -25_000_000",
            "cash_flow = -600_000_000",
            "rebalance.cash_flow: withdraws 600,000,000.00, more than the portfolio's 500,000,000.00",
        ),
        (
            "shocks = { equity = -0.15, CORE_BOND = -0.10, TIPS = 0.02 }",
            "shocks = { alternatives = -0.2, illiquid = -0.4 }",
            "stress[1].shocks: asset 'PE' carries two shocked tags, 'alternatives' (-0.2), "
            "'illiquid' (-0.4): give 'PE' its own shock",
        ),
        (
            'name = "inflation shock"',
            'name = "2008 crisis"',
            "stress[1].name: duplicate stress name '2008 crisis' (also stress[0])",
        ),
        (
            "shocks = { equity = -0.15,",
            "shocks = { equity = -15,",
            "stress[1].shocks.equity: must be > -1, got -15 (returns are decimals: -0.35 is -35%)",
        ),
        (
            "fixed_per_trade = 25.0",
            "fixed_per_trade = 25.0\nimpact = 0.1",
            "costs.impact: needs costs.adv",
        ),
        (
            "bps = { default = 10, fixed_income = 5, PE = 0 }",
            "bps = { fixed_income = 5, PE = 0 }",
            "costs: CostModel bps gives no rate for US_EQ, INTL_EQ, REAL_ASSETS, CASH",
        ),
        (
            'name = "stress"',
            'name = "valuation rich"',
            "tactical.rules[1].name: duplicate rule name 'valuation rich'",
        ),
        ("vix = 28,", "vix = 28, for = 3,", "tactical.indicators.for: 'for' is not a valid name"),
    ],
)
def test_cross_checks(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in error(tmp_path, edit(old, new))


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[rebalance]\nthreshold = 0.05\n", "rebalance: needs [holdings]"),
        (
            "[[constraints.turnover]]\nmax = 0.2\n",
            "constraints.turnover[0]: a turnover limit needs [holdings]",
        ),
        (
            "[[constraints.band]]\nwidth = 0.05\n",
            "constraints.band[0]: reference 'policy' needs a [policy] table",
        ),
        ('[stress]\nname = "x"\n', "stress: expected an array of tables ([[stress]]), got table"),
        ('[model]\nkind = "policy"\n', "model.kind: 'policy' needs a [policy] table"),
        ('[model]\nobjective = "max_utility"\n', "model.risk_aversion: missing (required)"),
        (
            '[model]\nkind = "risk_parity"\nbudgets = { A = 1 }\n',
            "model.budgets: missing for B: every asset needs a value",
        ),
        (
            "[tactical]\nband = 0.1\n",
            "tactical: the overlay tilts the assets tagged 'equity', but no asset has that tag",
        ),
        (
            "[validation]\nsurvival_floor = 80\n",
            "validation.survival_floor: must be > 0 and <= 1, got 80",
        ),
        (
            "[holdings]\nvalues = { A = 1e6 }\nquantities = { A = 3 }\n",
            "holdings: give exactly one of values",
        ),
        (
            "[holdings]\nvalues = { A = -5.0 }\n",
            "holdings.values.A: negative holding -5; set constraints.long_only = false",
        ),
        ("[costs]\nbps = -3\n", "costs.bps: must be >= 0 and <= 10000, got -3"),
        ("[estimates.extra]\nx = 1\n", "estimates.extra: unknown key"),
    ],
)
def test_section_checks(tmp_path: Path, extra: str, expected: str) -> None:
    assert expected in error(tmp_path, MINIMAL + extra)
