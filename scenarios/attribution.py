"""Brinson performance attribution, one period and linked over many.

One period: the Brinson-Fachler decomposition (G. P. Brinson and N. Fachler,
"Measuring non-U.S. equity portfolio performance", Journal of Portfolio
Management 11(3), 1985, 73-76) of the excess return by segment::

    allocation_i  = (wp_i - wb_i) * (rb_i - Rb)
    selection_i   = wb_i * (rp_i - rb_i)
    interaction_i = (wp_i - wb_i) * (rp_i - rb_i)        Rb = sum_i wb_i * rb_i

Many periods: the per-period effects are scaled and summed so that the linked
total equals the compounded excess return ``prod(1 + Rp_t) - prod(1 + Rb_t)``,
either by D. R. Carino, "Combining attribution effects over time", Journal of
Performance Measurement 3(4), 1999, 5-14 (logarithmic smoothing), or by
J. Menchero, "An optimized approach to linking attribution effects over time",
Journal of Performance Measurement 5(1), 2000, 36-42.

Conventions (both functions)
----------------------------
* All numbers are decimals (0.05 is 5%).
* Segments are the union of the two weight indexes, portfolio order first; a
  segment missing from one side's weights has weight 0 on that side. Return
  labels outside the weights are ignored.
* A segment the portfolio holds (weight != 0) needs a portfolio return, and one
  the benchmark holds needs a benchmark return; otherwise :class:`InputError`.
* A segment the benchmark does not hold and has no benchmark return for: its
  benchmark return is undefined, so the portfolio's return is used for it
  (``rb_i = rp_i``). Its selection and interaction are then 0 and its whole
  effect, ``wp_i * (rp_i - Rb)``, is allocation. Symmetrically a segment only
  the benchmark holds, given no portfolio return, takes ``rp_i = rb_i``.
* Weights may sum to anything (leverage, uninvested cash): they are not
  rescaled and no warning is given. The effects then sum to
  ``excess - (sum wp - sum wb) * Rb``; the missing term is the allocation
  effect of the unlisted remainder at a zero return. The totals therefore equal
  the excess return exactly when both sides' weights have the same sum, e.g.
  both 1 with cash listed as a segment (the usual case).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.errors import InputError

__all__ = ["Attribution", "brinson", "brinson_multi"]

EFFECTS = ("allocation", "selection", "interaction")
COLUMNS = (*EFFECTS, "total")
TOTAL = "total"
METHODS = ("carino", "menchero")


@dataclass(frozen=True)
class Attribution:
    """Multi-period attribution linked over time (the result of :func:`brinson_multi`).

    Attributes
    ----------
    by_segment : pandas.DataFrame
        Linked effects by segment, columns allocation, selection, interaction,
        total, plus a final ``"total"`` row; its grand total equals ``excess``.
    by_period : pandas.DataFrame
        The unlinked one-period Brinson-Fachler effects, indexed by
        (date, segment), same columns, without total rows.
    periods : pandas.DataFrame
        By date: port_return, bench_return, excess (arithmetic, per period)
        and coefficient (the linking factor: ``k_t / K`` for Carino,
        ``alpha_t`` for Menchero). Linked effect = sum over dates of
        coefficient * one-period effect.
    port_return, bench_return : float
        Compounded returns over all periods.
    excess : float
        ``port_return - bench_return``.
    method : str
        "carino" or "menchero".
    """

    by_segment: pd.DataFrame
    by_period: pd.DataFrame
    periods: pd.DataFrame
    port_return: float
    bench_return: float
    excess: float
    method: str


def _series(x: object, name: str, where: str, *, allow_nan: bool = False) -> pd.Series:
    """Check one input Series: a Series, unique labels, numeric, finite."""
    if not isinstance(x, pd.Series):
        raise InputError(f"{name} must be a pandas Series by segment, got {type(x).__name__}")
    if x.index.has_duplicates:
        dup = list(dict.fromkeys(x.index[x.index.duplicated()]))
        raise InputError(f"{name}{where} lists segment(s) more than once: {dup}")
    try:
        s = x.astype(float)
    except (TypeError, ValueError):
        raise InputError(f"{name}{where} must hold numbers") from None
    if allow_nan:
        s = s.dropna()
    bad = [k for k, v in s.items() if not np.isfinite(v)]
    if bad:
        raise InputError(f"{name}{where} is NaN or infinite for segment(s) {bad}")
    if TOTAL in s.index:
        raise InputError(f"{name}{where}: segment name {TOTAL!r} is reserved for the total row")
    return s


def _prepare(
    wp: pd.Series, wb: pd.Series, rp: pd.Series, rb: pd.Series, where: str
) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Align validated inputs on the segment union and fill missing values."""
    segments = wp.index.append(wb.index.difference(wp.index, sort=False))
    wp_a = wp.reindex(segments, fill_value=0.0).to_numpy(float)
    wb_a = wb.reindex(segments, fill_value=0.0).to_numpy(float)
    rp_a = rp.reindex(segments).to_numpy(float)
    rb_a = rb.reindex(segments).to_numpy(float)
    for side, w, r in (("portfolio", wp_a, rp_a), ("benchmark", wb_a, rb_a)):
        missing = [
            seg for seg, wi, ri in zip(segments, w, r, strict=True) if wi != 0 and np.isnan(ri)
        ]
        if missing:
            raise InputError(
                f"{side} holds segment(s) {missing}{where} but has no {side} return for them"
            )
    rp_f = np.where(np.isnan(rp_a), rb_a, rp_a)
    rb_f = np.where(np.isnan(rb_a), rp_a, rb_a)
    return segments, wp_a, wb_a, np.nan_to_num(rp_f, nan=0.0), np.nan_to_num(rb_f, nan=0.0)


def _effects(
    segments: pd.Index, wp: np.ndarray, wb: np.ndarray, rp: np.ndarray, rb: np.ndarray
) -> pd.DataFrame:
    """Brinson-Fachler effects by segment (no total row)."""
    bench_total = float(wb @ rb)
    active = wp - wb
    out = pd.DataFrame(
        {
            "allocation": active * (rb - bench_total),
            "selection": wb * (rp - rb),
            "interaction": active * (rp - rb),
        },
        index=segments,
    )
    out["total"] = out["allocation"] + out["selection"] + out["interaction"]
    return out


def _with_total(table: pd.DataFrame) -> pd.DataFrame:
    total = pd.DataFrame([table.sum(axis=0)], index=[TOTAL])
    return pd.concat([table, total])


def brinson(
    port_weights: pd.Series,
    bench_weights: pd.Series,
    port_returns: pd.Series,
    bench_returns: pd.Series,
) -> pd.DataFrame:
    """One-period Brinson-Fachler attribution of the excess return by segment.

    Parameters
    ----------
    port_weights, bench_weights : pandas.Series
        Weights by segment at the start of the period (decimals).
    port_returns, bench_returns : pandas.Series
        Returns by segment over the period (decimals): the portfolio's own
        holdings in the segment, and the benchmark's segment.

    Returns
    -------
    pandas.DataFrame
        Indexed by segment, then a ``"total"`` row; columns allocation,
        selection, interaction and total (their row sum). With weights summing
        to the same total on both sides, the grand total equals
        ``sum(wp * rp) - sum(wb * rb)`` (see the module notes for missing
        segments and other weight sums).

    Raises
    ------
    InputError
        An argument that is not a Series, duplicated or non-numeric labels,
        NaN or infinite values (the message names the segments), a held
        segment with no return on that side, or a segment named ``"total"``.
    """
    wp = _series(port_weights, "port_weights", "")
    wb = _series(bench_weights, "bench_weights", "")
    rp = _series(port_returns, "port_returns", "")
    rb = _series(bench_returns, "bench_returns", "")
    return _with_total(_effects(*_prepare(wp, wb, rp, rb, "")))


def _log_coef(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(ln(1+a) - ln(1+b)) / (a - b)``, and its limit ``1/(1+b)`` where a == b.

    Computed as ``log1p(d) / d / (1 + b)`` with ``d = (a - b) / (1 + b)``, which
    stays accurate when a and b are close.
    """
    d = (a - b) / (1.0 + b)
    ratio = np.divide(np.log1p(d), d, out=np.ones_like(d), where=d != 0)
    return ratio / (1.0 + b)


def _menchero_m(rp: float, rb: float, t: int) -> float:
    """Menchero's M = ((Rp - Rb) / T) / ((1+Rp)^(1/T) - (1+Rb)^(1/T)).

    Limit ``(1+R)^(1 - 1/T)`` when Rp == Rb. Written as
    ``(1+Rb)^(1-1/T) * (d/T) / expm1(log1p(d)/T)``, ``d = (Rp - Rb)/(1 + Rb)``.
    """
    d = (rp - rb) / (1.0 + rb)
    ratio = 1.0 if d == 0 else (d / t) / np.expm1(np.log1p(d) / t)
    return float((1.0 + rb) ** (1.0 - 1.0 / t) * ratio)


def _frame(x: object, name: str) -> pd.DataFrame:
    if not isinstance(x, pd.DataFrame):
        raise InputError(
            f"{name} must be a pandas DataFrame (dates x segments), got {type(x).__name__}"
        )
    if x.index.has_duplicates:
        dup = list(dict.fromkeys(x.index[x.index.duplicated()]))
        raise InputError(f"{name} lists date(s) more than once: {dup}")
    if len(x.index) == 0:
        raise InputError(f"{name} has no periods")
    return x


def brinson_multi(
    port_weights: pd.DataFrame,
    bench_weights: pd.DataFrame,
    port_returns: pd.DataFrame,
    bench_returns: pd.DataFrame,
    *,
    method: str = "carino",
) -> Attribution:
    """Brinson-Fachler attribution over several periods, linked over time.

    Each period is attributed with :func:`brinson`; period ``t``'s effects are
    then multiplied by a coefficient and summed over periods:

    * ``"carino"`` (Carino 1999): ``k_t / K`` with
      ``k_t = (ln(1+Rp_t) - ln(1+Rb_t)) / (Rp_t - Rb_t)`` (``1/(1+Rp_t)`` when
      equal) and ``K`` the same over the whole horizon.
    * ``"menchero"`` (Menchero 2000): ``alpha_t = M + (Rp - Rb - M * sum_t e_t)
      * e_t / sum_t e_t**2`` with ``e_t = Rp_t - Rb_t`` and
      ``M = ((Rp - Rb)/T) / ((1+Rp)^(1/T) - (1+Rb)^(1/T))`` (its limit when
      equal); ``alpha_t = M`` when every ``e_t`` is 0.

    Both make the linked grand total equal the compounded excess return
    ``prod(1+Rp_t) - prod(1+Rb_t)`` (when each period's weights have equal
    sums on the two sides; see the module notes). Neither depends on the
    order of the dates.

    Parameters
    ----------
    port_weights, bench_weights : pandas.DataFrame
        Dates x segments: weights at the start of each period. NaN is an
        error here (use 0 for a segment not held).
    port_returns, bench_returns : pandas.DataFrame
        Dates x segments: returns over each period. NaN means "no return",
        which is allowed where that side does not hold the segment.
    method : {"carino", "menchero"}

    Returns
    -------
    Attribution
        ``by_segment`` is the linked table (same layout as :func:`brinson`);
        ``by_period`` and ``periods`` hold the one-period effects and the
        linking coefficients.

    Raises
    ------
    InputError
        Non-DataFrame input, the four frames not covering the same dates, an
        unknown method, a period whose portfolio or benchmark return is -100%
        or worse, or any error :func:`brinson` raises (message names the date).
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    frames = {
        "port_weights": _frame(port_weights, "port_weights"),
        "bench_weights": _frame(bench_weights, "bench_weights"),
        "port_returns": _frame(port_returns, "port_returns"),
        "bench_returns": _frame(bench_returns, "bench_returns"),
    }
    dates = frames["port_weights"].index
    for name, f in frames.items():
        if not f.index.equals(dates) and set(f.index) != set(dates):
            extra = [d for d in f.index if d not in dates]
            lacking = [d for d in dates if d not in f.index]
            raise InputError(
                f"{name} does not cover the same dates as port_weights "
                f"(extra: {extra}, missing: {lacking})"
            )

    tables: list[pd.DataFrame] = []
    rp_t = np.empty(len(dates))
    rb_t = np.empty(len(dates))
    for i, date in enumerate(dates):
        where = f" on {date}"
        wp = _series(frames["port_weights"].loc[date], "port_weights", where)
        wb = _series(frames["bench_weights"].loc[date], "bench_weights", where)
        rp = _series(frames["port_returns"].loc[date], "port_returns", where, allow_nan=True)
        rb = _series(frames["bench_returns"].loc[date], "bench_returns", where, allow_nan=True)
        segments, wp_a, wb_a, rp_a, rb_a = _prepare(wp, wb, rp, rb, where)
        rp_t[i] = float(wp_a @ rp_a)
        rb_t[i] = float(wb_a @ rb_a)
        if rp_t[i] <= -1.0 or rb_t[i] <= -1.0:
            raise InputError(
                f"period {date}: portfolio return {rp_t[i]:.6g} or benchmark return "
                f"{rb_t[i]:.6g} is -100% or worse; the returns cannot be linked"
            )
        tables.append(_effects(segments, wp_a, wb_a, rp_a, rb_a))

    port_total = float(np.prod(1.0 + rp_t) - 1.0)
    bench_total = float(np.prod(1.0 + rb_t) - 1.0)
    excess = port_total - bench_total
    e = rp_t - rb_t
    if method == "carino":
        big_k = float(_log_coef(np.array([port_total]), np.array([bench_total]))[0])
        coef = _log_coef(rp_t, rb_t) / big_k
    else:
        m = _menchero_m(port_total, bench_total, len(dates))
        s2 = float(e @ e)
        coef = np.full(len(dates), m)
        if s2 > 0:
            coef = coef + (excess - m * float(e.sum())) * e / s2

    by_period = pd.concat(tables, keys=list(dates), names=["date", "segment"])
    linked = by_period[list(EFFECTS)].mul(np.repeat(coef, [len(t) for t in tables]), axis=0)
    linked = linked.groupby(level="segment", sort=False).sum()
    linked.index.name = None
    linked["total"] = linked["allocation"] + linked["selection"] + linked["interaction"]
    periods = pd.DataFrame(
        {"port_return": rp_t, "bench_return": rb_t, "excess": e, "coefficient": coef},
        index=dates,
    )
    return Attribution(
        by_segment=_with_total(linked),
        by_period=by_period,
        periods=periods,
        port_return=port_total,
        bench_return=bench_total,
        excess=excess,
        method=method,
    )
