"""Fleet's application services: ``from application import Fleet`` (or ``FleetClient``)."""

from application.client import FleetClient
from application.errors import (
    Conflict,
    FleetError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from application.fleet import Fleet

__all__ = [
    "Conflict",
    "Fleet",
    "FleetClient",
    "FleetError",
    "Forbidden",
    "NotFound",
    "PreconditionFailed",
    "Unauthorized",
    "Unavailable",
    "ValidationError",
]
