"""report.html: one self-contained page from report.json (and the run's CSVs).

:func:`render_report` draws a run's report (summary, frontier, allocation,
risk, stress, Monte Carlo), a backtest's (comparison, value and drawdown
paths, attribution) or an infeasible run's (the diagnosis). The page makes no
request of any kind: inline CSS, inline SVG, system fonts, no script, no
image URL. It prints to PDF with each chart kept whole on a page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from scenarios.report import charts
from scenarios.report.svg import Figure, Table, esc, pct

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial,
  sans-serif; color: #1d2733; background: #f4f6f8; margin: 0; line-height: 1.4; }
main { max-width: 860px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
header h1 { font-size: 24px; margin: 0 0 4px; }
header p { margin: 0; color: #4a5563; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 2px solid #0b63a6; padding-bottom: 3px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; padding: 0; }
.kpi { list-style: none; border: 1px solid #d5dbe1; border-radius: 6px; padding: 8px 12px;
  min-width: 120px; }
.kpi b { display: block; font-size: 20px; }
.kpi span { font-size: 12px; color: #4a5563; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; width: 100%; }
th, td { border-bottom: 1px solid #e3e7eb; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
thead th { background: #eef2f5; }
table.checks td:nth-child(4), table.checks th:nth-child(4) { text-align: left; }
table.comparison { font-size: 11.5px; }
table.gains { width: auto; min-width: 40%; }
table.lots td { overflow-wrap: anywhere; }
table.comparison th, table.comparison td { padding: 3px 4px; }
.pass { color: #17703a; font-weight: 600; }
.fail { color: #b22222; font-weight: 600; }
.na { color: #6b7580; }
.banner { border-radius: 6px; padding: 10px 14px; margin: 12px 0; font-weight: 600; }
.banner.ok { background: #e6f4ea; color: #17703a; }
.banner.bad { background: #fbe9e9; color: #b22222; }
figure.chart { margin: 16px 0 22px; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #4a5563; margin-top: 2px; }
details.table summary { cursor: pointer; font-size: 12px; color: #0b63a6; }
details.table table { font-size: 12px; }
p.note { font-size: 12px; color: #4a5563; margin: 2px 0 8px; }
ul.notes li { font-size: 13px; }
footer { margin-top: 32px; font-size: 11px; color: #6b7580; }
section { break-inside: auto; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { background: #fff; }
  main { max-width: none; padding: 0; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  section.charts { break-before: page; page-break-before: always; }
  details.table { display: none; }
  .kpi, table { break-inside: avoid; }
}
"""


def page(title: str, body: str) -> str:
    """A whole HTML document around ``body`` with the report's CSS."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _table(columns: list[str], rows: list[list[Any]], cls: str = "summary") -> str:
    return Table(columns, [[str(c) for c in r] for r in rows]).to_html(cls)


def _kpis(items: list[tuple[str, str]]) -> str:
    li = "".join(f'<li class="kpi"><b>{esc(v)}</b><span>{esc(k)}</span></li>' for k, v in items)
    return f'<ul class="kpis">{li}</ul>'


def _mark(passed: bool | None) -> str:
    return {
        True: '<span class="pass">PASS</span>',
        False: '<span class="fail">FAIL</span>',
        None: '<span class="na">n/a</span>',
    }[passed]


def _header(rep: Mapping[str, Any], what: str) -> str:
    scn = rep.get("scenario") or {}
    bits = [f"{esc(scn.get('id', ''))}", f"scenario file {esc(scn.get('file', ''))}"]
    if rep.get("as_of"):
        bits.insert(1, f"as of {esc(rep['as_of'])}")
    model = rep.get("model") or {}
    if model.get("kind"):
        obj = f" / {model['objective']}" if model.get("objective") else ""
        bits.append(f"model {esc(model['kind'])}{esc(obj)}")
    return (
        f"<header><h1>{esc(scn.get('name', 'trimtab report'))}</h1>"
        f"<p>{esc(what)} &middot; {' &middot; '.join(bits)}</p></header>"
    )


def _section(title: str, inner: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f"<section{c}><h2>{esc(title)}</h2>{inner}</section>"


def _figures(figs: list[Figure]) -> str:
    return "".join(f.to_html() for f in figs)


def _notes(rep: Mapping[str, Any]) -> str:
    items = [f"{w.get('source', '')}: {w.get('message', '')}" for w in rep.get("warnings") or []]
    items += [f"repair: {w.get('message', '')}" for w in rep.get("repairs") or []]
    if not items:
        return ""
    lis = "".join(f"<li>{esc(t)}</li>" for t in items)
    return _section("Warnings and repairs", f'<ul class="notes">{lis}</ul>')


def _run_summary(rep: Mapping[str, Any], ch: Mapping[str, Any]) -> str:
    out = []
    passed = rep.get("passed")
    failed = rep.get("failed_checks") or []
    if passed is False:
        out.append(
            f'<p class="banner bad">Policy checks failed ({len(failed)}): '
            f"{esc('; '.join(failed))}</p>"
        )
    else:
        out.append('<p class="banner ok">Every policy check passed.</p>')
    kp = [
        ("Expected return", pct(rep.get("expected_return"), 2)),
        ("Volatility", pct(rep.get("volatility"), 2)),
        ("Sharpe ratio", "n/a" if rep.get("sharpe") is None else f"{rep['sharpe']:.2f}"),
        ("Risk-free rate", pct(rep.get("risk_free_rate"), 2)),
    ]
    if ch.get("value"):
        kp.insert(0, ("Portfolio value", f"{ch['value']:,.0f} {ch.get('currency', '')}"))
    out.append(_kpis(kp))
    rows = (ch.get("allocation") or {}).get("by_asset") or []
    if rows:
        cols = [c for c in ("policy", "current", "target", "after_trades") if c in rows[0]]
        body = [
            [r["asset"], r.get("name", "")]
            + [pct(r[c], 2) for c in cols]
            + ["" if "policy" not in r else _points(r["target"] - r["policy"])]
            for r in rows
        ]
        heads = ["Asset", "Name"] + [c.replace("_", " ").capitalize() for c in cols]
        out.append(
            "<h3>Target against policy and current holdings</h3>"
            + _table(heads + ["Target - policy (points)"], body)
        )
    out.append(_tactical(rep))
    out.append(_orders(rep))
    out.append(_tax(rep))
    out.append(_checks(rep))
    out.append(_relaxed(rep))
    return _section("Summary", "".join(out))


def _tactical(rep: Mapping[str, Any]) -> str:
    tac = rep.get("tactical")
    if not tac:
        return ""
    rows = [
        [
            r.get("name", ""),
            r.get("condition", ""),
            "yes" if r.get("fired") else "no",
            _points(float(r.get("equity") or 0.0)),
        ]
        for r in tac.get("rules") or []
    ]
    tilt = (
        f"Equity tilt {_points(tac.get('equity_tilt') or 0.0)} points"
        f" (uncapped {_points(tac.get('uncapped_tilt') or 0.0)})."
    )
    return (
        "<h3>Tactical overlay</h3>"
        + _table(["Rule", "Condition", "Fired", "Equity tilt (points)"], rows)
        + f'<p class="note">{esc(tilt)} The target is the nearest portfolio to the tilted '
        "one that meets every constraint.</p>"
    )


def _points(diff: float) -> str:
    """A weight difference in percentage points, ``+10.00`` (``0.00`` for solver dust)."""
    v = round(diff * 100, 2)
    return "0.00" if v == 0 else f"{v:+.2f}"


def _orders(rep: Mapping[str, Any]) -> str:
    reb = rep.get("rebalance")
    trig = rep.get("trigger")
    if reb is None:
        if trig and not trig.get("trade"):
            why = "; ".join(map(str, trig.get("reasons") or []))
            return f"<h3>Orders</h3><p>No trade today: {esc(why)}</p>"
        return ""
    orders = (reb.get("orders") or {}).get("orders") or []
    cur = (reb.get("orders") or {}).get("currency", "")
    body = [
        [
            o["asset"],
            o["side"],
            f"{o['notional']:,.0f}",
            "" if o.get("quantity") is None else f"{o['quantity']:,.4g}",
            f"{o['est_cost']:,.2f}",
        ]
        for o in orders
    ]
    costs = reb.get("costs") or {}
    figures = [
        ("Orders", str(len(orders))),
        ("Turnover", pct(reb.get("turnover"), 2)),
        (f"Estimated cost ({cur})", f"{reb.get('total_cost', 0):,.0f}"),
        ("Tracking error before", pct(reb.get("tracking_error_before"), 2)),
        ("Tracking error after", pct(reb.get("tracking_error_after"), 2)),
    ]
    detail = ", ".join(f"{k} {v:,.0f}" for k, v in costs.items() if isinstance(v, int | float))
    return (
        "<h3>Orders and their costs</h3>"
        + _kpis(figures)
        + (
            _table(["Asset", "Side", f"Notional ({cur})", "Quantity", f"Est. cost ({cur})"], body)
            if body
            else "<p>No orders.</p>"
        )
        + (f'<p class="note">Costs: {esc(detail)}.</p>' if detail else "")
    )


def _money(v: Any) -> str:
    return "n/a" if not isinstance(v, int | float) else f"{v:,.0f}"


def _tax(rep: Mapping[str, Any]) -> str:
    """The tax panel of a tax-aware rebalance: tax against tracking error, gains, lots sold."""
    tax = rep.get("tax")
    if not tax:
        return ""
    cur = ((rep.get("rebalance") or {}).get("orders") or {}).get("currency") or ""
    paid = tax.get("estimated_tax")
    per = tax.get("tax_per_te_point")
    figures = [
        (
            f"Estimated tax ({cur})" if (paid or 0) >= 0 else f"Tax credit ({cur})",
            _money(None if paid is None else abs(paid)),
        ),
        ("Tracking error removed", pct(tax.get("tracking_error_removed"), 2)),
        (f"Tax per point removed ({cur})", "n/a" if per is None else f"{per:,.0f}"),
        ("Lots sold", str(tax.get("lots_sold", 0))),
    ]
    gains = [
        ["Short-term", _money(tax.get("short_gains"))],
        ["Long-term", _money(tax.get("long_gains"))],
        ["Net", _money(tax.get("net_gains"))],
    ]
    lots = (rep.get("rebalance") or {}).get("lot_sales") or []
    body = [
        [
            r.get("asset", ""),
            r.get("lot_id", ""),
            f"{r['quantity']:,.4g}" if isinstance(r.get("quantity"), int | float) else "",
            f"{r['basis']:,.2f}" if isinstance(r.get("basis"), int | float) else "",
            str(r.get("acquired") or "")[:10],
            r.get("term", ""),
            _money(r.get("gain")),
            "yes" if r.get("wash") else "",
        ]
        for r in lots
    ]
    notes = [f"Directions decided by the {tax.get('method') or 'n/a'} method."]
    if tax.get("blocked"):
        notes.append(f"Not bought (wash-sale rule): {', '.join(map(str, tax['blocked']))}.")
    if tax.get("wash_sales"):
        notes.append(f"{tax['wash_sales']} lot(s) sold at a loss the wash-sale rule disallows.")
    heads = ["Asset", "Lot", "Quantity", "Basis", "Acquired", "Term", f"Gain ({cur})", "Wash"]
    return (
        "<h3>Taxes: tax paid against tracking error removed</h3>"
        + _kpis(figures)
        + _table(["Realized gains", f"Amount ({cur})"], gains, "summary gains")
        + (_table(heads, body, "summary lots") if body else "<p>No lot sold.</p>")
        + f'<p class="note">{esc(" ".join(notes))}</p>'
    )


def _checks(rep: Mapping[str, Any]) -> str:
    rows = []
    for c in rep.get("validation") or []:
        fig = c.get("figure")
        rows.append(
            [
                esc(c["check"]),
                _mark(c.get("passed")),
                "" if fig is None else f"{0.0 if abs(fig) < 1e-9 else fig:.6g}",
                esc(c.get("detail", "")),
            ]
        )
    for name in rep.get("failed_checks") or []:
        if name.startswith("rebalance: "):
            rows.append([esc(name), _mark(False), "", "breached after rounding"])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (
        '<h3>Validation checks</h3><table class="summary checks"><thead><tr><th>Check</th>'
        f"<th>Result</th><th>Figure</th><th>Detail</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _relaxed(rep: Mapping[str, Any]) -> str:
    rows = []
    for where, entries in (
        ("allocation", (rep.get("allocation") or {}).get("relaxed")),
        ("rebalance", (rep.get("rebalance") or {}).get("relaxed")),
    ):
        for r in entries or []:
            amt = r.get("amount")
            rows.append(
                [r.get("name"), where, r.get("priority"), "" if amt is None else f"{amt:.6g}"]
            )
    if not rows:
        return "<h3>Relaxed soft constraints</h3><p>None: every constraint held as given.</p>"
    return "<h3>Relaxed soft constraints</h3>" + _table(
        ["Constraint", "Where", "Priority", "Relaxed by"], rows
    )


def _run_charts(rep: Mapping[str, Any], ch: Mapping[str, Any]) -> str:
    figs: list[Figure] = []
    if ch.get("frontier"):
        figs.append(charts.frontier(ch["frontier"]))
    alloc = ch.get("allocation") or {}
    if alloc.get("by_asset"):
        figs.append(charts.allocation(alloc["by_asset"], by="asset"))
    if alloc.get("by_tag"):
        figs.append(charts.allocation(alloc["by_tag"], by="tag"))
    if ch.get("risk"):
        figs.append(charts.risk(ch["risk"]))
    if rep.get("stress"):
        figs.append(charts.stress(rep["stress"]))
    mc = rep.get("montecarlo")
    if mc:
        figs.append(charts.montecarlo_value(mc))
        extra = ch.get("montecarlo") or {}
        if extra.get("real_spending_percentiles"):
            figs.append(
                charts.montecarlo_spending(
                    extra["real_spending_percentiles"], extra["value"], mc.get("summary", {})
                )
            )
    return _section("Charts", _figures(figs), "charts")


def _backtest(rep: Mapping[str, Any], values: pd.DataFrame | None) -> str:
    bt = rep.get("backtest") or {}
    out = [
        _kpis(
            [
                ("Period", f"{bt.get('start')} to {bt.get('end')}"),
                ("Periods", str(bt.get("periods"))),
                ("Initial value", f"{bt.get('initial_value', 0):,.0f}"),
                ("Costs", "included" if bt.get("costs") else "none"),
            ]
        )
    ]
    comp = rep.get("comparison") or []
    if comp:
        cols = [
            ("cagr", "CAGR", True),
            ("volatility", "Volatility", True),
            ("sharpe", "Sharpe", False),
            ("max_drawdown", "Max drawdown", True),
            ("tracking_error", "Tracking error", True),
            ("rebalances", "Rebalances", None),
            ("turnover", "Turnover", True),
            ("total_costs", "Costs", None),
            ("final_value", "Final value", None),
            ("rebalancing_bonus", "Rebalancing bonus", True),
        ]
        body = [[r["policy"]] + [_cell(r.get(k), p) for k, _, p in cols] for r in comp]
        out.append(
            "<h3>Policy comparison</h3>"
            + _table(["Policy"] + [h for _, h, _ in cols], body, "summary comparison")
        )
    figs = []
    if values is not None and len(values):
        figs += [charts.backtest_values(values), charts.backtest_drawdowns(values)]
    att = (rep.get("charts") or {}).get("attribution") or {}
    if att.get("policies"):
        figs.append(charts.attribution(att))
    body = _section("Backtest", "".join(out))
    return body + (_section("Charts", _figures(figs), "charts") if figs else "")


def _cell(v: Any, percent: bool | None) -> str:
    if not isinstance(v, int | float) or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if percent is True:
        return pct(v, 2)
    if percent is False:
        return f"{v:.3f}"
    return f"{v:,.0f}"


def _infeasible(rep: Mapping[str, Any]) -> str:
    diag = rep.get("diagnosis") or []
    out = [
        '<p class="banner bad">Infeasible: the policy\'s constraints cannot all hold. '
        "No target, orders or stress tests were made.</p>",
        f"<p>{esc(rep.get('message', ''))}</p>",
    ]
    if diag:
        out.append(_figures([charts.diagnosis(diag)]))
    else:
        out.append("<p>No diagnosis could be made: see the message above.</p>")
    return _section("Diagnosis", "".join(out))


def render_report(report: Mapping[str, Any], *, values: pd.DataFrame | None = None) -> str:
    """report.html's text from report.json's content.

    Parameters
    ----------
    report : mapping
        report.json of a run (with ``charts``), of a backtest (with
        ``backtest`` and ``comparison``), of ``trimtab frontier`` (``command``
        ``"frontier"`` with ``charts.frontier``), or of an infeasible run
        (``status`` ``"infeasible"`` with ``diagnosis``).
    values : pandas.DataFrame, optional
        A backtest's value paths (backtest_values.csv: dates x policies).

    Returns
    -------
    str
        A whole HTML document (UTF-8 text) that makes no request.
    """
    ch = report.get("charts") or {}
    name = (report.get("scenario") or {}).get("name", "trimtab")
    if report.get("status") == "infeasible":
        body = _header(report, "Infeasible policy") + _infeasible(report)
    elif "backtest" in report:
        body = _header(report, "Backtest report") + _backtest(report, values)
    elif report.get("command") == "frontier":
        figs = [charts.frontier(ch["frontier"])] if ch.get("frontier") else []
        body = _header(report, "Efficient frontier report") + _section(
            "Charts", _figures(figs), "charts"
        )
    else:
        body = (
            _header(report, "Allocation report")
            + _run_summary(report, ch)
            + _run_charts(report, ch)
        )
    body += _notes(report)
    body += (
        "<footer>Written by trimtab from report.json. Percentages are decimals x 100, "
        "annualized unless a label says otherwise. Each chart's data table is behind it "
        "(&ldquo;Data table&rdquo;).</footer>"
    )
    return page(f"{name}: trimtab report", body)
