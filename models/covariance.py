"""Covariance estimators: sample, EWMA, shrinkage, factor models, CMA, repair.

Every estimator takes periodic returns (a DataFrame, DatetimeIndex x asset
ids, decimals) and returns an **annualized** covariance: the periodic
estimate times ``periods_per_year``, which is inferred from the index (daily
252, weekly 52, monthly 12) unless given. Results are labelled by asset on
both axes, in the order of the input's columns.

========================  ======================================================
``sample``                unbiased sample covariance (ddof = 1)
``ewma``                  exponentially weighted, half-life in periods
``ledoit_wolf``           linear shrinkage to the identity, constant-correlation
                          or single-factor target
``oas``                   oracle approximating shrinkage
``nonlinear_shrinkage``   analytical nonlinear shrinkage (Ledoit-Wolf 2020)
``factor_model``          statistical (PCA) factor model -> FactorCovariance
``factor_regression``     time-series regression on given factors
``nearest_psd``           nearest PSD covariance / nearest correlation matrix
``from_cma``              covariance from capital-market assumptions
========================  ======================================================

Data checks
-----------
Every estimator needs at least ``MIN_OBSERVATIONS`` (3) returns and applies
:func:`models._common.validate_returns` (a return at or below -100% is an
error naming the asset and date; returns that look like percent are refused
with that hint if one is at or below -100%, otherwise warned about) and, unless
``periods_per_year=`` is given, the date-spacing checks of
:func:`models._common.infer_periods_per_year` (mixed frequencies are an error
naming where the spacing changes).

Singular estimates: a covariance with a direction of zero variance lets an
optimizer report zero risk (a Sharpe ratio of 1e9). The rule, by estimator:

* no shrinkage, ``sample`` and ``ewma``: refused (InputError) when there are
  too few observations for a full-rank matrix (``T - 1 < n``; for ``ewma``
  also an effective count ``1 / sum(w_t^2)`` below ``n + 1``), and when an
  asset is constant (a stale price) or a combination of assets has no
  variance (a duplicated column), naming the counts or the assets and the
  fix: a shrinkage estimator (``ledoit_wolf``, ``oas``) or more history;
* shrinkage, ``ledoit_wolf`` (identity target) and ``oas``: any ``T`` is
  accepted (the shrunk matrix is positive definite); constant assets and
  dependent combinations (only perfectly correlated pairs can be told apart
  when ``T - 1 < n``) give a ``UserWarning`` naming them, and an estimate
  that is still singular is refused;
* ``ledoit_wolf`` with the ``"constant_correlation"`` or ``"single_factor"``
  target: constant assets are refused (the target is undefined, or gives
  them zero variance), dependent combinations warned about;
* ``nonlinear_shrinkage``: constant assets and, when ``n <= T - 1``,
  dependent combinations are refused (the method needs positive sample
  eigenvalues);
* ``factor_model`` and ``factor_regression``: constant assets are refused,
  and so is a structure whose covariance is singular (assets left with no
  specific variance that the factors cannot tell apart, e.g. ``n_factors =
  T - 1 < n``).

Histories of different lengths (NaN before an asset's first return): ``sample``,
``ewma`` and ``ledoit_wolf`` take ``overlap="pairwise"``, ``sample`` also
``"stambaugh"`` (:mod:`models._ragged`); the other estimators refuse NaN.

"No variance" means a correlation eigenvalue at most ``SINGULAR_RTOL``
(1e-10) times the largest.

The numerical kernels live in :mod:`models._shrinkage`; the factor models in
:mod:`models._factors`, the repair and CMA functions in :mod:`models._repair`
(public here), the shared helpers in :mod:`models._common`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from models import _ragged, _shrinkage
from models._common import (
    EPS,
    checked_eigh,
    degeneracy,
    demean,
    frame,
    full_rank_count,
    is_singular,
    name_list,
    positive_number,
    prepare_returns,
    reject_constant,
    symmetrize,
)
from models._factors import factor_model, factor_regression
from models._repair import from_cma, nearest_psd, repair_pairwise
from optimizer.errors import InputError

__all__ = [
    "OVERLAPS",
    "TARGETS",
    "ewma",
    "factor_model",
    "factor_regression",
    "from_cma",
    "ledoit_wolf",
    "nearest_psd",
    "nonlinear_shrinkage",
    "oas",
    "sample",
]

#: Shrinkage targets accepted by :func:`ledoit_wolf`.
TARGETS = ("identity", "constant_correlation", "single_factor")


def _refuse_degenerate(x: np.ndarray, labels: pd.Index, cov: np.ndarray, what: str) -> None:
    """An estimator without shrinkage: constant assets or dependent combinations are an error."""
    found = degeneracy(x, labels, cov)
    if found:
        raise InputError(
            f"covariance.{what}: {found}: the estimate would be singular; drop the duplicated "
            "or dependent assets or fix the stale prices, or use a shrinkage estimator such "
            "as ledoit_wolf or oas"
        )


def _check_shrunk(
    x: np.ndarray, labels: pd.Index, cov: np.ndarray, what: str, sample: np.ndarray | None = None
) -> None:
    """A shrinkage estimator: warn about what the shrinkage papered over; refuse if singular.

    ``cov`` (n, n) is the shrunk periodic estimate. When ``T - 1 < n`` only
    perfectly correlated pairs are looked for (the sample is singular anyway),
    and so when a pairwise ``sample`` covariance is given (it need not be PSD).
    """
    t, n = x.shape
    found = degeneracy(x, labels, sample, pairs_only=t - 1 < n or sample is not None)
    if not found:
        return
    if is_singular(cov):
        raise InputError(
            f"covariance.{what}: {found}: the shrunk estimate is still singular; drop the "
            "duplicated or dependent assets or fix the stale prices"
        )
    warnings.warn(
        f"covariance.{what}: {found}; the shrunk covariance is positive definite and is "
        "used, but check the data (drop duplicated assets, fix stale prices)",
        UserWarning,
        stacklevel=3,
    )


def _ewma_count(halflife: float, t: int) -> float:
    """Effective number ``1 / sum(w^2)`` of ``t`` EWMA weights with this half-life."""
    a = np.exp2(-1.0 / halflife)
    at = a**t
    # (sum a^k)^2 / sum a^2k for k < t, with 1 - a computed without cancellation
    return float((1.0 - at) * (1.0 + a) / (-np.expm1(-np.log(2.0) / halflife) * (1.0 + at)))


def _ewma_halflife_for(count: float, t: int) -> float | None:
    """Shortest half-life whose effective count over ``t`` observations is ``count``, if any."""
    if t <= count:
        return None
    lo, hi = 1e-3, 1.0
    while _ewma_count(hi, t) < count:
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return None
    for _ in range(100):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if _ewma_count(mid, t) < count else (lo, mid)
    return hi


#: The ``overlap=`` options: ``"full"`` and ``"pairwise"`` (:func:`sample`, :func:`ewma`,
#: :func:`ledoit_wolf`), ``"stambaugh"`` (:func:`sample` only).
OVERLAPS = _ragged.OVERLAPS_ML


def sample(
    returns: pd.DataFrame, *, periods_per_year: float | None = None, overlap: str = "full"
) -> pd.DataFrame:
    """Sample covariance (ddof = 1), annualized.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids, T >= 2.
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.
    overlap : {"full", "pairwise", "stambaugh"}, keyword-only
        ``"full"`` (default): every asset has every return (NaN refused).
        ``"pairwise"``: histories of different lengths (NaN where an asset
        has no return, e.g. from ``returns.from_prices(missing="keep")``):
        entry ``(i, j)`` is the sample covariance over the dates on which
        both assets have a return (``T_ij - 1`` denominator; ``numpy.cov``
        of the pair on its overlap), the variances each asset's own. Every
        pair needs at least ``MIN_OBSERVATIONS`` (3) common returns. A
        matrix that is not PSD is repaired
        (:func:`models._repair.repair_pairwise`) with a ``UserWarning``
        giving the size of the repair. Without NaN it equals ``"full"``.
        ``"stambaugh"``: histories that differ only in their start (nested
        start dates, no other gap), the maximum-likelihood estimate of
        Stambaugh (1997), :func:`models._ragged.stambaugh`: the short
        histories regressed on the long ones. PSD by construction. Divided by
        the counts as in the paper (ML), while without NaN the ``"full"``
        estimate (``T - 1``) is returned; the difference is ``1 / T``.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        ``periods_per_year * Y'Y / (T - 1)`` with ``Y`` the demeaned returns,
        labelled by asset on both axes.

    Raises
    ------
    InputError
        Invalid returns (see :func:`models._common.validate_returns`),
        periods per year that cannot be inferred, fewer than ``n + 1``
        observations (the estimate would be singular; the message gives the
        counts and suggests a shrinkage estimator or more history), constant
        assets or combinations of assets with no variance (named), an
        unknown ``overlap``; with ``"pairwise"``, a pair of assets with
        fewer than 3 common returns (naming the pair, its count and dates);
        with ``"stambaugh"``, a gap after an asset's start (named) or too
        few returns after a start date for the regression (named).

    Warns
    -----
    UserWarning
        ``overlap="pairwise"``: the pairwise matrix was not PSD and was
        repaired (smallest eigenvalue, number clipped, Frobenius distance).
    """
    how = _ragged.use_ragged(overlap, returns, "covariance.sample", _ragged.OVERLAPS_ML)
    if how == "stambaugh":
        _, s, x, valid, periods = _ragged.stambaugh_inputs(
            returns, periods_per_year, "covariance.sample"
        )
        cov = s * periods
        _refuse_degenerate(_ragged.constant_filled(x, valid), returns.columns, cov, "sample")
        return frame(cov, returns.columns)
    if how == "pairwise":
        x, valid, _, s, periods = _ragged.pairwise_inputs(
            returns, periods_per_year, "covariance.sample", 1
        )
        full_rank_count(len(x), x.shape[1], "sample")
        cov = repair_pairwise(s * periods, "covariance.sample(overlap='pairwise')")
        _refuse_degenerate(_ragged.constant_filled(x, valid), returns.columns, cov, "sample")
        return frame(cov, returns.columns)
    x, labels, periods = prepare_returns(returns, periods_per_year)
    full_rank_count(*x.shape, "sample")
    y = demean(x)
    s = symmetrize(y.T @ y) / (len(x) - 1)
    _refuse_degenerate(x, labels, s, "sample")
    return frame(s * periods, labels)


def _ewma_weights(hl: float, t: int, n: int) -> np.ndarray:
    """Weights (t,) summing to 1, latest heaviest; refuse an effective count below ``n + 1``."""
    age = np.arange(t - 1, -1, -1, dtype=float)
    w = np.exp(-np.log(2.0) * age / hl)
    w /= w.sum()
    count = 1.0 / float(w @ w)
    if count - 1.0 < n:
        need = _ewma_halflife_for(n + 1.0, t)
        fix = f"a halflife of at least {need:.3g} periods, " if need is not None else ""
        raise InputError(
            f"covariance.ewma: halflife={hl:g} over {t} observations leaves an effective "
            f"{count:.1f} observations (1 / sum of squared weights) for {n} assets, too few "
            f"for a full-rank covariance (more than {n} are needed); use {fix}a shrinkage "
            "estimator such as ledoit_wolf or oas, or more history"
        )
    return w


def ewma(
    returns: pd.DataFrame,
    *,
    halflife: float,
    periods_per_year: float | None = None,
    overlap: str = "full",
) -> pd.DataFrame:
    """Exponentially weighted covariance, annualized.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids, oldest first.
    halflife : float
        Half-life of the weights in periods (> 0): an observation ``halflife``
        periods older than the latest one weighs half as much.
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.
    overlap : {"full", "pairwise"}, keyword-only
        As for :func:`sample`. ``"pairwise"``: the weights are set by each
        date's age in the whole table; each entry uses the weights of the
        pair's overlap, renormalised to sum to 1 there, and the weighted
        means over it.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        ``periods_per_year * sum_t w_t (r_t - m)(r_t - m)'``.

    Raises
    ------
    InputError
        Invalid returns, a ``halflife`` that is not a positive number, too
        few observations for a full-rank estimate (``T - 1 < n``, or an
        effective count ``1 / sum(w_t^2)`` below ``n + 1``: the message gives
        the shortest half-life that would do), constant assets or
        combinations of assets with no variance (named); with
        ``"pairwise"``, as for :func:`sample`.

    Warns
    -----
    UserWarning
        ``overlap="pairwise"``: the matrix was repaired (see :func:`sample`).

    Notes
    -----
    Weights ``w_t ∝ 2^(-(T - 1 - t) / halflife)`` are normalized to sum to 1,
    and the mean ``m = sum_t w_t r_t`` uses the same weights (RiskMetrics
    style, no small-sample correction: with a very long half-life the
    estimate tends to the ddof = 0 sample covariance).

    References
    ----------
    J.P. Morgan / Reuters (1996). *RiskMetrics - Technical Document*, 4th
    edition, section 5.2 (exponentially weighted moving average).
    """
    hl = positive_number(halflife, "halflife")
    if _ragged.use_pairwise(overlap, returns, "covariance.ewma"):
        x, valid, rows, _, periods = _ragged.pairwise_inputs(
            returns, periods_per_year, "covariance.ewma", 1
        )
        full_rank_count(len(x), x.shape[1], "ewma")
        w = _ewma_weights(hl, len(returns), x.shape[1])[rows]
        s, _ = _ragged.pairwise_weighted_cov(x, valid, w)
        cov = repair_pairwise(s * periods, "covariance.ewma(overlap='pairwise')")
        _refuse_degenerate(_ragged.constant_filled(x, valid), returns.columns, cov, "ewma")
        return frame(cov, returns.columns)
    x, labels, periods = prepare_returns(returns, periods_per_year)
    t, n = x.shape
    full_rank_count(t, n, "ewma")
    w = _ewma_weights(hl, t, n)
    z = (x - w @ x) * np.sqrt(w)[:, None]
    s = symmetrize(z.T @ z)
    _refuse_degenerate(x, labels, s, "ewma")
    return frame(s * periods, labels)


def _ledoit_wolf_pairwise(
    returns: pd.DataFrame, target: str, periods_per_year: float | None
) -> pd.DataFrame:
    """:func:`ledoit_wolf` with ``overlap="pairwise"`` on returns with NaN."""
    what = "covariance.ledoit_wolf"
    x, valid, rows, s, periods = _ragged.pairwise_inputs(returns, periods_per_year, what, 0)
    labels = returns.columns
    filled = _ragged.constant_filled(x, valid)
    common = _ragged.common_window(x, valid, returns.index[rows], labels, what)
    if target == "identity":
        import sklearn.covariance  # lazily, as in ledoit_wolf

        delta = float(sklearn.covariance.ledoit_wolf(common, assume_centered=False)[1])
    else:
        why = "the target needs every asset's variance on the common dates"
        reject_constant(filled, labels, why)
        reject_constant(common, labels, f"{why} (constant there)")
        cc = target == "constant_correlation"
        kernel = _shrinkage.lw_constant_correlation if cc else _shrinkage.lw_single_factor
        delta = kernel(demean(common))[1]
    shrunk = symmetrize(delta * _ragged.lw_target(s, target) + (1.0 - delta) * s)
    cov = repair_pairwise(shrunk * periods, f"{what}(overlap='pairwise')")
    _check_shrunk(filled, labels, cov, "ledoit_wolf", sample=s)
    return frame(cov, labels)


def ledoit_wolf(
    returns: pd.DataFrame,
    *,
    target: str = "identity",
    periods_per_year: float | None = None,
    overlap: str = "full",
) -> pd.DataFrame:
    """Ledoit-Wolf linear shrinkage of the sample covariance, annualized.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids.
    target : {"identity", "constant_correlation", "single_factor"}
        Shrinkage target. ``"identity"``: a multiple of the identity (computed
        by :func:`sklearn.covariance.ledoit_wolf`). ``"constant_correlation"``:
        sample variances with the average sample correlation.
        ``"single_factor"``: a one-factor model on the equal-weighted average
        of the assets' returns (the "market").
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.
    overlap : {"full", "pairwise"}, keyword-only
        ``"full"`` (default): NaN refused. ``"pairwise"``: histories of
        different lengths. ``S`` is the pairwise covariance (each entry over
        the pair's common dates, divided by ``T_ij``, as :func:`sample` with
        ``overlap="pairwise"``), the target ``F`` is built from it (the mean
        variance; the average pairwise correlation; the market's pairwise
        covariances), and the intensity ``delta`` is the papers' estimate on
        the common window, the dates on which every asset has a return (at
        least 3 needed): the intensity of the shortest shared sample, which
        shrinks at least as much as the longer histories would call for. A
        result that is not PSD is repaired with a warning. Without NaN it
        equals ``"full"``.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        ``periods_per_year * (delta F + (1 - delta) S)``, with ``S`` the
        ddof = 0 covariance of the demeaned returns, ``F`` the target and
        ``delta`` in [0, 1] the estimated optimal intensity.

    Raises
    ------
    InputError
        Invalid returns, unknown ``target`` (the message lists the valid
        ones), constant returns for ``"constant_correlation"`` or
        ``"single_factor"`` (naming the assets), a constant market for
        ``"single_factor"``, or a shrunk estimate that is still singular;
        with ``"pairwise"``, a pair with fewer than 3 common returns (named)
        or a common window of fewer than 3 dates (naming the asset that
        starts last).

    Warns
    -----
    UserWarning
        Constant assets (identity target) or combinations of assets with no
        variance, named: the shrunk estimate is positive definite and used;
        with ``"pairwise"``, a repair (see :func:`sample`).

    Notes
    -----
    All three follow the papers' conventions: returns demeaned, second
    moments divided by T. The two structured targets are computed in
    ``O(T n^2)`` by a single ``Y'Y`` product plus ``O(T n)`` work; see
    :func:`models._shrinkage.lw_constant_correlation` and
    :func:`models._shrinkage.lw_single_factor` for the formulas.

    References
    ----------
    .. [1] Ledoit, O. and Wolf, M. (2004). A well-conditioned estimator for
       large-dimensional covariance matrices. *Journal of Multivariate
       Analysis* 88(2), 365-411.
    .. [2] Ledoit, O. and Wolf, M. (2004). Honey, I shrunk the sample
       covariance matrix. *Journal of Portfolio Management* 30(4), 110-119.
    .. [3] Ledoit, O. and Wolf, M. (2003). Improved estimation of the
       covariance matrix of stock returns with an application to portfolio
       selection. *Journal of Empirical Finance* 10(5), 603-621.
    """
    if not isinstance(target, str) or target not in TARGETS:
        raise InputError(
            f"unknown ledoit_wolf target {target!r}; valid targets: "
            + ", ".join(repr(t) for t in TARGETS)
        )
    if _ragged.use_pairwise(overlap, returns, "covariance.ledoit_wolf"):
        return _ledoit_wolf_pairwise(returns, target, periods_per_year)
    x, labels, periods = prepare_returns(returns, periods_per_year)
    if target == "identity":
        import sklearn.covariance  # lazily: ~1 s of import time the CLI start does not need

        cov, _ = sklearn.covariance.ledoit_wolf(x, assume_centered=False)
        cov = np.asarray(cov, dtype=float)
        _check_shrunk(x, labels, cov, "ledoit_wolf")
        return frame(cov * periods, labels)
    if target == "constant_correlation":
        reject_constant(x, labels, "the constant-correlation target needs every correlation")
        cov, _ = _shrinkage.lw_constant_correlation(demean(x))
    else:
        reject_constant(
            x, labels, "the single-factor target would give them no variance; fix the data"
        )
        y = demean(x)
        market = y.mean(axis=1)
        largest = float(np.einsum("ti,ti->i", y, y).max())
        if not float(market @ market) > max(x.shape) * EPS * largest:
            raise InputError(
                "the equal-weighted market of these returns is constant (zero variance); "
                "the single_factor target needs a market with positive variance"
            )
        cov, _ = _shrinkage.lw_single_factor(y)
    _check_shrunk(x, labels, cov, "ledoit_wolf")
    return frame(cov * periods, labels)


def oas(returns: pd.DataFrame, *, periods_per_year: float | None = None) -> pd.DataFrame:
    """Oracle approximating shrinkage towards a scaled identity, annualized.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids.
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        :func:`sklearn.covariance.oas` of the returns (centered) times
        ``periods_per_year``.

    Raises
    ------
    InputError
        Invalid returns or periods per year, or a shrunk estimate that is
        still singular.

    Warns
    -----
    UserWarning
        Constant assets or combinations of assets with no variance, named:
        the shrunk estimate is positive definite and used.

    References
    ----------
    Chen, Y., Wiesel, A., Eldar, Y. C. and Hero, A. O. (2010). Shrinkage
    algorithms for MMSE covariance estimation. *IEEE Transactions on Signal
    Processing* 58(10), 5016-5029.
    """
    import sklearn.covariance  # lazily, as in ledoit_wolf

    x, labels, periods = prepare_returns(returns, periods_per_year)
    cov, _ = sklearn.covariance.oas(x, assume_centered=False)
    cov = np.asarray(cov, dtype=float)
    _check_shrunk(x, labels, cov, "oas")
    return frame(cov * periods, labels)


def nonlinear_shrinkage(
    returns: pd.DataFrame, *, periods_per_year: float | None = None
) -> pd.DataFrame:
    """Analytical nonlinear shrinkage (Ledoit and Wolf 2020), annualized.

    Keeps the eigenvectors of the sample covariance and replaces each sample
    eigenvalue by a kernel estimate of its oracle value; works for T > n and
    T <= n alike.

    Parameters
    ----------
    returns : pandas.DataFrame, shape (T, n)
        Periodic returns (decimals), DatetimeIndex x asset ids, T >= 2.
    periods_per_year : float, optional
        Observations per year; inferred from the index when omitted.

    Returns
    -------
    pandas.DataFrame, shape (n, n)
        ``periods_per_year * U diag(d) U'``, with ``U`` the eigenvectors of
        the sample covariance ``S = Y'Y / (T - 1)`` and ``d > 0`` the shrunk
        eigenvalues. Positive definite.

    Raises
    ------
    InputError
        Invalid returns, constant assets (named), or returns whose sample
        covariance has a zero eigenvalue beyond the ``n - (T - 1)`` expected
        when n > T - 1 (duplicated or linearly dependent assets; the assets
        involved are named when n < T).

    Notes
    -----
    The returns are demeaned, so the effective sample size is ``T - 1``
    (the paper's ``n``). One symmetric eigendecomposition and ``O(n^2)``
    vectorized kernel work; the formulas are in
    :func:`models._shrinkage.nonlinear_shrinkage_eigenvalues`. When
    ``n > T - 1`` the ``n - T + 1`` null eigenvalues of ``S`` share one
    positive value (equation C.5 of the paper).

    References
    ----------
    Ledoit, O. and Wolf, M. (2020). Analytical nonlinear shrinkage of
    large-dimensional covariance matrices. *Annals of Statistics* 48(5),
    3043-3065.
    """
    x, labels, periods = prepare_returns(returns, periods_per_year)
    reject_constant(x, labels, "nonlinear shrinkage needs positive sample eigenvalues")
    t, p = x.shape
    n_eff = t - 1
    y = demean(x)
    lam, u = checked_eigh(y.T @ y / n_eff, "nonlinear_shrinkage")
    r = min(p, n_eff)
    floor = float(lam[-1]) * max(p, t) * EPS
    if not float(lam[p - r]) > floor:
        if p <= n_eff:
            v = u[:, 0]
            involved = labels[np.argsort(-np.abs(v), kind="stable")]
            involved = involved[: int(np.sum(np.abs(v) >= 0.1))]
            where = f": a combination of assets {name_list(involved)} has no variance"
        else:
            where = f" beyond the n - (T - 1) = {p - n_eff} expected"
        raise InputError(
            f"returns are rank-deficient (sample covariance has a zero eigenvalue{where}); "
            "drop duplicated or linearly dependent assets before nonlinear shrinkage"
        )
    d = _shrinkage.nonlinear_shrinkage_eigenvalues(lam, n_eff)
    root = u * np.sqrt(d * periods)
    return frame(root @ root.T, labels)  # G G' by a symmetric update: exactly symmetric
