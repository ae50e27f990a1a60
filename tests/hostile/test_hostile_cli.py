"""The hostile-input catalogue through the command line (issue 10): one subprocess per case.

Every case builds its input in a folder of its own (a shipped example with one
text edit, or a file written by hand), runs ``python -m scenarios.cli`` on it,
and asserts the exit code, a stderr of one line without a traceback, and the
culprit strings (file, key path, asset, date, value, constraint) in it. The
subprocesses run four at a time in a module fixture; each test looks its case up.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hostile.inputs import (
    FRENCH,
    FRENCH_CSV,
    MODERATE,
    RIA,
    RIVERSIDE,
    TACTICAL,
    TO_PRICES,
    Folder,
    Sparse,
    bom,
    build,
    case,
    crlf,
    deep,
    edited,
    garbage,
    prices_csv,
)
from scenarios import loader

ROOT = Path(__file__).resolve().parents[2]

# fmt: off
CASES = [
    # ---------------------------------------------------------------- the scenario file itself
    case("missing-file", None, None, 2, "{dir}/nope.toml", "not found",
        argv=("run", "{dir}/nope.toml")),
    case("folder-as-file", None, None, 2, "{dir}: is a folder", argv=("run", "{dir}")),
    case("file-under-a-file", RIA, None, 2, "{scn}/x.toml", "Not a directory",
        argv=("run", "{scn}/x.toml")),
    case("dev-zero", None, None, 2, "/dev/zero: not a regular file", argv=("run", "/dev/zero")),
    case("huge-file", None, None, 2, "{scn}", "10,000,001 bytes", "the limit is 10,000,000 bytes",
        files={"scenario.toml": Sparse(loader.MAX_SCENARIO_BYTES + 1)}),
    case("empty-file", None, None, 2, "{scn}", "portfolio: missing (required)", text=b""),
    case("binary-garbage", None, None, 2, "{scn}", "not UTF-8 text (byte 0)", text=garbage()),
    case("toml-syntax", None, None, 2, "{scn}", "invalid TOML", "line 3, column 9",
        text=b'[portfolio]\nname = "x"\nvalue = = 5\n'),
    case("deep-nesting", None, None, 2, "{scn}", f"limit is {loader.MAX_DEPTH} levels",
        text=deep(100_000)),
    case("integer-400-digits", RIA, ("bps = 10", "bps = " + "9" * 400), 2, "{scn}",
        "costs.bps: integer out of range (400 digits)"),
    case("bom-accepted", RIA, None, 0, mangle=bom),
    case("crlf-accepted", RIA, None, 0, mangle=crlf),
    # ---------------------------------------------------------------- keys, types, ranges
    case("unknown-section", RIA, ("[rebalance]", "[rebalanse]"), 2, "{scn}",
        "rebalanse: unknown key (did you mean 'rebalance'?)"),
    case("string-for-number", RIVERSIDE, ("value = 500_000_000", 'value = "500M"'), 2,
        "portfolio.value: expected a number, got string '500M'"),
    case("negative-volatility", RIA, ("US_EQ = 0.16", "US_EQ = -0.16"), 2,
        "estimates.volatility.US_EQ: must be > 0", "-0.16"),
    case("correlation-above-1", RIA, ("INTL_EQ = 0.8", "INTL_EQ = 1.2"), 2,
        "estimates.correlation.US_EQ.INTL_EQ: must be >= -1 and <= 1, got 1.2"),
    case("policy-not-summing", RIA, ("US_EQ = 0.40", "US_EQ = 0.45"), 2,
        "policy.weights: policy weights sum to 1.05", "off by +0.05"),
    case("bounds-min-above-max", MODERATE,
        ("long_only = true", "long_only = true\nbounds = { min = 0.3, max = 0.2 }"), 2,
        "constraints.bounds", "min 0.3 is above max 0.2"),
    case("montecarlo-over-limit", RIVERSIDE, ("paths = 10_000", "paths = 1e12"), 2,
        "montecarlo.paths", "the limit is 50,000,000"),
    case("stress-shock-below-100pct", RIVERSIDE, ("equity = -0.35", "equity = -1.35"), 2,
        "stress[0].shocks.equity: must be > -1, got -1.35"),
    # ---------------------------------------------------------------- references
    case("duplicate-asset-id", RIA, ('id = "INTL_EQ"', 'id = "US_EQ"'), 2,
        "assets[1].id: duplicate asset id 'US_EQ' (also assets[0])"),
    case("policy-unknown-asset", RIA, ("REITS = 0.10 }", "REIT = 0.10 }"), 2,
        "policy.weights.REIT: unknown asset 'REIT' (did you mean 'REITS'?)"),
    case("group-unknown-tag", RIVERSIDE, ('tag = "equity"', 'tag = "equty"'), 2,
        "constraints.group[0].tag: unknown tag 'equty' (did you mean 'equity'?)"),
    case("stress-unknown-tag", RIVERSIDE,
        ("shocks = { equity = -0.35", "shocks = { equities = -0.35"), 2,
        "stress[0].shocks.equities: 'equities' is neither an asset id nor a tag",
        "(did you mean 'equity'?)"),
    case("tactical-unknown-indicator", TACTICAL, ('"pe / pe_average - 1', '"pe / pe_avg - 1'), 2,
        "tactical.rules[0].when", "unknown indicator 'pe_avg' (did you mean 'pe_average'?)"),
    # ---------------------------------------------------------------- data files
    case("data-file-missing", FRENCH, (f'file = "{FRENCH_CSV}"', 'file = "missing.csv"'), 2,
        "estimates.file: file not found: 'missing.csv'", "{dir}/missing.csv"),
    case("data-file-is-a-folder", FRENCH, None, 2, "estimates.file: not a file", FRENCH_CSV,
        files={FRENCH_CSV: Folder()}),
    case("data-file-garbage", FRENCH, None, 2, "estimates.file", f"'{FRENCH_CSV}'",
        files={FRENCH_CSV: garbage()}),
    case("data-file-over-limit", FRENCH, None, 2, "estimates.file",
        f"is {loader.MAX_DATA_BYTES + 1:,} bytes", f"limited to {loader.MAX_DATA_BYTES:,} bytes",
        files={FRENCH_CSV: Sparse(loader.MAX_DATA_BYTES + 1)}),
    case("csv-nan", FRENCH, None, 2, "estimates.file", "no value for NoDur on 1970-02-01",
        files={FRENCH_CSV: edited(FRENCH_CSV, ("1970-02-01,0.0472", "1970-02-01,NaN"))}),
    case("csv-inf", FRENCH, None, 2, "estimates.file",
        "not a finite number in column 'NoDur', row 1970-02-01: inf",
        files={FRENCH_CSV: edited(FRENCH_CSV, ("1970-02-01,0.0472", "1970-02-01,inf"))}),
    case("csv-huge-value", FRENCH, None, 2, "estimates.file", f"'{FRENCH_CSV}'",
        "a number beyond +/-1e+12 in column 'NoDur', row 1970-02-01: 1e+308",
        files={FRENCH_CSV: edited(FRENCH_CSV, ("1970-02-01,0.0472", "1970-02-01,1e308"))}),
    case("prices-huge-value", FRENCH, TO_PRICES, 2, "estimates.file", "prices.csv",
        "column 'Enrgy', row 1970-04-01: 1e+308", files={"prices.csv": prices_csv((3, 3), 1e308)}),
    case("csv-duplicate-date", FRENCH, None, 2, "estimates.file", "duplicate date 1970-01-01",
        files={FRENCH_CSV: edited(FRENCH_CSV, ("1970-02-01,", "1970-01-01,"))}),
    case("csv-not-a-number", FRENCH, None, 2, "estimates.file",
        "not a number in column 'NoDur', row 1970-02-01: 'abc'",
        files={FRENCH_CSV: edited(FRENCH_CSV, ("1970-02-01,0.0472", "1970-02-01,abc"))}),
    case("csv-unsorted-dates-accepted", FRENCH, None, 0,
        files={FRENCH_CSV: edited(FRENCH_CSV, ("1970-01-01,", "1970-02-02,"))}),
    case("csv-crlf-bom-accepted", FRENCH, None, 0,
        files={FRENCH_CSV: bom(crlf(edited(FRENCH_CSV).encode()))}),
    case("negative-price", FRENCH, TO_PRICES, 2, "estimates.file", "Enrgy", "1970-04-01", "-5",
        files={"prices.csv": prices_csv((3, 3), -5.0)}),
    # ---------------------------------------------------------------- paths and commands
    case("out-is-the-scenario", RIA, None, 2, "{scn}", "the output folder is the input file",
        argv=("run", "{scn}", "--out", "{scn}")),
    case("out-is-inside-the-scenario", RIA, None, 2, "{scn}/sub",
        "the output folder is the input file", argv=("run", "{scn}", "--out", "{scn}/sub")),
    case("out-empty", RIA, None, 2, "--out '' is empty", argv=("run", "{scn}", "--out", "")),
    case("out-under-a-file", RIA, None, 2, "{dir}/notes.txt/sub", "is a file, not a folder",
        argv=("run", "{scn}", "--out", "{dir}/notes.txt/sub"), files={"notes.txt": "mine"}),
    case("out-holds-foreign-files", RIA, None, 2, "{dir}/mine", "refusing to replace it",
        argv=("run", "{scn}", "--out", "{dir}/mine"), files={"mine/notes.txt": "keep me"}),
    case("example-would-overwrite", None, None, 2, "{dir}/ria_q1_2024.toml", "already exists",
        "--force", argv=("example", RIA, "--dir", "{dir}"), files={f"{RIA}.toml": "# mine\n"}),
    case("example-unknown", None, None, 2, "unknown example 'riverside'", "riverside_endowment",
        argv=("example", "riverside", "--dir", "{dir}")),
    case("example-dir-is-a-file", RIA, None, 2, "{scn}", "--dir is a file",
        argv=("example", RIA, "--dir", "{scn}")),
    case("weights-duplicated-row", RIVERSIDE, None, 2, "{dir}/w.csv", "more than once: US_EQ",
        argv=("validate", "{scn}", "--weights", "{dir}/w.csv"),
        files={"w.csv": "asset,target\nUS_EQ,0.5\nUS_EQ,0.5\n"}),
    case("weights-unknown-asset", RIVERSIDE, None, 2, "w.csv", "unknown assets: GOLD",
        argv=("validate", "{scn}", "--weights", "{dir}/w.csv"),
        files={"w.csv": "asset,target\nUS_EQ,0.9\nGOLD,0.1\n"}),
    case("weights-not-a-number", RIVERSIDE, None, 2, "{dir}/w.csv", "numbers by asset",
        argv=("validate", "{scn}", "--weights", "{dir}/w.csv"),
        files={"w.csv": "asset,target\nUS_EQ,half\n"}),
    case("weights-missing-file", RIVERSIDE, None, 2, "{dir}/nope.csv: no such file",
        argv=("validate", "{scn}", "--weights", "{dir}/nope.csv")),
    case("weights-dev-zero", RIVERSIDE, None, 2, "/dev/zero: not a regular file",
        argv=("validate", "{scn}", "--weights", "/dev/zero")),
    case("weights-bad-json", RIVERSIDE, None, 2, "{dir}/w.json", "invalid JSON",
        argv=("validate", "{scn}", "--weights", "{dir}/w.json"), files={"w.json": "{"}),
    case("rebalance-without-holdings", MODERATE, None, 2, "{scn}", "[holdings]",
        argv=("rebalance", "{scn}")),
    case("stress-without-stress", RIA, None, 2, "{scn}", "no [[stress]] tables",
        argv=("stress", "{scn}")),
    case("frontier-points-0", RIA, None, 2, "points must be an integer >= 2, got 0",
        argv=("frontier", "{scn}", "--points", "0")),
    case("frontier-points-over-limit", RIA, None, 2, "--points: 100,000,000 asked for",
        "the limit is 1,000", argv=("frontier", "{scn}", "--points", "100000000")),
    case("backtest-without-section", RIA, None, 2, "{scn}", "[backtest]",
        argv=("backtest", "{scn}")),
    # ---------------------------------------------------------------- infeasible: exit 3
    case("caps-conflict", RIVERSIDE, ("max = 0.70", "max = 0.10"), 3, "'equity cap'",
        "'policy bands'"),
    case("bounds-against-bands", MODERATE,
        ("long_only = true", "long_only = true\nbounds = { max = 0.12 }"), 3, "{scn}",
        "'profile bands' and 'bounds' leave no room for US_EQ", "relax one by 0.18"),
    # ---------------------------------------------------------------- argparse: exit 2
    case("bad-flag", RIA, None, 2, "unrecognized arguments: --bogus",
        argv=("run", "{scn}", "--bogus"), lines=False),
    case("unknown-command", None, None, 2, "invalid choice: 'frobnicate'", argv=("frobnicate",),
        lines=False),
    case("points-not-an-int", RIA, None, 2, "--points", "invalid int value: 'abc'",
        argv=("frontier", "{scn}", "--points", "abc"), lines=False),
    case("missing-argument", None, None, 2, "the following arguments are required: scenario",
        argv=("run",), lines=False),
]
# fmt: on


def run_case(c, folder: Path) -> subprocess.CompletedProcess:
    """Run the command line of case ``c``, built in ``folder``."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "scenarios.cli", *(c.expand(a, folder) for a in c.argv)],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def results(request, tmp_path_factory) -> dict:
    """The selected cases, run four at a time: id -> (folder, completed process)."""
    selected = {
        item.callspec.params["c"].id
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    }
    cases = [c for c in CASES if c.id in selected]
    root = tmp_path_factory.mktemp("hostile-cli")
    with contextlib.redirect_stdout(io.StringIO()):  # `trimtab example` says what it wrote
        for c in cases:
            build(c, root / c.id)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {c.id: (root / c.id, pool.submit(run_case, c, root / c.id)) for c in cases}
        return {k: (folder, f.result()) for k, (folder, f) in futures.items()}


def test_the_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 55
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_cli(c, results) -> None:
    folder, res = results[c.id]
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == c.code, res.stderr
    if c.code == 0:
        return
    lines = res.stderr.strip().splitlines()
    if c.lines:
        assert len(lines) == 1, res.stderr
    line = lines[-1]
    assert line.startswith("trimtab"), line
    for culprit in c.culprits:
        assert c.expand(culprit, folder) in line, (culprit, line)
