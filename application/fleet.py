"""``Fleet``: the services a Python user imports, over one event-sourced application."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from application.app import FleetApplication, RecordedListener
from application.command_scope import CommandScope, command_scope
from application.idempotency import ttl_of
from application.migrate import MigrationError
from application.projections import PROJECTIONS, Projector
from application.projections.runner import PAGE_SIZE
from application.services.base import Foundation, OptimisticLoads, Service, row_resource
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
from application.store.maintenance import StoreMaintenance
from application.store.sqlite import start_locking_writers_across_processes
from application.store.startup import startup_lock
from application.waits import LogWatcher, Seen

log = logging.getLogger(__name__)


P = ParamSpec("P")
R = TypeVar("R")


def forward(
    service: str, method: Callable[Concatenate[Any, P], R]
) -> Callable[Concatenate[Fleet, P], R]:
    """``Fleet.<name>(...)`` is ``fleet.<service>.<name>(...)``: one flat interface over the
    composed services, with the service method's signature and docstring."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: Fleet, /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound: Callable[P, R] = getattr(getattr(self, service), name)
        return bound(*args, **kwargs)

    return call


class Fleet:
    """Commands return contract-shaped dicts and raise ``application.errors`` types.

    ``Fleet`` builds one ``Foundation`` (the application, the projections, the log
    watcher, the after-write hook) and the services on it; each method below is one
    service's, so a service can also be built and tested alone.

    >>> fleet = Fleet(env={"SQLITE_DBNAME": "fleet.db"})      # doctest: +SKIP
    """

    # Specialists
    register_specialist = forward("specialists", SpecialistService.register_specialist)
    heartbeat = forward("specialists", SpecialistService.heartbeat)
    complete_specialist = forward("specialists", SpecialistService.complete_specialist)
    fail_specialist = forward("specialists", SpecialistService.fail_specialist)
    deregister_specialist = forward("specialists", SpecialistService.deregister_specialist)
    get_specialist = forward("specialists", SpecialistService.get_specialist)
    # Missions, sorties and claims
    create_mission = forward("missions", MissionService.create_mission)
    update_mission = forward("missions", MissionService.update_mission)
    get_mission = forward("missions", MissionService.get_mission)
    mission_sorties = forward("missions", MissionService.mission_sorties)
    create_sortie = forward("sorties", SortieService.create_sortie)
    update_sortie = forward("sorties", SortieService.update_sortie)
    get_sortie = forward("sorties", SortieService.get_sortie)
    claim_sortie = forward("claims", ClaimService.claim_sortie)
    # Checkpoints
    create_checkpoint = forward("checkpoints", CheckpointService.create_checkpoint)
    restore_checkpoint = forward("checkpoints", CheckpointService.restore_checkpoint)
    get_checkpoint = forward("checkpoints", CheckpointService.get_checkpoint)
    list_missions_open = forward("checkpoints", CheckpointService.list_missions_open)
    # Messages
    send_message = forward("messages", MessageService.send_message)
    read_message = forward("messages", MessageService.read_message)
    ack_message = forward("messages", MessageService.ack_message)
    archive_message = forward("messages", MessageService.archive_message)
    requeue_message = forward("messages", MessageService.requeue_message)
    get_message = forward("messages", MessageService.get_message)
    list_messages = forward("messages", MessageService.list_messages)
    wait_for_messages = forward("messages", MessageService.wait_for_messages)
    # Cursors and locks
    advance_cursor = forward("cursors", CursorService.advance_cursor)
    reset_cursor = forward("cursors", CursorService.reset_cursor)
    get_cursor = forward("cursors", CursorService.get_cursor)
    acquire_lock = forward("locks", LockService.acquire_lock)
    release_lock = forward("locks", LockService.release_lock)
    get_lock = forward("locks", LockService.get_lock)
    list_locks = forward("locks", LockService.list_locks)
    # Lists (projection tables)
    list_specialists = forward("lists", ListService.list_specialists)
    list_missions = forward("lists", ListService.list_missions)
    list_sorties = forward("lists", ListService.list_sorties)
    list_checkpoints = forward("lists", ListService.list_checkpoints)
    row_resource = staticmethod(row_resource)
    # The event log
    events = forward("event_service", EventService.events)
    get_event = forward("event_service", EventService.get_event)
    stream_events = forward("event_service", EventService.stream_events)
    head_position = forward("event_service", EventService.head_position)
    follow = forward("event_service", EventService.follow)
    subscribe = forward("event_service", EventService.subscribe)
    # The operator console's read models
    overview = forward("console", ConsoleService.overview)
    status_counts = forward("console", ConsoleService.status_counts)
    unread_by_mailbox = forward("console", ConsoleService.unread_by_mailbox)
    mailboxes = forward("console", ConsoleService.mailboxes)
    write_rate = forward("console", ConsoleService.write_rate)
    # Compaction, the sweep, health
    compact = forward("compaction", CompactionService.compact)
    compact_forever = forward("compaction", CompactionService.compact_forever)
    compaction_policy = forward("compaction", CompactionService.compaction_policy)
    start_compactor = forward("compaction", CompactionService.start_compactor)
    stop_compactor = forward("compaction", CompactionService.stop_compactor)
    sweep = forward("sweeps", SweepService.sweep)
    sweep_forever = forward("sweeps", SweepService.sweep_forever)
    start_sweeper = forward("sweeps", SweepService.start_sweeper)
    stop_sweeper = forward("sweeps", SweepService.stop_sweeper)
    heartbeat_timeout = forward("sweeps", SweepService.heartbeat_timeout)
    purge_idempotency_keys = forward("sweeps", SweepService.purge_idempotency_keys)
    health = forward("health_service", HealthService.health)
    now = forward("sweeps", SweepService.now)
    check_version = staticmethod(Service.check_version)

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        settings = build_env(env)
        may_create = flag(settings.get("CREATE_TABLE"), default=True)
        with startup_lock(settings, create_schema=may_create):
            self.app = FleetApplication(settings)
            if not self.app.upgraded_at_start:
                self._require_current_schema()
            embedded = settings.get("FLEET_PROJECTOR", "embedded") != "external"
            ttl_of(settings)  # a bad FLEET_IDEMPOTENCY_TTL fails the start, not a write
            page_size = int(settings.get("FLEET_PROJECTION_PAGE_SIZE", str(PAGE_SIZE)))
            self.projector = Projector(self.app, PROJECTIONS, page_size=page_size)
            auto_rebuild = settings.get("FLEET_PROJECTIONS_AUTO_REBUILD", "1") != "0"
            self.projector.ensure_versions(auto_rebuild=auto_rebuild)
        start_locking_writers_across_processes(self.app.recorder.datastore)  # type: ignore[attr-defined]
        self.watcher = LogWatcher(
            self._head,
            self._seen_after,
            poll=float(settings.get("FLEET_WAIT_POLL", "0.05")),
            max_waiters=int(settings.get("FLEET_MAX_WAITERS", "240")),
        )
        self.app.committed_listeners.append(self.watcher.notify)
        self.foundation = Foundation(
            self.app,
            self.projector,
            self.watcher,
            after_write=self._after_write,
            min_position_timeout=float(settings.get("FLEET_MIN_POSITION_TIMEOUT", "5")),
            embedded=embedded,
            command_turn=self._command_turn(),
            optimism=OptimisticLoads(flag(settings.get("FLEET_OPTIMISTIC_LOADS"), default=True)),
        )
        base = self.foundation
        self.lists = ListService(base)
        self.specialists = SpecialistService(base)
        self.missions = MissionService(base, self.lists)
        self.sorties = SortieService(base)
        self.claims = ClaimService(base, self.sorties)
        self.checkpoints = CheckpointService(base, self.lists)
        self.messages = MessageService(base)
        self.cursors = CursorService(base)
        self.locks = LockService(base)
        self.event_service = EventService(base)
        self.console = ConsoleService(base, self.lists, self.locks)
        self.compaction = CompactionService(base)
        self.sweeps = SweepService(base)
        self.health_service = HealthService(base)
        if embedded:
            self.projector.catch_up()
            inline = flag(settings.get("FLEET_INLINE_PROJECTIONS"), default=True)
            if inline and self.projector.can_apply_inline():
                self.app.events.inline = self.projector.apply_inline  # type: ignore[attr-defined]

    def _command_turn(self) -> AbstractContextManager[Any]:
        """What each attempt of a command holds: one lock for the process.

        The events take one writer at a time (SQLite's file, PostgreSQL's table lock) and the
        interpreter runs one thread at a time, so commands side by side only hand both back
        and forth: every statement's round trip lets another thread in, and each hand-over
        is a context switch. A gunicorn worker under eight connections (bench/findings.md):
        - SQLite: a third of the context switches, 10-20 % less CPU a command;
        - PostgreSQL: 2.6-3.0 ms of CPU a command against 3.4-3.8, 18-25 % more commands a
          second; each write, alone in its process now, projects inline.
        Reads, waits and the HTTP work around a command still run side by side.
        """
        return threading.RLock()

    @property
    def embedded(self) -> bool:
        """The projections are applied in this process, after each write."""
        return self.foundation.embedded

    @property
    def min_position_timeout(self) -> float:
        """Seconds a read waits for the projections to reach a ``min_position``."""
        return self.foundation.min_position_timeout

    @min_position_timeout.setter
    def min_position_timeout(self, seconds: float) -> None:
        self.foundation.min_position_timeout = seconds

    @property
    def clock(self) -> Callable[[], datetime] | None:
        """The time locks and leases are judged by (None: the wall clock); tests set one."""
        return self.foundation.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime] | None) -> None:
        self.foundation.clock = clock

    @property
    def maintenance(self) -> StoreMaintenance:
        return self.compaction.maintenance

    def _head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def _seen_after(self, position: int, limit: int) -> list[Seen]:
        """The index rows of the events after ``position``, for the watcher's matching."""
        rows = self.app.recorder.select_index_after(position, limit)  # type: ignore[attr-defined]
        return [Seen(*row) for row in rows]

    def stop_waits(self) -> None:
        """End every open wait and feed now (a stopping server); later waits end at once."""
        self.watcher.close()

    def _require_current_schema(self) -> None:
        """With ``FLEET_AUTO_MIGRATE=0`` the operator migrates: refuse a store that lags."""
        try:
            pending = self.app.migrator().verified_pending()
        except MigrationError:
            self.app.close()
            raise
        if pending:
            self.app.close()
            raise MigrationError(
                "the database schema lacks migrations "
                + ", ".join(f"{v:04d}" for v in pending)
                + ": run `fleet db upgrade` (FLEET_AUTO_MIGRATE=0 turns off upgrades at start-up)"
            )

    def _after_write(self, position: int) -> None:
        """After each write: apply the new events to the projections (the write itself is
        already durable).

        A projection failure must not turn a committed write into an error for the
        caller: it is logged, the projection lags (``health()`` shows it) and the next
        catch-up retries.
        """
        if not self.foundation.embedded or self.projector.applied_inline >= position:
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
