"""What the command line shows people: run summaries, Monte Carlo figures, progress bars,
and the one-line messages of failures.

Tables for people go to stdout; ``--json`` output is built elsewhere
(:mod:`scenarios.cli`). Percentages are of decimals (0.05 prints as 5.00%).
The ``*_line`` functions make the one line :func:`scenarios.cli.main` prints
on stderr for an error or failed checks.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd


class Progress:
    """A one-line progress bar on a terminal's stderr; silent otherwise."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        end = "\n" if done >= total else ""
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}"
        )
        sys.stderr.flush()


def _pct(x) -> str:
    return "" if x is None or pd.isna(x) else f"{x:8.2%}"


def _amount(x: float | None) -> str:
    """A relaxation amount in its constraint's units: 4 decimals, or 3 significant digits."""
    if x is None or pd.isna(x):
        return "an unknown amount"
    return f"{x:.4f}" if x == 0 or abs(x) >= 1e-3 else f"{x:.3e}"


def relaxed_lines(relaxed: list[dict]) -> list[str]:
    """One line per relaxed soft constraint: ``relaxed: 'equity cap' (priority 2) by 0.0500``.

    Parameters
    ----------
    relaxed : list of dict
        ``{"name", "priority", "amount"}`` entries, as :func:`scenarios.engine.relaxed_of`
        gives them; ``amount`` in the constraint's own units.
    """
    out = []
    for r in relaxed:
        level = "" if r.get("priority") is None else f" (priority {r['priority']})"
        out.append(f"relaxed: {r['name']!r}{level} by {_amount(r.get('amount'))}")
    return out


def print_run(res, *, show_orders: bool = True) -> None:
    from scenarios.engine import relaxed_of, sharpe, targets_table

    scn, a = res.scenario, res.allocation
    print(
        f"{scn.portfolio.name} ({scn.portfolio.id})  model: {scn.model.kind}"
        + (f" / {scn.model.objective}" if scn.model.objective else "")
    )
    table = targets_table(res)
    cols = [c for c in ("target", "policy", "active", "risk_contribution") if c in table]
    print(table[cols].to_string(formatters={c: _pct for c in cols}))
    sr = sharpe(a, scn.estimates.risk_free_rate)
    print(
        f"expected return {_pct(a.expected_return).strip()}  volatility "
        f"{_pct(a.volatility).strip()}  Sharpe {'' if sr is None else f'{sr:.2f}'}"
    )
    if a.binding:
        print("binding constraints:")
        for b in a.binding:
            price = "" if b["shadow_price"] is None else f"  shadow price {b['shadow_price']:.4g}"
            print(f"  {b['label']} ({b['side']}){price}")
    for line in relaxed_lines(relaxed_of(a)):
        print(line)
    if res.overlay is not None:
        print(
            f"tactical overlay: equity tilt {res.overlay.equity_tilt:+.2%} "
            f"(rules add to {res.overlay.uncapped_tilt:+.2%})"
        )
        for r in res.overlay.fired:
            print(
                f"  {'FIRED' if r['fired'] else 'quiet'}  {r['name']}: {r['condition']} "
                f"-> equity {r['equity']:+.2%}"
            )
    if res.checks:
        print("validation:")
        for c in res.checks:
            mark = {True: "PASS", False: "FAIL", None: "n/a "}[c["passed"]]
            fig = "" if c["figure"] is None else f" {c['figure']:.6g}"
            print(f"  {mark}  {c['check']}:{fig} ({c['detail']})")
    if res.stress:
        print("stress:")
        for s in res.stress:
            tail = "" if s.value_after is None else f", value after {s.value_after:,.0f}"
            print(f"  {s.name}: {s.portfolio_return:+.2%}{tail}")
    if res.montecarlo is not None:
        print_montecarlo(res.montecarlo)
    if res.decision is not None:
        print(
            f"rebalance trigger: {'trade' if res.decision.trade else 'no trade'} "
            f"({'; '.join(res.decision.reasons)})"
        )
    if res.plan is not None:
        for line in relaxed_lines(relaxed_of(res.plan)):
            print(f"rebalance {line}")
    if show_orders and res.plan is not None:
        p = res.plan
        print(
            f"orders ({len(p.trades)}), est. cost {p.total_cost:,.2f}, turnover "
            f"{p.turnover:.2%}, tracking error {p.tracking_error_before:.3%} -> "
            f"{p.tracking_error_after:.3%}:"
        )
        if not p.trades.empty:
            print(
                p.trades[["side", "notional", "quantity", "est_cost"]].to_string(
                    # no prices, no quantities: a blank, not "NaN"
                    float_format=lambda v: f"{v:,.2f}",
                    na_rep="",
                )
            )
        for note in p.notes:
            print(f"  note: {note}")
        if p.lot_sales is not None:
            print_tax(p)


def tax_line(summary: dict) -> str:
    """Tax paid against tracking error removed, one line (``summary``: ``plan.tax_summary()``)."""
    tax = summary["estimated_tax"] or 0.0
    removed = summary["tracking_error_removed"] or 0.0
    per = summary["tax_per_te_point"]
    rate = "" if per is None else f" ({per:,.2f} per point removed)"
    word = "tax credit (losses realized)" if tax < 0 else "tax paid"
    return (
        f"{word} {abs(tax):,.2f} against tracking error removed {removed:.3%}{rate}; "
        f"realized gains: short {summary['short_gains']:,.2f}, long "
        f"{summary['long_gains']:,.2f}, net {summary['net_gains']:,.2f} "
        f"(directions: {summary['method']})"
    )


def print_tax(plan) -> None:
    """The tax summary line and the lots sold (a tax-aware plan)."""
    summary = plan.tax_summary()
    print(tax_line(summary))
    if summary["blocked"]:
        print(f"  not bought (wash-sale rule): {', '.join(summary['blocked'])}")
    sales = plan.lot_sales
    if len(sales):
        cols = ["asset", "lot_id", "quantity", "basis", "acquired", "term", "gain"]
        shown = sales[cols].copy()
        shown["acquired"] = pd.to_datetime(shown["acquired"]).dt.date
        if "wash" in sales:
            shown["wash"] = sales["wash"].map({True: "wash", False: ""})
        print(f"lots sold ({len(sales)}):")
        print(shown.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))


def print_montecarlo(mc) -> None:
    s = mc.summary
    seed = "" if mc.seed is None else f", seed {mc.seed}"
    print(
        f"Monte Carlo ({mc.paths:,} paths, {mc.years} years, {mc.distribution}{seed}; "
        f"{mc.spending_rule} spending {mc.settings['spending_rate']:.2%}, "
        f"inflation {mc.inflation:.2%}):"
    )
    print(f"  P(real value preserved after {mc.years} years) {s['prob_preserve_real_value']:.1%}")
    print(
        f"  P(drawdown deeper than {s['drawdown_threshold']:.0%}) {s['prob_drawdown_exceeds']:.1%}"
    )
    print(
        f"  terminal real value  p5 {s['terminal_real_value_p5']:,.0f}  p50 "
        f"{s['terminal_real_value_p50']:,.0f}  p95 {s['terminal_real_value_p95']:,.0f}"
    )
    print(
        f"  annual real spending p5 {s['annual_real_spending_p5']:,.0f}  p50 "
        f"{s['annual_real_spending_p50']:,.0f}  p95 {s['annual_real_spending_p95']:,.0f}"
    )


#: Columns of the backtest comparison printed for people: (column, header, format).
BACKTEST_COLUMNS = (
    ("cagr", "CAGR", "{:.2%}"),
    ("volatility", "volatility", "{:.2%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("max_drawdown", "max drawdown", "{:.2%}"),
    ("tracking_error", "tracking error", "{:.2%}"),
    ("rebalances", "rebalances", "{:,.0f}"),
    ("total_costs", "costs", "{:,.0f}"),
    ("turnover", "turnover", "{:.2%}"),
    ("rebalancing_bonus", "rebalancing bonus", "{:+.2%}"),
)


def backtest_table(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison as text cells, one row per policy (columns the data has)."""
    out = pd.DataFrame(index=table.index)
    for col, head, fmt in BACKTEST_COLUMNS:
        if col in table:
            out[head] = [("" if pd.isna(v) else fmt.format(v)) for v in table[col]]
    out.index.name = "policy"
    return out


# ----------------------------------------------------------------------------- one-line messages

#: The keys of a target the model may not reach.
TARGET_KEYS = ("target_return", "target_volatility")

#: The models' older message for a target out of reach (an InputError).
_OUT_OF_REACH = re.compile(
    r"(?P<key>target_return|target_volatility) (?P<target>\S+) is outside the achievable "
    r"range: (?P<side>at most|at least) (?P<bound>\S+)"
)


def one_line(text: str) -> str:
    """``text`` on one line: its lines joined by "; " (after a colon by a space), bullets dropped."""
    out = ""
    for raw in str(text).splitlines():
        line = raw.strip().removeprefix("- ").removeprefix("* ").strip()
        if not line:
            continue
        out += line if not out else (" " if out.endswith(":") else "; ") + line
    return out


def _located(message: str, scenario: str | None) -> str:
    """``message`` with the scenario file in front (unless it already names it)."""
    if not scenario or str(scenario) in message:
        return message
    return f"{scenario}: {message}"


def out_of_reach_line(message: str, scenario: str | None) -> str | None:
    """The exit-3 line for the models' older "outside the achievable range" InputError, or None."""
    m = _OUT_OF_REACH.search(message)
    if m is None:
        return None
    key, bound = m["key"], float(m["bound"])
    op = "<=" if m["side"] == "at most" else ">="
    return _located(
        f"[model] {key} = {float(m['target']):.6g} is out of reach under the "
        f"constraints: the reachable range is {key} {op} {bound:.6g} ({bound:.2%})",
        scenario,
    )


def infeasible_line(message: str, scenario: str | None) -> str:
    """The one line of an :class:`~optimizer.errors.InfeasibleError`: file, ``[model]``, message.

    A target out of reach (the message names ``target_return`` or
    ``target_volatility``) gets ``[model]`` in front: the key is in that section.
    The message keeps its own words (the reachable range, the binding or
    conflicting constraints and by how much), joined onto one line.
    """
    text = one_line(message)
    if any(k in text for k in TARGET_KEYS) and "[model]" not in text:
        text = f"[model] {text}"
    return _located(text, scenario)


def os_error_line(exc: OSError) -> str:
    """An OS error as one line naming the path(s)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    if not paths:
        return f"{reason} ({type(exc).__name__})"
    path = paths[0]
    if isinstance(exc, FileExistsError | NotADirectoryError) and Path(path).is_file():
        reason = "exists and is not a folder"
    elif isinstance(exc, PermissionError):
        reason = "permission denied"
    return f"{' -> '.join(paths)}: {reason}"


def checks_failed_line(failed: list[str], where: str = "") -> str:
    """``policy checks failed (2): survival: 2008 crisis; ESG floor`` and where the outputs are."""
    return f"policy checks failed ({len(failed)}): {'; '.join(failed)}{where}"
