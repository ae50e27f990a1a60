"""Limits and market impact shared across accounts: a pooled rebalance by decomposition.

Accounts ``i`` (in :class:`AccountBook` partitions, one per :class:`Rebalancer`
structure) trade ``t_i`` (currency, shape (n,)). The desk's trade in asset
``j`` pools them: ``Q_j = sum_i t_ij`` (``kind="net"``: the desk crosses buys
against sells and sends the net to the market) or ``Q_j = sum_i |t_ij|``
(``kind="gross"``: every order goes to the market). :class:`PooledLimits`
caps ``|Q_j| <= cap_j`` and prices the market impact on the pooled trade,
``impact_j |Q_j|^1.5`` (currency; the convention of
:class:`~optimizer.costs.CostModel`: ``impact_j = k sigma_j / sqrt(adv_j)``,
see :meth:`PooledLimits.from_adv`).

What is solved
--------------
The collusive (joint) optimum of Stubbs and Vandenbussche (Axioma research
paper, "Multi-portfolio optimization and fairness in allocation of trades"):
minimise the total of all accounts' objectives, each in currency (``V1_i``
times the rebalance objective of :mod:`optimizer.rebalance`: tracking and the
account's own costs), plus the pooled impact, subject to every account's own
constraints and the pooled caps. It is not their Cournot-Nash equilibrium, in
which each account optimises against the others' trades and ignores the
impact it causes them (the collusive total is never worse; its split of the
impact is then a separate, stated choice: below).

How
---
By decomposition: every iteration is one map over the books (each account
solves its own compiled program with a linear price ``y`` on its pooled
quantity ``x_i``) and one reduction here.

1. Dual decomposition (the default, ``method="dual"``): only the ``c`` coupled
   assets need prices, and the pooled trade ``G_j(y) = sum_i x_ij(y)`` falls as
   ``y_j`` rises; :class:`~optimizer.rebalance.pooled_prices.PriceSearch` finds
   the prices at which ``G`` is what the desk supplies (the pooled trade whose
   marginal impact is the price, clipped to the cap) by a quasi-Newton
   (Broyden) search on those ``c`` prices: a handful of maps.
2. ADMM for the sharing problem (Boyd, Parikh, Chu, Peleato and Eckstein 2011,
   "Distributed Optimization and Statistical Learning via the Alternating
   Direction Method of Multipliers", Foundations and Trends in Machine Learning
   3(1), section 7.3; ``method="admm"``, or from the search's prices when it has
   not converged after :data:`~optimizer.rebalance.pooled_prices.DUAL_MAX`
   reductions): each account adds ``rho_i / 2 ||x_i - z_i||^2`` (``rho_i = rho /
   V1_i``); the driver solves the pooled step per asset in closed form (the
   proximal map of ``impact |Q|^1.5`` clipped to the cap) and updates the price
   and the anchors ``z_i``; ``rho`` is adapted by residual balancing (section
   3.4.1). About a hundred maps, but it needs no more than convexity.

A last step makes the pooled caps hold exactly: each account gets a share of
each cap from the converged trades (the slack split pro rata to
``|x_ij| / sum_i |x_ij|``), so the shares sum to the cap, and solves once
more with its share as a hard bound on its own trade, priced at the marginal
pooled impact alone (the bounds now hold the caps, with multipliers of their
own). The final plans are assembled and verified like any plan, and the
pooled limits are verified on their trades (``POOLED_TOL``; a breach is a
:class:`~optimizer.errors.SolverError`, or a warning when rounding to whole
lots caused it: the rounding of :mod:`optimizer.rebalance.plan` does not yet
take the account's share of the caps as a trade limit, so with ``lot_size``
the caps hold on the optimizer's trades, not always on the rounded orders).

Fixed ticket costs and minimum trades (not convex) are refused under pooled
limits. An account that fails (bad input, infeasible on its own) is reported
in :attr:`PooledOutcome.failed`, trades nothing and is left out; the others go on.

The fairness split
------------------
The pooled impact cost of asset ``j`` is charged to the accounts pro rata to
their traded notional, ``|t_ij| / sum_i |t_ij|`` (pro-rata allocation of
pooled trades, O'Cinneide, Scherer and Xu 2006, "Pooling trades in a
quantitative investment process", Journal of Portfolio Management 32(4)), so
the shares sum to the pooled impact cost. Iancu and Trichakis 2014, "Fairness
and efficiency in multiportfolio optimization" (Operations Research 62(6)),
discuss the price of fairness of such splits against the joint optimum.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from optimizer.errors import InfeasibleError, InputError, SolverError
from optimizer.rebalance.pooled_book import AccountBook, BookStep, Signals
from optimizer.rebalance.pooled_prices import (
    DUAL_MAX,
    DUAL_TOL,
    PriceSearch,
    own_slope,
    supply,
)
from optimizer.rebalance.rebalancer import _variances
from optimizer.values import read_only

#: Pooled limits hold to this, relative to the cap (at least 1 currency unit of scale).
POOLED_TOL = 1e-6
#: The caps handed to the feasibility step are this much tighter (relative), for solver rounding.
MARGIN = 1e-7
#: Residual balancing of ``rho``: change it when one residual is ``MU`` times the other.
MU, TAU = 10.0, 2.0

SPLIT = "pro rata to |t_ij| / sum_i |t_ij| of each asset's pooled trade"

Mapper = Callable[[Callable, list], list]


def serial_map(fn: Callable, items: list) -> list:
    """The default mapper: ``[fn(item) for item in items]`` in this process."""
    return [fn(item) for item in items]


def _by_asset(values, what: str) -> pd.Series | None:
    """A read-only float Series by asset id, each value checked finite (caps may be inf)."""
    if values is None:
        return None
    if not isinstance(values, Mapping | pd.Series):
        raise InputError(f"PooledLimits {what} must map asset ids to numbers, got {values!r}")
    out = {}
    for asset, v in dict(values.items()).items():
        try:
            x = float(v)
        except (TypeError, ValueError):
            x = math.nan
        bad = math.isnan(x) or x < 0 or (what == "impact" and math.isinf(x))
        if bad or isinstance(v, bool):
            kind = "a non-negative number (inf: no cap)" if what == "cap" else "finite, >= 0"
            raise InputError(
                f"PooledLimits {what} for asset {asset!r} must be {kind}, got {v!r}; "
                f"fix the {what} of {asset!r}"
            )
        out[str(asset)] = x
    return read_only(pd.Series(out, dtype=float))


@dataclass(frozen=True, eq=False)
class PooledLimits:
    """Per-asset limits and market impact on the trade pooled across accounts.

    Parameters
    ----------
    cap : mapping or pandas.Series asset -> float, optional
        Most the pooled trade may be (currency, >= 0; ``inf`` or absent: no cap).
    kind : {"gross", "net"}
        What is pooled: ``sum_i |t_ij|`` (gross) or ``|sum_i t_ij|`` (net); the
        cap and the impact apply to it.
    impact : mapping or pandas.Series asset -> float, optional
        Impact coefficient: the pooled trade ``Q_j`` costs ``impact_j |Q_j|^1.5``
        (currency), as :class:`~optimizer.costs.CostModel`'s resolved impact.

    Raises
    ------
    InputError
        NaN, a negative cap, a negative or infinite impact (naming the asset),
        or an unknown ``kind``.
    """

    cap: pd.Series | None = None
    kind: str = "gross"
    impact: pd.Series | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("gross", "net"):
            raise InputError(f"PooledLimits kind must be 'gross' or 'net', got {self.kind!r}")
        object.__setattr__(self, "cap", _by_asset(self.cap, "cap"))
        object.__setattr__(self, "impact", _by_asset(self.impact, "impact"))

    @classmethod
    def from_adv(
        cls,
        adv,
        *,
        cap_adv: float | None = None,
        kind: str = "gross",
        impact: float = 0.0,
        daily_volatility=None,
    ) -> PooledLimits:
        """Caps as a fraction of the average daily value, impact as in ``CostModel``.

        Parameters
        ----------
        adv : mapping asset -> float
            Average daily traded value (currency, > 0).
        cap_adv : float, optional
            Cap each pooled trade at this fraction of ``adv`` (0.10: 10%).
        kind : {"gross", "net"}
        impact : float
            ``k`` of ``k sigma_j |Q_j|^1.5 / sqrt(adv_j)`` (needs ``daily_volatility``).
        daily_volatility : mapping asset -> float, optional
            Daily return volatility (decimal).
        """
        a = _by_asset(adv, "adv")
        if a is None or (a <= 0).any() or np.isinf(a).any():
            raise InputError("PooledLimits.from_adv needs a positive, finite adv for every asset")
        cap = None if cap_adv is None else a * float(cap_adv)
        coef = None
        if impact:
            if daily_volatility is None:
                raise InputError("PooledLimits.from_adv impact= needs daily_volatility=")
            sigma = _by_asset(daily_volatility, "daily_volatility").reindex(a.index)
            if sigma.isna().any():
                raise InputError(
                    "PooledLimits.from_adv daily_volatility is missing for "
                    + ", ".join(sigma.index[sigma.isna()])
                )
            coef = float(impact) * sigma / np.sqrt(a)
        return cls(cap=cap, kind=kind, impact=coef)

    def vectors(self, assets: pd.Index) -> tuple[np.ndarray, np.ndarray]:
        """``(cap, impact)`` in ``assets`` order, shape (n,) each (inf / 0 where not given).

        Raises
        ------
        InputError
            The limits name an asset the books do not have.
        """
        out = []
        for what, fill in (("cap", math.inf), ("impact", 0.0)):
            s = getattr(self, what)
            if s is None:
                out.append(np.full(len(assets), fill))
                continue
            extra = s.index.difference(assets)
            if len(extra):
                raise InputError(
                    f"PooledLimits {what} names unknown asset {extra[0]!r}; "
                    f"use one of the books' assets ({', '.join(map(str, assets[:5]))}, ...)"
                )
            out.append(s.reindex(assets, fill_value=fill).to_numpy(dtype=float))
        return out[0], out[1]


@dataclass(frozen=True, eq=False)
class PooledOutcome:
    """The answer of :func:`pooled_rebalance`.

    Attributes
    ----------
    plans : dict
        Account id -> :class:`~optimizer.trades.RebalancePlan` (final, verified).
    pooled : pandas.DataFrame
        By asset: ``net`` and ``gross`` pooled trade (currency), ``cap``, ``impact``
        (coefficient) and ``impact_cost`` (currency) of the pooled trade.
    shares : pandas.DataFrame
        Account x asset: each account's share of the pooled impact cost
        (currency); each column sums to that asset's ``impact_cost``.
    iterations : int
        Iterations of the price search and ADMM, one reduction each (0 without
        coupling); the books are mapped ``iterations`` times (the start and one
        map after every reduction but the last, which converged), then once more
        for the final step.
    residuals : pandas.DataFrame
        By iteration: ``primal`` (the pooled trade against what the desk
        supplies at the prices, or ADMM's pooled step, relative to the cap or the
        pooled trade), ``dual`` (the price search: the change of the prices;
        ADMM: the change of the anchors; price units) and ``rho`` (0 in the search).
    method : str
        ``"dual"`` (the price search converged), ``"admm"`` (ADMM, from the start
        or after the search) or ``"separable"`` (no pooled limit: every account alone).
    split : str
        How the pooled impact was split (:data:`SPLIT`).
    objective : float
        The total: every account's own objective plus the pooled impact (currency).
    failed : dict
        Account id -> the error that kept it out (it trades nothing, no plan).
    kind : str
        ``"gross"`` or ``"net"``.
    """

    plans: dict
    pooled: pd.DataFrame
    shares: pd.DataFrame
    iterations: int
    residuals: pd.DataFrame
    method: str
    split: str = SPLIT
    objective: float = math.nan
    failed: dict = field(default_factory=dict)
    kind: str = "gross"


def _step(item: tuple[AccountBook, Signals]) -> BookStep:
    """One book's step (a top-level function: the mapper may pickle it)."""
    book, sig = item
    return book.step(sig)


def _prox(m: np.ndarray, w: float, impact: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """``argmin_S impact |S|^1.5 + (S - m)^2 / (2 w)`` subject to ``|S| <= cap``, per asset.

    With ``r = |S|`` and ``s = sqrt(r)``: ``1.5 impact s + (s^2 - |m|) / w = 0``,
    a quadratic in ``s``; then the cap clips ``r`` (exact in one dimension).
    """
    a = 1.5 * impact * w
    s = (-a + np.sqrt(a * a + 4.0 * np.abs(m))) / 2.0
    r = np.minimum(s * s, cap)
    return np.sign(m) * r


def _check_books(books: Sequence[AccountBook]) -> pd.Index:
    if not books:
        raise InputError("pooled_rebalance needs at least one AccountBook")
    seen: dict[str, str] = {}
    assets = None
    for b in books:
        if not isinstance(b, AccountBook):
            raise InputError(f"pooled_rebalance takes AccountBook objects, got {type(b).__name__}")
        if assets is None:
            assets = b.rebalancer.assets
        elif not b.rebalancer.assets.equals(assets):
            raise InputError(
                f"{b.name}: its rebalancer's assets differ from the first book's; "
                "give every book the same assets in the same order"
            )
        for a in b.accounts:
            if a in seen:
                raise InputError(
                    f"account {a!r} is in {seen[a]} and in {b.name}; give each account once"
                )
            seen[a] = b.name
    return assets


def pooled_rebalance(
    books: Sequence[AccountBook],
    limits: PooledLimits,
    *,
    mapper: Mapper | None = None,
    tol: float | None = None,
    max_iter: int = 400,
    rho: float | None = None,
    method: str = "dual",
) -> PooledOutcome:
    """Rebalance every account at once under limits and impact on the pooled trade.

    Parameters
    ----------
    books : sequence of AccountBook
        The accounts, one book per :class:`Rebalancer` structure (same assets).
    limits : PooledLimits
        Caps and impact on the pooled trade per asset.
    mapper : callable, optional
        ``mapper(fn, items) -> list``: ``[fn(i) for i in items]``, the results in the
        items' order, computed anywhere (default: serially here; ``fn`` and the items
        pickle); each iteration is one map over the books and one reduction here.
    tol : float, optional
        Stop when the relative primal residual (and, for ADMM, the dual residual) is
        below it. Default: :data:`~optimizer.rebalance.pooled_prices.DUAL_TOL` for the
        price search (the feasibility step makes the caps exact, and the objective's
        error is of the order of the residual's square), 1e-5 for ADMM.
    max_iter : int
        Most iterations (reductions) of both methods; the feasibility step follows either way.
    rho : float, optional
        Initial proximal weight of ADMM (default: the accounts' own curvature, ``2 lambda``
        times the median variance).
    method : {"dual", "admm"}
        ``"dual"``: search the prices of the coupled assets
        (:mod:`optimizer.rebalance.pooled_prices`), and go on by ADMM from there if that
        has not converged after :data:`~optimizer.rebalance.pooled_prices.DUAL_MAX`
        reductions; ``"admm"``: ADMM from the start.

    Returns
    -------
    PooledOutcome

    Raises
    ------
    InputError
        No books, books of different assets, an account in two books, limits
        naming an unknown asset, fixed costs or minimum trades under pooled
        limits, an unknown ``method``.
    InfeasibleError
        Liquidations alone exceed a pooled cap (naming the asset).
    SolverError
        The final trades break a pooled cap (naming the asset).
    """
    if not isinstance(limits, PooledLimits):
        raise InputError("limits must be a PooledLimits")
    if method not in ("dual", "admm"):
        raise InputError(f"pooled_rebalance method must be 'dual' or 'admm', got {method!r}")
    books = list(books)
    assets = _check_books(books)
    cap, impact = limits.vectors(assets)
    coupled = np.flatnonzero(np.isfinite(cap) | (impact > 0))
    mapper = mapper or serial_map
    kind = limits.kind
    cols = tuple(int(j) for j in coupled)
    for b in books if cols else ():
        rb = b.rebalancer
        if rb.rc.fixed > 0 or rb.min_trade > 0:
            raise InputError(
                f"{b.name}: pooled limits need convex costs, but its rebalancer has "
                f"fixed={rb.rc.fixed:g} a ticket and min_trade={rb.min_trade:g}: set CostModel "
                "fixed=0 and min_trade=0 for the accounts under pooled limits"
            )
    if not cols:
        steps = mapper(_step, [(b, Signals(kind, (), final=True)) for b in books])
        empty = pd.DataFrame(columns=["primal", "dual", "rho"], dtype=float)
        return _outcome(books, steps, limits, assets, cap, impact, 0, empty, "separable")
    steps = mapper(_step, [(b, Signals(kind, cols)) for b in books])
    skip = [frozenset(s.failed) for s in steps]
    first_failed = [s.failed for s in steps]
    x = [s.pooled for s in steps]
    v1 = [s.value for s in steps]
    active = [~s.fixed & (s.value > 0) for s in steps]
    for a, sk in zip(active, skip, strict=True):
        a[list(sk)] = False
    c_cap, c_imp = cap[coupled], impact[coupled]
    const = sum((s.pooled[s.fixed].sum(axis=0) for s in steps), np.zeros(len(cols)))
    over = np.flatnonzero(np.abs(const) > c_cap * (1 + POOLED_TOL))
    if over.size:
        j = coupled[over[0]]
        raise InfeasibleError(
            f"the liquidations alone trade {abs(const[over[0]]):,.2f} of {assets[j]}, above its "
            f"pooled cap {cap[j]:,.2f}: raise the cap of {assets[j]} or withdraw less",
            [{"name": "pooled limit", "label": f"pooled limit [{assets[j]}]"}],
        )
    total_v1 = float(sum(v[a].sum() for v, a in zip(v1, active, strict=True)))

    def reduce(x: list) -> tuple[np.ndarray, np.ndarray]:
        """The pooled trade (currency, (c,)) and the residuals' scale: the cap, the pooled
        trade or the accounts' gross trade in the asset, at least 1."""
        sx = sum((xi[a].sum(axis=0) for xi, a in zip(x, active, strict=True)), const.copy())
        gross = sum((np.abs(xi[a]).sum(axis=0) for xi, a in zip(x, active, strict=True)), 0.0)
        fin = np.where(np.isfinite(c_cap), c_cap, 0.0)
        return sx, np.maximum.reduce([fin, gross + np.abs(const), np.ones(len(cols))])

    def solve_at(y: np.ndarray, rho: float = 0.0, z: list | None = None) -> list:
        """Every book's pooled quantities at prices ``y`` (and the proximal anchors ``z``)."""
        sigs = [
            Signals(kind, cols, price=y, rho=rho, anchor=None if z is None else z[i], skip=sk)
            for i, sk in enumerate(skip)
        ]
        return [s.pooled for s in mapper(_step, list(zip(books, sigs, strict=True)))]

    tol_of = {
        "dual": DUAL_TOL if tol is None else float(tol),
        "admm": 1e-5 if tol is None else float(tol),
    }
    y, s_new = np.zeros(len(cols)), np.clip(const, -c_cap, c_cap)
    rows, it, done = [], 0, total_v1 == 0  # nothing to coordinate without active accounts
    if method == "dual" and not done:
        search = PriceSearch(c_cap, c_imp, kind, own_slope(books, coupled, v1, active))
        while it < min(max_iter, DUAL_MAX):
            it += 1
            sx, scale = reduce(x)
            primal = float(np.max(np.abs(search.residual(y, sx)) / scale))
            done = primal <= tol_of["dual"]
            y_new = y if done else search.next(y, sx)
            rows.append((primal, float(np.max(np.abs(y_new - y))), 0.0))
            if done:
                break
            y = y_new
            x = solve_at(y)
        s_new = supply(y, sx, c_cap, 1.5 * c_imp)  # the desk's pooled trade at the prices
    if rho is None:
        rb = books[0].rebalancer
        rho = max(2.0 * rb.lam * float(np.median(_variances(rb.risk))), 1e-6)
    rho = float(rho)
    first, z = it, None
    if not done and it < max_iter:  # ADMM: from the start, or from where the search stopped
        method, z = "admm", [xi.copy() for xi in x]
    while not done and it < max_iter:
        it += 1
        w = total_v1 / rho  # sum_i 1 / rho_i
        sx, scale = reduce(x)
        m = sx + w * y
        s_new = _prox(m, w, c_imp, c_cap)
        y_new = (m - s_new) / w
        primal = float(np.max(np.abs(sx - s_new) / scale))
        z_new = [
            np.where(a[:, None], xi + np.outer(vi, y - y_new) / rho, 0.0)
            for xi, vi, a in zip(x, v1, active, strict=True)
        ]
        dual = max(
            float(np.max(np.abs(zn - zo)[a] * rho / vi[a][:, None], initial=0.0))
            for zn, zo, vi, a in zip(z_new, z, v1, active, strict=True)
        )
        rows.append((primal, dual, rho))
        y, z = y_new, z_new
        done = primal <= tol_of["admm"] and dual <= tol_of["admm"] and it > first + 1
        if done or it == max_iter:
            break
        if primal > MU * dual:
            rho *= TAU
        elif dual > MU * primal:
            rho /= TAU
        x = solve_at(y, rho, z)
    if not done:
        warnings.warn(
            f"pooled_rebalance stopped at max_iter={max_iter} with the residuals "
            f"{rows[-1][0]:.1e} (primal) and {rows[-1][1]:.1e} (dual), above "
            f"tol={tol_of[method]:g}: the pooled caps hold, but the answer may be off the joint "
            "optimum; raise max_iter or tol",
            UserWarning,
            stacklevel=2,
        )
    lo, hi = _shares_of_caps(x, active, v1, const, c_cap, kind)
    # the caps' duals leave the price (the bounds hold the caps now, active with their own
    # multipliers): a bound left at the trade with no multiplier is degenerate, and an
    # interior-point solver stops well inside it
    marginal = 1.5 * c_imp * np.sqrt(np.abs(s_new)) * np.sign(s_new)
    fin_rho = 0.0 if z is None else rho
    sigs = [
        Signals(
            kind,
            cols,
            price=marginal,
            rho=fin_rho,
            anchor=None if z is None else z[i],
            lo=lo[i],
            hi=hi[i],
            skip=sk,
            final=True,
        )
        for i, sk in enumerate(skip)
    ]
    steps = mapper(_step, list(zip(books, sigs, strict=True)))
    for s, f in zip(steps, first_failed, strict=True):
        s.failed.update(f)
    res = pd.DataFrame(rows, columns=["primal", "dual", "rho"], dtype=float)
    res.index = pd.RangeIndex(1, len(rows) + 1, name="iteration")
    return _outcome(books, steps, limits, assets, cap, impact, it, res, method)


def _shares_of_caps(x, active, v1, const, cap, kind):
    """Each account's bounds on its pooled quantities (currency), summing to the caps.

    Net: ``hi_ij = x_ij + (cap_j - Q_j) w_ij`` and ``lo_ij = x_ij - (cap_j + Q_j) w_ij``
    with ``w_ij = |x_ij| / sum_i |x_ij|`` (``V1`` shares when nobody trades), so
    ``sum_i hi_ij = cap_j - c_j`` and ``sum_i lo_ij = -cap_j - c_j``. Gross:
    ``hi_ij = x_ij (cap_j - c_j) / sum_i x_ij``.
    """
    cap = cap * (1 - MARGIN)
    finite = np.isfinite(cap)
    ab = sum((np.abs(xi[a]).sum(axis=0) for xi, a in zip(x, active, strict=True)), 0.0)
    tot = sum((xi[a].sum(axis=0) for xi, a in zip(x, active, strict=True)), 0.0) + const
    vsum = float(sum(vi[a].sum() for vi, a in zip(v1, active, strict=True)))
    lo, hi = [], []
    for xi, vi, a in zip(x, v1, active, strict=True):
        share = np.where(
            ab > 0, np.abs(xi) / np.where(ab > 0, ab, 1.0), vi[:, None] / max(vsum, 1e-300)
        )
        share = np.where(a[:, None], share, 0.0)
        if kind == "gross":
            room = np.where(finite, cap - const, 0.0)
            h = np.where(ab > 0, xi * room / np.where(ab > 0, ab, 1.0), share * room)
            lo.append(np.full_like(xi, -np.inf))
            hi.append(np.where(finite, h, np.inf))
        else:
            up, down = np.where(finite, cap - tot, 0.0), np.where(finite, cap + tot, 0.0)
            hi.append(np.where(finite, xi + share * up, np.inf))
            lo.append(np.where(finite, xi - share * down, -np.inf))
    return lo, hi


def _outcome(books, steps, limits, assets, cap, impact, iterations, res, method) -> PooledOutcome:
    """Gather the final plans, the pooled table, the shares, and verify the pooled caps."""
    plans, failed, trades, ids = {}, {}, [], []
    objective = 0.0
    lots = False
    for book, s in zip(books, steps, strict=True):
        for r, exc in s.failed.items():
            failed[book.accounts[r]] = exc
        for r, plan in s.plans.items():
            plans[book.accounts[r]] = plan
            trades.append(s.trades[r])
            ids.append(book.accounts[r])
            objective += float(s.objective[r])
        lots = lots or book.rebalancer.lot is not None
    t = np.array(trades).reshape(len(ids), len(assets))
    net, gross = t.sum(axis=0), np.abs(t).sum(axis=0)
    q = gross if limits.kind == "gross" else np.abs(net)
    cost = impact * q * np.sqrt(q)
    objective += float(cost.sum())
    denom = np.where(gross > 0, gross, 1.0)
    shares = pd.DataFrame(
        np.abs(t) / denom * cost, index=pd.Index(ids, name="account"), columns=assets
    )
    pooled = pd.DataFrame(
        {"net": net, "gross": gross, "cap": cap, "impact": impact, "impact_cost": cost},
        index=pd.Index(assets, name="asset"),
    )
    breach = np.flatnonzero(
        q > cap + POOLED_TOL * np.maximum(np.where(np.isfinite(cap), cap, 1), 1)
    )
    if breach.size:
        j = breach[0]
        msg = (
            f"the pooled {limits.kind} trade of {assets[j]} is {q[j]:,.2f}, above its cap "
            f"{cap[j]:,.2f}"
        )
        if not lots:
            raise SolverError(msg + ": the feasibility step failed; report this with the inputs")
        warnings.warn(msg + " after rounding to whole lots", UserWarning, stacklevel=3)
    return PooledOutcome(
        plans, pooled, shares, iterations, res, method, SPLIT, objective, failed, limits.kind
    )


__all__ = ["POOLED_TOL", "AccountBook", "PooledLimits", "PooledOutcome", "pooled_rebalance"]
