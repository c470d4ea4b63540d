"""``Fleet``: the services a Python user imports, over one event-sourced application."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from application.app import FleetApplication, RecordedListener
from application.command_scope import CommandScope, command_scope
from application.idempotency import ttl_of
from application.migrate import MigrationError
from application.projections import PROJECTIONS, Projector
from application.projections.runner import PAGE_SIZE
from application.services.checkpoints import CheckpointService
from application.services.claims import ClaimService
from application.services.compaction import CompactionService
from application.services.console import ConsoleService
from application.services.cursors import CursorService
from application.services.events import EventService
from application.services.health import HealthService
from application.services.lists import ListService
from application.services.locks import LockService
from application.services.messages import MessageService
from application.services.missions import MissionService
from application.services.sorties import SortieService
from application.services.specialists import SpecialistService
from application.services.sweeps import SweepService
from application.settings import build_env, flag
from application.store.startup import startup_lock
from application.waits import LogWatcher, Seen

log = logging.getLogger(__name__)


class Fleet(
    ConsoleService,
    SpecialistService,
    MissionService,
    ClaimService,
    SortieService,
    CheckpointService,
    CompactionService,
    MessageService,
    CursorService,
    SweepService,
    LockService,
    EventService,
    HealthService,
    ListService,
):
    """Commands return contract-shaped dicts and raise ``application.errors`` types.

    >>> fleet = Fleet(env={"SQLITE_DBNAME": "fleet.db"})      # doctest: +SKIP
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        settings = build_env(env)
        may_create = flag(settings.get("CREATE_TABLE"), default=True)
        with startup_lock(settings, create_schema=may_create):
            self.app = FleetApplication(settings)
            self._require_current_schema()
            self.embedded = settings.get("FLEET_PROJECTOR", "embedded") != "external"
            self.min_position_timeout = float(settings.get("FLEET_MIN_POSITION_TIMEOUT", "5"))
            ttl_of(settings)  # a bad FLEET_IDEMPOTENCY_TTL fails the start, not a write
            page_size = int(settings.get("FLEET_PROJECTION_PAGE_SIZE", str(PAGE_SIZE)))
            self.projector = Projector(self.app, PROJECTIONS, page_size=page_size)
            auto_rebuild = settings.get("FLEET_PROJECTIONS_AUTO_REBUILD", "1") != "0"
            self.projector.ensure_versions(auto_rebuild=auto_rebuild)
        self.watcher = LogWatcher(
            self._head,
            self._seen_after,
            poll=float(settings.get("FLEET_WAIT_POLL", "0.05")),
            max_waiters=int(settings.get("FLEET_MAX_WAITERS", "240")),
        )
        self.app.committed_listeners.append(self.watcher.notify)
        if self.embedded:
            self.projector.catch_up()

    def _seen_after(self, position: int, limit: int) -> list[Seen]:
        """The index rows of the events after ``position``, for the watcher's matching."""
        rows = self.app.recorder.select_index_after(position, limit)  # type: ignore[attr-defined]
        return [Seen(*row) for row in rows]

    def stop_waits(self) -> None:
        """End every open wait and feed now (a stopping server); later waits end at once."""
        self.watcher.close()

    def _require_current_schema(self) -> None:
        """With ``FLEET_AUTO_MIGRATE=0`` the operator migrates: refuse a store that lags."""
        migrator = self.app.migrator()
        try:
            migrator.verify()
        except MigrationError:
            self.app.close()
            raise
        pending = migrator.pending()
        if pending:
            self.app.close()
            raise MigrationError(
                "the database schema lacks migrations "
                + ", ".join(f"{v:04d}" for v in pending)
                + ": run `fleet db upgrade` (FLEET_AUTO_MIGRATE=0 turns off upgrades at start-up)"
            )

    def _after_write(self, position: int) -> None:
        """Apply the new events to the projections; the write itself is already durable.

        A projection failure must not turn a committed write into an error for the
        caller: it is logged, the projection lags (``health()`` shows it) and the next
        catch-up retries.
        """
        if not self.embedded:
            return
        try:
            self.projector.catch_up()
        except Exception:  # the write is durable: log the failure, the projection lags
            log.exception("projections failed to apply events up to position %s", position)

    @contextmanager
    def context(
        self,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        **metadata: Any,
    ) -> Iterator[CommandScope]:
        """Group commands under one correlation id (and actor/request_id/source metadata).

        A ``correlation_id`` given here marks every event recorded inside, even one caused
        by an earlier event of another correlation (an ack by its message's send).
        """
        with command_scope(correlation_id, causation_id, **metadata) as scope:
            yield scope

    def on_events_recorded(self, listener: RecordedListener) -> None:
        """Call ``listener(event_types)`` after each committed write of this process."""
        self.app.recorded_listeners.append(listener)

    @property
    def backend(self) -> str:
        return self.app.backend

    def close(self) -> None:
        self.stop_waits()
        self.stop_compactor()
        self.stop_sweeper()
        self.projector.close()
        self.app.close()
