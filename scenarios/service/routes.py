"""The ``/v1`` endpoints (see :mod:`scenarios.service.app` for the table)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tomllib
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from optimizer.errors import InputError
from scenarios.service import ops
from scenarios.service.documents import body_text, check_no_files
from scenarios.service.errors import ServiceError
from scenarios.service.schemas import BatchJob, errors, json_body

PARQUET_MAGIC = b"PAR1"


def _job_view(row: dict[str, Any]) -> dict[str, Any]:
    import json

    return BatchJob(
        id=row["id"],
        status=row["status"],
        progress={"done": int(row["done"]), "failed": int(row["failed"])},
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        error=row["error"],
        summary=json.loads(row["summary"]) if row["summary"] else None,
    ).model_dump()


def add_routes(app: FastAPI, svc) -> None:
    """Register the endpoints of ``svc`` (a :class:`scenarios.service.app.Service`)."""
    common = errors(401, 409, 413, 422, 503, 504)

    async def sync(request: Request, fn, *args) -> Response:
        body = await request.body()

        def work():
            return fn(svc.cache, svc.cache.scenario_of_json(body), *args)

        async def compute():
            return 200, await svc.solve(work)

        return await svc.answer(request, body, compute)

    @app.get("/v1/health", tags=["operations"])
    async def health() -> dict[str, Any]:
        """Liveness: no key needed."""
        return {"status": "ok", "pid": os.getpid()}

    @app.post(
        "/v1/allocate",
        tags=["sync"],
        openapi_extra=json_body("A scenario document: the model allocates under the policy"),
        responses=common,
    )
    async def allocate(request: Request) -> Response:
        """The allocation: weights, analytics, checks, binding and relaxed constraints."""
        return await sync(request, ops.allocate)

    @app.post(
        "/v1/rebalance",
        tags=["sync"],
        openapi_extra=json_body("A scenario document with holdings (the target: its model)"),
        responses=common,
    )
    async def rebalance(request: Request) -> Response:
        """Orders (``trimtab.orders/1``; ``/2`` with tax lots) to the target, as `trimtab rebalance`."""
        return await sync(request, ops.rebalance)

    @app.post(
        "/v1/frontier",
        tags=["sync"],
        openapi_extra=json_body("A scenario document"),
        responses=common,
    )
    async def frontier(
        request: Request, points: int = Query(50, ge=2, le=1000, description="points")
    ) -> Response:
        """The efficient frontier under the scenario's constraints."""
        return await sync(request, ops.frontier, points)

    @app.post(
        "/v1/scenarios/run",
        tags=["sync"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "A scenario file (TOML text)",
                "content": {"application/toml": {"schema": {"type": "string"}}},
            }
        },
        responses=common,
    )
    async def run(request: Request) -> Response:
        """The run of a TOML scenario: report.json's content (as `trimtab run --json`)."""
        body = await request.body()

        def work():
            return ops.run(svc.cache, svc.cache.scenario(body_text(body)))

        async def compute():
            return 200, await svc.solve(work)

        return await svc.answer(request, body, compute)

    @app.post(
        "/v1/batches",
        tags=["batches"],
        status_code=202,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["scenario", "accounts"],
                            "properties": {
                                "scenario": {"type": "string", "format": "binary"},
                                "accounts": {"type": "string", "format": "binary"},
                            },
                        }
                    }
                },
            }
        },
        responses=errors(401, 409, 413, 422),
    )
    async def submit(request: Request) -> Response:
        """Submit a book: ``scenario`` (TOML with ``[batch]``) and ``accounts`` (CSV or Parquet)."""
        svc.tenant(request)
        scenario, accounts = await _parts(request)
        fingerprint = hashlib.sha256(scenario).digest() + hashlib.sha256(accounts).digest()

        async def compute():
            job = await svc.solve(_store_job, svc, request.state.tenant, scenario, accounts)
            return 202, job

        return await svc.answer(request, fingerprint, compute)

    @app.get("/v1/batches/{job_id}", tags=["batches"], responses=errors(401, 404))
    async def job(request: Request, job_id: str) -> dict[str, Any]:
        """The job's status and progress (another tenant's job is a 404)."""
        return _job_view(_job_of(svc, request, job_id))

    @app.get("/v1/batches/{job_id}/orders", tags=["batches"], responses=errors(401, 404, 409))
    async def orders(
        request: Request,
        job_id: str,
        format: str = Query("json", pattern="^(json|csv)$", description="json or csv"),
    ) -> Response:
        """The orders of a finished job: one row per account and asset (trimtab.orders/1)."""
        row = _job_of(svc, request, job_id)
        if row["status"] != "done":
            raise ServiceError(
                "conflict",
                f"batch {job_id} is {row['status']}"
                + (f" ({row['error']})" if row["error"] else "")
                + ": its orders are there once GET /v1/batches/{id} says done",
                path="job_id",
            )
        out = os.path.join(row["folder"], "out")
        if format == "csv":
            return FileResponse(os.path.join(out, "orders.csv"), media_type="text/csv")
        content = await svc.solve(_orders_json, out, job_id)
        return JSONResponse(content)


def _job_of(svc, request: Request, job_id: str) -> dict[str, Any]:
    tenant = svc.tenant(request)
    row = svc.store.job(job_id, tenant)
    if row is None:
        raise ServiceError(
            "not_found",
            f"batch {job_id!r}: not found (no batch of yours has this id)",
            path="job_id",
        )
    return row


async def _parts(request: Request) -> tuple[bytes, bytes]:
    """The ``scenario`` and ``accounts`` parts of a multipart body."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise ServiceError(
            "input",
            "body: send multipart/form-data with two parts, scenario (a TOML file with a "
            "[batch] section) and accounts (CSV or Parquet)",
            path="body",
        )
    try:
        form = await request.form(max_files=2, max_fields=2)
    except Exception as exc:  # a malformed multipart body is bad input
        if type(exc).__name__ == "BodyTooLarge":
            raise
        raise ServiceError(
            "input", f"body: unreadable multipart body: {exc}", path="body"
        ) from None
    out = []
    for name in ("scenario", "accounts"):
        part = form.get(name)
        if part is None:
            raise ServiceError(
                "input", f"{name}: missing part (give scenario and accounts)", path=name
            )
        out.append(await part.read() if hasattr(part, "read") else str(part).encode())
    return out[0], out[1]


def _store_job(svc, tenant: str, scenario: bytes, accounts: bytes) -> dict[str, Any]:
    """Check the scenario, store both files, insert the job row and queue it."""
    import uuid

    text = body_text(scenario, "scenario")
    try:
        check_no_files(tomllib.loads(text))
    except tomllib.TOMLDecodeError:
        pass  # the loader names the line and column
    scn = svc.cache.scenario(text)
    if scn.batch is None:
        raise InputError(
            "request.toml: batch: missing: a batch scenario needs a [batch] section with its "
            "[[batch.models]] (the accounts file names them)"
        )
    if not accounts.strip():
        raise ServiceError("input", "accounts: empty file", path="accounts")
    jid = uuid.uuid4().hex
    folder = svc.cfg.data_dir / "jobs" / jid
    folder.mkdir(parents=True)
    try:
        (folder / "scenario.toml").write_text(text, encoding="utf-8")
        suffix = "parquet" if accounts[:4] == PARQUET_MAGIC else "csv"
        (folder / f"accounts.{suffix}").write_bytes(accounts)
        svc.store.add_job(tenant, folder, jid)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    svc.jobs.submit(jid, folder)
    row = svc.store.job(jid, tenant)
    return _job_view(row)


def _orders_json(out: str, job_id: str) -> dict[str, Any]:
    import pandas as pd

    from optimizer.allocation import to_jsonable

    frame = pd.read_parquet(os.path.join(out, "orders.parquet"))
    return to_jsonable(
        {"schema": "trimtab.orders/1", "batch": job_id, "orders": frame.to_dict(orient="records")}
    )
