"""What the command line shows people: run summaries, Monte Carlo figures, progress bars.

Tables for people go to stdout; ``--json`` output is built elsewhere
(:mod:`scenarios.cli`). Percentages are of decimals (0.05 prints as 5.00%).
"""

from __future__ import annotations

import sys

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
                    float_format=lambda v: f"{v:,.2f}"
                )
            )
        for note in p.notes:
            print(f"  note: {note}")


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
