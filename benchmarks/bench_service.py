"""Benchmark 12: the HTTP service under load (``trimtab serve`` on 127.0.0.1).

A real uvicorn (2 worker processes, the machine's 2 cores) with a fresh SQLite database and
key; clients are threads with keep-alive connections (``http.client``), in this process.

- ``POST /v1/rebalance`` of a 12-asset account (policy model, 10 bps costs, drifted holdings),
  32 concurrent clients sending ``--requests`` requests (default 20,000) paced at ``--rate``
  (default 300 requests/s together; latency from each request's time slot): p50, p99,
  errors; goals p50 < 5 ms, p99 < 30 ms, 0 errors. Then the capacity: the same clients
  closed loop (each sends again once answered), goal >= 300 requests/s; and a paced run
  at a third of the rate (the latency of a service that is not saturated). The bodies cycle
  through ``--accounts`` accounts (default 64, distinct holdings: the scenario of each is
  validated once and then found by content; each request still plans its rebalance). A
  second, shorter run sends every request a new account (``cold``: the whole scenario
  validated per request) and is reported beside.
- The in-process reference: a held ``Rebalancer.plan`` on the same accounts (median), and
  the service's overhead over it (p50 over HTTP at a third of the rate minus the in-process
  median).
- ``POST /v1/allocate`` of a 500-asset max-Sharpe scenario (inline CMA: 500 x 500
  correlation), one client: p50 of new requests (expected returns perturbed: parse,
  validation, estimates and solve) against the same work in-process from the same document
  (``load_scenario`` of its TOML file, estimates, ``scenarios.engine.allocate``), goal
  within 1.5x; beside it the in-process allocation alone (the scenario already loaded) and
  the p50 of a repeated request (found by content).

Run alone: ``python -m benchmarks.bench_service --requests 2000``; in the suite:
``python -m benchmarks --only service`` (``--quick``: 2,000 requests).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import Config, Goal, Outcome, Row

TITLE = "12 service: HTTP rebalance under load (32 clients), 500-asset allocation"
BENCH = "12 service"
REQUESTS = 20_000
QUICK_REQUESTS = 2_000
CLIENTS = 32
ACCOUNTS = 64
#: Requests per second of the paced run (all clients together): the issue's throughput goal.
RATE = 300.0
ROOT = Path(__file__).resolve().parents[1]


def _cma(n: int, seed: int) -> tuple[list[str], dict, dict, list[list[float]]]:
    """Asset ids, expected returns, volatilities and a correlation matrix (one factor)."""
    rng = np.random.default_rng(seed)
    ids = [f"A{i:03d}" for i in range(n)]
    beta = rng.uniform(0.3, 0.9, n)
    corr = np.outer(beta, beta)
    np.fill_diagonal(corr, 1.0)
    mu = dict(zip(ids, np.round(rng.uniform(0.02, 0.10, n), 6).tolist(), strict=True))
    vol = dict(zip(ids, np.round(rng.uniform(0.05, 0.30, n), 6).tolist(), strict=True))
    return ids, mu, vol, np.round(corr, 6).tolist()


def rebalance_docs(accounts: int, seed: int = 12) -> list[dict]:
    """``accounts`` 12-asset rebalance requests: one structure, drifted holdings."""
    ids, mu, vol, corr = _cma(12, seed)
    rng = np.random.default_rng(seed + 1)
    base = {
        "portfolio": {"name": "bench", "id": "acct", "currency": "USD"},
        "assets": [{"id": a} for a in ids],
        "estimates": {
            "source": "cma",
            "expected_return": mu,
            "volatility": vol,
            "correlation": corr,
        },
        "model": {"kind": "policy"},
        "policy": {"weights": {a: 1.0 / 12 for a in ids}},
        "costs": {"bps": 10},
    }
    docs = []
    for k in range(accounts):
        values = 1e5 / 12 * rng.lognormal(0.0, 0.15, 12)
        doc = json.loads(json.dumps(base))
        doc["portfolio"]["id"] = f"acct-{k}"
        doc["holdings"] = {"values": dict(zip(ids, np.round(values, 2).tolist(), strict=True))}
        docs.append(doc)
    return docs


def allocation_doc(n: int, seed: int, tilt: int = 0) -> dict:
    """A ``n``-asset max-Sharpe scenario (long-only, 10% caps); ``tilt`` perturbs returns."""
    ids, mu, vol, corr = _cma(n, seed)
    rng = np.random.default_rng(tilt)
    mu = {a: round(v + float(rng.normal(0, 1e-4)) * (tilt > 0), 8) for a, v in mu.items()}
    return {
        "portfolio": {"name": "bench", "value": 1e6},
        "assets": [{"id": a} for a in ids],
        "estimates": {
            "source": "cma",
            "expected_return": mu,
            "volatility": vol,
            "correlation": corr,
        },
        "model": {"kind": "mean_variance", "objective": "max_sharpe"},
        "constraints": {"bounds": {"max": 0.1}},
    }


class Service:
    """A ``trimtab serve`` subprocess on a free port with one key."""

    def __init__(self, folder: Path, workers: int) -> None:
        from scenarios.service.store import Store

        db = folder / "bench.db"
        self.key = Store(db).create_key("bench")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        self.log = (folder / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scenarios.cli", "serve", "--port", str(self.port)]
            + ["--db", str(db), "--workers", str(workers), "--max-body", "100000000"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _ = self.request("GET", "/v1/health", None)
                if status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("trimtab serve did not start")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def request(self, method, path, body, conn=None) -> tuple[int, bytes]:
        own = conn is None
        conn = conn or self.connection()
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if own:
            conn.close()
        return resp.status, data

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def load(
    svc: Service, bodies: list[bytes], requests: int, clients: int, rate: float | None = None
) -> dict:
    """``requests`` POST /v1/rebalance over ``clients`` threads: latencies and errors.

    With ``rate`` (requests per second, all clients together) each request has its time
    slot (open loop) and its latency counts from the slot, so queueing shows; without it
    each client sends its next request as soon as the last is answered (closed loop: the
    throughput is the service's capacity, and the latency is mostly queueing).
    """
    lat = np.zeros(requests)
    errors: list[str] = []
    counter = iter(range(requests))
    lock = threading.Lock()
    start = time.perf_counter() + 0.1

    def client() -> None:
        conn = svc.connection()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            if rate:
                t0 = start + i / rate
                time.sleep(max(0.0, t0 - time.perf_counter()))
            try:
                status, data = svc.request("POST", "/v1/rebalance", bodies[i % len(bodies)], conn)
                if status != 200:
                    errors.append(f"{status}: {data[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                errors.append(type(exc).__name__)
                conn.close()
                conn = svc.connection()
            lat[i] = time.perf_counter() - t0
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {
        "p50_s": float(np.percentile(lat, 50)),
        "p99_s": float(np.percentile(lat, 99)),
        "throughput": requests / wall,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def in_process_plan(docs: list[dict]) -> float:
    """Median seconds of a held ``Rebalancer.plan`` over the accounts of ``docs``."""
    from optimizer.rebalance import Rebalancer
    from scenarios.service.documents import DocumentCache, to_toml

    cache = DocumentCache()
    scns = [cache.scenario(to_toml(d)) for d in docs]
    scn = scns[0]
    est = scn.estimates.build()
    rb = Rebalancer(
        est.cov, costs=scn.costs, constraints=list(scn.constraints), universe=scn.universe
    )
    target = scn.policy
    rb.plan(scns[0].holdings.values, target)
    times = []
    for _ in range(5):
        for s in scns:
            t0 = time.perf_counter()
            rb.plan(s.holdings.values, target)
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def allocation(svc: Service, n: int, repeats: int, folder: Path) -> dict:
    """p50 of new and of repeated ``n``-asset allocations over HTTP vs in-process.

    In-process, two references: the allocation alone (``scenarios.engine.allocate`` of the
    loaded scenario and its estimates), and the same work from the same document
    (``load_scenario`` of its TOML file, the estimates, the allocation).
    """
    from scenarios.engine import allocate
    from scenarios.schema import load_scenario
    from scenarios.service.documents import to_toml

    new, same, solve, whole = [], [], [], []
    for k in range(repeats + 1):
        doc = allocation_doc(n, 5, tilt=k + 1)
        body = json.dumps(doc).encode()
        t0 = time.perf_counter()
        status, data = svc.request("POST", "/v1/allocate", body)  # a new connection each
        if status != 200:
            raise RuntimeError(f"/v1/allocate: {status} {data[:300]!r}")
        t1 = time.perf_counter()
        path = folder / f"alloc{k}.toml"
        path.write_text(to_toml(doc), encoding="utf-8")
        t2 = time.perf_counter()
        scn = load_scenario(path)
        est = scn.estimates.build()
        t3 = time.perf_counter()
        allocate(scn, est)
        t4 = time.perf_counter()
        if k:
            new.append(t1 - t0)
            solve.append(t4 - t3)
            whole.append(t4 - t2)
    conn = svc.connection()
    for _ in range(repeats):
        t0 = time.perf_counter()
        svc.request("POST", "/v1/allocate", body, conn)
        same.append(time.perf_counter() - t0)
    conn.close()
    return {
        "new_p50_s": float(np.median(new)),
        "same_p50_s": float(np.median(same)),
        "in_process_p50_s": float(np.median(whole)),
        "in_process_solve_p50_s": float(np.median(solve)),
        "body_mb": len(body) / 1e6,
    }


def measure(
    requests: int, accounts: int = ACCOUNTS, clients: int = CLIENTS, rate: float = RATE
) -> dict:
    """Every figure of the benchmark."""
    folder = Path(tempfile.mkdtemp(prefix="trimtab-bench-service-"))
    try:
        docs = rebalance_docs(accounts)
        bodies = [json.dumps(d).encode() for d in docs]
        svc = Service(folder, workers=2)
        try:
            load(svc, bodies, min(4 * len(bodies), requests), clients)  # warm: every account
            paced = load(svc, bodies, requests, clients, rate)
            short = max(min(requests // 4, 5000), clients)
            capacity = load(svc, bodies, short, clients)
            light = load(svc, bodies, max(min(requests // 10, 2000), clients), clients, rate / 3)
            cold_n = max(min(requests // 10, 2000), clients)
            cold_bodies = [json.dumps(d).encode() for d in rebalance_docs(cold_n, seed=99)]
            cold = load(svc, cold_bodies, cold_n, clients)
            alloc = allocation(svc, 500, 5, folder)
        finally:
            svc.stop()
        plan = in_process_plan(docs)
        return {
            "requests": requests,
            "clients": clients,
            "accounts": accounts,
            "rate": rate,
            **{f"paced_{k}": v for k, v in paced.items()},
            **{f"capacity_{k}": v for k, v in capacity.items()},
            **{f"light_{k}": v for k, v in light.items()},
            **{f"cold_{k}": v for k, v in cold.items()},
            "in_process_plan_s": plan,
            "overhead_p50_s": light["p50_s"] - plan,
            **{f"alloc500_{k}": v for k, v in alloc.items()},
            "alloc500_ratio": alloc["new_p50_s"] / alloc["in_process_p50_s"],
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(cfg: Config) -> Outcome:
    """The benchmark's rows for the suite (``--quick``: 2,000 requests)."""
    n = QUICK_REQUESTS if cfg.quick else REQUESTS
    m = measure(n)
    out = Outcome()
    label = f"12-asset rebalance, {CLIENTS} clients at {RATE:.0f}/s, {n:,} requests"
    ok = m["paced_errors"] == 0
    p50, p99 = m["paced_p50_s"], m["paced_p99_s"]
    out.rows.append(
        Row(
            BENCH,
            f"{label}: p50 (vs in-process plan)",
            p50,
            m["in_process_plan_s"],
            Goal("absolute", 0.005),
            "PASS" if p50 < 0.005 and ok else "FAIL",
        )
    )
    out.rows.append(
        Row(
            BENCH,
            f"{label}: p99",
            p99,
            None,
            Goal("absolute", 0.030),
            "PASS" if p99 < 0.030 and ok else "FAIL",
        )
    )
    out.rows.append(
        Row(
            BENCH,
            "500-asset allocation over HTTP vs in-process load_scenario + allocate (p50)",
            m["alloc500_new_p50_s"],
            m["alloc500_in_process_p50_s"],
            Goal("ratio", 1.5),
            "PASS" if m["alloc500_ratio"] <= 1.5 else "FAIL",
        )
    )
    out.notes.append(
        f"{BENCH}: paced at {RATE:.0f}/s: {m['paced_throughput']:.0f} requests/s, errors "
        f"{m['paced_errors']} of {n:,}; capacity (closed loop, {CLIENTS} clients): "
        f"{m['capacity_throughput']:.0f}/s (goal >= 300); paced at {RATE / 3:.0f}/s: p50 "
        f"{m['light_p50_s'] * 1e3:.1f} ms, p99 {m['light_p99_s'] * 1e3:.1f} ms; overhead "
        "over an in-process "
        f"Rebalancer.plan ({m['in_process_plan_s'] * 1e3:.2f} ms): "
        f"{m['overhead_p50_s'] * 1e3:.2f} ms at p50; cold (every account new, closed loop): "
        f"p50 {m['cold_p50_s'] * 1e3:.1f} ms, {m['cold_throughput']:.0f}/s; 500-asset "
        f"repeated request p50 {m['alloc500_same_p50_s'] * 1e3:.1f} ms (body "
        f"{m['alloc500_body_mb']:.1f} MB); the in-process allocation alone (no loading) "
        f"{m['alloc500_in_process_solve_p50_s'] * 1e3:.0f} ms, HTTP "
        f"{m['alloc500_new_p50_s'] / m['alloc500_in_process_solve_p50_s']:.1f}x that"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.bench_service [--requests N]``: the figures as text."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_service", description=TITLE)
    p.add_argument("--requests", type=int, default=REQUESTS, help="requests (default 20,000)")
    p.add_argument("--accounts", type=int, default=ACCOUNTS, help="distinct accounts (64)")
    p.add_argument("--clients", type=int, default=CLIENTS, help="concurrent clients (32)")
    p.add_argument("--rate", type=float, default=RATE, help="paced requests/s (300)")
    args = p.parse_args(argv)
    m = measure(args.requests, args.accounts, args.clients, args.rate)
    for k, v in m.items():
        print(f"{k:>28}: {v:.4g}" if isinstance(v, float) else f"{k:>28}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
