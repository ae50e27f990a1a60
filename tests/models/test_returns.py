"""Tests of models.returns: from_prices, to_prices, periods_per_year."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from models.returns import from_prices, periods_per_year, to_prices
from optimizer.errors import InputError


def small_prices() -> pd.DataFrame:
    dates = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
    return pd.DataFrame(
        {"A": [100.0, 110.0, 99.0, 99.0], "B": [50.0, 25.0, 50.0, 75.0]}, index=dates
    )


@pytest.fixture()
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------------------------------------
# known answers
# ---------------------------------------------------------------------------------------------


def test_simple_returns_by_hand(no_warnings) -> None:
    r = from_prices(small_prices())
    expected = pd.DataFrame(
        {"A": [0.10, -0.10, 0.0], "B": [-0.5, 1.0, 0.5]}, index=small_prices().index[1:]
    )
    pd.testing.assert_frame_equal(r, expected)


def test_log_returns_by_hand() -> None:
    r = from_prices(small_prices(), kind="log")
    assert r.loc["2024-01-03", "A"] == pytest.approx(np.log(1.1))
    assert r.loc["2024-01-04", "B"] == pytest.approx(np.log(2.0))
    assert r.loc["2024-01-05", "A"] == 0.0


def test_unsorted_dates_are_sorted() -> None:
    p = small_prices()
    shuffled = p.iloc[[2, 0, 3, 1]]
    pd.testing.assert_frame_equal(from_prices(shuffled), from_prices(p))


def test_labels_and_names_preserved() -> None:
    p = small_prices()
    p.index.name = "date"
    p.columns.name = "asset"
    r = from_prices(p)
    assert r.index.name == "date"
    assert r.columns.name == "asset"
    assert list(r.columns) == ["A", "B"]


def test_nullable_dtype_prices_accepted() -> None:
    p = small_prices().astype("Float64")
    pd.testing.assert_frame_equal(from_prices(p), from_prices(small_prices()))


def test_to_prices_round_trip_simple_and_log() -> None:
    p = small_prices()
    for kind in ("simple", "log"):
        r = from_prices(p, kind=kind)
        back = to_prices(r, start=p.iloc[0], kind=kind)
        pd.testing.assert_frame_equal(back, p.iloc[1:], rtol=1e-12)


def test_to_prices_scalar_start() -> None:
    r = pd.DataFrame({"A": [0.1, -0.5]}, index=pd.to_datetime(["2024-01-31", "2024-02-29"]))
    np.testing.assert_allclose(to_prices(r, start=2.0)["A"], [2.2, 1.1])


def test_to_prices_errors() -> None:
    r = pd.DataFrame(
        {"A": [0.1, -1.0], "B": [0.0, 0.0]}, index=pd.to_datetime(["2024-01-31", "2024-02-29"])
    )
    with pytest.raises(InputError, match="A on 2024-02-29"):
        to_prices(r)
    ok = r.assign(A=[0.1, 0.2])
    with pytest.raises(InputError, match="start has no value for: B"):
        to_prices(ok, start=pd.Series({"A": 1.0}))
    with pytest.raises(InputError, match="positive"):
        to_prices(ok, start=-1.0)
    with pytest.raises(InputError, match="start values must be numbers"):
        to_prices(ok, start=pd.Series({"A": "x", "B": "y"}))
    with pytest.raises(InputError, match="start must be a number"):
        to_prices(ok, start="x")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="kind='cumulative'.*'simple', 'log'"):
        to_prices(ok, kind="cumulative")


# ---------------------------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------------------------


def test_sp500_returns_shape_and_values(sp500_prices: pd.DataFrame, no_warnings) -> None:
    r = from_prices(sp500_prices)
    assert r.shape == (8312, 20)
    assert list(r.columns) == list(sp500_prices.columns)
    assert r.index[0] == sp500_prices.index[1]
    assert np.isfinite(r.to_numpy()).all()
    # Daily moves of large US stocks: mostly small, never below -100%.
    assert (r > -1).all().all()
    assert float(r.abs().median().max()) < 0.05
    ann = r.mean() * 252
    assert ann.between(-0.1, 0.6).all()
    logr = from_prices(sp500_prices, kind="log")
    np.testing.assert_allclose(logr.to_numpy(), np.log1p(r.to_numpy()), atol=1e-12)


def test_periods_inference_on_real_data(
    sp500_prices: pd.DataFrame, french_industries: pd.DataFrame
) -> None:
    assert periods_per_year(sp500_prices) == 252
    assert periods_per_year(from_prices(sp500_prices)) == 252
    assert periods_per_year(french_industries) == 12
    assert periods_per_year(french_industries.index) == 12
    weekly = sp500_prices.resample("W-FRI").last()
    assert periods_per_year(from_prices(weekly)) == 52
    assert periods_per_year(sp500_prices["AAPL"]) == 252


def test_periods_per_year_errors() -> None:
    with pytest.raises(InputError, match="DatetimeIndex"):
        periods_per_year(pd.DataFrame({"A": [1.0, 2.0]}))
    with pytest.raises(InputError, match="got list"):
        periods_per_year([1, 2])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# messy inputs built from real data
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def messy(sp500_prices: pd.DataFrame) -> pd.DataFrame:
    """Five stocks, 2019-2021: JPM lists late, MSFT misses a holiday, KO has a stale price."""
    p = sp500_prices.loc["2019-01-01":"2021-12-31", ["AAPL", "JPM", "MSFT", "KO", "XOM"]].copy()
    p.loc[:"2019-06-28", "JPM"] = np.nan  # not listed before July 2019
    p.loc["2020-03-02":"2020-03-04", "MSFT"] = np.nan  # a three-day gap
    p.loc["2020-07-06", "MSFT"] = np.nan  # a holiday in MSFT's market only
    return p


def test_missing_raise_names_assets_and_gaps(messy: pd.DataFrame) -> None:
    with pytest.raises(InputError) as info:
        from_prices(messy)
    msg = str(info.value)
    assert "JPM: 2019-01-02..2019-06-28" in msg
    assert "MSFT: 2020-03-02..2020-03-04, 2020-07-06" in msg
    assert "AAPL" not in msg and "KO" not in msg
    assert "missing='drop'" in msg and "missing='ffill'" in msg


def test_missing_raise_lists_many_gaps_briefly(sp500_prices: pd.DataFrame) -> None:
    p = sp500_prices.iloc[:100, :2].copy()
    p.iloc[1:60:2, 0] = np.nan  # 30 one-day gaps
    with pytest.raises(InputError, match="and 25 more gaps"):
        from_prices(p)


def test_missing_drop_common_window_and_warning(messy: pd.DataFrame) -> None:
    with pytest.warns(UserWarning) as record:
        r = from_prices(messy, missing="drop")
    assert len(record) == 1
    msg = str(record[0].message)
    assert "starts on 2019-07-01" in msg and "because JPM has no earlier prices" in msg
    assert "dropped 4 date(s)" in msg and "MSFT (4)" in msg
    assert record[0].filename == __file__  # points at the caller
    # Window: from JPM's first price; the MSFT gaps are dropped for every asset.
    kept = messy.loc["2019-07-01":].dropna()
    assert r.index[0] == kept.index[1]
    assert len(r) == len(kept) - 1
    assert pd.Timestamp("2020-07-06") not in r.index
    # The return after the holiday spans it: 2020-07-02 -> 2020-07-07.
    for asset in messy.columns:
        expected = messy.loc["2020-07-07", asset] / messy.loc["2020-07-02", asset] - 1
        assert r.loc["2020-07-07", asset] == pytest.approx(expected)
    assert not r.isna().any().any()


def test_missing_drop_trailing_gap_ends_window(messy: pd.DataFrame) -> None:
    p = messy.loc["2019-07-01":"2020-01-31"].copy()
    p.loc["2020-01-29":, "XOM"] = np.nan  # delisted
    with pytest.warns(UserWarning, match="ends on 2020-01-28.*XOM has no later prices"):
        r = from_prices(p, missing="drop")
    assert r.index[-1] == pd.Timestamp("2020-01-28")


def test_missing_ffill_stale_price_and_holiday(messy: pd.DataFrame) -> None:
    p = messy.copy()
    p.loc["2021-02-01":"2021-02-05", "KO"] = np.nan  # stale quote for a week
    with pytest.warns(UserWarning, match="starts on 2019-07-01.*JPM") as record:
        r = from_prices(p, missing="ffill")
    assert len(record) == 1
    assert r.index[0] == p.loc["2019-07-01":].index[1]
    assert len(r) == len(p.loc["2019-07-01":]) - 1
    # Stale prices give zero returns, then the move is caught up in one step.
    assert (r.loc["2021-02-01":"2021-02-05", "KO"] == 0).all()
    assert r.loc["2021-02-08", "KO"] == pytest.approx(
        p.loc["2021-02-08", "KO"] / p.loc["2021-01-29", "KO"] - 1
    )
    assert r.loc["2020-07-06", "MSFT"] == 0.0
    assert r.loc["2020-07-07", "MSFT"] == pytest.approx(
        p.loc["2020-07-07", "MSFT"] / p.loc["2020-07-02", "MSFT"] - 1
    )
    # Other assets keep the holiday date and their own returns.
    assert r.loc["2020-07-06", "AAPL"] == pytest.approx(
        p.loc["2020-07-06", "AAPL"] / p.loc["2020-07-02", "AAPL"] - 1
    )
    assert not r.isna().any().any()


def test_missing_ffill_interior_only_is_silent(messy: pd.DataFrame, no_warnings) -> None:
    r = from_prices(messy.drop(columns="JPM"), missing="ffill")
    assert len(r) == len(messy) - 1


def test_missing_ffill_trailing_gap_warns(messy: pd.DataFrame) -> None:
    p = messy.drop(columns="JPM").loc[:"2019-12-31"].copy()
    p.loc["2019-12-24":, "XOM"] = np.nan
    with pytest.warns(UserWarning, match=r"carried forward.*XOM after 2019-12-23 \(5 dates\)"):
        r = from_prices(p, missing="ffill")
    assert (r.loc["2019-12-24":, "XOM"] == 0).all()
    assert r.index[-1] == p.index[-1]


def test_missing_modes_agree_on_clean_data(sp500_prices: pd.DataFrame, no_warnings) -> None:
    p = sp500_prices.iloc[:300]
    base = from_prices(p)
    pd.testing.assert_frame_equal(from_prices(p, missing="drop"), base)
    pd.testing.assert_frame_equal(from_prices(p, missing="ffill"), base)


# ---------------------------------------------------------------------------------------------
# error paths: each message names the culprit
# ---------------------------------------------------------------------------------------------


def test_error_not_a_dataframe(sp500_prices: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="must be a pandas DataFrame.*got Series"):
        from_prices(sp500_prices["AAPL"])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="got ndarray"):
        from_prices(np.ones((3, 2)))  # type: ignore[arg-type]


def test_error_index_not_datetime() -> None:
    p = small_prices().reset_index(drop=True)
    with pytest.raises(InputError, match="DatetimeIndex.*RangeIndex.*pd.to_datetime"):
        from_prices(p)


def test_error_nat_in_index() -> None:
    p = small_prices()
    p.index = pd.DatetimeIndex([p.index[0], pd.NaT, p.index[2], p.index[3]])
    with pytest.raises(InputError, match="NaT.*rows 1"):
        from_prices(p)


def test_error_duplicate_dates_named() -> None:
    p = small_prices().iloc[[0, 1, 1, 2, 3]]
    with pytest.raises(InputError, match="duplicate dates: 2024-01-03"):
        from_prices(p)


def test_error_duplicate_assets_named() -> None:
    p = small_prices()
    p.columns = ["A", "A"]
    with pytest.raises(InputError, match="duplicate asset ids: A"):
        from_prices(p)


def test_error_non_numeric_columns_named() -> None:
    p = small_prices().assign(NAME=["x", "y", "z", "w"], FLAG=[True, False, True, True])
    with pytest.raises(InputError, match="non-numeric columns: NAME, FLAG"):
        from_prices(p)


def test_error_non_positive_prices_named() -> None:
    p = small_prices()
    p.loc["2024-01-04", "B"] = 0.0
    p.loc["2024-01-05", "B"] = -1.0
    with pytest.raises(InputError, match="non-positive prices for B first on 2024-01-04"):
        from_prices(p)


def test_error_infinite_prices_named() -> None:
    p = small_prices()
    p.loc["2024-01-03", "A"] = np.inf
    with pytest.raises(InputError, match="infinite values: A on 2024-01-03"):
        from_prices(p)


def test_error_too_few_observations() -> None:
    with pytest.raises(InputError, match="1 observation.*at least 2"):
        from_prices(small_prices().iloc[:1])
    with pytest.raises(InputError, match="no columns"):
        from_prices(small_prices().iloc[:, :0])


def test_error_too_few_after_missing_handling() -> None:
    p = small_prices()
    p.loc[:"2024-01-04", "B"] = np.nan
    for mode in ("drop", "ffill"):
        with pytest.warns(UserWarning, match="B has no earlier prices"):
            with pytest.raises(InputError, match=f"only 1 date.*missing='{mode}'"):
                from_prices(p, missing=mode)


def test_error_asset_without_prices() -> None:
    p = small_prices().assign(C=np.nan)
    with pytest.raises(InputError, match="no values at all for: C"):
        from_prices(p, missing="drop")


def test_error_drop_without_overlap() -> None:
    p = small_prices()
    p.loc[:"2024-01-03", "A"] = np.nan
    p.loc["2024-01-04":, "B"] = np.nan
    with pytest.raises(InputError, match="no common dates: B has no prices after 2024-01-03"):
        from_prices(p, missing="drop")


def test_error_unknown_options_list_valid_ones() -> None:
    with pytest.raises(InputError, match=r"kind='pct'; valid options are 'simple', 'log'"):
        from_prices(small_prices(), kind="pct")
    with pytest.raises(InputError, match=r"missing='zero'.*'raise', 'drop', 'ffill'"):
        from_prices(small_prices(), missing="zero")
    with pytest.raises(InputError, match="missing=None"):
        from_prices(small_prices(), missing=None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------

labels = st.lists(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", min_size=1, max_size=6),
    min_size=1,
    max_size=5,
    unique=True,
)


@st.composite
def price_frames(draw: st.DrawFn) -> pd.DataFrame:
    cols = draw(labels)
    t = draw(st.integers(min_value=2, max_value=40))
    values = draw(
        hnp.arrays(
            float,
            (t, len(cols)),
            elements=st.floats(min_value=0.01, max_value=1e4, allow_nan=False),
        )
    )
    return pd.DataFrame(values, index=pd.bdate_range("2020-01-01", periods=t), columns=cols)


@settings(max_examples=30, deadline=None)
@given(price_frames())
def test_property_labels_preserved(prices: pd.DataFrame) -> None:
    r = from_prices(prices)
    assert list(r.columns) == list(prices.columns)
    assert r.index.equals(prices.index[1:])
    assert r.shape == (len(prices) - 1, prices.shape[1])


@settings(max_examples=30, deadline=None)
@given(price_frames())
def test_property_log_is_log1p_simple(prices: pd.DataFrame) -> None:
    simple = from_prices(prices, kind="simple").to_numpy()
    log = from_prices(prices, kind="log").to_numpy()
    np.testing.assert_allclose(log, np.log1p(simple), rtol=1e-9, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(price_frames(), st.floats(min_value=1e-3, max_value=1e3))
def test_property_returns_invariant_to_price_scale(prices: pd.DataFrame, c: float) -> None:
    np.testing.assert_allclose(
        from_prices(prices * c).to_numpy(), from_prices(prices).to_numpy(), rtol=1e-9, atol=1e-12
    )


@settings(max_examples=30, deadline=None)
@given(price_frames())
def test_property_round_trip(prices: pd.DataFrame) -> None:
    back = to_prices(from_prices(prices), start=prices.iloc[0])
    np.testing.assert_allclose(back.to_numpy(), prices.iloc[1:].to_numpy(), rtol=1e-9)


def test_messages_are_single_line(messy: pd.DataFrame) -> None:
    with pytest.raises(InputError) as info:
        from_prices(messy)
    assert not re.search(r"\n", str(info.value))
