"""trimtab's convex core: universe, constraints, compile/solve/verify.

This package imports neither ``models`` nor ``scenarios``.

>>> from optimizer import Universe, constraints, Allocation, InputError
"""

from optimizer import constraints
from optimizer.allocation import Allocation, Frontier
from optimizer.compiled import Compiled
from optimizer.errors import InfeasibleError, InputError, SolverError, TrimtabError
from optimizer.riskmodel import FactorCovariance
from optimizer.universe import Universe

__all__ = [
    "Allocation",
    "Compiled",
    "FactorCovariance",
    "Frontier",
    "InfeasibleError",
    "InputError",
    "SolverError",
    "TrimtabError",
    "Universe",
    "constraints",
]
