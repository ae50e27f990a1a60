"""Soft constraints end to end: ``priority = N`` in a scenario file, through ``trimtab run``.

The shipped endowment caps alternatives at 30%; a floor of 45% on the same tag
cannot hold with it. As a hard constraint it makes the run infeasible (exit 3);
with ``priority = 1`` the run succeeds, relaxes the floor by exactly 15 points,
says so on stdout, in ``--json``, in report.json and in manifest.json, and keeps
every other constraint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenarios.cli import main

FLOOR = """

[[constraints.group]]
name = "alternatives floor"
tag = "alternatives"
min = 0.45
{priority}
"""


def scenario(tmp_path: Path, priority: str) -> Path:
    assert main(["example", "riverside_endowment", "--dir", str(tmp_path)]) == 0
    path = tmp_path / "riverside_endowment.toml"
    path.write_text(
        path.read_text(encoding="utf-8") + FLOOR.format(priority=priority), encoding="utf-8"
    )
    return path


def test_a_hard_conflict_is_infeasible(tmp_path, capsys) -> None:
    path = scenario(tmp_path, "")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "alternatives floor" in err and "alternatives cap" in err
    report = tmp_path / "out" / "report.json"  # the diagnosis is published (issue 14)
    assert json.loads(report.read_text(encoding="utf-8"))["status"] == "infeasible"


def test_a_soft_conflict_is_relaxed_and_reported(tmp_path, capsys) -> None:
    path = scenario(tmp_path, "priority = 1")
    out_dir = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out_dir)]) == 0
    text = capsys.readouterr().out
    assert "relaxed: 'alternatives floor' (priority 1) by 0.1500" in text

    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    (entry,) = report["allocation"]["relaxed"]
    assert entry["name"] == "alternatives floor" and entry["priority"] == 1
    assert entry["amount"] == pytest.approx(0.15, abs=1e-7)
    checks = report["constraint_checks"]
    assert all(c["ok"] for c in checks.values())  # verified against the relaxed limits
    weights = {row["asset"]: row["target"] for row in report["targets"]}
    alternatives = ["REAL_ASSETS", "PRIVATE_EQUITY", "HEDGE_FUNDS"]
    assert sum(weights[a] for a in alternatives) == pytest.approx(0.30, abs=1e-7)  # cap holds

    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    where = {r["where"] for r in manifest["relaxations"]}
    assert where == {"allocation", "rebalance"}  # the rebalance keeps the same soft floor
    assert report["rebalance"]["relaxed"][0]["name"] == "alternatives floor"


def test_json_output_lists_the_relaxation(tmp_path, capsys) -> None:
    path = scenario(tmp_path, "priority = 2")
    capsys.readouterr()  # what `example` printed
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    found = json.dumps(doc)
    assert '"alternatives floor"' in found and '"priority": 2' in found


def test_without_a_conflict_priorities_change_nothing(tmp_path, capsys) -> None:
    soft = scenario(tmp_path / "soft", "priority = 1").read_text(encoding="utf-8")
    hard = soft.replace("min = 0.45", "min = 0.10").replace("priority = 1", "")
    soft = soft.replace("min = 0.45", "min = 0.10")
    paths = []
    for name, text in (("soft.toml", soft), ("hard.toml", hard)):
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    reports = []
    for p in paths:
        out_dir = tmp_path / f"out-{p.stem}"
        assert main(["run", str(p), "--out", str(out_dir)]) == 0
        reports.append(json.loads((out_dir / "report.json").read_text(encoding="utf-8")))
    capsys.readouterr()
    a, b = reports
    assert a["allocation"]["relaxed"] == [] and b["allocation"]["relaxed"] == []
    wa = {row["asset"]: row["target"] for row in a["targets"]}
    wb = {row["asset"]: row["target"] for row in b["targets"]}
    assert wa == pytest.approx(wb, abs=1e-9)
