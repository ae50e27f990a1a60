"""Exit codes a pipeline can gate on, and no traceback reaching a CLI user.

0 ok; 2 bad input (file, schema, data, paths, OS errors naming the path, input
limits); 3 infeasible (constraints, or a target out of reach with the
reachable range); 4 solver failure or an unexpected error (one line, the
traceback only with --debug); 5 policy checks failed (outputs still written,
``"passed": false``); 130 interrupted; 141 stdout closed early, quietly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_cases import edit, example, one_line, without_montecarlo

import scenarios.engine as engine
import scenarios.loader as loader
import scenarios.outputs as outputs
from optimizer.errors import SolverError
from scenarios.cli import EXIT_CODES, main

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "scenarios.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scn")


@pytest.fixture(scope="module")
def riverside(folder) -> Path:
    return example("riverside_endowment", folder)


@pytest.fixture(scope="module")
def fast(riverside) -> Path:
    """Riverside without the Monte Carlo (quicker runs)."""
    return without_montecarlo(riverside)


@pytest.fixture(scope="module")
def strict(fast) -> Path:
    """A scenario whose run fails a policy check (survival floor 95%)."""
    return edit(fast, "survival_floor = 0.80", "survival_floor = 0.95", "strict.toml")


# ============================================================================ help


def test_help_documents_every_exit_code(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes: 0 ok, 2 bad input, 3 infeasible policy, 4 solver failure, 5 policy" in out
    for code in EXIT_CODES:
        assert f"  {code:>3}  " in out
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Exit codes and guarantees" in readme


# ============================================================================ 0 and 5


def test_ok_is_zero(fast, tmp_path, capsys) -> None:
    assert main(["run", str(fast), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True


def test_run_with_a_failed_check_exits_5_and_writes_marked_outputs(strict, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(strict), "--out", str(out)]) == 5
    cap = capsys.readouterr()
    line = one_line(cap.err)
    assert "policy checks failed" in line and "survival: 2008 crisis" in line
    assert "FAIL  survival: 2008 crisis" in cap.out
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is False
    assert (out / "targets.csv").exists() and (out / "manifest.json").exists()
    assert main(["run", str(strict), "--json"]) == 5
    assert json.loads(capsys.readouterr().out)["passed"] is False


def test_validate_with_a_failed_check_exits_5(riverside, capsys) -> None:
    assert main(["validate", str(riverside), "--json"]) == 5
    cap = capsys.readouterr()
    assert json.loads(cap.out)["passed"] is False
    assert "survival: 2008 crisis" in one_line(cap.err)


def test_validate_exit_5_through_a_subprocess(riverside) -> None:
    res = cli("validate", str(riverside))
    assert res.returncode == 5
    assert "FAIL  survival: 2008 crisis" in res.stdout
    line = one_line(res.stderr)
    assert line.startswith("trimtab: policy checks failed (1): survival: 2008 crisis")


# ============================================================================ 2: files and paths


def test_missing_scenario_through_a_subprocess(tmp_path) -> None:
    missing = tmp_path / "nope.toml"
    res = cli("run", str(missing))
    assert res.returncode == 2
    assert str(missing) in one_line(res.stderr)


def test_a_folder_as_the_scenario(tmp_path, capsys) -> None:
    assert main(["run", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder" in one_line(capsys.readouterr().err)


def test_dev_zero_is_refused_without_reading_through_a_subprocess() -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    res = cli("run", "/dev/zero")
    assert res.returncode == 2
    assert "/dev/zero: not a regular file" in one_line(res.stderr)


def test_unreadable_scenario_names_the_path(fast, monkeypatch, capsys) -> None:
    # only the scenario is unreadable: a library reading its own files (package metadata
    # after dask is imported) must still work
    opened = Path.open

    def denied(self, *a, **k):
        if Path(self).resolve() == Path(fast).resolve():
            raise PermissionError(13, "Permission denied", str(self))
        return opened(self, *a, **k)

    monkeypatch.setattr(Path, "open", denied)
    assert main(["run", str(fast)]) == 2
    line = one_line(capsys.readouterr().err)
    assert str(fast) in line and "Permission denied" in line


@pytest.mark.parametrize(
    "where, words",
    [
        ("scenario", "the output folder is the input file"),
        ("scenario_child", "the output folder is the input file"),
        ("file", "is a file, not an output folder"),
        ("under_file", "is a file, not a folder"),
    ],
)
def test_out_that_is_a_file_is_refused_before_the_work(
    fast, tmp_path, where, words, monkeypatch, capsys
):
    monkeypatch.setattr(engine, "run_scenario", lambda *a, **k: pytest.fail("work was done"))
    other = tmp_path / "notes.txt"
    other.write_text("mine", encoding="utf-8")
    out = {
        "scenario": str(fast),
        "scenario_child": str(fast / "sub"),
        "file": str(other),
        "under_file": str(other / "sub"),
    }[where]
    assert main(["run", str(fast), "--out", out]) == 2
    line = one_line(capsys.readouterr().err)
    assert out in line and words in line
    assert fast.read_text(encoding="utf-8").startswith("# Riverside")
    assert other.read_text(encoding="utf-8") == "mine"


def test_an_os_error_writing_outputs_exits_2_naming_the_path(fast, tmp_path, monkeypatch, capsys):
    target = tmp_path / "ro" / "report.json"

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(outputs, "write_outputs", denied)
    assert main(["run", str(fast), "--out", str(tmp_path / "ro")]) == 2
    line = one_line(capsys.readouterr().err)
    assert str(target) in line and "permission denied" in line


def test_example_dir_that_is_a_file(fast, capsys) -> None:
    assert main(["example", "riverside_endowment", "--dir", str(fast)]) == 2
    assert str(fast) in one_line(capsys.readouterr().err)


def test_duplicated_asset_in_weights(riverside, tmp_path, capsys) -> None:
    weights = tmp_path / "w.csv"
    weights.write_text("asset,target\nUS_EQ,0.5\nUS_EQ,0.5\n")
    assert main(["validate", str(riverside), "--weights", str(weights)]) == 2
    line = one_line(capsys.readouterr().err)
    assert str(weights) in line and "US_EQ" in line


# ============================================================================ 2: input limits


def test_scenario_file_size_limit(tmp_path, capsys) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (loader.MAX_SCENARIO_BYTES + 1))
    assert main(["run", str(big)]) == 2
    line = one_line(capsys.readouterr().err)
    assert str(big) in line and f"{loader.MAX_SCENARIO_BYTES:,}" in line


def test_data_file_size_limit(tmp_path, monkeypatch, capsys) -> None:
    path = example("sp500_frontier", tmp_path)
    monkeypatch.setattr(loader, "MAX_DATA_BYTES", 1000)
    assert main(["frontier", str(path)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "estimates.file" in line and "data files are limited to 1,000 bytes" in line


def test_nesting_depth_limit(fast, tmp_path, capsys) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["run", str(deep)]) == 2
    line = one_line(capsys.readouterr().err)
    assert str(deep) in line and f"limit is {loader.MAX_DEPTH} levels" in line
    # deeper than the limit but within what the parser handles: the same message, with the key
    mid = tmp_path / "mid.toml"
    mid.write_text("x = " + "[" * 40 + "]" * 40 + "\n")
    assert main(["run", str(mid)]) == 2
    assert f"x{'[0]' * 32}: nested too deeply" in one_line(capsys.readouterr().err)


def test_integer_size_limit_through_a_subprocess(fast, tmp_path) -> None:
    big = edit(fast, "bps = 10", "bps = " + "9" * 400, "bigint.toml")
    res = cli("run", str(big))
    assert res.returncode == 2
    line = one_line(res.stderr)
    assert "bigint.toml: costs.bps: integer out of range (400 digits)" in line


def test_montecarlo_size_limit(riverside, capsys) -> None:
    path = edit(riverside, "paths = 10_000", "paths = 1e12", "mc.toml")
    assert main(["run", str(path)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "montecarlo.paths" in line and "the limit is 50,000,000" in line


def test_a_bom_is_accepted(fast, tmp_path, capsys) -> None:
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + fast.read_bytes())
    assert main(["run", str(bom), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True


# ============================================================================ 3


@pytest.mark.parametrize(
    "objective, key, side",
    [
        ('objective = "target_return"\ntarget_return = 0.5', "target_return", "at most"),
        ('objective = "target_risk"\ntarget_volatility = 0.01', "target_volatility", "at least"),
    ],
)
def test_target_out_of_reach_exits_3_with_the_range(fast, objective, key, side, capsys) -> None:
    # the models raise InfeasibleError naming the key, the range and the binding constraints
    path = edit(fast, 'objective = "max_sharpe"', objective, f"{key}.toml")
    assert main(["run", str(path)]) == 3
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"trimtab: infeasible: {path}: [model] {key} ")
    assert f"{side} 0.08" in line and "'policy bands'" in line


def test_conflicting_constraints_exit_3_through_a_subprocess(fast) -> None:
    path = edit(fast, "max = 0.70", "max = 0.10", "conflict.toml")
    res = cli("run", str(path))
    assert res.returncode == 3
    line = one_line(res.stderr)
    assert "'equity cap'" in line and "'policy bands'" in line


# ============================================================================ 4, 130, 141


def test_solver_failure_exits_4(fast, monkeypatch, capsys) -> None:
    def fail(*a, **k):
        raise SolverError("every solver failed")

    monkeypatch.setattr(engine, "run_scenario", fail)
    assert main(["run", str(fast)]) == 4
    assert "solver failure: every solver failed" in one_line(capsys.readouterr().err)


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(fast, monkeypatch, capsys):
    def boom(*a, **k):
        raise RuntimeError("injected\nfailure")

    monkeypatch.setattr(engine, "run_scenario", boom)
    assert main(["run", str(fast)]) == 4
    line = one_line(capsys.readouterr().err)
    assert "unexpected error: RuntimeError: injected failure" in line and "--debug" in line
    for argv in (["--debug", "run", str(fast)], ["run", str(fast), "--debug"]):
        assert main(argv) == 4
        err = capsys.readouterr().err
        assert "Traceback" in err and "RuntimeError: injected" in err and "boom" in err


def test_keyboard_interrupt_exits_130_quietly(fast, monkeypatch, capsys) -> None:
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "run_scenario", interrupt)
    assert main(["run", str(fast)]) == 130
    assert one_line(capsys.readouterr().err) == "trimtab: interrupted"


def test_a_closed_pipe_ends_quietly(fast) -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", "stress", str(fast)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    proc.stdout.close()  # the reader goes away before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""
