"""Every shipped example's report.html in headless Chromium, with the network blocked.

Debian's ``chromium`` (/usr/bin/chromium; .ci/run installs it) driven by
playwright. Each page: no console error, no request for anything but the file
itself, every chart present with the expected number of marks, the numbers
behind the marks equal to report.json (and backtest_values.csv), a screenshot
and a PDF. The size and load time of each report are written to
``report-metrics.json`` in the session's temporary folder (and printed; no
timed assertion).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

CHROMIUM = os.environ.get("TRIMTAB_CHROMIUM", "/usr/bin/chromium")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)
if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install -y chromium) "
        "or set TRIMTAB_CHROMIUM",
        allow_module_level=True,
    )

NAMES = [
    "run:french_industries_backtest",
    "run:profile_aggressive",
    "run:profile_conservative",
    "run:profile_moderate",
    "run:ria_q1_2024",
    "run:riverside_endowment",
    "run:sp500_frontier",
    "run:tactical_overlay",
    "run:taxable_account",
    "backtest:french_industries_backtest",
    "infeasible",
    "frontier:sp500_frontier",
]
REL = 1e-9


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    found: dict[str, dict] = {}
    yield found
    path = tmp_path_factory.getbasetemp() / "report-metrics.json"
    path.write_text(json.dumps(found, indent=2), encoding="utf-8")
    biggest = max(found.items(), key=lambda kv: kv[1]["bytes"], default=None)
    if biggest:
        print(f"\nlargest report: {biggest[0]} {biggest[1]} (all in {path})")


def open_report(browser, html: Path):
    """The loaded page, its console errors and every request that was not the file."""
    page = browser.new_page(viewport={"width": 900, "height": 1200})
    errors: list[str] = []
    blocked: list[str] = []
    url = html.resolve().as_uri()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url == url:
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    t0 = time.perf_counter()
    page.goto(url, wait_until="load")
    seconds = time.perf_counter() - t0
    return page, errors, blocked, seconds


def marks(page, chart: str, kind: str, series: str | None = None) -> list[dict]:
    """The data-* attributes of a chart's marks of one kind (and series)."""
    sel = f'svg[data-chart="{chart}"] .mark[data-kind="{kind}"]'
    if series is not None:
        sel += f'[data-series="{series}"]'
    return page.eval_on_selector_all(sel, "els => els.map(e => Object.assign({}, e.dataset))")


def close(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=REL, abs_tol=1e-12)


def all_close(a, b) -> bool:
    return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))


def expected_charts(rep: dict) -> set[str]:
    if rep.get("status") == "infeasible":
        return {"diagnosis"}
    if "backtest" in rep:
        return {"backtest-value", "backtest-drawdown", "attribution"}
    if rep.get("command") == "frontier":
        return {"frontier"}
    ch = rep["charts"]
    kinds = {"frontier", "allocation-asset", "risk"}
    if ch["allocation"]["by_tag"]:
        kinds.add("allocation-tag")
    if rep["stress"]:
        kinds.add("stress")
    if rep.get("montecarlo"):
        kinds |= {"montecarlo-value", "montecarlo-spending"}
    return kinds


def check_run(page, rep: dict) -> None:
    ch = rep["charts"]
    fr = ch["frontier"]
    lines = marks(page, "frontier", "line")
    want = [k for k in ("policy", "unconstrained") if fr[k]] + (["cml"] if fr["cml"] else [])
    assert len(lines) == len(want)
    pol = marks(page, "frontier", "line", "Frontier under the policy constraints")
    assert all_close(json.loads(pol[0]["ys"]), [p["expected_return"] for p in fr["policy"]])
    assert all_close(json.loads(pol[0]["xs"]), [p["volatility"] for p in fr["policy"]])
    points = marks(page, "frontier", "point")
    assert len(points) == len(fr["marks"]) + (1 if fr["cml"] else 0)
    (target,) = marks(page, "frontier", "point", "Target")
    assert close(target["x"], fr["marks"]["target"]["volatility"])
    assert close(target["y"], rep["expected_return"])
    # allocation by asset: one bar per asset and series; targets equal report.json's
    rows = ch["allocation"]["by_asset"]
    bars = marks(page, "allocation-asset", "bar", "Target")
    assert [b["x"] for b in bars] == [t["asset"] for t in rep["targets"]]
    assert all_close([b["y"] for b in bars], [t["target"] for t in rep["targets"]])
    series = 1 + ("current" in rows[0]) + ("after_trades" in rows[0])
    assert len(marks(page, "allocation-asset", "bar")) == series * len(rows)
    if "policy" in rows[0]:
        ticks = marks(page, "allocation-asset", "tick", "Policy")
        assert all_close([t["y"] for t in ticks], [rep["policy"][r["asset"]] for r in rows])
    banded = [r for r in rows if r["lower"] is not None or r["upper"] is not None]
    assert len(marks(page, "allocation-asset", "band")) == len(banded)
    # risk: shares of the volatility
    share = marks(page, "risk", "bar", "Share of volatility")
    rc = rep["risk_contributions"]
    assert all_close([s["y"] for s in share], [rc[r["asset"]] / rep["volatility"] for r in rows])
    if rep["stress"]:
        bars = marks(page, "stress", "bar")
        assert all_close([b["y"] for b in bars], [s["portfolio_return"] for s in rep["stress"]])
        floors = {s["floor"] for s in rep["stress"] if s["floor"] is not None}
        rules = marks(page, "stress", "rule")
        assert sorted(float(r["y"]) for r in rules) == pytest.approx(sorted(f - 1 for f in floors))
    mc = rep.get("montecarlo")
    if mc:
        assert len(marks(page, "montecarlo-value", "fan")) == 2
        (median,) = marks(page, "montecarlo-value", "line")
        q = mc["real_value_percentiles"]["p50"]
        assert all_close(json.loads(median["ys"]), [v / q[0] for v in q])
        assert len(marks(page, "montecarlo-spending", "line")) == 1
        text = page.text_content('svg[data-chart="montecarlo-value"]') or ""
        assert f"{mc['summary']['prob_preserve_real_value'] * 100:.1f}%" in text


def check_tax(page, rep: dict) -> None:
    """The tax panel: the estimated tax, the gains by term and one row per lot sold."""
    text = page.inner_text("main")
    assert "tax paid against tracking error removed" in text.lower()
    assert f"{abs(rep['tax']['estimated_tax']):,.0f}" in text
    lots = rep["rebalance"]["lot_sales"]
    assert page.locator("table.lots tbody tr").count() == len(lots)
    assert all(r["lot_id"] in page.inner_text("table.lots") for r in lots)
    assert f"{rep['tax']['long_gains']:,.0f}" in page.inner_text("table.gains")


def check_frontier(page, rep: dict, folder: Path) -> None:
    """``trimtab frontier --out``: the points of frontier.csv, the policy marked, no target."""
    fr = rep["charts"]["frontier"]
    table = pd.read_csv(folder / "frontier.csv", index_col=0)
    (pol,) = marks(page, "frontier", "line", "Frontier under the policy constraints")
    assert all_close(json.loads(pol["ys"]), table["expected_return"].tolist())
    assert all_close(json.loads(pol["xs"]), table["volatility"].tolist())
    assert "target" not in fr["marks"]
    points = marks(page, "frontier", "point")
    assert len(points) == len(fr["marks"]) + (1 if fr["cml"] else 0)


def check_backtest(page, rep: dict, folder: Path) -> None:
    values = pd.read_csv(folder / "backtest_values.csv", index_col=0, parse_dates=True)
    lines = marks(page, "backtest-value", "line")
    assert [ln["series"] for ln in lines] == list(values.columns)
    for ln in lines:
        assert int(ln["n"]) == len(values)
        col = values[ln["series"]]
        assert all_close(json.loads(ln["ys"]), (col / col.iloc[0]).tolist())
    assert len(marks(page, "backtest-drawdown", "line")) == values.shape[1]
    att = rep["charts"]["attribution"]["policies"]
    bars = marks(page, "attribution", "bar")
    assert len(bars) == sum(len(p["by_segment"]) for p in att.values())
    first = next(iter(att))
    got = {b["x"]: float(b["y"]) for b in marks(page, "attribution", "bar", first)}
    assert all(close(got[r["segment"]], r["total"]) for r in att[first]["by_segment"])
    table = page.inner_text("table.comparison")
    assert all(row["policy"] in table for row in rep["comparison"])


@pytest.mark.parametrize("name", NAMES)
def test_report_in_chromium(name, reports, browser, metrics, tmp_path) -> None:
    folder = reports[name]
    html = folder / "report.html"
    rep = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    page, errors, blocked, seconds = open_report(browser, html)
    try:
        assert errors == []
        assert blocked == []
        # nothing wider than the page (a wide table once ran off the right edge)
        assert page.evaluate("document.documentElement.scrollWidth") <= 900
        kinds = set(
            page.eval_on_selector_all("figure.chart", "els => els.map(e => e.dataset.chart)")
        )
        assert kinds == expected_charts(rep)
        for kind in kinds:  # title, axes labels, legend and a data table behind each
            fig = f'figure.chart[data-chart="{kind}"]'
            assert (page.text_content(f"{fig} svg title") or "").strip()
            assert page.locator(f"{fig} .axis-label").count() == 2
            assert page.locator(f"{fig} .legend-item").count() >= 1
            assert page.locator(f"{fig} details.table table tbody tr").count() >= 1
        if rep.get("status") == "infeasible":
            (bar,) = marks(page, "diagnosis", "bar")
            assert bar["x"] == rep["diagnosis"][0]["name"]
            assert close(bar["y"], rep["diagnosis"][0]["relax_by"])
            assert "equity cap" in page.inner_text("main")
        elif "backtest" in rep:
            check_backtest(page, rep, folder)
        elif rep.get("command") == "frontier":
            check_frontier(page, rep, folder)
        else:
            check_run(page, rep)
            if rep.get("tax"):
                check_tax(page, rep)
        shot, pdf = tmp_path / "report.png", tmp_path / "report.pdf"
        page.screenshot(path=str(shot), full_page=True)
        page.pdf(path=str(pdf), format="A4", print_background=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000
        metrics[name] = {"bytes": html.stat().st_size, "load_seconds": round(seconds, 3)}
    finally:
        page.close()
