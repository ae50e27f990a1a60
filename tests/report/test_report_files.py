"""report.html as a file: written by every run, offline, re-rendered by ``trimtab report``;
the plotting functions and their errors; the chart kit's ticks (property test).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_cases import call
from hypothesis import example, given, settings
from hypothesis import strategies as st

from models import mean_variance as mv
from optimizer import InputError, Universe
from scenarios.backtest import BacktestResult
from scenarios.montecarlo import simulate
from scenarios.report import (
    Figure,
    plot_allocation,
    plot_backtest,
    plot_frontier,
    plot_montecarlo,
    plot_risk,
    plot_stress,
)
from scenarios.report.folder import render_folder
from scenarios.report.svg import nice_ticks
from scenarios.stress import apply

#: Anything that would make the browser fetch: a URL attribute, CSS url()/@import, a script.
FETCH = re.compile(
    r"(?:\s(?:src|href|xlink:href|srcset|poster|data)\s*="
    r"|url\(|@import|<script|<link|<img|<iframe)",
    re.IGNORECASE,
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_run_writes_report_html_listed_in_the_manifest(reports) -> None:
    for name, folder in reports.items():
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert "report.html" in manifest["files"], name
        assert manifest["checksums"]["report.html"]["sha256"] == sha(folder / "report.html")
        text = (folder / "report.html").read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>")
        assert FETCH.search(text) is None, name
        # the only URL in the page is the SVG namespace
        assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {"http://www.w3.org/2000/svg"}


def test_the_report_json_has_what_the_charts_need(reports) -> None:
    rep = json.loads((reports["run:riverside_endowment"] / "report.json").read_text())
    ch = rep["charts"]
    assert ch["frontier"]["unconstrained_constraints"] == ["budget", "long-only"]
    assert len(ch["frontier"]["policy"]) == ch["frontier"]["points"]
    assert ch["frontier"]["cml"]["risk_free_rate"] == 0.02
    assert set(ch["frontier"]["marks"]) == {"target", "policy", "current"}
    by_asset = {r["asset"]: r for r in ch["allocation"]["by_asset"]}
    assert by_asset["US_EQ"]["lower"] == pytest.approx(0.20)  # policy 30% +/- 10 points
    assert by_asset["US_EQ"]["upper"] == pytest.approx(0.40)
    by_tag = {r["tag"]: r for r in ch["allocation"]["by_tag"]}
    assert by_tag["equity"]["upper"] == pytest.approx(0.70)  # the equity cap
    spend = ch["montecarlo"]["real_spending_percentiles"]
    assert len(spend["p50"]) == rep["montecarlo"]["years"]
    # the keys report.json had before are all still there
    assert {"targets", "expected_return", "stress", "montecarlo", "validation"} <= set(rep)


def test_trimtab_report_redraws_the_same_page_and_keeps_the_manifest_true(reports, tmp_path):
    for name in ("run:riverside_endowment", "backtest:french_industries_backtest"):
        src = reports[name]
        folder = tmp_path / name.replace(":", "-")
        folder.mkdir()
        for p in src.iterdir():
            (folder / p.name).write_bytes(p.read_bytes())
        before = (folder / "report.html").read_bytes()
        (folder / "report.html").write_text("stale", encoding="utf-8")
        manifest = json.loads((folder / "manifest.json").read_text())
        code, out, err = call(["report", str(folder)])
        assert code == 0, err
        assert (folder / "report.html").read_bytes() == before
        after = json.loads((folder / "manifest.json").read_text())
        assert after["checksums"]["report.html"]["sha256"] == sha(folder / "report.html")
        assert sorted(after["files"]) == sorted(manifest["files"])
        assert after["scenario_sha256"] == manifest["scenario_sha256"]
    page = tmp_path / "elsewhere" / "page.html"
    code, out, err = call(["report", str(reports["infeasible"]), "--out", str(page), "--json"])
    assert code == 0, err
    assert json.loads(out) == {"report": str(page)}
    assert page.read_text(encoding="utf-8") == render_folder(reports["infeasible"])


def test_an_infeasible_run_publishes_its_diagnosis(reports) -> None:
    folder = reports["infeasible"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json",
        "report.html",
        "report.json",
    ]
    rep = json.loads((folder / "report.json").read_text())
    assert rep["status"] == "infeasible"
    assert rep["diagnosis"][0]["name"] == "equity cap"
    assert rep["diagnosis"][0]["relax_by"] == pytest.approx(0.05)
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert "Infeasible" in text and "equity cap" in text
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "infeasible"


@pytest.mark.parametrize(
    ("setup", "culprit"),
    [
        (lambda d: None, "no such folder"),
        (lambda d: d.mkdir(), "report.json: no such file"),
        (lambda d: (d.mkdir(), (d / "report.json").write_text("{nope")), "not valid JSON"),
        (lambda d: (d.mkdir(), (d / "report.json").write_text("[1]")), "not a trimtab report"),
    ],
)
def test_trimtab_report_errors_name_the_folder_or_file(setup, culprit, tmp_path) -> None:
    folder = tmp_path / "run"
    setup(folder)
    code, _, err = call(["report", str(folder)])
    assert code == 2
    assert str(folder) in err and culprit in err
    assert "trimtab run SCENARIO --out DIR" in err or "run the scenario again" in err


def test_a_backtest_folder_without_its_values_is_refused(reports, tmp_path) -> None:
    folder = tmp_path / "bt"
    folder.mkdir()
    src = reports["backtest:french_industries_backtest"]
    (folder / "report.json").write_bytes((src / "report.json").read_bytes())
    with pytest.raises(InputError, match=r"backtest_values\.csv: no such file"):
        render_folder(folder)


# ------------------------------------------------------------------------------ plotting


@pytest.fixture(scope="module")
def small():
    assets = ["A", "B", "C"]
    mu = pd.Series([0.08, 0.05, 0.03], index=assets)
    vol = np.array([0.18, 0.10, 0.04])
    corr = np.array([[1, 0.3, 0.1], [0.3, 1, 0.2], [0.1, 0.2, 1]])
    cov = pd.DataFrame(np.outer(vol, vol) * corr, index=assets, columns=assets)
    return mu, cov


def svg_marks(fig: Figure, kind: str) -> int:
    return fig.svg.count(f'data-kind="{kind}"')


def test_plot_frontier_draws_the_frontier_and_the_marked_portfolios(small, tmp_path) -> None:
    mu, cov = small
    fr = mv.efficient_frontier(mu, cov, points=12)
    target = mv.max_sharpe(mu, cov, risk_free_rate=0.01)
    fig = plot_frontier(
        fr, unconstrained=fr, target=target, policy=(0.1, 0.05), risk_free_rate=0.01
    )
    assert isinstance(fig, Figure)
    assert svg_marks(fig, "line") == 3  # two frontiers and the capital market line
    assert svg_marks(fig, "point") == 3  # target, policy, tangency
    assert fig._repr_svg_().startswith("<svg") and "<table" in fig._repr_html_()
    out = fig.save(tmp_path / "f.svg")
    assert out.read_text().startswith("<?xml")
    assert "<table" in fig.save(tmp_path / "f.html").read_text()


def test_plot_functions_of_the_other_objects(small) -> None:
    mu, cov = small
    alloc = mv.min_variance(cov, mu=mu)
    uni = Universe(assets=["A", "B", "C"], tags={"A": ["equity"], "B": ["equity"], "C": ["bonds"]})
    policy = pd.Series({"A": 0.3, "B": 0.3, "C": 0.4})
    fig = plot_allocation(alloc, policy=policy, bands=0.05)
    assert svg_marks(fig, "bar") == 3 and svg_marks(fig, "tick") == 3
    assert svg_marks(fig, "band") == 3
    fig = plot_allocation(alloc, policy=policy, bands=0.1, universe=uni, by="tag")
    assert svg_marks(fig, "bar") == 2
    assert svg_marks(plot_risk(alloc), "bar") == 6
    stresses = [apply(alloc.weights, {"A": -0.3}, name="crash", value=100.0, floor=0.9)]
    fig = plot_stress(stresses)
    assert svg_marks(fig, "bar") == 1 and svg_marks(fig, "rule") == 1
    mc = simulate(alloc.weights, mu, cov, years=5, paths=200, seed=1)
    assert svg_marks(plot_montecarlo(mc), "fan") == 2
    assert svg_marks(plot_montecarlo(mc, kind="spending"), "line") == 1
    dates = pd.date_range("2020-01-31", periods=24, freq="ME")
    values = pd.DataFrame({"x": np.linspace(1, 2, 24), "y": np.linspace(1, 1.5, 24)}, index=dates)
    assert svg_marks(plot_backtest(values), "line") == 2
    res = BacktestResult("calendar", values["x"], *(pd.DataFrame(),) * 2, *(pd.Series(),) * 4)
    assert svg_marks(plot_backtest(res, kind="drawdown"), "line") == 1


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda s: plot_frontier("frontier"), "frontier: expected a Frontier"),
        (
            lambda s: plot_frontier(mv.efficient_frontier(*s, points=3), target=(1.0, None)),
            "target: needs a volatility and an expected return",
        ),
        (lambda s: plot_allocation(pd.Series({"A": 1.0}), by="sector"), "by='sector'"),
        (lambda s: plot_allocation(pd.Series({"A": 1.0}), by="tag"), "by='tag' needs universe="),
        (
            lambda s: plot_allocation(pd.Series({"A": 1.0}), bands=0.05),
            "bands: a width needs policy=",
        ),
        (lambda s: plot_stress([]), "results: give at least one stress result"),
        (lambda s: plot_montecarlo(None), "mc: expected a MonteCarloResult"),
        (lambda s: plot_backtest(3), "result: expected a BacktestResult"),
        (lambda s: plot_backtest(pd.DataFrame({"x": [1.0]}), kind="pie"), "kind='pie'"),
    ],
)
def test_plot_errors_name_the_argument_and_the_fix(make, match, small) -> None:
    with pytest.raises(InputError, match=re.escape(match)):
        make(small)


def test_saving_a_figure_elsewhere_is_refused_naming_the_path(small, tmp_path) -> None:
    fig = plot_frontier(mv.efficient_frontier(*small, points=3))
    with pytest.raises(
        InputError,
        match=r"f\.png: cannot save a figure as \.png: give a path "
        r"ending in \.svg or \.html",
    ):
        fig.save(tmp_path / "f.png")
    with pytest.raises(InputError, match=r"nowhere.*cannot write the figure"):
        fig.save(tmp_path / "nowhere" / "f.svg")


def test_ticks_start_at_a_round_low_end_despite_float_noise() -> None:
    assert nice_ticks(0.3, 0.8)[0] == 0.3  # 0.3 / 0.1 is 2.9999...
    assert nice_ticks(-7.061949725032682e-09, 100.0)[0] == -25.0  # below 0: the data is


@settings(max_examples=60, deadline=None)
@given(
    lo=st.floats(-10, 10, allow_nan=False),
    span=st.floats(1e-4, 100, allow_nan=False),
)
@example(lo=-7.061949725032682e-09, span=100.0)  # once started at 0, above the data
def test_ticks_cover_the_range_in_round_equal_steps(lo, span) -> None:
    ticks = nice_ticks(lo, lo + span)
    assert ticks[0] <= lo + 1e-9 and ticks[-1] >= lo + span - 1e-9
    steps = np.diff(ticks)
    assert np.all(steps > 0) and np.allclose(steps, steps[0], rtol=1e-6, atol=1e-12)
    assert 2 <= len(ticks) <= 12


def test_trimtab_report_out_must_be_a_file_name(reports, tmp_path) -> None:
    code, _, err = call(["report", str(reports["infeasible"]), "--out", str(tmp_path)])
    assert code == 2
    assert f"{tmp_path}: is a folder: give a file name such as report.html" in err


def test_a_frontier_that_could_not_be_made_is_left_out_with_its_reason(reports) -> None:
    from scenarios.report import render_report

    rep = json.loads((reports["run:riverside_endowment"] / "report.json").read_text())
    rep["charts"]["frontier"].update(policy=None, policy_error="the solver failed on purpose")
    text = render_report(rep)
    assert "Not drawn: the solver failed on purpose" in text
    assert "Frontier, budget and long-only only" in text


def test_a_chart_that_fails_costs_a_recorded_warning_not_the_run(tmp_path, monkeypatch) -> None:
    from cli_cases import example

    from scenarios import outputs

    scenario = example("ria_q1_2024", tmp_path)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("broken on purpose")

    monkeypatch.setattr(outputs, "run_charts", broken)
    code, _, err = call(["run", str(scenario), "--out", str(tmp_path / "a")])
    assert code == 0, err
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    said = [w["message"] for w in manifest["warnings"]]
    assert any(
        "report.html: the charts' data could not be made (ZeroDivisionError" in m for m in said
    )
    assert (tmp_path / "a" / "report.html").exists()
    monkeypatch.setattr(outputs, "render_report", broken)
    code, _, err = call(["run", str(scenario), "--out", str(tmp_path / "b")])
    assert code == 0, err
    assert "broken on purpose" in (tmp_path / "b" / "report.html").read_text()
    assert "report.html: the page could not be drawn (ZeroDivisionError" in err
