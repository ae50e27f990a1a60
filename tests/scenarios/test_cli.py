"""The ``trimtab`` command line: each command, its exit codes, its messages, atomic outputs.

Exit codes: 0 ok, 2 bad input (file, schema, data), 3 infeasible (the message
names the conflicting constraints), 4 solver failure after every fallback. A
failed run writes nothing: no output folder, no temporary file, and an earlier
run's outputs stay byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optimizer.solvers as solvers
import scenarios.outputs as outputs
from optimizer.errors import InputError
from scenarios.cli import main, version

COMMANDS = ["run", "frontier", "rebalance", "stress", "backtest", "validate", "example"]


def example(name: str, folder: Path) -> Path:
    assert main(["example", name, "--dir", str(folder)]) == 0
    return folder / f"{name}.toml"


def edit(path: Path, old: str, new: str, name: str) -> Path:
    """A copy of ``path`` (beside it, as ``name``) with ``old`` replaced once."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    out = path.with_name(name)
    out.write_text(text.replace(old, new, 1), encoding="utf-8")
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def leftovers(folder: Path) -> list[str]:
    """Temporary files an atomic write could leave behind."""
    staged = [p.name for p in folder.parent.glob(".trimtab-*")]
    tmp = [p.name for p in folder.glob(".*.tmp")] if folder.exists() else []
    return staged + tmp


@pytest.fixture
def riverside(tmp_path) -> Path:
    return example("riverside_endowment", tmp_path / "scn")


@pytest.fixture
def ria(tmp_path) -> Path:
    return example("ria_q1_2024", tmp_path / "scn")


# ============================================================================ help and version


@pytest.mark.parametrize("command", COMMANDS)
def test_help_on_each_command(command, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: trimtab {command}")


def test_top_level_help_and_no_command(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out
    assert "exit codes: 0 ok, 2 bad input, 3 infeasible policy, 4 solver failure" in out
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("usage: trimtab")


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"trimtab {version()}"
    assert version() != "unknown"  # installed (editable)


def test_unknown_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["optimise", "x.toml"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ============================================================================ validate


def test_validate_defaults_to_the_holdings(riverside, capsys) -> None:
    # a failed check exits 5 ("policy checks failed")
    assert main(["validate", str(riverside)]) == 5
    out = capsys.readouterr().out
    assert out.startswith("validating current holdings:")
    assert "PASS  constraint: equity cap" in out
    # 33/21/18/14/10/4: 0.54 * -0.35 + 0.18 * 0.05 + 0.28 * -0.20 = -23.6%, under the 80% floor
    assert "FAIL  survival: 2008 crisis: 0.764" in out
    assert "PASS  survival: tech bubble" in out


def test_validate_defaults_to_the_policy_without_holdings(tmp_path, capsys) -> None:
    path = example("tactical_overlay", tmp_path)
    capsys.readouterr()
    assert main(["validate", str(path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["validated"] == "policy weights"
    assert payload["passed"] is True
    names = [c["check"] for c in payload["checks"]]
    assert names == [
        "constraint: budget",
        "constraint: long-only",
        "constraint: equity cap",
        "constraint: policy bands",
    ]


def test_validate_weights_from_csv_and_json(riverside, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["run", str(riverside), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    capsys.readouterr()
    for name in ("targets.csv", "targets.json"):
        assert main(["validate", str(riverside), "--weights", str(out / name), "--json"]) == 0
        payload = json.loads(capsys.readouterr().out)
        assert payload["validated"] == f"weights from {name}"
        assert payload["passed"] is True
        checks = {c["check"]: c for c in payload["checks"]}
        for c in report["validation"]:
            assert checks[c["check"]]["passed"] == c["passed"]
            if c["check"].startswith("survival") or c["check"] == "ESG floor":
                assert checks[c["check"]]["figure"] == pytest.approx(c["figure"], abs=1e-9)


def test_validate_flags_a_broken_cap(riverside, tmp_path, capsys) -> None:
    weights = tmp_path / "w.json"
    weights.write_text(
        json.dumps(
            {
                "US_EQ": 0.45,
                "INTL_EQ": 0.30,
                "FIXED_INCOME": 0.10,
                "REAL_ASSETS": 0.05,
                "PRIVATE_EQUITY": 0.05,
                "HEDGE_FUNDS": 0.05,
            }
        )
    )
    assert main(["validate", str(riverside), "--weights", str(weights)]) == 5
    out = capsys.readouterr().out
    assert "FAIL  constraint: equity cap: 0.05" in out
    assert "FAIL  constraint: policy bands" in out
    assert "PASS  constraint: alternatives cap" in out


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("w.json", "[0.5, 0.5]", "expected a JSON object of weights by asset"),
        ("w.json", "{not json", "invalid JSON"),
        ("w.json", '{"US_EQ": "lots"}', "weights must be numbers by asset"),
        ("w.csv", "asset,target\nUS_EQ,abc\n", "weights must be numbers by asset"),
        ("w.csv", "asset,target\nUS_EQ,\nINTL_EQ,1\n", "not finite for US_EQ"),
        ("w.csv", "asset,target\nGOLD,1\n", "names unknown assets: GOLD"),
    ],
)
def test_validate_bad_weights_file_is_bad_input(
    riverside, tmp_path, capsys, name, content, message
) -> None:
    weights = tmp_path / name
    weights.write_text(content)
    assert main(["validate", str(riverside), "--weights", str(weights)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("trimtab: error: ")
    assert message in captured.err
    assert captured.out == ""


def test_validate_missing_weights_file(riverside, tmp_path, capsys) -> None:
    missing = tmp_path / "nope.csv"
    assert main(["validate", str(riverside), "--weights", str(missing)]) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err


# ============================================================================ stress


def test_stress_command(riverside, capsys) -> None:
    capsys.readouterr()
    assert main(["stress", str(riverside)]) == 0
    out = capsys.readouterr().out
    for name in ("2008 crisis", "tech bubble", "inflation spike"):
        assert f"{name}: " in out
    assert "survives" in out
    assert main(["stress", str(riverside), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["2008 crisis", "tech bubble", "inflation spike"]
    for r in rows:
        assert sum(r["contributions"].values()) == pytest.approx(r["portfolio_return"])
        assert r["value_after"] == pytest.approx(500_000_000 * (1 + r["portfolio_return"]))


def test_stress_without_stress_tables(ria, capsys) -> None:
    assert main(["stress", str(ria)]) == 2
    assert "stress: the scenario has no [[stress]] tables" in capsys.readouterr().err


# ============================================================================ rebalance


def test_rebalance_command(ria, tmp_path, capsys) -> None:
    capsys.readouterr()
    assert main(["rebalance", str(ria), "--json"]) == 0
    orders = json.loads(capsys.readouterr().out)
    assert orders["schema"] == "trimtab.orders/1"
    assert orders["portfolio_id"] == "client-0042"
    assert orders["as_of"] == "2024-03-31"
    assert [(o["asset"], o["side"]) for o in orders["orders"]] == [
        ("US_EQ", "sell"),
        ("INTL_EQ", "sell"),
        ("BONDS", "buy"),
    ]
    out = tmp_path / "out"
    assert main(["rebalance", str(ria), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "orders (3)" in text and "not worth a ticket" in text
    written = json.loads((out / "orders.json").read_text())
    assert [(o["asset"], o["side"]) for o in written["orders"]] == [
        (o["asset"], o["side"]) for o in orders["orders"]
    ]
    assert [o["notional"] for o in written["orders"]] == pytest.approx(
        [o["notional"] for o in orders["orders"]], rel=1e-9
    )
    assert json.loads((out / "manifest.json").read_text())["command"] == "rebalance"


def test_rebalance_below_the_threshold_does_not_trade(ria, capsys) -> None:
    calm = edit(ria, "threshold = 0.03", "threshold = 0.05", "calm.toml")
    assert main(["rebalance", str(calm), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["trade"] is False
    assert payload["reasons"]


def test_rebalance_needs_holdings(tmp_path, capsys) -> None:
    path = example("profile_moderate", tmp_path)
    assert main(["rebalance", str(path)]) == 2
    assert "holdings: a rebalance needs a [holdings] section" in capsys.readouterr().err


# ============================================================================ bad input -> 2

BAD_INPUT = {
    "misspelt key": (
        "riverside_endowment",
        "spending_rate = 0.04",
        "spending_rat = 0.04",
        ["validation.spending_rat: unknown key", "did you mean 'spending_rate'?"],
    ),
    "broken TOML line": (
        "riverside_endowment",
        'currency = "USD"',
        'currency = "USD',
        ["invalid TOML", "(at line {line},"],
    ),
    "unknown tag in a constraint": (
        "riverside_endowment",
        'tag = "alternatives"\nmax = 0.30',
        'tag = "alternativs"\nmax = 0.30',
        [
            "constraints.group[2].tag: unknown tag 'alternativs'",
            "did you mean 'alternatives'?",
        ],
    ),
    "policy weights sum to 0.9": (
        "riverside_endowment",
        "weights = { US_EQ = 0.30,",
        "weights = { US_EQ = 0.20,",
        ["policy.weights: policy weights sum to 0.9, not 1"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_scenario_is_exit_2_and_writes_nothing(case, tmp_path, capsys) -> None:
    name, old, new, messages = BAD_INPUT[case]
    good = example(name, tmp_path / "scn")
    bad = edit(good, old, new, "bad.toml")
    lines = bad.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if new.splitlines()[0] in text)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["run", str(bad), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"trimtab: error: {bad}: ")
    for message in messages:
        assert message.format(line=line) in captured.err
    assert captured.out == ""
    assert not out.exists()
    assert leftovers(out) == []


@pytest.mark.parametrize(
    ("name", "data", "key"),
    [
        ("tactical_overlay", "multi_asset_correlation.csv", "estimates.correlation"),
        ("sp500_frontier", "sp500_prices.csv.gz", "estimates.file"),
    ],
)
def test_missing_data_file_is_exit_2(name, data, key, tmp_path, capsys) -> None:
    path = example(name, tmp_path / "scn")
    (path.parent / data).unlink()
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {key}: file not found: '{data}'" in err
    assert str(path.parent / data) in err
    assert not out.exists()


def test_missing_scenario_file_is_exit_2(tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere.toml"
    assert main(["run", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert f"{missing}: scenario file not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_example_is_exit_2(tmp_path, capsys) -> None:
    folder = tmp_path / "new"
    assert main(["example", "riverside", "--dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "unknown example 'riverside'; choose from " in err
    assert "riverside_endowment" in err and "sp500_frontier" in err
    assert not folder.exists()


# ============================================================================ infeasible -> 3, solver -> 4


def test_infeasible_policy_is_exit_3_naming_the_constraints(riverside, tmp_path, capsys) -> None:
    bad = edit(
        riverside,
        '[[constraints.group]]\nname = "liquidity floor"',
        '[[constraints.group]]\nname = "alternatives floor"\ntag = "alternatives"\nmin = 0.35\n\n'
        '[[constraints.group]]\nname = "liquidity floor"',
        "infeasible.toml",
    )
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["run", str(bad), "--out", str(out)]) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith("trimtab: infeasible: ")
    assert "'alternatives floor'" in captured.err
    assert "'alternatives cap'" in captured.err
    assert "by 0.05" in captured.err  # 0.35 needed, 0.30 allowed
    assert captured.out == ""
    assert_infeasible_report(out)
    assert leftovers(out) == []


def assert_infeasible_report(out) -> None:
    """An infeasible run publishes its diagnosis (issue 14): the report, the page, the manifest."""
    assert {p.name for p in out.iterdir()} == {"manifest.json", "report.html", "report.json"}
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["status"] == "infeasible"


def test_cap_below_what_the_bands_force_is_exit_3(riverside, tmp_path, capsys) -> None:
    bad = edit(
        riverside,
        'name = "equity cap"\ntag = "equity"\nmax = 0.70',
        'name = "equity cap"\ntag = "equity"\nmax = 0.25',
        "infeasible.toml",
    )
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "'equity cap'" in err and "'policy bands'" in err
    assert_infeasible_report(tmp_path / "out")


def _fail_every_solver(monkeypatch) -> None:
    def boom(prog, tol, **options):  # adapters may take options (a workspace)
        raise RuntimeError("forced failure")

    for name in solvers.KNOWN_SOLVERS:
        monkeypatch.setattr(f"optimizer.solvers.{name.lower()}.solve", boom)


@pytest.mark.parametrize("name", ["riverside_endowment", "ria_q1_2024"])
def test_solver_failure_is_exit_4(name, tmp_path, capsys, monkeypatch) -> None:
    path = example(name, tmp_path / "scn")
    _fail_every_solver(monkeypatch)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(out)]) == 4
    captured = capsys.readouterr()
    assert captured.err.startswith("trimtab: solver failure: ")
    assert "every solver in the chain failed" in captured.err
    assert "CLARABEL: error (RuntimeError: forced failure)" in captured.err
    assert captured.out == ""
    assert not out.exists()
    assert leftovers(out) == []


# ============================================================================ atomic outputs


def test_failed_runs_leave_an_earlier_runs_outputs_untouched(
    riverside, tmp_path, capsys, monkeypatch
) -> None:
    out = tmp_path / "out"
    assert main(["run", str(riverside), "--out", str(out)]) == 0
    before = snapshot(out)
    assert set(before) == {
        "targets.csv",
        "targets.json",
        "orders.json",
        "orders.csv",
        "montecarlo.csv",
        "report.json",
        "report.html",
        "manifest.json",
    }

    # bad input and solver failure: each fails before writing (an infeasible policy
    # publishes its diagnosis instead: test_infeasible_policy_is_exit_3_naming_the_constraints)
    misspelt = edit(riverside, "spending_rate", "spending_rat", "misspelt.toml")
    assert main(["run", str(misspelt), "--out", str(out)]) == 2
    with monkeypatch.context() as m:
        _fail_every_solver(m)
        assert main(["run", str(riverside), "--out", str(out)]) == 4
    assert snapshot(out) == before
    assert leftovers(out) == []

    # a failure while the files are being written (after every other file is staged)
    def broken_manifest(*args, **kwargs):
        raise InputError("manifest failed on purpose")

    monkeypatch.setattr(outputs, "manifest", broken_manifest)
    capsys.readouterr()
    assert main(["run", str(riverside), "--out", str(out)]) == 2
    assert "manifest failed on purpose" in capsys.readouterr().err
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_a_second_run_replaces_the_outputs(riverside, tmp_path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(riverside), "--out", str(out)]) == 0
    first = json.loads((out / "manifest.json").read_text())
    changed = edit(riverside, "min = 6.8", "min = 6.9", "esg69.toml")
    assert main(["run", str(changed), "--out", str(out)]) == 0
    second = json.loads((out / "manifest.json").read_text())
    assert second["scenario_sha256"] != first["scenario_sha256"]
    assert Path(second["scenario_file"]).name == "esg69.toml"
    report = json.loads((out / "report.json").read_text())
    esg = {c["check"]: c for c in report["validation"]}["ESG floor"]
    assert esg["figure"] >= 6.9 - 1e-6
    assert leftovers(out) == []
