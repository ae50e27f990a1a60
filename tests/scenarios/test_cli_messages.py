"""CLI messages that name the real cause, and exit codes a pipeline can gate on (issue 10).

- exit 5 for every command with pass/fail checks (``run``, ``rebalance``, ``stress``,
  ``validate``), outputs still written and marked; ``frontier`` and ``backtest`` have none;
- a tactical rule that fails on its indicators names the file, the rule, the expression and
  what was zero (also overflow, non-finite and missing indicators);
- a repaired non-PSD correlation is in report.json and manifest.json with its figures;
- a target out of reach (and any InfeasibleError) is one line naming the file, exit 3;
- every OS error on an input or an output of ``frontier``, ``stress``, ``run`` (Monte Carlo),
  ``backtest`` and ``validate --weights`` exits 2 naming the path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_cases import call, edit, example, one_line, read_json, small_scenario, without_montecarlo

import scenarios.engine as engine
from optimizer.errors import InfeasibleError, InputError
from optimizer.universe import Universe
from scenarios.cli import CHECKS, EXIT_CODES, main
from scenarios.outputs import repair_figures
from scenarios.tactical import Rule, evaluate_rule, overlay, parse_condition

ROOT = Path(__file__).resolve().parents[2]


SMALL = """
[portfolio]
name = "Small"
value = 1_000_000

[[assets]]
id = "A"
tags = ["equity"]
[[assets]]
id = "B"
tags = ["equity"]
[[assets]]
id = "C"
tags = ["bonds"]

[estimates]
source = "returns"
file = "returns.csv"

[model]
kind = "policy"

[policy]
weights = { A = 0.5, B = 0.3, C = 0.2 }

[[stress]]
name = "crash"
shocks = { equity = -0.30, bonds = 0.02 }

[validation]
survival_floor = 0.70

[montecarlo]
distribution = "bootstrap"
paths = 200
years = 5
seed = 1

[backtest]
policies = [{ kind = "calendar", every = 3 }, { kind = "buy_and_hold" }]
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("msg")


@pytest.fixture(scope="module")
def small(folder) -> Path:
    """3 assets, 120 months of returns (a data file), stress, bootstrap Monte Carlo, backtest."""
    return small_scenario(folder, SMALL)


@pytest.fixture(scope="module")
def riverside(folder) -> Path:
    return example("riverside_endowment", folder)


@pytest.fixture(scope="module")
def fast(riverside) -> Path:
    """Riverside without the Monte Carlo."""
    return without_montecarlo(riverside)


@pytest.fixture(scope="module")
def strict(fast) -> Path:
    """Riverside whose target fails the survival checks (floor 95%)."""
    return edit(fast, "survival_floor = 0.80", "survival_floor = 0.95", "strict.toml")


@pytest.fixture(scope="module")
def ria(folder) -> Path:
    return example("ria_q1_2024", folder)


@pytest.fixture(scope="module")
def tactical(folder) -> Path:
    return example("tactical_overlay", folder)


# ============================================================================ 5: rebalance, stress


def test_rebalance_with_failed_checks_exits_5_and_marks_the_outputs(strict, tmp_path) -> None:
    out = tmp_path / "out"
    code, stdout, err = call(["rebalance", str(strict), "--out", str(out)])
    assert code == 5
    line = one_line(err)
    assert line.startswith("trimtab: policy checks failed (3): survival: 2008 crisis; ")
    assert str(out) in line and '"passed": false' in line
    assert "FAIL  survival: 2008 crisis" in stdout
    report = read_json(out / "report.json")
    assert report["passed"] is False
    assert "survival: 2008 crisis" in report["failed_checks"]
    manifest = read_json(out / "manifest.json")
    assert manifest["command"] == "rebalance"
    assert manifest["checks"]["passed"] is False
    assert manifest["checks"]["failed"] == report["failed_checks"]
    assert (out / "orders.json").exists() and (out / "orders.csv").exists()
    # --json prints the orders (as before) and still exits 5
    code, stdout, err = call(["rebalance", str(strict), "--json"])
    assert code == 5 and json.loads(stdout)["schema"] == "trimtab.orders/1"
    assert "survival: 2008 crisis" in one_line(err)


def _breach(monkeypatch) -> None:
    """Make the rebalance plan report a breach that lot rounding could not avoid."""
    real = engine.rebalance

    def breached(*args, **kwargs):
        plan = real(*args, **kwargs)
        bad = {"ok": False, "max_violation": 0.004, "worst": "turnover"}
        return dataclasses.replace(plan, checks={**plan.checks, "turnover cap": bad})

    monkeypatch.setattr(engine, "rebalance", breached)


@pytest.mark.parametrize("command", ["rebalance", "run"])
def test_a_plan_breach_exits_5(ria, tmp_path, monkeypatch, command) -> None:
    code, _, err = call([command, str(ria)])
    assert code == 0, err  # the shipped example passes
    _breach(monkeypatch)
    out = tmp_path / "out"
    code, _, err = call([command, str(ria), "--out", str(out)])
    assert code == 5
    assert "policy checks failed (1): rebalance: turnover cap" in one_line(err)
    report = read_json(out / "report.json")
    assert report["passed"] is False and report["failed_checks"] == ["rebalance: turnover cap"]
    assert report["rebalance"]["checks"]["turnover cap"]["ok"] is False
    assert read_json(out / "manifest.json")["checks"] == {
        "passed": False,
        "failed": ["rebalance: turnover cap"],
    }


def test_passing_runs_say_so_in_the_manifest(ria, tmp_path) -> None:
    out = tmp_path / "out"
    assert call(["rebalance", str(ria), "--out", str(out)])[0] == 0
    assert read_json(out / "manifest.json")["checks"] == {"passed": True, "failed": []}
    report = read_json(out / "report.json")
    assert report["passed"] is True and report["failed_checks"] == []


def test_stress_breaching_the_floor_exits_5(strict, fast) -> None:
    code, stdout, err = call(["stress", str(strict)])
    assert code == 5
    assert "2008 crisis: " in stdout and "BREACHES FLOOR" in stdout
    line = one_line(err)
    assert line.startswith("trimtab: policy checks failed (3): survival: 2008 crisis;")
    code, stdout, err = call(["stress", str(strict), "--json"])
    assert code == 5 and [r["name"] for r in json.loads(stdout)][0] == "2008 crisis"
    assert call(["stress", str(fast)])[0] == 0


def test_commands_without_checks_exit_0_and_say_so(small, tmp_path) -> None:
    strict = edit(small, "survival_floor = 0.70", "survival_floor = 0.99", "strict_small.toml")
    assert call(["stress", str(strict)])[0] == 5  # the floor is breached ...
    for command in ("frontier", "backtest"):  # ... but these commands have no checks
        out = tmp_path / command
        argv = [command, str(strict), "--out", str(out)]
        code, _, err = call(argv + (["--points", "3"] if command == "frontier" else []))
        assert code == 0, err
        assert read_json(out / "manifest.json")["checks"] == {"passed": None, "failed": []}


def test_help_says_which_commands_exit_5(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "5  policy checks failed (run, rebalance, stress, validate)" in top
    assert "frontier, backtest and example have no checks" in top
    for code in EXIT_CODES:
        assert f"  {code:>3}  " in top
    for command in ("run", "frontier", "rebalance", "stress", "backtest", "validate", "example"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "exit codes: 0 ok, 2 bad input, 3 infeasible, 4 solver failure;" in text
        if command in CHECKS:
            assert f"exit 5 when {' '.join(CHECKS[command].split())}" in text
        else:
            assert f"{command} has no pass/fail checks, so it never exits 5" in text


def test_readme_documents_the_checks_of_each_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Exit codes and guarantees") :]
    section = section[: section.index("\n## ", 5)]
    for command in ("`run`", "`rebalance`", "`stress`", "`validate`"):
        assert f"| {command} |" in section
    assert "| `frontier`, `backtest`, `example` | never" in section


# ============================================================================ tactical rules


def test_a_rule_dividing_by_zero_names_file_rule_expression_and_zero(tactical, tmp_path) -> None:
    path = edit(tactical, "vix_average = 18", "vix_average = 0", "overlay.toml")
    for command in ("run", "validate", "stress"):
        code, _, err = call([command, str(path)])
        assert code == 2
        line = one_line(err)
        assert line.startswith(f"trimtab: error: {path}: tactical.rules[1].when: ")
        assert "tactical rule 'volatility spike'" in line
        assert "'vix / vix_average' divides by zero (vix_average is 0)" in line
        assert "give vix_average a value other than 0" in line


def test_a_rule_that_overflows_is_refused_at_load(tactical) -> None:
    path = edit(tactical, "pe = 25,", "pe = 1e300,", "overflow.toml")
    path = edit(path, '"pe / pe_average - 1 > 0.20"', '"pe * pe > 1"', "overflow.toml")
    code, _, err = call(["run", str(path)])
    assert code == 2
    line = one_line(err)
    assert f"{path}: tactical.rules[0].when: tactical rule 'valuation rich'" in line
    assert "'pe * pe' overflows: 1e+300 * 1e+300 is too large" in line


UNI = Universe(
    ["EQ", "BD"],
    tags={"EQ": ["equity"], "BD": ["fixed_income"]},
)
POLICY = pd.Series({"EQ": 0.6, "BD": 0.4})


@pytest.mark.parametrize(
    ("when", "indicators", "words"),
    [
        ("mom / vol > 1", {"mom": 1.0, "vol": 0.0}, "'mom / vol' divides by zero (vol is 0)"),
        (
            "mom / (vol - floor) > 1",
            {"mom": 1.0, "vol": 0.2, "floor": 0.2},
            "'mom / (vol - floor)' divides by zero (vol - floor is 0 with floor = 0.2, vol = 0.2)",
        ),
        ("mom / 0 > 1", {"mom": 1.0}, "divides by zero (the divisor is the constant 0)"),
        ("mom * 1e300 * 1e300 > 1", {"mom": 1.0}, "overflows: 1e+300 * 1e+300 is too large"),
        ("mom > 1", {"mom": float("nan")}, "indicator 'mom' is nan (not a finite number)"),
        ("mom > 1", {"mom": float("inf")}, "indicator 'mom' is inf (not a finite number)"),
        ("mom > 1", {"mom": "high"}, "indicator 'mom' is not a number: 'high'"),
    ],
)
def test_overlay_names_the_rule_the_file_and_what_failed(when, indicators, words) -> None:
    rules = [Rule("quiet", "1 > 2", 0.0), Rule("momentum tilt", when, -0.05)]
    with pytest.raises(InputError) as info:
        overlay(
            POLICY,
            indicators,
            rules,
            universe=UNI,
            band=0.1,
            offset={"fixed_income": 1.0},
            source="overlay.toml",
        )
    msg = str(info.value)
    assert msg.startswith(
        f"tactical rule 'momentum tilt' (rule 2) in overlay.toml: rule condition {when!r}: "
    )
    assert words in msg


def test_a_condition_called_without_an_indicator_names_it() -> None:
    cond = parse_condition("a / b > 1", ["a", "b"])
    with pytest.raises(InputError, match=r"condition 'a / b > 1': indicator 'b' has no value"):
        cond({"a": 1.0})
    with pytest.raises(
        InputError, match="tactical rule 'r' in f.toml: .*'b' is not a number: None"
    ):
        evaluate_rule(Rule("r", "b > 1", 0.1), {"a": 1.0, "b": None}, source="f.toml")


@pytest.mark.parametrize(
    ("when", "words"),
    [
        ("x > " + "9" * 400, "has a constant too large for a number: 999999999999... (400 digits)"),
        ("x > 1e999", "has a constant too large for a number: 1e309"),
        ("-" * 100 + "x > 1", "is nested too deeply (the limit is 50 levels"),
        ("x" + " + x" * 100_000 + " > 1", "characters long; the limit is 1,000"),
        ("not " * 100_000 + "x > 1", "characters long; the limit is 1,000"),
    ],
)
def test_conditions_past_the_limits_are_input_errors(when, words) -> None:
    with pytest.raises(InputError) as info:
        parse_condition(when, ["x"])
    assert words in str(info.value) and "rule condition" in str(info.value)
    assert len(str(info.value)) < 400


# ============================================================================ PSD repair


def test_a_repaired_correlation_is_recorded_with_its_figures(fast, tmp_path) -> None:
    bad = edit(
        fast,
        "[1.00, 0.80, 0.10, 0.50, 0.70, 0.60],  # US_EQ",
        "[1.00, 0.80, 0.95, 0.50, 0.70, 0.60],  # US_EQ",
        "npsd.toml",
    )
    bad = edit(
        bad,
        "[0.10, 0.05, 1.00, 0.20, 0.00, 0.10],  # FIXED_INCOME",
        "[0.95, 0.05, 1.00, 0.20, 0.00, 0.10],  # FIXED_INCOME",
        "npsd.toml",
    )
    corr = np.array(
        [
            [1.00, 0.80, 0.95, 0.50, 0.70, 0.60],
            [0.80, 1.00, 0.05, 0.50, 0.65, 0.55],
            [0.95, 0.05, 1.00, 0.20, 0.00, 0.10],
            [0.50, 0.50, 0.20, 1.00, 0.40, 0.35],
            [0.70, 0.65, 0.00, 0.40, 1.00, 0.50],
            [0.60, 0.55, 0.10, 0.35, 0.50, 1.00],
        ]
    )
    smallest = float(np.linalg.eigvalsh(corr).min())
    assert smallest < 0
    out = tmp_path / "out"
    code, stdout, err = call(["run", str(bad), "--out", str(out)])
    assert code == 0, err
    assert "not positive semidefinite" in err  # still on stderr too
    for name in ("report.json", "manifest.json"):
        repairs = read_json(out / name)["repairs"]
        assert len(repairs) == 1, name
        entry = repairs[0]
        assert "nearest correlation matrix" in entry["message"]
        assert entry["figures"]["smallest_eigenvalue"] == pytest.approx(smallest, rel=1e-4)
        assert entry["figures"]["distance"] > 0
    code, stdout, _ = call(["run", str(bad), "--json"])
    assert code == 0
    assert json.loads(stdout)["repairs"][0]["figures"]["smallest_eigenvalue"] < 0


def test_repair_figures() -> None:
    text = (
        "correlation matrix is not positive semidefinite (smallest eigenvalue -1.5e-03); "
        "replaced by the nearest correlation matrix (Higham 2002), Frobenius distance moved 0.25"
    )
    assert repair_figures(text) == {"smallest_eigenvalue": -1.5e-3, "distance": 0.25}
    assert repair_figures("3 dates dropped") == {}


# ============================================================================ 3: infeasible


@pytest.mark.parametrize(
    ("objective", "key", "bound"),
    [
        ('objective = "target_return"\ntarget_return = 0.5', "target_return", r"0\.088|8\.8\d%"),
        ('objective = "target_risk"\ntarget_volatility = 0.01', "target_volatility", r"0\.0\d"),
    ],
)
def test_target_out_of_reach_is_one_line_exit_3(fast, objective, key, bound) -> None:
    """Passes with the models' InfeasibleError naming the range and the binding constraints."""
    path = edit(fast, 'objective = "max_sharpe"', objective, f"reach_{key}.toml")
    code, _, err = call(["run", str(path)])
    assert code == 3
    line = one_line(err)
    assert line.startswith(f"trimtab: infeasible: {path}: [model] {key}")
    assert "reach" in line and re.search(bound, line), line
    names = ("equity cap", "liquidity floor", "alternatives cap", "policy bands", "ESG floor")
    assert any(n in line for n in names), f"no binding constraint named: {line}"


def test_an_infeasible_error_is_one_line_naming_the_file(fast, monkeypatch) -> None:
    def unreachable(*args, **kwargs):
        raise InfeasibleError(
            "target_return 0.5 is out of reach: the reachable range is 0.04 to 0.0888\n"
            "binding at the top:\n- 'equity cap'\n- 'alternatives cap'",
            [{"name": "equity cap", "relax_by": 0.1}],
        )

    monkeypatch.setattr(engine, "run_scenario", unreachable)
    code, _, err = call(["run", str(fast)])
    assert code == 3
    assert one_line(err) == (
        f"trimtab: infeasible: {fast}: [model] target_return 0.5 is out of reach: the reachable "
        "range is 0.04 to 0.0888; binding at the top: 'equity cap'; 'alternatives cap'"
    )


def test_conflicting_constraints_name_the_file(fast) -> None:
    path = edit(fast, "max = 0.70", "max = 0.10", "conflict.toml")
    code, _, err = call(["run", str(path)])
    assert code == 3
    line = one_line(err)
    assert line.startswith(f"trimtab: infeasible: {path}: 'equity cap'")
    assert "[model]" not in line


# ============================================================================ 2: OS errors


def _faults(folder: Path, name: str) -> dict[str, Path]:
    """Paths that cannot be read as a file: missing, a folder, under a regular file."""
    regular = folder / "regular.txt"
    regular.write_text("not a folder", encoding="utf-8")
    return {
        "missing": folder / f"missing_{name}",
        "folder": folder,
        "under_a_file": regular / name,
    }


READERS = [
    ["frontier", "--points", "3"],
    ["stress"],
    ["run"],  # with the Monte Carlo (bootstrap: it reads the returns file)
    ["backtest"],
    ["validate"],
]


@pytest.mark.parametrize("fault", ["missing", "folder", "under_a_file"])
@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_scenario_that_cannot_be_read_exits_2_naming_it(tmp_path, command, fault) -> None:
    path = _faults(tmp_path, "scn.toml")[fault]
    code, _, err = call([command[0], str(path), *command[1:]])
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"trimtab: error: {path}: ")
    words = {
        "missing": "scenario file not found",
        "folder": "is a folder, not a scenario file",
        "under_a_file": "Not a directory",
    }[fault]
    assert words in line


@pytest.mark.parametrize("fault", ["missing", "folder", "under_a_file"])
@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_data_file_that_cannot_be_read_exits_2_naming_it(small, command, fault) -> None:
    folder = small.parent
    value = {"missing": "nope.csv", "folder": ".", "under_a_file": "regular.txt/returns.csv"}
    _faults(folder, "returns.csv")
    path = edit(small, 'file = "returns.csv"', f'file = "{value[fault]}"', f"data_{fault}.toml")
    code, _, err = call([command[0], str(path), *command[1:]])
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"trimtab: error: {path}: estimates.file: ")
    assert value[fault] in line
    shown = {
        "missing": str(folder / "nope.csv"),
        "folder": str(folder),
        "under_a_file": str(folder / "regular.txt" / "returns.csv"),
    }[fault]
    assert shown in line


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads a chmod 000 file"
)
@pytest.mark.parametrize("what", ["scenario", "data"])
@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_an_unreadable_file_exits_2_naming_it(small, tmp_path, command, what) -> None:
    shutil.copy(small.parent / "returns.csv", tmp_path / "returns.csv")
    path = tmp_path / "small.toml"
    path.write_text(SMALL, encoding="utf-8")
    target = path if what == "scenario" else tmp_path / "returns.csv"
    target.chmod(0)
    try:
        code, _, err = call([command[0], str(path), *command[1:]])
    finally:
        target.chmod(0o644)
    assert code == 2
    line = one_line(err)
    assert str(target.name) in line and "ermission denied" in line


@pytest.mark.parametrize("fault", ["missing", "folder", "under_a_file"])
def test_a_weights_file_that_cannot_be_read_exits_2_naming_it(small, tmp_path, fault) -> None:
    path = _faults(tmp_path, "w.csv")[fault]
    code, _, err = call(["validate", str(small), "--weights", str(path)])
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"trimtab: error: {path}: ")
    words = {
        "missing": "no such file",
        "folder": "is a folder, not a weights file",
        "under_a_file": f"{tmp_path / 'regular.txt'} is a file, not a folder",
    }[fault]
    assert words in line


WRITERS = [["frontier", "--points", "3"], ["run"], ["rebalance"], ["backtest"]]


@pytest.mark.parametrize("fault", ["is_a_file", "under_a_file"])
@pytest.mark.parametrize("command", WRITERS, ids=lambda c: c[0])
def test_an_out_that_cannot_be_written_exits_2_naming_it(
    small, ria, tmp_path, command, fault
) -> None:
    scenario = ria if command[0] == "rebalance" else small
    regular = tmp_path / "regular.txt"
    regular.write_text("mine", encoding="utf-8")
    out = regular if fault == "is_a_file" else regular / "out"
    code, _, err = call([command[0], str(scenario), *command[1:], "--out", str(out)])
    assert code == 2
    line = one_line(err)
    assert str(out) in line
    assert ("is a file" in line) and regular.read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("command", WRITERS, ids=lambda c: c[0])
def test_an_os_error_while_writing_exits_2_naming_the_folder(
    small, ria, tmp_path, monkeypatch, command
) -> None:
    scenario = ria if command[0] == "rebalance" else small
    out = tmp_path / "out"

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = call([command[0], str(scenario), *command[1:], "--out", str(out)])
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"trimtab: error: {out}: cannot stage ")
    assert "No space left on device" in line
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
