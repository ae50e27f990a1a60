"""Every endpoint end to end through a real uvicorn process, equal to the in-process calls."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from service.service_helpers import EXAMPLES, scenario_doc

from optimizer.rebalance import OPTIONS, Rebalancer
from scenarios.engine import frontier, plan_rebalance, run_scenario, target_allocation
from scenarios.schema import load_scenario


def _in_process_orders(name: str) -> dict:
    """Rebalancer(...).plan(...).to_orders() of an example scenario, by hand."""
    scn = load_scenario(EXAMPLES / f"{name}.toml")
    est = scn.estimates.build()
    alloc, _ = target_allocation(scn, est)
    kw = scn.rebalance.kwargs()
    options = {k: kw.pop(k) for k in list(kw) if k in OPTIONS}
    rb = Rebalancer(
        est.cov,
        costs=scn.costs,
        constraints=list(scn.constraints),
        universe=scn.universe,
        **options,
    )
    return rb.plan(scn.holdings.values, alloc.weights, **kw).to_orders()


def test_health_needs_no_key(server):
    with server.client(None) as c:
        r = c.get("/v1/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.headers["x-request-id"]


def test_rebalance_equals_in_process_plan(server):
    with server.client() as c:
        r = c.post("/v1/rebalance", json=scenario_doc("ria_q1_2024"))
    assert r.status_code == 200, r.text
    got, want = r.json(), _in_process_orders("ria_q1_2024")
    assert got["schema"] == "trimtab.orders/1"
    assert json.loads(json.dumps(want)) == got


def test_allocate_equals_in_process(server):
    doc = scenario_doc("riverside_endowment")
    doc["estimates"].pop("file", None)
    scn = load_scenario(EXAMPLES / "ria_q1_2024.toml")
    est = scn.estimates.build()
    want, _ = target_allocation(scn, est)
    with server.client() as c:
        r = c.post("/v1/allocate", json=scenario_doc("ria_q1_2024"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["weights"] == pytest.approx(want.weights.to_dict(), abs=1e-12)
    assert body["volatility"] == pytest.approx(want.volatility, rel=1e-12)
    assert {"checks", "binding", "relaxed", "sharpe"} <= set(body)


def test_frontier_equals_in_process(server):
    doc = scenario_doc("ria_q1_2024")
    doc["model"] = {"kind": "mean_variance", "objective": "min_variance"}
    scn = load_scenario(EXAMPLES / "ria_q1_2024.toml")
    want = frontier(scn, scn.estimates.build(), 7, None).to_dict()
    with server.client() as c:
        r = c.post("/v1/frontier", params={"points": 7}, json=doc)
    assert r.status_code == 200, r.text
    got = r.json()
    assert len(got["points"]) == 7
    assert [p["volatility"] for p in got["points"]] == pytest.approx(
        [p["volatility"] for p in want["points"]], rel=1e-9
    )


def test_scenarios_run_equals_run_report(server):
    text = (EXAMPLES / "ria_q1_2024.toml").read_bytes()
    res = run_scenario(EXAMPLES / "ria_q1_2024.toml")
    with server.client() as c:
        r = c.post("/v1/scenarios/run", content=text, headers={"Content-Type": "application/toml"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["scenario"]["file"] == "request.toml"
    assert [t["target"] for t in got["targets"]] == pytest.approx(res.target.tolist())
    assert got["rebalance"]["orders"]["orders"] == json.loads(
        json.dumps(res.plan.to_orders()["orders"])
    )
    assert "warnings" in got and "passed" in got


def test_bad_input_is_422_with_the_culprits_path(server):
    doc = scenario_doc("ria_q1_2024")
    doc["constraints"] = {"group": [{"name": "equity cap", "tag": "equity", "max": 70}]}
    with server.client() as c:
        r = c.post("/v1/allocate", json=doc)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["kind"] == "input"
    assert err["path"] == "constraints.group[0].max"
    assert "must be <= 1" in err["message"] and err["request_id"] == r.headers["x-request-id"]


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda d: d["estimates"].__setitem__("file", "/etc/passwd"), "estimates.file", "inline"),
        (lambda d: d["portfolio"].__setitem__("name", None), "portfolio.name", "null"),
        (lambda d: d.__setitem__("holdingz", {}), "holdingz", "unknown key"),
    ],
)
def test_refused_documents_name_the_key(server, mutate, path, words):
    doc = scenario_doc("ria_q1_2024")
    mutate(doc)
    with server.client() as c:
        r = c.post("/v1/rebalance", json=doc)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["path"] == path and words in err["message"]


def test_not_json_is_422(server):
    with server.client() as c:
        r = c.post(
            "/v1/allocate", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 422
    assert "invalid JSON" in r.json()["error"]["message"]


def test_infeasible_is_409_with_the_diagnosis(server):
    doc = scenario_doc("ria_q1_2024")
    doc["model"] = {"kind": "mean_variance", "objective": "min_variance"}
    doc["constraints"] = {
        "group": [
            {"name": "equity floor", "tag": "equity", "min": 0.8},
            {"name": "bond floor", "assets": ["BONDS"], "min": 0.5},
        ]
    }
    with server.client() as c:
        r = c.post("/v1/allocate", json=doc)
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["kind"] == "infeasible"
    assert err["diagnosis"], err
    names = {d["name"] for d in err["diagnosis"]}
    assert names & {"equity floor", "bond floor", "budget"}
    assert all(np.isfinite(d["relax_by"]) for d in err["diagnosis"])


def test_unknown_route_is_404_json(server):
    with server.client(None) as c:
        r = c.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["kind"] == "not_found"


def test_openapi_document(server):
    with server.client(None) as c:
        spec = c.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/v1/allocate",
        "/v1/rebalance",
        "/v1/frontier",
        "/v1/scenarios/run",
        "/v1/batches",
        "/v1/batches/{job_id}",
        "/v1/batches/{job_id}/orders",
        "/v1/health",
    } <= paths


def test_log_lines_are_json_without_the_key(server):
    with server.client() as c:
        rid = c.post("/v1/allocate", json=scenario_doc(), headers={"X-Request-ID": "abc-123"})
        assert rid.headers["x-request-id"] == "abc-123"
    text = server.log.read_text()
    assert server.keys["desk1"] not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "abc-123"]
    assert mine and mine[0]["tenant"] == "desk1" and mine[0]["status"] == 200
    assert {"method", "path", "ms"} <= set(mine[0])


def test_request_is_a_scenario_document():
    """The JSON body and the TOML file say the same: the documents module round-trips."""
    import tomllib

    from scenarios.service.documents import to_toml

    doc = scenario_doc("ria_q1_2024")
    back = json.loads(json.dumps(tomllib.loads(to_toml(copy.deepcopy(doc))), default=str))
    assert back == doc


def test_rebalance_with_tax_lots_gives_orders_2(server):
    """A document with holdings.lots is planned tax-aware: trimtab.orders/2, as the CLI."""
    doc = scenario_doc("taxable_account")
    holdings = doc["holdings"]
    lots = pd.read_csv(EXAMPLES / holdings.pop("lots_file"), dtype={"lot_id": str})
    recent = pd.read_csv(EXAMPLES / holdings.pop("recent_file"))
    holdings["lots"] = json.loads(lots.to_json(orient="records"))
    rows = json.loads(recent.to_json(orient="records"))
    holdings["recent"] = [{k: v for k, v in row.items() if v is not None} for row in rows]
    scn = load_scenario(EXAMPLES / "taxable_account.toml")
    est = scn.estimates.build()
    alloc, _ = target_allocation(scn, est)
    want = plan_rebalance(scn, alloc.weights, est.cov).to_orders()
    with server.client() as c:
        r = c.post("/v1/rebalance", json=doc)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["schema"] == "trimtab.orders/2"
    assert got["tax"] == pytest.approx(want["tax"], rel=1e-9, abs=1e-6)
    sells = {o["asset"]: o for o in got["orders"] if o["side"] == "sell"}
    assert sells and all(o["lots"] for o in sells.values())
    assert sorted(sells) == sorted(o["asset"] for o in want["orders"] if o["side"] == "sell")
