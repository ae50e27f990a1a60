"""The FastAPI application: routes, keys, limits, idempotency, request ids and logs.

:func:`create_app` builds one application around a :class:`ServiceConfig`
(the database, the data folder, the limits). Endpoints (all under ``/v1``;
every one but ``/v1/health`` needs ``Authorization: Bearer <key>``):

==========================  =====================================================
POST /v1/allocate           scenario document (JSON) -> the allocation
POST /v1/rebalance          scenario document with holdings -> trimtab.orders/1
POST /v1/frontier?points=N  scenario document -> the efficient frontier
POST /v1/scenarios/run      a TOML scenario (text) -> the run's report (report.json)
POST /v1/batches            multipart: scenario (TOML) + accounts (CSV/Parquet) -> job
GET  /v1/batches/{id}       the job's status and progress
GET  /v1/batches/{id}/orders  its orders (JSON, or ``?format=csv``)
GET  /v1/health             no key
==========================  =====================================================

Solves run in a pool of worker threads with a time limit (504 naming it); the
request body has a size limit (413). Each response carries ``X-Request-ID``;
each request is logged as one JSON line (request id, method, path, status,
milliseconds, tenant: never the key).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from scenarios.service import errors as E
from scenarios.service.defaults import MAX_BODY, SOLVE_TIMEOUT
from scenarios.service.documents import DocumentCache
from scenarios.service.jobs import JobRunner
from scenarios.service.store import Store

#: Environment variable that carries the configuration to uvicorn's worker processes.
CONFIG_ENV = "TRIMTAB_SERVICE_CONFIG"

try:  # a faster encoder for the responses (about 0.07 ms less per 12-asset rebalance)
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; plain json still works
    orjson = None

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
log = logging.getLogger("trimtab.service")


@dataclass(frozen=True)
class ServiceConfig:
    """What a service process needs (JSON-able: uvicorn's workers get it by environment).

    Attributes
    ----------
    db : str
        SQLite file.
    data : str
        Folder of the batch jobs' files (default: ``<db>.data`` beside the database).
    max_body : int
        Largest request body, bytes.
    solve_timeout : float
        Seconds a synchronous solve may take.
    solve_threads : int
        Worker threads for solves, per process.
    batch_scheduler : str or None
        ``"in-process"`` (default), a Dask scheduler address, or None (a LocalCluster).
    batch_workers : int or None
        Workers of a LocalCluster.
    """

    db: str
    data: str = ""
    max_body: int = MAX_BODY
    solve_timeout: float = SOLVE_TIMEOUT
    solve_threads: int = 4
    batch_scheduler: str | None = "in-process"
    batch_workers: int | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.data) if self.data else Path(f"{self.db}.data")


def dumps(content: Any) -> bytes:
    """``content`` as compact JSON bytes (orjson when installed; the standard library's
    ``json`` for what orjson refuses, so any JSON-ready value encodes as before)."""
    if orjson is not None:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            pass
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


class JSONBody(JSONResponse):
    """A JSON response encoded by :func:`dumps`."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


class BodyTooLarge(Exception):
    """The request body went over the limit while it was read."""


class Service:
    """The state of one process: store, caches, solve pool, job runner."""

    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        self.store = Store(cfg.db)
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        (cfg.data_dir / "tmp").mkdir(exist_ok=True)
        self.cache = DocumentCache(tmp=cfg.data_dir / "tmp")
        self.pool = ThreadPoolExecutor(cfg.solve_threads, thread_name_prefix="trimtab-solve")
        self.jobs = JobRunner(self.store, scheduler=cfg.batch_scheduler, workers=cfg.batch_workers)

    async def solve(self, fn, *args) -> Any:
        """``fn(*args)`` in the solve pool, or a 504 ``limit`` error after the time limit."""
        limit = self.cfg.solve_timeout
        fut = asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        try:
            async with asyncio.timeout(limit):  # no extra task, unlike wait_for
                return await fut
        except TimeoutError:
            raise E.ServiceError(
                "limit",
                f"the solve took longer than the service's time limit of {limit:g} s "
                "(trimtab serve --solve-timeout): simplify the request (fewer assets or "
                "points) or ask the operator to raise the limit",
                path="solve_timeout",
            ) from None

    def tenant(self, request: Request) -> str:
        """The tenant of the request's key, or a 401 ``auth`` error."""
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if not header:
            raise E.ServiceError(
                "auth",
                "missing API key: send 'Authorization: Bearer <key>' (an operator creates "
                "keys with `trimtab keys create --name NAME`)",
                path="Authorization",
            )
        tenant = self.store.tenant_of(key.strip()) if scheme.lower() == "bearer" else None
        if tenant is None:
            raise E.ServiceError(
                "auth",
                "invalid or revoked API key: send 'Authorization: Bearer <key>' with a key "
                "from `trimtab keys create` that has not been revoked",
                path="Authorization",
            )
        request.state.tenant = tenant
        return tenant

    async def answer(self, request: Request, fingerprint: bytes, compute) -> Response:
        """Run ``compute()`` (a coroutine giving ``(status, content)``), idempotently.

        With an ``Idempotency-Key`` header: the first response of this tenant's key
        is stored (unless it was a server error) and given again for the same
        ``fingerprint``; another fingerprint under the key is a 422 naming it;
        a concurrent duplicate waits for the first and gets its response.
        """
        tenant = self.tenant(request)
        key = request.headers.get("idempotency-key")
        if key is None:
            return await self._respond(request, compute)
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            raise E.ServiceError(
                "input",
                "Idempotency-Key: use 1 to 255 printable ASCII characters without spaces "
                "(a UUID is a good key)",
                path="Idempotency-Key",
            )
        digest = hashlib.sha256(
            request.method.encode() + b" " + request.url.path.encode() + b"\n" + fingerprint
        ).hexdigest()
        row = await asyncio.to_thread(self.store.claim, tenant, key, digest)
        if row is None:
            try:
                resp = await self._respond(request, compute)
            except BaseException:
                await asyncio.to_thread(self.store.forget, tenant, key)
                raise
            if resp.status_code >= 500:
                await asyncio.to_thread(self.store.forget, tenant, key)
            else:
                await asyncio.to_thread(
                    self.store.remember, tenant, key, resp.status_code, bytes(resp.body)
                )
            return resp
        if row["body_sha256"] != digest:
            raise E.ServiceError(
                "input",
                f"Idempotency-Key {key!r} was used before with another request: a key "
                "names one request; use a new key for a new request",
                path="Idempotency-Key",
            )
        deadline = time.monotonic() + self.cfg.solve_timeout + 30.0
        while row is not None and row["state"] != "done" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            row = await asyncio.to_thread(self.store.idempotent, tenant, key)
        if row is None or row["state"] != "done":
            raise E.ServiceError(
                "conflict",
                f"Idempotency-Key {key!r}: the first request with this key is still running "
                "(or failed on the server): retry later",
                path="Idempotency-Key",
            )
        return Response(
            row["response"],
            status_code=int(row["status"]),
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )

    async def _respond(self, request: Request, compute) -> Response:
        try:
            status, content = await compute()
        except Exception as exc:  # every failure gets the one error body
            return error_response(request, exc)
        return JSONBody(content, status_code=status)


def error_response(request: Request, exc: BaseException) -> JSONResponse:
    """The JSON error response of any exception (no stack trace, ever)."""
    err = E.from_exception(exc)
    rid = getattr(request.state, "request_id", None)
    if err.kind == "internal":
        log.error(
            json.dumps({"event": "bug", "request_id": rid, "error": type(exc).__name__}),
            exc_info=exc,
        )
    headers = {"WWW-Authenticate": "Bearer"} if err.kind == "auth" else None
    return JSONBody(E.body(err, rid), status_code=err.status, headers=headers)


class RequestMiddleware:
    """Request ids, the body size limit and one JSON log line per request (pure ASGI)."""

    def __init__(self, app, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        headers = dict(scope.get("headers") or ())
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status, started = [500], [False]

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                status[0], started[0] = message["status"], True
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())],
                }
            await send(message)

        length = headers.get(b"content-length")
        try:
            too_big = length is not None and int(length) > self.max_body
        except ValueError:
            too_big = False
        if too_big:
            await self._too_large(scope, send_with_id, rid)
        else:
            seen = [0]

            async def receive_limited():
                message = await receive()
                if message["type"] == "http.request":
                    seen[0] += len(message.get("body", b""))
                    if seen[0] > self.max_body:
                        raise BodyTooLarge
                return message

            try:
                await self.app(scope, receive_limited, send_with_id)
            except Exception as exc:  # a bug, or the body over the limit while it was read
                if started[0]:
                    raise
                err = limit_error(self.max_body) if isinstance(exc, BodyTooLarge) else None
                if err is None:
                    log.error(json.dumps({"event": "bug", "request_id": rid}), exc_info=exc)
                    err = E.from_exception(exc)
                await JSONResponse(E.body(err, rid), status_code=err.status)(
                    scope, _no_body, send_with_id
                )
        record = {
            "request_id": rid,
            "method": scope["method"],
            "path": scope["path"],
            "status": status[0],
            "ms": round((time.perf_counter() - t0) * 1e3, 3),
            "tenant": state.get("tenant"),
            "pid": os.getpid(),
        }
        if log.isEnabledFor(logging.INFO):
            log.info(dumps(record).decode())

    async def _too_large(self, scope, send, rid: str) -> None:
        err = limit_error(self.max_body)
        resp = JSONResponse(E.body(err, rid), status_code=413)
        await resp(scope, _no_body, send)


async def _no_body():
    return {"type": "http.request", "body": b"", "more_body": False}


def limit_error(max_body: int) -> E.ServiceError:
    return E.ServiceError(
        "limit",
        f"the request body is over the service's limit of {max_body:,} bytes "
        "(trimtab serve --max-body): send a smaller request",
        path="body",
        status=413,
    )


def create_app(db_path: str | os.PathLike, **options: Any) -> FastAPI:
    """The service's FastAPI application.

    Parameters
    ----------
    db_path : str or os.PathLike
        The SQLite database (created when absent).
    **options
        The other fields of :class:`ServiceConfig` (``data``, ``max_body``,
        ``solve_timeout``, ``solve_threads``, ``batch_scheduler``, ``batch_workers``).

    Returns
    -------
    fastapi.FastAPI
    """
    svc = Service(ServiceConfig(db=str(db_path), **options))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        failed = svc.store.recover()
        if failed:
            log.warning(json.dumps({"event": "recovered", "jobs_failed": failed}))
        yield
        marked = svc.store.interrupt_mine()
        if marked:
            log.warning(json.dumps({"event": "shutdown", "jobs_interrupted": marked}))
        svc.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="trimtab",
        version="1",
        description=__doc__.split("\n\n")[0],
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = svc
    app.add_middleware(RequestMiddleware, max_body=svc.cfg.max_body)

    @app.exception_handler(BodyTooLarge)
    async def on_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(request, limit_error(svc.cfg.max_body))

    @app.exception_handler(E.ServiceError)
    async def on_service_error(request: Request, exc: E.ServiceError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "input"
        err = E.ServiceError(kind, f"{request.method} {request.url.path}: {exc.detail}")
        err.status = exc.status_code
        return JSONResponse(E.body(err, request.state.request_id), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ())]
        path = ".".join(loc[1:]) if len(loc) > 1 else (loc[0] if loc else None)
        err = E.ServiceError("input", f"{path}: {first.get('msg', 'invalid')}", path=path)
        return JSONResponse(E.body(err, request.state.request_id), status_code=422)

    from scenarios.service import routes

    routes.add_routes(app, svc)
    return app


def app_from_env() -> FastAPI:
    """The application of the configuration in :data:`CONFIG_ENV` (uvicorn's workers)."""
    cfg = json.loads(os.environ[CONFIG_ENV])
    db = cfg.pop("db")
    return create_app(db, **cfg)


def config_env(cfg: ServiceConfig) -> str:
    """:data:`CONFIG_ENV`'s value for ``cfg``."""
    return json.dumps(asdict(cfg))


def setup_logging(level: int = logging.INFO) -> None:
    """One JSON line per record on stderr (the request log)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
