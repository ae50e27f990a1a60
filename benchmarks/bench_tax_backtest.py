"""Benchmark: the 20-year monthly taxable backtest of issue 15 (no peers).

Tax-blind, tax-aware and tax-aware-with-harvesting rebalancing of an equal-weight account of the
20 stocks of ../shared/data/sp500_prices.csv.gz, 2003-01..2022-12 (240 months; ``--quick``: the
last 5 years), 5 bps a side, short-term gains at 37%, long-term at 20% (:mod:`scenarios.tax_backtest`).
One timed run of the three strategies; the goal is a bound (a few minutes), the notes carry the
table as markdown. ``python -m benchmarks.bench_tax_backtest`` prints only that table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from benchmarks.harness import Config, Goal, Outcome, Row, Side, make_row, measure, trimtab_api

TITLE = "taxable backtest (20 stocks, 20 years monthly, three strategies)"
BENCH = "tax backtest"
#: The prices: ../shared/data beside the project (absent on a bare checkout).
PRICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500_prices.csv.gz"
#: The command that prints the README table.
COMMAND = "python -m benchmarks.bench_tax_backtest"


def months(quick: bool) -> tuple[str, str]:
    """The first (purchase) and last (liquidation) months: 240 months, or 60 with ``--quick``."""
    return ("2017-12" if quick else "2002-12"), "2022-12"


def run(cfg: Config) -> Outcome:
    """Run the three strategies once, timed; the notes carry the table."""
    out = Outcome()
    first, last = months(cfg.quick)
    label = f"3 strategies x {'60' if cfg.quick else '240'} months, n=20"
    if not PRICES.exists():
        out.rows.append(Row(BENCH, label, None, None, None, f"skipped ({PRICES} not present)"))
        return out
    study, missing = trimtab_api("scenarios.tax_backtest", "study")
    daily = pd.read_csv(PRICES, index_col=0, parse_dates=True)
    side = Side(
        f"taxable backtest {first}..{last}, three strategies",
        None if missing else (lambda: study(daily, first=first, last=last)),
        missing=missing,
        runs=1,
    )
    measure([side], 1)
    if side.ok:
        from scenarios.tax_backtest import markdown, summary

        out.notes.append("table (markdown):\n\n" + markdown(summary(side.result)) + "\n")
    out.rows.append(make_row(BENCH, label, side, None, Goal("absolute", 300.0)))
    return out


def main() -> int:
    """Print the table as markdown (the README's "Taxable backtest" section)."""
    if not PRICES.exists():
        print(f"{PRICES} not present: the backtest needs ../shared/data", file=sys.stderr)
        return 1
    from scenarios.tax_backtest import markdown, study, summary

    daily = pd.read_csv(PRICES, index_col=0, parse_dates=True)
    first, last = months("--quick" in sys.argv)
    print(markdown(summary(study(daily, first=first, last=last))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
