"""Plotting in Python: figures of trimtab objects, drawn like the report.

Each function returns a :class:`~scenarios.report.svg.Figure` that a notebook
shows (``_repr_svg_`` / ``_repr_html_``) and :meth:`Figure.save` writes as
``.svg`` or ``.html``. They turn the objects into the data the report reads from
report.json and call the same chart functions (:mod:`scenarios.report.charts`).

>>> from models import mean_variance as mv                        # doctest: +SKIP
>>> from scenarios.report import plot_frontier
>>> fig = plot_frontier(mv.efficient_frontier(mu, cov), risk_free_rate=0.02)
>>> fig.save("frontier.svg")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from optimizer.allocation import Allocation, Frontier
from optimizer.errors import InputError
from optimizer.universe import Universe
from scenarios.report import charts
from scenarios.report.data import frontier_points
from scenarios.report.svg import Figure

Point = Allocation | Mapping[str, float] | tuple[float, float]


def _point(p: Point | None, what: str) -> dict[str, float] | None:
    if p is None:
        return None
    if isinstance(p, Mapping):
        vol, er = p.get("volatility"), p.get("expected_return")
    elif isinstance(p, tuple):
        vol, er = p
    else:
        vol, er = getattr(p, "volatility", None), getattr(p, "expected_return", None)
    if vol is None or er is None:
        raise InputError(
            f"{what}: needs a volatility and an expected return: give an Allocation with "
            "expected returns (pass mu=), a (volatility, expected_return) pair or a mapping"
        )
    return {"volatility": float(vol), "expected_return": float(er)}


def _check(obj: Any, kind: type | tuple, name: str, hint: str) -> None:
    if not isinstance(obj, kind):
        raise InputError(f"{name}: expected {hint}, got {type(obj).__name__}")


def plot_frontier(
    frontier: Frontier,
    *,
    unconstrained: Frontier | None = None,
    target: Point | None = None,
    policy: Point | None = None,
    current: Point | None = None,
    risk_free_rate: float | None = None,
    title: str = "Efficient frontier",
) -> Figure:
    """The efficient frontier, with portfolios marked and the capital market line.

    Parameters
    ----------
    frontier : Frontier
        Drawn as "the frontier under the policy constraints" (its ``points``:
        volatility and expected return, annualized decimals).
    unconstrained : Frontier, optional
        A second frontier (e.g. budget and long-only only), drawn in grey.
    target, policy, current : Allocation, mapping or (volatility, expected_return), optional
        Portfolios to mark.
    risk_free_rate : float, optional
        Draws the capital market line from it through the frontier point of
        highest Sharpe ratio (of ``unconstrained`` when given).
    title : str

    Returns
    -------
    Figure
    """
    _check(frontier, Frontier, "frontier", "a Frontier (models.mean_variance.efficient_frontier)")
    data: dict[str, Any] = {"policy": frontier_points(frontier), "risk_free_rate": risk_free_rate}
    if unconstrained is not None:
        _check(unconstrained, Frontier, "unconstrained", "a Frontier")
        data["unconstrained"] = frontier_points(unconstrained)
    marks = {
        k: _point(v, k)
        for k, v in (("target", target), ("policy", policy), ("current", current))
        if v is not None
    }
    data["marks"] = marks
    if risk_free_rate is not None:
        pts = data.get("unconstrained") or data["policy"]
        best = max(
            (p for p in pts if p["volatility"] > 0),
            key=lambda p: (p["expected_return"] - risk_free_rate) / p["volatility"],
            default=None,
        )
        if best is not None:
            s = (best["expected_return"] - risk_free_rate) / best["volatility"]
            data["cml"] = {"risk_free_rate": risk_free_rate, "tangency": best, "sharpe": s}
    return charts.frontier(data, title=title)


def _weights(obj: Any, name: str) -> pd.Series | None:
    if obj is None:
        return None
    if isinstance(obj, Allocation):
        return obj.weights.astype(float)
    if isinstance(obj, Mapping | pd.Series):
        return pd.Series(obj, dtype=float)
    raise InputError(
        f"{name}: expected an Allocation or weights by asset, got {type(obj).__name__}"
    )


def plot_allocation(
    allocation: Allocation | pd.Series,
    *,
    policy: pd.Series | Mapping[str, float] | None = None,
    current: pd.Series | Mapping[str, float] | None = None,
    bands: float | pd.DataFrame | None = None,
    universe: Universe | None = None,
    by: str = "asset",
    title: str | None = None,
) -> Figure:
    """Target weights against a policy and its bands, by asset or by tag.

    Parameters
    ----------
    allocation : Allocation or pandas.Series
        The target weights (decimals) by asset.
    policy, current : weights by asset, optional
        The policy portfolio (drawn as a tick) and the current holdings (bars).
    bands : float or pandas.DataFrame, optional
        A width around the policy (0.05: five points either side; needs
        ``policy``), or a frame with ``lower`` and ``upper`` by asset (or by
        tag when ``by="tag"``).
    universe : Universe, optional
        Needed for ``by="tag"``: the tags' weights are their members' sums.
    by : {"asset", "tag"}
    title : str, optional

    Returns
    -------
    Figure
    """
    if by not in ("asset", "tag"):
        raise InputError(f"by={by!r}: choose 'asset' or 'tag'")
    target = _weights(allocation, "allocation")
    cols = {"target": target}
    for key, w in (
        ("policy", _weights(policy, "policy")),
        ("current", _weights(current, "current")),
    ):
        if w is not None:
            cols[key] = w
    frame = pd.DataFrame(cols).fillna(0.0)
    if isinstance(bands, int | float):
        if "policy" not in frame:
            raise InputError("bands: a width needs policy= (the band is policy +/- width)")
        lim = pd.DataFrame({"lower": frame["policy"] - bands, "upper": frame["policy"] + bands})
    elif isinstance(bands, pd.DataFrame) or bands is None:
        lim = bands
    else:
        raise InputError("bands: give a width (float) or a DataFrame with lower and upper")
    if by == "tag":
        if universe is None:
            raise InputError("by='tag' needs universe= (the tags of the assets)")
        groups = {t: universe.members(t) for t in universe.all_tags}
        frame = pd.DataFrame({t: frame.reindex(m).fillna(0.0).sum() for t, m in groups.items()}).T
        if isinstance(bands, int | float):
            lim = pd.DataFrame({"lower": frame["policy"] - bands, "upper": frame["policy"] + bands})
    rows = []
    for key, row in frame.iterrows():
        r = {by: str(key), **{k: float(v) for k, v in row.items()}}
        if lim is not None and key in lim.index:
            for side in ("lower", "upper"):
                v = lim.at[key, side] if side in lim.columns else math.nan
                r[side] = None if pd.isna(v) else float(v)
        rows.append(r)
    return charts.allocation(rows, by=by, title=title)


def plot_risk(allocation: Allocation, *, title: str = "Risk contributions") -> Figure:
    """Each asset's share of the volatility beside its weight (an Allocation)."""
    _check(allocation, Allocation, "allocation", "an Allocation")
    vol = float(allocation.volatility or 0.0)
    rows = [
        {
            "asset": str(k),
            "weight": float(allocation.weights.get(k, 0.0)),
            "risk_contribution": float(v),
            "share": float(v) / vol if vol > 0 else None,
        }
        for k, v in allocation.risk_contributions.items()
    ]
    return charts.risk(rows, title=title)


def plot_stress(results: Sequence[Any], *, title: str = "Stress tests") -> Figure:
    """Bars of the portfolio return under each stress (``scenarios.stress.apply`` results),
    with the survival floor when they have one."""
    if not results:
        raise InputError("results: give at least one stress result (scenarios.stress.apply)")
    rows = [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in results]
    return charts.stress(rows, title=title)


def plot_montecarlo(mc: Any, *, kind: str = "value", title: str | None = None) -> Figure:
    """The fan of real value (``kind="value"``) or of real spending (``"spending"``)."""
    from scenarios.montecarlo import MonteCarloResult
    from scenarios.report.data import montecarlo_data

    _check(mc, MonteCarloResult, "mc", "a MonteCarloResult (scenarios.montecarlo.simulate)")
    if kind == "value":
        return charts.montecarlo_value(mc.to_dict(), title=title or "Monte Carlo: real value")
    if kind == "spending":
        extra = montecarlo_data(mc)
        return charts.montecarlo_spending(
            extra["real_spending_percentiles"],
            extra["value"],
            {k: float(v) for k, v in mc.summary.items()},
            title=title or "Monte Carlo: real spending",
        )
    raise InputError(f"kind={kind!r}: choose 'value' or 'spending'")


def plot_backtest(result: Any, *, kind: str = "value", title: str | None = None) -> Figure:
    """Value (log scale) or drawdown paths of backtest results.

    ``result``: a :class:`~scenarios.backtest.BacktestResult`, a mapping of
    them by policy name, a :class:`~scenarios.backtest_run.BacktestRun`, or a
    DataFrame of values (dates x policies).
    """
    from scenarios.backtest import BacktestResult

    if isinstance(result, pd.DataFrame):
        values = result
    elif isinstance(result, BacktestResult):
        values = pd.DataFrame({result.policy or "portfolio": result.values})
    elif isinstance(result, Mapping) or hasattr(result, "results"):
        items = result.results if hasattr(result, "results") else result
        values = pd.DataFrame({str(k): r.values for k, r in items.items()})
    else:
        raise InputError(
            f"result: expected a BacktestResult, a mapping of them, a BacktestRun or a "
            f"DataFrame of values, got {type(result).__name__}"
        )
    if kind == "value":
        return charts.backtest_values(values, title=title or "Backtest: portfolio value")
    if kind == "drawdown":
        return charts.backtest_drawdowns(values, title=title or "Backtest: drawdown")
    raise InputError(f"kind={kind!r}: choose 'value' or 'drawdown'")
