"""No silent wrong answer from the data (issue 10): date spacing, impossible returns, singular
covariance estimates.

* Mixed frequencies are an error naming where the spacing changes; regular calendars (with
  holidays, closures, month ends of 28 to 31 days) are accepted with the right frequency.
* A simple return at or below -100% is an error naming asset and date; returns that look like
  percent get the hint "divide them by 100" (an error with a return <= -100%, else a warning).
* Estimators without shrinkage refuse too few observations, constant assets and dependent
  combinations; the shrinkage estimators warn and stay positive definite.
"""

from __future__ import annotations

import glob
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_data import SHARED_DATA

from models import covariance, expected_returns, risk
from models import returns as rt
from models._common import MIN_OBSERVATIONS, SINGULAR_RTOL, infer_periods_per_year
from optimizer.errors import InputError
from scenarios.backtest import backtest

EXAMPLES = Path(__file__).resolve().parents[2] / "scenarios" / "examples"
SHARED = SHARED_DATA


def frame(values: np.ndarray, index: pd.Index, prefix: str = "A") -> pd.DataFrame:
    return pd.DataFrame(
        values, index=index, columns=[f"{prefix}{i:02d}" for i in range(values.shape[1])]
    )


def noise(t: int, n: int, *, seed: int = 0, scale: float = 0.01, monthly: bool = False):
    """Decimal returns with a common factor, business days (or month ends)."""
    rng = np.random.default_rng(seed)
    x = scale * (rng.standard_normal((t, 1)) + rng.standard_normal((t, n)))
    if monthly:
        index = pd.date_range("2000-01-31", periods=t, freq="ME")
    else:
        index = pd.bdate_range("2015-01-01", periods=t)
    return frame(x, index)


def mixed() -> pd.DataFrame:
    """60 month ends, then 300 business days (the issue's case)."""
    m = pd.date_range("2000-01-31", periods=60, freq="ME")
    d = pd.bdate_range("2005-01-03", periods=300)
    x = np.random.default_rng(1).normal(0, 0.02, (360, 3))
    return pd.DataFrame(x, m.append(d), list("xyz"))


def recorded(fn, *args, **kwargs):
    """``fn(...)`` and the messages of the UserWarnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


# ============================================================================ date spacing


def test_monthly_then_daily_names_where_the_spacing_changes() -> None:
    with pytest.raises(InputError) as err:
        rt.periods_per_year(mixed())
    msg = str(err.value)
    assert "monthly (28 to 31 days apart) up to 2004-12-31" in msg
    assert "daily (1 to 3 days apart) from 2005-01-03" in msg
    assert "split the history at 2005-01-03" in msg
    assert "resample" in msg and "periods_per_year=" in msg


@pytest.mark.parametrize(
    "call",
    [
        lambda r: covariance.sample(r),
        lambda r: covariance.ledoit_wolf(r),
        lambda r: expected_returns.historical_mean(r),
        lambda r: backtest(r, pd.Series(1 / 3, index=r.columns)),
    ],
    ids=["sample", "ledoit_wolf", "historical_mean", "backtest"],
)
def test_every_estimator_refuses_mixed_frequencies(call) -> None:
    with pytest.raises(
        InputError, match="monthly .* up to 2004-12-31 and daily .* from 2005-01-03"
    ):
        call(mixed())


def test_explicit_periods_per_year_is_not_inferred() -> None:
    r = mixed()
    np.testing.assert_allclose(covariance.sample(r, periods_per_year=12), r.cov() * 12)


def test_daily_then_monthly_and_the_count_of_changes() -> None:
    d = pd.bdate_range("2010-01-04", periods=40)
    m = pd.date_range("2010-03-31", periods=24, freq="ME")
    d2 = pd.bdate_range("2012-03-05", periods=10)
    index = d.append(m).append(d2)
    with pytest.raises(InputError) as err:
        infer_periods_per_year(index)
    msg = str(err.value)
    assert "daily (1 to 3 days apart) up to 2010-02-26" in msg
    assert "monthly (28 to 33 days apart) from 2010-03-31" in msg  # its return spans a month
    assert "(and 1 more changes)" in msg


def test_a_sustained_irregular_stretch_is_named() -> None:
    m = pd.date_range("2000-01-31", periods=36, freq="ME")
    fortnights = pd.date_range("2003-01-14", periods=12, freq="14D")
    with pytest.raises(
        InputError,
        match=r"monthly .* up to 2002-12-31 and irregular \(14 days apart\) from 2003-01-14",
    ):
        infer_periods_per_year(m.append(fortnights))


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        # a week-long market closure (Sep 11 2001: closed Tue-Fri): one 7-day gap
        (
            pd.bdate_range("2001-08-01", "2001-10-31").drop(
                pd.bdate_range("2001-09-11", "2001-09-14")
            ),
            252,
        ),
        # two weeks of missing data in a daily series: one 15-day gap
        (
            pd.bdate_range("2020-01-01", "2020-06-30").drop(
                pd.bdate_range("2020-03-02", "2020-03-13")
            ),
            252,
        ),
        # a missing month in monthly data
        (pd.date_range("2000-01-31", periods=48, freq="ME").delete(20), 12),
        # business month ends (26 to 33 days) and business quarter ends
        (pd.date_range("2000-01-31", periods=120, freq="BME"), 12),
        (pd.date_range("2000-03-31", periods=40, freq="BQE"), 4),
        # weekly Fridays with a holiday moved to Thursday, and a missing week
        (
            pd.date_range("2019-01-04", periods=80, freq="W-FRI")
            .map(lambda d: d - pd.Timedelta(days=1) if d.month == 7 and d.day <= 7 else d)
            .delete(30),
            52,
        ),
        (pd.date_range("1990-12-31", periods=30, freq="YE"), 1),
    ],
    ids=["closure", "two-week-hole", "missing-month", "bme", "bqe", "weekly", "annual"],
)
def test_normal_calendars_are_accepted(index: pd.DatetimeIndex, expected: int) -> None:
    assert infer_periods_per_year(pd.DatetimeIndex(index)) == expected


def test_alternating_spacing_is_irregular() -> None:
    start = pd.Timestamp("2020-01-01")
    days = np.cumsum([0] + [1, 1, 20] * 10)  # no run of 3, but a third of the gaps off
    index = pd.DatetimeIndex([start + pd.Timedelta(days=int(d)) for d in days])
    with pytest.raises(InputError, match=r"irregular: 10 of 30 gaps are not daily, e\.g\. 20 days"):
        infer_periods_per_year(index)


def test_unsorted_and_repeated_dates_are_named() -> None:
    r = noise(30, 2)
    swapped = r.iloc[[0, 1, 3, 2] + list(range(4, 30))]
    with pytest.raises(InputError, match=r"2015-01-05 \(row 3\) comes after 2015-01-06"):
        covariance.sample(swapped)
    twice = pd.concat([r.iloc[:5], r.iloc[4:]])
    with pytest.raises(InputError, match=r"2015-01-07 \(row 5\) repeats"):
        expected_returns.historical_mean(twice)


def test_the_issue_volatility_is_refused_not_misannualized() -> None:
    # Annualized as daily, the monthly part gave a volatility three times too large.
    with pytest.raises(InputError, match="spacing of the dates changes"):
        covariance.sample(mixed())
    right = covariance.sample(mixed().iloc[:60])
    assert np.sqrt(right.iloc[0, 0]) == pytest.approx(0.02 * np.sqrt(12), rel=0.3)


# ---------------------------------------------------------------------------- property test


def _spaced(positions: list[int], gap: int) -> list[int]:
    """The positions, sorted, keeping only those at least ``gap`` after the previous kept."""
    kept: list[int] = []
    for p in sorted(set(positions)):
        if not kept or p - kept[-1] >= gap:
            kept.append(p)
    return kept


@st.composite
def calendars(draw: st.DrawFn) -> tuple[pd.DatetimeIndex, int]:
    """A regular calendar with its periods per year: daily business days with isolated holidays
    (and maybe one week-long closure), weekly (holiday-shifted), month ends, quarter ends, years.
    """
    kind = draw(st.sampled_from(["daily", "weekly", "monthly", "quarterly", "annual"]))
    start = pd.Timestamp("1985-01-01") + pd.Timedelta(days=draw(st.integers(0, 365 * 35)))
    if kind == "daily":
        days = pd.bdate_range(start, periods=draw(st.integers(30, 400)))
        picks = draw(st.lists(st.integers(1, len(days) - 2), max_size=len(days) // 15))
        drop = _spaced(picks, 5)  # holidays are at least a week apart
        if draw(st.booleans()) and len(days) > 60:
            c = draw(st.integers(10, len(days) - 10))
            drop = [p for p in drop if abs(p - c) > 8] + list(range(c, c + 4))
        return days.delete(sorted(set(drop))), 252
    if kind == "weekly":
        day = draw(st.sampled_from(["MON", "WED", "FRI"]))
        dates = pd.date_range(start, periods=draw(st.integers(10, 300)), freq=f"W-{day}")
        shifted = set(_spaced(draw(st.lists(st.integers(1, len(dates) - 1), max_size=8)), 2))
        moved = [d - pd.Timedelta(days=1) if i in shifted else d for i, d in enumerate(dates)]
        return pd.DatetimeIndex(moved), 52
    freq, count, periods = {
        "monthly": (draw(st.sampled_from(["ME", "BME", "MS", "BMS"])), (6, 400), 12),
        "quarterly": (draw(st.sampled_from(["QE", "BQE", "QS"])), (4, 160), 4),
        "annual": (draw(st.sampled_from(["YE", "BYE", "YS"])), (3, 40), 1),
    }[kind]
    dates = pd.date_range(start, periods=draw(st.integers(*count)), freq=freq)
    if kind == "monthly":  # month ends moved a business day earlier for a holiday
        shifted = set(_spaced(draw(st.lists(st.integers(1, len(dates) - 1), max_size=6)), 2))
        dates = pd.DatetimeIndex(
            [d - pd.offsets.BDay(1) if i in shifted else d for i, d in enumerate(dates)]
        )
    return dates, periods


@settings(max_examples=150, deadline=None)
@given(calendars())
def test_property_regular_calendars_get_their_frequency(case) -> None:
    index, periods = case
    assert infer_periods_per_year(index) == periods


# ============================================================================ real data


def _real_files() -> list[Path]:
    found = sorted(Path(p) for p in glob.glob(str(SHARED / "**" / "*.csv.gz"), recursive=True))
    # price histories only: not a correlation matrix, nor the taxable example's lots and trades
    found += sorted(
        p
        for p in EXAMPLES.glob("*.csv*")
        if "correlation" not in p.name and not p.name.startswith("taxable_account_")
    )
    return found


@pytest.mark.parametrize("path", _real_files(), ids=lambda p: p.name)
def test_real_data_passes_every_check(path: Path) -> None:
    data = pd.read_csv(path, index_col=0)
    data.index = pd.DatetimeIndex(pd.to_datetime(data.index, format="mixed"))
    is_returns = "french" in path.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing='drop' on the ragged peer file
        rets = data if is_returns else rt.from_prices(data, missing="drop")
    expected = 12 if is_returns else 252
    assert rt.periods_per_year(data) == expected
    assert rt.periods_per_year(rets) == expected
    n = rets.shape[1]
    for fn in (
        covariance.sample,
        covariance.ledoit_wolf,
        covariance.oas,
        lambda r: covariance.ewma(r, halflife=max(60, 2 * n)),
    ):
        cov, warned = recorded(fn, rets)
        assert warned == []
        assert np.linalg.eigvalsh(cov.to_numpy()).min() > 0
    _, warned = recorded(expected_returns.historical_mean, rets)
    assert warned == []


def test_shipped_examples_and_shared_data_were_found() -> None:
    names = {p.name for p in _real_files()}
    assert {"french_industries.csv", "sp500_prices.csv.gz"} <= names


# ============================================================================ impossible returns


def with_loss(value: float) -> pd.DataFrame:
    r = noise(40, 3, monthly=True)
    r.columns = ["NoDur", "Durbl", "Manuf"]
    r.loc["2002-10-31", "NoDur"] = value
    return r


@pytest.mark.parametrize(
    "call",
    [
        covariance.sample,
        covariance.ledoit_wolf,
        covariance.oas,
        covariance.nonlinear_shrinkage,
        lambda r: covariance.factor_model(r, n_factors=1),
        expected_returns.historical_mean,
        lambda r: expected_returns.ewma_mean(r, halflife=6),
        lambda r: risk.value_at_risk(pd.Series(1 / 3, index=r.columns), r),
        lambda r: backtest(r, pd.Series(1 / 3, index=r.columns)),
        rt.to_prices,
    ],
    ids=[
        "sample",
        "ledoit_wolf",
        "oas",
        "nonlinear",
        "factor_model",
        "historical_mean",
        "ewma_mean",
        "value_at_risk",
        "backtest",
        "to_prices",
    ],
)
def test_a_return_below_minus_100_percent_is_named_everywhere(call) -> None:
    with pytest.raises(InputError) as err:
        call(with_loss(-1.5))
    msg = str(err.value)
    assert "NoDur on 2002-10-31 is -150.00%" in msg
    assert "a simple return cannot be -100% or below" in msg


def test_exactly_minus_100_percent_is_refused_and_log_returns_are_not_checked() -> None:
    with pytest.raises(InputError, match="NoDur on 2002-10-31 is -100.00%"):
        covariance.sample(with_loss(-1.0))
    prices = rt.to_prices(with_loss(-1.5), kind="log")  # a log return of -1.5 is a -78% move
    assert (prices > 0).all().all()


def test_the_position_is_named_without_dates() -> None:
    r = with_loss(-1.2).reset_index(drop=True)
    with pytest.raises(InputError, match="NoDur at row 33 is -120.00%"):
        covariance.sample(r, periods_per_year=12)


def test_percent_returns_with_big_losses_get_the_hint() -> None:
    r = noise(60, 3, monthly=True, scale=0.04) * 100  # percent
    with pytest.raises(InputError) as err:
        covariance.ledoit_wolf(r)
    msg = str(err.value)
    assert "cannot be -100% or below" in msg
    assert "A00, A01, A02 look like percent" in msg
    assert "divide them by 100" in msg


def test_percent_returns_without_losses_below_minus_100_percent_warn() -> None:
    r = noise(60, 3, monthly=True, scale=0.01).abs() * 100  # percent, all above -100%
    r["A02"] = r["A02"] / 100  # one asset in decimals
    cov, warned = recorded(covariance.sample, r)
    assert cov.shape == (3, 3)  # used as given
    assert len(warned) == 1
    assert "A00, A01 look like percent" in warned[0] and "A02" not in warned[0]
    assert "divide them by 100" in warned[0]


def test_decimal_returns_with_one_large_loss_get_the_neutral_hint() -> None:
    with pytest.raises(InputError) as err:
        covariance.sample(with_loss(-1.5))
    assert "look like percent" not in str(err.value)
    assert "if these are percent, divide them by 100" in str(err.value)


# ============================================================================ too few observations


@pytest.mark.parametrize(
    "estimator",
    [
        covariance.sample,
        lambda r: covariance.ewma(r, halflife=10),
        covariance.ledoit_wolf,
        covariance.oas,
        covariance.nonlinear_shrinkage,
        lambda r: covariance.factor_model(r, n_factors=1),
    ],
    ids=["sample", "ewma", "ledoit_wolf", "oas", "nonlinear", "factor_model"],
)
def test_every_covariance_estimator_needs_three_returns(estimator) -> None:
    assert MIN_OBSERVATIONS == 3
    with pytest.raises(InputError, match="returns has 2 observations; at least 3 are needed"):
        estimator(noise(2, 20))


def test_sample_refuses_fewer_observations_than_assets_plus_one() -> None:
    r = noise(30, 60)
    with pytest.raises(InputError) as err:
        covariance.sample(r)
    msg = str(err.value)
    assert "covariance.sample: 30 observations of 60 assets give a singular covariance" in msg
    assert "T - 1 = 29 < 60" in msg
    assert "ledoit_wolf or oas" in msg and "at least 61 observations" in msg
    covariance.sample(noise(61, 60))  # the boundary: rank 60
    cov = covariance.ledoit_wolf(r)  # the fix
    assert np.linalg.eigvalsh(cov.to_numpy()).min() > 0


def test_ewma_refuses_a_short_effective_history_and_names_the_halflife_that_works() -> None:
    r = noise(500, 20)
    with pytest.raises(InputError, match=r"covariance.ewma: 15 observations of 20 assets"):
        covariance.ewma(r.iloc[:15], halflife=100)
    with pytest.raises(InputError) as err:
        covariance.ewma(r, halflife=5)
    msg = str(err.value)
    assert "halflife=5 over 500 observations leaves an effective 14.5 observations" in msg
    assert "for 20 assets" in msg and "ledoit_wolf or oas" in msg
    need = float(msg.split("a halflife of at least ")[1].split(" periods")[0])
    assert 7 < need < 8
    covariance.ewma(r, halflife=need * 1.01)  # the suggestion is enough
    with pytest.raises(InputError, match="use a shrinkage estimator"):
        covariance.ewma(r.iloc[:21], halflife=1000)  # no half-life reaches 21 with 21 rows


# ============================================================================ degenerate assets


def flat_and_copies() -> dict[str, pd.DataFrame]:
    base = noise(80, 5, seed=3)
    flat = base.assign(STALE=0.0)
    dup = base.assign(A01_COPY=base["A01"])
    combo = base.assign(MIX=0.5 * base["A00"] + 0.5 * base["A03"])
    return {"flat": flat, "dup": dup, "combo": combo}


@pytest.mark.parametrize(
    "estimator",
    [covariance.sample, lambda r: covariance.ewma(r, halflife=40)],
    ids=["sample", "ewma"],
)
def test_no_shrinkage_refuses_constant_and_dependent_assets(estimator) -> None:
    cases = flat_and_copies()
    with pytest.raises(InputError, match=r"constant \(zero variance\) for assets: STALE"):
        estimator(cases["flat"])
    with pytest.raises(InputError) as err:
        estimator(cases["dup"])
    msg = str(err.value)
    assert "a combination of assets A01, A01_COPY has no variance" in msg or (
        "a combination of assets A01_COPY, A01 has no variance" in msg
    )
    assert "shrinkage estimator such as ledoit_wolf or oas" in msg
    with pytest.raises(InputError) as err:
        estimator(cases["combo"])
    named = str(err.value).split("of assets ")[1].split(" has")[0].split(", ")
    assert sorted(named) == ["A00", "A03", "MIX"]


@pytest.mark.parametrize(
    "estimator",
    [covariance.ledoit_wolf, covariance.oas],
    ids=["ledoit_wolf", "oas"],
)
def test_shrinkage_warns_about_constant_and_dependent_assets_and_stays_definite(estimator) -> None:
    cases = flat_and_copies()
    for key, culprit in (("flat", "STALE"), ("dup", "A01_COPY"), ("combo", "MIX")):
        cov, warned = recorded(estimator, cases[key])
        assert len(warned) == 1 and culprit in warned[0], (key, warned)
        assert "positive definite" in warned[0]
        assert np.linalg.eigvalsh(cov.to_numpy()).min() > 0
    wide = noise(20, 40, seed=4)
    wide["A05_COPY"] = wide["A05"]
    _, warned = recorded(estimator, wide)  # T - 1 < n: the pairs are named
    assert len(warned) == 1 and "perfectly correlated pairs of assets" in warned[0]
    assert "A05-A05_COPY" in warned[0]
    _, warned = recorded(estimator, noise(20, 40, seed=4))
    assert warned == []  # T - 1 < n alone is what shrinkage is for


def test_structured_targets_refuse_constant_assets_and_warn_about_copies() -> None:
    cases = flat_and_copies()
    for target in ("constant_correlation", "single_factor"):
        with pytest.raises(InputError, match="constant \\(zero variance\\) for assets: STALE"):
            covariance.ledoit_wolf(cases["flat"], target=target)
        cov, warned = recorded(covariance.ledoit_wolf, cases["dup"], target=target)
        assert len(warned) == 1 and "A01_COPY" in warned[0]
        assert np.linalg.eigvalsh(cov.to_numpy()).min() > 0


def test_factor_models_refuse_constant_assets_and_singular_structures() -> None:
    cases = flat_and_copies()
    with pytest.raises(
        InputError, match=r"constant \(zero variance\) for assets: STALE; factor_model would give"
    ):
        covariance.factor_model(cases["flat"], n_factors=2)
    r = noise(10, 30, seed=5)
    with pytest.raises(InputError) as err:
        covariance.factor_model(r, n_factors=9)  # k = T - 1 < n: the singular sample covariance
    assert "no specific variance left after 9 factor(s)" in str(err.value)
    assert "use fewer factors" in str(err.value)
    fc = covariance.factor_model(r, n_factors=3)
    assert np.linalg.eigvalsh(fc.cov.to_numpy()).min() > 0
    f = noise(80, 2, seed=6)
    f.columns = ["F1", "F2"]
    base = noise(80, 3, seed=7)
    with pytest.raises(
        InputError, match=r"for assets: STALE; factor_regression would give them no risk"
    ):
        covariance.factor_regression(base.assign(STALE=0.0), f)
    one = base.assign(TRACKER=f["F1"])  # an asset that is a factor: no specific risk, but definite
    fc = covariance.factor_regression(one, f)
    assert np.linalg.eigvalsh(fc.cov.to_numpy()).min() > 0
    with pytest.raises(InputError) as err:  # two such assets: their difference has no variance
        covariance.factor_regression(one.assign(TWIN=f["F1"]), f)
    assert "TRACKER, TWIN have no specific variance left after 2 factor(s)" in str(err.value)
    assert "1 combination(s) of them no variance at all" in str(err.value)


def test_the_tolerance_is_relative_to_the_correlation_scale() -> None:
    # Units do not matter: the same near-duplicate is refused at any scale of the returns.
    base = noise(80, 4, seed=8)
    tiny = base.assign(NEAR=base["A02"] * (1 + 1e-7))
    for scale in (1e-4, 1.0 / 0.3):
        with pytest.raises(InputError, match="NEAR"):
            covariance.sample(tiny * scale)
    # a real but strong relation is not flagged
    noisy = base.assign(CLOSE=base["A02"] + 1e-3 * noise(80, 1, seed=9)["A00"])
    covariance.sample(noisy)
    assert SINGULAR_RTOL == 1e-10


def test_a_backtest_on_percent_returns_stops_at_the_overflow() -> None:
    r = noise(600, 2, monthly=True, scale=0.05).abs() * 100  # percent, all positive: a warning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError) as err:
            backtest(r, pd.Series(0.5, index=r.columns))
    assert "the portfolio value overflows on" in str(err.value)
    assert "if they are percent, divide them by 100" in str(err.value)
