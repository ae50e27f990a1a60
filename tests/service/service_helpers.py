"""A real ``trimtab serve`` process on 127.0.0.1 for the service tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scenarios.service.store import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "scenarios" / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario_doc(name: str = "ria_q1_2024") -> dict:
    """A shipped example as a JSON document (dates as ISO strings)."""
    with open(EXAMPLES / f"{name}.toml", "rb") as fh:
        return json.loads(json.dumps(tomllib.load(fh), default=str))


@dataclass
class Server:
    """A running service: its URL, database, keys and log."""

    proc: subprocess.Popen
    url: str
    db: Path
    log: Path
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, tenant: str | None = "desk1", **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"} if tenant else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0, **kw)

    def stop(self, sig: int = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(10)
        return self.proc.returncode


def start(tmp: Path, *args: str, tenants=("desk1", "desk2"), db: Path | None = None) -> Server:
    """Start ``trimtab serve`` on a free port with keys for ``tenants``; wait for health."""
    db = db or tmp / "service.db"
    store = Store(db)
    keys = {t: store.create_key(t) for t in tenants}
    port = free_port()
    log = tmp / f"serve-{port}.log"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "scenarios.cli", "serve", "--port", str(port), "--db", str(db)]
    fh = log.open("wb")
    proc = subprocess.Popen([*cmd, *args], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"trimtab serve exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=1.0).status_code == 200:
                return Server(proc, url, db, log, keys)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"trimtab serve did not answer in 60 s: {log.read_text()}")
