"""Keys and tenants (401), the body size limit (413) and the solve time limit (504)."""

from __future__ import annotations

import httpx
from service.service_helpers import scenario_doc

from scenarios.service.store import Store


def _allocate(url: str, headers: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/allocate", json=scenario_doc(), headers=headers, timeout=30)


def test_no_key_is_401(server):
    r = _allocate(server.url, {})
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["kind"] == "auth" and "Authorization: Bearer" in err["message"]
    assert err["path"] == "Authorization" and r.headers["www-authenticate"] == "Bearer"


def test_wrong_key_is_401(server):
    good = server.keys["desk1"]
    for bad in (good[:-2] + "xx", "tt_000000000000_nope", "nonsense", f"Basic {good}"):
        headers = {"Authorization": bad if bad.startswith("Basic") else f"Bearer {bad}"}
        r = _allocate(server.url, headers)
        assert r.status_code == 401, bad
        assert "invalid or revoked API key" in r.json()["error"]["message"]


def test_revoked_key_is_401(server):
    store = Store(server.db)
    key = store.create_key("leaver")
    assert _allocate(server.url, {"Authorization": f"Bearer {key}"}).status_code == 200
    store.revoke_key(key.split("_")[1])
    r = _allocate(server.url, {"Authorization": f"Bearer {key}"})
    assert r.status_code == 401 and r.json()["error"]["kind"] == "auth"


def test_keys_are_stored_hashed(server):
    store = Store(server.db)
    rows = [dict(r) for r in store.read("SELECT * FROM api_keys")]
    secret = server.keys["desk1"].split("_", 2)[2]
    assert rows and all(secret not in str(r.values()) for r in rows)
    assert all(r["created"] for r in rows)


def test_body_over_the_limit_is_413(tight):
    doc = scenario_doc()
    doc["portfolio"]["name"] = "x" * 30_000
    with tight.client() as c:
        r = c.post("/v1/allocate", json=doc)
    assert r.status_code == 413
    err = r.json()["error"]
    assert (
        err["kind"] == "limit"
        and "20,000 bytes" in err["message"]
        and "--max-body" in err["message"]
    )


def test_chunked_body_over_the_limit_is_413(tight):
    def chunks():
        for _ in range(30):
            yield b"x" * 1000

    with tight.client() as c:
        r = c.post("/v1/allocate", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["kind"] == "limit"


def test_solve_over_the_time_limit_is_504(tight):
    doc = scenario_doc()
    doc["model"] = {"kind": "mean_variance", "objective": "min_variance"}
    with tight.client() as c:
        r = c.post("/v1/frontier", params={"points": 200}, json=doc)
    assert r.status_code == 504, r.text
    err = r.json()["error"]
    assert err["kind"] == "limit" and "time limit of 0.0005 s" in err["message"]
    assert "--solve-timeout" in err["message"] and "Traceback" not in r.text
