"""Domain errors. Transports translate them through the one table in ``api/errors.py``."""

from __future__ import annotations


class RuntrackError(Exception):
    """Base of every error the service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(RuntrackError):
    """The input is malformed or names something that does not exist in the language."""


class NotFound(RuntrackError):
    """The addressed entity does not exist."""


class AlreadyExists(RuntrackError):
    """An entity with that identity exists already (and differs)."""


class Conflict(RuntrackError):
    """The request contradicts the stored state (e.g. a terminal phase reported differently)."""


class PermissionDenied(RuntrackError):
    """The caller may not do this."""


class Unavailable(RuntrackError):
    """A dependency (the database) does not answer; retrying later may succeed."""


class ConfigError(RuntrackError):
    """The configuration is invalid; ``key`` names the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
