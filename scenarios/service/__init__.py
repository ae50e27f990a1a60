"""The HTTP service: ``trimtab serve`` (FastAPI and uvicorn, SQLite job store, API keys).

Layout: :mod:`~scenarios.service.app` (the application, middleware, keys,
limits, idempotency), :mod:`~scenarios.service.routes` (the ``/v1``
endpoints), :mod:`~scenarios.service.ops` (what each synchronous endpoint
computes, with the engine's functions), :mod:`~scenarios.service.documents`
(JSON and TOML scenario documents), :mod:`~scenarios.service.errors` (the one
error body), :mod:`~scenarios.service.store` (SQLite), :mod:`~scenarios.service.jobs`
(batch jobs in the background), :mod:`~scenarios.service.schemas` (OpenAPI
shapes) and :mod:`~scenarios.service.commands` (``trimtab serve`` and
``trimtab keys``). Nothing here imports FastAPI until the application is made,
so ``trimtab --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(db_path, **options: Any):
    """:func:`scenarios.service.app.create_app` (imported on first use)."""
    from scenarios.service.app import create_app as make

    return make(db_path, **options)
