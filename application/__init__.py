"""Fleet's application services: ``from application import Fleet``."""

from application.errors import (
    Conflict,
    FleetError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from application.fleet import Fleet

__all__ = [
    "Conflict",
    "Fleet",
    "FleetError",
    "Forbidden",
    "NotFound",
    "PreconditionFailed",
    "Unavailable",
    "ValidationError",
]
