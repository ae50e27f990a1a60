"""One function per chart of the report, from report.json's data (plain dicts and lists).

Each returns a :class:`~scenarios.report.svg.Figure`. The report
(:mod:`scenarios.report.html`) and the plotting functions of
:mod:`scenarios.report.plot` both call these, so a notebook figure looks like
the report's. Numbers are decimals (0.05 is 5%) and drawn in percent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from scenarios.report.svg import GREY, INK, PALETTE, Chart, Figure, Table, pct

VOL = "Volatility (%, annualized)"
RET = "Expected return (%, annualized)"
WEIGHT = "Weight (% of portfolio)"
BLUE, ORANGE, GREEN, PINK = PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[3]


def _year(v: float) -> str:
    return f"{v:.0f}"


def _money(v: float | None, currency: str = "") -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:,.0f}{' ' + currency if currency else ''}"


def frontier(data: Mapping[str, Any], *, title: str = "Efficient frontier") -> Figure:
    """The frontier under the policy's constraints and without them, portfolios marked.

    ``data``: report.json's ``charts.frontier`` (:func:`scenarios.report.data.frontier_data`).
    Lines: each frontier given, and the capital market line when ``cml`` is
    set; points: target, policy, current and the tangency portfolio.
    """
    rf = data.get("risk_free_rate")
    sub = "Efficient portfolios from the least-variance one up"
    if data.get("cml"):
        sub += f"; capital market line from the risk-free rate {pct(rf, 2)}"
    ch = Chart("frontier", title, xlabel=VOL, ylabel=RET, subtitle=sub, yzero=False)
    rows: list[list[str]] = []
    lines = (
        ("unconstrained", "Frontier, budget and long-only only", GREY, False),
        ("policy", "Frontier under the policy constraints", BLUE, False),
    )
    for key, label, color, dash in lines:
        pts = data.get(key) or []
        if pts:
            xs = [p["volatility"] for p in pts]
            ys = [p["expected_return"] for p in pts]
            ch.line(xs, ys, label, color=color, dash=dash, width=2.5 if key == "policy" else 2)
            rows += [[label, pct(x, 2), pct(y, 2), ""] for x, y in zip(xs, ys, strict=True)]
    cml = data.get("cml")
    if cml:
        tan = cml["tangency"]
        vmax = max([tan["volatility"] * 1.6] + [p["volatility"] for p in data.get("policy") or []])
        ch.line(
            [0.0, vmax],
            [rf, rf + cml["sharpe"] * vmax],
            "Capital market line",
            color=INK,
            dash=True,
            width=1.5,
        )
        ch.points(
            [tan["volatility"]],
            [tan["expected_return"]],
            "Tangency portfolio",
            color=INK,
            shape="dot",
            size=9,
        )
        rows.append(
            [
                "Tangency portfolio",
                pct(tan["volatility"], 2),
                pct(tan["expected_return"], 2),
                f"{cml['sharpe']:.3f}",
            ]
        )
    marks = data.get("marks") or {}
    named = {"target": "the target", "policy": "the policy", "current": "the current holdings"}
    shown = [named[k] for k in ("target", "policy", "current") if marks.get(k)]
    for key, label, color, shape in (
        ("current", "Current holdings", ORANGE, "triangle"),
        ("policy", "Policy portfolio", GREEN, "square"),
        ("target", "Target", PINK, "diamond"),
    ):
        m = marks.get(key)
        if m:
            ch.points(
                [m["volatility"]], [m["expected_return"]], label, color=color, shape=shape, size=8
            )
            sh = (
                (m["expected_return"] - rf) / m["volatility"]
                if rf is not None and m["volatility"] > 0
                else math.nan
            )
            rows.append(
                [
                    label,
                    pct(m["volatility"], 2),
                    pct(m["expected_return"], 2),
                    f"{sh:.3f}" if math.isfinite(sh) else "n/a",
                ]
            )
    notes = [data[k] for k in ("policy_error", "unconstrained_error") if data.get(k)]
    table = Table(
        ["Series / portfolio", "Volatility", "Expected return", "Sharpe ratio"],
        rows,
        note=("Not drawn: " + "; ".join(notes)) if notes else None,
    )
    text = "Expected return against volatility of the efficient portfolios"
    if shown:
        text += ", with " + (", ".join(shown[:-1]) + " and " if len(shown) > 1 else "")
        text += shown[-1] + " marked"
    return ch.figure(table, text + ".")


def allocation(
    rows: Sequence[Mapping[str, Any]], *, by: str = "asset", title: str | None = None
) -> Figure:
    """Target (and current, after-trade) weights against the policy and its bands.

    ``rows``: report.json's ``charts.allocation.by_asset`` or ``by_tag``: each
    with ``asset`` (or ``tag``), ``target`` and, where known, ``policy``,
    ``current``, ``after_trades``, ``lower``, ``upper``.
    """
    key = "asset" if by == "asset" else "tag"
    cats = [str(r[key]) for r in rows]
    with_policy = any(r.get("policy") is not None for r in rows)
    title = title or (
        f"Allocation against the policy, by {key}" if with_policy else f"Allocation, by {key}"
    )
    ch = Chart(f"allocation-{key}", title, xlabel=key.capitalize(), ylabel=WEIGHT, categories=cats)

    def col(name):
        return [math.nan if r.get(name) is None else float(r[name]) for r in rows]

    has = {
        name: any(r.get(name) is not None for r in rows)
        for name in ("policy", "current", "after_trades", "lower", "upper")
    }
    if has["lower"] or has["upper"]:
        lo = [
            (r["lower"] if r.get("lower") is not None else 0.0)
            if (r.get("lower") is not None or r.get("upper") is not None)
            else math.nan
            for r in rows
        ]
        hi = [
            (r["upper"] if r.get("upper") is not None else max(1.0, r.get("target", 0)))
            if (r.get("lower") is not None or r.get("upper") is not None)
            else math.nan
            for r in rows
        ]
        hi = [min(h, 1.0) if math.isfinite(h) else h for h in hi]
        lo = [max(v, 0.0) if math.isfinite(v) else v for v in lo]
        ch.ranges(lo, hi, "Allowed range (bands, limits)", color=GREEN)
    if has["current"]:
        ch.bars(col("current"), "Current", color=ORANGE)
    ch.bars(col("target"), "Target", color=BLUE)
    if has["after_trades"]:
        ch.bars(col("after_trades"), "After trades", color=PALETTE[5])
    if has["policy"]:
        ch.ticks(col("policy"), "Policy", color=INK)
    headers = [key.capitalize()]
    names = ["target", "policy", "current", "after_trades", "lower", "upper"]
    shown = [n for n in names if n == "target" or has[n]]
    headers += [n.replace("_", " ").capitalize() for n in shown]
    body = [
        [str(r[key])] + [pct(r.get(n), 2) if r.get(n) is not None else "" for n in shown]
        for r in rows
    ]
    return ch.figure(
        Table(headers, body),
        f"Weights by {key} in percent: target against the policy weight and the allowed range.",
    )


def risk(rows: Sequence[Mapping[str, Any]], *, title: str = "Risk contributions") -> Figure:
    """Each asset's share of the portfolio's volatility beside its weight."""
    cats = [str(r["asset"]) for r in rows]
    ch = Chart(
        "risk",
        title,
        xlabel="Asset",
        ylabel="% of weight / % of volatility",
        categories=cats,
        subtitle="Euler contributions: they add up to the volatility",
    )
    ch.bars([r["weight"] for r in rows], "Weight", color=GREY)
    ch.bars(
        [math.nan if r.get("share") is None else r["share"] for r in rows],
        "Share of volatility",
        color=ORANGE,
    )
    body = [
        [
            str(r["asset"]),
            pct(r["weight"], 2),
            pct(r["risk_contribution"], 3),
            pct(r.get("share"), 2),
        ]
        for r in rows
    ]
    return ch.figure(
        Table(["Asset", "Weight", "Contribution to volatility", "Share"], body),
        "Share of the portfolio's volatility by asset, beside its weight.",
    )


def stress(rows: Sequence[Mapping[str, Any]], *, title: str = "Stress tests") -> Figure:
    """The portfolio's return under each shock, with the survival floor as a rule."""
    cats = [str(r["name"]) for r in rows]
    floors = {r.get("floor") for r in rows if r.get("floor") is not None}
    sub = "Instantaneous shocks to today's target"
    ch = Chart(
        "stress",
        title,
        xlabel="Scenario",
        ylabel="Portfolio return (%)",
        categories=cats,
        subtitle=sub,
    )
    ch.bars([r["portfolio_return"] for r in rows], "Portfolio return", color=PALETTE[7])
    for f in sorted(floors):
        ch.hline(f - 1.0, f"Survival floor: a loss of {pct(1.0 - f, 0)}", color=INK)
    body = [
        [
            str(r["name"]),
            pct(r["portfolio_return"], 2),
            _money(r.get("value_after")),
            "" if r.get("floor") is None else pct(r["floor"] - 1.0, 0),
            {True: "survives", False: "BREACHES FLOOR", None: ""}[r.get("survives")],
        ]
        for r in rows
    ]
    return ch.figure(
        Table(["Scenario", "Return", "Value after", "Floor", "Survival"], body),
        "Portfolio return under each stress scenario against the survival floor.",
    )


def _fan_chart(
    kind,
    title,
    sub,
    ylabel,
    q: Mapping[str, Sequence[float]],
    base: float,
    years: Sequence[float],
    line_label: str,
    rule: float | None,
) -> Figure:
    ch = Chart(kind, title, xlabel="Years from today", ylabel=ylabel, xfmt=_year, subtitle=sub)
    s = {k: [v / base for v in vals] for k, vals in q.items()}
    ch.fan(years, s["p5"], s["p95"], "5th to 95th percentile", color=BLUE, opacity=0.18)
    ch.fan(years, s["p25"], s["p75"], "25th to 75th percentile", color=BLUE, opacity=0.35)
    ch.line(years, s["p50"], line_label, color=BLUE, width=2.5)
    if rule is not None:
        ch.hline(rule, "Today's value", color=INK)
    body = [
        [_year(y)] + [pct(s[p][i], 1) for p in ("p5", "p25", "p50", "p75", "p95")]
        for i, y in enumerate(years)
    ]
    table = Table(
        ["Year", "5th", "25th", "Median", "75th", "95th"],
        body,
        note=f"Percent of today's value ({_money(base)}).",
    )
    return ch.figure(table, f"{title}: percentiles by year, percent of today's value.")


def montecarlo_value(mc: Mapping[str, Any], *, title: str = "Monte Carlo: real value") -> Figure:
    """Fan of the real (inflation-adjusted) value by year, with the probability figures.

    ``mc``: report.json's ``montecarlo`` (``real_value_percentiles``, ``summary``).
    """
    q = mc["real_value_percentiles"]
    base = q["p50"][0]
    summ = mc.get("summary", {})
    sub = (
        f"{mc.get('paths', 0):,} paths, {mc.get('spending_rule', '')} spending, inflation "
        f"{pct(mc.get('inflation'), 1)}: P(keep real value) "
        f"{pct(summ.get('prob_preserve_real_value'), 1)}, P(fall deeper than "
        f"{pct(summ.get('drawdown_threshold'), 0)}) {pct(summ.get('prob_drawdown_exceeds'), 1)}"
    )
    years = list(range(len(q["p50"])))
    return _fan_chart(
        "montecarlo-value",
        title,
        sub,
        "Real value (% of today's)",
        q,
        base,
        years,
        "Median real value",
        1.0,
    )


def montecarlo_spending(
    spending: Mapping[str, Sequence[float]],
    value: float,
    summary: Mapping[str, float],
    *,
    title: str = "Monte Carlo: real spending",
) -> Figure:
    """Fan of the annual spending in today's money by year (percent of today's value)."""
    years = list(range(1, len(spending["p50"]) + 1))
    sub = (
        f"Annual spending in today's money; median over all years "
        f"{pct(summary.get('annual_real_spending_p50', math.nan) / value, 2)} of today's value"
    )
    return _fan_chart(
        "montecarlo-spending",
        title,
        sub,
        "Real spending (% of today's value)",
        spending,
        value,
        years,
        "Median real spending",
        None,
    )


def _every(n: int, most: int = 60) -> int:
    return max(1, math.ceil(n / most))


def backtest_values(values: pd.DataFrame, *, title: str = "Backtest: portfolio value") -> Figure:
    """Value paths by policy, as a percent of the initial value on a log scale."""
    base = values.iloc[0]
    rel = values / base
    ch = Chart(
        "backtest-value",
        title,
        xlabel="Year",
        ylabel="Value (% of initial, log scale)",
        ylog=True,
        xfmt=_year,
        subtitle=f"{values.index[0]:%Y-%m-%d} to {values.index[-1]:%Y-%m-%d}",
    )
    xs = _decimal_years(values.index)
    for name in values.columns:
        ch.line(xs, rel[name].tolist(), str(name), width=1.6)
    step = _every(len(values))
    body = [
        [f"{d:%Y-%m-%d}"] + [pct(v, 1) for v in row]
        for d, row in zip(rel.index[::step], rel.to_numpy()[::step], strict=True)
    ]
    table = Table(
        ["Date", *map(str, values.columns)],
        body,
        note=f"Every {step} row(s) of backtest_values.csv." if step > 1 else None,
    )
    return ch.figure(table, "Portfolio value of each rebalancing policy over the history.")


def backtest_drawdowns(values: pd.DataFrame, *, title: str = "Backtest: drawdown") -> Figure:
    """Drawdown paths (value against its running peak) by policy."""
    dd = values / values.cummax() - 1.0
    ch = Chart(
        "backtest-drawdown",
        title,
        xlabel="Year",
        ylabel="Drawdown (% below the peak)",
        xfmt=_year,
        subtitle="Fall of each policy's value from its highest so far",
    )
    xs = _decimal_years(values.index)
    for name in values.columns:
        ch.line(xs, dd[name].tolist(), str(name), width=1.4)
    body = [
        [str(n), pct(float(dd[n].min()), 1), f"{dd[n].idxmin():%Y-%m-%d}"] for n in values.columns
    ]
    return ch.figure(
        Table(["Policy", "Deepest drawdown", "On"], body),
        "Drawdown of each policy's value from its running peak.",
    )


def _decimal_years(index: pd.Index) -> list[float]:
    idx = pd.DatetimeIndex(index)
    return [d.year + (d.day_of_year - 1) / 365.25 for d in idx]


def attribution(att: Mapping[str, Any], *, title: str = "Attribution by segment") -> Figure:
    """Total Brinson effect by segment, one series per backtest policy."""
    policies = {k: v for k, v in att.get("policies", {}).items() if "by_segment" in v}
    segs: list[str] = []
    for v in policies.values():
        segs += [r["segment"] for r in v["by_segment"] if r["segment"] not in segs]
    ch = Chart(
        "attribution",
        title,
        xlabel="Segment",
        ylabel="Effect (% of initial value)",
        categories=segs,
        subtitle="Against the target held exactly; linked over "
        f"{att.get('periods', 'periods')} (Carino)",
    )
    body = []
    for name, v in policies.items():
        tot = {r["segment"]: r["total"] for r in v["by_segment"]}
        ch.bars([tot.get(s, math.nan) for s in segs], name)
        for r in v["by_segment"]:
            body.append(
                [
                    name,
                    r["segment"],
                    pct(r["allocation"], 2),
                    pct(r["selection"], 2),
                    pct(r["interaction"], 2),
                    pct(r["total"], 2),
                ]
            )
    table = Table(["Policy", "Segment", "Allocation", "Selection", "Interaction", "Total"], body)
    return ch.figure(table, "Brinson attribution effects by segment for each policy.")


def diagnosis(rows: Sequence[Mapping[str, Any]], *, title: str = "What must give") -> Figure:
    """How much each conflicting constraint must be relaxed (an infeasible policy)."""
    cats = [str(r.get("name")) for r in rows]
    ch = Chart(
        "diagnosis",
        title,
        xlabel="Constraint",
        categories=cats,
        ylabel="Relax by (constraint units; weights in %)",
        subtitle="The least change to each constraint that makes the policy feasible",
    )
    ch.bars([float(r.get("relax_by") or 0.0) for r in rows], "Relax by", color=PALETTE[7])
    body = [
        [
            str(r.get("name")),
            str(r.get("side", "")),
            _fmt(r.get("limit")),
            _fmt(r.get("relax_by")),
            ", ".join(map(str, r.get("conflicts_with") or [])),
        ]
        for r in rows
    ]
    return ch.figure(
        Table(["Constraint", "Side", "Limit", "Relax by", "Conflicts with"], body),
        "Constraints that conflict and the amount each must be relaxed by.",
    )


def _fmt(v: Any) -> str:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return f"{v:.6g}"
    return "" if v is None else str(v)
