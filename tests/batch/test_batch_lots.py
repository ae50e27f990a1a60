"""A taxable batch: ``trimtab batch --lots`` / ``run_batch(lots=...)``.

The lots file (account, asset, lot_id, quantity, basis, acquired) is read along with the
accounts' partitions; accounts with lots are planned tax-aware under the scenario's ``[tax]``
(orders ``trimtab.orders/2`` with one row per lot of a sell, the tax on the status row), the
others tax-blind. A bad lot fails its account alone, named; lots out of the accounts' order
or of an unknown account stop the batch, named. The LocalCluster run equals the in-process
one account by account, and each account equals its own ``Rebalancer.plan`` with its lots.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_cases import call

from optimizer.errors import InputError
from optimizer.rebalance import Rebalancer
from optimizer.trades import LOT_COLUMNS, ORDERS_SCHEMA, ORDERS_SCHEMA_2
from scenarios.batch import run_batch
from scenarios.batch.accounts import LotStream
from scenarios.batch.example import accounts_frame, lots_frame, taxable_text
from scenarios.schema import load_scenario

N = 30
SEED = 11


@pytest.fixture(scope="module")
def taxable(tmp_path_factory) -> dict:
    """A taxable book: scenario with [tax], accounts (Parquet), lots (CSV) less one account's."""
    folder = tmp_path_factory.mktemp("taxable_book")
    scenario = folder / "book.toml"
    scenario.write_text(taxable_text(SEED), encoding="utf-8")
    frame = accounts_frame(N, SEED)
    frame["restricted"] = None
    frame["untradeable"] = None
    accounts = folder / "accounts.parquet"
    frame.to_parquet(accounts, index=False)
    lots = lots_frame(frame, SEED)
    ids = list(dict.fromkeys(lots["account"]))
    without = ids[4]  # holds funds but has no lots: planned tax-blind
    lots = lots[lots["account"] != without].reset_index(drop=True)
    path = folder / "lots.csv"
    lots.to_csv(path, index=False)
    return {
        "folder": folder,
        "scenario": scenario,
        "accounts": accounts,
        "frame": frame,
        "lots": lots,
        "lots_path": path,
        "without": without,
    }


@pytest.fixture(scope="module")
def in_process(taxable):
    return run_batch(
        taxable["scenario"],
        taxable["accounts"],
        scheduler="in-process",
        partition_size=7,
        lots=taxable["lots_path"],
    )


def test_taxable_accounts_get_lot_rows_and_tax(taxable, in_process) -> None:
    res = in_process
    assert res.summary["accounts"]["failed"] == 0 and res.summary["accounts"]["infeasible"] == 0
    assert res.summary["lots"] == len(taxable["lots"])
    orders, status = res.orders, res.status
    assert set(LOT_COLUMNS) <= set(orders.columns)
    taxed = set(taxable["lots"]["account"])
    for account, rows in orders.groupby("account", sort=False):
        want = ORDERS_SCHEMA_2 if account in taxed else ORDERS_SCHEMA
        assert set(rows["schema"]) == {want}, account
    assert set(orders.loc[orders["account"] == taxable["without"], "lot_id"].dropna()) == set()
    sells = orders[(orders["side"] == "sell") & orders["lot_id"].notna()]
    assert len(sells) > 0
    per_order = sells.groupby(["account", "asset"]).agg(
        lots=("lot_quantity", "sum"), quantity=("quantity", "first")
    )
    np.testing.assert_allclose(per_order["lots"], per_order["quantity"], rtol=1e-6)
    known = taxable["lots"].set_index(["account", "asset", "lot_id"])
    for key in zip(sells["account"], sells["asset"], sells["lot_id"], strict=True):
        assert key in known.index
    ok = status.set_index("account")
    assert np.isnan(ok.loc[taxable["without"], "estimated_tax"])
    taxed_rows = ok.loc[sorted(taxed & set(ok.index))]
    assert taxed_rows["estimated_tax"].notna().all()
    np.testing.assert_allclose(
        taxed_rows["net_gains"], taxed_rows["short_gains"] + taxed_rows["long_gains"], atol=1e-6
    )
    # the pooled sums count each order once, whatever its lots
    buys = orders.drop_duplicates(["account", "asset"])
    assert res.pooled["sell_notional"].sum() == pytest.approx(
        buys.loc[buys["side"] == "sell", "notional"].sum()
    )


def test_one_account_equals_its_own_plan(taxable, in_process) -> None:
    scn = load_scenario(taxable["scenario"])
    cov = scn.estimates.cov()
    account = sorted(set(taxable["lots"]["account"]))[0]
    rows = taxable["frame"][taxable["frame"]["account"] == account]
    rb = Rebalancer(cov, costs=scn.costs, universe=scn.universe, holdings_as="quantity")
    plan = rb.plan(
        pd.Series(rows["quantity"].to_numpy(), index=rows["asset"].to_numpy()).reindex(
            cov.index, fill_value=0.0
        ),
        scn.batch.models[rows["model"].iloc[0]].reindex(cov.index),
        prices=scn.batch.prices.reindex(cov.index),
        cash_flow=float(rows["cash_flow"].iloc[0]),
        as_of=scn.portfolio.as_of,
        lots=taxable["lots"][taxable["lots"]["account"] == account].drop(columns="account"),
        **scn.tax.plan_kwargs(),
    )
    got = in_process.orders[in_process.orders["account"] == account].drop_duplicates("asset")
    got = got.set_index("asset").loc[plan.trades.index]
    np.testing.assert_allclose(got["notional"], plan.trades["notional"], rtol=1e-9, atol=1e-9)
    status = in_process.status.set_index("account").loc[account]
    assert status["estimated_tax"] == pytest.approx(plan.tax["tax"], abs=1e-9)


def test_cluster_equals_in_process(taxable, in_process, cluster, tmp_path) -> None:
    out = tmp_path / "out"
    res = run_batch(
        taxable["scenario"],
        taxable["accounts"],
        out=out,
        scheduler=cluster.scheduler_address,
        partition_size=7,
        lots=taxable["lots_path"],
    )
    assert res.summary["accounts"]["ok"] == N
    orders = pd.read_parquet(out / "orders.parquet")
    ref = in_process.orders
    key = ["account", "asset", "lot_id"]
    a = orders.sort_values(key, na_position="first").reset_index(drop=True)
    b = ref.sort_values(key, na_position="first").reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert (
        a[["account", "asset", "side", "schema", "lot_id"]]
        .fillna("")
        .equals(b[["account", "asset", "side", "schema", "lot_id"]].fillna(""))
    )
    for col in ("notional", "quantity", "lot_quantity", "gain"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-9, atol=1e-9)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["lots_sha256"] and manifest["lots_file"].endswith("lots.csv")
    header = (out / "orders.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.replace('"', "").endswith(",lot_id,lot_quantity,basis,acquired,term,gain")


def test_a_bad_lot_fails_its_account_alone(taxable, tmp_path) -> None:
    lots = taxable["lots"].copy()
    lots["basis"] = lots["basis"].astype(object)
    victim = lots["account"].iloc[0]
    row = int(lots.index[lots["account"] == victim][1])
    lots.loc[row, "basis"] = "n/a"
    other = lots["account"].iloc[-1]
    lots.loc[lots.index[lots["account"] == other][0], "asset"] = "ZZ99"
    path = tmp_path / "lots.csv"
    lots.to_csv(path, index=False)
    res = run_batch(taxable["scenario"], taxable["accounts"], scheduler="in-process", lots=path)
    status = res.status.set_index("account")
    assert (status["status"] == "failed").sum() == 2
    reason = status.loc[victim, "reason"]
    lot = lots.loc[row, "lot_id"]
    assert f"lots file row {row + 2}: lot {lot!r}" in reason and "column 'basis'" in reason
    assert "unknown asset 'ZZ99'" in status.loc[other, "reason"]


def test_lots_out_of_order_or_unknown_stop_the_batch(taxable, tmp_path) -> None:
    lots = taxable["lots"]
    ids = list(dict.fromkeys(lots["account"]))
    last = lots[lots["account"] == ids[-1]]
    swapped = pd.concat([last, lots[lots["account"] != ids[-1]]])
    path = tmp_path / "lots.csv"
    swapped.to_csv(path, index=False)
    # every partition before the last finds another account's lots first; the last takes
    # its own, and the first lot left over is named (its account came earlier)
    first = rf"lots\.csv: row {len(last) + 2}: account '{ids[0]}': lots of an account"
    with pytest.raises(InputError, match=first):
        run_batch(
            taxable["scenario"],
            taxable["accounts"],
            scheduler="in-process",
            lots=path,
            partition_size=5,
        )
    stray = pd.concat([lots, lots.iloc[:1].assign(account="NOBODY")])
    stray.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"account 'NOBODY': lots of an account that is not"):
        run_batch(taxable["scenario"], taxable["accounts"], scheduler="in-process", lots=path)


def test_lots_file_columns_and_kind(taxable, tmp_path) -> None:
    bad = tmp_path / "lots.csv"
    taxable["lots"].rename(columns={"basis": "cost"}).to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"lots\.csv: unknown column 'cost'"):
        run_batch(taxable["scenario"], taxable["accounts"], scheduler="in-process", lots=bad)
    taxable["lots"].drop(columns="acquired").to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"lots\.csv: missing column 'acquired'"):
        run_batch(taxable["scenario"], taxable["accounts"], scheduler="in-process", lots=bad)
    txt = tmp_path / "lots.txt"
    txt.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=r"lots\.txt: unknown lots file type"):
        list(LotStream(txt).take({"A"}))
    with pytest.raises(InputError, match=r"nope\.csv: no such lots file"):
        run_batch(taxable["scenario"], taxable["accounts"], lots=tmp_path / "nope.csv")


def test_lots_refused_with_a_pooled_rebalance(taxable, tmp_path) -> None:
    text = taxable["scenario"].read_text(encoding="utf-8")
    pooled = tmp_path / "pooled.toml"
    pooled.write_text(text + "\n[batch.pooled]\ncap = { EQ01 = 1e9 }\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"batch\.pooled: a pooled rebalance does not take"):
        run_batch(pooled, taxable["accounts"], scheduler="in-process", lots=taxable["lots_path"])


def test_cli_batch_with_lots(taxable, tmp_path) -> None:
    out = tmp_path / "cli"
    code, stdout, err = call(
        [
            "batch",
            str(taxable["scenario"]),
            "--accounts",
            str(taxable["accounts"]),
            "--lots",
            str(taxable["lots_path"]),
            "--out",
            str(out),
            "--scheduler",
            "in-process",
            "--json",
        ]
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["lots"] == len(taxable["lots"])
    assert summary["tax"]["accounts_with_lots"] == taxable["lots"]["account"].nunique()
    status = pd.read_csv(out / "status.csv")
    assert summary["tax"]["estimated_tax"] == pytest.approx(status["estimated_tax"].sum())
    status = pd.read_csv(out / "status.csv")
    assert {"short_gains", "long_gains", "net_gains", "estimated_tax"} <= set(status.columns)
    assert Path(out / "orders.parquet").exists()
