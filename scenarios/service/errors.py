"""One JSON error body for every failure, and the status code of each kind.

Every error response is::

    {"error": {"kind": "input", "message": "...", "path": "constraints.group[1].max",
               "diagnosis": [...], "request_id": "..."}}

``kind`` and its status code (:data:`STATUS`): ``input`` 422 (bad request: the
scenario's schema, data, options; ``path`` is the culprit's key path when
known), ``infeasible`` 409 (the constraints conflict: ``diagnosis`` lists each
constraint to relax and by how much, in its own units, as the command line
prints it), ``solver`` 503 (every solver failed; the same input will fail
again), ``limit`` 413 (body too large) or 504 (the solve time limit; the
message names the limit), ``auth`` 401, ``not_found`` 404 (also another
tenant's job), ``conflict`` 409 (an idempotency key still in use), and
``internal`` 500 (a bug: never with a stack trace). The ``message`` is the
same text the command line prints for the error.
"""

from __future__ import annotations

from typing import Any

from optimizer.errors import InfeasibleError, InputError, SolverError
from scenarios.service.documents import located

#: HTTP status of each error kind (the 409 of "conflict" is an idempotency key in use).
STATUS = {
    "input": 422,
    "infeasible": 409,
    "solver": 503,
    "limit": 504,
    "auth": 401,
    "not_found": 404,
    "conflict": 409,
    "internal": 500,
}


class ServiceError(Exception):
    """An error with its kind, status, message and culprit path.

    Parameters
    ----------
    kind : str
        A key of :data:`STATUS`.
    message : str
        What is wrong and what to do.
    path : str, optional
        Key path of the culprit (``"constraints.group[1].max"``, ``"Idempotency-Key"``).
    status : int, optional
        The status code (default: the kind's).
    diagnosis : list of dict, optional
        For ``infeasible``: ``{"name", "relax_by", ...}`` per constraint.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        path: str | None = None,
        status: int | None = None,
        diagnosis: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.path = path
        self.status = STATUS[kind] if status is None else int(status)
        self.diagnosis = diagnosis


def from_exception(exc: BaseException) -> ServiceError:
    """The :class:`ServiceError` of any exception (unexpected ones: ``internal``, no details)."""
    from scenarios.display import infeasible_line, one_line, out_of_reach_line

    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, InputError):
        text, path = located(one_line(str(exc)))
        reach = out_of_reach_line(text, None)
        if reach is not None:
            return ServiceError("infeasible", reach, path=path, diagnosis=[])
        return ServiceError("input", text, path=path)
    if isinstance(exc, InfeasibleError):
        text, path = located(str(exc))
        return ServiceError(
            "infeasible",
            infeasible_line(text, None),
            path=path,
            diagnosis=[_plain(d) for d in exc.diagnosis],
        )
    if isinstance(exc, SolverError):
        return ServiceError("solver", one_line(str(exc)))
    return ServiceError(
        "internal",
        f"unexpected error ({type(exc).__name__}); this is a bug: report it with the request id",
    )


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """A diagnosis entry with JSON-ready values."""
    from scenarios.export import to_jsonable

    return to_jsonable(dict(d))


def body(err: ServiceError, request_id: str | None) -> dict[str, Any]:
    """The JSON error body of ``err``."""
    return {
        "error": {
            "kind": err.kind,
            "message": err.message,
            "path": err.path,
            "diagnosis": err.diagnosis,
            "request_id": request_id,
        }
    }
