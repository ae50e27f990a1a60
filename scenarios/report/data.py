"""What the report's charts need beyond ``res.report()``: report.json's ``charts`` key.

:func:`run_charts` (a :class:`~scenarios.engine.RunResult`) and
:func:`backtest_charts` (a :class:`~scenarios.backtest_run.BacktestRun`) return
JSON-ready dicts that :mod:`scenarios.report.html` draws, so that
``trimtab report RUN_DIR`` can draw the report again from the run folder alone.

The frontiers
-------------
``frontier.policy`` is the efficient frontier under every constraint of the
scenario (the run's own frontier when it has one); ``frontier.unconstrained``
the frontier with only the budget and long-only (``Budget(1)`` and
``LongOnly()``, the defaults of :func:`models.mean_variance.efficient_frontier`
with no ``constraints=``): the gap between the two is what the policy's limits
cost. Both are :data:`FRONTIER_POINTS` points from the least-variance
portfolio up, with the estimates of the run. The capital market line runs from
the risk-free rate through the tangency (maximum-Sharpe) portfolio of the
unconstrained frontier; it is drawn when the scenario's risk-free rate is not
0 (the schema's default). A frontier that cannot be made is left out with the
reason (``error``): the report says so, the run does not fail for it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from optimizer.allocation import Frontier
from optimizer.constraints import Bounds, DeviationBand, GroupLimit
from optimizer.errors import InfeasibleError, InputError, SolverError
from scenarios.export import to_jsonable

#: Points of each frontier drawn in the report.
FRONTIER_POINTS = 40


def frontier_points(front: Frontier) -> list[dict[str, float]]:
    """``[{"volatility", "expected_return"}, ...]`` of a frontier, by increasing risk."""
    pts = front.points.sort_values("volatility")
    return [
        {"volatility": float(v), "expected_return": float(r)}
        for v, r in zip(pts["volatility"], pts["expected_return"], strict=True)
    ]


def risk_return(weights: pd.Series, mu: pd.Series, cov: pd.DataFrame) -> dict[str, float]:
    """``{"volatility", "expected_return"}`` of weights (annualized decimals)."""
    w = weights.reindex(cov.index).fillna(0.0).to_numpy(dtype=float)
    m = mu.reindex(cov.index).fillna(0.0).to_numpy(dtype=float)
    var = float(w @ cov.to_numpy(dtype=float) @ w)
    return {"volatility": math.sqrt(max(var, 0.0)), "expected_return": float(w @ m)}


def _frontier(mu, cov, rf, **kw) -> tuple[Frontier | None, str | None]:
    from models import mean_variance as mv

    try:
        return mv.efficient_frontier(mu, cov, points=FRONTIER_POINTS, risk_free_rate=rf, **kw), None
    except (InfeasibleError, SolverError, InputError) as exc:
        return None, str(exc)


def frontier_data(res) -> dict[str, Any]:
    """The frontier chart's data of a run (see the module notes)."""
    return frontier_chart(res.scenario, res.estimates, res.frontier, res.target)


def frontier_chart(scn, est, front: Frontier | None, target: pd.Series | None) -> dict[str, Any]:
    """The frontier chart's data: the policy's frontier (``front``, else computed), the
    unconstrained one, the marks (``target`` when given, the policy, the holdings) and the
    capital market line; what ``trimtab run`` and ``trimtab frontier --out`` draw."""
    from models import mean_variance as mv

    rf = float(scn.estimates.risk_free_rate)
    mu, cov = est.mu, est.cov
    out: dict[str, Any] = {"risk_free_rate": rf, "points": FRONTIER_POINTS}
    front, err = (
        (front, None)
        if front is not None
        else _frontier(mu, cov, rf, constraints=list(scn.constraints), universe=scn.universe)
    )
    out["policy"] = None if front is None else frontier_points(front)
    out["policy_error"] = err
    free, err = _frontier(mu, cov, rf)
    out["unconstrained"] = None if free is None else frontier_points(free)
    out["unconstrained_error"] = err
    out["unconstrained_constraints"] = ["budget", "long-only"]
    marks = {} if target is None else {"target": risk_return(target, mu, cov)}
    if scn.policy is not None:
        marks["policy"] = risk_return(scn.policy, mu, cov)
    if scn.holdings is not None and float(scn.holdings.values.sum()) > 0:
        marks["current"] = risk_return(scn.holdings.weights, mu, cov)
    out["marks"] = marks
    out["cml"] = None
    if rf != 0.0:
        try:
            tan = mv.max_sharpe(mu, cov, risk_free_rate=rf)
            vol, er = float(tan.volatility), float(tan.expected_return)
            if vol > 0:
                out["cml"] = {
                    "risk_free_rate": rf,
                    "tangency": {"volatility": vol, "expected_return": er},
                    "sharpe": (er - rf) / vol,
                }
        except (InfeasibleError, SolverError, InputError):
            pass
    return out


def bands(scn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lower and upper limits by asset and by tag from the scenario's constraints.

    By asset: the deviation bands without a tag (policy +/- width) and the
    bounds; by tag: the deviation bands on a tag (the tag's policy total +/-
    width) and the group limits. NaN where nothing limits that side.
    """
    assets = list(scn.assets)
    uni = scn.universe
    tags = uni.all_tags if uni is not None else []
    a = pd.DataFrame({"lower": np.nan, "upper": np.nan}, index=pd.Index(assets, dtype=object))
    t = pd.DataFrame({"lower": np.nan, "upper": np.nan}, index=pd.Index(tags, dtype=object))

    def tighten(frame, key, lo, hi):
        if key not in frame.index:
            return
        if lo is not None and math.isfinite(lo):
            cur = frame.at[key, "lower"]
            frame.at[key, "lower"] = lo if math.isnan(cur) else max(cur, lo)
        if hi is not None and math.isfinite(hi):
            cur = frame.at[key, "upper"]
            frame.at[key, "upper"] = hi if math.isnan(cur) else min(cur, hi)

    for c in scn.constraints:
        if isinstance(c, DeviationBand):
            ref = pd.Series(dict(c.reference), dtype=float)
            if c.tag is not None:
                total = float(ref.reindex(uni.members(c.tag)).fillna(0.0).sum())
                tighten(t, c.tag, total - float(c.width), total + float(c.width))
            else:
                widths = (
                    dict(c.width)
                    if not isinstance(c.width, int | float)
                    else dict.fromkeys(assets, float(c.width))
                )
                for asset, w in widths.items():
                    r = float(ref.get(asset, 0.0))
                    tighten(a, asset, r - float(w), r + float(w))
        elif isinstance(c, GroupLimit) and c.tag is not None:
            tighten(t, c.tag, c.min, c.max)
        elif isinstance(c, Bounds):
            for side, value in (("lower", c.lower), ("upper", c.upper)):
                if value is None:
                    continue
                per = (
                    dict(value)
                    if not isinstance(value, int | float)
                    else dict.fromkeys(assets, float(value))
                )
                for asset, v in per.items():
                    lo, hi = (v, None) if side == "lower" else (None, v)
                    tighten(a, asset, lo, hi)
    return a, t


def allocation_data(res) -> dict[str, Any]:
    """Target, policy, current and after-trade weights with the bands, by asset and by tag."""
    scn = res.scenario
    assets = list(scn.assets)
    cols = {"target": res.target.reindex(assets).fillna(0.0)}
    if scn.policy is not None:
        cols["policy"] = scn.policy.reindex(assets).fillna(0.0)
    if scn.holdings is not None:
        cols["current"] = scn.holdings.weights.reindex(assets).fillna(0.0)
    if res.plan is not None:
        cols["after_trades"] = res.plan.weights_after.reindex(assets).fillna(0.0)
    frame = pd.DataFrame(cols)
    a_bands, t_bands = bands(scn)
    names = dict(scn.asset_names)
    by_asset = [
        {
            "asset": asset,
            "name": names.get(asset, asset),
            **{k: float(frame.at[asset, k]) for k in frame.columns},
            "lower": _opt(a_bands.at[asset, "lower"]),
            "upper": _opt(a_bands.at[asset, "upper"]),
        }
        for asset in assets
    ]
    by_tag = []
    uni = scn.universe
    for tag in uni.all_tags if uni is not None else []:
        members = uni.members(tag)
        by_tag.append(
            {
                "tag": tag,
                "assets": members,
                **{k: float(frame.loc[members, k].sum()) for k in frame.columns},
                "lower": _opt(t_bands.at[tag, "lower"]),
                "upper": _opt(t_bands.at[tag, "upper"]),
            }
        )
    return {"by_asset": by_asset, "by_tag": by_tag}


def _opt(v: float) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def risk_data(res) -> list[dict[str, Any]]:
    """Weight, risk contribution and its share of the volatility, by asset."""
    a = res.allocation
    rc = a.risk_contributions.reindex(res.scenario.assets).fillna(0.0)
    vol = float(a.volatility or 0.0)
    return [
        {
            "asset": k,
            "weight": float(res.target.get(k, 0.0)),
            "risk_contribution": float(v),
            "share": float(v) / vol if vol > 0 else None,
        }
        for k, v in rc.items()
    ]


def montecarlo_data(mc) -> dict[str, Any]:
    """Percentiles of real spending by year (the value fans are in report.json already)."""
    from scenarios.montecarlo import PERCENTILES

    q = np.percentile(mc.real_spending, PERCENTILES, axis=0)
    return {
        "real_spending_percentiles": {
            f"p{p}": [float(x) for x in row] for p, row in zip(PERCENTILES, q, strict=True)
        },
        "value": float(mc.values[0, 0]),
        "years": int(mc.years),
    }


def run_charts(res) -> dict[str, Any]:
    """report.json's ``charts`` of a run: frontiers, allocation, risk, Monte Carlo extras."""
    scn = res.scenario
    out = {
        "currency": scn.portfolio.currency,
        "value": scn.portfolio.value,
        "frontier": frontier_data(res),
        "allocation": allocation_data(res),
        "risk": risk_data(res),
    }
    if res.montecarlo is not None:
        out["montecarlo"] = montecarlo_data(res.montecarlo)
    return to_jsonable(out)


def attribution(run) -> dict[str, Any]:
    """Brinson attribution of each policy against the target held exactly, by segment.

    Segments are the scenario's tags when every asset carries exactly one
    (sectors), else the assets. Periods are calendar years (Brinson-Fachler
    per year, linked with Carino's coefficients by
    :func:`scenarios.attribution.brinson_multi`): each year's weights are the
    policy's weights at its start (after the last trades before it), each
    asset's return is compounded over the year, and the benchmark is the
    target. Both sides earn the assets' own returns, so the effects say what
    drifting from the target (and trading back) earned, approximately (drift
    and trades within a year are not in them); costs are not either (the
    comparison table has those).
    """
    from scenarios.attribution import brinson_multi

    scn = run.scenario
    uni = scn.universe
    assets = list(run.target.index)
    tags = {a: uni.tags.get(a, ()) for a in assets} if uni is not None else {}
    seg_of = (
        {a: tags[a][0] for a in assets}
        if tags and all(len(t) == 1 for t in tags.values())
        else {a: a for a in assets}
    )
    out = {
        "segments": "tags" if any(k != v for k, v in seg_of.items()) else "assets",
        "periods": "calendar years",
    }
    policies = {}
    for name, res in run.results.items():
        w = res.weights.reindex(columns=assets).fillna(0.0)
        r = scn.estimates.returns.reindex(index=w.index, columns=assets).fillna(0.0).iloc[1:]
        start_w = w.shift(1).iloc[1:]  # held through each period: after the last trades
        start_w, r = _by_year(start_w, r)
        bench = pd.DataFrame(
            [run.target.reindex(assets).to_numpy()] * len(r), index=r.index, columns=assets
        )
        pw, bw = _group(start_w, seg_of), _group(bench, seg_of)
        pr, br = _seg_return(start_w, r, seg_of), _seg_return(bench, r, seg_of)
        try:
            att = brinson_multi(pw, bw, pr, br)
        except (InputError, ValueError) as exc:
            policies[name] = {"error": str(exc)}
            continue
        table = att.by_segment.drop(index="total", errors="ignore")
        policies[name] = {
            "by_segment": [{"segment": str(k), **row} for k, row in table.to_dict("index").items()],
            "excess": float(att.excess),
            "periods": len(r),
        }
    out["policies"] = policies
    return out


def _by_year(w: pd.DataFrame, r: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weights at the start of each calendar year and each asset's return over it."""
    year = r.index.year
    if len(set(year)) == len(r):  # annual data already
        return w, r
    growth = (1.0 + r).groupby(year).prod() - 1.0
    first = w.groupby(year).head(1)
    first.index = first.index.year
    growth.index = pd.to_datetime([f"{y}-12-31" for y in growth.index])
    first.index = growth.index
    return first, growth


def _group(w: pd.DataFrame, seg_of: dict) -> pd.DataFrame:
    return w.T.groupby(pd.Series(seg_of), sort=False).sum().T


def _seg_return(w: pd.DataFrame, r: pd.DataFrame, seg_of: dict) -> pd.DataFrame:
    """Weighted return of each segment (the segment's equal mean where it holds nothing)."""
    num = _group(w * r, seg_of)
    den = _group(w, seg_of)
    plain = _group(r, seg_of) / _group(r * 0 + 1, seg_of)
    return (num / den.where(den.abs() > 1e-15)).fillna(plain)


def backtest_charts(run) -> dict[str, Any]:
    """report.json's ``charts`` of a backtest run: the attribution by segment."""
    try:
        att = attribution(run)
    except (InputError, ValueError, KeyError) as exc:  # never fail the run for a chart
        att = {"error": str(exc)}
    return to_jsonable(
        {
            "currency": run.scenario.portfolio.currency,
            "attribution": att,
            "values_file": "backtest_values.csv",
        }
    )
