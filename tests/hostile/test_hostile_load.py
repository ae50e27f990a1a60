"""The hostile-input catalogue through :func:`scenarios.load_scenario` (issue 10).

Scenario files built like the command-line cases (a shipped example with one
text edit, or a file by hand), loaded in-process: each must raise an
:class:`~optimizer.errors.InputError` whose message starts with the file and
names the key path and the culprit (asset, tag, date, value).
"""

from __future__ import annotations

import contextlib
import io

import pytest

from hostile.inputs import (
    CORR_CSV,
    FRENCH,
    FRENCH_CSV,
    MODERATE,
    RIA,
    RIVERSIDE,
    TACTICAL,
    TO_PRICES,
    Folder,
    build,
    case,
    edited,
    prices_csv,
)
from optimizer.errors import InputError
from scenarios import load_scenario

FILE = f'file = "{FRENCH_CSV}"'
HOLDINGS = "values = { US_EQ = 460_000, INTL_EQ = 230_000, BONDS = 291_000, REITS = 108_000 }"
CORR_ROW = "US_EQ,1.00,0.80"

# fmt: off
CASES = [
    # ---------------------------------------------------------------- syntax, keys, types
    case("toml-unclosed-string", None, None, 2, "{scn}", "invalid TOML", "line 2",
        text=b'[portfolio]\nname = "Client 0042\n'),
    case("toml-duplicate-key", None, None, 2, "invalid TOML", "Cannot overwrite a value", "line 3",
        text=b'[portfolio]\nname = "a"\nname = "b"\n'),
    case("toml-duplicate-table", None, None, 2, "invalid TOML", "line 2",
        text=b'[portfolio]\n[portfolio]\n'),
    case("unknown-key", RIA, ("threshold = 0.03", "treshold = 0.03"), 2,
        "rebalance.treshold: unknown key (did you mean 'threshold'?)"),
    case("boolean-for-number", RIA, ("threshold = 0.03", "threshold = true"), 2,
        "rebalance.threshold: expected a number, got boolean True"),
    case("unknown-key-no-close-match", RIA, ("bps = 10", "bps = 10\nzzz = 1"), 2,
        "costs.zzz: unknown key; valid keys: adv, bps"),
    case("unknown-portfolio-key", RIA, ('currency = "USD"', 'curency = "USD"'), 2,
        "portfolio.curency: unknown key (did you mean 'currency'?)"),
    case("unknown-asset-key", RIA, ('name = "US Stocks"', 'nmae = "US Stocks"'), 2,
        "assets[0].nmae: unknown key (did you mean 'name'?)"),
    case("unknown-estimates-key", RIA, ("volatility = {", "volatilty = {"), 2,
        "estimates.volatilty: unknown key (did you mean 'volatility'?)"),
    case("string-for-number", RIA, ("bps = 10", 'bps = "10bp"'), 2,
        "costs.bps: expected a number, got string '10bp'"),
    case("string-for-boolean", RIVERSIDE, ("long_only = true", 'long_only = "yes"'), 2,
        "constraints.long_only: expected true or false, got string 'yes'"),
    case("quoted-date", RIA, ("as_of = 2024-03-31", 'as_of = "31/03/2024"'), 2,
        "portfolio.as_of: expected a date (YYYY-MM-DD, unquoted)", "'31/03/2024'"),
    case("integer-tag", RIA, ('tags = ["real_estate"]', "tags = [1]"), 2,
        "assets[3].tags[0]: expected a non-empty string, got integer 1"),
    case("array-for-table", RIA, (HOLDINGS, "values = [460000, 230000]"), 2,
        "holdings.values: expected a table asset id -> number, got array"),
    case("empty-table", RIA, (HOLDINGS, "values = {}"), 2, "holdings.values: is empty"),
    case("lowercase-currency", RIA, ('currency = "USD"', 'currency = "usd"'), 2,
        "portfolio.currency: expected a 3-letter ISO 4217 code", "'usd'"),
    # ---------------------------------------------------------------- ranges and sums
    case("volatility-in-percent", RIA, ("REITS = 0.19 }", "REITS = 19 }"), 2,
        "estimates.volatility.REITS: must be > 0 and <= 2, got 19", "(decimals: 0.05 is 5%)"),
    case("risk-free-rate-out-of-range", RIVERSIDE, ("risk_free_rate = 0.02", "risk_free_rate = 2"),
        2, "estimates.risk_free_rate: must be >= -1 and <= 1, got 2"),
    case("correlation-asymmetric", RIVERSIDE, ("[0.80, 1.00, 0.05,", "[0.70, 1.00, 0.05,"), 2,
        "estimates.correlation: correlation is not symmetric", "US_EQ-INTL_EQ is 0.8", "0.7"),
    case("correlation-diagonal", RIVERSIDE, ("[0.10, 0.05, 1.00,", "[0.10, 0.05, 0.90,"), 2,
        "estimates.correlation: correlation: the diagonal must be 1; FIXED_INCOME has 0.9"),
    case("correlation-row-missing", RIVERSIDE,
        ("    [0.60, 0.55, 0.10, 0.35, 0.50, 1.00],  # HEDGE_FUNDS\n", ""), 2,
        "estimates.correlation: expected 6 rows (one per asset, in [[assets]] order), got 5"),
    case("correlation-pair-missing", RIA, ("BONDS = { REITS = 0.2 }\n", ""), 2,
        "estimates.correlation: missing pairs: BONDS-REITS"),
    case("correlation-csv-above-1", MODERATE, None, 2, "estimates.correlation",
        f"correlation file '{CORR_CSV}'", "US_EQ-INTL_EQ is 1.8",
        files={CORR_CSV: edited(CORR_CSV, ("US_EQ,1.00,0.80", "US_EQ,1.00,1.80"))}),
    case("correlation-csv-not-a-number", MODERATE, None, 2,
        f"estimates.correlation: correlation file '{CORR_CSV}'",
        "not a number in column 'INTL_EQ', row US_EQ: 'high'",
        files={CORR_CSV: edited(CORR_CSV, (CORR_ROW, "US_EQ,1.00,high"))}),
    case("correlation-csv-row-missing", MODERATE, None, 2,
        f"estimates.correlation: correlation file '{CORR_CSV}'", "columns only: CASH",
        files={CORR_CSV: edited(CORR_CSV, ("CASH,0.00,0.00,0.10,0.00,0.00,1.00\n", ""))}),
    case("correlation-csv-missing", MODERATE, (f'"{CORR_CSV}"', '"corr.csv"'), 2,
        "estimates.correlation: file not found: 'corr.csv'"),
    case("correlation-csv-is-a-folder", MODERATE, None, 2,
        f"estimates.correlation: not a file: '{CORR_CSV}'", files={CORR_CSV: Folder()}),
    case("policy-negative-weight", RIA,
        ("INTL_EQ = 0.20, BONDS = 0.30", "INTL_EQ = -0.20, BONDS = 0.70"), 2,
        "policy.weights.INTL_EQ: negative weight -0.2", "constraints.long_only = false"),
    case("group-min-above-max", RIVERSIDE,
        ('tag = "equity"\nmax = 0.70', 'tag = "equity"\nmin = 0.8\nmax = 0.70'), 2,
        "constraints.group[0].min: 0.8 is above max 0.7"),
    case("group-cap-in-percent", RIVERSIDE, ("max = 0.70", "max = 70"), 2,
        "constraints.group[0].max: must be <= 1, got 70", "(decimals: 0.05 is 5%)"),
    case("band-negative", RIVERSIDE, ("width = 0.10", "width = -0.10"), 2,
        "constraints.band[0].width: must be >= 0 and <= 1, got -0.1"),
    case("threshold-zero", RIA, ("threshold = 0.03", "threshold = 0"), 2,
        "rebalance.threshold: must be > 0 and <= 1, got 0"),
    case("survival-floor-zero", RIVERSIDE, ("survival_floor = 0.80", "survival_floor = 0"), 2,
        "validation.survival_floor: must be > 0 and <= 1, got 0"),
    case("montecarlo-zero-years", RIVERSIDE, ("years = 30", "years = 0"), 2,
        "montecarlo.years: must be >= 1, got 0"),
    case("value-differs-from-holdings", RIVERSIDE, ("value = 500_000_000", "value = 400_000_000"),
        2, "portfolio.value: 400,000,000.00 but the holdings total 500,000,000.00"),
    # ---------------------------------------------------------------- references
    case("holdings-unknown-asset", RIA, ("REITS = 108_000", "REIT = 108_000"), 2,
        "holdings.values.REIT: unknown asset 'REIT' (did you mean 'REITS'?)"),
    case("untradeable-unknown", RIVERSIDE, ('"HEDGE_FUNDS"]', '"HEDGE_FUND"]'), 2,
        "rebalance.untradeable[1]: 'HEDGE_FUND' is neither", "(did you mean 'HEDGE_FUNDS'?)"),
    case("view-unknown-asset", RIVERSIDE,
         ('kind = "mean_variance"\n', 'kind = "black_litterman"\nrisk_aversion = 2.5\n'
          "views = [{ picks = { US_EQ = 1, GOLD = -1 }, value = 0.02 }]\n"), 2,
         "model.views[0].picks.GOLD: 'GOLD' is neither an asset id nor a tag"),
    case("group-tag-is-an-asset", RIVERSIDE, ('tag = "liquid"', 'tag = "US_EQ"'), 2,
        "constraints.group[1].tag: unknown tag 'US_EQ' ('US_EQ' is an asset id, not a tag)"),
    case("group-unknown-asset", RIVERSIDE,
        ('tag = "alternatives"', 'assets = ["REAL_ASSETS", "GOLD"]'), 2,
        "constraints.group[2].assets[1]: unknown asset 'GOLD'"),
    case("exposure-score-missing", RIVERSIDE,
        ("PRIVATE_EQUITY = 5.5, HEDGE_FUNDS = 5.0 }", "PRIVATE_EQUITY = 5.5 }"), 2,
        "constraints.exposure[0].scores: missing for HEDGE_FUNDS"),
    case("cost-rate-unknown-asset", RIA, ("bps = 10", "bps = { default = 10, REIT = 20 }"), 2,
        "costs.bps.REIT: 'REIT' is neither an asset id nor a tag (did you mean 'REITS'?)"),
    case("duplicate-stress-name", RIVERSIDE, ('name = "tech bubble"', 'name = "2008 crisis"'), 2,
        "stress[1].name: duplicate stress name '2008 crisis' (also stress[0])"),
    case("duplicate-constraint-name", RIVERSIDE,
        ('name = "liquidity floor"', 'name = "equity cap"'), 2,
        "constraints.group[1]: the name 'equity cap' is already used by constraints.group[0]"),
    case("reserved-asset-id", RIA, ('id = "REITS"', 'id = "default"'), 2,
        "assets[3].id: 'default' is reserved"),
    case("unknown-model-kind", RIA, ('[model]\nkind = "policy"', '[model]\nkind = "polcy"'), 2,
        "model.kind: unknown value 'polcy' (did you mean 'policy'?)"),
    case("model-key-not-used", RIA,
        ('[model]\nkind = "policy"', '[model]\nkind = "policy"\nrisk_aversion = 3'), 2,
        "model.risk_aversion: not used with kind = 'policy'"),
    case("holdings-without-values", RIA, (HOLDINGS, ""), 2, "holdings: give exactly one of values",
        "got none"),
    case("value-needs-holdings", RIA, ("[holdings]\n" + HOLDINGS + "\n", ""), 2,
        "portfolio.value: missing (required unless [holdings] gives the values)"),
    # ---------------------------------------------------------------- data files
    case("data-file-empty", FRENCH, None, 2, "estimates.file",
        f"cannot read CSV file '{FRENCH_CSV}'", files={FRENCH_CSV: ""}),
    case("data-file-under-a-file", FRENCH, (FILE, f'file = "{FRENCH_CSV}/x.csv"'), 2,
        "estimates.file: file not found", f"{FRENCH_CSV}/x.csv"),
    case("csv-duplicate-column", FRENCH, None, 2, "estimates.file", "duplicate columns: NoDur",
        files={FRENCH_CSV: edited(FRENCH_CSV, ("NoDur,Durbl", "NoDur,NoDur"))}),
    case("csv-not-a-date", FRENCH, None, 2, "estimates.file", "the first column must hold dates",
        "soon", files={FRENCH_CSV: edited(FRENCH_CSV, ("1970-02-01,", "soon,"))}),
    case("csv-missing-column", FRENCH, None, 2, "estimates.file", "has no column for Other",
        "(did you mean 'Othr'?)", files={FRENCH_CSV: edited(FRENCH_CSV, (",Other\n", ",Othr\n"))}),
    case("csv-inf", FRENCH, None, 2, "estimates.file", f"returns file '{FRENCH_CSV}'",
         "not a finite number in column 'NoDur', row 1970-02-01: inf",
         files={FRENCH_CSV: edited(FRENCH_CSV, ("1970-02-01,0.0472", "1970-02-01,inf"))}),
    case("csv-huge", FRENCH, None, 2, "estimates.file", f"returns file '{FRENCH_CSV}'",
         "a number beyond +/-1e+12 in column 'NoDur', row 1970-02-01: 1e+308",
         files={FRENCH_CSV: edited(FRENCH_CSV, ("1970-02-01,0.0472", "1970-02-01,1e308"))}),
    case("price-missing", FRENCH, TO_PRICES, 2, "estimates.file", "missing values (NaN) for Manuf",
        "1970-06-01", "missing='drop'", files={"prices.csv": prices_csv((5, 2), "")}),
    case("end-before-start", FRENCH, (FILE, FILE + "\nstart = 2010-01-01\nend = 2000-01-01"), 2,
        "estimates.end: 2000-01-01 is before start 2010-01-01"),
    case("window-too-short", FRENCH, (FILE, FILE + "\nstart = 2017-03-01"), 2, "estimates.file",
        f"'{FRENCH_CSV}' has 1 rows between 2017-03-01 and the end; need at least 2"),
    case("estimator-option-unknown", FRENCH,
        (FILE, FILE + '\ncovariance = "ewma"\ncovariance_options = { halflif = 12 }'), 2,
        "estimates.covariance_options.halflif: ewma takes no option 'halflif'",
        "(did you mean 'halflife'?)"),
    case("missing-option-with-returns", FRENCH, (FILE, FILE + '\nmissing = "drop"'), 2,
        "estimates.missing: not used with source = 'returns'"),
    case("backtest-policy-unknown", FRENCH,
        ('{ kind = "buy_and_hold" }', '{ kind = "buy_and_hodl" }'), 2,
        "backtest.policies[4].kind: unknown value 'buy_and_hodl' (did you mean 'buy_and_hold'?)"),
    case("backtest-every-zero", FRENCH, ("every = 12", "every = 0"), 2,
        "backtest.policies[1].every: must be >= 1, got 0"),
    # ---------------------------------------------------------------- tactical rules
    case("rule-syntax", TACTICAL, ('"vix / vix_average - 1 > 0.50"', '"vix >> > 1"'), 2,
        "tactical.rules[1].when", "'vix >> > 1'", "column"),
    case("rule-function-call", TACTICAL,
        ('"recession_probability > 0.30"', "\"__import__('os').getcwd() > 0\""), 2,
        "tactical.rules[2].when", "function calls are not allowed"),
    case("offset-not-summing", TACTICAL,
        ("fixed_income = 0.70, cash = 0.30", "fixed_income = 0.80, cash = 0.30"), 2,
        "tactical.offset: offset shares sum to 1.1"),
    case("offset-unknown-tag", TACTICAL, ("cash = 0.30 }", "cash_like = 0.30 }"), 2,
        "tactical.offset.cash_like: unknown tag 'cash_like'"),
    case("duplicate-rule-name", TACTICAL, ('name = "volatility spike"', 'name = "valuation rich"'),
        2, "tactical.rules[1].name: duplicate rule name 'valuation rich' (also tactical.rules[0])"),
    case("indicator-not-a-name", TACTICAL, ("pe = 25,", '"p-e" = 25,'), 2,
        "tactical.indicators.p-e: 'p-e' is not a valid name"),
]
# fmt: on


def test_the_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 50
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_load_scenario(c, tmp_path) -> None:
    folder = tmp_path / c.id
    with contextlib.redirect_stdout(io.StringIO()):  # `trimtab example` says what it wrote
        scn = build(c, folder)
    with pytest.raises(InputError) as info:
        load_scenario(scn)
    message = str(info.value)
    assert message.startswith(f"{scn}: "), message
    for culprit in c.culprits:
        assert c.expand(culprit, folder) in message, (culprit, message)
