"""Benchmark 12: the HTTP service under load (``trimtab serve`` on 127.0.0.1).

A real uvicorn (2 worker processes, the machine's 2 cores; not pinned) with a fresh SQLite
database and key. The load generator is a separate process pinned to the machine's last CPU
(``os.sched_setaffinity``; so it shares that core with the service, and never takes more than
it): one asyncio loop (uvloop when installed), 32 keep-alive connections, pre-encoded HTTP/1.1
requests, responses read minimally (status line, Content-Length), every status counted and
every 10th 200 body parsed as ``trimtab.orders/1``. Beside the latencies each run reports the
service's CPU seconds per request (``/proc``: its processes' user plus system time over the
run, over the requests; a figure that holds while the machine is shared) and the load
generator's own.

- ``POST /v1/rebalance`` of a 12-asset account (policy model, 10 bps costs, drifted holdings),
  32 concurrent clients sending ``--requests`` requests (default 20,000) paced at ``--rate``
  (default 300 requests/s together; latency from each request's time slot, so a late
  wake-up of the generator's millisecond timers counts against the service: ``late_*`` says
  by how much): p50, p99, errors; goals p50 < 5 ms, p99 < 30 ms, 0 errors. Then the capacity: the same clients
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
import asyncio
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
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
        self.generator = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
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
        self.generator.shutdown(cancel_futures=True)
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` and its living descendants (Linux).

    Read from ``/proc``: a figure that holds while the machine is shared (NaN elsewhere).
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, todo, seen = 0.0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", "rb") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, IndexError, ValueError):
            if p == pid:
                return float("nan")
    return total


def _check_orders(data: bytes) -> str | None:
    """None when ``data`` is a ``trimtab.orders/1`` document, else what is wrong."""
    try:
        doc = json.loads(data)
    except ValueError:
        return f"200 with a body that is not JSON: {data[:200]!r}"
    if not isinstance(doc, dict) or doc.get("schema") != "trimtab.orders/1":
        return f"200 without trimtab.orders/1: {data[:200]!r}"
    if not isinstance(doc.get("orders"), list):
        return f"200 without an orders list: {data[:200]!r}"
    return None


async def _drive(
    port: int,
    requests: list[bytes],
    count: int,
    clients: int,
    rate: float | None,
    check_every: int,
) -> dict:
    """``count`` requests over ``clients`` keep-alive connections (the load generator's loop).

    Each client takes the next request index; with ``rate`` request ``i`` waits for its
    slot ``start + i / rate`` and its latency counts from the slot (so queueing shows,
    and a late wake-up of this loop, millisecond timers, counts against the service too:
    ``late_*`` report it). Responses are read minimally (status line, Content-Length);
    every status is counted, and every ``check_every``-th 200 body is parsed as orders.
    """
    lat = np.zeros(count)
    late = np.zeros(count)
    statuses: dict[int, int] = {}
    errors: list[str] = []
    nxt = iter(range(count))
    start = time.perf_counter() + 0.1

    async def connect():
        return await asyncio.open_connection("127.0.0.1", port)

    async def client() -> None:
        reader, writer = await connect()
        for i in nxt:
            slot = None
            if rate:
                slot = start + i / rate
                delay = slot - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            t0 = time.perf_counter()
            if slot is not None:
                late[i] = t0 - slot
                t0 = slot
            try:
                writer.write(requests[i % len(requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                at = head.lower().find(b"content-length:")
                if at < 0:
                    raise ValueError("a response without Content-Length")
                length = int(head[at + 15 : head.index(b"\r\n", at)])
                data = await reader.readexactly(length)
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                errors.append(type(exc).__name__)
                statuses[-1] = statuses.get(-1, 0) + 1
                writer.close()
                reader, writer = await connect()
                lat[i] = time.perf_counter() - t0
                continue
            lat[i] = time.perf_counter() - t0
            statuses[status] = statuses.get(status, 0) + 1
            if status != 200:
                errors.append(f"{status}: {data[:200]!r}")
            elif i % check_every == 0:
                wrong = _check_orders(data)
                if wrong:
                    errors.append(wrong)
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    return {
        "p50_s": float(np.percentile(lat, 50)),
        "p99_s": float(np.percentile(lat, 99)),
        "throughput": count / wall,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "late_p50_s": float(np.percentile(late, 50)) if rate else 0.0,
        "late_p99_s": float(np.percentile(late, 99)) if rate else 0.0,
    }


def _generator(
    port: int, requests: list[bytes], count: int, clients: int, rate, check_every: int
) -> dict:
    """The load generator process: pinned to the last CPU, then :func:`_drive`."""
    pinned = None
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[-1]})
        pinned = sorted(os.sched_getaffinity(0))[-1]
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    t0 = time.process_time()
    out = run(_drive(port, requests, count, clients, rate, check_every))
    out["client_cpu_per_request_s"] = (time.process_time() - t0) / count
    out["client_cpu"] = pinned
    return out


def load(
    svc: Service,
    bodies: list[bytes],
    requests: int,
    clients: int,
    rate: float | None = None,
    check_every: int = 10,
) -> dict:
    """``requests`` POST /v1/rebalance over ``clients`` connections: latencies, errors, CPU.

    The load generator runs in its own process (:func:`_generator`: asyncio, pre-encoded
    requests, pinned to the machine's last CPU; the service is not pinned). With ``rate``
    (requests per second, all clients together) each request has its time slot (open loop)
    and its latency counts from the slot; without it each client sends its next request as
    soon as the last is answered (closed loop: the throughput is the service's capacity).
    ``server_cpu_per_request_s``: the service's processes' CPU seconds over the run, per
    request (meaningful on a shared machine too).
    """
    head = (
        "POST /v1/rebalance HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {svc.key}\r\nContent-Type: application/json\r\n"
    ).encode()
    wire = [head + b"Content-Length: %d\r\n\r\n" % len(b) + b for b in bodies]
    cpu0 = _cpu_seconds(svc.proc.pid)
    out = svc.generator.submit(
        _generator, svc.port, wire, requests, clients, rate, check_every
    ).result()
    out["server_cpu_per_request_s"] = (_cpu_seconds(svc.proc.pid) - cpu0) / requests
    return out


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
            "overhead_cpu_s": paced["server_cpu_per_request_s"] - plan,
            "loadavg": _loadavg(),
            **{f"alloc500_{k}": v for k, v in alloc.items()},
            "alloc500_ratio": alloc["new_p50_s"] / alloc["in_process_p50_s"],
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _loadavg() -> str:
    """The machine's load averages (1, 5, 15 minutes), or "" where unknown."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


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
        f"{m['paced_errors']} of {n:,}, service CPU "
        f"{m['paced_server_cpu_per_request_s'] * 1e3:.2f} ms per request (load generator "
        f"{m['paced_client_cpu_per_request_s'] * 1e3:.2f} ms; load average {m['loadavg']}); "
        f"capacity (closed loop, {CLIENTS} clients): "
        f"{m['capacity_throughput']:.0f}/s (goal >= 300); paced at {RATE / 3:.0f}/s: p50 "
        f"{m['light_p50_s'] * 1e3:.1f} ms, p99 {m['light_p99_s'] * 1e3:.1f} ms; overhead "
        "over an in-process "
        f"Rebalancer.plan ({m['in_process_plan_s'] * 1e3:.2f} ms): "
        f"{m['overhead_p50_s'] * 1e3:.2f} ms at p50, {m['overhead_cpu_s'] * 1e3:.2f} ms of "
        "CPU per request; cold (every account new, closed loop): "
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
        print(f"{k:>32}: {v:.4g}" if isinstance(v, float) else f"{k:>32}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
