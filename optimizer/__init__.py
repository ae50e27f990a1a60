"""trimtab's convex core: universe, constraints, compile/solve/verify, rebalance.

This package imports neither ``models`` nor ``scenarios``.
"""

from optimizer.errors import InfeasibleError, InputError, SolverError, TrimtabError

__all__ = ["InfeasibleError", "InputError", "SolverError", "TrimtabError"]
