"""Fleet's application services: ``from application import Fleet`` (or ``FleetClient``).

Both are imported on first use: a program that needs only the client (``fleet agent``, an
agent's own code) then starts without the store and the event-sourcing library.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from application.client import FleetClient
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


def __getattr__(name: str) -> Any:
    if name == "Fleet":
        from application.fleet import Fleet

        return Fleet
    if name == "FleetClient":
        from application.client import FleetClient

        return FleetClient
    raise AttributeError(f"module 'application' has no attribute {name!r}")
