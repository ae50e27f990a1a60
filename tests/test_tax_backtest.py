"""The taxable backtest (scenarios/tax_backtest.py): netting, wash sales, bookkeeping, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shared_data import load

from optimizer.errors import InputError
from optimizer.rebalance.taxlots import TaxModel
from scenarios.tax_backtest import (
    STRATEGIES,
    US_TAX,
    _Account,
    markdown,
    month_end_prices,
    study,
    substitutes,
    summary,
    tax_backtest,
    year_tax,
)

D0 = pd.Timestamp("2020-01-31")


def synthetic(months: int = 30, n: int = 4, seed: int = 3) -> pd.DataFrame:
    """Seeded month-end prices, ``months`` x ``n``."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.01, 0.06, (months, n))
    idx = pd.date_range("2010-01-31", periods=months, freq="ME")
    return pd.DataFrame(50 * np.cumprod(1 + r, axis=0), index=idx, columns=list("ABCD")[:n])


# ----------------------------------------------------------------------------- netting


@pytest.mark.parametrize(
    ("short", "long", "carry", "tax", "out"),
    [
        (1000, 500, (0, 0), 0.37 * 1000 + 0.2 * 500, (0, 0)),
        (-300, 1000, (0, 0), 0.2 * 700, (0, 0)),  # a short loss offsets long gains
        (1000, -300, (0, 0), 0.37 * 700, (0, 0)),  # a long loss offsets short gains
        (-1000, 300, (0, 0), 0.0, (700, 0)),  # the net loss carried as short-term
        (300, -1000, (0, 0), 0.0, (0, 700)),
        (-100, -200, (0, 0), 0.0, (100, 200)),
        (500, 0, (200, 100), 0.37 * 200, (0, 0)),  # carried losses used, by character
    ],
)
def test_year_tax_follows_the_netting_rules(short, long, carry, tax, out) -> None:
    due, left = year_tax(short, long, carry, US_TAX)
    assert due == pytest.approx(tax)
    assert left == pytest.approx(out)


# ----------------------------------------------------------------------------- lots, wash sales


def days(k: int) -> pd.Timestamp:
    return D0 + pd.Timedelta(days=k)


def test_hifo_sells_the_highest_basis_first() -> None:
    acct = _Account(US_TAX)
    for k, price in enumerate([100.0, 120.0, 90.0]):
        acct.buy(days(40 * k), "A", price, 10.0)
    picks = acct.hifo("A", 15.0)
    assert [(lot["basis"], q) for lot, q in picks] == [(120.0, 10.0), (100.0, 5.0)]


def test_a_purchase_after_a_loss_disallows_it_and_carries_it_in_the_basis() -> None:
    acct = _Account(US_TAX)
    acct.buy(days(0), "A", 100.0, 10.0)
    acct.sell(days(40), "A", 80.0, acct.hifo("A", 10.0))  # a 200 loss, 20 a unit
    acct.buy(days(60), "A", 85.0, 5.0)  # within 30 days: 5 units replace
    sale = acct.sales[0]
    assert sale["disallowed"] == pytest.approx(100.0)
    acct.buy(days(65), "A", 90.0, 10.0)  # 5 more units replace; the lot is split
    assert sale["disallowed"] == pytest.approx(200.0)
    acct.buy(days(75), "A", 95.0, 1.0)  # 35 days after: nothing left to match anyway
    bases = sorted((lot["basis"], lot["quantity"]) for lot in acct.lots)
    assert bases == [(90.0, 5.0), (95.0, 1.0), (105.0, 5.0), (110.0, 5.0)]
    assert acct.taxes_for([2020], (0.0, 0.0))[0][2020] == 0.0


def test_a_purchase_before_a_loss_disallows_it_for_the_units_still_held() -> None:
    acct = _Account(US_TAX)
    acct.buy(days(0), "A", 100.0, 10.0)
    acct.buy(days(50), "A", 90.0, 4.0)
    first = next(lot for lot in acct.lots if lot["basis"] == 100.0)
    n = len(acct.sales)
    acct.sell(days(60), "A", 80.0, [(first, 10.0)])
    acct.wash_before(days(60), n)
    assert acct.sales[0]["disallowed"] == pytest.approx(80.0)  # 4 units x 20
    assert [(lot["basis"], lot["quantity"]) for lot in acct.lots] == [(110.0, 4.0)]
    acct.buy(days(100), "A", 80.0, 10.0)  # 40 days after the sale: allowed
    assert acct.sales[0]["disallowed"] == pytest.approx(80.0)


def test_a_loss_outside_the_window_is_allowed() -> None:
    acct = _Account(US_TAX)
    acct.buy(days(0), "A", 100.0, 10.0)
    acct.sell(days(100), "A", 90.0, acct.hifo("A", 10.0))
    acct.buy(days(131), "A", 95.0, 10.0)
    assert acct.sales[0]["disallowed"] == 0.0
    assert acct.sales[0]["term"] == "short"


# ----------------------------------------------------------------------------- helpers


def test_month_end_prices_take_the_last_trading_day() -> None:
    idx = pd.to_datetime(["2020-01-30", "2020-01-31", "2020-02-27", "2020-02-28", "2020-03-02"])
    daily = pd.DataFrame({"A": [1.0, 2.0, 3.0, 4.0, 5.0]}, index=idx)
    got = month_end_prices(daily)
    assert list(got.index) == list(pd.to_datetime(["2020-01-31", "2020-02-28", "2020-03-02"]))
    assert got["A"].tolist() == [2.0, 4.0, 5.0]


def test_substitutes_pair_the_most_correlated_assets() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=60), rng.normal(size=60)
    r = pd.DataFrame({"A": x, "B": x + 0.1 * rng.normal(size=60), "C": y, "D": y + 0.2 * x})
    assert substitutes(r) == {"A": ["B"], "B": ["A"], "C": ["D"], "D": ["C"]}


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": "tax_smart"}, r"unknown strategy 'tax_smart': use one of tax_blind"),
        ({"start": "2010-06-30"}, r"start 2010-06-30 leaves fewer than window=12 .*start at"),
        ({"start": "2012-06-30"}, r"fewer than two month-ends: widen start\.\.end"),
        ({"initial_value": -1.0}, r"initial_value must be positive, got -1.0"),
        ({"window": 1}, r"window must be at least 2"),
    ],
)
def test_bad_inputs_name_the_culprit(kwargs, match) -> None:
    args = {"strategy": "tax_blind", "window": 12} | kwargs
    with pytest.raises(InputError, match=match):
        tax_backtest(synthetic(), args.pop("strategy"), **args)


def test_bad_prices_name_the_asset() -> None:
    prices = synthetic()
    prices.iloc[5, 2] = np.nan
    with pytest.raises(InputError, match="C"):
        tax_backtest(prices, "tax_blind", window=12)


@pytest.mark.parametrize(
    ("first", "last", "match"),
    [
        ("2030-01", "2031-12", r"first='2030-01' \.\. last='2031-12' hold fewer than two"),
        ("2010-13", "2011-12", r"first='2010-13' and last='2011-12' must be months like"),
    ],
)
def test_study_names_bad_months(first, last, match) -> None:
    with pytest.raises(InputError, match=match):
        study(synthetic(), first=first, last=last, window=12)


def test_month_end_prices_refuse_an_undated_frame() -> None:
    with pytest.raises(InputError, match="DatetimeIndex"):
        month_end_prices(pd.DataFrame({"A": [1.0]}))


# ----------------------------------------------------------------------------- bookkeeping


def check_books(r, tax: TaxModel = US_TAX) -> None:
    """Lots never negative, the cash identity each month, taxes equal to the sales' taxes."""
    led = r.ledger
    assert (led["min_lot"] >= 0).all() and (r.sales["quantity"] > 0).all()
    assert (r.lots["quantity"] > 0).all()
    cash = led["cash_before"] - led["tax_paid"] + led["proceeds"] - led["purchases"] - led["costs"]
    np.testing.assert_allclose(led["cash_after"], cash, rtol=0, atol=1e-6)
    np.testing.assert_allclose(led["cash_before"].iloc[1:], led["cash_after"].iloc[:-1], atol=1e-9)
    assert led["proceeds"].sum() == pytest.approx(r.sales["proceeds"].sum())
    allowed = r.sales["gain"] + r.sales["disallowed"]
    carry, total = (0.0, 0.0), 0.0
    for year in range(led.index[0].year, led.index[-1].year + 1):
        mine = r.sales["date"].dt.year == year
        short = float(allowed[mine & (r.sales["term"] == "short")].sum())
        long_ = float(allowed[mine & (r.sales["term"] == "long")].sum())
        due, carry = year_tax(short, long_, carry, tax)
        total += due
    assert led["tax_paid"].sum() == pytest.approx(total, rel=1e-12, abs=1e-6)
    assert r.metrics["taxes_paid"] == pytest.approx(total, rel=1e-12, abs=1e-6)
    assert r.metrics["after_tax_value"] == pytest.approx(led["cash_after"].iloc[-1])


def test_the_books_balance_on_synthetic_prices() -> None:
    r = tax_backtest(synthetic(), "tax_blind", window=12)
    check_books(r)
    assert len(r.returns) == len(synthetic()) - 13
    assert r.ledger["assets"].iloc[-1] == 0.0  # liquidated


#: The short window of the real-data tests: bought at the close of 2002-12, sold at 2004-12.
WINDOW = {"first": "2002-12", "last": "2004-12"}


@pytest.fixture(scope="module")
def real():
    """The three strategies on 2003-2004 of the real data, and two at zero rates."""
    daily = load("sp500_prices.csv.gz")
    runs = study(daily, **WINDOW)
    zero_rates = TaxModel(exact_assets=0)
    zero = study(daily, **WINDOW, tax=zero_rates, strategies=("tax_blind", "tax_aware"))
    return runs, zero


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_books_balance_on_real_prices(real, strategy) -> None:
    r = real[0][strategy]
    check_books(r)
    assert len(r.returns) == 24
    assert r.metrics["after_tax_value"] <= r.metrics["pre_liquidation_value"]


def test_tax_aware_pays_no_more_tax_than_tax_blind(real) -> None:
    runs = real[0]
    assert runs["tax_aware"].metrics["taxes_paid"] <= runs["tax_blind"].metrics["taxes_paid"]
    table = markdown(summary(runs))
    assert table.count("\n") == 4 and "| tax_aware_harvest |" in table


def test_zero_rates_make_tax_aware_equal_tax_blind(real) -> None:
    zero = real[1]
    blind, aware = zero["tax_blind"], zero["tax_aware"]
    np.testing.assert_allclose(aware.values, blind.values, rtol=1e-6)
    assert aware.metrics["taxes_paid"] == blind.metrics["taxes_paid"] == 0.0
    assert aware.metrics["wash_blocks"] == 0
