"""The service's per-request shortcuts: held rebalancers, the response encoder, the load test.

None of them may change an answer: each is checked against the plain path.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from service.service_helpers import scenario_doc

from benchmarks.bench_service import _check_orders, _cpu_seconds, rebalance_docs
from optimizer.rebalance import rebalance
from scenarios.service import ops
from scenarios.service.app import dumps
from scenarios.service.documents import DocumentCache


def _plain_orders(cache: DocumentCache, scn) -> dict:
    """The orders of the one-shot :func:`optimizer.rebalance.rebalance` (no held objects)."""
    p = ops.prepared(cache, scn)
    plan = rebalance(
        scn.holdings.values,
        p.allocation.weights,
        cov=p.estimates.cov,
        costs=scn.costs,
        constraints=list(scn.constraints),
        universe=scn.universe,
        **scn.rebalance.kwargs(),
    )
    return plan.to_orders()


def _docs() -> list[dict]:
    ria = scenario_doc("ria_q1_2024")
    ria["rebalance"] = {"cash_flow": 25_000, "min_trade": 500}
    priced = scenario_doc("ria_q1_2024")
    priced.pop("rebalance", None)
    priced["holdings"] = {
        "quantities": {"US_EQ": 1000, "INTL_EQ": 4000, "BONDS": 3000, "REITS": 1000},
        "prices": {"US_EQ": 460.0, "INTL_EQ": 57.5, "BONDS": 97.0, "REITS": 108.0},
    }
    priced["rebalance"] = {"lot_size": 1}
    return [ria, priced, *rebalance_docs(3)]


@pytest.mark.parametrize("k", range(5))
def test_held_rebalancer_gives_the_plain_orders(k):
    cache = DocumentCache()
    doc = _docs()[k]
    scn = cache.scenario_of_json(json.dumps(doc).encode())
    assert (scn.rebalance.prices is not None) == ("prices" in doc["holdings"])
    first = ops.rebalance(cache, scn)
    assert first == _plain_orders(cache, scn)
    assert ops.rebalance(cache, scn) == first  # a repeated request: the held objects
    t = ops.trading(cache, scn)
    assert t.holdings.index is t.rebalancer.assets and t.target.index is t.rebalancer.assets
    assert ops.trading(cache, scn) is t
    if "prices" in t.plan_kwargs:
        assert t.plan_kwargs["prices"].index is t.rebalancer.assets


def test_labelled_keeps_a_series_in_another_order():
    index = pd.Index(["A", "B", "C"])
    same = pd.Series([1.0, 2.0, 3.0], index=["A", "B", "C"], name="h")
    other = pd.Series([1.0, 2.0, 3.0], index=["C", "B", "A"])
    got = ops._labelled(same, index)
    assert got.index is index and got.name == "h" and got.tolist() == [1.0, 2.0, 3.0]
    assert ops._labelled(other, index) is other
    assert ops._labelled({"A": 1.0}, index) == {"A": 1.0}


def test_dumps_encodes_as_the_standard_library_reads():
    cache = DocumentCache()
    scn = cache.scenario_of_json(json.dumps(rebalance_docs(1)[0]).encode())
    orders = ops.rebalance(cache, scn)
    assert json.loads(dumps(orders)) == orders
    # what orjson refuses (numpy scalars) falls back to json; keys become strings
    odd = {"x": np.float64(0.25), 1: "one", "t": ["é", True, None]}
    assert json.loads(dumps(odd)) == {"x": 0.25, "1": "one", "t": ["é", True, None]}


def test_load_test_checks_the_orders_it_samples():
    assert _check_orders(b'{"schema": "trimtab.orders/1", "orders": []}') is None
    assert "not JSON" in _check_orders(b"<html>")
    assert "trimtab.orders/1" in _check_orders(b'{"schema": "other", "orders": []}')
    assert "orders list" in _check_orders(b'{"schema": "trimtab.orders/1"}')
    assert _cpu_seconds(os.getpid()) > 0
