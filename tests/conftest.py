"""Shared fixtures: real data from ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _load(name: str) -> pd.DataFrame:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real-data test needs {path} (the project's ../shared/data); not present")
    return pd.read_csv(path, index_col=0, parse_dates=True)


@pytest.fixture(scope="session")
def sp500_prices() -> pd.DataFrame:
    """Daily adjusted closes of 20 large US stocks, 1990-2022."""
    return _load("sp500_prices.csv.gz")


@pytest.fixture(scope="session")
def french_monthly() -> pd.DataFrame:
    """Fama-French monthly returns (decimals), 1949-2017."""
    return _load("french_monthly_returns.csv.gz")


@pytest.fixture(scope="session")
def french_industries(french_monthly: pd.DataFrame) -> pd.DataFrame:
    """The 12 industry portfolios' monthly returns."""
    cols = [
        "NoDur",
        "Durbl",
        "Manuf",
        "Enrgy",
        "Chems",
        "BusEq",
        "Telcm",
        "Utils",
        "Shops",
        "Hlth",
        "Money",
        "Other",
    ]
    return french_monthly[cols]
