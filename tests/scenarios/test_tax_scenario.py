"""Tax lots, recent trades and ``[tax]`` in scenario files, and a taxable run end to end.

Every error names the file and the key path (``holdings.lots[1].basis``) or, for a CSV, the
file, row and column. The shipped ``taxable_account`` example runs through ``trimtab run``
and ``trimtab rebalance`` with ``trimtab.orders/2`` orders (read back by ``read_orders``),
``lot_sales.csv``, the ``tax`` block of report.json and the summary line; a scenario with lots
and no ``[tax]`` plans the tax-blind trades.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from cli_cases import call, example, read_json

from optimizer.errors import InputError
from optimizer.rebalance.taxlots import RecentTrades, TaxLots, TaxModel
from optimizer.trades import ORDERS_SCHEMA, ORDERS_SCHEMA_2, read_orders
from scenarios.cli import _data_files
from scenarios.schema import load_scenario

FILES = 'lots_file = "taxable_account_lots.csv"\nrecent_file = "taxable_account_recent.csv"\n'
INLINE_LOTS = """lots = [
  { asset = "US_EQ", lot_id = "u-2015", quantity = 1200, basis = 110.0, acquired = 2015-04-01 },
  { asset = "US_EQ", lot_id = "u-2021", quantity = 500, basis = 230.0, acquired = "2021-11-15" },
  { asset = "US_EQ", lot_id = "u-2024", quantity = 300, basis = 262.0, acquired = 2024-06-03 },
  { asset = "INTL_EQ", lot_id = "i-2018", quantity = 2000, basis = 42.0, acquired = 2018-09-14 },
  { asset = "INTL_EQ", lot_id = "i-2022", quantity = 1600, basis = 64.0, acquired = 2022-01-10 },
  { asset = "BONDS", lot_id = "b-2020", quantity = 2400, basis = 104.0, acquired = 2020-08-03 },
  { asset = "REITS", lot_id = "r-2019", quantity = 800, basis = 70.0, acquired = 2019-02-20 },
  { asset = "REITS", lot_id = "r-2023", quantity = 300, basis = 81.0, acquired = 2023-10-02 },
]
recent = [
  { asset = "US_EQ", date = 2024-06-03, side = "buy", quantity = 300 },
  { asset = "REITS", date = 2024-06-12, side = "sell", quantity = 200, gain = -1500.0 },
]
"""


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    return example("taxable_account", tmp_path_factory.mktemp("taxable"))


def variant(shipped: Path, name: str, old: str, new: str) -> Path:
    text = shipped.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = shipped.with_name(name)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def inline(shipped: Path, name: str = "inline.toml", lots: str = INLINE_LOTS) -> Path:
    return variant(shipped, name, FILES, lots)


def fails(path: Path, pattern: str) -> str:
    with pytest.raises(InputError, match=pattern) as info:
        load_scenario(path)
    assert str(info.value).startswith(str(path)), str(info.value)
    return str(info.value)


# ----------------------------------------------------------------------------- loading


def test_lots_inline_equal_the_csv(shipped) -> None:
    from_files = load_scenario(shipped)
    from_inline = load_scenario(inline(shipped))
    assert isinstance(from_files.holdings.lots, TaxLots)
    assert isinstance(from_files.holdings.recent, RecentTrades)
    assert from_inline.holdings.lots == from_files.holdings.lots
    assert from_inline.holdings.recent == from_files.holdings.recent
    assert from_files.taxable and from_files.tax.harvest
    assert from_files.tax.tax_model() == TaxModel(
        short_rate=0.37, long_rate=0.20, loss_rate=0.20, long_after_days=365, wash_days=30
    )
    assert dict(from_files.tax.substitutes) == {
        "INTL_EQ": ("INTL_EQ_ALT",),
        "US_EQ": ("US_EQ_ALT",),
    }
    assert _data_files(shipped.read_text(encoding="utf-8")) == [
        "taxable_account_lots.csv",
        "taxable_account_recent.csv",
    ]


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ("basis = 230.0", "basis = -230.0", r"holdings\.lots\[1\]\.basis: must be >= 0"),
        (
            'acquired = "2021-11-15"',
            'acquired = "15/11/2021"',
            r"lots\[1\]\.acquired: expected a date",
        ),
        (
            'asset = "BONDS", lot_id',
            'asset = "BOND", lot_id',
            r"lots\[5\]\.asset: unknown asset 'BOND'",
        ),
        ("quantity = 500, ", "", r"holdings\.lots\[1\]\.quantity: missing \(required\)"),
        ("quantity = 500,", "quantity = 0,", r"holdings\.lots\[1\]\.quantity: must be > 0"),
        ('lot_id = "u-2021"', 'lot_id = "u-2015"', r"lots\[1\]\.lot_id: duplicate lot_id 'u-2015'"),
        (
            "basis = 110.0,",
            "basis = 110.0, colour = 1,",
            r"holdings\.lots\[0\]\.colour: unknown key",
        ),
        (
            "quantity = 1200,",
            "quantity = 1000,",
            r"holdings\.lots: asset 'US_EQ': the lots hold 1,800",
        ),
        (", gain = -1500.0", "", r"holdings\.recent\[1\]\.gain: missing for the sell of 'REITS'"),
        ('side = "buy"', 'side = "hold"', r"holdings\.recent\[0\]\.side: expected 'buy' or 'sell'"),
    ],
)
def test_inline_errors_name_the_key_path(shipped, old, new, pattern) -> None:
    fails(variant(inline(shipped), "bad.toml", old, new), pattern)


def test_lots_csv_errors_name_file_row_and_column(shipped) -> None:
    folder = shipped.parent
    lots = (folder / "taxable_account_lots.csv").read_text(encoding="utf-8")
    (folder / "bad_lots.csv").write_text(lots.replace("230.00", "abc"), encoding="utf-8")
    path = variant(shipped, "bad.toml", '= "taxable_account_lots.csv"', '= "bad_lots.csv"')
    fails(path, r"holdings\.lots_file: bad_lots\.csv: row 3, column 'basis': expected a number")
    (folder / "bad_lots.csv").write_text(lots.replace("basis", "bassis"), encoding="utf-8")
    fails(path, r"bad_lots\.csv: unknown column 'bassis' \(did you mean 'basis'\?\)")
    (folder / "bad_lots.csv").unlink()
    fails(path, r"holdings\.lots_file: file not found: 'bad_lots\.csv'")


def test_lots_need_prices_and_one_source(shipped) -> None:
    both = variant(shipped, "both.toml", FILES, FILES + INLINE_LOTS.split("recent =")[0])
    fails(both, r"holdings\.lots_file: give lots \(inline\) or lots_file \(a CSV file\), not both")
    unpriced = variant(shipped, "unpriced.toml", ", REITS = 85.0 }", " }")
    fails(unpriced, r"holdings\.prices: missing for REITS")


def test_held_asset_without_lots_warns(shipped) -> None:
    lots = INLINE_LOTS.replace(
        '  { asset = "BONDS", lot_id = "b-2020", quantity = 2400, basis = 104.0, '
        "acquired = 2020-08-03 },\n",
        "",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scn = load_scenario(inline(shipped, "bare.toml", lots))
    assert "BONDS" not in scn.holdings.lots.assets
    assert any("no lots for BONDS (held)" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ("short_rate = 0.37", "short_rate = 37", r"tax\.short_rate: must be >= 0 and <= 1"),
        ("loss_rate = 0.20", "loss_rate = 0.30", r": tax: TaxModel: loss_rate 0\.3 is above"),
        ("wash_days = 30", "wash_days = 30.5", r"tax\.wash_days: expected an integer >= 0"),
        ("harvest = true\n", 'harvest = "yes"\n', r"tax\.harvest: expected true or false"),
        ('["INTL_EQ_ALT"]', '["INTL_ALT"]', r"tax\.substitutes\.INTL_EQ\[0\]: unknown asset"),
        ('["US_EQ_ALT"]', '["US_EQ"]', r"substitutes\.US_EQ\[0\]: 'US_EQ' cannot substitute"),
        ("wash_days = 30", "wash_day = 30", r"tax\.wash_day: unknown key \(did you mean"),
        ("long_rate = 0.20", "long_rate = 0.20\ngains_budget = -1", r"tax\.gains_budget: must be"),
    ],
)
def test_tax_section_errors_name_the_key(shipped, old, new, pattern) -> None:
    fails(variant(shipped, "bad.toml", old, new), pattern)


def test_tax_and_recent_need_lots(shipped) -> None:
    no_lots = variant(shipped, "nolots.toml", FILES, "")
    fails(no_lots, r": tax: needs tax lots: give holdings\.lots")
    recent_only = variant(shipped, "recent.toml", 'lots_file = "taxable_account_lots.csv"\n', "")
    fails(recent_only, r"holdings\.recent_file: needs tax lots")


# ----------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def taxable_run(shipped):
    out = shipped.parent / "out"
    code, stdout, err = call(["run", str(shipped), "--out", str(out)])
    assert code == 0, err
    return out, stdout


def test_taxable_run_writes_orders_v2_and_lot_sales(taxable_run) -> None:
    out, stdout = taxable_run
    orders = read_orders(out / "orders.json")
    assert orders["schema"] == ORDERS_SCHEMA_2
    assert orders == read_json(out / "orders.json")
    sales = pd.read_csv(out / "lot_sales.csv")
    sells = {o["asset"]: o for o in orders["orders"] if o["side"] == "sell"}
    lots = [(a, lot["lot_id"]) for a, o in sells.items() for lot in o["lots"]]
    assert sorted(lots) == sorted(zip(sales["asset"], sales["lot_id"], strict=True))
    for o in sells.values():
        assert sum(lot["quantity"] for lot in o["lots"]) == pytest.approx(o["quantity"], rel=1e-6)
    rows = list(csv.DictReader(io.StringIO((out / "orders.csv").read_text(encoding="utf-8"))))
    assert {r["schema"] for r in rows} == {ORDERS_SCHEMA_2}
    assert {"lot_id", "lot_quantity", "basis", "acquired", "term", "gain"} <= set(rows[0])
    report = read_json(out / "report.json")
    tax = report["tax"]
    assert tax["estimated_tax"] == pytest.approx(orders["tax"]["estimated_tax"])
    assert tax["net_gains"] == pytest.approx(tax["short_gains"] + tax["long_gains"])
    assert tax["tracking_error_removed"] == pytest.approx(
        report["rebalance"]["tracking_error_before"] - report["rebalance"]["tracking_error_after"]
    )
    assert tax["blocked"] == ["REITS"]  # sold at a loss on 2024-06-12: no buy back
    assert "REITS" not in {o["asset"] for o in orders["orders"] if o["side"] == "buy"}
    assert tax["wash_sales"] == int(sales["wash"].sum()) >= 1  # lot u-2024 (bought 06-03)
    assert all(len(r["acquired"]) == 10 for r in report["rebalance"]["lot_sales"])
    assert "against tracking error removed" in stdout and "lots sold" in stdout
    assert any("wash sale" in w["message"] for w in report["warnings"])


def test_rebalance_json_prints_orders_v2(shipped) -> None:
    code, stdout, err = call(["rebalance", str(shipped), "--json"])
    assert code == 0, err
    assert read_orders(stdout)["schema"] == ORDERS_SCHEMA_2


def test_lots_without_tax_plan_the_tax_blind_trades(shipped) -> None:
    """All rates 0 (no [tax]): the trades of the same scenario without lots, orders /2."""
    text = shipped.read_text(encoding="utf-8")
    plain = text[: text.index("[tax]")].replace(FILES, "")
    untaxed = text[: text.index("[tax]")].replace(
        'recent_file = "taxable_account_recent.csv"\n', ""
    )
    a, b = shipped.with_name("plain.toml"), shipped.with_name("untaxed.toml")
    a.write_text(plain, encoding="utf-8")
    b.write_text(untaxed, encoding="utf-8")
    code, out_a, err = call(["rebalance", str(a), "--json"])
    assert code == 0, err
    code, out_b, err = call(["rebalance", str(b), "--json"])
    assert code == 0, err
    blind, taxed = json.loads(out_a), json.loads(out_b)
    assert blind["schema"] == ORDERS_SCHEMA and taxed["schema"] == ORDERS_SCHEMA_2
    signed = {
        doc["schema"]: {
            o["asset"]: (1 if o["side"] == "buy" else -1) * o["notional"] for o in doc["orders"]
        }
        for doc in (blind, taxed)
    }
    assert signed[ORDERS_SCHEMA].keys() == signed[ORDERS_SCHEMA_2].keys()
    for asset, v in signed[ORDERS_SCHEMA].items():
        assert signed[ORDERS_SCHEMA_2][asset] == pytest.approx(v, rel=1e-3, abs=10.0)
    assert taxed["tax"]["estimated_tax"] == pytest.approx(0.0, abs=1e-6)


def test_whole_lots_keep_the_wash_sale_block_and_the_directions(shipped) -> None:
    """Rounding to whole shares never buys a blocked asset nor reverses a direction."""
    text = shipped.read_text(encoding="utf-8") + "\n[rebalance]\nlot_size = 1\n"
    path = shipped.with_name("whole.toml")
    path.write_text(text, encoding="utf-8")
    code, out, err = call(["rebalance", str(path), "--json"])
    assert code == 0, err
    doc = read_orders(out)
    sides = {o["asset"]: o["side"] for o in doc["orders"]}
    assert "REITS" not in sides  # sold at a loss in the window: not bought
    assert all(float(o["quantity"]).is_integer() for o in doc["orders"])
    sold = {o["asset"] for o in doc["orders"] if o["side"] == "sell"}
    assert sold and all(o["lots"] for o in doc["orders"] if o["side"] == "sell")
