"""The batch on a real Dask LocalCluster (2 worker processes on 127.0.0.1).

Results equal the serial in-process run account by account; a worker killed
mid-batch loses and doubles nothing; poisoned accounts fail alone.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pandas as pd

from scenarios.batch import run_batch
from scenarios.batch.outputs import FILES


def test_cluster_equals_serial_run_account_by_account(book, cluster, tmp_path, check):
    out = tmp_path / "out"
    res = run_batch(
        book["scenario"],
        book["accounts"],
        out=out,
        scheduler=cluster.scheduler_address,
        partition_size=25,
    )
    assert sorted(os.listdir(out)) == sorted(FILES)
    assert res.summary["accounts"]["ok"] == res.summary["accounts"]["total"]
    assert res.summary["workers"] == 2
    orders = pd.read_parquet(out / "orders.parquet")
    check.assert_orders_match(orders, check.serial_orders(book["scenario"], book["frame"]))
    # the CSV holds the same rows, and the pooled orders are the sums of the accounts' orders
    csv = pd.read_csv(out / "orders.csv")
    assert len(csv) == len(orders) and list(csv.columns) == list(orders.columns)
    pooled = pd.read_csv(out / "pooled.csv", index_col="asset")
    buys = orders[orders["side"] == "buy"].groupby("asset")["notional"].sum()
    sells = orders[orders["side"] == "sell"].groupby("asset")["notional"].sum()
    net = buys.reindex(pooled.index, fill_value=0) - sells.reindex(pooled.index, fill_value=0)
    pd.testing.assert_series_equal(
        pooled["net_notional"], net, check_names=False, rtol=1e-9, atol=1e-6
    )


def test_worker_killed_mid_batch_every_account_exactly_once(book, cluster, tmp_path, check):
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)
    killed = []

    def kill_one(done: int, failed: int) -> None:
        if not killed and done >= 10:  # the first partition is back; the others are in flight
            victim = sorted(pids.values())[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    out = tmp_path / "out"
    res = run_batch(
        book["scenario"],
        book["accounts"],
        out=out,
        scheduler=cluster.scheduler_address,
        partition_size=10,
        progress=kill_one,
    )
    assert killed
    status = pd.read_parquet(out / "status.parquet")
    accounts = list(dict.fromkeys(book["frame"]["account"]))
    assert list(status["account"]) == accounts  # every account once, in file order
    assert (status["status"] == "ok").all(), status[status["status"] != "ok"]
    assert res.failed == 0
    orders = pd.read_parquet(out / "orders.parquet")
    assert not orders.duplicated(["account", "asset"]).any()
    check.assert_orders_match(orders, check.serial_orders(book["scenario"], book["frame"]))


def test_poisoned_accounts_fail_alone_with_the_culprit_named(book, cluster, tmp_path, check):
    frame, bad = check.poisoned(book["frame"])
    path = tmp_path / "poisoned.csv"
    frame.to_csv(path, index=False)
    res = run_batch(book["scenario"], path, scheduler=cluster.scheduler_address, partition_size=8)
    status = res.status.set_index("account")
    culprits = {
        "unknown asset": ("failed", "'ZZ99'"),
        "negative quantity": ("failed", "EQ04"),
        "infeasible restriction": ("infeasible", "no-buy restriction"),
        "infeasible withdrawal": ("infeasible", "withdrawal of 5,000.00"),
    }
    for account, what in bad.items():
        state, named = culprits[what]
        assert status.loc[account, "status"] == state, (what, status.loc[account, "reason"])
        assert named in status.loc[account, "reason"], (what, status.loc[account, "reason"])
    assert (status.drop(index=list(bad))["status"] == "ok").all()
    assert res.failed == len(bad)
    # every other account's orders are the clean run's
    clean = book["frame"][~book["frame"]["account"].isin(bad)]
    check.assert_orders_match(res.orders, check.serial_orders(book["scenario"], clean))


def test_pooled_limits_on_the_cluster_equal_in_process_and_hold(pooled_book, cluster, tmp_path):
    from scenarios.batch import IN_PROCESS

    here = run_batch(
        pooled_book["scenario"], pooled_book["accounts"], scheduler=IN_PROCESS, partition_size=3
    )
    out = tmp_path / "out"
    there = run_batch(
        pooled_book["scenario"],
        pooled_book["accounts"],
        out=out,
        scheduler=cluster.scheduler_address,
        partition_size=3,
    )
    assert sorted(os.listdir(out)) == sorted([*FILES, "shares.csv"])
    orders = pd.read_parquet(out / "orders.parquet")
    pd.testing.assert_frame_equal(orders, here.orders, check_dtype=False, atol=1e-9)
    pooled = pd.read_csv(out / "pooled.csv", index_col="asset")
    cap = pooled_book["cap"]
    assert (pooled["gross_notional"] <= cap * (1 + 1e-6)).all()
    assert (pooled["gross_notional"] > cap * (1 - 1e-4)).any()  # the cap binds somewhere
    shares = pd.read_csv(out / "shares.csv").groupby("asset")["impact_share"].sum()
    np.testing.assert_allclose(shares.reindex(pooled.index, fill_value=0), pooled["impact_cost"])
    assert there.summary["pooled"]["method"] == "dual"
    assert there.summary["accounts"]["ok"] == 6
