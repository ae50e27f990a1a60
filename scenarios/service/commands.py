"""``trimtab serve`` and ``trimtab keys``: their arguments and what they do.

Imports nothing heavy at module level: FastAPI and uvicorn are imported when
``serve`` runs, so ``trimtab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

#: The database used when ``--db`` is not given.
DEFAULT_DB = "trimtab-service.db"


def add_serve(sp: argparse.ArgumentParser) -> None:
    """The arguments of ``trimtab serve``."""
    from scenarios.service.defaults import MAX_BODY, SOLVE_TIMEOUT

    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sp.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
    sp.add_argument("--db", default=DEFAULT_DB, metavar="PATH", help=f"SQLite file ({DEFAULT_DB})")
    sp.add_argument("--data", metavar="DIR", help="batch jobs' files (default: <db>.data)")
    sp.add_argument(
        "--max-body",
        type=int,
        default=MAX_BODY,
        metavar="BYTES",
        help=f"largest request body, 413 above (default {MAX_BODY:,})",
    )
    sp.add_argument(
        "--solve-timeout",
        type=float,
        default=SOLVE_TIMEOUT,
        metavar="SECONDS",
        help=f"time limit of one solve, 504 beyond (default {SOLVE_TIMEOUT:g})",
    )
    sp.add_argument(
        "--solve-threads", type=int, default=4, metavar="N", help="solve threads per process (4)"
    )
    sp.add_argument(
        "--batch-scheduler",
        default="in-process",
        metavar="ADDRESS",
        help="where batches run: in-process (default), local (a Dask LocalCluster per "
        "batch) or tcp://HOST:PORT",
    )
    sp.add_argument(
        "--batch-workers", type=int, metavar="N", help="workers of a local Dask cluster"
    )


def add_keys(sp: argparse.ArgumentParser) -> None:
    """The arguments of ``trimtab keys {create,revoke,list}``."""
    sp.add_argument("action", choices=("create", "revoke", "list"), help="what to do")
    sp.add_argument("--name", help="create: the tenant's name (e.g. desk1)")
    sp.add_argument("--id", dest="key_id", help="revoke: the key id (from `keys list`)")
    sp.add_argument("--db", default=DEFAULT_DB, metavar="PATH", help=f"SQLite file ({DEFAULT_DB})")
    sp.add_argument("--json", action="store_true", help="JSON on stdout")


def cmd_serve(args) -> int:
    """Run the service under uvicorn until interrupted (graceful shutdown on SIGTERM/SIGINT)."""
    from optimizer.errors import InputError

    for flag, value, low in (
        ("--workers", args.workers, 1),
        ("--port", args.port, 0),
        ("--max-body", args.max_body, 1),
        ("--solve-threads", args.solve_threads, 1),
    ):
        if value < low:
            raise InputError(f"{flag} {value}: must be >= {low}")
    if not args.solve_timeout > 0:
        raise InputError(f"--solve-timeout {args.solve_timeout}: must be > 0 seconds")
    import uvicorn

    from scenarios.service.app import CONFIG_ENV, ServiceConfig, config_env, setup_logging
    from scenarios.service.store import Store

    scheduler = None if args.batch_scheduler == "local" else args.batch_scheduler
    cfg = ServiceConfig(
        db=os.path.abspath(args.db),
        data=os.path.abspath(args.data) if args.data else "",
        max_body=args.max_body,
        solve_timeout=args.solve_timeout,
        solve_threads=args.solve_threads,
        batch_scheduler=scheduler,
        batch_workers=args.batch_workers,
    )
    Store(cfg.db)  # the tables, once, before the workers start
    os.environ[CONFIG_ENV] = config_env(cfg)
    setup_logging()
    uvicorn.run(
        "scenarios.service.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # httptools and uvloop (uvicorn's "standard" extras, dependencies of trimtab) cut the
        # service's CPU per 12-asset rebalance from 2.27 to 1.85 ms; pure Python otherwise
        http="httptools" if _installed("httptools") else "h11",
        loop="uvloop" if _installed("uvloop") else "asyncio",
        access_log=False,
        timeout_graceful_shutdown=max(args.solve_timeout, 5.0),
        log_level="warning",
    )
    return 0


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def cmd_keys(args) -> int:
    """Create (print the key once), revoke or list API keys."""
    from optimizer.errors import InputError
    from scenarios.service.store import Store

    store = Store(args.db)
    if args.action == "create":
        if not args.name:
            raise InputError("keys create: give --name (the tenant's name, e.g. desk1)")
        key = store.create_key(args.name)
        if args.json:
            print(json.dumps({"name": args.name, "key": key}))
        else:
            print(key)
            print(
                f"the key of {args.name!r}: shown once, only its hash is stored in {args.db}; "
                "send it as 'Authorization: Bearer <key>'",
                file=sys.stderr,
            )
        return 0
    if args.action == "revoke":
        if not args.key_id:
            raise InputError("keys revoke: give --id KEY_ID (see `trimtab keys list`)")
        info = store.revoke_key(args.key_id)
        print(f"revoked key {info.key_id} of {info.tenant} at {info.revoked}")
        return 0
    keys = store.list_keys()
    if args.json:
        print(json.dumps([k.__dict__ for k in keys]))
    else:
        print(f"{'id':<14}{'name':<20}{'created':<34}revoked")
        for k in keys:
            print(f"{k.key_id:<14}{k.tenant:<20}{k.created:<34}{k.revoked or '-'}")
    return 0
