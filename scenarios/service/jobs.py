"""Batch jobs: a submitted book of accounts runs in the background, its state in the database.

``POST /v1/batches`` stores the scenario (TOML) and the accounts file (CSV or
Parquet) under ``<data>/jobs/<id>/`` and inserts the job row (``queued``); a
:class:`JobRunner` thread of the accepting process runs them one at a time
through :func:`run_batch_job` (the one call into :mod:`scenarios.batch`),
updating the row: ``queued -> running -> done | failed`` with the accounts
done and failed so far. The outputs are published whole into ``out/`` (the
batch's own folder: orders, status, pooled, summary, manifest), and the
row says where.

Operations: a graceful shutdown marks the process's unfinished jobs
``interrupted``; on start, jobs left ``queued`` or ``running`` by a process
that is gone (killed) are marked ``failed`` with the reason "server restarted
while the batch ran: submit it again" (:meth:`Store.recover`). A job is
never lost silently, and never resumed behind the client's back.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

from scenarios.service.store import Store, now

#: Seconds between progress updates of a running job's row.
PROGRESS_EVERY = 0.5


def run_batch_job(
    scenario: Path,
    accounts: Path,
    out: Path,
    *,
    scheduler: str | None,
    workers: int | None,
    progress,
) -> dict[str, Any]:
    """Run one batch with :func:`scenarios.batch.run_batch`; returns its summary.

    Parameters
    ----------
    scenario, accounts : pathlib.Path
        The stored scenario (with ``[batch]``) and accounts file.
    out : pathlib.Path
        Output folder (published whole).
    scheduler : str or None
        ``"in-process"`` (no Dask), a ``tcp://HOST:PORT`` scheduler, or None
        (a LocalCluster of ``workers`` processes per batch).
    workers : int or None
        Workers of the LocalCluster.
    progress : callable(done, failed)
        Called as accounts complete.
    """
    from scenarios.batch import run_batch

    res = run_batch(
        scenario, accounts, out=out, scheduler=scheduler, workers=workers, progress=progress
    )
    return dict(res.summary)


class JobRunner:
    """One daemon thread that runs this process's queued jobs, in order.

    Parameters
    ----------
    store : Store
    scheduler, workers
        As for :func:`run_batch_job`.
    """

    def __init__(self, store: Store, *, scheduler: str | None, workers: int | None) -> None:
        self.store = store
        self.scheduler = scheduler
        self.workers = workers
        self._queue: queue.Queue[tuple[str, Path] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.current: str | None = None

    def submit(self, job_id: str, folder: Path) -> None:
        """Queue a stored job (its row already inserted)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="trimtab-jobs", daemon=True)
            self._thread.start()
        self._queue.put((job_id, folder))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self.current = item[0]
            try:
                self._run(*item)
            finally:
                self.current = None

    def _run(self, job_id: str, folder: Path) -> None:
        from scenarios.service.errors import from_exception

        if not self.store.set_job(
            job_id, when=("queued",), status="running", started=now(), pid=os.getpid()
        ):
            return  # interrupted or failed meanwhile
        last = [0.0]

        def progress(done: int, failed: int) -> None:
            t = time.monotonic()
            if t - last[0] >= PROGRESS_EVERY:
                last[0] = t
                self.store.set_job(job_id, when=("running",), done=int(done), failed=int(failed))

        accounts = next(folder.glob("accounts.*"))
        try:
            summary = run_batch_job(
                folder / "scenario.toml",
                accounts,
                folder / "out",
                scheduler=self.scheduler,
                workers=self.workers,
                progress=progress,
            )
        except BaseException as exc:  # the job's failure, recorded
            err = from_exception(exc)
            self.store.set_job(
                job_id,
                when=("running",),
                status="failed",
                error=f"{err.kind}: {err.message}",
                finished=now(),
            )
            if not isinstance(exc, Exception):
                raise
            return
        counts = summary.get("accounts", {})
        self.store.set_job(
            job_id,
            when=("running",),
            status="done",
            done=int(counts.get("ok", 0)),
            failed=int(counts.get("infeasible", 0)) + int(counts.get("failed", 0)),
            summary=summary,
            finished=now(),
        )
