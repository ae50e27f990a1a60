"""Hierarchical risk parity (HRP) and hierarchical equal risk contribution (HERC).

Both allocate by a rule on a tree of the assets, not by solving a program: no
expected returns, no inverse of the covariance.

1. **Tree.** The correlation distance ``d_ij = sqrt((1 - rho_ij) / 2)`` is
   clustered by :func:`scipy.cluster.hierarchy.linkage` (``single``,
   ``complete``, ``average`` or ``ward`` linkage).
2. **HRP** (Lopez de Prado 2016) lists the assets in the tree's leaf order
   (quasi-diagonalisation; optionally the optimal leaf ordering of Bar-Joseph
   et al. 2001) and halves the list recursively, each half held in
   inverse-risk weights and given ``1 - r_half / (r_1 + r_2)`` of its parent.
3. **HERC** (Raffinot 2017) cuts the tree into ``k`` clusters held in
   inverse-risk weights and splits the weight down the tree, each subtree
   given ``1 - R_sub / (R_1 + R_2)``, ``R`` the summed risk of its clusters.

Risk is the variance (the papers'), the standard deviation or the CVaR of
the returns given; inverse-risk weights are inverse variance, volatility or
CVaR to match (as skfolio). The tree is built with the assets in the order
of their ids as text, whatever order they come in, so the weights follow the
labels (ties in the linkage are broken by that order too); scaling the
covariance never changes the weights.

References
----------
M. Lopez de Prado (2016), "Building diversified portfolios that outperform
out of sample", Journal of Portfolio Management 42(4), 59-69.
T. Raffinot (2017), "Hierarchical clustering-based asset allocation", Journal
of Portfolio Management 44(2), 89-99.
Z. Bar-Joseph, D. K. Gifford and T. S. Jaakkola (2001), "Fast optimal leaf
ordering for hierarchical clustering", Bioinformatics 17, S22-S29.
M. Yue, X. Wang and Z. Wei (2009), "Application of two-order difference to
gap statistic", Transactions of Beijing Institute of Technology 29(9).
J. Pfitzinger and N. Katzke (2019), "A constrained hierarchical risk parity
algorithm with cluster-based capital allocation", Stellenbosch Working Paper.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.cluster.hierarchy as sch
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from scipy.spatial.distance import squareform

from models import covariance as covariance_estimators
from models._common import resolve_periods
from models.mean_risk import confidence
from optimizer import diagnosis
from optimizer.allocation import Allocation
from optimizer.compiled import Compiled
from optimizer.constraints import Bounds, Budget, LongOnly
from optimizer.errors import InputError
from optimizer.pieces import Bound, Point
from optimizer.terms import tail_mean
from optimizer.universe import Universe
from optimizer.validation import covariance_values, labels, names, vector

__all__ = ["LINKAGES", "RISK_MEASURES", "herc", "hrp"]

#: Linkage methods of the tree (:func:`scipy.cluster.hierarchy.linkage`).
LINKAGES = ("single", "complete", "average", "ward")
#: Risk measures of the clusters.
RISK_MEASURES = ("variance", "standard_deviation", "cvar")
#: A variance at or below this share of the largest one counts as zero.
ZERO_VARIANCE_RTOL = 1e-14


# ----------------------------------------------------------------------------- inputs


def _choice(value: object, choices: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"unknown {what} {value!r}: choose one of {', '.join(choices)}")
    return value


def _correlation(c: np.ndarray) -> np.ndarray:
    """The correlation matrix of a covariance with positive variances."""
    s = np.sqrt(np.diag(c))
    rho = np.clip(c / np.outer(s, s), -1.0, 1.0)
    np.fill_diagonal(rho, 1.0)
    return rho


def _moments(returns: pd.DataFrame, periods_per_year, with_cov: bool):
    """Covariance (annualized; None unless asked) and correlation of returns, (n, n) each.

    Complete returns give the sample estimates; with missing values each pair
    is estimated from its common dates (as pandas does).
    """
    types = returns.dtypes.items()
    bad = [c for c, t in types if is_bool_dtype(t) or not is_numeric_dtype(t)]
    if bad:
        raise InputError(f"returns has non-numeric columns: {names(bad)}")
    inf = np.isinf(returns.to_numpy(dtype=float)).any(axis=0)
    if inf.any():
        raise InputError(f"returns has inf values for assets: {names(returns.columns[inf])}")
    seen = returns.notna().to_numpy()
    flat = returns.columns[(seen.sum(axis=0) < 2) | (returns.nunique().to_numpy() < 2)]
    if len(flat):
        raise InputError(
            f"returns are constant or have fewer than 2 observations for {names(flat)}: "
            "their variance is zero and their correlation undefined; drop them"
        )
    if seen.all():
        corr = np.corrcoef(returns.to_numpy(dtype=float), rowvar=False)
        if not with_cov:
            return None, corr
        return covariance_estimators.sample(
            returns, periods_per_year=periods_per_year
        ).to_numpy(), corr
    corr = returns.corr(min_periods=2).to_numpy()
    if not np.isfinite(corr).all():
        i, j = np.argwhere(~np.isfinite(corr))[0]
        raise InputError(
            f"returns of {returns.columns[i]} and {returns.columns[j]} share fewer than 2 "
            "dates (or do not vary on them), so their correlation is undefined; drop one of "
            "them"
        )
    if not with_cov:
        return None, corr
    return returns.cov(min_periods=2).to_numpy() * resolve_periods(returns, periods_per_year), corr


# ----------------------------------------------------------------------------- risk of clusters


class _Risk:
    """Inverse-risk portfolios of clusters and their risk (variance, volatility or CVaR)."""

    def __init__(self, cov, scenarios, assets: pd.Index, measure: str, alpha: float, perm) -> None:
        self.cov = cov[np.ix_(perm, perm)]
        self.measure = measure
        self.alpha = alpha
        self.scenarios = None if scenarios is None else scenarios[:, perm]
        self.ids = assets[perm]
        var = np.diag(self.cov)
        if measure == "cvar":
            self.unit = np.array([self._cvar(np.array([i]), np.ones(1)) for i in range(len(var))])
        else:
            self.unit = var if measure == "variance" else np.sqrt(var)

    def _cvar(self, idx: np.ndarray, w: np.ndarray) -> float:
        value = tail_mean(-(self.scenarios[:, idx] @ w), self.alpha)
        return self._positive(value, idx)

    def _positive(self, value: float, idx: np.ndarray) -> float:
        if not value > 0:  # NaN too
            raise InputError(
                f"the {self.measure.replace('_', ' ')} of {names(self.ids[idx])} in inverse-risk "
                f"weights is {value:.3g}, not positive (a perfect hedge, or no loss in the CVaR "
                "tail), so the hierarchical risk split is undefined; drop or merge those assets "
                "or use risk_measure='variance'"
            )
        return value

    def inverse(self, idx: np.ndarray) -> np.ndarray:
        """Inverse-risk weights of the assets ``idx``, summing to one."""
        w = 1.0 / self.unit[idx]
        return w / w.sum()

    def of(self, idx: np.ndarray) -> float:
        """Risk (positive) of the inverse-risk portfolio of the assets ``idx``."""
        w = self.inverse(idx)
        if self.measure == "cvar":
            return self._cvar(idx, w)
        var = float(w @ self.cov[np.ix_(idx, idx)] @ w)
        return self._positive(var if self.measure == "variance" else math.sqrt(max(var, 0)), idx)


@dataclass(frozen=True)
class _Problem:
    """Validated inputs of one allocation; arrays in the canonical order ``perm``."""

    cm: Compiled  # in the output's asset order
    mu: np.ndarray | None  # (n,), output order
    perm: np.ndarray  # (n,), canonical position -> output position
    risk: _Risk
    corr: np.ndarray  # (n, n), what the tree is built from
    total: float
    lower: np.ndarray  # (n,)
    upper: np.ndarray  # (n,)
    linkage: str
    started: float


def _constraint_box(
    cm: Compiled, model: str, allowed: tuple
) -> tuple[float, np.ndarray, np.ndarray]:
    """Budget total and per-asset bounds of the supported constraints; InputError otherwise."""
    for c in cm.cset.constraints:
        if not isinstance(c, allowed):
            kinds = ", ".join(t.__name__ for t in allowed)
            raise InputError(
                f"{model} supports only {kinds} constraints (a hierarchical allocation is a "
                f"recursive rule, not a convex program); constraint {c.name!r} is a "
                f"{type(c).__name__}: drop it, or use models.mean_variance or "
                "models.risk_parity, which take any constraint"
            )
        if getattr(c, "priority", None) is not None:
            raise InputError(
                f"{model} applies its constraints as hard limits; constraint {c.name!r} has "
                f"priority={c.priority} (soft): drop priority="
            )
        if isinstance(c, Bounds) and c.allows_short:
            raise InputError(
                f"{model} is long-only; constraint {c.name!r} allows negative weights: "
                "give it a lower bound of 0 or more"
            )
    total = cm.cset.budget
    if total is None or not total > 0:
        raise InputError(
            f"{model} needs one Budget with a positive total (the weights it splits), got "
            f"{'several budgets' if total is None else f'total {total:g}'}"
        )
    n = len(cm.assets)
    diagnosis.precheck(cm.cset.pieces, n, budget=total, assets=cm.assets)
    lower, upper = np.zeros(n), np.full(n, np.inf)
    for p in cm.cset.pieces:
        if isinstance(p, Bound):
            lower[p.index] = max(lower[p.index], p.lo)
            upper[p.index] = min(upper[p.index], p.hi)
    return float(total), lower, upper


def _prepare(
    model, cov, returns, mu, linkage, risk_measure, alpha, constraints, universe, ppy, allowed
) -> _Problem:
    """Check and estimate everything an allocation needs (the public functions' arguments)."""
    started = time.perf_counter()
    linkage = _choice(linkage, LINKAGES, "linkage")
    measure = _choice(risk_measure, RISK_MEASURES, "risk_measure")
    alpha = confidence(alpha)
    if cov is None and returns is None:
        raise InputError(f"{model} needs cov= or returns= (or both)")
    if returns is not None and not isinstance(returns, pd.DataFrame):
        raise InputError(
            f"returns must be a pandas DataFrame (dates x assets), got {type(returns).__name__}"
        )
    if cov is not None:
        assets, c = covariance_values(cov, what="cov")
        if returns is not None:
            labels(returns.columns, what="returns", assets=assets, against="cov")
            returns = returns[assets]
    else:
        assets, c = labels(returns.columns, what="returns"), None
    if len(assets) < 2:
        raise InputError(
            f"{model} needs at least 2 assets to build a tree, got {len(assets)} ({names(assets)})"
        )
    corr = None
    if returns is not None:
        # the tree comes from the returns' correlation; cov= may be another estimate of the
        # risk (skfolio's split between the prior and the distance)
        from_returns, corr = _moments(returns, ppy, with_cov=c is None)
        if c is None:
            _, c = covariance_values(
                pd.DataFrame(from_returns, index=assets, columns=assets),
                what="the covariance of returns",
            )
    diag = np.diag(c)
    zero = diag <= ZERO_VARIANCE_RTOL * max(float(diag.max()), 1e-300)
    if zero.any():
        raise InputError(
            f"{model} needs a positive variance for every asset; zero variance for "
            f"{names(assets[zero])} (its inverse-risk weight is undefined): drop it and "
            "allocate to it outside the hierarchical sleeve"
        )
    if corr is None:
        corr = _correlation(c)
    scenarios = None
    if measure == "cvar":
        if returns is None:
            raise InputError("risk_measure='cvar' needs returns= (the scenarios)")
        scenarios = returns.to_numpy(dtype=float, na_value=np.nan)
        if not np.isfinite(scenarios).all():
            gaps = assets[~np.isfinite(scenarios).all(axis=0)]
            raise InputError(
                f"risk_measure='cvar' needs returns without missing values; NaN for "
                f"{names(gaps)}: drop the incomplete rows (returns.dropna()) or use "
                "risk_measure='variance'"
            )
    cm = Compiled(
        pd.DataFrame(c, index=assets, columns=assets), constraints=constraints, universe=universe
    )
    total, lower, upper = _constraint_box(cm, model, allowed)
    mu_vec = None if mu is None else vector(mu, assets, what="mu")
    perm = np.argsort(np.array([str(a) for a in assets], dtype=object), kind="stable")
    risk = _Risk(c, scenarios, assets, measure, alpha, perm)
    corr = corr[np.ix_(perm, perm)]
    return _Problem(cm, mu_vec, perm, risk, corr, total, lower[perm], upper[perm], linkage, started)


# ----------------------------------------------------------------------------- trees


def _tree(corr: np.ndarray, linkage: str, optimal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Linkage matrix (n - 1, 4) and distance matrix (n, n) of a correlation matrix."""
    dist = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, 1.0))
    np.fill_diagonal(dist, 0.0)
    condensed = squareform(dist, checks=False)
    z = sch.linkage(condensed, method=linkage)
    if optimal:
        z = sch.optimal_leaf_ordering(z, condensed)
    return z, dist


def _bisect(risk: _Risk, order: np.ndarray, total: float, lo, hi) -> np.ndarray:
    """HRP weights (n,) by recursive bisection of ``order``, splits clamped to the bounds."""
    w = np.zeros(len(order))
    stack = [(0, len(order), total)]
    while stack:
        s, e, parent = stack.pop()
        if e - s == 1:
            w[order[s]] = parent
            continue
        if parent <= 0.0:
            continue
        m = s + (e - s) // 2
        left, right = order[s:m], order[m:e]
        r_left = risk.of(left)
        a = 1.0 - r_left / (r_left + risk.of(right))
        # Pfitzinger and Katzke (2019): keep each side within the sums of its bounds
        a = min(hi[left].sum() / parent, max(lo[left].sum() / parent, a))
        a = 1.0 - min(hi[right].sum() / parent, max(lo[right].sum() / parent, 1.0 - a))
        stack.append((m, e, parent * (1.0 - a)))
        stack.append((s, m, parent * a))
    return w


def _gap_rule(dist: np.ndarray, z: np.ndarray) -> int:
    """Number of clusters by the two-order difference of the within-cluster dispersion.

    ``W_k`` sums, over the ``k`` clusters of the tree cut into ``k``, the mean
    distance between two members; ``k`` maximizes ``W_{k-1} + W_{k+1} - 2 W_k``
    for ``k`` in ``2 .. K - 1``, ``K = min(n, max(8, round(sqrt(n))))`` (Yue,
    Wang and Wei 2009; the rule skfolio uses).
    """
    n = len(dist)
    if n <= 2:
        return n
    cuts = sch.cut_tree(z)
    top = min(n, max(8, round(math.sqrt(n))))
    spread = np.zeros(top)
    for k in range(top):
        level = cuts[:, n - k - 1]
        for c in range(int(level.max()) + 1):
            idx = np.flatnonzero(level == c)
            if len(idx) > 1:
                spread[k] += float(squareform(dist[np.ix_(idx, idx)], checks=False).mean())
    second = spread[2:] + spread[:-2] - 2.0 * spread[1:-1]
    return int(np.argmax(second)) + 2


def _herc_split(risk: _Risk, z: np.ndarray, cluster: np.ndarray, total: float) -> np.ndarray:
    """HERC weights (n,) from the tree ``z`` and a cluster label (0..k-1) per asset."""
    n = len(cluster)
    k = int(cluster.max()) + 1
    members = [np.flatnonzero(cluster == c) for c in range(k)]
    c_risk = np.array([risk.of(m) for m in members])
    label = np.empty(2 * n - 1, dtype=int)  # the cluster of a node inside one, else -1
    summed = np.empty(2 * n - 1)  # the summed risk of the clusters under a node
    label[:n] = cluster
    summed[:n] = c_risk[cluster]
    for j, (a, b) in enumerate(z[:, :2].astype(int)):
        same = label[a] >= 0 and label[a] == label[b]
        label[n + j] = label[a] if same else -1
        summed[n + j] = c_risk[label[a]] if same else summed[a] + summed[b]
    weight = np.zeros(k)
    stack = [(2 * n - 2, total)]
    while stack:
        node, parent = stack.pop()
        if label[node] >= 0:
            weight[label[node]] = parent
            continue
        a, b = z[node - n, :2].astype(int)
        share = 1.0 - summed[a] / (summed[a] + summed[b])
        stack.append((a, parent * share))
        stack.append((b, parent * (1.0 - share)))
    w = np.zeros(n)
    for c, idx in enumerate(members):
        w[idx] = weight[c] * risk.inverse(idx)
    return w


# ----------------------------------------------------------------------------- answers


def _answer(prob: _Problem, ws: np.ndarray, solver: str, notes: tuple, t_tree: float) -> Allocation:
    """The verified Allocation of weights ``ws`` (n,) in the canonical order."""
    t_done = time.perf_counter()
    cm = prob.cm
    w = np.empty_like(ws)
    w[prob.perm] = ws
    alloc = cm.allocation(
        w,
        prob.mu,
        status="optimal",
        solver=solver,
        attempts=({"solver": solver, "status": "optimal", "seconds": round(t_done - t_tree, 6)},),
        binding=cm.checker.binding_sides(Point(w, risk=cm.risk)),
        timings={},
        objective=float("nan"),
        notes=notes,
    )
    timings = {
        "compile": t_tree - prob.started,
        "solve": t_done - t_tree,
        "other": time.perf_counter() - t_done,
    }
    return dataclasses.replace(alloc, timings=timings)


def hrp(
    cov: pd.DataFrame | None = None,
    *,
    returns: pd.DataFrame | None = None,
    linkage: str = "single",
    risk_measure: str = "variance",
    optimal_ordering: bool = False,
    alpha: float = 0.95,
    mu: pd.Series | Mapping[str, float] | None = None,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    periods_per_year: float | None = None,
) -> Allocation:
    """Hierarchical risk parity weights (Lopez de Prado 2016).

    Parameters
    ----------
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance, optional
        Covariance of returns (annualized decimals), labelled by asset on both
        axes; validated (finite, symmetric, positive semidefinite). Every asset
        needs a positive variance. Optional when ``returns`` are given.
    returns : pandas.DataFrame, shape (T, n), optional
        Periodic returns (decimals), dates x asset ids. The tree is built from
        their correlation (with missing values, NaN, from each pair's common
        dates, as pandas and PyPortfolioOpt do). Without ``cov`` they also give
        the risk model: their sample covariance (ddof 1; pairwise with missing
        values), annualized by ``periods_per_year`` (inferred from the dates).
        Needed for ``risk_measure="cvar"`` (then without missing values).
    linkage : {"single", "complete", "average", "ward"}
        How clusters merge (:func:`scipy.cluster.hierarchy.linkage`); Lopez de
        Prado uses single linkage.
    risk_measure : {"variance", "standard_deviation", "cvar"}
        Risk of a cluster held in inverse-risk weights; the paper's is the
        variance. ``"cvar"``: the conditional value at risk at ``alpha`` of the
        returns given (periodic).
    optimal_ordering : bool
        Order the leaves by the optimal leaf ordering (Bar-Joseph et al. 2001:
        adjacent assets as close as the tree allows), as skfolio does, instead
        of the tree's own order (Lopez de Prado, PyPortfolioOpt).
    alpha : float
        Confidence level of the CVaR, in (0, 1).
    mu : pandas.Series or mapping, optional
        Expected returns (annualized), only to report ``expected_return``.
    constraints : list, optional
        ``Budget`` (a positive total; 1 by default), ``LongOnly`` and ``Bounds``
        with non-negative lower bounds. Bounds act on each split: the share of
        a side is kept between the sums of its lower and upper bounds
        (Pfitzinger and Katzke 2019, as skfolio), so every bound holds whenever
        the bounds and the budget are compatible. Other constraints raise.
    universe : Universe, optional
        Checked against the assets (constraints here take no tags).
    periods_per_year : float, optional
        Observations per year of ``returns``, for the covariance they give.

    Returns
    -------
    Allocation
        ``weights`` (non-negative, summing to the budget, in the order of
        ``cov``'s rows or of ``returns``' columns), ``volatility`` and
        ``risk_contributions`` under ``cov`` (or the returns' covariance),
        ``solver`` ``"HRP"``, ``checks`` of every constraint, ``binding``,
        ``objective`` NaN (no program is solved).

    Raises
    ------
    InputError
        Neither ``cov`` nor ``returns``; an unknown ``linkage`` or
        ``risk_measure`` (the choices are listed); fewer than 2 assets; an
        asset with zero variance (named); ``cov`` and ``returns`` naming
        different assets (named); a pair of assets without 2 common dates;
        ``risk_measure="cvar"`` without ``returns`` or with missing values;
        an unsupported constraint (named).
    InfeasibleError
        Bounds that cannot hold with the budget (named, with the gap).

    Notes
    -----
    The correlation distance ``sqrt((1 - rho) / 2)`` is clustered directly
    (as PyPortfolioOpt and skfolio do; the paper's code clusters the Euclidean
    distance between columns of that matrix). The list of assets in leaf
    order is halved recursively (the first half has ``floor(m / 2)`` assets),
    each half weighted ``1 - r_half / (r_1 + r_2)``. With two assets, or with
    uncorrelated assets, the weights are inverse variance.

    References
    ----------
    M. Lopez de Prado (2016), "Building diversified portfolios that outperform
    out of sample", Journal of Portfolio Management 42(4), 59-69.

    Examples
    --------
    >>> import pandas as pd
    >>> ids = ["EQ", "BD"]
    >>> cov = pd.DataFrame([[0.04, 0.0], [0.0, 0.01]], index=ids, columns=ids)
    >>> hrp(cov).weights.round(4).tolist()
    [0.2, 0.8]
    """
    prob = _prepare(
        "hrp",
        cov,
        returns,
        mu,
        linkage,
        risk_measure,
        alpha,
        constraints,
        universe,
        periods_per_year,
        (Budget, LongOnly, Bounds),
    )
    if not isinstance(optimal_ordering, bool):
        raise InputError(f"optimal_ordering must be True or False, got {optimal_ordering!r}")
    t_tree = time.perf_counter()
    z, _ = _tree(prob.corr, prob.linkage, optimal_ordering)
    ws = _bisect(prob.risk, sch.leaves_list(z), prob.total, prob.lower, prob.upper)
    return _answer(prob, ws, "HRP", (), t_tree)


def herc(
    cov: pd.DataFrame | None = None,
    *,
    returns: pd.DataFrame | None = None,
    linkage: str = "ward",
    risk_measure: str = "variance",
    n_clusters: int | None = None,
    alpha: float = 0.95,
    mu: pd.Series | Mapping[str, float] | None = None,
    constraints: Sequence | None = None,
    universe: Universe | None = None,
    periods_per_year: float | None = None,
) -> Allocation:
    """Hierarchical equal risk contribution weights (Raffinot 2017).

    Parameters
    ----------
    cov, returns, linkage, risk_measure, alpha, mu, universe, periods_per_year
        As for :func:`hrp` (the default linkage here is Ward's, Raffinot's
        choice).
    n_clusters : int, optional
        Clusters to cut the tree into, ``1 <= n_clusters <= n``. None chooses
        it by the two-order difference of the gap statistic (Yue, Wang and Wei
        2009, as skfolio): with ``W_k`` the sum over the ``k`` clusters of the
        mean distance between two members, the ``k`` in ``2 .. K - 1`` that
        maximizes ``W_{k-1} + W_{k+1} - 2 W_k``, ``K = min(n, max(8,
        round(sqrt(n))))``.
    constraints : list, optional
        ``Budget`` (a positive total; 1 by default) and ``LongOnly`` only.

    Returns
    -------
    Allocation
        As for :func:`hrp`, ``solver`` ``"HERC"``; a note lists the clusters.

    Raises
    ------
    InputError
        As for :func:`hrp`; ``n_clusters`` not an integer in ``[1, n]``;
        ``Bounds`` or any other constraint than a budget and long-only.

    Notes
    -----
    The tree is cut into ``n_clusters`` by
    :func:`scipy.cluster.hierarchy.fcluster` (``maxclust``; ties in the
    linkage may leave fewer, reported in the note). Each cluster is held in
    inverse-risk weights. From the root down to the clusters, a node's weight
    is split between its two subtrees, the subtree whose clusters' risks sum
    to ``R_1`` receiving ``1 - R_1 / (R_1 + R_2)``. One cluster gives the
    naive risk-parity portfolio (inverse variance by default); two assets
    give inverse variance.

    References
    ----------
    T. Raffinot (2017), "Hierarchical clustering-based asset allocation",
    Journal of Portfolio Management 44(2), 89-99.
    """
    prob = _prepare(
        "herc",
        cov,
        returns,
        mu,
        linkage,
        risk_measure,
        alpha,
        constraints,
        universe,
        periods_per_year,
        (Budget, LongOnly),
    )
    n = len(prob.perm)
    if n_clusters is not None and (
        isinstance(n_clusters, bool)
        or not isinstance(n_clusters, int | np.integer)
        or not 1 <= n_clusters <= n
    ):
        raise InputError(
            f"n_clusters must be an integer from 1 to {n} (the assets), got {n_clusters!r}"
        )
    t_tree = time.perf_counter()
    z, dist = _tree(prob.corr, prob.linkage)
    k = _gap_rule(dist, z) if n_clusters is None else int(n_clusters)
    cluster = sch.fcluster(z, t=k, criterion="maxclust") - 1
    ws = _herc_split(prob.risk, z, cluster, prob.total)
    found = int(cluster.max()) + 1
    how = "given" if n_clusters is not None else "by the two-order difference of the gap statistic"
    groups = sorted(
        (sorted(map(str, prob.risk.ids[cluster == c])) for c in range(found)),
        key=lambda g: (-len(g), g[0]),
    )
    note = f"{found} clusters ({how}): " + "; ".join("{" + names(g, 8) + "}" for g in groups)
    if found < k:
        note += f" (ties in the linkage left {found} of the {k} asked)"
    return _answer(prob, ws, "HERC", (note,), t_tree)
