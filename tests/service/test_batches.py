"""Batches in the background, tenants' jobs, and idempotency keys."""

from __future__ import annotations

import io
import threading
import time

import pandas as pd
import pytest

from scenarios.batch import run_batch
from scenarios.batch.example import accounts_frame, scenario_text


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("book")
    (folder / "book.toml").write_text(scenario_text())
    accounts_frame(40).to_csv(folder / "accounts.csv", index=False)
    return folder


def _files(book):
    return {
        "scenario": ("book.toml", (book / "book.toml").read_bytes(), "application/toml"),
        "accounts": ("accounts.csv", (book / "accounts.csv").read_bytes(), "text/csv"),
    }


def _wait(c, jid, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/batches/{jid}").json()
        if job["status"] in ("done", "failed", "interrupted"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"batch {jid} still {job['status']}")


def test_batch_runs_and_its_orders_equal_the_in_process_batch(server, book):
    with server.client() as c:
        r = c.post("/v1/batches", files=_files(book))
        assert r.status_code == 202, r.text
        jid = r.json()["id"]
        job = _wait(c, jid)
        assert job["status"] == "done", job
        assert job["progress"] == {"done": 40, "failed": 0}
        got = c.get(f"/v1/batches/{jid}/orders").json()
        csv = c.get(f"/v1/batches/{jid}/orders", params={"format": "csv"})
    assert got["schema"] == "trimtab.orders/1"
    want = run_batch(book / "book.toml", book / "accounts.csv", scheduler="in-process").orders
    frame = pd.DataFrame(got["orders"])
    assert list(frame["account"]) == list(want["account"])
    assert frame["notional"].to_numpy() == pytest.approx(want["notional"].to_numpy(), rel=1e-9)
    assert len(pd.read_csv(io.StringIO(csv.text))) == len(want)


def test_another_tenants_job_is_404(server, book):
    with server.client("desk1") as c:
        jid = c.post("/v1/batches", files=_files(book)).json()["id"]
    with server.client("desk2") as c:
        for path in (f"/v1/batches/{jid}", f"/v1/batches/{jid}/orders"):
            r = c.get(path)
            assert r.status_code == 404
            assert r.json()["error"]["kind"] == "not_found" and jid in r.json()["error"]["message"]


def test_batch_without_a_batch_section_is_422(server, book):
    files = _files(book)
    text = (
        scenario_text().split("[batch]")[0].replace("[portfolio]\n", "[portfolio]\nvalue = 1e6\n")
    )
    files["scenario"] = ("x.toml", text.encode(), "text/plain")
    with server.client() as c:
        r = c.post("/v1/batches", files=files)
    assert r.status_code == 422 and r.json()["error"]["path"] == "batch"


def test_concurrent_duplicates_give_one_job(server, book):
    key = "dup-" + str(time.time())
    results = []

    def post():
        with server.client() as c:
            results.append(
                c.post("/v1/batches", files=_files(book), headers={"Idempotency-Key": key})
            )

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 202 for r in results), [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    from scenarios.service.store import Store

    rows = Store(server.db).read("SELECT count(*) AS n FROM idempotency WHERE key = ?", (key,))
    assert rows[0]["n"] == 1


def test_same_key_other_body_is_refused(server, book):
    from service.service_helpers import scenario_doc

    key = "sync-" + str(time.time())
    doc = scenario_doc()
    with server.client() as c:
        first = c.post("/v1/rebalance", json=doc, headers={"Idempotency-Key": key})
        again = c.post("/v1/rebalance", json=doc, headers={"Idempotency-Key": key})
        doc["holdings"]["values"]["BONDS"] = 1.0
        other = c.post("/v1/rebalance", json=doc, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert other.status_code == 422
    err = other.json()["error"]
    assert err["path"] == "Idempotency-Key" and key in err["message"]


def test_keys_are_per_tenant(server):
    from service.service_helpers import scenario_doc

    key = "shared-" + str(time.time())
    doc = scenario_doc()
    with server.client("desk1") as c:
        assert c.post("/v1/allocate", json=doc, headers={"Idempotency-Key": key}).status_code == 200
    doc["policy"]["weights"] = {"US_EQ": 0.25, "INTL_EQ": 0.25, "BONDS": 0.25, "REITS": 0.25}
    with server.client("desk2") as c:
        r = c.post("/v1/allocate", json=doc, headers={"Idempotency-Key": key})
    assert r.status_code == 200 and r.json()["weights"]["BONDS"] == pytest.approx(0.25)


def test_orders_of_a_batch_not_done_are_409(server, book, monkeypatch):
    from scenarios.service.store import Store

    with server.client() as c:
        jid = c.post("/v1/batches", files=_files(book)).json()["id"]
        _wait(c, jid)
        Store(server.db).set_job(jid, status="running")
        r = c.get(f"/v1/batches/{jid}/orders")
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["kind"] == "conflict" and f"batch {jid} is running" in err["message"]


@pytest.mark.parametrize(
    ("kwargs", "path", "words"),
    [
        ({"content": b"abc", "headers": {"Content-Type": "text/csv"}}, "body", "multipart"),
        ({"files": {"scenario": ("s.toml", b"x = 1", "text/plain")}}, "accounts", "missing part"),
    ],
)
def test_bad_batch_submissions_are_422(server, kwargs, path, words):
    with server.client() as c:
        r = c.post("/v1/batches", **kwargs)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["path"] == path and words in err["message"]


def test_a_malformed_idempotency_key_is_422(server):
    from service.service_helpers import scenario_doc

    with server.client() as c:
        r = c.post("/v1/allocate", json=scenario_doc(), headers={"Idempotency-Key": "a b"})
    assert r.status_code == 422
    assert r.json()["error"]["path"] == "Idempotency-Key"
