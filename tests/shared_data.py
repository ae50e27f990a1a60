"""The real data of ../shared/data for tests: one loader, skipping with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

#: ../shared/data beside the project (present in CI; absent on a bare checkout).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load(name: str) -> pd.DataFrame:
    """``SHARED_DATA / name`` as a date-indexed frame; skips the test when the file is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real-data test needs {path} (the project's ../shared/data); not present")
    return pd.read_csv(path, index_col=0, parse_dates=True)
