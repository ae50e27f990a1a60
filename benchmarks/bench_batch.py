"""Benchmark 11: a batch of accounts on Dask (``trimtab batch``), 2 workers vs 1 vs in-process.

The book is the ``adviser_book`` example's generator (:mod:`scenarios.batch.example`) at
``--accounts`` accounts (default 100,000) x 20 assets, 3 model portfolios, proportional costs
(5 to 20 bps), quantities at prices, with the per-account restrictions cleared (every account
shares one compiled structure). Three sides, each from the Parquet file in to the published
output folder (orders Parquet and CSV, status, pooled, summary, manifest):

- a ``LocalCluster`` of 2 worker processes (the default of ``trimtab batch``), goal: under
  120 s at 100,000 accounts;
- a ``LocalCluster`` of 1 worker process, goal: 2 workers at least 1.7x faster;
- in-process ``Rebalancer.plan`` per account (a sample of ``--sample`` accounts, one held
  rebalancer, untimed first plan; the mean): the cost per account a batch worker is compared with, goal:
  the batch's cost per account (wall time x workers / accounts) within 2x of it.

Beside them, a taxable book (issue 15): ``--taxable`` accounts (default 10,000; the same
generator, 1 to 3 tax lots per position from :func:`scenarios.batch.example.lots_frame`, a
``[tax]`` section of 37% / 20% / loss 20%) through the batch on 2 workers with ``--lots``
(tax-aware, lot-level sells) against the same accounts tax-blind (no ``--lots``): both wall
times are reported (no goal; the ratio is the cost of the lot-level solve).

The resident memory of the workers is printed beside: the largest sampled after any partition
(``peak_worker_rss_mb``; bounded by the partition size, not by the number of accounts) and the
kernel's high-water mark (``ru_maxrss``). The book is generated in a child process, so that
the driver, and the worker processes started from it, stay small.

Run alone: ``python -m benchmarks.bench_batch --accounts 20000``; in the suite:
``python -m benchmarks --only batch`` (``--quick``: 2,000 accounts).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import Config, Goal, Outcome, Row

TITLE = "11 batch: accounts on a Dask LocalCluster (2 workers vs 1 vs in-process)"
BENCH = "11 batch"
ACCOUNTS = 100_000
QUICK_ACCOUNTS = 2_000
SAMPLE = 2_000
#: Accounts of the taxable book (tax-aware vs tax-blind, 2 workers); ``--quick``: 1,000.
TAXABLE_ACCOUNTS = 10_000
QUICK_TAXABLE = 1_000


def make_book(folder: Path, n_accounts: int) -> tuple[Path, Path]:
    """The example's scenario and ``n_accounts`` accounts (no restrictions) in ``folder``."""
    from scenarios.batch.example import accounts_frame, scenario_text

    scenario = folder / "book.toml"
    scenario.write_text(scenario_text(), encoding="utf-8")
    frame = accounts_frame(n_accounts)
    frame["untradeable"] = None
    frame["restricted"] = None
    accounts = folder / "accounts.parquet"
    frame.to_parquet(accounts, index=False, row_group_size=200_000)
    return scenario, accounts


def make_taxable_book(folder: Path, n_accounts: int) -> tuple[Path, Path, Path]:
    """A taxable book in ``folder``: scenario with ``[tax]``, accounts, lots (Parquet)."""
    from scenarios.batch.example import accounts_frame, lots_frame, taxable_text

    scenario = folder / "taxable.toml"
    scenario.write_text(taxable_text(), encoding="utf-8")
    frame = accounts_frame(n_accounts)
    frame["untradeable"] = None
    frame["restricted"] = None
    accounts = folder / "taxable_accounts.parquet"
    frame.to_parquet(accounts, index=False, row_group_size=200_000)
    lots = folder / "taxable_lots.parquet"
    lots_frame(frame).to_parquet(lots, index=False, row_group_size=200_000)
    return scenario, accounts, lots


def measure_taxable(n_accounts: int, workers: int = 2) -> dict:
    """Wall seconds of the taxable book on ``workers`` processes: tax-aware vs tax-blind."""
    from scenarios.batch import run_batch

    folder = Path(tempfile.mkdtemp(prefix="trimtab-bench-taxable-"))
    try:
        code = (
            "import sys; from pathlib import Path; "
            "from benchmarks.bench_batch import make_taxable_book; "
            f"make_taxable_book(Path({str(folder)!r}), {int(n_accounts)})"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
        scenario = folder / "taxable.toml"
        accounts, lots = folder / "taxable_accounts.parquet", folder / "taxable_lots.parquet"
        t0 = time.perf_counter()
        blind = run_batch(scenario, accounts, out=folder / "blind", workers=workers)
        t1 = time.perf_counter()
        aware = run_batch(scenario, accounts, out=folder / "aware", workers=workers, lots=lots)
        t2 = time.perf_counter()
        return {
            "accounts": n_accounts,
            "lots": aware.summary["lots"],
            "tax_blind_s": t1 - t0,
            "tax_aware_s": t2 - t1,
            "ratio": (t2 - t1) / (t1 - t0),
            "ok_blind": blind.summary["accounts"]["ok"],
            "ok_aware": aware.summary["accounts"]["ok"],
            "peak_worker_rss_mb_aware": aware.summary["peak_worker_rss_mb"],
            "peak_worker_rss_mb_blind": blind.summary["peak_worker_rss_mb"],
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def in_process_per_account(scenario: Path, accounts: Path, sample: int) -> float:
    """Mean seconds of ``Rebalancer.plan`` per account over ``sample`` accounts.

    The mean, not the median: a batch's cost is the total over its accounts, and the
    accounts with a cash flow (a tenth of them) take several times the median.
    """
    from optimizer.rebalance import Rebalancer
    from scenarios.schema import load_scenario

    scn = load_scenario(scenario)
    cov = scn.estimates.cov()
    prices = scn.batch.prices.reindex(cov.index)
    rb = Rebalancer(
        cov,
        costs=scn.costs,
        constraints=list(scn.constraints),
        universe=scn.universe,
        holdings_as="quantity",
    )
    frame = pd.read_parquet(accounts).head(sample * 21)
    items = []
    for _, rows in frame.groupby("account", sort=False):
        held = rows[rows["asset"].notna()]
        h = pd.Series(held["quantity"].to_numpy(), index=held["asset"].to_numpy())
        target = scn.batch.models[rows["model"].iloc[0]].reindex(cov.index)
        items.append(
            (h.reindex(cov.index, fill_value=0.0), target, float(rows["cash_flow"].iloc[0]))
        )
    rb.plan(*items[0][:2], prices=prices, cash_flow=items[0][2])  # untimed first plan
    times = []
    for h, target, flow in items[:sample]:
        t0 = time.perf_counter()
        rb.plan(h, target, prices=prices, cash_flow=flow)
        times.append(time.perf_counter() - t0)
    return float(np.mean(times))


def batch_seconds(scenario: Path, accounts: Path, out: Path, workers: int) -> tuple[float, dict]:
    """Wall seconds of ``run_batch`` on a LocalCluster of ``workers`` processes, and its summary."""
    from scenarios.batch import run_batch

    t0 = time.perf_counter()
    res = run_batch(scenario, accounts, out=out, workers=workers)
    return time.perf_counter() - t0, res.summary


def measure(n_accounts: int, sample: int = SAMPLE) -> dict:
    """Every figure of the benchmark at ``n_accounts`` accounts."""
    folder = Path(tempfile.mkdtemp(prefix="trimtab-bench-batch-"))
    try:
        t0 = time.perf_counter()
        # in a child process: the driver stays small, so workers forked from it start small
        code = (
            "import sys; from pathlib import Path; from benchmarks.bench_batch import make_book; "
            f"make_book(Path({str(folder)!r}), {int(n_accounts)})"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
        scenario, accounts = folder / "book.toml", folder / "accounts.parquet"
        made = time.perf_counter() - t0
        two, s2 = batch_seconds(scenario, accounts, folder / "out2", 2)
        one, s1 = batch_seconds(scenario, accounts, folder / "out1", 1)
        per_account = in_process_per_account(scenario, accounts, min(sample, n_accounts))
        ok = s2["accounts"]["ok"]
        return {
            "accounts": n_accounts,
            "generate_s": made,
            "two_workers_s": two,
            "one_worker_s": one,
            "speedup": one / two,
            "in_process_per_account_s": per_account,
            "batch_per_account_s": two * 2 / n_accounts,
            "per_account_ratio": (two * 2 / n_accounts) / per_account,
            "ok": ok,
            "peak_worker_rss_mb_2": s2["peak_worker_rss_mb"],
            "peak_worker_rss_mb_1": s1["peak_worker_rss_mb"],
            "worker_maxrss_mb_2": s2["worker_maxrss_mb"],
            "worker_maxrss_mb_1": s1["worker_maxrss_mb"],
            "timings_2": s2["timings"],
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(cfg: Config) -> Outcome:
    """The benchmark's rows for the suite (``--quick``: 2,000 accounts)."""
    n = QUICK_ACCOUNTS if cfg.quick else ACCOUNTS
    m = measure(n)
    out = Outcome()
    label = f"{n:,} accounts x 20 assets"
    two, one = m["two_workers_s"], m["one_worker_s"]
    out.rows.append(
        Row(
            BENCH,
            f"{label}: 2 workers, wall",
            two,
            None,
            Goal("absolute", 120.0),
            "PASS" if two < 120 else "FAIL",
        )
    )
    out.rows.append(
        Row(
            BENCH,
            f"{label}: 2 workers vs 1 worker",
            two,
            one,
            Goal("speedup", 1.7),
            "PASS" if m["speedup"] >= 1.7 else "FAIL",
        )
    )
    out.rows.append(
        Row(
            BENCH,
            "cost per account: batch (x2 workers) vs in-process plan",
            m["batch_per_account_s"],
            m["in_process_per_account_s"],
            Goal("ratio", 2.0),
            "PASS" if m["per_account_ratio"] <= 2.0 else "FAIL",
        )
    )
    out.notes.append(
        f"{BENCH}: largest worker RSS after a partition {m['peak_worker_rss_mb_2']:.0f} MB "
        f"(2 workers), {m['peak_worker_rss_mb_1']:.0f} MB (1 worker); ru_maxrss "
        f"{m['worker_maxrss_mb_2']:.0f} / {m['worker_maxrss_mb_1']:.0f} MB; "
        f"{m['ok']:,} of {n:,} accounts ok; "
        f"stages (2 workers): {', '.join(f'{k} {v:.1f} s' for k, v in m['timings_2'].items())}"
    )
    nt = QUICK_TAXABLE if cfg.quick else TAXABLE_ACCOUNTS
    t = measure_taxable(nt)
    out.rows.append(
        Row(
            BENCH,
            f"{nt:,} taxable accounts, 2 workers: tax-aware vs tax-blind",
            t["tax_aware_s"],
            t["tax_blind_s"],
            None,
            "",
        )
    )
    out.notes.append(
        f"{BENCH}: taxable book {nt:,} accounts, {t['lots']:,} lots: tax-aware "
        f"{t['tax_aware_s']:.1f} s ({t['ok_aware']:,} ok), tax-blind {t['tax_blind_s']:.1f} s "
        f"({t['ok_blind']:,} ok); worker RSS {t['peak_worker_rss_mb_aware']:.0f} / "
        f"{t['peak_worker_rss_mb_blind']:.0f} MB"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.bench_batch [--accounts N] [--sample N]``: the figures as text."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_batch", description=TITLE)
    p.add_argument("--accounts", type=int, default=ACCOUNTS, help="accounts (default 100,000)")
    p.add_argument("--sample", type=int, default=SAMPLE, help="accounts timed in-process")
    p.add_argument(
        "--taxable",
        type=int,
        metavar="N",
        help="only the taxable book of N accounts: tax-aware vs tax-blind on 2 workers",
    )
    args = p.parse_args(argv)
    if args.taxable:
        m = measure_taxable(args.taxable)
        for k, v in m.items():
            print(f"{k:>28}: {v:.4g}" if isinstance(v, float) else f"{k:>28}: {v}")
        return 0
    m = measure(args.accounts, args.sample)
    for k, v in m.items():
        print(f"{k:>28}: {v:.4g}" if isinstance(v, float) else f"{k:>28}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
