"""Walk-forward backtests of rebalancing policies.

At each date of a returns history the holdings drift with that date's
returns, cash flows (contributions, withdrawals, an endowment spending rule)
are applied, then the policy decides whether to trade; trades happen at that
date's close and earn the next period's returns. The allocation callable sees
only the history up to and including the decision date (no look-ahead), and
the cost-aware rebalance optimizer (:func:`optimizer.rebalance.rebalance`)
makes the trades. A :class:`DrawdownRule` and a :class:`TakeProfitRule` switch
the portfolio to other weights (or back to the target) on its own path. The
policies ``BuyAndHold``, ``Calendar``, ``Threshold`` and
``Hybrid`` are the triggers of :mod:`optimizer.triggers`, the same objects
that decide a scenario's rebalance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models._common import resolve_periods, validate_returns
from models.mean_risk import confidence
from optimizer.costs import CostModel
from optimizer.errors import InputError
from optimizer.rebalance import rebalance
from optimizer.triggers import BuyAndHold, Calendar, Hybrid, Threshold
from optimizer.universe import Universe
from optimizer.validation import finite_number, real_number

#: Tracking weight that makes the rebalance optimizer trade (all but) to target.
TO_TARGET = 1e8


def _whole(value: object, what: str, low: int) -> int:
    """A whole number ``>= low`` (a float without fraction too); bool and text refused."""
    v = finite_number(value, what=what)
    if v != int(v):
        raise InputError(f"{what} must be a whole number, got {value!r}")
    if v < low:
        raise InputError(f"{what} must be at least {low}, got {value!r}")
    return int(v)


# ----------------------------------------------------------------------------- policies
# BuyAndHold, Calendar, Threshold and Hybrid are the triggers of optimizer.triggers (the same
# objects serve the rebalance checks); Optimized adds a way of trading to a Calendar schedule.


@dataclass(frozen=True)
class Optimized:
    """The cost-aware optimizer decides at every ``every``-th period how much to trade.

    Trades minimize tracking error against the target plus costs
    (``tracking_weight`` as in :func:`optimizer.rebalance.rebalance`); the
    reviews are those of ``Calendar(every)``.
    """

    every: int = 1
    tracking_weight: float = 100.0
    name: str | None = None
    schedule: Calendar = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            every = int(self.every)
        except (TypeError, ValueError, OverflowError):
            every = None
        if isinstance(self.every, bool) or every is None or every != self.every:
            raise InputError(f"Optimized every must be a whole number, got {self.every!r}")
        if every < 1:
            raise InputError(f"Optimized every must be at least 1, got {self.every!r}")
        object.__setattr__(self, "every", int(every))
        object.__setattr__(self, "name", self.name or f"optimized every {self.every}")
        object.__setattr__(self, "schedule", Calendar(self.every))

    def reviews(self, period: int | None = None, *, as_of=None, last=None) -> bool:
        """True at every ``every``-th period (the reviews of ``Calendar(every)``)."""
        return self.schedule.reviews(period, as_of=as_of, last=last)

    def bands(self, assets: pd.Index, universe: Universe | None = None) -> None:
        """No bands: the optimizer weighs every drift."""
        return None

    def decide(self, weights: np.ndarray, target: np.ndarray, bands=None) -> bool:
        """Always True: the optimizer decides how much to trade."""
        return True


Policy = BuyAndHold | Calendar | Threshold | Hybrid | Optimized


@dataclass(frozen=True)
class SpendingRule:
    """Endowment spending: each period, ``rate / periods_per_year`` of the trailing average value.

    The average runs over the last ``window`` period-end values (12 on monthly
    data: a one-year smoothing; endowments often use 12 quarters).
    """

    rate: float = 0.04
    window: int = 12

    def __post_init__(self) -> None:
        if not 0 <= finite_number(self.rate, what="SpendingRule rate") < 1:
            raise InputError(f"SpendingRule rate must be in [0, 1), got {self.rate!r}")
        object.__setattr__(self, "window", _whole(self.window, "SpendingRule window", 1))


@dataclass(frozen=True)
class DrawdownRule:
    """De-risk to ``defensive`` weights after a fall of ``threshold`` from the peak;
    re-risk once the value is back within ``recover`` of that peak."""

    threshold: float
    defensive: pd.Series
    recover: float = 0.05

    def __post_init__(self) -> None:
        threshold = finite_number(self.threshold, what="DrawdownRule threshold")
        if not 0 < threshold < 1:
            raise InputError(f"DrawdownRule threshold must be in (0, 1), got {self.threshold!r}")
        if not 0 <= finite_number(self.recover, what="DrawdownRule recover") < threshold:
            raise InputError("DrawdownRule recover must be in [0, threshold)")


@dataclass(frozen=True)
class TakeProfitRule:
    """Take profits after a gain of ``threshold`` since the last rebalance to the target.

    The gain is the portfolio's compounded return (net of costs, cash flows
    excluded) since the close of the last date it was traded to the target
    (the first date counts, and so does a take-profit trade), measured at
    each date's close before the policy decides, from returns up to that
    date only. When it reaches ``threshold``, at that close:

    * without ``safer``: the portfolio is rebalanced to the target (the
      winners' gains sold back to their target weights) and the gain
      restarts from there;
    * with ``safer``: it moves to the ``safer`` weights and holds them until
      the gain since the same reference is back to ``reset`` or below, then
      returns to the target (re-risks) and the gain restarts.

    The mirror of :class:`DrawdownRule`: that one de-risks after a fall of
    its threshold from the peak and re-risks once back within ``recover`` of
    it; this one de-risks after a rise of ``threshold`` and re-risks once all
    but ``reset`` of it is given back. While a drawdown rule holds its
    defensive weights, this rule neither fires nor re-risks.
    """

    threshold: float
    safer: pd.Series | None = None
    reset: float = 0.05

    def __post_init__(self) -> None:
        threshold = finite_number(self.threshold, what="TakeProfitRule threshold", positive=True)
        reset = finite_number(self.reset, what="TakeProfitRule reset")
        if not 0 <= reset < threshold:
            raise InputError(
                f"TakeProfitRule reset must be in [0, threshold {threshold:g}), got {self.reset!r}"
            )


# ----------------------------------------------------------------------------- result


@dataclass(frozen=True)
class BacktestResult:
    """A backtest's path and metrics.

    Attributes
    ----------
    values : pandas.Series
        Portfolio value at each date's close, after trading and cash flows.
    weights : pandas.DataFrame
        Weights after trading, dates x assets.
    trades : pandas.DataFrame
        Signed traded notional, dates x assets (0 where nothing traded).
    costs : pandas.Series
        Transaction costs paid at each date (currency).
    cash_flows : pandas.Series
        Contributions (> 0), withdrawals and spending (< 0) at each date.
    returns : pandas.Series
        Periodic portfolio returns net of costs (cash flows excluded).
    benchmark_returns : pandas.Series
        Returns of the policy benchmark (the target held exactly each period).
    metrics : dict
        See :func:`metrics`.
    """

    policy: str
    values: pd.Series
    weights: pd.DataFrame
    trades: pd.DataFrame
    costs: pd.Series
    cash_flows: pd.Series
    returns: pd.Series
    benchmark_returns: pd.Series
    metrics: dict = field(default_factory=dict)
    notes: tuple = ()
    kind: str = ""


def metrics(
    returns: pd.Series,
    *,
    periods_per_year: float,
    benchmark: pd.Series | None = None,
    risk_free_rate: float = 0.0,
    alpha: float = 0.95,
) -> dict[str, float]:
    """Performance metrics of periodic returns (decimals; annualized where stated).

    CAGR, annualized volatility, Sharpe and Sortino ratios (against
    ``risk_free_rate``, annual), maximum drawdown (positive), Calmar ratio
    (CAGR / max drawdown), historical VaR and CVaR at ``alpha`` (periodic
    losses, positive), and against ``benchmark`` the annualized tracking
    error and information ratio.
    """
    if not isinstance(returns, pd.Series):
        raise InputError(
            f"returns must be a pandas Series of returns, got {type(returns).__name__}"
        )
    p = resolve_periods(returns.to_frame(), periods_per_year)
    risk_free_rate = finite_number(risk_free_rate, what="risk_free_rate")
    alpha = confidence(alpha)
    r = returns.to_numpy(dtype=float)
    growth = float(np.prod(1.0 + r))
    years = len(r) / p
    cagr = growth ** (1.0 / years) - 1.0 if years > 0 and growth > 0 else float("nan")
    vol = float(np.std(r, ddof=1) * math.sqrt(p)) if len(r) > 1 else float("nan")
    rf_p = (1.0 + risk_free_rate) ** (1.0 / p) - 1.0
    excess = r - rf_p
    sharpe = float(excess.mean() * p / vol) if vol and vol > 0 else float("nan")
    downside = np.minimum(excess, 0.0)
    dd_vol = float(np.sqrt((downside**2).mean()) * math.sqrt(p))
    sortino = float(excess.mean() * p / dd_vol) if dd_vol > 0 else float("nan")
    wealth = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(np.r_[1.0, wealth])[1:]
    mdd = float(np.max(1.0 - wealth / peak)) if len(r) else 0.0
    losses = np.sort(-r)[::-1]
    k = max(1, int(math.ceil(len(r) * (1 - alpha) - 1e-9)))
    out = {
        "cagr": cagr,
        "volatility": vol,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": mdd,
        "calmar": cagr / mdd if mdd > 0 else float("nan"),
        "var": float(losses[k - 1]) if len(r) else float("nan"),
        "cvar": float(losses[:k].mean()) if len(r) else float("nan"),
    }
    if benchmark is not None:
        active = r - benchmark.to_numpy(dtype=float)
        te = float(np.std(active, ddof=1) * math.sqrt(p)) if len(r) > 1 else float("nan")
        out["tracking_error"] = te
        out["information_ratio"] = float(active.mean() * p / te) if te and te > 0 else float("nan")
    return out


# ----------------------------------------------------------------------------- engine


def _target_of(allocate, history: pd.DataFrame, assets: pd.Index) -> np.ndarray:
    target = allocate(history) if callable(allocate) else allocate
    if isinstance(target, dict):
        target = pd.Series(target, dtype=float)
    if not isinstance(target, pd.Series):
        raise InputError("allocate must give a pandas Series of target weights by asset")
    unknown = target.index.difference(assets)
    if len(unknown):
        raise InputError(f"target names assets not in the returns: {', '.join(map(str, unknown))}")
    t = target.reindex(assets).fillna(0.0).to_numpy(dtype=float)
    if not np.isfinite(t).all() or abs(t.sum() - 1.0) > 1e-6 or (t < -1e-12).any():
        raise InputError(
            f"target weights at {history.index[-1].date()} must be finite, non-negative and "
            f"sum to 1 (they sum to {t.sum():.6g})"
        )
    return np.clip(t, 0.0, None)


def _rule_weights(weights: pd.Series, what: str, returns: pd.DataFrame) -> np.ndarray:
    """A rule's weights as :func:`_target_of` checks them, ``what`` named in any error."""
    try:
        return _target_of(weights, returns.iloc[:1], returns.columns)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None


def backtest(
    returns: pd.DataFrame,
    allocate: pd.Series | Callable[[pd.DataFrame], pd.Series],
    *,
    policy: Policy | None = None,
    costs: CostModel | None = None,
    initial_value: float = 1_000_000.0,
    cov: pd.DataFrame | None = None,
    cash_flows: pd.Series | None = None,
    spending: SpendingRule | None = None,
    drawdown_rule: DrawdownRule | None = None,
    take_profit: TakeProfitRule | None = None,
    periods_per_year: float | None = None,
    risk_free_rate: float = 0.0,
    cov_refresh: int = 12,
    min_history: int = 24,
    universe: Universe | None = None,
) -> BacktestResult:
    """Walk forward over ``returns`` under a rebalancing policy.

    Parameters
    ----------
    returns : pandas.DataFrame
        Periodic asset returns (decimals), dates x assets.
    allocate : pandas.Series or callable
        Target weights, or ``allocate(history) -> Series`` called at each review
        with the returns up to and including the decision date only.
    policy : policy object
        ``Calendar``, ``Threshold``, ``Hybrid``, ``BuyAndHold`` (the triggers
        of :mod:`optimizer.triggers`) or ``Optimized`` (default ``Calendar(1)``).
        A schedule of ``months`` counts calendar months from the last review
        (the first date is one).
    costs : CostModel, optional
        Transaction costs, charged in currency and taken from the portfolio.
    initial_value : float
        Invested at the first date's close.
    cov : pandas.DataFrame, optional
        Annualized covariance for the optimizer. By default the sample
        covariance of the history up to the decision date (at least
        ``min_history`` periods; a diagonal of the history's variances
        before that), re-estimated every ``cov_refresh`` periods so that the
        compiled rebalance program is reused between refreshes.
    cash_flows : pandas.Series, optional
        Currency by date: contributions (> 0) and withdrawals (< 0), applied
        at that date's close before the policy decides; flows on the first
        date join the initial investment, flows on one date add up.
    spending : SpendingRule, optional
        Endowment spending, withdrawn each period.
    drawdown_rule : DrawdownRule, optional
        Switch to defensive weights after a fall from the peak.
    take_profit : TakeProfitRule, optional
        Rebalance to the target, or switch to safer weights, after a gain
        since the last rebalance to the target.
    periods_per_year : float, optional
        Inferred from the dates by default.
    universe : Universe, optional
        Asset tags, for threshold bands given by tag.

    Returns
    -------
    BacktestResult
    """
    values_arr = validate_returns(returns, min_obs=2)
    assets = returns.columns
    n = len(assets)
    dates = returns.index
    ppy = resolve_periods(returns, periods_per_year)
    policy = policy or Calendar(1)
    costs = costs or CostModel()
    if not isinstance(policy, BuyAndHold | Calendar | Threshold | Hybrid | Optimized):
        raise InputError(f"unknown policy {policy!r}")
    initial_value = real_number(initial_value, what="initial_value")
    if not (math.isfinite(initial_value) and initial_value > 0):
        raise InputError(f"initial_value must be positive, got {initial_value!r}")
    risk_free_rate = finite_number(risk_free_rate, what="risk_free_rate")
    cov_refresh = _whole(cov_refresh, "cov_refresh", 1)
    min_history = _whole(min_history, "min_history", 0)
    flows = pd.Series(0.0, index=dates)
    if cash_flows is not None:
        extra = cash_flows.index.difference(dates)
        if len(extra):
            raise InputError(f"cash_flows has dates not in the returns: {extra[0]}")
        given = cash_flows.astype(float)
        if not np.isfinite(given.to_numpy()).all():
            raise InputError("cash_flows must be finite numbers")
        # several flows on one date add up (a plain add would duplicate the date)
        flows = flows.add(given.groupby(level=0).sum(), fill_value=0.0)
    bands = policy.bands(assets, universe)
    defensive = safer = None
    if drawdown_rule is not None:
        defensive = _rule_weights(drawdown_rule.defensive, "DrawdownRule defensive", returns)
    if take_profit is not None and take_profit.safer is not None:
        safer = _rule_weights(take_profit.safer, "TakeProfitRule safer", returns)
    tw = policy.tracking_weight if isinstance(policy, Optimized) else TO_TARGET

    cov_obj = cov
    cov_at = -(10**9)

    def cov_for(i: int) -> pd.DataFrame:
        nonlocal cov_obj, cov_at
        if cov is not None:
            return cov
        if cov_obj is None or i - cov_at >= cov_refresh:
            hist = values_arr[: i + 1]
            if len(hist) >= max(min_history, n + 2):
                c = np.cov(hist, rowvar=False) * ppy
            else:
                var = hist.var(axis=0, ddof=1) if len(hist) > 1 else np.zeros(n)
                c = np.diag(np.where(var > 0, var, 1e-4) * ppy)
            c = c + np.eye(n) * 1e-10 * max(1.0, float(np.trace(c)) / n)
            cov_obj = pd.DataFrame(c, index=assets, columns=assets)
            cov_at = i
        return cov_obj

    def trade(i: int, holdings: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
        plan = rebalance(
            pd.Series(holdings, index=assets),
            pd.Series(target, index=assets),
            cov=cov_for(i),
            costs=costs,
            tracking_weight=tw,
        )
        t = np.zeros(n)
        if not plan.trades.empty:
            signed = np.where(plan.trades["side"] == "buy", 1.0, -1.0) * plan.trades["notional"]
            t[assets.get_indexer(plan.trades.index)] = signed.to_numpy()
        return t, plan.total_cost

    out_values = np.empty(len(dates))
    out_weights = np.empty((len(dates), n))
    out_trades = np.zeros((len(dates), n))
    out_costs = np.zeros(len(dates))
    out_flows = np.zeros(len(dates))
    pre_trade = np.ones(len(dates))  # value before trading, the turnover's denominator
    port_ret = np.zeros(len(dates))
    bench_ret = np.zeros(len(dates))
    notes: list[str] = []

    target = _target_of(allocate, returns.iloc[:1], assets)
    # a flow on the first date joins the initial investment (it used to be dropped)
    start = float(initial_value) + float(flows.iloc[0])
    if start <= 0:
        raise InputError(
            f"the cash flows at {dates[0].date()} exceed the portfolio value {initial_value:,.2f}"
        )
    out_flows[0] = float(flows.iloc[0])
    holdings = start * target
    out_values[0], out_weights[0] = holdings.sum(), target
    peak = holdings.sum()
    last_review = dates[0]  # the first allocation counts as a review
    defensive_on = safer_on = False
    mode = "target"  # what the portfolio is traded to: target, defensive or safer
    growth = ref_growth = 1.0  # compounded return; its value at the last trade to target
    ref_date = dates[0]
    history_values = [holdings.sum()]
    for i in range(1, len(dates)):
        r = values_arr[i]
        before = holdings.sum()
        holdings = holdings * (1.0 + r)
        if not np.isfinite(holdings.sum()):
            raise InputError(
                f"the portfolio value overflows on {dates[i].date()} (it grew from "
                f"{initial_value:,.2f} to more than 1e308): the returns are far too large for "
                "decimals; if they are percent, divide them by 100"
            )
        port_ret[i] = holdings.sum() / before - 1.0
        bench_ret[i] = float(target @ r)  # the policy target held exactly
        flow = float(flows.iloc[i])
        if spending is not None:
            window = history_values[-int(spending.window) :]
            flow -= spending.rate / ppy * float(np.mean(window))
        if flow:
            value = holdings.sum()
            if value + flow <= 0:
                raise InputError(
                    f"the cash flows at {dates[i].date()} exceed the portfolio value {value:,.2f}"
                )
            weights_now = holdings / value
            holdings = holdings + flow * weights_now
            out_flows[i] = flow
        value = holdings.sum()
        peak = max(peak, value)
        if drawdown_rule is not None:
            fall = 1.0 - value / peak
            if not defensive_on and fall >= drawdown_rule.threshold:
                defensive_on = True
                notes.append(f"{dates[i].date()}: drawdown {fall:.1%}, de-risked")
            elif defensive_on and fall <= drawdown_rule.recover:
                defensive_on = False
                notes.append(
                    f"{dates[i].date()}: recovered to {fall:.1%} below the peak, re-risked"
                )
        fire = False
        if take_profit is not None and not defensive_on:
            gain = growth * (1.0 + port_ret[i]) / ref_growth - 1.0
            since = f"since {ref_date.date()}"
            if not safer_on and gain >= take_profit.threshold:
                fire, safer_on = safer is None, safer is not None
                to = "the target" if fire else "the safer weights"
                notes.append(f"{dates[i].date()}: gain {gain:.1%} {since}, took profits to {to}")
            elif safer_on and gain <= take_profit.reset:
                safer_on = False
                notes.append(f"{dates[i].date()}: gain back to {gain:.1%} {since}, re-risked")
        weights_now = holdings / value
        review = policy.reviews(i, as_of=dates[i], last=last_review)
        if review:
            last_review = dates[i]
        if review and callable(allocate):
            target = _target_of(allocate, returns.iloc[: i + 1], assets)
        was = mode
        mode = "defensive" if defensive_on else "safer" if safer_on else "target"
        goal = {"defensive": defensive, "safer": safer}.get(mode, target)
        is_due = mode != was or fire or (review and policy.decide(weights_now, goal, bands))
        pre_trade[i] = value
        if is_due:
            t, cost = trade(i, holdings, goal)
            if np.any(t):
                holdings = holdings + t
                total = holdings.sum()
                holdings = holdings * (1.0 - cost / total)
                out_trades[i] = t
                out_costs[i] = cost
                port_ret[i] = (holdings.sum() - flow) / before - 1.0
        growth *= 1.0 + port_ret[i]
        if is_due and mode == "target":
            ref_growth, ref_date = growth, dates[i]
        out_values[i] = holdings.sum()
        out_weights[i] = holdings / holdings.sum()
        history_values.append(holdings.sum())
    idx = dates
    res_returns = pd.Series(port_ret[1:], index=idx[1:], name="return")
    bench = pd.Series(bench_ret[1:], index=idx[1:], name="benchmark")
    stats = metrics(
        res_returns, periods_per_year=ppy, benchmark=bench, risk_free_rate=risk_free_rate
    )
    traded = np.abs(out_trades).sum(axis=1)
    stats["rebalances"] = int((traded > 0).sum())
    stats["total_costs"] = float(out_costs.sum())
    stats["turnover"] = float((traded[1:] / pre_trade[1:]).sum() / (len(dates) - 1) * ppy)
    stats["final_value"] = float(out_values[-1])
    return BacktestResult(
        policy=policy.name,
        values=pd.Series(out_values, index=idx, name="value"),
        weights=pd.DataFrame(out_weights, index=idx, columns=assets),
        trades=pd.DataFrame(out_trades, index=idx, columns=assets),
        costs=pd.Series(out_costs, index=idx, name="cost"),
        cash_flows=pd.Series(out_flows, index=idx, name="cash_flow"),
        returns=res_returns,
        benchmark_returns=bench,
        metrics=stats,
        notes=tuple(notes),
        kind=type(policy).__name__,
    )


def compare(results: Mapping[str, BacktestResult] | list[BacktestResult]) -> pd.DataFrame:
    """Metrics of several backtests side by side, one row per policy.

    When one of them is buy-and-hold, ``rebalancing_bonus`` is each policy's
    CAGR minus buy-and-hold's, and ``value_vs_buy_and_hold`` the difference in
    final value (currency).
    """
    items = results.items() if isinstance(results, Mapping) else [(r.policy, r) for r in results]
    table = pd.DataFrame({name: res.metrics for name, res in items}).T
    hold = [name for name, res in items if res.kind == "BuyAndHold"]
    if hold:
        base = table.loc[hold[0]]
        table["rebalancing_bonus"] = table["cagr"] - base["cagr"]
        table["value_vs_buy_and_hold"] = table["final_value"] - base["final_value"]
    return table
