"""Typed errors of the application services; the web layer maps each to an HTTP status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError


class FleetError(Exception):
    """Base class of every error a Fleet service raises on purpose."""

    status = 500
    title = "Internal error"


class NotFound(FleetError):
    status = 404
    title = "Not found"


class ValidationError(FleetError):
    """Input failed validation; ``errors`` maps each field to its messages."""

    status = 422
    title = "Validation failed"

    def __init__(self, errors: Mapping[str, Iterable[str]], message: str | None = None):
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in errors.items()}
        details = "; ".join(
            f"{name}: {' '.join(texts)}" for name, texts in sorted(self.errors.items())
        )
        super().__init__(message or f"invalid input: {details}")


class Unauthorized(FleetError):
    """The server wants a valid API token (raised by ``FleetClient``; ``Fleet`` has no auth)."""

    status = 401
    title = "Unauthorized"


class Forbidden(FleetError):
    """The caller may not do this to the resource (e.g. release a lock it does not hold)."""

    status = 403
    title = "Forbidden"


class Conflict(FleetError):
    """A rule or state conflict (illegal transition, concurrent write lost the race)."""

    status = 409
    title = "Conflict"

    def __init__(self, message: str, **extra: Any):
        self.extra = extra
        super().__init__(message)


class PreconditionFailed(FleetError):
    """The caller's expected version is not the aggregate's version.

    ``actual`` is 0 for a resource that does not exist yet (a mailbox that never received
    a message, a cursor not yet advanced): versions count events, and it has none.
    """

    status = 412
    title = "Precondition failed"

    def __init__(self, expected: int, actual: int):
        self.expected = expected
        self.actual = actual
        super().__init__(f"expected version {expected}, but the current version is {actual}")


class Unavailable(FleetError):
    """A dependency (database, projections) did not answer in time."""

    status = 503
    title = "Service unavailable"


# Store errors that mean "busy or unreachable for now", not "this request is wrong": SQLite's
# lock held past SQLITE_LOCK_TIMEOUT, the connection pool's queue timing out behind it
# (``ConnectionUnavailableError`` is an ``OperationalError``), a PostgreSQL connection lost.
# The web layer answers them 503 with Retry-After, never 500. On SQLite a write that failed
# so was not committed (its transaction rolled back), so the client's retry is safe.
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
