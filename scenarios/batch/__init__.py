"""Many accounts at once: ``trimtab batch SCENARIO --accounts FILE --out DIR``.

An adviser platform rebalances thousands of accounts toward a few model
portfolios. :func:`run_batch` reads the accounts file in partitions of whole
accounts (:mod:`~scenarios.batch.accounts`), plans each account on the workers
of a Dask distributed cluster, a ``LocalCluster`` on this machine by default
(:mod:`~scenarios.batch.run`, :mod:`~scenarios.batch.work`), and publishes the
orders of every account, a status per account, the pooled orders per asset, a
summary and a manifest (:mod:`~scenarios.batch.outputs`). An account that fails
never stops the batch: its status row says why, naming the culprit.
:mod:`~scenarios.batch.example` generates the ``adviser_book`` example.

>>> from scenarios.batch import run_batch                      # doctest: +SKIP
>>> res = run_batch("book.toml", "accounts.parquet", out="out")  # doctest: +SKIP
"""

from __future__ import annotations

from scenarios.batch.run import IN_PROCESS, PARTITION_SIZE, BatchResult, run_batch

__all__ = ["IN_PROCESS", "PARTITION_SIZE", "BatchResult", "run_batch"]
