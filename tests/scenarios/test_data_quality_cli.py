"""Data problems under ``trimtab``: exit 2 with a message naming the data file, or a recorded
warning (issue 10, "no silent wrong answer").

Each case edits a shipped example (its data file cut, spoiled or replaced) and runs the command
line in process; the message must name the scenario key, the data file and the culprit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from scenarios.cli import main
from scenarios.schema import load_scenario

SP500 = "sp500_frontier"
FRENCH = "french_industries_backtest"


def example(name: str, folder: Path) -> Path:
    assert main(["example", name, "--dir", str(folder)]) == 0
    return folder / f"{name}.toml"


def variant(scn: Path, data: pd.DataFrame, csv: str, *edits: tuple[str, str]) -> Path:
    """A copy of the scenario reading ``data`` from ``csv`` (beside it), with text edits."""
    text = scn.read_text(encoding="utf-8")
    old = (
        'file = "sp500_prices.csv.gz"' if "sp500" in scn.name else 'file = "french_industries.csv"'
    )
    text = text.replace(old, f'file = "{csv}"')
    for a, b in edits:
        assert a in text, a
        text = text.replace(a, b)
    data.to_csv(scn.parent / csv)
    out = scn.with_name(f"{Path(csv).stem}.toml")
    out.write_text(text, encoding="utf-8")
    return out


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def sp500(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    scn = example(SP500, tmp_path_factory.mktemp("sp500"))
    prices = pd.read_csv(scn.parent / "sp500_prices.csv.gz", index_col=0)
    return scn, prices[prices.index >= "2015-01-01"]


@pytest.fixture(scope="module")
def french(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    scn = example(FRENCH, tmp_path_factory.mktemp("french"))
    return scn, pd.read_csv(scn.parent / "french_industries.csv", index_col=0)


SAMPLE = ('covariance = "ledoit_wolf"', 'covariance = "sample"')


def test_three_price_rows_are_refused_naming_file_counts_and_fix(sp500, capsys, tmp_path) -> None:
    scn, prices = sp500
    code, err = run(
        capsys, "run", str(variant(scn, prices.iloc[:3], "p3.csv")), "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert "p3.toml: estimates.covariance = 'ledoit_wolf' on prices file 'p3.csv'" in err
    assert "(2 returns of 20 assets" in err
    assert "returns has 2 observations; at least 3 are needed (use a longer history)" in err
    assert not (tmp_path / "o").exists()


def test_sample_covariance_of_too_few_rows_is_refused(sp500, capsys, tmp_path) -> None:
    scn, prices = sp500
    path = variant(scn, prices.iloc[:15], "p15.csv", SAMPLE)
    code, err = run(capsys, "run", str(path), "--out", str(tmp_path / "o"))
    assert code == 2
    assert "estimates.covariance = 'sample' on prices file 'p15.csv'" in err
    assert "14 observations of 20 assets give a singular covariance" in err
    assert "use a shrinkage estimator such as ledoit_wolf or oas, or more history" in err


def test_sample_covariance_of_30_rows_for_20_assets_is_full_rank(sp500, capsys, tmp_path) -> None:
    scn, prices = sp500
    path = variant(scn, prices.iloc[:30], "p30.csv", SAMPLE)
    code, err = run(capsys, "run", str(path), "--out", str(tmp_path / "o"))
    assert code == 0, err
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert 0.05 < report["volatility"] < 1.0  # not the 0.00% of a singular estimate


def test_a_stale_price_is_refused_without_shrinkage_and_recorded_with_it(
    sp500, capsys, tmp_path
) -> None:
    scn, prices = sp500
    stale = prices.iloc[:200].copy()
    stale["GE"] = stale["GE"].iloc[0]
    code, err = run(
        capsys, "run", str(variant(scn, stale, "stale.csv", SAMPLE)), "--out", str(tmp_path / "a")
    )
    assert code == 2
    assert "prices file 'stale.csv'" in err
    assert "returns are constant (zero variance) for assets: GE (a stale price?)" in err
    path = variant(scn, stale, "stale_lw.csv")
    code, err = run(capsys, "run", str(path), "--out", str(tmp_path / "b"))
    assert code == 0, err
    notes = json.loads((tmp_path / "b" / "manifest.json").read_text())["warnings"]
    hits = [w["message"] for w in notes if "GE" in w["message"]]
    assert len(hits) == 1
    assert "prices file 'stale_lw.csv'" in hits[0] and "constant (zero variance)" in hits[0]


def test_a_return_below_minus_100_percent_names_file_asset_and_date(
    french, capsys, tmp_path
) -> None:
    scn, rets = french
    bad = rets.copy()
    bad.loc["2008-10-01", "NoDur"] = -1.5
    path = variant(scn, bad, "bad.csv")
    for command in ("backtest", "run"):
        code, err = run(capsys, command, str(path), "--out", str(tmp_path / command))
        assert code == 2
        assert "bad.toml: estimates.file: returns file 'bad.csv'" in err
        assert "NoDur on 2008-10-01 is -150.00%" in err
        assert "a simple return cannot be -100% or below" in err
    with pytest.raises(InputError, match=r"returns file 'bad.csv'.*NoDur on 2008-10-01"):
        load_scenario(path)


def test_percent_returns_with_losses_get_the_hint(french, capsys, tmp_path) -> None:
    scn, rets = french
    code, err = run(
        capsys, "backtest", str(variant(scn, rets * 100, "pct.csv")), "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert "returns file 'pct.csv'" in err
    assert "look like percent" in err and "divide them by 100" in err


def test_percent_returns_without_losses_are_a_recorded_warning(french, capsys, tmp_path) -> None:
    scn, rets = french
    path = variant(scn, rets.abs() * 100, "pos.csv")
    code, err = run(capsys, "run", str(path), "--out", str(tmp_path / "o"))
    assert code == 0, err
    notes = json.loads((tmp_path / "o" / "manifest.json").read_text())["warnings"]
    hits = [w["message"] for w in notes if "look like percent" in w["message"]]
    assert len(hits) == 1
    assert hits[0].startswith(f"{path}: estimates.file: returns file 'pos.csv': the returns of")
    assert err.count("look like percent") == 1


def test_mixed_frequencies_name_the_file_and_the_change(french, capsys, tmp_path) -> None:
    scn, rets = french
    monthly = rets.copy()
    monthly.index = pd.to_datetime(monthly.index)
    days = pd.bdate_range("2017-03-02", periods=300)
    daily = pd.DataFrame(
        np.random.default_rng(0).normal(0, 0.01, (300, 12)), index=days, columns=rets.columns
    )
    mixed = pd.concat([monthly, daily])
    mixed.index = mixed.index.strftime("%Y-%m-%d")
    code, err = run(
        capsys, "run", str(variant(scn, mixed, "mix.csv")), "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert "mix.toml: estimates.file: returns file 'mix.csv'" in err
    assert "monthly (28 to 31 days apart) up to 2017-03-01" in err
    assert "daily (1 to 3 days apart) from 2017-03-02" in err
    assert "periods_per_year" in err
