"""The ``[backtest]`` policies of a scenario, walked over its returns history.

:func:`run_backtest` fixes the target (the run's target weights or the
``[policy]`` weights) and backtests each policy with
:func:`scenarios.backtest.backtest`; :class:`BacktestRun` holds the results and
their comparison. Its files are written by
:func:`scenarios.outputs.write_backtest_outputs`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from optimizer.errors import InputError
from scenarios.backtest import BacktestResult, TakeProfitRule, backtest, compare
from scenarios.engine import Progress, target_allocation
from scenarios.export import to_jsonable
from scenarios.schema import Scenario


@dataclass(frozen=True)
class BacktestRun:
    """The ``[backtest]`` policies walked over one scenario's returns history.

    ``results``: :class:`~scenarios.backtest.BacktestResult` by policy name,
    in file order. ``table``: :func:`scenarios.backtest.compare` of them (one
    row per policy). ``target``: the weights traded back to. Unpacks as
    ``results, table = run_backtest(scn)``.
    """

    scenario: Scenario
    results: dict[str, BacktestResult]
    table: pd.DataFrame
    target: pd.Series
    timings: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.results, self.table))

    def values(self) -> pd.DataFrame:
        """Portfolio value paths, dates x policies (currency)."""
        return pd.DataFrame({name: r.values for name, r in self.results.items()})

    def report(self) -> dict[str, Any]:
        scn = self.scenario
        spec = scn.backtest
        first = next(iter(self.results.values()))
        dates = first.values.index
        return to_jsonable(
            {
                "scenario": {
                    "name": scn.portfolio.name,
                    "id": scn.portfolio.id,
                    "file": scn.path.name,
                },
                "backtest": {
                    "start": dates[0].date().isoformat(),
                    "end": dates[-1].date().isoformat(),
                    "periods": len(dates) - 1,
                    "initial_value": spec.initial_value,
                    "target_source": spec.target,
                    "spending": None
                    if spec.spending is None
                    else {"rate": spec.spending.rate, "window": spec.spending.window},
                    "drawdown": None
                    if spec.drawdown is None
                    else {
                        "threshold": spec.drawdown.threshold,
                        "recover": spec.drawdown.recover,
                        "defensive": spec.drawdown.defensive,
                    },
                    "take_profit": _take_profit_report(spec.take_profit),
                    "costs": scn.costs is not None,
                },
                "target": self.target,
                "comparison": [
                    {"policy": name, **row} for name, row in self.table.to_dict("index").items()
                ],
                "notes": {name: list(r.notes) for name, r in self.results.items() if r.notes},
                "timings": self.timings,
            }
        )


def _take_profit_report(rule: TakeProfitRule | None) -> dict[str, Any] | None:
    """The take-profit rule for report.json (``safer`` and ``reset`` None: back to target)."""
    if rule is None:
        return None
    with_safer = rule.safer is not None
    return {
        "threshold": rule.threshold,
        "safer": rule.safer,
        "reset": rule.reset if with_safer else None,
    }


def run_backtest(scn: Scenario, *, progress: Progress | None = None) -> BacktestRun:
    """Backtest every ``[backtest]`` policy of a loaded scenario.

    The target is the run's target weights (the model's allocation, tilted by
    the tactical overlay when there is one, estimated on the whole history:
    held fixed, so this is a test of the rebalancing policies, not of the
    estimates) or, with ``target = "policy"``, the ``[policy]`` weights. The
    history is ``scn.estimates.returns`` cut to the section's start..end;
    costs are the scenario's ``[costs]``. ``progress(done, total)`` is called
    after each policy.

    Raises
    ------
    InputError
        The scenario has no ``[backtest]`` section, or the backtest rejects
        its inputs.
    """
    spec = scn.backtest
    if spec is None:
        raise InputError(f"{scn.path.name}: backtest: the scenario has no [backtest] section")
    t0 = time.perf_counter()
    if spec.target == "policy":
        target = scn.policy.copy()
    else:
        target = target_allocation(scn, scn.estimates.build())[0].weights.copy()
    # solver noise: tiny negatives and a sum off by 1e-9 are not trades
    target = target.clip(lower=0.0)
    target = (target / target.sum()).rename("target")
    returns = scn.estimates.returns
    if spec.start is not None:
        returns = returns[returns.index >= pd.Timestamp(spec.start)]
    if spec.end is not None:
        returns = returns[returns.index <= pd.Timestamp(spec.end)]
    t1 = time.perf_counter()
    results: dict[str, BacktestResult] = {}
    total = len(spec.policies)
    if progress is not None:
        progress(0, total)
    for i, policy in enumerate(spec.policies, start=1):
        results[policy.name] = backtest(
            returns,
            target,
            policy=policy,
            costs=scn.costs,
            initial_value=spec.initial_value,
            spending=spec.spending,
            drawdown_rule=spec.drawdown,
            take_profit=spec.take_profit,
            risk_free_rate=scn.estimates.risk_free_rate,
            universe=scn.universe,
        )
        if progress is not None:
            progress(i, total)
    t2 = time.perf_counter()
    table = compare(results)
    return BacktestRun(scn, results, table, target, {"target": t1 - t0, "backtest": t2 - t1})
