"""The peer libraries: which are importable, their versions, and the adapters several benchmarks share.

A peer that is missing never stops a run: :func:`peer_problem` says why it cannot be used and its
rows say so.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Peer:
    """A peer library: its label, its name on PyPI (for the version) and its import name."""

    label: str
    distribution: str
    module: str


PYPFOPT = Peer("PyPortfolioOpt", "pyportfolioopt", "pypfopt")
SKFOLIO = Peer("skfolio", "skfolio", "skfolio")
RISKFOLIO = Peer("Riskfolio-Lib", "riskfolio-lib", "riskfolio")
RPP = Peer("riskparityportfolio", "riskparityportfolio", "riskparityportfolio")
PEERS: tuple[Peer, ...] = (PYPFOPT, SKFOLIO, RISKFOLIO, RPP)


@cache
def peer_problem(peer: Peer) -> str | None:
    """None when ``peer`` imports; otherwise why not ("peer not installed", ...)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module(peer.module)
    except ModuleNotFoundError as exc:
        if exc.name == peer.module or exc.name is None:
            return "peer not installed"
        return f"peer not importable (ModuleNotFoundError: {exc})"
    except Exception as exc:
        return f"peer not importable ({type(exc).__name__}: {exc})"
    return None


def version(distribution: str) -> str:
    """The installed version of a distribution, or "not installed"."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def skfolio_prior(mu: pd.Series, cov: pd.DataFrame) -> Any:
    """``EmpiricalPrior(mu_estimator=<fixed mu>, covariance_estimator=<fixed cov>)``.

    skfolio estimates moments with estimator objects; its documented extension point is a
    subclass of ``BaseMu`` / ``BaseCovariance`` whose ``fit`` sets ``mu_`` / the covariance.
    These return the given annualized figures (``nearest=False``: the matrix is used as given;
    it is positive definite).
    """
    from skfolio.moments import BaseCovariance, BaseMu
    from skfolio.prior import EmpiricalPrior

    class FixedMu(BaseMu):
        def __init__(self, mu=None):
            self.mu = mu

        def fit(self, X, y=None):
            self.mu_ = np.asarray(self.mu, dtype=float)
            return self

    class FixedCovariance(BaseCovariance):
        def __init__(self, covariance=None, nearest=False, higham=False, higham_max_iteration=100):
            super().__init__(
                nearest=nearest, higham=higham, higham_max_iteration=higham_max_iteration
            )
            self.covariance = covariance

        def fit(self, X, y=None):
            self._set_covariance(np.asarray(self.covariance, dtype=float))
            return self

    return EmpiricalPrior(
        mu_estimator=FixedMu(mu.to_numpy()),
        covariance_estimator=FixedCovariance(cov.to_numpy()),
    )


@cache
def rpp_design() -> tuple[Callable[..., Any] | None, str]:
    """riskparityportfolio's C++ "vanilla" solver ``design(Sigma, b, tol, maxiter)``.

    It is the package-level ``riskparityportfolio.design`` (also what the
    ``RiskParityPortfolio`` constructor calls). ``RiskParityPortfolio.design()`` is a different
    path: successive convex approximation in Python with quadprog. When the package's
    ``__init__`` cannot be imported (0.6 imports jax and quadprog without declaring them), the
    compiled ``vanilla`` extension is loaded from the installed package directory: the same C++
    function.

    Returns
    -------
    design : callable or None
        The solver, or None when it cannot be loaded.
    label : str
        The row label, or why the solver is missing.
    """
    problem = peer_problem(RPP)
    if problem is None:
        import riskparityportfolio

        return riskparityportfolio.design, "riskparityportfolio.design (C++ vanilla)"
    if problem == "peer not installed":
        return None, problem
    try:
        spec = importlib.util.find_spec(RPP.module)
        folder = Path(next(iter(spec.submodule_search_locations)))
        library = next(folder.glob("vanilla*.so"), None) or next(folder.glob("vanilla*.pyd"))
        loader = importlib.machinery.ExtensionFileLoader("vanilla", str(library))
        module = importlib.util.module_from_spec(
            importlib.util.spec_from_file_location("vanilla", library, loader=loader)
        )
        loader.exec_module(module)
    except Exception as exc:
        return None, f"{problem}; C++ extension not loadable ({type(exc).__name__}: {exc})"
    reason = problem.removeprefix("peer not importable (").removesuffix(")")
    return (
        module.design,
        f"riskparityportfolio vanilla.design (C++; loaded from its extension: {reason})",
    )


def pypfopt_frontier(
    mu: pd.Series,
    cov: pd.DataFrame,
    targets: Sequence[float] | np.ndarray,
    *,
    solver: str | None = None,
) -> tuple[np.ndarray, dict[int, str]]:
    """PyPortfolioOpt's ``EfficientFrontier(mu, cov, solver=solver).efficient_return(r)`` at each target.

    A new object per target, as PyPortfolioOpt's docs require. ``solver=None``
    is its default (OSQP); ``"CLARABEL"`` its best configuration for the
    frontier (OSQP is slower and fails points near the top).

    Returns
    -------
    weights : ndarray
        One row per target; NaN where the peer failed.
    errors : dict
        Point index -> the exception the peer raised there.
    """
    from pypfopt import EfficientFrontier

    weights = np.full((len(targets), len(mu)), np.nan)
    errors: dict[int, str] = {}
    for i, r in enumerate(targets):
        try:
            ef = EfficientFrontier(mu, cov, solver=solver)
            ef.efficient_return(float(r))
            weights[i] = ef.weights
        except Exception as exc:
            errors[i] = f"{type(exc).__name__}: {exc}"
    return weights, errors
