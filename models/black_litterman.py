"""Black-Litterman: blend a prior of expected returns with investor views.

The prior ``pi`` (n) is usually the equilibrium return implied by market
weights, ``pi = rf + delta C w_mkt`` (``models.expected_returns.equilibrium``).
Each view ``k`` says that a portfolio ``p_k`` of the assets returns ``q_k``,
with an uncertainty ``omega_k``; stacked, ``P`` (k x n), ``Q`` (k) and
``Omega`` (k x k). The posterior (Black and Litterman 1992; He and
Litterman 1999) is

    mu_post  = pi + tau C P' (P tau C P' + Omega)^-1 (Q - P pi)
    M        = tau C - tau C P' (P tau C P' + Omega)^-1 P tau C
    cov_post = C + M

This form (rather than the "precision" form with ``Omega^-1``) allows
certain views, ``omega_k = 0``, which the posterior reproduces exactly.
Everything is computed by Cholesky solves of the k x k system; no matrix is
inverted explicitly.

Views are :class:`View` objects: ``View.absolute("AAPL", 0.10)``,
``View.relative("MSFT", "JPM", 0.02)``, or any ``View(picks=..., value=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from optimizer import validation
from optimizer.errors import InputError
from optimizer.riskmodel import FactorCovariance
from optimizer.universe import Universe

__all__ = ["View", "black_litterman", "views_matrix"]

#: The view system ``P tau C P' + Omega`` is singular when its smallest
#: eigenvalue is below this fraction of its largest.
_SINGULAR_RCOND = 1e-12


def _pct(value: float) -> str:
    """``0.1 -> '10.0%'``, ``0.0125 -> '1.25%'``: the fewest decimals (at least one) that round-trip."""
    for decimals in range(1, 9):
        text = f"{value * 100:.{decimals}f}"
        if abs(float(text) / 100 - value) <= 1e-12 * max(1.0, abs(value)):
            return f"{text}%"
    return f"{value * 100:.10g}%"


def _derive_name(picks: Mapping[Any, float], value: float) -> str:
    terms = []
    for key, coef in picks.items():
        if coef == 0:
            continue
        sign = "-" if coef < 0 else "+"
        size = abs(coef)
        term = str(key) if size == 1 else f"{size:g}*{key}"
        if not terms:
            terms.append(term if sign == "+" else f"-{term}")
        else:
            terms.append(f"{sign} {term}")
    return f"{' '.join(terms)} = {_pct(value)}"


@dataclass(frozen=True)
class View:
    """An investor view: the portfolio ``picks`` will return ``value``.

    Parameters
    ----------
    picks : mapping of str to float
        The view portfolio: a coefficient per asset id (or per tag, see
        :func:`black_litterman`). ``{"AAPL": 1}`` is an absolute view on
        AAPL; ``{"MSFT": 1, "JPM": -1}`` says MSFT outperforms JPM. Must be
        non-empty, finite and not all zero.
    value : float
        The view's expected return ``q`` (annualized decimal: 0.02 is 2%).
    confidence : float, optional
        Confidence in [0, 1] (Idzorek 2005): 1 makes the view certain (the
        posterior reproduces it), 0 ignores it, 0.5 gives the He-Litterman
        uncertainty. None (default) uses the He-Litterman uncertainty
        ``p tau C p'``.
    name : str, optional
        Label used in ``P``'s rows and in every message. Derived when None,
        e.g. ``"AAPL = 10.0%"``, ``"MSFT - JPM = 2.0%"``, ``"0.5*A + 0.5*B = 3.0%"``.

    Raises
    ------
    InputError
        Empty, non-numeric, non-finite or all-zero picks; non-finite value;
        confidence outside [0, 1]; empty name. The message names the view.

    Examples
    --------
    >>> View.relative("MSFT", "JPM", 0.02).name
    'MSFT - JPM = 2.0%'
    >>> View.absolute("AAPL", 0.10, confidence=0.6).picks["AAPL"]
    1.0
    """

    picks: Mapping[str, float] = field(hash=False)
    value: float
    confidence: float | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        label = repr(self.name) if self.name is not None else f"with picks {self.picks!r}"
        if not isinstance(self.picks, Mapping):
            raise InputError(
                f"view {label}: picks must be a mapping of asset (or tag) to coefficient, "
                f"got {type(self.picks).__name__}"
            )
        if not self.picks:
            raise InputError(f"view {label}: picks is empty; name at least one asset")
        clean: dict[Any, float] = {}
        for key, coef in self.picks.items():
            try:
                c = float(coef)
            except (TypeError, ValueError):
                raise InputError(
                    f"view {label}: coefficient of {key!r} is not a number: {coef!r}"
                ) from None
            if not math.isfinite(c):
                raise InputError(f"view {label}: coefficient of {key!r} is not finite: {coef!r}")
            clean[key] = c
        if all(c == 0 for c in clean.values()):
            raise InputError(f"view {label}: every pick coefficient is zero")
        try:
            value = float(self.value)
        except (TypeError, ValueError):
            raise InputError(f"view {label}: value is not a number: {self.value!r}") from None
        if not math.isfinite(value):
            raise InputError(f"view {label}: value is not finite: {self.value!r}")
        confidence = self.confidence
        if confidence is not None:
            try:
                confidence = float(confidence)
            except (TypeError, ValueError):
                raise InputError(
                    f"view {label}: confidence must be a number in [0, 1] or None, "
                    f"got {self.confidence!r}"
                ) from None
            if not (0.0 <= confidence <= 1.0):
                raise InputError(
                    f"view {label}: confidence must be in [0, 1] or None, got {self.confidence!r}"
                )
        name = self.name
        if name is None:
            name = _derive_name(clean, value)
        elif not isinstance(name, str) or not name:
            raise InputError(f"view name must be a non-empty string, got {name!r}")
        object.__setattr__(self, "picks", MappingProxyType(clean))
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "name", name)

    def __reduce__(self) -> tuple[type[View], tuple[Any, ...]]:
        # the read-only picks mapping does not pickle: rebuild from a plain dict
        return (type(self), (dict(self.picks), self.value, self.confidence, self.name))

    @classmethod
    def absolute(
        cls, asset: str, value: float, *, confidence: float | None = None, name: str | None = None
    ) -> View:
        """A view that ``asset`` (or a tag's equal-weight basket) returns ``value``."""
        return cls({asset: 1.0}, value, confidence=confidence, name=name)

    @classmethod
    def relative(
        cls,
        long: str,
        short: str,
        value: float,
        *,
        confidence: float | None = None,
        name: str | None = None,
    ) -> View:
        """A view that ``long`` outperforms ``short`` by ``value`` (picks ``{long: 1, short: -1}``)."""
        if long == short:
            raise InputError(f"relative view on {long!r}: long and short are the same asset")
        return cls({long: 1.0, short: -1.0}, value, confidence=confidence, name=name)


def _check_views(views: Sequence[View]) -> list[View]:
    if isinstance(views, View) or not isinstance(views, Sequence) or isinstance(views, str):
        raise InputError(
            f"views must be a list of View objects, got {type(views).__name__}"
            + (" (wrap a single view in a list)" if isinstance(views, View) else "")
        )
    out = list(views)
    for i, v in enumerate(out):
        if not isinstance(v, View):
            raise InputError(f"views[{i}] is not a View: {v!r}")
    names = [v.name for v in out]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise InputError(
            "views have duplicate names: "
            + ", ".join(map(repr, dups))
            + "; give each view a distinct name="
        )
    return out


def views_matrix(
    views: Sequence[View], assets: Sequence[str] | pd.Index, *, universe: Universe | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """The pick matrix ``P`` and the view returns ``Q`` of a list of views.

    Parameters
    ----------
    views : sequence of View
        The views, with distinct names.
    assets : sequence of str or pandas.Index, shape (n,)
        Asset ids, the columns of ``P``.
    universe : Universe, optional
        Resolves tags: a pick key that is not an asset but a tag of the
        universe spreads its coefficient equally over the tag's members
        (``{"equity": 1}`` over 4 equity assets gives 0.25 each). An asset id
        takes precedence over a tag of the same name. Coefficients that land
        on the same asset add up.

    Returns
    -------
    P : pandas.DataFrame, shape (k, n)
        One row per view (labelled by view name), one column per asset.
    Q : pandas.Series, shape (k,)
        The views' values (annualized decimals), labelled by view name.

    Raises
    ------
    InputError
        Views not a list of View, duplicate view names, duplicate assets, a
        pick naming neither an asset nor (with ``universe``) a tag, a tag
        whose members are not all in ``assets``, or a view whose net
        coefficients are all zero. The message names the view.
    """
    checked = _check_views(views)
    labels = pd.Index(assets)
    validation.labels(labels, what="assets")
    if universe is not None and not isinstance(universe, Universe):
        raise InputError(f"universe must be a Universe, got {type(universe).__name__}")
    position = {a: i for i, a in enumerate(labels)}
    rows = np.zeros((len(checked), len(labels)))
    for r, view in enumerate(checked):
        for key, coef in view.picks.items():
            if key in position:
                rows[r, position[key]] += coef
                continue
            close = get_close_matches(str(key), [str(a) for a in labels], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if universe is None:
                raise InputError(
                    f"view {view.name!r} names unknown asset {key!r}{hint}; "
                    "to name a tag, pass universe="
                )
            try:
                members = universe.members(key)
            except InputError as exc:
                raise InputError(
                    f"view {view.name!r} names {key!r}, which is neither an asset nor a tag "
                    f"of the universe{hint}: {exc}"
                ) from None
            outside = [m for m in members if m not in position]
            if outside:
                raise InputError(
                    f"view {view.name!r}: tag {key!r} includes assets that are not in the "
                    f"covariance: {', '.join(map(str, outside))}"
                )
            for m in members:
                rows[r, position[m]] += coef / len(members)
        scale = max(abs(c) for c in view.picks.values())
        if np.all(np.abs(rows[r]) <= 1e-12 * scale):
            raise InputError(
                f"view {view.name!r} has no net exposure: its coefficients cancel out "
                "once tags are spread over their members"
            )
    names = pd.Index([v.name for v in checked], dtype=object, name="view")
    p = pd.DataFrame(rows, index=names, columns=labels.copy())
    q = pd.Series([v.value for v in checked], index=names.copy(), dtype=float, name="value")
    return p, q


def _omega(
    views: list[View],
    omega: pd.DataFrame | pd.Series | np.ndarray | Sequence[float] | None,
    p: np.ndarray,
    tau_c: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The view uncertainty ``Omega`` (k x k) and a mask of the views to keep."""
    k = len(views)
    names = [v.name for v in views]
    if omega is None:
        base = np.einsum("ij,jk,ik->i", p, tau_c, p)  # diag(P tau C P')
        var = base.copy()
        keep = np.ones(k, dtype=bool)
        for i, v in enumerate(views):
            if v.confidence is None:
                continue
            if v.confidence == 0.0:
                keep[i] = False
            else:  # Idzorek via Walters (2014): omega = (1 - c) / c * p tau C p'
                var[i] = (1.0 - v.confidence) / v.confidence * base[i]
        keep &= np.isfinite(var)  # a confidence so small that omega overflows: dropped too
        return np.diag(np.where(keep, var, 0.0)), keep
    with_conf = [v.name for v in views if v.confidence is not None]
    if with_conf:
        raise InputError(
            "give either omega= or view confidences, not both; views with a confidence: "
            + ", ".join(map(repr, with_conf))
        )
    want = pd.Index(names)
    if isinstance(omega, pd.DataFrame):
        _check_view_labels(omega.index, want, "omega rows")
        _check_view_labels(omega.columns, want, "omega columns")
        try:
            mat = omega.loc[want, want].to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise InputError("omega must be numeric") from None
        diagonal = False
    elif isinstance(omega, pd.Series):
        _check_view_labels(omega.index, want, "omega")
        try:
            vec = omega.loc[want].to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise InputError("omega must be numeric") from None
        diagonal = True
    else:
        try:
            arr = np.asarray(omega, dtype=float)
        except (TypeError, ValueError):
            raise InputError(
                "omega must be a k x k matrix or k variances (numbers), one per view"
            ) from None
        if arr.ndim == 1:
            vec, diagonal = arr, True
        elif arr.ndim == 2:
            mat, diagonal = arr, False
        else:
            raise InputError(f"omega must have 1 or 2 dimensions, got {arr.ndim}")
    if diagonal:
        if vec.shape != (k,):
            raise InputError(f"omega has {vec.size} variances for {k} views")
        if np.isnan(vec).any() or (vec < 0).any():
            bad = [n for n, x in zip(names, vec, strict=True) if not x >= 0]
            raise InputError(
                f"omega variances must be >= 0 (inf drops a view); bad for views: "
                f"{', '.join(map(repr, bad))}"
            )
        keep = ~np.isinf(vec)
        return np.diag(np.where(keep, vec, 0.0)), keep
    if mat.shape != (k, k):
        raise InputError(f"omega must be {k} x {k} (one row and column per view), got {mat.shape}")
    if not np.isfinite(mat).all():
        raise InputError(
            "omega matrix has NaN or inf values (use a Series of variances to drop a view)"
        )
    scale = max(float(np.abs(mat).max()), np.finfo(float).tiny)
    if np.abs(mat - mat.T).max() > 1e-8 * scale:
        raise InputError("omega is not symmetric")
    mat = (mat + mat.T) / 2
    eig = np.linalg.eigvalsh(mat) if k else np.zeros(0)
    if k and eig[0] < -1e-10 * scale:
        raise InputError(f"omega is not positive semidefinite (smallest eigenvalue {eig[0]:.3g})")
    return mat, np.ones(k, dtype=bool)


def _check_view_labels(got: pd.Index, want: pd.Index, what: str) -> None:
    got = pd.Index(got)
    missing, extra = want.difference(got, sort=False), got.difference(want, sort=False)
    dups = got[got.duplicated()].unique()
    if len(missing) or len(extra) or len(dups):
        raise InputError(
            f"{what} must be labelled by the view names: missing views: "
            f"{', '.join(map(repr, missing)) or '-'}; unknown views: "
            f"{', '.join(map(repr, extra)) or '-'}"
            + (f"; duplicated: {', '.join(map(repr, dups))}" if len(dups) else "")
            + " (pass a numpy array or a list to go by position)"
        )


def _solve_view_system(
    a: np.ndarray, rhs: np.ndarray, names: list[str], gross: np.ndarray
) -> np.ndarray:
    """Solve ``A X = rhs`` for the view system ``A = P tau C P' + Omega`` (k x k, PSD).

    ``A`` is first scaled to unit diagonal, ``S = D A D`` with
    ``D = diag(A)^-1/2``, so that views of very different uncertainty do not
    pass for a singular system; ``S`` is singular (smallest eigenvalue below
    ``_SINGULAR_RCOND`` times its largest) exactly when some views are
    certain and contradictory or linearly dependent. Then ``X = D S^-1 D rhs``
    by a Cholesky solve. ``gross`` (k) holds ``|p_k| tau |C| |p_k|' + omega_k``:
    a diagonal element of ``A`` below ``_SINGULAR_RCOND`` times it is zero up
    to rounding. Raises an InputError naming the views at fault.
    """
    diag = np.diag(a).copy()
    riskless = diag <= _SINGULAR_RCOND * gross
    if riskless.any():
        culprits = [n for n, hit in zip(names, riskless, strict=True) if hit]
        raise InputError(
            "views with zero uncertainty on a portfolio without prior variance "
            "(p tau C p' + omega = 0): "
            + ", ".join(map(repr, culprits))
            + "; give them an uncertainty or drop them"
        )
    d = 1.0 / np.sqrt(diag)
    scaled = a * d[:, None] * d[None, :]
    eig, vec = np.linalg.eigh(scaled)
    null = eig <= _SINGULAR_RCOND * float(eig[-1])
    if not null.any():
        try:
            factor = cho_factor(scaled, lower=True)
        except LinAlgError:
            null = eig <= eig[0]
        else:
            return d[:, None] * cho_solve(factor, d[:, None] * rhs)
    involved = np.abs(vec[:, null]).max(axis=1) > 1e-8
    culprits = [n for n, hit in zip(names, involved, strict=True) if hit]
    raise InputError(
        "the views are contradictory or linearly dependent with zero uncertainty (the system "
        "P tau C P' + Omega is singular): "
        + ", ".join(map(repr, culprits))
        + "; lower their confidence, give them an uncertainty, or drop one of them"
    )


def black_litterman(
    prior_mu: pd.Series,
    cov: pd.DataFrame | FactorCovariance,
    *,
    views: Sequence[View],
    tau: float = 0.05,
    omega: pd.DataFrame | pd.Series | np.ndarray | Sequence[float] | None = None,
    universe: Universe | None = None,
) -> tuple[pd.Series, pd.DataFrame]:
    """Posterior expected returns and covariance of Black and Litterman.

    Parameters
    ----------
    prior_mu : pandas.Series, shape (n,)
        Prior expected returns ``pi`` (annualized decimals), labelled by
        asset; typically the market-implied equilibrium returns.
    cov : pandas.DataFrame, shape (n, n), or FactorCovariance
        Covariance ``C`` of asset returns (annualized), labelled by asset on
        both axes; aligned with ``prior_mu`` by label. Must be positive semidefinite.
    views : sequence of View
        The views, with distinct names. Empty: the prior is returned.
    tau : float, default 0.05
        Scale of the uncertainty of the prior mean: ``Cov(mu) = tau C``. Positive.
    omega : optional
        Uncertainty of the views (variances of the view returns, annualized).

        * None (default): diagonal, one variance per view.
          A view without confidence gets the He and Litterman (1999) value
          ``omega_k = p_k tau C p_k'`` (the k-th diagonal element of
          ``P tau C P'``). A view with confidence ``c`` gets Idzorek's
          (2005) value in the closed form of Walters (2014),
          ``omega_k = (1 - c) / c * p_k tau C p_k'``: for a single view, the
          posterior moves the fraction ``c`` of the way from the prior to the
          certain-view posterior; ``c = 0.5`` is the He-Litterman value,
          ``c = 1`` makes the view certain (``omega_k = 0``) and ``c = 0``
          drops it (``omega_k`` infinite).
        * a pandas.DataFrame (k x k, labelled by view name on both axes) or
          a numpy array (k x k, in the order of ``views``): a full symmetric
          positive semidefinite ``Omega``.
        * a pandas.Series (labelled by view name) or a sequence (in the order
          of ``views``) of k variances, ``>= 0``: a diagonal ``Omega``; 0 is a
          certain view, ``inf`` drops the view.

        Cannot be combined with views that carry a confidence.
    universe : Universe, optional
        Lets a pick name a tag: its coefficient is spread equally over the
        tag's members (see :func:`views_matrix`).

    Returns
    -------
    post_mu : pandas.Series, shape (n,)
        Posterior expected returns (annualized decimals), labelled and
        ordered like ``prior_mu``:
        ``pi + tau C P' (P tau C P' + Omega)^-1 (Q - P pi)``.
    post_cov : pandas.DataFrame, shape (n, n)
        Covariance of returns under the posterior, ``C + M`` with
        ``M = tau C - tau C P' (P tau C P' + Omega)^-1 P tau C`` the
        posterior covariance of the mean (He and Litterman 1999), labelled
        and ordered like ``prior_mu``; symmetric positive semidefinite, ready
        for mean-variance optimization. With no views (or only dropped ones)
        the mean is the prior exactly and ``post_cov = (1 + tau) C``: the
        estimation uncertainty of the prior mean still adds to the risk.

    Raises
    ------
    InputError
        Malformed or misaligned ``prior_mu`` / ``cov`` (naming the assets),
        ``cov`` not positive semidefinite, ``tau`` not a positive number, a
        malformed view or ``omega``, a pick naming an unknown asset or tag,
        ``omega`` combined with view confidences, or a singular view system:
        contradictory or linearly dependent views with zero uncertainty, or a
        view with zero uncertainty on a portfolio with zero prior variance
        (the message names the views).

    Notes
    -----
    The update is computed in the form that needs ``Omega`` only, never its
    inverse, so certain views are allowed; it is algebraically equal to the
    precision-weighted form
    ``[(tau C)^-1 + P' Omega^-1 P]^-1 [(tau C)^-1 pi + P' Omega^-1 Q]``
    whenever both are defined. With ``A = P tau C P' + Omega`` (k x k), one
    Cholesky factorization of ``A`` (scaled to unit diagonal first, so that
    views of very different uncertainty are not mistaken for a singular
    system) solves for both ``A^-1 (Q - P pi)`` and ``A^-1 P tau C``. Views consistent with the prior (``Q = P pi``) leave
    the mean unchanged but still shrink ``M``.

    References
    ----------
    .. [1] Black, F. and Litterman, R. (1992). Global Portfolio Optimization.
       Financial Analysts Journal 48(5), 28-43.
    .. [2] He, G. and Litterman, R. (1999). The Intuition Behind
       Black-Litterman Model Portfolios. Goldman Sachs Investment Management
       Research.
    .. [3] Idzorek, T. (2005). A Step-by-Step Guide to the Black-Litterman
       Model: Incorporating User-Specified Confidence Levels. Working paper.
    .. [4] Walters, J. (2014). The Black-Litterman Model in Detail. SSRN 1314585.

    Examples
    --------
    >>> post_mu, post_cov = black_litterman(
    ...     pi, cov, views=[View.relative("MSFT", "JPM", 0.02)], tau=0.05
    ... )  # doctest: +SKIP
    """
    if not isinstance(prior_mu, pd.Series):
        raise InputError(
            f"prior_mu must be a pandas Series labelled by asset, got {type(prior_mu).__name__}"
        )
    assets, c = validation.covariance_values(cov)
    pi = validation.vector(prior_mu, assets, what="prior_mu", against="cov")
    labels = prior_mu.index
    if not labels.equals(assets):  # the answer follows prior_mu's order
        perm = assets.get_indexer(labels)
        c, pi = c[np.ix_(perm, perm)], pi[perm]
    t = validation.finite_number(tau, what="tau", positive=True)

    checked = _check_views(views)
    p_frame, q_frame = views_matrix(checked, labels, universe=universe)
    tau_c = t * c
    p, q = p_frame.to_numpy(), q_frame.to_numpy()
    om, keep = _omega(checked, omega, p, tau_c)
    p, q, om = p[keep], q[keep], om[np.ix_(keep, keep)]
    names = [v.name for v, kept in zip(checked, keep, strict=True) if kept]

    if not names:
        post_mu, post_cov = pi.copy(), c + tau_c
    else:
        tau_c_pt = tau_c @ p.T  # n x k
        a = p @ tau_c_pt + om
        a = (a + a.T) / 2
        gross = np.einsum("ij,jk,ik->i", np.abs(p), np.abs(tau_c), np.abs(p)) + np.diag(om)
        sol = _solve_view_system(a, np.column_stack([q - p @ pi, tau_c_pt.T]), names, gross)
        post_mu = pi + tau_c_pt @ sol[:, 0]
        m = tau_c - tau_c_pt @ sol[:, 1:]
        post_cov = c + (m + m.T) / 2
    out_mu = pd.Series(post_mu, index=labels.copy(), name="posterior_mean")
    out_cov = pd.DataFrame(post_cov, index=labels.copy(), columns=labels.copy())
    return out_mu, out_cov
