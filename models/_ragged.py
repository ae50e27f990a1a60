"""Estimation over histories of different lengths: pairwise moments (private).

Returns whose assets start (or stop) on different dates carry NaN where an
asset has no return (``returns.from_prices(prices, missing="keep")`` makes
them). The estimators of :mod:`models.covariance` and
:mod:`models.expected_returns` accept them with ``overlap="pairwise"``:

* each mean from the asset's own returns;
* each covariance entry from the dates on which both assets have a return
  (the pair's *overlap*, ``T_ij`` returns), demeaned by the means over that
  overlap, so that entry ``(i, j)`` equals ``numpy.cov`` of the pair on its
  overlap; the diagonal is each asset's own variance.

The pairwise matrix need not be positive semidefinite; the estimators repair
it with :func:`models._repair.repair_pairwise` (reported by a warning).
Everything here works on periodic figures; the public functions annualize.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models._common import (
    MIN_OBSERVATIONS,
    fmt_date,
    name_list,
    resolve_periods,
    symmetrize,
    validate_returns,
)
from optimizer.errors import InputError

#: The ``overlap=`` choices of the estimators: ``"full"`` (every asset has every return; NaN is
#: refused) and ``"pairwise"`` (histories of different lengths).
OVERLAPS = ("full", "pairwise")
#: ... and of :func:`models.covariance.sample` and :func:`models.expected_returns.historical_mean`,
#: which also take Stambaugh's (1997) maximum-likelihood estimator for nested start dates.
OVERLAPS_ML = (*OVERLAPS, "stambaugh")
_ML_ESTIMATORS = "covariance.sample and expected_returns.historical_mean"
#: Pairs whose overlap a message names before the rest are counted.
_PAIRS_SHOWN = 5


def has_missing(returns: object) -> bool:
    """True when ``returns`` is a numeric DataFrame with at least one NaN."""
    if not isinstance(returns, pd.DataFrame) or returns.shape[1] == 0:
        return False
    try:
        return bool(np.isnan(returns.to_numpy(dtype=float)).any())
    except (TypeError, ValueError):
        return False  # non-numeric: validate_returns names the columns


def ragged_values(
    returns: pd.DataFrame, what: str, *, min_obs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate returns that may hold NaN; return values, validity mask and dates.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), dates by asset ids; NaN where an asset
        has no return. Infinite values are refused.
    what : str
        The estimator, for messages (``"covariance.sample"``).
    min_obs : int
        Fewest returns each asset must have.

    Returns
    -------
    x : numpy.ndarray, shape (T', n)
        The values, NaN kept, without the rows on which no asset has a return.
    valid : numpy.ndarray of bool, shape (T', n)
        ``~isnan(x)``.
    rows : numpy.ndarray of int, shape (T',)
        The positions in ``returns`` of the rows kept.

    Raises
    ------
    InputError
        What :func:`models._common.validate_returns` refuses (apart from
        NaN), checked on each asset's own returns; an asset with fewer than
        ``min_obs`` returns (named, with its count and the fix).
    """
    if not isinstance(returns, pd.DataFrame):
        validate_returns(returns)  # raises, naming the type
    validate_returns(returns.iloc[:0], min_obs=0)  # columns, labels, numeric types
    values = returns.to_numpy(dtype=float)
    valid = ~np.isnan(values)
    counts = valid.sum(axis=0)
    short = np.flatnonzero(counts < min_obs)
    if len(short):
        parts = [f"{returns.columns[j]} ({int(counts[j])})" for j in short]
        raise InputError(
            f"{what}(overlap='pairwise'): too few returns for {name_list(parts)}; each asset "
            f"needs at least {min_obs}: drop those assets or use a longer history"
        )
    # The checks of validate_returns (inf, -100%, percent) on each asset's own returns: the
    # gaps are filled with the asset's median return, which changes none of the verdicts.
    fill = np.nanmedian(np.where(np.isinf(values), np.nan, values), axis=0)
    filled = np.where(valid, values, fill)
    filled[np.isinf(values)] = values[np.isinf(values)]
    validate_returns(pd.DataFrame(filled, index=returns.index, columns=returns.columns))
    rows = np.flatnonzero(valid.any(axis=1))
    return values[rows], valid[rows], rows


def _span(index: pd.Index, rows: np.ndarray) -> str:
    if not rows.any():
        return "no common dates"
    pos = np.flatnonzero(rows)
    if isinstance(index, pd.DatetimeIndex):
        return f"{fmt_date(index[pos[0]])}..{fmt_date(index[pos[-1]])}"
    return f"rows {pos[0]}..{pos[-1]}"


def check_overlaps(
    counts: np.ndarray, valid: np.ndarray, index: pd.Index, labels: pd.Index, what: str
) -> None:
    """Refuse any pair of assets with fewer than :data:`MIN_OBSERVATIONS` common returns.

    The message names the pair with the smallest overlap, its count and
    dates, how many pairs fall short, and the fix.
    """
    short = np.argwhere(np.triu(counts < MIN_OBSERVATIONS, 1))
    if not len(short):
        return
    order = np.argsort(counts[short[:, 0], short[:, 1]], kind="stable")
    shown = []
    for i, j in short[order[:_PAIRS_SHOWN]]:
        both = valid[:, i] & valid[:, j]
        shown.append(f"{labels[i]} and {labels[j]} have {int(counts[i, j])} ({_span(index, both)})")
    more = f" (and {len(short) - _PAIRS_SHOWN} more pairs)" if len(short) > _PAIRS_SHOWN else ""
    raise InputError(
        f"{what}(overlap='pairwise'): too few common returns: {'; '.join(shown)}{more}; "
        f"each pair of assets needs at least {MIN_OBSERVATIONS} dates on which both have a "
        "return: drop one asset of each such pair or use a longer history"
    )


def common_window(
    x: np.ndarray, valid: np.ndarray, index: pd.Index, labels: pd.Index, what: str
) -> np.ndarray:
    """The rows on which every asset has a return, at least :data:`MIN_OBSERVATIONS` of them.

    Returns ``x[rows]`` (T_c, n), no NaN. Raises naming the asset that
    starts last (and the one that ends first) and the fix otherwise.
    """
    rows = valid.all(axis=1)
    if int(rows.sum()) >= MIN_OBSERVATIONS:
        return x[rows]
    first = np.argmax(valid, axis=0)
    last = len(valid) - 1 - np.argmax(valid[::-1], axis=0)
    late, early = int(np.argmax(first)), int(np.argmin(last))
    raise InputError(
        f"{what}(overlap='pairwise'): the shrinkage intensity is estimated on the dates on which "
        f"every asset has a return, and there are {int(rows.sum())} (at least "
        f"{MIN_OBSERVATIONS} are needed): {labels[late]} starts on "
        f"{fmt_date(index[first[late]]) if isinstance(index, pd.DatetimeIndex) else first[late]}"
        f" and {labels[early]} ends on "
        f"{fmt_date(index[last[early]]) if isinstance(index, pd.DatetimeIndex) else last[early]};"
        " drop one of them, or use covariance.sample(overlap='pairwise')"
    )


def constant_filled(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``x`` with its gaps filled by each asset's first return (keeps constant assets constant)."""
    first = x[np.argmax(valid, axis=0), np.arange(x.shape[1])]
    return np.where(valid, x, first)


def pairwise_cov(x: np.ndarray, valid: np.ndarray, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise covariance of returns with gaps.

    Parameters
    ----------
    x : numpy.ndarray, shape (T, n)
        Periodic returns, NaN where missing.
    valid : numpy.ndarray of bool, shape (T, n)
    ddof : int
        1: unbiased (``T_ij - 1`` denominator), 0: divided by ``T_ij``.

    Returns
    -------
    cov : numpy.ndarray, shape (n, n)
        ``C_ij = sum_{t in O_ij} (x_ti - m_i|j)(x_tj - m_j|i) / (T_ij - ddof)``
        with ``O_ij`` the pair's overlap, ``T_ij = |O_ij|`` and ``m_i|j`` the
        mean of asset i over it; exactly symmetric.
    counts : numpy.ndarray of int, shape (n, n)
        ``T_ij`` (the diagonal: each asset's number of returns).

    Notes
    -----
    Three ``n x n`` products: with ``M`` the validity mask and ``X0`` the
    returns (centred on each asset's own mean, for accuracy; a covariance
    does not depend on the centring) with zeros in the gaps,
    ``T = M'M``, ``S = X0'M`` and ``P = X0'X0``:
    ``C = (P - S * S' / T) / (T - ddof)``.
    """
    m = valid.astype(float)
    x0 = np.where(valid, x - np.nanmean(x, axis=0), 0.0)
    counts = m.T @ m
    s = x0.T @ m
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = (x0.T @ x0 - s * s.T / counts) / (counts - ddof)
    return symmetrize(cov), counts.round().astype(int)


def pairwise_weighted_cov(
    x: np.ndarray, valid: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted pairwise covariance (the EWMA of :func:`models.covariance.ewma`).

    Each pair uses the weights of its overlap, renormalised to sum to 1 there,
    and the weighted means over it (no small-sample correction).

    Returns
    -------
    cov : numpy.ndarray, shape (n, n)
    effective : numpy.ndarray, shape (n, n)
        Each pair's effective number of observations
        ``(sum_O w)^2 / sum_O w^2``.
    """
    m = valid.astype(float)
    x0 = np.where(valid, x - np.nanmean(x, axis=0), 0.0)
    xw = x0 * weights[:, None]
    total = (m * weights[:, None]).T @ m
    s = xw.T @ m / total
    cov = xw.T @ x0 / total - s * s.T
    effective = total**2 / ((m * (weights**2)[:, None]).T @ m)
    return symmetrize(cov), effective


def own_weighted_mean(x: np.ndarray, valid: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each asset's weighted mean over its own returns (weights renormalised per asset)."""
    x0 = np.where(valid, x, 0.0)
    return (weights @ x0) / (weights @ valid.astype(float))


def pairwise_inputs(
    returns: pd.DataFrame, periods_per_year: float | None, what: str, ddof: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Pairwise estimation's inputs: values (NaN kept), validity, row positions, the pairwise
    covariance (periodic, not repaired; ``ddof``) and periods per year; short overlaps refused."""
    x, valid, rows = ragged_values(returns, what, min_obs=MIN_OBSERVATIONS)
    periods = resolve_periods(returns, periods_per_year)
    s, counts = pairwise_cov(x, valid, ddof)
    check_overlaps(counts, valid, returns.index[rows], returns.columns, what)
    return x, valid, rows, s, periods


def stambaugh_inputs(
    returns: pd.DataFrame, periods_per_year: float | None, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Validated returns and :func:`stambaugh`'s periodic ``mu`` (n,) and ``cov`` (n, n).

    Returns ``(mu, cov, x, valid, periods)``.
    """
    x, valid, rows = ragged_values(returns, what, min_obs=MIN_OBSERVATIONS)
    periods = resolve_periods(returns, periods_per_year)
    mu, cov = stambaugh(x, valid, returns.index[rows], returns.columns, what)
    return mu, cov, x, valid, periods


def lw_target(s: np.ndarray, target: str) -> np.ndarray:
    """The Ledoit-Wolf target built from a (pairwise) covariance ``s`` (n, n), as the kernels."""
    n = len(s)
    var = np.diag(s).copy()
    if target == "identity":
        return np.eye(n) * float(var.mean())
    if target == "constant_correlation":
        sd = np.sqrt(var)
        corr = s / np.outer(sd, sd)
        rbar = float((corr.sum() - np.trace(corr)) / (n * (n - 1))) if n > 1 else 0.0
        f = rbar * np.outer(sd, sd)
    else:
        c = s.mean(axis=1)
        s00 = float(c.mean())
        if not s00 > 0:
            raise InputError(
                "covariance.ledoit_wolf(overlap='pairwise'): the equal-weighted market has no "
                "positive variance in the pairwise covariance; the single_factor target needs "
                "one: use target='identity' or 'constant_correlation'"
            )
        f = np.outer(c, c) / s00
    np.fill_diagonal(f, var)
    return f


def use_ragged(overlap: object, returns: object, what: str, valid: Sequence[str] = OVERLAPS) -> str:
    """Check ``overlap`` against ``valid`` (else an InputError naming the estimator ``what``);
    return the method to use: ``"full"`` when there is no NaN, else ``overlap``."""
    if not isinstance(overlap, str) or overlap not in valid:
        choices = ", ".join(repr(v) for v in valid)
        also = (
            f" (overlap='stambaugh' is taken by {_ML_ESTIMATORS})" if overlap == "stambaugh" else ""
        )
        raise InputError(f"{what}: unknown overlap={overlap!r}; valid options are {choices}{also}")
    return overlap if has_missing(returns) else "full"


def use_pairwise(overlap: object, returns: object, what: str) -> bool:
    """:func:`use_ragged` with the choices of :data:`OVERLAPS`: is the pairwise path needed?"""
    return use_ragged(overlap, returns, what) == "pairwise"


def stambaugh(
    x: np.ndarray, valid: np.ndarray, index: pd.Index, labels: pd.Index, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood means and covariance of returns with nested start dates.

    Parameters
    ----------
    x : numpy.ndarray, shape (T, n)
        Periodic returns, NaN before each asset's first return and nowhere
        else (every asset has the last return: a monotone pattern); the
        first row has at least one return.
    valid : numpy.ndarray of bool, shape (T, n)
    index, labels : pandas.Index
        Dates (T,) and asset ids (n,), for messages.
    what : str
        The estimator, for messages.

    Returns
    -------
    mu : numpy.ndarray, shape (n,)
    cov : numpy.ndarray, shape (n, n)
        Periodic, maximum likelihood under normality (divided by the
        counts, not the counts minus 1); positive semidefinite.

    Raises
    ------
    InputError
        A pattern that is not monotone (naming the asset and its first gap
        after its start, with the fix ``overlap="pairwise"``), or a start
        date after which there are too few returns for the regression on the
        longer histories (naming the assets, the counts and the fix).

    Notes
    -----
    Stambaugh (1997), generalised to any number of start dates by the
    factorisation of the likelihood of Anderson (1957): the assets are
    taken in blocks by start date, oldest first. The oldest block's
    estimates are its full-sample mean and ML covariance. Each later block
    ``S`` is regressed on every older asset ``L`` over the dates on which
    ``S`` has returns (its window ``c``): ``B = S_SL,c S_LL,c^-1`` and the
    residual covariance ``Omega = S_SS,c - B S_LL,c B'``. With ``mu_L`` and
    ``Sigma_LL`` the older assets' estimates so far,

    * ``mu_S = m_S,c + B (mu_L - m_L,c)``,
    * ``Sigma_SL = B Sigma_LL``,
    * ``Sigma_SS = Omega + B Sigma_LL B'``
      ``= S_SS,c + B (Sigma_LL - S_LL,c) B'``,

    which for two start dates are Stambaugh's estimators: the short
    histories' means and covariances are corrected by what the long
    histories did before the short ones began.

    References
    ----------
    .. [1] Stambaugh, R. F. (1997). Analyzing investments whose histories
       differ in length. *Journal of Financial Economics* 45(3), 285-331.
    .. [2] Anderson, T. W. (1957). Maximum likelihood estimates for a
       multivariate normal distribution when some observations are missing.
       *JASA* 52(278), 200-203.
    """
    t, n = x.shape
    first = np.argmax(valid, axis=0)
    after = np.arange(t)[:, None] >= first
    bad = np.flatnonzero((after & ~valid).any(axis=0))
    if len(bad):
        j = int(bad[0])
        gap = int(np.argmax(after[:, j] & ~valid[:, j]))
        when = fmt_date(index[gap]) if isinstance(index, pd.DatetimeIndex) else f"row {gap}"
        raise InputError(
            f"{what}(overlap='stambaugh'): the histories must only differ in their start "
            f"(every asset has every return from its first one to the last date), but "
            f"{labels[j]} has no return on {when}"
            + (f" (and {len(bad) - 1} more assets have gaps)" if len(bad) > 1 else "")
            + "; use overlap='pairwise'"
        )
    mu = np.empty(n)
    cov = np.empty((n, n))
    done = np.zeros(n, dtype=bool)
    for start in np.unique(first):
        block = np.flatnonzero(first == start)
        older = np.flatnonzero(done)
        w = x[start:]
        m = w.mean(axis=0)
        y = w - m
        if not len(older):
            mu[block] = m[block]
            cov[np.ix_(block, block)] = y[:, block].T @ y[:, block] / len(w)
            done[block] = True
            continue
        present = np.concatenate((older, block))
        if len(w) - 1 < len(present):
            when = fmt_date(index[start]) if isinstance(index, pd.DatetimeIndex) else start
            raise InputError(
                f"{what}(overlap='stambaugh'): {name_list(labels[block])} start on {when}, "
                f"with {len(w)} returns after, too few to regress them on the "
                f"{len(older)} longer histories (at least {len(present) + 1} are needed); "
                "use overlap='pairwise', drop those assets, or use fewer assets"
            )
        s_ll = y[:, older].T @ y[:, older] / len(w)
        s_sl = y[:, block].T @ y[:, older] / len(w)
        s_ss = y[:, block].T @ y[:, block] / len(w)
        try:
            b = np.linalg.solve(s_ll, s_sl.T).T
        except np.linalg.LinAlgError:
            b = np.linalg.lstsq(s_ll, s_sl.T, rcond=None)[0].T
        sig_ll = cov[np.ix_(older, older)]
        mu[block] = m[block] + b @ (mu[older] - m[older])
        cov[np.ix_(block, older)] = b @ sig_ll
        cov[np.ix_(older, block)] = (b @ sig_ll).T
        cov[np.ix_(block, block)] = symmetrize(s_ss + b @ (sig_ll - s_ll) @ b.T)
        done[block] = True
    return mu, symmetrize(cov)
