"""The tax-aware orders schema ``trimtab.orders/2`` and :func:`optimizer.trades.read_orders`.

A tax-blind plan writes ``trimtab.orders/1`` byte for byte as before (golden text below); a
plan with ``lot_sales`` (set here with ``dataclasses.replace`` on a real plan) writes /2, whose
JSON and CSV carry each sell's lots and the tax, and reads back through ``read_orders``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date

import pandas as pd
import pytest
from rebalance_cases import COV, HOLDINGS, PRICES, TARGET

from optimizer.costs import CostModel
from optimizer.errors import InputError
from optimizer.rebalance import rebalance
from optimizer.trades import (
    LOT_COLUMNS,
    LOT_FIELDS,
    ORDER_FIELDS,
    ORDERS_SCHEMA,
    ORDERS_SCHEMA_2,
    read_orders,
)

GOLDEN_CSV = (
    "schema,as_of,portfolio_id,asset,side,quantity,notional,price,est_cost\n"
    "trimtab.orders/1,2024-06-28,client-042,US_EQ,sell,58.0,23917.46,412.37,48.91746\n"
    "trimtab.orders/1,2024-06-28,client-042,INTL_EQ,sell,202.0,11697.82,57.91,36.69782\n"
    "trimtab.orders/1,2024-06-28,client-042,BONDS,buy,493.0,35569.950000000004,72.15,"
    "60.569950000000006\n"
)
GOLDEN_JSON = (
    '{"schema": "trimtab.orders/1", "as_of": "2024-06-28", "portfolio_id": "client-042", '
    '"currency": "USD", "value_before": 1089000.0, "value_after": 1089000.0, "cash_flow": 0.0, '
    '"targets": {"US_EQ": 0.4, "INTL_EQ": 0.2, "BONDS": 0.3, "REITS": 0.1}, "orders": '
    '[{"asset": "US_EQ", "side": "sell", "quantity": 58.0, "notional": 23917.46, "price": '
    '412.37, "est_cost": 48.91746}, {"asset": "INTL_EQ", "side": "sell", "quantity": 202.0, '
    '"notional": 11697.82, "price": 57.91, "est_cost": 36.69782}, {"asset": "BONDS", "side": '
    '"buy", "quantity": 493.0, "notional": 35569.950000000004, "price": 72.15, "est_cost": '
    '60.569950000000006}], "totals": {"notional_buy": 35569.950000000004, "notional_sell": '
    '35615.28, "est_cost": 146.18523}, "relaxed": []}'
)


@pytest.fixture(scope="module")
def blind():
    return rebalance(
        HOLDINGS,
        TARGET,
        cov=COV,
        costs=CostModel(bps=10, fixed=25.0),
        prices=PRICES,
        lot_size=1,
        as_of=date(2024, 6, 28),
        portfolio_id="client-042",
        currency="USD",
    )


def lot_sales() -> pd.DataFrame:
    """US_EQ sold from two lots (58 units), INTL_EQ sold without lots."""
    p = float(PRICES["US_EQ"])
    rows = [
        ("US_EQ", "u-2019", 40.0, 200.0, date(2019, 3, 1), "long"),
        ("US_EQ", "u-2024", 18.0, 430.0, date(2024, 2, 1), "short"),
    ]
    frame = pd.DataFrame(rows, columns=["asset", "lot_id", "quantity", "basis", "acquired", "term"])
    frame["acquired"] = pd.to_datetime(frame["acquired"])
    frame["proceeds"] = frame["quantity"] * p
    frame["gain"] = frame["quantity"] * (p - frame["basis"])
    frame["wash"] = False
    return frame


@pytest.fixture(scope="module")
def taxed(blind):
    sales = lot_sales()
    short = float(sales.loc[sales["term"] == "short", "gain"].sum())
    long = float(sales.loc[sales["term"] == "long", "gain"].sum())
    tax = {
        "short_gains": short,
        "long_gains": long,
        "net_gains": short + long,
        "tax": 0.15 * long + 0.35 * short,
        "method": "relaxation",
        "blocked": (),
    }
    return replace(blind, lot_sales=sales, tax=tax)


def test_tax_blind_orders_are_v1_byte_for_byte(blind) -> None:
    assert blind.schema == ORDERS_SCHEMA
    assert json.dumps(blind.to_orders()) == GOLDEN_JSON
    assert blind.orders_csv() == GOLDEN_CSV
    assert "tax" not in blind.to_dict() and "lot_sales" not in blind.to_dict()


def test_v2_json_has_lots_on_sells_and_the_tax(taxed) -> None:
    doc = taxed.to_orders()
    assert doc["schema"] == ORDERS_SCHEMA_2 == taxed.schema == "trimtab.orders/2"
    assert json.loads(json.dumps(doc)) == doc
    by = {o["asset"]: o for o in doc["orders"]}
    assert [lot["lot_id"] for lot in by["US_EQ"]["lots"]] == ["u-2019", "u-2024"]
    first = by["US_EQ"]["lots"][0]
    assert set(first) == set(LOT_FIELDS)
    assert first["acquired"] == "2019-03-01" and first["term"] == "long"
    assert first["quantity"] == 40.0 and first["basis"] == 200.0
    assert first["gain"] == pytest.approx(40 * (412.37 - 200))
    assert sum(lot["quantity"] for lot in by["US_EQ"]["lots"]) == by["US_EQ"]["quantity"]
    assert by["INTL_EQ"]["lots"] == []  # a sell without lots
    assert "lots" not in by["BONDS"]  # buys carry no lots
    tax = doc["tax"]
    assert set(tax) == {"short_gains", "long_gains", "net_gains", "estimated_tax"}
    assert tax["net_gains"] == pytest.approx(tax["short_gains"] + tax["long_gains"])
    assert tax["estimated_tax"] == pytest.approx(taxed.tax["tax"])
    d = taxed.to_dict()
    json.dumps(d)
    assert d["orders"]["schema"] == ORDERS_SCHEMA_2 and len(d["lot_sales"]) == 2


def test_v2_csv_one_row_per_lot(taxed) -> None:
    rows = list(csv.DictReader(io.StringIO(taxed.orders_csv())))
    assert list(rows[0]) == ["schema", "as_of", "portfolio_id", *ORDER_FIELDS, *LOT_COLUMNS]
    assert [(r["asset"], r["lot_id"]) for r in rows] == [
        ("US_EQ", "u-2019"),
        ("US_EQ", "u-2024"),
        ("INTL_EQ", ""),
        ("BONDS", ""),
    ]
    assert all(r["schema"] == ORDERS_SCHEMA_2 for r in rows)
    assert rows[0]["lot_quantity"] == "40.0" and rows[0]["acquired"] == "2019-03-01"
    assert rows[1]["term"] == "short" and float(rows[1]["gain"]) == pytest.approx(18 * -17.63)
    assert rows[0]["quantity"] == rows[1]["quantity"] == "58.0"  # the order's own, repeated


@pytest.mark.parametrize("form", ["dict", "text", "path"])
def test_read_orders_round_trip_v1_and_v2(blind, taxed, form, tmp_path) -> None:
    for plan in (blind, taxed):
        doc = json.loads(json.dumps(plan.to_orders()))
        if form == "dict":
            source = doc
        elif form == "text":
            source = json.dumps(doc)
        else:
            source = tmp_path / "orders.json"
            source.write_text(json.dumps(doc), encoding="utf-8")
        assert read_orders(source) == doc


def test_read_orders_names_an_unknown_schema(blind) -> None:
    doc = {**blind.to_orders(), "schema": "trimtab.orders/9"}
    with pytest.raises(InputError, match=r"unknown orders schema 'trimtab.orders/9'"):
        read_orders(doc)
    with pytest.raises(InputError, match=r"unknown orders schema None"):
        read_orders("{}")


def test_read_orders_errors_name_the_culprit(taxed, tmp_path) -> None:
    doc = json.loads(json.dumps(taxed.to_orders()))
    del doc["orders"][0]["lots"][1]["basis"]
    with pytest.raises(InputError, match=r"orders\[0\]\.lots\[1\] \(asset 'US_EQ'\).*'basis'"):
        read_orders(doc)
    doc = json.loads(json.dumps(taxed.to_orders()))
    del doc["orders"][1]["lots"]
    with pytest.raises(InputError, match=r"orders\[1\] \(sell 'INTL_EQ'\): 'lots' missing"):
        read_orders(doc)
    doc = json.loads(json.dumps(taxed.to_orders()))
    del doc["tax"]
    with pytest.raises(InputError, match=r"'tax' missing"):
        read_orders(doc)
    with pytest.raises(InputError, match=r"missing field 'side'"):
        read_orders({"schema": ORDERS_SCHEMA, "orders": [{"asset": "A"}]})
    with pytest.raises(InputError, match=r"nope\.json: cannot read the orders file"):
        read_orders(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.json: not JSON"):
        read_orders(bad)
    with pytest.raises(InputError, match=r"takes a path, JSON text or a dict, got int"):
        read_orders(3)
