"""models.profiles: the seed profiles, the horizon adjustment's known answers, its
properties over any horizon, and the error paths."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.profiles import ASSET_CLASSES, PROFILES, Profile, get_profile, policy
from optimizer.errors import InputError

#: The seed's base allocations (percent), as the profile_*.toml headers state them.
BASES = {
    "conservative": [20, 10, 50, 10, 5, 5],
    "moderate": [35, 15, 30, 10, 5, 5],
    "aggressive": [45, 25, 15, 8, 5, 2],
}


def pct(values) -> pd.Series:
    return pd.Series(values, index=list(ASSET_CLASSES), dtype=float) / 100


def test_seed_profiles_are_the_documented_bases() -> None:
    assert list(PROFILES) == ["conservative", "moderate", "aggressive"]
    for name, base in BASES.items():
        assert PROFILES[name].base.to_dict() == pytest.approx(pct(base).to_dict(), abs=1e-15)
        assert list(PROFILES[name].base.index) == list(ASSET_CLASSES)
        assert get_profile(name) is PROFILES[name]


@pytest.mark.parametrize(
    ("name", "years", "expected"),
    [
        # the examples' hand computations (profile_*.toml headers)
        ("conservative", 3, [11, 4, 60.5, 10, 5, 9.5]),
        ("moderate", 10, [35, 15, 30, 10, 5, 5]),
        ("aggressive", 25, [45 + 10 * 45 / 70, 25 + 10 * 25 / 70, 7, 8, 5, 0]),
        # the other bands
        ("conservative", 30, [20 + 10 * 2 / 3, 10 + 10 / 3, 42, 10, 5, 3]),
        ("moderate", 1, [26, 9, 40.5, 10, 5, 9.5]),
        ("moderate", 21, [42, 18, 22, 10, 5, 3]),
        ("aggressive", 4.5, [36, 19, 25.5, 8, 5, 6.5]),
        # the bands' edges: 5 and 20 years are included in "no adjustment"
        ("moderate", 5, [35, 15, 30, 10, 5, 5]),
        ("moderate", 20, [35, 15, 30, 10, 5, 5]),
        ("moderate", 4.999, [26, 9, 40.5, 10, 5, 9.5]),
        ("moderate", 20.001, [42, 18, 22, 10, 5, 3]),
    ],
)
def test_horizon_adjustment_known_answers(name, years, expected) -> None:
    w = policy(name, years)
    assert w.to_dict() == pytest.approx(pct(expected).to_dict(), abs=1e-12)
    assert w.name == name
    assert math.fsum(w) == pytest.approx(1.0, abs=1e-11)


def test_exact_decimals_match_the_hand_written_example_weights() -> None:
    # the policies the shipped examples wrote by hand before they used the profile keys
    assert policy("conservative", 3).to_dict() == {
        "US_EQ": 0.11,
        "INTL_EQ": 0.04,
        "FIXED_INCOME": 0.605,
        "REAL_ESTATE": 0.10,
        "COMMODITIES": 0.05,
        "CASH": 0.095,
    }
    assert policy("moderate", 10).to_dict() == PROFILES["moderate"].base.to_dict()
    aggressive = policy("aggressive", 25)
    assert aggressive["US_EQ"] == 0.514285714286
    assert aggressive["US_EQ"] + aggressive["INTL_EQ"] == 0.8
    assert aggressive["CASH"] == 0.0


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(list(PROFILES)),
    years=st.floats(min_value=1e-3, max_value=100.0, allow_nan=False),
)
def test_any_horizon_gives_weights_that_sum_to_one(name, years) -> None:
    w = policy(name, years)
    assert (w >= 0).all()
    assert math.fsum(w) == pytest.approx(1.0, abs=1e-11)
    base = PROFILES[name].base
    # real estate and commodities never move; equity rises with the horizon
    assert (
        w[["REAL_ESTATE", "COMMODITIES"]].to_dict()
        == base[["REAL_ESTATE", "COMMODITIES"]].to_dict()
    )
    equity = w["US_EQ"] + w["INTL_EQ"]
    base_equity = base["US_EQ"] + base["INTL_EQ"]
    shift = 0.10 if years > 20 else -0.15 if years < 5 else 0.0
    assert equity == pytest.approx(base_equity + shift, abs=1e-11)


def test_a_profile_of_ones_own() -> None:
    mine = Profile(
        "balanced", pd.Series({"US_EQ": 0.3, "INTL_EQ": 0.3, "FIXED_INCOME": 0.3, "CASH": 0.1})
    )
    assert policy(mine, 10).to_dict() == mine.base.to_dict()
    assert policy(mine, 25).to_dict() == pytest.approx(
        {"US_EQ": 0.35, "INTL_EQ": 0.35, "FIXED_INCOME": 0.22, "CASH": 0.08}, abs=1e-12
    )
    assert get_profile(mine) is mine


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: policy("bold", 10),
            "unknown profile 'bold'; choices: conservative, moderate, aggressive",
        ),
        (lambda: policy(None, 10), "unknown profile None; choices: conservative"),
        (lambda: policy("moderate", 0), "horizon_years must be a positive finite number, got 0"),
        (lambda: policy("moderate", -5), "horizon_years must be a positive finite number, got -5"),
        (
            lambda: policy("moderate", float("nan")),
            "horizon_years must be a positive finite number",
        ),
        (
            lambda: policy("moderate", float("inf")),
            "horizon_years must be a positive finite number",
        ),
        (lambda: policy("moderate", "10"), "horizon_years must be a positive number, got '10'"),
        (lambda: policy("moderate", True), "horizon_years must be a positive number, got True"),
        (lambda: Profile("", pct(BASES["moderate"])), "Profile name must be a non-empty string"),
        (lambda: Profile("x", [0.5, 0.5]), "profile 'x' base must be a pandas Series"),
        (
            lambda: Profile("x", pd.Series({"US_EQ": 0.5, "INTL_EQ": 0.5})),
            "profile 'x' base lacks FIXED_INCOME, CASH: the horizon adjustment moves",
        ),
        (
            lambda: Profile(
                "x",
                pd.Series(
                    [0.5, 0.5, 0, 0, 0], ["US_EQ", "US_EQ", "INTL_EQ", "FIXED_INCOME", "CASH"]
                ),
            ),
            "profile 'x' base names US_EQ twice",
        ),
        (
            lambda: Profile("x", pct([50, 50, 10, 0, 0, -10])),
            "profile 'x' base weight of CASH is -0.1: profile weights must be non-negative",
        ),
        (
            lambda: Profile("x", pct([50, 50, 10, 0, 0, 0])),
            "profile 'x' base weights sum to 1.1, not 1",
        ),
        (
            lambda: Profile("x", pct([50, 50, 0, 0, 0, 0]).replace(0.5, float("nan"))),
            "profile 'x' base weight of US_EQ must be finite",
        ),
        (
            lambda: policy(Profile("x", pct([40, 40, 5, 0, 0, 15])), 25),
            "profile 'x': the over 20 years adjustment takes 0.08 from FIXED_INCOME, which "
            "holds 0.05: give FIXED_INCOME a base weight of at least 0.08",
        ),
        (
            lambda: policy(Profile("x", pct([5, 20, 60, 0, 0, 15])), 2),
            "profile 'x': the under 5 years adjustment takes 0.09 from US_EQ",
        ),
        (
            lambda: policy(Profile("x", pct([0, 0, 80, 0, 0, 20])), 21),
            "profile 'x' holds no US_EQ or INTL_EQ",
        ),
    ],
)
def test_errors_name_the_culprit_and_the_fix(call, message) -> None:
    with pytest.raises(InputError) as info:
        call()
    assert message in str(info.value)
