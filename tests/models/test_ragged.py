"""Histories of different lengths: from_prices(missing="keep") and the estimators' overlap=.

Known answers on the real data of ../shared/data (the ragged PyPortfolioOpt price file, and
ragged frames made by blanking the start of columns of the S&P 500 file): without NaN the
pairwise estimators are the ordinary ones; each pairwise entry is numpy.cov on the pair's
overlap; each mean the asset's own; the repair is reported and leaves a PSD matrix; Stambaugh
(1997) against the paper's two-asset formulas.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.covariance
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_data import load

from models import _shrinkage, covariance, expected_returns, returns
from models._repair import REPAIR_FLOOR
from optimizer.errors import InputError
from scenarios.outputs import _REPAIR, repair_figures

PPY = 252


@pytest.fixture(scope="module")
def peer_prices() -> pd.DataFrame:
    """PyPortfolioOpt's 20 stocks, young listings (FB, BABA, GM, ...) starting late."""
    return load("peer_suite/stock_prices.csv.gz")


@pytest.fixture(scope="module")
def ragged(peer_prices: pd.DataFrame) -> pd.DataFrame:
    return returns.from_prices(peer_prices, missing="keep")


@pytest.fixture(scope="module")
def sp500_returns(sp500_prices: pd.DataFrame) -> pd.DataFrame:
    return returns.from_prices(sp500_prices.iloc[-1500:, :8])


def blank_starts(rets: pd.DataFrame, starts: dict[str, int]) -> pd.DataFrame:
    """``rets`` with the first ``starts[col]`` returns of each named column set to NaN."""
    out = rets.copy()
    for col, k in starts.items():
        out.iloc[:k, out.columns.get_loc(col)] = np.nan
    return out


# ----------------------------------------------------------------------------- from_prices keep


def test_keep_starts_each_asset_at_its_own_first_price(peer_prices, ragged) -> None:
    assert ragged.index.equals(peer_prices.index[1:])
    for col in ["AAPL", "GOOG", "BABA", "FB"]:
        own = peer_prices[col].dropna()
        expected = (own / own.shift(1) - 1).iloc[1:]
        got = ragged[col]
        assert got.first_valid_index() == expected.index[0]
        assert got.loc[: expected.index[0]].iloc[:-1].isna().all()
        pd.testing.assert_series_equal(got.dropna(), expected, check_freq=False, rtol=1e-15)
    # BABA's 2014 start does not cut AAPL's 28 years, as missing="drop" does
    assert ragged["AAPL"].notna().sum() == len(peer_prices) - 1


def test_keep_log_returns_and_no_warning_for_leading_gaps(peer_prices) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logs = returns.from_prices(peer_prices, missing="keep", kind="log")
    simple = returns.from_prices(peer_prices, missing="keep")
    np.testing.assert_allclose(np.expm1(logs.to_numpy()), simple.to_numpy(), rtol=1e-12)


def test_keep_drops_interior_gaps_with_a_warning(sp500_prices) -> None:
    prices = sp500_prices.iloc[-300:, :4].copy()
    prices.iloc[:100, 1] = np.nan  # a late start: kept
    prices.iloc[150:152, 2] = np.nan  # an interior gap: the two dates are dropped
    with pytest.warns(
        UserWarning, match=r"missing='keep'\): dropped 2 date\(s\) .*per asset: BAC \(2\)"
    ):
        rets = returns.from_prices(prices, missing="keep")
    assert len(rets) == 300 - 1 - 2
    assert rets.iloc[:, 1].isna().sum() == 100  # the first price's date has no return
    assert rets.iloc[:, [0, 2, 3]].notna().all().all()


def test_keep_keeps_a_trailing_gap_as_nan(sp500_prices) -> None:
    prices = sp500_prices.iloc[-50:, :3].copy()
    prices.iloc[-10:, 0] = np.nan  # stopped trading
    rets = returns.from_prices(prices, missing="keep")
    assert len(rets) == 49
    assert rets.iloc[-10:, 0].isna().all() and rets.iloc[:-10, 0].notna().all()


def test_keep_refuses_an_asset_with_one_price(sp500_prices) -> None:
    prices = sp500_prices.iloc[-20:, :3].copy()
    prices.iloc[:-1, 2] = np.nan
    last = prices.index[-1].strftime("%Y-%m-%d")
    with pytest.raises(
        InputError, match=rf"fewer than 2 prices for {prices.columns[2]} \(on {last}\); .*drop it"
    ):
        returns.from_prices(prices, missing="keep")
    prices = sp500_prices.iloc[-20:, :3].copy()
    prices.iloc[5:7, 0] = np.nan  # AAPL's gap drops two dates for every asset
    prices.iloc[np.r_[0:5, 7:20], 1] = np.nan  # AMD's only prices were on them
    with (
        pytest.warns(UserWarning, match="dropped 2 date"),
        pytest.raises(
            InputError, match=r"for AMD \(none left: its prices fell on the dropped dates\)"
        ),
    ):
        returns.from_prices(prices, missing="keep")


def test_raise_message_mentions_keep(peer_prices) -> None:
    with pytest.raises(InputError, match=r"BABA: .*missing='keep'.*overlap='pairwise'"):
        returns.from_prices(peer_prices)


# ------------------------------------------------------------------- without NaN: the ordinary


@pytest.mark.parametrize("overlap", ["pairwise", "stambaugh"])
def test_without_nan_the_ragged_estimators_are_the_ordinary_ones(sp500_returns, overlap) -> None:
    r = sp500_returns
    pd.testing.assert_frame_equal(
        covariance.sample(r, overlap=overlap), covariance.sample(r), rtol=0, atol=0
    )
    pd.testing.assert_series_equal(
        expected_returns.historical_mean(r, overlap=overlap),
        expected_returns.historical_mean(r),
        rtol=0,
        atol=0,
    )
    if overlap == "stambaugh":
        return
    pd.testing.assert_frame_equal(
        covariance.ewma(r, halflife=60, overlap=overlap), covariance.ewma(r, halflife=60)
    )
    for target in covariance.TARGETS:
        pd.testing.assert_frame_equal(
            covariance.ledoit_wolf(r, target=target, overlap=overlap),
            covariance.ledoit_wolf(r, target=target),
        )
    pd.testing.assert_series_equal(
        expected_returns.historical_mean(r, method="geometric", overlap=overlap),
        expected_returns.historical_mean(r, method="geometric"),
    )
    pd.testing.assert_series_equal(
        expected_returns.ewma_mean(r, halflife=60, overlap=overlap),
        expected_returns.ewma_mean(r, halflife=60),
    )


# ------------------------------------------------------------------------- pairwise known answers


def test_each_pairwise_entry_is_numpy_cov_on_the_overlap(ragged) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the real file's pairwise matrix is PSD: no repair
        cov = covariance.sample(ragged, overlap="pairwise")
    assert cov.index.equals(ragged.columns) and cov.columns.equals(ragged.columns)
    for a, b in [("AAPL", "BABA"), ("GOOG", "FB"), ("GM", "MA"), ("AMZN", "XOM"), ("FB", "FB")]:
        pair = ragged[[a, b]].dropna().to_numpy()
        expected = np.cov(pair, rowvar=False, ddof=1)[0, 1] * PPY
        assert cov.loc[a, b] == pytest.approx(expected, rel=1e-12)
        assert cov.loc[b, a] == cov.loc[a, b]
    for a in ragged.columns:  # variances: each asset's own history
        own = ragged[a].dropna().to_numpy()
        assert cov.loc[a, a] == pytest.approx(np.var(own, ddof=1) * PPY, rel=1e-12)


def test_pairwise_means_are_each_assets_own(ragged) -> None:
    arith = expected_returns.historical_mean(ragged, overlap="pairwise")
    geo = expected_returns.historical_mean(ragged, overlap="pairwise", method="geometric")
    for a in ragged.columns:
        own = ragged[a].dropna().to_numpy()
        assert arith[a] == pytest.approx(own.mean() * PPY, rel=1e-12)
        assert geo[a] == pytest.approx(np.prod(1 + own) ** (PPY / len(own)) - 1, rel=1e-10)


def test_pairwise_ewma_weights_by_age_in_the_table(ragged) -> None:
    hl = 120.0
    age = np.arange(len(ragged) - 1, -1, -1, dtype=float)
    w_all = 0.5 ** (age / hl)
    cov = covariance.ewma(ragged, halflife=hl, overlap="pairwise")
    mu = expected_returns.ewma_mean(ragged, halflife=hl, overlap="pairwise")
    for a, b in [("AAPL", "BABA"), ("GM", "FB")]:
        both = ragged[[a, b]].notna().all(axis=1).to_numpy()
        w = w_all[both] / w_all[both].sum()
        x = ragged[[a, b]].to_numpy()[both]
        m = w @ x
        expected = float(w @ ((x[:, 0] - m[0]) * (x[:, 1] - m[1]))) * PPY
        assert cov.loc[a, b] == pytest.approx(expected, rel=1e-10)
    own = ragged["BABA"].notna().to_numpy()
    w = w_all[own] / w_all[own].sum()
    assert mu["BABA"] == pytest.approx(w @ ragged["BABA"].to_numpy()[own] * PPY, rel=1e-12)


def test_pairwise_ledoit_wolf_shrinks_the_pairwise_matrix(ragged) -> None:
    cov = covariance.ledoit_wolf(ragged, overlap="pairwise")
    x = ragged.to_numpy()
    common = x[~np.isnan(x).any(axis=1)]
    _, delta = sklearn.covariance.ledoit_wolf(common)
    s = covariance.sample(ragged, overlap="pairwise").to_numpy() / PPY
    counts = (~np.isnan(x)).astype(float).T @ (~np.isnan(x)).astype(float)
    s_ml = s * (counts - 1) / counts  # the ddof = 0 pairwise covariance
    target = np.eye(len(s)) * np.trace(s_ml) / len(s)
    expected = (delta * target + (1 - delta) * s_ml) * PPY
    np.testing.assert_allclose(cov.to_numpy(), expected, rtol=1e-10)
    for target_name in ("constant_correlation", "single_factor"):
        c = covariance.ledoit_wolf(ragged, overlap="pairwise", target=target_name).to_numpy()
        assert np.linalg.eigvalsh(c).min() > 0
        np.testing.assert_allclose(np.diag(c), np.diag(s_ml) * PPY, rtol=1e-10)


# ------------------------------------------------------------------------------------ the repair


def short_overlaps(sp500_prices: pd.DataFrame) -> pd.DataFrame:
    """20 real assets, 12 of them with 4 to 15 returns: a pairwise matrix that is not PSD."""
    r = returns.from_prices(sp500_prices.iloc[-400:])
    starts = {c: 400 - k for c, k in zip(r.columns[8:], range(4, 16), strict=True)}
    return blank_starts(r, starts)


def test_the_repair_is_reported_and_leaves_a_psd_matrix(sp500_prices) -> None:
    r = short_overlaps(sp500_prices)
    x = r.to_numpy()
    raw = r.cov(min_periods=3).to_numpy() * PPY  # pandas' pairwise covariance: the same entries
    lam = np.linalg.eigvalsh(raw)
    assert lam[0] < 0
    with pytest.warns(UserWarning) as caught:
        cov = covariance.sample(r, overlap="pairwise")
    (w,) = [w for w in caught if "not positive semidefinite" in str(w.message)]
    text = str(w.message)
    assert text.startswith("covariance.sample(overlap='pairwise'): the pairwise covariance is not")
    repaired = _shrinkage.clip_eigenvalues(raw, REPAIR_FLOOR * lam[-1])
    distance = np.linalg.norm(raw - repaired)
    figures = repair_figures(text)
    assert figures["smallest_eigenvalue"] == pytest.approx(lam[0], rel=1e-5)
    assert figures["distance"] == pytest.approx(distance, rel=1e-5)
    assert f"{int((lam < REPAIR_FLOOR * lam[-1]).sum())} of 20 eigenvalues" in text
    assert _REPAIR.search(text)  # scenario runs list it under "repairs" (manifest, report)
    np.testing.assert_allclose(cov.to_numpy(), repaired, rtol=1e-9, atol=1e-12)
    c = cov.to_numpy()
    assert np.array_equal(c, c.T)
    assert np.linalg.eigvalsh(c).min() > 0
    assert np.isnan(x).any()


def test_shrinkage_usually_needs_no_repair(sp500_prices) -> None:
    r = blank_starts(
        returns.from_prices(sp500_prices.iloc[-400:, :10]), {"JPM": 300, "HD": 200, "KO": 100}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cov = covariance.ledoit_wolf(r, overlap="pairwise")
    assert np.linalg.eigvalsh(cov.to_numpy()).min() > 0


# ------------------------------------------------------------------------------------ Stambaugh


def test_stambaugh_two_assets_against_the_papers_formulas(sp500_prices) -> None:
    r = blank_starts(returns.from_prices(sp500_prices.iloc[-500:, [0, 5]]), {"GE": 300})
    long, short = r["AAPL"].to_numpy(), r["GE"].to_numpy()
    t = len(long)
    c = ~np.isnan(short)
    # Stambaugh (1997): regress the short history on the long one over the common dates
    mlc, msc = long[c].mean(), short[c].mean()
    v_lc = np.mean((long[c] - mlc) ** 2)
    beta = np.mean((long[c] - mlc) * (short[c] - msc)) / v_lc
    ml = long.mean()
    v_l = np.mean((long - ml) ** 2)
    mu_s = msc + beta * (ml - mlc)
    v_s = np.mean((short[c] - msc) ** 2) + beta**2 * (v_l - v_lc)
    c_ls = beta * v_l
    cov = covariance.sample(r, overlap="stambaugh")
    mu = expected_returns.historical_mean(r, overlap="stambaugh")
    assert mu["AAPL"] == pytest.approx(ml * PPY, rel=1e-12)
    assert mu["GE"] == pytest.approx(mu_s * PPY, rel=1e-12)
    assert cov.loc["AAPL", "AAPL"] == pytest.approx(v_l * PPY, rel=1e-12)
    assert cov.loc["GE", "GE"] == pytest.approx(v_s * PPY, rel=1e-12)
    assert cov.loc["AAPL", "GE"] == pytest.approx(c_ls * PPY, rel=1e-12)
    assert t == 499


def test_stambaugh_on_the_peer_file_is_psd_and_moves_the_short_means(ragged) -> None:
    cov = covariance.sample(ragged, overlap="stambaugh").to_numpy()
    assert np.linalg.eigvalsh(cov).min() > 0
    mu = expected_returns.historical_mean(ragged, overlap="stambaugh")
    own = expected_returns.historical_mean(ragged, overlap="pairwise")
    full = ragged.notna().all()
    np.testing.assert_allclose(mu[full], own[full], rtol=1e-12)  # long histories: their own
    assert (mu[~full] - own[~full]).abs().max() > 0.01


def test_stambaugh_refuses_a_gap_after_the_start(sp500_returns) -> None:
    r = sp500_returns.copy()
    r.iloc[100, 2] = np.nan
    day = r.index[100].strftime("%Y-%m-%d")
    with pytest.raises(InputError, match=rf"BAC has no return on {day}.*overlap='pairwise'"):
        covariance.sample(r, overlap="stambaugh")


def test_stambaugh_refuses_too_few_returns_after_a_start(sp500_returns) -> None:
    r = blank_starts(sp500_returns, {"JNJ": len(sp500_returns) - 5})
    with pytest.raises(InputError, match=r"JNJ start on .* with 5 returns after, too few"):
        expected_returns.historical_mean(r, overlap="stambaugh")
    with pytest.raises(InputError, match=r"method='geometric' is not available"):
        expected_returns.historical_mean(r, overlap="stambaugh", method="geometric")


# ----------------------------------------------------------------------------------- error paths


@pytest.mark.parametrize(
    "call",
    [
        lambda r: covariance.sample(r),
        lambda r: covariance.ledoit_wolf(r),
        lambda r: covariance.oas(r),
        lambda r: expected_returns.historical_mean(r),
        lambda r: expected_returns.ewma_mean(r, halflife=20),
    ],
)
def test_nan_is_still_refused_by_default_and_the_message_names_the_option(ragged, call) -> None:
    with pytest.raises(
        InputError, match=r"NaN or inf values for assets: GOOG, FB, .*overlap='pairwise'"
    ):
        call(ragged)


@pytest.mark.parametrize(
    ("call", "who", "valid"),
    [
        (lambda r: covariance.sample(r, overlap="both"), "covariance.sample", "'stambaugh'"),
        (lambda r: covariance.ewma(r, halflife=5, overlap=1), "covariance.ewma", "'pairwise'"),
        (
            lambda r: covariance.ledoit_wolf(r, overlap="stambaugh"),
            "covariance.ledoit_wolf",
            "'pairwise' \\(overlap='stambaugh' is taken by covariance.sample",
        ),
        (
            lambda r: expected_returns.ewma_mean(r, halflife=5, overlap="x"),
            "expected_returns.ewma_mean",
            "'pairwise'",
        ),
    ],
)
def test_unknown_overlap_names_the_estimator_and_the_choices(
    sp500_returns, call, who, valid
) -> None:
    with pytest.raises(InputError, match=rf"^{who}: unknown overlap=.*valid options are .*{valid}"):
        call(sp500_returns)


def test_a_pair_with_too_few_common_returns_is_named(sp500_returns) -> None:
    n = len(sp500_returns)
    r = sp500_returns.copy()
    r.iloc[: n - 30, 1] = np.nan  # AMD: the last 30 returns
    r.iloc[n - 28 :, 3] = np.nan  # BBY: all but the last 28, so AMD-BBY share 2
    first = r.index[n - 30].strftime("%Y-%m-%d")
    for call in (
        lambda x: covariance.sample(x, overlap="pairwise"),
        lambda x: covariance.ewma(x, halflife=50, overlap="pairwise"),
        lambda x: covariance.ledoit_wolf(x, overlap="pairwise"),
    ):
        with pytest.raises(
            InputError,
            match=rf"too few common returns: AMD and BBY have 2 \({first}\.\..*\); each pair "
            r"of assets needs at least 3 .*drop one asset",
        ):
            call(r)


def test_ledoit_wolf_needs_a_common_window(sp500_returns) -> None:
    r = sp500_returns.iloc[-15:, :3].copy()
    r.iloc[10:, 0] = np.nan  # AAPL: rows 0-9
    r.iloc[:5, 1] = np.nan  # AMD: rows 5-14
    r.iloc[3:8, 2] = np.nan  # BAC: rows 0-2 and 8-14; each pair shares 5 to 7, all three 2
    start = r.index[5].strftime("%Y-%m-%d")
    end = r.index[9].strftime("%Y-%m-%d")
    with pytest.raises(
        InputError,
        match=r"ledoit_wolf\(overlap='pairwise'\): .* there are 2 \(at least 3 are needed\): "
        rf"AMD starts on {start} and AAPL ends on {end}; .*covariance.sample\(overlap='pairwise'\)",
    ):
        covariance.ledoit_wolf(r, overlap="pairwise")
    with pytest.warns(UserWarning, match="repaired"):
        assert np.isfinite(covariance.sample(r, overlap="pairwise").to_numpy()).all()


def test_an_asset_with_too_few_returns_is_named(sp500_returns) -> None:
    r = blank_starts(sp500_returns, {"AMD": len(sp500_returns) - 1})
    with pytest.raises(
        InputError, match=r"historical_mean\(overlap='pairwise'\): too few returns for AMD \(1\)"
    ):
        expected_returns.historical_mean(r, overlap="pairwise")
    with pytest.raises(InputError, match=r"sample\(overlap='pairwise'\): .*AMD \(1\).*at least 3"):
        covariance.sample(r, overlap="pairwise")


def test_bad_returns_are_still_refused_on_each_assets_own_history(sp500_returns) -> None:
    r = blank_starts(sp500_returns, {"AMD": 100})
    r.iloc[200, 1] = -1.5
    day = r.index[200].strftime("%Y-%m-%d")
    with pytest.raises(InputError, match=rf"the return of AMD on {day} is -150\.00%"):
        covariance.sample(r, overlap="pairwise")
    r.iloc[200, 1] = np.inf
    with pytest.raises(InputError, match=r"NaN or inf values for assets: AMD"):
        expected_returns.historical_mean(r, overlap="pairwise")


def test_a_duplicated_asset_is_still_refused(sp500_returns) -> None:
    r = blank_starts(sp500_returns, {"AMD": 300})
    r["COPY"] = r["AAPL"]
    with pytest.raises(InputError, match=r"covariance.sample: .*(AAPL.*COPY|COPY, AAPL).*singular"):
        covariance.sample(r, overlap="pairwise")


# ------------------------------------------------------------------------------------- property


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 6),
    seed=st.integers(0, 2**32 - 1),
    t=st.integers(30, 80),
    data=st.data(),
)
def test_random_ragged_starts_give_symmetric_psd_annualized_estimates(n, seed, t, data) -> None:
    rng = np.random.default_rng(seed)
    x = 0.01 * (rng.standard_normal((t, 1)) + rng.standard_normal((t, n)))
    index = pd.bdate_range("2020-01-01", periods=t)
    r = pd.DataFrame(x, index=index, columns=[f"S{i}" for i in range(n)])
    starts = data.draw(st.lists(st.integers(0, t - 3), min_size=n, max_size=n))
    starts[int(rng.integers(n))] = 0
    r = blank_starts(r, {c: k for c, k in zip(r.columns, starts, strict=True)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the repair's warning, tested above
        for method in ("sample", "ledoit_wolf"):
            try:
                annual = getattr(covariance, method)(r, overlap="pairwise")
            except InputError as exc:  # too short a common window for ledoit_wolf, a tiny pair
                assert re.search(r"at least 3|too few|singular", str(exc)), str(exc)
                continue
            periodic = getattr(covariance, method)(r, overlap="pairwise", periods_per_year=1)
            c = annual.to_numpy()
            assert np.array_equal(c, c.T)
            assert np.linalg.eigvalsh(c).min() >= -1e-12 * np.abs(c).max()
            np.testing.assert_allclose(c, periodic.to_numpy() * PPY, rtol=1e-9, atol=1e-15)
        mu = expected_returns.historical_mean(r, overlap="pairwise")
        np.testing.assert_allclose(mu.to_numpy(), r.mean().to_numpy() * PPY, rtol=1e-12, atol=1e-15)


def em_normal(x: np.ndarray, iterations: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """ML mean and covariance of a normal sample with missing values, by EM (Dempster et al.)."""
    t, n = x.shape
    miss = np.isnan(x)
    mu = np.nanmean(x, axis=0)
    sigma = np.diag(np.nanvar(x, axis=0))
    for _ in range(iterations):
        total = np.zeros(n)
        second = np.zeros((n, n))
        for row, m in zip(x, miss, strict=True):
            o = ~m
            filled = row.copy()
            extra = np.zeros((n, n))
            if m.any():
                b = np.linalg.solve(sigma[np.ix_(o, o)], sigma[np.ix_(o, m)]).T
                filled[m] = mu[m] + b @ (row[o] - mu[o])
                extra[np.ix_(m, m)] = sigma[np.ix_(m, m)] - b @ sigma[np.ix_(o, m)]
            total += filled
            second += np.outer(filled, filled) + extra
        new_mu = total / t
        new_sigma = second / t - np.outer(new_mu, new_mu)
        done = np.abs(new_sigma - sigma).max() < 1e-16 and np.abs(new_mu - mu).max() < 1e-16
        mu, sigma = new_mu, new_sigma
        if done:
            break
    return mu, sigma


def test_stambaugh_with_three_start_dates_is_the_maximum_likelihood_of_em(sp500_prices) -> None:
    r = returns.from_prices(sp500_prices.iloc[-41:, [0, 5, 8, 9]])
    r = blank_starts(r, {"GE": 10, "JPM": 25, "KO": 25})
    mu = expected_returns.historical_mean(r, overlap="stambaugh", periods_per_year=1)
    cov = covariance.sample(r, overlap="stambaugh", periods_per_year=1)
    em_mu, em_cov = em_normal(r.to_numpy())
    np.testing.assert_allclose(mu.to_numpy(), em_mu, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(cov.to_numpy(), em_cov, rtol=1e-6, atol=1e-10)


# ---------------------------------------------------------------------------- scenario files


def ragged_scenario(tmp_path, sp500_prices: pd.DataFrame, estimates: str) -> Path:
    """The shipped sp500_frontier example on a ragged price file, with ``estimates`` keys."""
    from scenarios import schema

    if "overlap" not in getattr(schema.estimates, "_EST_DATA", ()):
        pytest.skip("scenarios/schema/estimates.py does not list [estimates] overlap yet")
    prices = sp500_prices[sp500_prices.index >= "2015-01-01"].copy()
    for col, k in {"AMD": 1500, "UNH": 1200, "RRC": 1990, "GE": 1995}.items():
        prices.iloc[:k, prices.columns.get_loc(col)] = np.nan
    prices.to_csv(tmp_path / "ragged.csv")
    example = Path(schema.__file__).parents[1] / "examples" / "sp500_frontier.toml"
    text = example.read_text(encoding="utf-8")
    old = 'file = "sp500_prices.csv.gz"\nstart = 2015-01-01\ncovariance = "ledoit_wolf"\n'
    assert old in text
    path = tmp_path / "ragged.toml"
    path.write_text(text.replace(old, f'file = "ragged.csv"\n{estimates}\n'), encoding="utf-8")
    return path


def test_a_scenario_estimates_over_ragged_histories_and_records_the_repair(
    tmp_path, sp500_prices
) -> None:
    from scenarios.outputs import run_notes
    from scenarios.schema import load_scenario

    path = ragged_scenario(
        tmp_path, sp500_prices, 'missing = "keep"\noverlap = "pairwise"\ncovariance = "sample"'
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = load_scenario(path).estimates.build()
    _, repairs = run_notes(None, caught)  # what manifest.json and report.json list
    (repair,) = repairs
    assert (
        "ragged.csv" in repair["message"]
        and "covariance.sample(overlap='pairwise')" in (repair["message"])
    )
    assert repair["figures"]["smallest_eigenvalue"] < 0 < repair["figures"]["distance"]
    assert np.linalg.eigvalsh(est.cov.to_numpy()).min() > 0
    rets = returns.from_prices(
        pd.read_csv(tmp_path / "ragged.csv", index_col=0, parse_dates=True)[est.assets],
        missing="keep",
    )
    np.testing.assert_allclose(est.mu.to_numpy(), rets.mean().to_numpy() * PPY, rtol=1e-12)


@pytest.mark.parametrize(
    ("estimates", "key", "text"),
    [
        ('missing = "keep"', "estimates.missing", 'add overlap = "pairwise"'),
        (
            'missing = "keep"\noverlap = "pairwise"\ncovariance = "oas"',
            "estimates.overlap",
            "covariance = 'oas' cannot estimate over histories of different lengths",
        ),
        ('missing = "keep"\noverlap = "pairs"', "estimates.overlap", "unknown value 'pairs'"),
    ],
)
def test_scenario_overlap_errors_name_the_key(tmp_path, sp500_prices, estimates, key, text) -> None:
    from scenarios.schema import load_scenario

    path = ragged_scenario(tmp_path, sp500_prices, estimates)
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    assert f"ragged.toml: {key}" in str(exc.value) and text in str(exc.value)
