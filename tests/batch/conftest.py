"""Fixtures of the batch tests: a small adviser book, and one Dask LocalCluster for the module.

The cluster has 2 worker processes bound to 127.0.0.1 (no dashboard); it is
started once per test module that asks for it and closed at the end.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.batch.example import ASSETS, accounts_frame, scenario_text
from scenarios.schema import load_scenario

#: The accounts of the small book (the example's generator, another seed).
N_ACCOUNTS = 160
SEED = 7


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> dict:
    """A scenario and a clean accounts file (no restrictions): paths and the frame."""
    folder = tmp_path_factory.mktemp("book")
    scenario = folder / "book.toml"
    scenario.write_text(scenario_text(SEED), encoding="utf-8")
    frame = accounts_frame(N_ACCOUNTS, SEED)
    frame["restricted"] = None
    accounts = folder / "accounts.parquet"
    frame.to_parquet(accounts, index=False)
    return {"folder": folder, "scenario": scenario, "accounts": accounts, "frame": frame}


def poisoned(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """``frame`` with four accounts poisoned; returns it and account -> what is wrong."""
    f = frame.copy()
    ids = list(dict.fromkeys(f["account"]))
    bad = {
        ids[3]: "unknown asset",
        ids[10]: "negative quantity",
        ids[17]: "infeasible restriction",
        ids[25]: "infeasible withdrawal",
    }
    a = f["account"]
    f.loc[(a == ids[3]) & (f["asset"] == "EQ03"), "asset"] = "ZZ99"
    f.loc[(a == ids[10]) & (f["asset"] == "EQ04"), "quantity"] = -5.0
    f.loc[a == ids[17], "restricted"] = ";".join(ASSETS)
    f.loc[a == ids[17], "cash_flow"] = 10_000.0
    f.loc[a == ids[25], "untradeable"] = ";".join(ASSETS)
    f.loc[a == ids[25], "cash_flow"] = -5_000.0
    return f, bad


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes on 127.0.0.1, for the whole module."""
    distributed = pytest.importorskip("distributed")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with warnings.catch_warnings():  # a busy default HTTP port: Dask takes another
        warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
        lc = distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        )
    with lc:
        yield lc


def serial_orders(scenario: Path, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The reference: ``Rebalancer.plan`` per account in this process, trades by account.

    One :class:`Rebalancer` per set of untradeable assets, built directly from
    the scenario's parts (not through the batch code).
    """
    from optimizer.rebalance import Rebalancer

    scn = load_scenario(scenario)
    cov = scn.estimates.cov()
    prices = scn.batch.prices.reindex(cov.index)
    made: dict[tuple, Rebalancer] = {}
    out = {}
    for account, rows in frame.groupby("account", sort=False):
        first = rows.iloc[0]
        text = first["untradeable"]
        frozen = tuple(sorted(text.split(";"))) if isinstance(text, str) and text else ()
        if frozen not in made:
            made[frozen] = Rebalancer(
                cov,
                costs=scn.costs,
                constraints=list(scn.constraints),
                universe=scn.universe,
                untradeable=frozen,
                holdings_as="quantity",
            )
        held = rows[rows["asset"].notna()]
        holdings = pd.Series(held["quantity"].to_numpy(), index=held["asset"].to_numpy())
        plan = made[frozen].plan(
            holdings.reindex(cov.index, fill_value=0.0),
            scn.batch.models[first["model"]].reindex(cov.index),
            prices=prices,
            cash_flow=float(first["cash_flow"]),
        )
        out[account] = plan.trades
    return out


def assert_orders_match(orders: pd.DataFrame, reference: dict[str, pd.DataFrame]) -> None:
    """Every account's orders equal the reference's trades (quantities and notionals to 1e-9)."""
    assert set(orders["account"]) == set(reference)
    for account, rows in orders.groupby("account", sort=False):
        ref = reference[account]
        rows = rows.set_index("asset").loc[ref.index]
        assert list(rows["side"]) == list(ref["side"]), account
        for col in ("quantity", "notional", "est_cost"):
            np.testing.assert_allclose(
                rows[col].to_numpy(float), ref[col].to_numpy(float), rtol=0, atol=1e-9
            )


@pytest.fixture(scope="session")
def check():
    """The helpers above, for the test modules (a conftest is not imported by name)."""

    class Helpers:
        pass

    h = Helpers()
    h.poisoned = staticmethod(poisoned)
    h.serial_orders = staticmethod(serial_orders)
    h.assert_orders_match = staticmethod(assert_orders_match)
    return h


@pytest.fixture(scope="session")
def pooled_book(book) -> dict:
    """The book's first 6 accounts under pooled limits: a 0.3% of adv gross cap, impact."""
    folder = book["folder"]
    text = scenario_text(SEED)
    adv = "{ " + ", ".join(f"{a} = 5e6" for a in ASSETS) + " }"
    text = text.replace("[costs]\n", f"[costs]\nadv = {adv}\n")
    text += '\n[batch.pooled]\nkind = "gross"\ncap_adv = 0.003\nimpact = 0.1\n'
    scenario = folder / "pooled.toml"
    scenario.write_text(text, encoding="utf-8")
    ids = list(dict.fromkeys(book["frame"]["account"]))[:6]
    frame = book["frame"][book["frame"]["account"].isin(ids)]
    accounts = folder / "pooled.parquet"
    frame.to_parquet(accounts, index=False)
    return {"scenario": scenario, "accounts": accounts, "cap": 0.003 * 5e6}
