"""Shared fixtures: real data from ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

import pandas as pd
import pytest
from shared_data import load


@pytest.fixture(scope="session")
def sp500_prices() -> pd.DataFrame:
    """Daily adjusted closes of 20 large US stocks, 1990-2022."""
    return load("sp500_prices.csv.gz")


@pytest.fixture(scope="session")
def french_monthly() -> pd.DataFrame:
    """Fama-French monthly returns (decimals), 1949-2017."""
    return load("french_monthly_returns.csv.gz")


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
