"""Runs of every shipped example, made once per session, for the report tests.

``reports`` maps a name to its run folder: each shipped example's ``trimtab run``
(``run:<example>``), the backtest example's ``trimtab backtest``
(``backtest:french_industries_backtest``), an infeasible riverside
(``infeasible``: the equity cap cut to 25%, exit 3) and ``trimtab frontier --out``
of the S&P 500 example (``frontier:sp500_frontier``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_cases import call, edit, example

from scenarios.cli import examples

BACKTEST = "french_industries_backtest"


@pytest.fixture(scope="session")
def reports(tmp_path_factory) -> dict[str, Path]:
    """Run folders by name (see the module docs); each made once per session."""
    root = tmp_path_factory.mktemp("reports")
    out: dict[str, Path] = {}
    for name in sorted(examples()):
        scenario = example(name, root / "scenarios")
        folder = root / f"run-{name}"
        code, _, err = call(["run", str(scenario), "--out", str(folder)])
        assert code in (0, 5), err
        out[f"run:{name}"] = folder
    scenario = root / "scenarios" / f"{BACKTEST}.toml"
    folder = root / f"backtest-{BACKTEST}"
    code, _, err = call(["backtest", str(scenario), "--out", str(folder)])
    assert code == 0, err
    out[f"backtest:{BACKTEST}"] = folder
    riverside = root / "scenarios" / "riverside_endowment.toml"
    infeasible = edit(riverside, "max = 0.70", "max = 0.25", "infeasible.toml")
    folder = root / "infeasible"
    code, _, err = call(["run", str(infeasible), "--out", str(folder)])
    assert code == 3, err
    out["infeasible"] = folder
    scenario = root / "scenarios" / "sp500_frontier.toml"
    folder = root / "frontier-sp500_frontier"
    code, _, err = call(["frontier", str(scenario), "--points", "12", "--out", str(folder)])
    assert code == 0, err
    out["frontier:sp500_frontier"] = folder
    return out
