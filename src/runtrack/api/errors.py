"""The ONE table from domain errors to Connect codes and HTTP statuses.

Every transport translates errors through :func:`classify`. An exception that is not a domain
error is a bug: it is logged with its stack trace and answered as INTERNAL / 500 with a short
message (never UNKNOWN, on which the flyte SDK starts an interactive login flow).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from connectrpc.code import Code

from runtrack.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RuntrackError,
    Unavailable,
)

log = logging.getLogger("runtrack.api")


@dataclass(frozen=True)
class ErrorMapping:
    connect: Code
    http: int
    name: str


ERROR_TABLE: dict[type[RuntrackError], ErrorMapping] = {
    InvalidArgument: ErrorMapping(Code.INVALID_ARGUMENT, 400, "invalid_argument"),
    NotFound: ErrorMapping(Code.NOT_FOUND, 404, "not_found"),
    AlreadyExists: ErrorMapping(Code.ALREADY_EXISTS, 409, "already_exists"),
    Conflict: ErrorMapping(Code.FAILED_PRECONDITION, 409, "conflict"),
    PermissionDenied: ErrorMapping(Code.PERMISSION_DENIED, 403, "permission_denied"),
    Unavailable: ErrorMapping(Code.UNAVAILABLE, 503, "unavailable"),
}

INTERNAL = ErrorMapping(Code.INTERNAL, 500, "internal")


def classify(exc: BaseException) -> tuple[ErrorMapping, str]:
    """The mapping and the client-facing message for any exception."""
    for cls in type(exc).__mro__:
        mapping = ERROR_TABLE.get(cls)
        if mapping is not None:
            assert isinstance(exc, RuntrackError)
            return mapping, exc.message
    log.error("unexpected error", exc_info=exc)
    return INTERNAL, f"internal error ({type(exc).__name__})"
