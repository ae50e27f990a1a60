"""The catalogue's rows for the cases issue 10 reported wrong: each now refused, warned or answered right.

Every row reproduces one report of the issue ("39 of 130 cases went wrong")
through the command line (``scenarios.cli.main`` in process: the subprocess
path of the same messages is exercised by :mod:`hostile.test_hostile_cli`) or
the API, and asserts the exit code or exception type and the culprit named in
the message, or, for the cases that must now work, the answer.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hostile.inputs import FRENCH, FRENCH_CSV, RIA, RIVERSIDE, TACTICAL, shipped, shipped_path
from models import covariance
from models import mean_variance as mv
from models.returns import periods_per_year
from optimizer.errors import InputError
from optimizer.universe import Universe
from scenarios.cli import main

SP500 = "sp500_frontier"
AT_TARGET = "values = { US_EQ = 435_600, INTL_EQ = 217_800, BONDS = 326_700, REITS = 108_900 }"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def ria(folder: Path, *, holdings: str | None = None, rebalance: str = "threshold = 0.03") -> Path:
    """The adviser's scenario with its [holdings] and [rebalance] bodies replaced."""
    text = shipped(f"{RIA}.toml")
    if holdings is not None:
        text = re.sub(r"\[holdings\]\n.*?\n\n", f"[holdings]\n{holdings}\n\n", text, flags=re.S)
    text = re.sub(r"\[rebalance\]\n.*", f"[rebalance]\n{rebalance}\n", text, flags=re.S)
    return write(folder, "ria.toml", text)


def sp500(folder: Path, rows: int, estimator: str = "ledoit_wolf") -> Path:
    """The S&P frontier example on its first ``rows`` prices from 2015."""
    with gzip.open(shipped_path("sp500_prices.csv.gz"), "rt") as fh:
        prices = pd.read_csv(fh, index_col=0, parse_dates=True)
    prices.loc["2015-01-01":].iloc[:rows].to_csv(folder / f"p{rows}.csv")
    text = shipped(f"{SP500}.toml").replace('file = "sp500_prices.csv.gz"', f'file = "p{rows}.csv"')
    text = text.replace('covariance = "ledoit_wolf"', f'covariance = "{estimator}"')
    return write(folder, "sp500.toml", text)


def french(folder: Path, returns: pd.DataFrame) -> Path:
    """The French industries backtest example on these returns."""
    returns.to_csv(folder / FRENCH_CSV, index_label="date")
    return write(folder, "french.toml", shipped(f"{FRENCH}.toml"))


def french_returns() -> pd.DataFrame:
    return pd.read_csv(shipped_path(FRENCH_CSV), index_col=0, parse_dates=True)


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# ============================================================================ refused, naming the culprit


def test_a_prices_file_of_three_rows(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "run", sp500(tmp_path, 3))
    assert code == 2 and "p3.csv" in err and "at least 3 are needed" in err


def test_a_sample_covariance_from_too_few_returns(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "run", sp500(tmp_path, 15, "sample"))
    assert code == 2
    for culprit in ("p15.csv", "14 returns of 20 assets", "singular", "ledoit_wolf"):
        assert culprit in err, (culprit, err)


def test_an_asset_id_equal_to_a_tag(tmp_path, capsys) -> None:
    path = write(
        tmp_path, "clash.toml", shipped(f"{RIVERSIDE}.toml").replace("REAL_ASSETS", "equity")
    )
    code, _, err = run(capsys, "run", path)
    assert code == 2 and str(path) in err
    assert "asset id 'equity' is also a tag (carried by US_EQ, INTL_EQ)" in err


def test_monthly_history_with_daily_rows_appended(tmp_path, capsys) -> None:
    monthly = french_returns()
    days = pd.bdate_range(monthly.index[-1] + pd.Timedelta(days=3), periods=300)
    daily = pd.DataFrame(0.001, index=days, columns=monthly.columns)
    code, _, err = run(capsys, "backtest", french(tmp_path, pd.concat([monthly, daily])))
    assert code == 2
    for culprit in (FRENCH_CSV, "spacing of the dates changes", days[0].strftime("%Y-%m-%d")):
        assert culprit in err, (culprit, err)


def test_a_return_of_minus_150_percent_under_backtest(tmp_path, capsys) -> None:
    returns = french_returns()
    returns.loc["1970-02-01", "NoDur"] = -1.5
    code, _, err = run(capsys, "backtest", french(tmp_path, returns))
    assert code == 2
    for culprit in (FRENCH_CSV, "NoDur", "1970-02-01", "-150.00%"):
        assert culprit in err, (culprit, err)


def test_returns_written_in_percent(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "backtest", french(tmp_path, french_returns() * 100))
    assert code == 2 and FRENCH_CSV in err and "divide them by 100" in err


def test_a_tactical_rule_dividing_by_zero(tmp_path, capsys) -> None:
    assert main(["example", TACTICAL, "--dir", str(tmp_path)]) == 0
    text = shipped(f"{TACTICAL}.toml").replace("vix_average = 18", "vix_average = 0")
    path = write(tmp_path, "overlay.toml", text)
    code, _, err = run(capsys, "run", path)
    assert code == 2
    for culprit in ("overlay.toml", "volatility spike", "divides by zero", "vix_average is 0"):
        assert culprit in err, (culprit, err)


def test_a_target_return_out_of_reach(tmp_path, capsys) -> None:
    text = shipped(f"{RIVERSIDE}.toml").replace(
        'objective = "max_sharpe"', 'objective = "target_return"\ntarget_return = 0.5'
    )
    code, _, err = run(capsys, "run", write(tmp_path, "reach.toml", text))
    assert code == 3
    assert "target_return" in err and "at most" in err and "binding" in err


def test_a_withdrawal_of_more_than_the_portfolio(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "run", ria(tmp_path, rebalance="cash_flow = -1_089_001"))
    assert code == 2 and "1,089,001.00" in err and "1,089,000.00" in err


# ============================================================================ now answered right


def plan_of(out: Path) -> dict:
    return json.loads((out / "orders.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("label", "holdings", "rebalance"),
    [
        ("withdrawal", AT_TARGET, "threshold = 0.03\ncash_flow = -500_000"),
        ("idle cash", AT_TARGET + "\ncash = 1_000_000", "threshold = 0.03"),
        ("all cash", "values = { US_EQ = 0 }\ncash = 100_000", "threshold = 0.03"),
    ],
)
def test_a_threshold_trigger_counts_cash(tmp_path, capsys, label, holdings, rebalance) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys, "run", ria(tmp_path, holdings=holdings, rebalance=rebalance), "--out", out
    )
    assert code == 0, err
    orders = plan_of(out)["orders"]
    assert orders, f"{label}: no trade"
    assert not re.search(r"\bnan\b", stdout, flags=re.I), stdout


def test_a_withdrawal_of_the_whole_portfolio_is_a_liquidation(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys, "run", ria(tmp_path, rebalance="cash_flow = -1_089_000"), "--out", out
    )
    assert code == 0, err
    assert "liquidation" in stdout
    assert {o["side"] for o in plan_of(out)["orders"]} == {"sell"}


def test_a_zero_turnover_cap_is_named_as_the_cause(tmp_path, capsys) -> None:
    code, stdout, err = run(
        capsys, "run", ria(tmp_path, rebalance="threshold = 0.03\nmax_turnover = 0")
    )
    assert code == 0, err
    assert "the turnover cap (max_turnover = 0) allows no trade" in stdout
    assert "ticket" not in stdout.split("turnover cap")[1].split("\n")[0]


def test_untradeable_assets_that_miss_the_target_are_noted(tmp_path, capsys) -> None:
    code, stdout, err = run(capsys, "run", ria(tmp_path, rebalance='untradeable = ["US_EQ"]'))
    assert code == 0, err
    assert "untradeable assets are held off it (US_EQ" in stdout


def test_a_repaired_correlation_is_in_the_manifest_and_report(tmp_path, capsys) -> None:
    text = shipped(f"{RIA}.toml").replace(
        "BONDS = 0.1, REITS = 0.6 }", "BONDS = 0.9, REITS = -0.6 }"
    )
    out = tmp_path / "out"
    code, _, err = run(capsys, "run", write(tmp_path, "psd.toml", text), "--out", out)
    assert code == 0, err
    for name in ("manifest.json", "report.json"):
        repairs = json.loads((out / name).read_text(encoding="utf-8"))["repairs"]
        assert repairs and repairs[0]["figures"]["smallest_eigenvalue"] < 0, name


# ============================================================================ the API: units and singular risk

IDS = list("ABCD")
VOL = np.array([0.16, 0.18, 0.05, 0.19])
CORR = np.full((4, 4), 0.3) + 0.7 * np.eye(4)
COV = pd.DataFrame(np.outer(VOL, VOL) * CORR, index=IDS, columns=IDS)
MU = pd.Series([0.08, 0.07, 0.04, 0.06], IDS)


@pytest.mark.parametrize("factor", [1e-10, 1 / (252 * 390), 1e8])
def test_min_variance_does_not_depend_on_units(factor) -> None:
    base = mv.min_variance(COV).weights
    np.testing.assert_allclose(mv.min_variance(COV * factor).weights, base, atol=1e-6)


@pytest.mark.parametrize("a", [1e-7, 1e4])
def test_max_sharpe_does_not_depend_on_units(a) -> None:
    base = mv.max_sharpe(MU, COV).weights
    np.testing.assert_allclose(mv.max_sharpe(MU * a, COV * a**2).weights, base, atol=1e-6)


def test_max_sharpe_on_a_zero_covariance() -> None:
    with pytest.raises(InputError, match=r"Sharpe ratio is unbounded.*cov is zero"):
        mv.max_sharpe(MU, COV * 0)


def test_an_asset_id_equal_to_a_tag_in_the_api() -> None:
    with pytest.raises(InputError, match=r"asset id 'equity' is also a tag \(carried by A\)"):
        Universe(["A", "equity"], tags={"A": ["equity"]})


def test_mixed_frequencies_in_the_api() -> None:
    months = pd.date_range("2000-01-31", periods=60, freq="ME")
    days = pd.bdate_range("2005-01-03", periods=300)
    with pytest.raises(
        InputError, match=r"monthly .* up to 2004-12-31 and daily .* from 2005-01-03"
    ):
        periods_per_year(months.append(days))


def test_a_sample_covariance_of_more_assets_than_returns_in_the_api() -> None:
    rng = np.random.default_rng(0)
    returns = pd.DataFrame(
        rng.normal(0, 0.01, (30, 60)),
        index=pd.bdate_range("2024-01-01", periods=30),
        columns=[f"S{i}" for i in range(60)],
    )
    with pytest.raises(InputError, match=r"30 observations of 60 assets.*ledoit_wolf or oas"):
        covariance.sample(returns)


def test_a_return_below_minus_100_percent_in_the_api() -> None:
    returns = french_returns()
    returns.loc["2008-10-01", "Enrgy"] = -1.5
    with pytest.raises(InputError, match=r"Enrgy on 2008-10-01 is -150.00%"):
        covariance.ledoit_wolf(returns)


def test_text_volatilities_are_refused_in_the_api() -> None:
    text = pd.Series(["0.16", 0.18, 0.05, 0.19], index=IDS)
    with pytest.raises(
        InputError, match=r"volatility must be numbers by asset; not a number for: A"
    ):
        covariance.from_cma(text, pd.DataFrame(CORR, index=IDS, columns=IDS))


@pytest.mark.parametrize(
    ("budgets", "culprit"),
    [
        ({"A": 1e-300, "B": 1.0, "C": 1.0, "D": 1.0}, r"below 1e-12 of the largest.*A \(1e-300\)"),
        ({"A": "0.2", "B": 1.0, "C": 1.0, "D": 1.0}, r"budgets must be numbers.*not for: A"),
    ],
)
def test_risk_budgets_that_cannot_be_met(budgets, culprit) -> None:
    from models.risk_parity import risk_parity

    with pytest.raises(InputError, match=culprit):
        risk_parity(COV, budgets=budgets)
