"""Exception types raised by trimtab.

Every error a caller can see is one of these: solver and modelling-layer
exceptions are caught and re-raised as :class:`SolverError` or
:class:`InputError`, never leaked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TrimtabError(Exception):
    """Base class of every trimtab error."""


class InputError(TrimtabError, ValueError):
    """Bad input: misaligned labels, NaN or inf, unknown assets or tags, bad options.

    The message names the asset, constraint or key at fault.
    """


class InfeasibleError(TrimtabError):
    """The constraints cannot all hold.

    Parameters
    ----------
    message : str
        Human-readable explanation naming the conflicting constraints.
    diagnosis : sequence of dict, optional
        One entry per constraint that must be relaxed, each with at least
        ``name`` (constraint name) and ``relax_by`` (amount, in the
        constraint's own units). Empty when no diagnosis could be made.
    """

    def __init__(self, message: str, diagnosis: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.diagnosis: list[dict[str, Any]] = [dict(d) for d in diagnosis]

    @property
    def constraint_names(self) -> list[str]:
        """Names of the constraints the diagnosis says to relax."""
        return [str(d["name"]) for d in self.diagnosis if "name" in d]


class SolverError(TrimtabError):
    """Every solver in the chain failed.

    Parameters
    ----------
    message : str
        What failed.
    attempts : sequence of dict, optional
        One entry per solver tried: ``solver``, ``status``, ``seconds`` and,
        where there was one, ``error``.
    """

    def __init__(self, message: str, attempts: Sequence[dict[str, Any]] = ()) -> None:
        self.attempts: list[dict[str, Any]] = [dict(a) for a in attempts]
        if self.attempts:
            tried = "; ".join(
                f"{a.get('solver')}: {a.get('status')}"
                + (f" ({a['error']})" if a.get("error") else "")
                for a in self.attempts
            )
            message = f"{message} [attempts: {tried}]"
        super().__init__(message)
