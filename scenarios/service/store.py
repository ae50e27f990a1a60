"""The service's SQLite database: API keys, jobs, idempotency keys.

One file (WAL mode, so several worker processes read while one writes; a
busy timeout so writers wait their turn), one connection per thread, every
change in one transaction: a killed process leaves no half-written row.

Tables::

    api_keys     key_id (public, in the key), tenant (the key's name), salt,
                 hash = HMAC-SHA256(salt, secret) (the key itself is never stored),
                 created, revoked (UTC ISO timestamps)
    jobs         id, tenant, status (queued | running | done | failed | interrupted),
                 done, failed (accounts so far), error, created, started, finished,
                 pid (the process running it), folder (its files), summary (JSON)
    idempotency  (tenant, key) UNIQUE, body_sha256, state (pending | done), status,
                 response (the first response's body), pid, created

Keys look like ``tt_<key_id>_<secret>``: the key id finds the row, the secret
(32 random bytes) is checked against the salted hash in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer.allocation import to_jsonable
from optimizer.errors import InputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    salt TEXT NOT NULL,
    hash TEXT NOT NULL,
    created TEXT NOT NULL,
    revoked TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    pid INTEGER,
    folder TEXT NOT NULL,
    summary TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    response BLOB,
    pid INTEGER NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
);
"""

#: Statuses a job never leaves.
FINAL = ("done", "failed", "interrupted")
#: The reason a job left running by a process that died is failed with.
RESTARTED = "server restarted while the batch ran: submit it again"
#: The reason a job running at a graceful shutdown is marked interrupted with.
SHUT_DOWN = "the server shut down while the batch ran: submit it again"


def now() -> str:
    """The current UTC time, ISO 8601 with microseconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists on this machine."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class KeyInfo:
    """A stored API key (never the key itself)."""

    key_id: str
    tenant: str
    created: str
    revoked: str | None


class Store:
    """The database at ``path`` (created with its tables when absent).

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise InputError(f"--db {self.path}: is a folder; give the database file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--db {self.path}: cannot create its folder: {exc}") from None
        self._local = threading.local()
        self.connection().executescript(SCHEMA)  # IF NOT EXISTS: safe from every process

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (WAL, busy timeout 30 s, autocommit: see :meth:`tx`)."""
        con = getattr(self._local, "con", None)
        if con is None:
            try:
                con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            except sqlite3.Error as exc:
                raise InputError(f"--db {self.path}: cannot open the database: {exc}") from None
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=ON")
            self._local.con = con
        return con

    def tx(self) -> _Transaction:
        """``with store.tx() as con:``: one ``BEGIN IMMEDIATE`` transaction, committed or rolled back."""
        return _Transaction(self.connection())

    def read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """Rows of one query (autocommit read)."""
        return self.connection().execute(sql, args).fetchall()

    # ------------------------------------------------------------------------- keys

    def create_key(self, tenant: str) -> str:
        """Store a new key for ``tenant`` and return it (the only time it is seen).

        Raises
        ------
        InputError
            An empty name or one with characters other than letters, digits, ``-_.``.
        """
        name = str(tenant).strip()
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
            raise InputError(
                f"--name {tenant!r}: give 1 to 64 letters, digits, '-', '_' or '.' "
                "(the tenant's name, e.g. desk1)"
            )
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        with self.tx() as con:
            con.execute(
                "INSERT INTO api_keys (key_id, tenant, salt, hash, created) VALUES (?,?,?,?,?)",
                (key_id, name, salt, _digest(salt, secret), now()),
            )
        return f"tt_{key_id}_{secret}"

    def revoke_key(self, key_id: str) -> KeyInfo:
        """Revoke a key by its id (the part after ``tt_``, as ``keys list`` shows it).

        Raises
        ------
        InputError
            No such key id (the ids there are named by ``trimtab keys list``).
        """
        kid = str(key_id).strip()
        if kid.startswith("tt_"):
            kid = kid[3:].split("_", 1)[0]
        with self.tx() as con:
            con.execute(
                "UPDATE api_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL",
                (now(), kid),
            )
        rows = self.read("SELECT * FROM api_keys WHERE key_id = ?", (kid,))
        if not rows:
            raise InputError(f"key id {key_id!r}: no such key (see `trimtab keys list`)")
        return _key_info(rows[0])

    def list_keys(self) -> list[KeyInfo]:
        """Every key, oldest first (ids, tenants, timestamps: no secrets)."""
        return [_key_info(r) for r in self.read("SELECT * FROM api_keys ORDER BY created")]

    def tenant_of(self, key: str) -> str | None:
        """The tenant of a valid, unrevoked key; None for anything else."""
        parts = key.split("_", 2) if isinstance(key, str) else []
        if len(parts) != 3 or parts[0] != "tt":
            return None
        rows = self.read(
            "SELECT tenant, salt, hash FROM api_keys WHERE key_id = ? AND revoked IS NULL",
            (parts[1],),
        )
        if not rows:
            return None
        row = rows[0]
        if not hmac.compare_digest(_digest(row["salt"], parts[2]), row["hash"]):
            return None
        return str(row["tenant"])

    # ------------------------------------------------------------------------- jobs

    def add_job(self, tenant: str, folder: Path, job_id: str | None = None) -> str:
        """Insert a queued job owned by this process; returns its id."""
        jid = job_id or uuid.uuid4().hex
        with self.tx() as con:
            con.execute(
                "INSERT INTO jobs (id, tenant, status, created, pid, folder) "
                "VALUES (?, ?, 'queued', ?, ?, ?)",
                (jid, tenant, now(), os.getpid(), str(folder)),
            )
        return jid

    def job(self, job_id: str, tenant: str) -> dict[str, Any] | None:
        """The job of this tenant (None for another tenant's or an unknown id)."""
        rows = self.read("SELECT * FROM jobs WHERE id = ? AND tenant = ?", (job_id, tenant))
        return dict(rows[0]) if rows else None

    def set_job(self, job_id: str, *, when: tuple[str, ...] = (), **fields: Any) -> bool:
        """Update a job's fields (only while its status is one of ``when``, if given)."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        sql = f"UPDATE jobs SET {cols} WHERE id = ?"
        args: list[Any] = [
            json.dumps(to_jsonable(v)) if isinstance(v, dict) else v for v in fields.values()
        ] + [job_id]
        if when:
            sql += f" AND status IN ({', '.join('?' * len(when))})"
            args += list(when)
        with self.tx() as con:
            return con.execute(sql, args).rowcount > 0

    def recover(self) -> int:
        """Fail the jobs left queued or running by a process that is gone; returns how many."""
        rows = self.read("SELECT id, pid FROM jobs WHERE status IN ('queued', 'running')")
        dead = [r["id"] for r in rows if not alive(r["pid"])]
        for jid in dead:
            self.set_job(
                jid,
                when=("queued", "running"),
                status="failed",
                error=RESTARTED,
                finished=now(),
            )
        return len(dead)

    def interrupt_mine(self) -> int:
        """Mark this process's queued or running jobs interrupted (a graceful shutdown)."""
        with self.tx() as con:
            return con.execute(
                "UPDATE jobs SET status = 'interrupted', error = ?, finished = ? "
                "WHERE pid = ? AND status IN ('queued', 'running')",
                (SHUT_DOWN, now(), os.getpid()),
            ).rowcount

    # ------------------------------------------------------------------------- idempotency

    def claim(self, tenant: str, key: str, body_sha256: str) -> sqlite3.Row | None:
        """Claim an idempotency key: None when this request now owns it, else the stored row.

        A pending row of a process that is gone is taken over (its request never answered).
        """
        with self.tx() as con:
            row = con.execute(
                "SELECT * FROM idempotency WHERE tenant = ? AND key = ?", (tenant, key)
            ).fetchone()
            if row is not None and row["state"] == "pending" and not alive(row["pid"]):
                con.execute("DELETE FROM idempotency WHERE tenant = ? AND key = ?", (tenant, key))
                row = None
            if row is not None:
                return row
            con.execute(
                "INSERT INTO idempotency (tenant, key, body_sha256, state, pid, created) "
                "VALUES (?, ?, ?, 'pending', ?, ?)",
                (tenant, key, body_sha256, os.getpid(), now()),
            )
        return None

    def remember(self, tenant: str, key: str, status: int, response: bytes) -> None:
        """Store the first response of an idempotency key."""
        with self.tx() as con:
            con.execute(
                "UPDATE idempotency SET state = 'done', status = ?, response = ? "
                "WHERE tenant = ? AND key = ?",
                (status, response, tenant, key),
            )

    def forget(self, tenant: str, key: str) -> None:
        """Release a key whose request failed on the server's side (it may be retried)."""
        with self.tx() as con:
            con.execute("DELETE FROM idempotency WHERE tenant = ? AND key = ?", (tenant, key))

    def idempotent(self, tenant: str, key: str) -> sqlite3.Row | None:
        """The stored row of an idempotency key, or None."""
        rows = self.read("SELECT * FROM idempotency WHERE tenant = ? AND key = ?", (tenant, key))
        return rows[0] if rows else None


class _Transaction:
    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, kind, exc, tb) -> None:
        self.con.execute("COMMIT" if kind is None else "ROLLBACK")


def _digest(salt: str, secret: str) -> str:
    return hmac.new(salt.encode(), secret.encode(), hashlib.sha256).hexdigest()


def _key_info(row: sqlite3.Row) -> KeyInfo:
    return KeyInfo(row["key_id"], row["tenant"], row["created"], row["revoked"])
