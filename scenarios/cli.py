"""The ``trimtab`` command line.

Only ``--help`` and ``--version`` for now; the scenario commands (``run``,
``frontier``, ``rebalance``, ``stress``, ``backtest``, ``validate``,
``example``) arrive with the scenario files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata


def version() -> str:
    """The installed trimtab version ("unknown" when not installed)."""
    try:
        return metadata.version("trimtab")
    except metadata.PackageNotFoundError:
        return "unknown"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trimtab",
        description=(
            "trimtab: convex-optimization asset allocation. Estimates risk and return, "
            "solves for policy-constrained target weights and cost-aware rebalances. "
            "Try `python -m scenarios.demo` for a worked example on shipped data."
        ),
    )
    p.add_argument("--version", action="version", version=f"trimtab {version()}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trimtab`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    if not args:
        p.print_help()
        return 0
    p.parse_args(args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
