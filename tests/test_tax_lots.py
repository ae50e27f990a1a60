"""TaxLots, RecentTrades and TaxModel: content equality, round trips and every input error."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.rebalance import RecentTrades, TaxLots, TaxModel


def lots_frame(**over) -> pd.DataFrame:
    f = pd.DataFrame(
        {
            "asset": ["A", "A", "B"],
            "lot_id": ["a1", "a2", "b1"],
            "quantity": [10.0, 5.0, 3.0],
            "basis": [100.0, 120.0, 50.0],
            "acquired": ["2020-01-02", dt.date(2025, 6, 1), pd.Timestamp("2024-03-04")],
        }
    )
    for k, v in over.items():
        f[k] = v
    return f


def test_lots_round_trip_and_content():
    lots = TaxLots.from_frame(lots_frame())
    again = TaxLots.from_frame(lots.to_frame())
    assert lots == again and hash(lots) == hash(again)
    assert pickle.loads(pickle.dumps(lots)) == lots
    assert lots.assets == ("A", "B")
    assert lots.to_frame()["acquired"].dtype == "datetime64[ns]"
    np.testing.assert_array_equal(lots.quantities(pd.Index(["B", "C", "A"])), [3.0, 0.0, 15.0])
    assert lots.arrays["acquired"][1] == np.datetime64("2025-06-01")
    assert TaxLots.from_frame(lots) is lots


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (lots_frame().drop(columns="basis"), ["basis"]),
        (lots_frame(quantity=[1.0, 0.0, 2.0]), ["row 1", "a2", "quantity"]),
        (lots_frame(quantity=[1.0, np.nan, 2.0]), ["row 1", "a2", "quantity"]),
        (lots_frame(basis=[1.0, 2.0, -1.0]), ["row 2", "b1", "basis"]),
        (lots_frame(acquired=["2020-01-01", "soon", "2020-01-01"]), ["a2", "acquired", "soon"]),
        (lots_frame(lot_id=["x", "x", "y"]), ["duplicate", "'x'", "A"]),
        ("not a frame", ["DataFrame"]),
    ],
)
def test_lots_errors_name_the_culprit(frame, words):
    with pytest.raises(InputError) as exc:
        TaxLots.from_frame(frame)
    for w in words:
        assert w in str(exc.value)


def test_same_lot_id_in_two_assets_is_fine():
    lots = TaxLots.from_frame(lots_frame(lot_id=["1", "2", "1"]))
    assert len(lots) == 3


def recent_frame(**over) -> pd.DataFrame:
    f = pd.DataFrame(
        {
            "asset": ["A", "B"],
            "date": ["2026-01-10", "2026-01-20"],
            "side": ["buy", "sell"],
            "quantity": [1.0, 2.0],
            "gain": [np.nan, -30.0],
        }
    )
    for k, v in over.items():
        f[k] = v
    return f


def test_recent_round_trip_and_window():
    r = RecentTrades.from_frame(recent_frame())
    assert r == RecentTrades.from_frame(r.to_frame())
    assert pickle.loads(pickle.dumps(r)) == r and hash(r) == hash(
        RecentTrades.from_frame(recent_frame())
    )
    assert r.within(dt.date(2026, 2, 1), 30) == ({"A"}, {"B"})
    assert r.within(dt.date(2026, 2, 15), 30) == (set(), {"B"})
    buys = RecentTrades.from_frame(recent_frame(side=["buy", "buy"]).drop(columns="gain"))
    assert buys.gain == (None, None)


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (recent_frame(side=["buy", "short"]), ["row 1", "B", "side"]),
        (recent_frame(quantity=[-1.0, 1.0]), ["row 0", "A", "quantity"]),
        (recent_frame(gain=[np.nan, np.nan]), ["row 1", "B", "gain"]),
        (recent_frame(date=["2026-01-01", "yesterday"]), ["row 1", "date", "yesterday"]),
        (recent_frame().drop(columns="side"), ["side"]),
    ],
)
def test_recent_errors_name_the_culprit(frame, words):
    with pytest.raises(InputError) as exc:
        RecentTrades.from_frame(frame)
    for w in words:
        assert w in str(exc.value)


def test_tax_model_defaults_and_content():
    m = TaxModel()
    assert m.zero and m.long_after_days == 365 and m.wash_days == 30 and m.exact_assets == 10
    assert TaxModel(0.3, 0.15) == TaxModel(short_rate=0.3, long_rate=0.15)
    assert pickle.loads(pickle.dumps(TaxModel(0.3, 0.15, loss_rate=0.1))).loss_rate == 0.1
    assert not TaxModel(gains_budget=100.0).zero


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"short_rate": 1.5}, ["short_rate", "[0, 1]"]),
        ({"long_rate": -0.1}, ["long_rate", "[0, 1]"]),
        ({"short_rate": 0.3, "long_rate": 0.15, "loss_rate": 0.2}, ["loss_rate", "long_rate"]),
        ({"short_rate": "0.3"}, ["short_rate"]),
        ({"gains_budget": -5.0}, ["gains_budget", "non-negative"]),
        ({"short_budget": float("nan")}, ["short_budget"]),
        ({"long_after_days": 365.5}, ["long_after_days", "whole number"]),
        ({"wash_days": -1}, ["wash_days"]),
        ({"exact_assets": True}, ["exact_assets"]),
    ],
)
def test_tax_model_errors_name_the_field(kwargs, words):
    with pytest.raises(InputError) as exc:
        TaxModel(**kwargs)
    for w in words:
        assert w in str(exc.value)
