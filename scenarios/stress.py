"""Stress tests: instantaneous shocks by asset or tag applied to a portfolio."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from optimizer import validation
from optimizer.errors import InputError
from optimizer.universe import Universe, namespace_clash


@dataclass(frozen=True)
class StressResult:
    """One scenario applied to one portfolio.

    Attributes
    ----------
    name : str
        Scenario name.
    asset_returns : pandas.Series
        Shock applied to each asset (decimal; 0 where the scenario is silent).
    contributions : pandas.Series
        ``weight * shock`` by asset; they sum to ``portfolio_return``.
    portfolio_return : float
        Decimal return of the portfolio under the shock.
    value_before, value_after : float or None
        Portfolio value (currency) before and after, when a value was given.
    survives : bool or None
        ``value_after >= floor * value_before`` when a floor was given.
    """

    name: str
    asset_returns: pd.Series
    contributions: pd.Series
    portfolio_return: float
    value_before: float | None = None
    value_after: float | None = None
    floor: float | None = None
    survives: bool | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "portfolio_return": self.portfolio_return,
            "value_before": self.value_before,
            "value_after": self.value_after,
            "floor": self.floor,
            "survives": self.survives,
            "contributions": {str(k): float(v) for k, v in self.contributions.items()},
        }


def shock_vector(
    shocks: Mapping[str, float], assets: Sequence[str], universe: Universe | None = None
) -> pd.Series:
    """Per-asset shocks from a mapping keyed by asset id or tag.

    Asset ids and tags share one namespace (:class:`~optimizer.universe.Universe`
    refuses a clash), so a key names one or the other, never both.

    Raises
    ------
    InputError
        A key that is neither an asset nor a tag, an asset id of ``assets`` that
        is also a tag of ``universe`` (named, with the assets carrying it), or an
        asset that two tag shocks would both hit (give it an asset-level shock).
    """
    assets = [str(a) for a in assets]
    known = set(assets)
    if universe is not None:
        clash = namespace_clash(assets, universe.tags)
        if clash is not None:
            raise InputError(clash)
    tags = set(universe.all_tags) if universe is not None else set()
    out = pd.Series(0.0, index=assets)
    by_tag: dict[str, list[str]] = {}
    for key, value in shocks.items():
        v = validation.real_number(value, what=f"shock for {key!r}")  # bool, text refused
        if not np.isfinite(v) or v <= -1.0:
            raise InputError(f"shock for {key!r} must be finite and above -100%, got {value!r}")
        if str(key) in known:
            continue
        if str(key) not in tags:
            raise InputError(f"shock names {key!r}, which is neither an asset nor a tag")
        for member in universe.members(str(key)):
            if member in known:
                by_tag.setdefault(member, []).append(str(key))
                out[member] = v
    for member, hit in by_tag.items():
        if len(hit) > 1 and member not in {str(k) for k in shocks}:
            raise InputError(
                f"asset {member} is hit by shocks on several tags ({', '.join(hit)}): "
                "give it its own shock"
            )
    for key, value in shocks.items():
        if str(key) in known:
            out[str(key)] = float(value)
    return out


def apply(
    weights: pd.Series,
    shocks: Mapping[str, float],
    *,
    name: str = "stress",
    universe: Universe | None = None,
    value: float | None = None,
    floor: float | None = None,
) -> StressResult:
    """Apply one instantaneous shock to a portfolio.

    Parameters
    ----------
    weights : pandas.Series
        Portfolio weights by asset (decimals).
    shocks : mapping
        Return by asset id or tag (decimal: -0.35 is a 35% fall).
    universe : Universe, optional
        Needed for tag shocks.
    value : float, optional
        Portfolio value today (currency).
    floor : float, optional
        Survival check: the value after the shock must be at least ``floor``
        times today's (0.80 for 80%), in [0, 1].

    Returns
    -------
    StressResult

    Raises
    ------
    InputError
        Weights not a Series, with duplicates, text, NaN or inf (naming the
        assets); a shock that is not a number above -100% or names neither an
        asset nor a tag; ``value`` not a positive number; ``floor`` outside [0, 1].
    """
    weights = _weights(weights)  # NaN, inf and text refused, naming the assets
    r = shock_vector(shocks, list(weights.index), universe)
    contrib = weights * r
    ret = float(contrib.sum())
    if value is not None:
        value = validation.finite_number(value, what="value", positive=True)
    if floor is not None:
        floor = _scalar("floor", floor, 0.0, 1.0)
    after = None if value is None else value * (1.0 + ret)
    survives = None
    if floor is not None and value is not None:
        survives = bool(after >= floor * value - 1e-9)
    return StressResult(name, r, contrib, ret, value, after, floor, survives)


# ====================================================================== history


@dataclass(frozen=True)
class HistoricalStress:
    """A window of history replayed on one portfolio.

    Attributes
    ----------
    name : str
        Scenario name.
    start, end : hashable
        First and last index labels of the window (both included).
    portfolio_return : float
        Compounded decimal return of the portfolio over the window.
    asset_returns : pandas.Series
        Compounded decimal return of each asset over the window.
    contributions : pandas.Series
        Gain of each position, per unit of starting value; they sum to
        ``portfolio_return``. Buy-and-hold: ``w_i * asset_return_i``.
        Rebalanced: ``w_i * sum_t V_{t-1} r_{i,t}``.
    path : pandas.Series
        Portfolio value at the end of each period of the window (it starts
        at 1 before the first period; its last value is ``1 + portfolio_return``).
    rebalance : bool
        Whether the weights were restored every period.
    """

    name: str
    start: object
    end: object
    portfolio_return: float
    asset_returns: pd.Series
    contributions: pd.Series
    path: pd.Series
    rebalance: bool = False

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "start": str(self.start),
            "end": str(self.end),
            "periods": len(self.path),
            "rebalance": self.rebalance,
            "portfolio_return": self.portfolio_return,
            "asset_returns": {str(k): float(v) for k, v in self.asset_returns.items()},
            "contributions": {str(k): float(v) for k, v in self.contributions.items()},
        }


def _weights(weights: object) -> pd.Series:
    if not isinstance(weights, pd.Series):
        raise InputError("weights must be a pandas Series labelled by asset")
    if weights.index.has_duplicates:
        dups = sorted({str(a) for a in weights.index[weights.index.duplicated()]})
        raise InputError(f"weights have duplicate assets: {', '.join(dups)}")
    if not validation.is_numeric(weights):
        bad = [str(a) for a, v in weights.items() if not validation.is_real(v)]
        raise InputError(
            f"weights must be numbers; not a number for asset(s): {', '.join(bad)} "
            f"(got {weights[bad[0]]!r})"
        )
    w = weights.astype(float)
    bad = [str(a) for a, v in w.items() if not np.isfinite(v)]
    if bad:
        raise InputError(f"weights are NaN or infinite for asset(s): {', '.join(bad)}")
    return w


def _history(weights: object, returns: object) -> tuple[pd.Series, pd.DataFrame]:
    """Validated weights and the returns of the weighted assets (NaN not yet checked)."""
    w = _weights(weights)
    if not isinstance(returns, pd.DataFrame):
        raise InputError("returns must be a pandas DataFrame (dates x assets)")
    missing = [str(a) for a in w.index if a not in returns.columns]
    if missing:
        raise InputError(f"returns have no column for asset(s): {', '.join(missing)}")
    if returns.columns.has_duplicates:
        dups = sorted({str(a) for a in returns.columns[returns.columns.duplicated()]})
        raise InputError(f"returns have duplicate columns: {', '.join(dups)}")
    if not returns.index.is_monotonic_increasing or returns.index.has_duplicates:
        raise InputError("returns must be indexed by strictly increasing dates")
    try:
        frame = returns.loc[:, list(w.index)].astype(float)
    except (TypeError, ValueError):
        raise InputError("returns must be numeric") from None
    return w, frame


def _check_finite(frame: pd.DataFrame) -> None:
    bad = ~np.isfinite(frame.to_numpy())
    if bad.any():
        cols = [str(c) for c, b in zip(frame.columns, bad.any(axis=0), strict=True) if b]
        first = frame.index[int(np.argmax(bad.any(axis=1)))]
        raise InputError(
            f"returns are NaN or infinite for asset(s): {', '.join(cols)} (first at {first})"
        )


def _window_products(g: np.ndarray, periods: int) -> np.ndarray:
    """Product of every run of ``periods`` consecutive rows of ``g``, shape (T - periods + 1, k).

    Log sums of ``|g|`` with running counts of zeros and negatives, so O(T k)
    and exact in sign for any ``g`` (a -100% period gives 0).
    """
    zero = g == 0.0
    logs = np.log(np.abs(np.where(zero, 1.0, g)))
    pad = np.zeros((1, g.shape[1]))
    c_log = np.concatenate([pad, np.cumsum(logs, axis=0)])
    c_zero = np.concatenate([pad, np.cumsum(zero, axis=0)])
    c_neg = np.concatenate([pad, np.cumsum(g < 0.0, axis=0)])
    mag = np.exp(c_log[periods:] - c_log[:-periods])
    sign = np.where((c_neg[periods:] - c_neg[:-periods]) % 2 == 1, -1.0, 1.0)
    return np.where(c_zero[periods:] - c_zero[:-periods] > 0, 0.0, sign * mag)


def _evaluate(name: str, w: pd.Series, block: pd.DataFrame, rebalance: bool) -> HistoricalStress:
    """Replay ``block`` (validated, non-empty) on weights ``w``; weight not held earns 0."""
    r = block.to_numpy()
    wv = w.to_numpy()
    growth = np.cumprod(1.0 + r, axis=0)
    if rebalance:
        values = np.cumprod(1.0 + r @ wv)
        before = np.concatenate([[1.0], values[:-1]])
        contrib = wv * (before @ r)
    else:
        values = (1.0 - wv.sum()) + growth @ wv
        contrib = wv * (growth[-1] - 1.0)
    assets = w.index
    return HistoricalStress(
        name=name,
        start=block.index[0],
        end=block.index[-1],
        portfolio_return=float(values[-1] - 1.0),
        asset_returns=pd.Series(growth[-1] - 1.0, index=assets),
        contributions=pd.Series(contrib, index=assets),
        path=pd.Series(values, index=block.index, name="value"),
        rebalance=bool(rebalance),
    )


def worst_window(
    weights: pd.Series,
    returns: pd.DataFrame,
    *,
    periods: int = 12,
    rebalance: bool = False,
    name: str | None = None,
) -> HistoricalStress:
    """The window of ``periods`` consecutive observations with the worst portfolio return.

    Parameters
    ----------
    weights : pandas.Series
        Portfolio weights by asset (decimals); every asset must be a column
        of ``returns``. Weight not invested (``1 - sum(weights)``) earns 0.
    returns : pandas.DataFrame
        Periodic decimal returns, increasing dates x assets (other columns
        are ignored).
    periods : int
        Window length in observations (12 on monthly data is the worst year).
    rebalance : bool
        False: buy and hold from ``weights`` at the start of the window,
        ``V = 1 + sum_i w_i (prod_t (1 + r_it) - 1)``. True: weights restored
        every period, ``V = prod_t (1 + w'r_t)``.
    name : str, optional
        Scenario name (default ``"worst N-period window"``).

    Returns
    -------
    HistoricalStress
        The earliest window with the lowest compounded return.

    Raises
    ------
    InputError
        Bad weights or returns (missing assets, NaN, unsorted dates), or a
        window that is not a positive integer or is longer than the history.
    """
    if isinstance(periods, bool) or not isinstance(periods, int | np.integer) or periods < 1:
        raise InputError(f"periods must be an integer >= 1, got {periods!r}")
    periods = int(periods)
    w, frame = _history(weights, returns)
    if periods > len(frame):
        raise InputError(
            f"window of {periods} periods is longer than the history ({len(frame)} periods)"
        )
    _check_finite(frame)
    r = frame.to_numpy()
    wv = w.to_numpy()
    if rebalance:
        window = _window_products(1.0 + r @ wv[:, None], periods)[:, 0] - 1.0
    else:
        window = (_window_products(1.0 + r, periods) - 1.0) @ wv
    s = int(np.argmin(window))
    label = name if name is not None else f"worst {periods}-period window"
    return _evaluate(label, w, frame.iloc[s : s + periods], rebalance)


def replay(
    weights: pd.Series,
    returns: pd.DataFrame,
    start: object,
    end: object,
    *,
    rebalance: bool = False,
    name: str | None = None,
) -> HistoricalStress:
    """Replay a named window of history, ``start`` to ``end`` inclusive.

    ``start`` and ``end`` are index labels or, on a DatetimeIndex, partial
    dates (``replay(w, r, "2008-09", "2009-02")`` takes September 2008 to
    February 2009 whole). See :func:`worst_window` for the other arguments.

    Raises
    ------
    InputError
        Bad weights or returns, bounds that cannot slice the index, a window
        with no data, or NaN inside the window.
    """
    w, frame = _history(weights, returns)
    try:
        block = frame.loc[start:end]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"cannot select the window {start}..{end}: {exc}") from None
    if block.empty:
        span = f"{frame.index[0]} to {frame.index[-1]}" if len(frame) else "empty"
        raise InputError(f"no returns between {start} and {end} (history: {span})")
    _check_finite(block)
    return _evaluate(name if name is not None else f"{start}..{end}", w, block, rebalance)


# ================================================================== correlation


@dataclass(frozen=True)
class CorrelationStress:
    """Correlations pushed toward a target, volatilities kept, and the loss it implies.

    Attributes
    ----------
    name : str
        Scenario name.
    intensity, target_correlation : float
        ``corr_stressed = (1 - intensity) * corr + intensity * target`` off
        the diagonal.
    covariance : pandas.DataFrame
        Stressed covariance (same units and labels as the input).
    correlation : pandas.DataFrame
        Stressed correlation (PSD, unit diagonal; 0 off the diagonal for
        assets with zero variance).
    repaired : bool
        Whether the blend was not PSD and was repaired (eigenvalues clipped
        at 0, then rescaled to a unit diagonal).
    volatility_before, volatility_after : float
        Portfolio volatility ``sqrt(w'Cw)``, in the covariance's units
        (annualized for an annualized covariance).
    loss_before, loss_after : float
        Gaussian loss at ``alpha`` over ``horizon`` years,
        ``z_alpha * sigma * sqrt(h) - mu_p * h`` (decimal; positive is a loss).
    """

    name: str
    intensity: float
    target_correlation: float
    alpha: float
    horizon: float
    covariance: pd.DataFrame
    correlation: pd.DataFrame
    repaired: bool
    volatility_before: float
    volatility_after: float
    expected_return: float
    loss_before: float
    loss_after: float

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "intensity": self.intensity,
            "target_correlation": self.target_correlation,
            "alpha": self.alpha,
            "horizon": self.horizon,
            "repaired": self.repaired,
            "volatility_before": self.volatility_before,
            "volatility_after": self.volatility_after,
            "expected_return": self.expected_return,
            "loss_before": self.loss_before,
            "loss_after": self.loss_after,
        }


def _scalar(name: str, x: object, lo: float, hi: float, *, open_ends: bool = False) -> float:
    v = validation.real_number(x, what=name)  # bool and text refused
    inside = lo < v < hi if open_ends else lo <= v <= hi
    if not np.isfinite(v) or not inside:
        ends = f"({lo}, {hi})" if open_ends else f"[{lo}, {hi}]"
        raise InputError(f"{name} must be in {ends}, got {x!r}")
    return v


def _psd_correlation(corr: np.ndarray) -> tuple[np.ndarray, bool]:
    """``corr`` if PSD, else eigenvalues clipped at 0 and rescaled to a unit diagonal."""
    vals, vecs = np.linalg.eigh(corr)
    if vals.size == 0 or vals[0] >= -1e-12 * max(1.0, abs(vals[-1])):
        return corr, False
    clipped = (vecs * np.clip(vals, 0.0, None)) @ vecs.T
    d = 1.0 / np.sqrt(np.diag(clipped))  # > 0: each row keeps >= 1 of positive mass
    fixed = clipped * np.outer(d, d)
    fixed = (fixed + fixed.T) / 2.0
    np.fill_diagonal(fixed, 1.0)
    return fixed, True


def correlation_stress(
    weights: pd.Series,
    cov: pd.DataFrame,
    *,
    intensity: float = 1.0,
    target_correlation: float = 1.0,
    alpha: float = 0.95,
    horizon: float = 1.0,
    mu: pd.Series | None = None,
    name: str = "correlation stress",
) -> CorrelationStress:
    """Push every correlation toward ``target_correlation`` and report the loss it implies.

    Parameters
    ----------
    weights : pandas.Series
        Portfolio weights; every asset must be in ``cov`` (assets of ``cov``
        without a weight hold 0).
    cov : pandas.DataFrame
        Annualized covariance labelled by asset on both axes.
    intensity : float in [0, 1]
        0 leaves the correlations alone, 1 sets them all to the target.
    target_correlation : float in [-1, 1]
        Default 1.0: everything moves together, as in 2008. A negative target
        can leave the blend non-PSD; it is then repaired (``repaired``), as is
        an input whose own correlation matrix is not PSD.
    alpha : float in (0, 1)
        Confidence of the loss (0.95: the loss exceeded one year in twenty).
    horizon : float
        Years (> 0).
    mu : pandas.Series, optional
        Annualized expected returns covering every weighted asset; 0 if omitted.

    Raises
    ------
    InputError
        Bad labels (naming the assets), a non-square, asymmetric or non-finite
        covariance, negative variances, or an option out of range.
    """
    w = _weights(weights)
    intensity = _scalar("intensity", intensity, 0.0, 1.0)
    target = _scalar("target_correlation", target_correlation, -1.0, 1.0)
    alpha = _scalar("alpha", alpha, 0.0, 1.0, open_ends=True)
    horizon = _scalar("horizon", horizon, 0.0, np.inf, open_ends=True)
    # the rules of optimizer.validation, but for semidefiniteness: the blend is repaired below
    labels, c = validation.covariance_values(cov, psd=False)
    missing = [str(a) for a in w.index if a not in labels]
    if missing:
        raise InputError(f"cov has no row for asset(s): {', '.join(missing)}")
    var = np.diag(c)

    mu_p = 0.0
    if mu is not None:
        m = _weights(mu)  # same checks: Series, unique, finite
        gaps = [str(a) for a in w.index if a not in m.index]
        if gaps:
            raise InputError(f"mu has no expected return for asset(s): {', '.join(gaps)}")
        mu_p = float(w @ m.loc[w.index])

    sd = np.sqrt(var)
    live = sd > 0
    corr = np.zeros_like(c)
    corr[np.ix_(live, live)] = c[np.ix_(live, live)] / np.outer(sd[live], sd[live])
    np.fill_diagonal(corr, 1.0)
    sub = (1.0 - intensity) * corr[np.ix_(live, live)] + intensity * target
    np.fill_diagonal(sub, 1.0)
    sub, repaired = _psd_correlation(sub)
    stressed = corr.copy()
    stressed[np.ix_(live, live)] = sub
    new_cov = stressed * np.outer(sd, sd)

    wv = w.reindex(labels, fill_value=0.0).to_numpy()
    vol_before = float(np.sqrt(max(wv @ c @ wv, 0.0)))
    vol_after = float(np.sqrt(max(wv @ new_cov @ wv, 0.0)))
    z = NormalDist().inv_cdf(alpha)

    def loss(vol: float) -> float:
        return float(z * vol * np.sqrt(horizon) - mu_p * horizon)

    return CorrelationStress(
        name=name,
        intensity=intensity,
        target_correlation=target,
        alpha=alpha,
        horizon=horizon,
        covariance=pd.DataFrame(new_cov, index=labels, columns=labels),
        correlation=pd.DataFrame(stressed, index=labels, columns=labels),
        repaired=repaired,
        volatility_before=vol_before,
        volatility_after=vol_after,
        expected_return=mu_p,
        loss_before=loss(vol_before),
        loss_after=loss(vol_after),
    )
