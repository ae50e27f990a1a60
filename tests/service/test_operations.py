"""Operations: kill -9 of a worker under load, restart recovery, graceful shutdown."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import httpx
import pytest
from service.service_helpers import scenario_doc, start

from scenarios.batch.example import accounts_frame, scenario_text


@pytest.fixture(scope="module")
def big_book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bigbook")
    (folder / "book.toml").write_text(scenario_text())
    accounts_frame(1500).to_csv(folder / "accounts.csv", index=False)
    return {
        "scenario": ("book.toml", (folder / "book.toml").read_bytes(), "application/toml"),
        "accounts": ("accounts.csv", (folder / "accounts.csv").read_bytes(), "text/csv"),
    }


def _running(c: httpx.Client, jid: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.get(f"/v1/batches/{jid}").json()["status"] == "running":
            return
        time.sleep(0.05)
    raise AssertionError("the batch never ran")


def _job_pid(db, jid: str) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT pid FROM jobs WHERE id = ?", (jid,)).fetchone()[0]


def _duplicates_across_workers(srv) -> None:
    """One Idempotency-Key sent 6 times at once (new connections: both workers): one answer."""
    doc, out = scenario_doc(), []

    def post():
        r = httpx.post(
            f"{srv.url}/v1/rebalance",
            json=doc,
            headers={"Authorization": f"Bearer {srv.keys['desk1']}", "Idempotency-Key": "k-1"},
            timeout=60,
        )
        out.append(r)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in out] == [200] * 6
    assert len({r.content for r in out}) == 1
    with sqlite3.connect(srv.db) as con:
        assert con.execute("SELECT count(*) FROM idempotency").fetchone()[0] == 1


def test_kill_9_of_a_worker_under_load(tmp_path, big_book):
    srv = start(tmp_path, "--workers", "2")
    try:
        _duplicates_across_workers(srv)
        stop = threading.Event()
        log: list[tuple[float, object]] = []
        doc = scenario_doc()

        def load():
            with srv.client() as c:
                while not stop.is_set():
                    try:
                        log.append(
                            (time.monotonic(), c.post("/v1/rebalance", json=doc).status_code)
                        )
                    except httpx.HTTPError as exc:
                        log.append((time.monotonic(), type(exc).__name__))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        with srv.client() as c:
            jid = c.post("/v1/batches", files=big_book).json()["id"]
            _running(c, jid)
            victim = _job_pid(srv.db, jid)
            assert victim != srv.proc.pid
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            # the other worker keeps answering; the supervisor starts a new one, whose
            # start-up marks the dead worker's job failed
            deadline = time.monotonic() + 60
            job = None
            while time.monotonic() < deadline:
                try:
                    job = c.get(f"/v1/batches/{jid}").json()
                except httpx.HTTPError:
                    job = None
                if job and job["status"] == "failed":
                    break
                time.sleep(0.2)
        # keep the load on until answers 3 s after the kill have come back (bounded)
        until = time.monotonic() + 30
        while time.monotonic() < until and (
            time.monotonic() < killed + 5 or sum(t > killed + 3.0 for t, _ in log) < 5
        ):
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()
        assert job is not None and job["status"] == "failed", job
        assert "server restarted" in job["error"]
        after = [s for t, s in log if t > killed + 3.0]
        assert after and all(s == 200 for s in after), set(after)
        before = [s for t, s in log if t < killed]
        assert before and all(s == 200 for s in before)
        with sqlite3.connect(srv.db) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            bad = con.execute(
                "SELECT count(*) FROM jobs WHERE status NOT IN "
                "('queued','running','done','failed','interrupted') OR folder IS NULL"
            ).fetchone()[0]
            assert bad == 0
    finally:
        srv.stop()


def test_graceful_shutdown_marks_the_batch_interrupted_and_a_restart_keeps_it(tmp_path, big_book):
    srv = start(tmp_path)
    with srv.client() as c:
        jid = c.post("/v1/batches", files=big_book).json()["id"]
        _running(c, jid)
    assert srv.stop(signal.SIGTERM) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    again = start(tmp_path, db=srv.db, tenants=("desk3",))
    try:
        again.keys = {**srv.keys, **again.keys}
        with again.client() as c:
            job = c.get(f"/v1/batches/{jid}").json()
        assert job["status"] == "interrupted" and "shut down" in job["error"]
    finally:
        again.stop()


def test_restart_fails_jobs_of_a_dead_process(tmp_path, big_book):
    srv = start(tmp_path)
    with srv.client() as c:
        jid = c.post("/v1/batches", files=big_book).json()["id"]
        _running(c, jid)
    srv.stop(signal.SIGKILL)
    with sqlite3.connect(srv.db) as con:
        assert con.execute("SELECT status FROM jobs WHERE id=?", (jid,)).fetchone()[0] == "running"
    again = start(tmp_path, db=srv.db, tenants=("desk3",))
    try:
        again.keys = {**srv.keys, **again.keys}
        with again.client() as c:
            job = c.get(f"/v1/batches/{jid}").json()
        assert job["status"] == "failed" and "server restarted" in job["error"]
    finally:
        again.stop()
