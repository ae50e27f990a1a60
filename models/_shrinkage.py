"""Numerical kernels behind :mod:`models.covariance` (private).

Everything here works on plain numpy arrays of *periodic* returns and does no
input validation: the public functions in :mod:`models.covariance` validate,
call these kernels, annualize and label the results.

The Ledoit-Wolf kernels never form the ``T x n x n`` array of products
``y_ti y_tj``: the sums the papers define over pairs of assets collapse to
one ``n x n`` product ``Y'Y`` plus ``O(T n)`` vector work, because only the
*totals* over all pairs (pi-hat, rho-hat) enter the shrinkage intensity.
"""

from __future__ import annotations

import numpy as np

_SQRT5 = float(np.sqrt(5.0))


def _intensity(pi: float, rho: float, gamma: float, n_obs: int) -> float:
    """Shrinkage intensity ``max(0, min(1, (pi - rho) / gamma / T))``.

    ``gamma == 0`` means the sample covariance already equals the target, so
    any intensity gives the same estimate; 0 is returned.
    """
    if not gamma > 0.0:
        return 0.0
    kappa = (pi - rho) / gamma
    return float(min(1.0, max(0.0, kappa / n_obs)))


def lw_constant_correlation(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrinkage towards the constant-correlation target.

    Parameters
    ----------
    y : numpy.ndarray, shape (T, n)
        Demeaned periodic returns; every column has positive variance.

    Returns
    -------
    sigma : numpy.ndarray, shape (n, n)
        ``delta * F + (1 - delta) * S`` with ``S = Y'Y / T``.
    delta : float
        Shrinkage intensity in [0, 1].

    Notes
    -----
    With ``s_ij`` the sample covariance (divided by T), ``r_ij`` the sample
    correlations and ``rbar`` their average over the ``n (n - 1)``
    off-diagonal pairs, the target is ``f_ii = s_ii`` and
    ``f_ij = rbar sqrt(s_ii s_jj)``. The paper's estimators are

    * ``pi = sum_ij 1/T sum_t (y_ti y_tj - s_ij)^2``
      ``= 1/T sum_t (sum_i y_ti^2)^2 - sum_ij s_ij^2``;
    * ``rho = sum_i pi_ii + rbar/2 sum_{i != j} (sqrt(s_jj/s_ii) theta_ii,ij
      + sqrt(s_ii/s_jj) theta_jj,ij)`` with
      ``theta_ii,ij = 1/T sum_t (y_ti^2 - s_ii)(y_ti y_tj - s_ij)``; by the
      symmetry of the double sum the bracket equals
      ``2 sum_{i != j} sqrt(s_jj/s_ii) theta_ii,ij``, and the full sum over
      ``(i, j)`` is ``1/T sum_t a_t b_t - sd' S sd`` with
      ``a_t = sum_i y_ti^3 / sd_i`` and ``b_t = sum_j sd_j y_tj``, from which
      the diagonal terms (``theta_ii,ii = pi_ii``) are removed;
    * ``gamma = ||F - S||_F^2``, and ``delta = max(0, min(1, (pi - rho) /
      gamma / T))``.

    References
    ----------
    Ledoit, O. and Wolf, M. (2004). Honey, I shrunk the sample covariance
    matrix. *Journal of Portfolio Management* 30(4), 110-119.
    """
    t, n = y.shape
    s = y.T @ y / t
    var = np.diag(s).copy()
    if n == 1:
        return s, 0.0
    sd = np.sqrt(var)
    corr = s / np.outer(sd, sd)
    rbar = float((corr.sum() - np.trace(corr)) / (n * (n - 1)))
    target = rbar * np.outer(sd, sd)
    np.fill_diagonal(target, var)

    y2 = y * y
    row = y2.sum(axis=1)
    pi = float(row @ row) / t - float(np.sum(s * s))
    pi_diag = float(np.sum(np.einsum("ti,ti->i", y2, y2) / t - var * var))
    a = (y2 * y) @ (1.0 / sd)
    b = y @ sd
    theta_all = float(a @ b) / t - float(sd @ s @ sd)
    rho = pi_diag + rbar * (theta_all - pi_diag)
    gamma = float(np.sum((target - s) ** 2))
    delta = _intensity(pi, rho, gamma, t)
    sigma = delta * target + (1.0 - delta) * s
    return (sigma + sigma.T) / 2.0, delta


def lw_single_factor(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrinkage towards a single-index (market) model.

    Parameters
    ----------
    y : numpy.ndarray, shape (T, n)
        Demeaned periodic returns. The market is their equal-weighted
        average, whose variance must be positive.

    Returns
    -------
    sigma : numpy.ndarray, shape (n, n)
        ``delta * F + (1 - delta) * S`` with ``S = Y'Y / T``.
    delta : float
        Shrinkage intensity in [0, 1].

    Notes
    -----
    With ``m_t`` the demeaned market return, ``s_i0`` the covariance of asset
    i with the market and ``s_00`` the market variance (all divided by T), the
    target is ``f_ij = s_i0 s_j0 / s_00`` off the diagonal and
    ``f_ii = s_ii``. pi-hat and gamma-hat are as for the
    constant-correlation target; ``rho = sum_i pi_ii + sum_{i != j} rho_ij``
    with

    ``rho_ij = 1/T sum_t (s_j0 s_00 y_ti + s_i0 s_00 y_tj - s_i0 s_j0 m_t)
    m_t y_ti y_tj / s_00^2 - f_ij s_ij``.

    The off-diagonal total splits into three double sums, each an ``O(T n)``
    full sum minus its diagonal: ``2 A - C - FS`` with
    ``A = sum s_j0 / s_00 1/T sum_t y_ti^2 y_tj m_t``,
    ``C = sum s_i0 s_j0 / s_00^2 1/T sum_t m_t^2 y_ti y_tj`` and
    ``FS = sum s_i0 s_j0 s_ij / s_00``.

    References
    ----------
    Ledoit, O. and Wolf, M. (2003). Improved estimation of the covariance
    matrix of stock returns with an application to portfolio selection.
    *Journal of Empirical Finance* 10(5), 603-621.
    """
    t, n = y.shape
    s = y.T @ y / t
    var = np.diag(s).copy()
    m = y.mean(axis=1)
    c = s.mean(axis=1)  # s_i0 = 1/T sum_t y_ti m_t
    s00 = float(c.mean())  # 1/T sum_t m_t^2
    target = np.outer(c, c) / s00
    np.fill_diagonal(target, var)

    y2 = y * y
    row = y2.sum(axis=1)
    pi = float(row @ row) / t - float(np.sum(s * s))
    pi_diag = float(np.sum(np.einsum("ti,ti->i", y2, y2) / t - var * var))
    mc = m * (y @ c)  # sum_j s_j0 y_tj m_t
    a_all = float(row @ mc) / (t * s00)
    a_diag = float(c @ (m @ (y2 * y))) / (t * s00)
    c_all = float(mc @ mc) / (t * s00**2)
    c_diag = float((c * c) @ ((m * m) @ y2)) / (t * s00**2)
    fs_all = float(c @ s @ c) / s00
    fs_diag = float((c * c) @ var) / s00
    rho = pi_diag + 2.0 * (a_all - a_diag) - (c_all - c_diag) - (fs_all - fs_diag)
    gamma = float(np.sum((target - s) ** 2))
    delta = _intensity(pi, rho, gamma, t)
    sigma = delta * target + (1.0 - delta) * s
    return (sigma + sigma.T) / 2.0, delta


#: Beyond this distance (in bandwidths) the Hilbert transform uses its series in sqrt(5)/x.
_FAR = 10.0
#: Series coefficients 1 / ((2k + 1)(2k + 3)), k = 0..13: the terms fall by u^2 <= 0.05.
_SERIES = 1.0 / ((2.0 * np.arange(14) + 1.0) * (2.0 * np.arange(14) + 3.0))


def hilbert_epanechnikov(x: np.ndarray) -> np.ndarray:
    """Hilbert transform of the Epanechnikov kernel with unit bandwidth.

    The kernel is ``K(t) = 3 / (4 sqrt(5)) max(1 - t^2 / 5, 0)``; returns
    ``G(x) = (1/pi) PV int K(t) / (t - x) dt``, an odd function of ``x``.

    Notes
    -----
    Closed form (Ledoit and Wolf 2020, equation 4.8):
    ``G(x) = -3 x / (10 pi) + 3 / (4 sqrt(5) pi) (1 - x^2 / 5)
    log|(sqrt(5) - x) / (sqrt(5) + x)|``, with limit ``-3 x / (10 pi)`` at
    ``|x| = sqrt(5)``. For ``|x| > 10`` its two terms cancel to ``~ -1 /
    (pi x)`` and would lose ``x^2 eps`` of relative accuracy, so the
    expansion in ``u = sqrt(5) / x`` is used there instead:
    ``G(x) = -3 / (sqrt(5) pi) sum_k u^(2k+1) / ((2k+1)(2k+3))``.
    """
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    far = np.abs(x) > _FAR
    near = ~far
    xn = x[near]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(np.abs((_SQRT5 - xn) / (_SQRT5 + xn)))
        log_term = np.where(np.isfinite(log_ratio), (1.0 - xn * xn / 5.0) * log_ratio, 0.0)
    out[near] = -3.0 / (10.0 * np.pi) * xn + 3.0 / (4.0 * _SQRT5 * np.pi) * log_term
    u = _SQRT5 / x[far]
    u2 = u * u
    acc = np.full_like(u, _SERIES[-1])
    for coef in _SERIES[-2::-1]:
        acc *= u2
        acc += coef
    acc *= u
    acc *= -3.0 / (_SQRT5 * np.pi)
    out[far] = acc
    return out


def _epanechnikov_transforms(lam: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Kernel density and its Hilbert transform at the sample eigenvalues.

    ``lam`` (r,) are positive eigenvalues; the kernel at ``lam_j`` has the
    local bandwidth ``h_j = h lam_j``. Returns ``(f, Hf)``, each (r,).
    Equations (4.7) and (4.8) of Ledoit and Wolf (2020).
    """
    width = h * lam  # (r,) local bandwidths, by column j
    x = (lam[:, None] - lam[None, :]) / width[None, :]
    inv_width = 1.0 / (width * len(lam))  # mean over j of (.) / h_j as a product
    bump = np.maximum(1.0 - x * x / 5.0, 0.0)
    density = (3.0 / (4.0 * _SQRT5)) * (bump @ inv_width)
    hilbert = hilbert_epanechnikov(x) @ inv_width
    return density, hilbert


def nonlinear_shrinkage_eigenvalues(lam: np.ndarray, n_eff: int) -> np.ndarray:
    """Analytical nonlinear shrinkage of sample eigenvalues.

    Parameters
    ----------
    lam : numpy.ndarray, shape (p,)
        Eigenvalues of the sample covariance ``S = Y'Y / n_eff``, ascending.
        The top ``min(p, n_eff)`` must be positive; when ``p > n_eff`` the
        first ``p - n_eff`` are the null eigenvalues and are not used.
    n_eff : int
        Effective sample size (T - 1 for demeaned returns).

    Returns
    -------
    numpy.ndarray, shape (p,)
        Shrunk eigenvalues, positive, in the order of ``lam``.

    Notes
    -----
    Global bandwidth ``h = n^(-1/3)`` (4.9), local bandwidths ``h lam_j``;
    ``f`` and ``Hf`` the Epanechnikov kernel density estimate of the sample
    spectrum and its Hilbert transform (4.7)-(4.8). With ``c = p / n``:

    * ``p <= n``: ``d_i = lam_i / ((pi c lam_i f_i)^2 + (1 - c - pi c lam_i
      Hf_i)^2)`` (4.3);
    * ``p > n``: the kernel runs over the ``n`` positive eigenvalues only and
      ``d_i = lam_i / (pi^2 lam_i^2 (f_i^2 + Hf_i^2))`` (C.4); the ``p - n``
      null eigenvalues all get ``d_0 = 1 / (pi (p - n) / n Hf_0)`` (C.5) with
      ``Hf_0`` the Hilbert transform at zero (C.8),
      ``(1/pi) (3 / (10 h^2) + 3 / (4 sqrt(5) h) (1 - 1 / (5 h^2))
      log|(1 + sqrt(5) h) / (1 - sqrt(5) h)|) mean(1 / lam)``.

    References
    ----------
    Ledoit, O. and Wolf, M. (2020). Analytical nonlinear shrinkage of
    large-dimensional covariance matrices. *Annals of Statistics* 48(5),
    3043-3065.
    """
    p = lam.shape[0]
    r = min(p, n_eff)
    positive = lam[p - r :]
    h = float(n_eff) ** (-1.0 / 3.0)
    f, hf = _epanechnikov_transforms(positive, h)
    if p <= n_eff:
        c = p / n_eff
        return positive / (
            (np.pi * c * positive * f) ** 2 + (1.0 - c - np.pi * c * positive * hf) ** 2
        )
    shrunk = positive / (np.pi**2 * positive**2 * (f * f + hf * hf))
    a = _SQRT5 * h
    hf0 = (
        (
            3.0 / (10.0 * h * h)
            + 3.0
            / (4.0 * _SQRT5 * h)
            * (1.0 - 1.0 / (5.0 * h * h))
            * np.log(abs((1.0 + a) / (1.0 - a)))
        )
        * float(np.mean(1.0 / positive))
        / np.pi
    )
    d0 = 1.0 / (np.pi * (p - n_eff) / n_eff * hf0)
    return np.concatenate([np.full(p - n_eff, d0), shrunk])


def clip_eigenvalues(a: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Nearest symmetric matrix with eigenvalues ``>= floor`` (Frobenius norm).

    ``a`` must be symmetric. Higham (1988): keep the eigenvectors, clip the
    eigenvalues. Returns an exactly symmetric array.
    """
    w, v = np.linalg.eigh(a)
    out = (v * np.maximum(w, floor)) @ v.T
    return (out + out.T) / 2.0


def higham_correlation(
    a: np.ndarray, *, tol: float, max_iter: int
) -> tuple[np.ndarray, int, float]:
    """Nearest correlation matrix by alternating projections (Higham 2002).

    Parameters
    ----------
    a : numpy.ndarray, shape (n, n)
        Symmetric matrix.
    tol : float
        Stop when the relative change of both iterates and the gap between
        the two projections are all below ``tol``.
    max_iter : int
        Iteration cap.

    Returns
    -------
    x : numpy.ndarray, shape (n, n)
        Symmetric, positive semidefinite, unit diagonal.
    iterations : int
        Iterations used.
    residual : float
        Final convergence measure (compare with ``tol``).

    Notes
    -----
    Alternates the projection onto the PSD cone (eigenvalue clipping, with
    Dykstra's correction ``dS``) and onto the unit-diagonal matrices:
    ``R = Y - dS``, ``X = P_S(R)``, ``dS = X - R``, ``Y = P_U(X)``. The last
    ``Y`` has a unit diagonal but may sit a rounding error outside the cone;
    it is finished by one more eigenvalue clip and a diagonal rescaling
    ``D^-1/2 X D^-1/2``, which keeps it PSD with an exact unit diagonal.

    References
    ----------
    Higham, N. J. (2002). Computing the nearest correlation matrix, a problem
    from finance. *IMA Journal of Numerical Analysis* 22(3), 329-343.
    """
    y = a.copy()
    ds = np.zeros_like(a)
    x_prev = y
    residual = np.inf
    iterations = 0
    while iterations < max_iter and residual > tol:
        iterations += 1
        r = y - ds
        x = clip_eigenvalues(r)
        ds = x - r
        y_new = x.copy()
        np.fill_diagonal(y_new, 1.0)
        scale = max(float(np.linalg.norm(y_new)), 1.0)
        residual = (
            max(
                float(np.linalg.norm(y_new - y)),
                float(np.linalg.norm(x - x_prev)),
                float(np.linalg.norm(y_new - x)),
            )
            / scale
        )
        y, x_prev = y_new, x
    out = clip_eigenvalues(y)
    d = np.sqrt(np.clip(np.diag(out), np.finfo(float).tiny, None))
    out = out / np.outer(d, d)
    out = (out + out.T) / 2.0
    np.fill_diagonal(out, 1.0)
    return out, iterations, residual
