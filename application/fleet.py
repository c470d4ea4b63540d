"""``Fleet``: the services a Python user imports, over one event-sourced application."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from application.app import FleetApplication
from application.context import CommandScope, command_scope
from application.services.events import EventService
from application.services.health import HealthService
from application.services.specialists import SpecialistService


class Fleet(SpecialistService, EventService, HealthService):
    """Commands return contract-shaped dicts and raise ``application.errors`` types.

    >>> fleet = Fleet(env={"SQLITE_DBNAME": "fleet.db"})      # doctest: +SKIP
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.app = FleetApplication(dict(env) if env else None)

    @contextmanager
    def context(
        self,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        **metadata: Any,
    ) -> Iterator[CommandScope]:
        """Group commands under one correlation id (and actor/request_id/source metadata)."""
        with command_scope(correlation_id, causation_id, **metadata) as scope:
            yield scope

    @property
    def backend(self) -> str:
        return self.app.backend

    def close(self) -> None:
        self.app.close()
