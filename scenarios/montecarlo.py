"""Monte Carlo of an endowment: returns, a spending rule and inflation over many years.

The simulation runs on annual steps. Each year ``t = 1 .. years``:

1. spending ``S_t`` for the year is set from the rule (below) and paid at the start of
   the year, capped at the value available, ``S_t <= V_{t-1}``;
2. what remains earns the portfolio's return for the year, the portfolio being
   rebalanced to ``weights`` at the start of every year:
   ``V_t = (V_{t-1} - S_t) * (1 + w' r_t)``.

Spending rules
--------------
``"yale"`` (Tobin's rule, as used by Yale; the default)::

    S_1 = spending_rate * V_0
    S_t = smoothing * S_{t-1} * (1 + inflation) + (1 - smoothing) * spending_rate * V_{t-1}

``"trailing"`` (a plain percentage of a moving average)::

    S_t = spending_rate * mean(V_{t-1}, V_{t-2}, ..., V_{t-k}),  k = min(smoothing_window, t)

where ``V_0`` is the initial value, so the early years average what is available.

Inflation is a constant annual rate. Real values deflate year-end values by
``(1 + inflation) ** t``; real spending deflates the spending paid at the start of year
``t`` by ``(1 + inflation) ** (t - 1)``, so ``S_1`` is already in today's money.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optimizer import validation
from optimizer.errors import InputError

__all__ = ["MAX_CELLS", "MonteCarloResult", "simulate"]

DISTRIBUTIONS = ("normal", "student_t", "bootstrap")
SPENDING_RULES = ("yale", "trailing")
PERCENTILES = (5, 25, 50, 75, 95)
#: Floor on a simulated annual asset return (decimal): an asset cannot lose more than 99%.
RETURN_FLOOR = -0.99
#: Largest simulation, ``paths x (years + 1 + assets)`` numbers: it holds arrays of
#: paths x (years + 1) and draws paths x assets a year (50,000,000 floats: 400 MB each).
MAX_CELLS = 50_000_000


@dataclass(frozen=True)
class MonteCarloResult:
    """Simulated endowment paths.

    Attributes
    ----------
    values : numpy.ndarray, shape (paths, years + 1)
        Nominal value at the end of each year (currency); column 0 is the initial value.
    real_values : numpy.ndarray, shape (paths, years + 1)
        ``values`` in today's money: column ``t`` divided by ``(1 + inflation) ** t``.
    spending : numpy.ndarray, shape (paths, years)
        Nominal spending paid at the start of each year (currency).
    summary : pandas.Series
        Scalar statistics by name (see :func:`simulate`, Returns).
    years, paths : int
        Horizon (years) and number of simulated paths.
    distribution, spending_rule : str
        The options used.
    inflation : float
        Annual inflation rate (decimal).
    seed : int or None
        Seed of the random generator; the same seed gives identical arrays.
    """

    values: np.ndarray
    real_values: np.ndarray
    spending: np.ndarray
    summary: pd.Series
    years: int
    paths: int
    distribution: str
    spending_rule: str
    inflation: float
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def real_spending(self) -> np.ndarray:
        """Spending in today's money, shape (paths, years)."""
        deflator = (1.0 + self.inflation) ** np.arange(self.years)
        return self.spending / deflator

    def value_percentiles(self, real: bool = False) -> pd.DataFrame:
        """Percentiles (5, 25, 50, 75, 95) of value by year: one row per year 0..years."""
        data = self.real_values if real else self.values
        q = np.percentile(data, PERCENTILES, axis=0).T
        return pd.DataFrame(
            q,
            index=pd.RangeIndex(self.years + 1, name="year"),
            columns=[f"p{p}" for p in PERCENTILES],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: settings, scalar statistics and the value fan by year."""
        fan = self.value_percentiles()
        real_fan = self.value_percentiles(real=True)
        return {
            "years": self.years,
            "paths": self.paths,
            "distribution": self.distribution,
            "spending_rule": self.spending_rule,
            "inflation": self.inflation,
            "seed": self.seed,
            "settings": dict(self.settings),
            "summary": {str(k): float(v) for k, v in self.summary.items()},
            "value_percentiles": {c: [float(x) for x in fan[c]] for c in fan.columns},
            "real_value_percentiles": {
                c: [float(x) for x in real_fan[c]] for c in real_fan.columns
            },
        }


# --------------------------------------------------------------------------- validation


def _count(name: str, x: object) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer):
        raise InputError(f"{name} must be an integer >= 1, got {x!r}")
    if x < 1:
        raise InputError(f"{name} must be an integer >= 1, got {x!r}")
    return int(x)


def _by_text(obj: object) -> object:
    """``obj`` with its asset labels as text, as the weights' (scenario files name assets so)."""
    if isinstance(obj, pd.DataFrame):
        return obj.rename(index=str, columns=str)
    if isinstance(obj, pd.Series):
        return obj.rename(index=str)
    return obj


def _factor(cov: pd.DataFrame, assets: pd.Index) -> np.ndarray:
    """Validated ``A`` with ``A @ A.T == cov`` (Cholesky; eigen-decomposition if singular)."""
    _, m = validation.covariance_values(_by_text(cov), assets=assets, against="weights")
    try:
        return np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        pass
    lam, vec = np.linalg.eigh(m)
    return vec * np.sqrt(np.clip(lam, 0.0, None))


def _annual_history(history: object, assets: list[str]) -> np.ndarray:
    """Annual simple returns, shape (n_years, n_assets), from annual or periodic history.

    Without a DatetimeIndex, or when observations are at least ~300 days apart, rows are
    taken as annual returns. Otherwise periodic returns are compounded within each
    calendar year and only complete years are kept: a year is complete when its first
    observation falls within ``max(7 days, 1.5 periods)`` of 1 January and its last
    within the same distance of 31 December.
    """
    if not isinstance(history, pd.DataFrame):
        raise InputError("distribution='bootstrap' needs history=, a DataFrame of returns")
    cols = [str(c) for c in history.columns]
    missing = [a for a in assets if a not in set(cols)]
    if missing:
        raise InputError(f"history has no returns for asset(s): {', '.join(missing)}")
    h = history.copy()
    h.columns = cols
    try:
        h = h[assets].astype(float)
    except (TypeError, ValueError):
        raise InputError("history must hold numeric returns") from None
    for a in assets:
        col = h[a].to_numpy()
        if not np.isfinite(col).all():
            raise InputError(f"history has NaN or infinite returns for asset {a}")
        if (col <= -1.0).any():
            raise InputError(f"history has a return of -100% or worse for asset {a}")
    if isinstance(h.index, pd.DatetimeIndex) and len(h) > 1:
        idx = h.index
        if not idx.is_monotonic_increasing:
            raise InputError("history index must be sorted by date")
        gaps = np.diff(idx.to_numpy()).astype("timedelta64[s]").astype(float)
        spacing = float(np.median(gaps)) / 86_400.0
        if spacing < 300:
            tol = pd.Timedelta(days=max(7.0, 1.5 * spacing))
            rows = []
            for year, block in h.groupby(idx.year):
                start, end = (
                    pd.Timestamp(year=year, month=1, day=1),
                    pd.Timestamp(year=year, month=12, day=31),
                )
                first, last = block.index[0], block.index[-1]
                if first.tz is not None:
                    first, last = first.tz_localize(None), last.tz_localize(None)
                if first - start <= tol and end - last <= tol:
                    rows.append(np.prod(1.0 + block.to_numpy(), axis=0) - 1.0)
            if len(rows) < 2:
                raise InputError(
                    f"history holds {len(rows)} complete calendar year(s); bootstrap needs >= 2"
                )
            return np.asarray(rows)
    out = h.to_numpy()
    if len(out) < 2:
        raise InputError(f"history holds {len(out)} annual return(s); bootstrap needs >= 2")
    return out


# --------------------------------------------------------------------------- kernel


def _max_drawdown(values: np.ndarray) -> np.ndarray:
    """Deepest peak-to-trough fall of each row (decimal, 0 = never below a previous peak)."""
    peak = np.maximum.accumulate(values, axis=1)
    return np.max(1.0 - values / peak, axis=1)


def _summary(
    values: np.ndarray,
    real_values: np.ndarray,
    spending: np.ndarray,
    real_spending: np.ndarray,
    value: float,
    drawdown: float,
) -> pd.Series:
    out: dict[str, float] = {
        "prob_preserve_real_value": float(np.mean(real_values[:, -1] >= value)),
        "prob_drawdown_exceeds": float(np.mean(_max_drawdown(values) > drawdown)),
        "drawdown_threshold": drawdown,
        "mean_terminal_value": float(values[:, -1].mean()),
        "mean_terminal_real_value": float(real_values[:, -1].mean()),
    }
    blocks = {
        "terminal_value": values[:, -1],
        "terminal_real_value": real_values[:, -1],
        "final_spending": spending[:, -1],
        "final_real_spending": real_spending[:, -1],
        "annual_real_spending": real_spending.ravel(),
    }
    for name, data in blocks.items():
        for p, q in zip(PERCENTILES, np.percentile(data, PERCENTILES), strict=True):
            out[f"{name}_p{p}"] = float(q)
    out["mean_annual_real_spending"] = float(real_spending.mean())
    return pd.Series(out, dtype=float)


def simulate(
    weights: pd.Series,
    mu: pd.Series | None,
    cov: pd.DataFrame | None,
    *,
    years: int = 30,
    paths: int = 100_000,
    value: float = 1.0,
    spending_rate: float = 0.04,
    spending_rule: str = "yale",
    smoothing: float = 0.7,
    smoothing_window: int = 3,
    inflation: float = 0.025,
    distribution: str = "normal",
    dof: float = 5.0,
    history: pd.DataFrame | None = None,
    seed: int | None = None,
    drawdown: float = 0.25,
) -> MonteCarloResult:
    """Simulate an endowment's value and spending over ``years`` annual steps.

    Parameters
    ----------
    weights : pandas.Series
        Portfolio weights by asset (decimals), restored every year (annual rebalancing).
        Any shortfall from 100% is uninvested cash earning nothing.
    mu : pandas.Series or None
        Expected annual simple return by asset (decimal). May be None for ``"bootstrap"``.
    cov : pandas.DataFrame or None
        Annualized covariance of simple returns, labelled by asset on both axes
        (positive semidefinite; singular is allowed). May be None for ``"bootstrap"``.
    years, paths : int
        Horizon in years and number of simulated paths (both >= 1), with
        ``paths x (years + 1 + assets)`` at most :data:`MAX_CELLS`.
    value : float
        Initial value (currency, > 0).
    spending_rate : float
        Target payout as a fraction of value (0.04 is 4% a year).
    spending_rule : {"yale", "trailing"}
        See the module docstring for the formulas.
    smoothing : float
        Weight on last year's inflation-adjusted spending in the Yale rule, in [0, 1].
    smoothing_window : int
        Number of year-end values averaged by the ``"trailing"`` rule.
    inflation : float
        Constant annual inflation (decimal), used by the Yale rule and for real values.
    distribution : {"normal", "student_t", "bootstrap"}
        ``"normal"``: asset returns drawn from N(mu, cov) each year. ``"student_t"``:
        multivariate t with ``dof`` degrees of freedom scaled by ``sqrt((dof-2)/dof)``, so
        its covariance is ``cov`` and mean ``mu``. ``"bootstrap"``: whole years of asset
        returns resampled with replacement from ``history`` (cross-asset correlation kept).
        Drawn asset returns are floored at -99%.
    dof : float
        Degrees of freedom of the Student t (> 2).
    history : pandas.DataFrame, optional
        Returns by date (rows) and asset (columns) for ``"bootstrap"``. Annual rows are used
        as they are; periodic (daily, weekly, monthly) returns are compounded within each
        complete calendar year, and incomplete years at either end are dropped.
    seed : int, optional
        Seed for :func:`numpy.random.default_rng`.
    drawdown : float
        Threshold in (0, 1] for the drawdown probability (0.25 is a fall of 25%).

    Returns
    -------
    MonteCarloResult
        ``summary`` holds ``prob_preserve_real_value`` (real terminal value >= initial
        value), ``prob_drawdown_exceeds`` (max drawdown of the annual nominal value path,
        year 0 included, deeper than ``drawdown``), mean terminal nominal and real value,
        and percentiles ``_p5 .. _p95`` of terminal nominal and real value, of the final
        year's nominal and real spending, and of real annual spending over all years and
        paths.

    Notes
    -----
    Vectorized over paths; the loop runs over years and draws one (paths x assets) block
    at a time, so memory is O(paths x (years + assets)).
    """
    w_s = validation.series(weights, what="weights")
    if w_s.empty:
        raise InputError("weights must name at least one asset")
    assets = [str(a) for a in w_s.index]
    ids = validation.labels(assets, what="weights")
    w = w_s.to_numpy()

    if distribution not in DISTRIBUTIONS:
        raise InputError(
            f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}"
        )
    if spending_rule not in SPENDING_RULES:
        raise InputError(
            f"spending_rule must be one of {', '.join(SPENDING_RULES)}, got {spending_rule!r}"
        )
    years = _count("years", years)
    paths = _count("paths", paths)
    size = paths * (years + 1 + len(assets))
    if size > MAX_CELLS:
        raise InputError(
            f"paths={paths:,} x (years={years} + 1 + {len(assets)} assets) = {size:,} numbers; "
            f"the limit is {MAX_CELLS:,} (paths x (years + 1 + assets)): use fewer paths"
        )
    smoothing_window = _count("smoothing_window", smoothing_window)
    value = validation.finite_number(value, what="value")
    if value <= 0:
        raise InputError(f"value must be positive, got {value!r}")
    spending_rate = validation.finite_number(spending_rate, what="spending_rate")
    if not 0.0 <= spending_rate <= 1.0:
        raise InputError(f"spending_rate must be in [0, 1], got {spending_rate!r}")
    smoothing = validation.finite_number(smoothing, what="smoothing")
    if not 0.0 <= smoothing <= 1.0:
        raise InputError(f"smoothing must be in [0, 1], got {smoothing!r}")
    inflation = validation.finite_number(inflation, what="inflation")
    if inflation <= -1.0:
        raise InputError(f"inflation must be above -100%, got {inflation!r}")
    drawdown = validation.finite_number(drawdown, what="drawdown")
    if not 0.0 < drawdown <= 1.0:
        raise InputError(f"drawdown must be in (0, 1], got {drawdown!r}")
    if distribution == "student_t":
        dof = validation.finite_number(dof, what="dof")
        if dof <= 2:
            raise InputError(f"dof must be > 2 for a finite covariance, got {dof!r}")

    if distribution == "bootstrap":
        hist = _annual_history(history, assets)
        if mu is not None:
            validation.vector(_by_text(mu), ids, what="mu", against="weights")
        if cov is not None:
            _factor(cov, ids)
    else:
        if mu is None or cov is None:
            raise InputError(f"distribution={distribution!r} needs mu and cov")
        mu_v = validation.vector(_by_text(mu), ids, what="mu", against="weights")
        a_t = _factor(cov, ids).T  # r = mu + z @ A.T

    rng = np.random.default_rng(seed)
    n = len(assets)
    values = np.empty((paths, years + 1))
    spending = np.empty((paths, years))
    values[:, 0] = value
    t_scale = np.sqrt((dof - 2.0) / dof) if distribution == "student_t" else 1.0

    for t in range(1, years + 1):
        prev = values[:, t - 1]
        if spending_rule == "yale":
            if t == 1:
                s = spending_rate * prev
            else:
                s = smoothing * (1.0 + inflation) * spending[:, t - 2]
                s += (1.0 - smoothing) * spending_rate * prev
        else:
            lo = max(0, t - smoothing_window)
            s = spending_rate * values[:, lo:t].mean(axis=1)
        np.minimum(s, prev, out=s)
        spending[:, t - 1] = s

        if distribution == "bootstrap":
            r = hist[rng.integers(0, len(hist), size=paths)]
        else:
            r = rng.standard_normal((paths, n)) @ a_t
            if distribution == "student_t":
                r *= (t_scale / np.sqrt(rng.chisquare(dof, size=paths) / dof))[:, None]
            r += mu_v
        np.maximum(r, RETURN_FLOOR, out=r)
        values[:, t] = (prev - s) * (1.0 + r @ w)

    real_values = values / (1.0 + inflation) ** np.arange(years + 1)
    real_spending = spending / (1.0 + inflation) ** np.arange(years)
    summary = _summary(values, real_values, spending, real_spending, value, drawdown)
    for arr in (values, real_values, spending):
        arr.flags.writeable = False
    settings = {
        "value": value,
        "spending_rate": spending_rate,
        "smoothing": smoothing,
        "smoothing_window": smoothing_window,
        "dof": float(dof) if distribution == "student_t" else None,
        "drawdown": drawdown,
        "weights": {a: float(x) for a, x in zip(assets, w, strict=True)},
    }
    return MonteCarloResult(
        values=values,
        real_values=real_values,
        spending=spending,
        summary=summary,
        years=years,
        paths=paths,
        distribution=distribution,
        spending_rule=spending_rule,
        inflation=inflation,
        seed=seed,
        settings=settings,
    )
