"""The eventsourcing application behind Fleet: one per process, one event store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from copy import deepcopy
from functools import cached_property
from typing import Any, ClassVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import EventStore, InfrastructureFactory, Notification, Recording
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import Environment

from application.migrate import Migrator, PostgresTarget, SQLiteTarget, Target, load_migrations
from application.seams import fastforward_lock, save_aggregates
from application.settings import backend_name, build_env, flag
from application.store.archive import Archive, PostgresArchive, SQLiteArchive
from application.store.history import IndexingEventStore, merge_notifications
from application.store.query import ArchiveAwareIndex, EventIndexReader, IndexRow, LogRead
from application.store.reindex import reindex_events
from application.store.sqlite import (
    keep_prepared_statements,
    lock_writers_across_processes,
    wait_in_pool_as_long_as_for_the_lock,
)
from domain.aggregates import AGGREGATE_TYPES
from domain.base import FleetAggregate

log = logging.getLogger(__name__)

# Told the event types of each committed write (metrics count them); see ``_committed``.
RecordedListener = Callable[[Sequence[str]], object]
# Told (position, event_type, stream_id, correlation_id) of each event a write committed.
CommittedListener = Callable[[list[tuple[int, str, str, str]]], object]

# The aggregates a decision read (``recording_reads``), each with the version it read.
_reads: ContextVar[DecisionReads | None] = ContextVar("fleet_decision_reads", default=None)


class DecisionReads(list[tuple[UUID, int]]):
    """Each aggregate ``FleetApplication.get`` gave a decision, with the version it had (0:
    none, the stream not begun), for its write to confirm (``Service._attempt``).

    ``trust_cache``: answer from the aggregate cache alone, without reading the log: a
    cached aggregate is taken as it is, one not cached as not begun.

    ``log_reads``: what the decision read of the projections' rows (``note_log_read``),
    which its write confirms too.
    """

    def __init__(self, trust_cache: bool) -> None:
        super().__init__()
        self.trust_cache = trust_cache
        self.log_reads: list[LogRead] = []


@contextmanager
def recording_reads(trust_cache: bool = False) -> Iterator[DecisionReads]:
    """Inside, every aggregate ``FleetApplication.get`` gives (at its latest version) is
    noted with its version in the list this yields."""
    reads = DecisionReads(trust_cache)
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


def note_log_read(read: LogRead) -> None:
    """Inside ``recording_reads``: the decision read rows derived from the log (``LogRead``),
    for its write to confirm that nothing they depend on was recorded since. Outside, a
    read answers a query, and nothing is noted."""
    reads = _reads.get()
    if reads is not None:
        reads.log_reads.append(read)


DEFAULT_SNAPSHOT_INTERVAL = 200  # events; the library snapshots when version % interval == 0


def snapshot_intervals(
    env: Mapping[str, str],
) -> dict[type[MutableOrImmutableAggregate[Any]], int]:
    """Per aggregate type: ``FLEET_SNAPSHOT_INTERVAL_<TYPE>``, else ``FLEET_SNAPSHOT_INTERVAL``.

    ``<TYPE>`` is the stream type in capitals (``SORTIE``, ``SPECIALIST``, ...); 0 turns
    snapshots off for that type.
    """
    default = _interval(env, "FLEET_SNAPSHOT_INTERVAL", str(DEFAULT_SNAPSHOT_INTERVAL))
    intervals: dict[type[MutableOrImmutableAggregate[Any]], int] = {}
    for cls in AGGREGATE_TYPES:
        key = f"FLEET_SNAPSHOT_INTERVAL_{cls.STREAM_TYPE.upper()}"
        if (interval := _interval(env, key, str(default))) > 0:
            intervals[cls] = interval
    return intervals


def _interval(env: Mapping[str, str], key: str, default: str) -> int:
    raw = env.get(key) or default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{key} must be a whole number of events, not {raw!r}") from None
    if value < 0:
        raise ValueError(f"{key} must be 0 (off) or more, not {value}")
    return value


def project_fast(aggregate: FleetAggregate | None, events: Iterable[Any]) -> FleetAggregate | None:
    """Replay without the library's per-event Protocol check (2-3x faster)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class FleetApplication(Application[UUID]):
    name = "fleet"
    # The class default turns the library's snapshot store on; each instance then
    # replaces it with the intervals of its own settings (see ``__init__``).
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        cls: DEFAULT_SNAPSHOT_INTERVAL for cls in AGGREGATE_TYPES
    }
    snapshotting_projectors: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], Any]] = {
        cls: project_fast for cls in AGGREGATE_TYPES
    }

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env=build_env(env))
        self.backend = backend_name(self.env)
        wait_in_pool_as_long_as_for_the_lock(self.recorder.datastore, self.env)  # type: ignore[attr-defined]
        # An instance attribute: the library's ``_take_snapshots`` reads it from ``self``.
        self.snapshotting_intervals = snapshot_intervals(self.env)  # type: ignore[misc]
        self.recorded_listeners: list[RecordedListener] = []
        self.committed_listeners: list[CommittedListener] = []
        # Upgrading verifies what was applied and leaves nothing pending: a start that
        # upgraded has checked the schema already (``Fleet`` checks it otherwise).
        self.upgraded_at_start = flag(self.env.get("FLEET_AUTO_MIGRATE"), default=True)
        if self.upgraded_at_start:
            self.migrate()

    def construct_factory(self, env: Environment) -> InfrastructureFactory:
        factory = super().construct_factory(env)
        keep_prepared_statements(factory.datastore)  # type: ignore[attr-defined]
        lock_writers_across_processes(factory.datastore)  # type: ignore[attr-defined]
        return factory

    def migrator(self) -> Migrator:
        """The schema runner for this store (``FLEET_MIGRATIONS_DIR`` replaces the package's)."""
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        target: Target
        if isinstance(datastore, PostgresDatastore):
            target = PostgresTarget(datastore)
        else:
            target = SQLiteTarget(datastore.pool.db_name)
        events_table = self.recorder.events_table_name  # type: ignore[attr-defined]
        position = "notification_id" if self.backend == "postgres" else "rowid"
        return Migrator(
            target,
            load_migrations(self.backend, self.env.get("FLEET_MIGRATIONS_DIR")),
            after_up={
                1: lambda tx: reindex_events(tx, self.mapper, events_table, position, self.archive)
            },
        )

    def migrate(self) -> list[int]:
        """Bring Fleet's own tables (index, triggers, projections) up to date."""
        return self.migrator().upgrade()

    @property
    def index(self) -> EventIndexReader:
        """The reader of Fleet's event index; archived events are read from the archive."""
        return ArchiveAwareIndex(cast(EventIndexReader, self.recorder), self.archive)

    # The archive (``fleet compact --archive``): reads see archive and live log as one.

    def construct_event_store(self) -> EventStore[UUID]:
        return IndexingEventStore(
            self.mapper, self.recorder, lambda: self.archive, committed=self._committed
        )

    @cached_property
    def archive(self) -> Archive | None:
        """Where archived events live (None for an in-memory SQLite store)."""
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        if isinstance(datastore, PostgresDatastore):
            schema = self.env.get("FLEET_ARCHIVE_SCHEMA") or PostgresArchive.default_schema(
                datastore.schema
            )
            events_table = self.recorder.events_table_name  # type: ignore[attr-defined]
            return PostgresArchive(datastore, schema, events_table)
        dbname = datastore.pool.db_name
        if datastore.pool.is_sqlite_memory_mode or dbname.startswith("file:"):
            return None
        path = self.env.get("FLEET_ARCHIVE_DBNAME") or SQLiteArchive.default_path(dbname)
        timeout = int(self.env.get("SQLITE_LOCK_TIMEOUT") or 15)
        return SQLiteArchive(dbname, path, timeout)

    def select_history(self, start: int, limit: int, fresh: bool = False) -> list[Notification]:
        """Like ``recorder.select_notifications`` (after ``start``), over archive and live.

        Archived positions are never above the slowest projection's position when they
        move, so following the log needs the archive only after a position went back
        (a rebuild, which asks for ``fresh``: the archive's highest position uncached).
        """
        live = list(
            self.recorder.select_notifications(start=start, limit=limit, inclusive_of_start=False)
        )
        archive = self.archive
        if archive is None or not archive.exists() or start >= archive.max_position(fresh):
            return live
        return merge_notifications(live, archive.select_notifications(start, limit), limit)

    def close(self) -> None:
        if "archive" in vars(self) and self.archive is not None:
            self.archive.close()
        super().close()

    def sqlite_journal_mode(self) -> str | None:
        """SQLite's journal mode (``wal`` expected); None on PostgreSQL."""
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        if isinstance(datastore, PostgresDatastore):
            return None
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA journal_mode")
            return str(cursor.fetchone()[0]).lower()

    def get(self, aggregate_id: UUID, version: int | None = None) -> Any:
        """The aggregate, at ``version`` or up to date.

        Under ``recording_reads`` each aggregate given up to date is noted with its version
        (0 when it has no events), and with ``trust_cache`` nothing is read: a cached
        aggregate is a copy of the cached one as it is, and one not cached is taken to have
        no events yet (the stream a registration begins).
        """
        reads = _reads.get()
        if reads is None or version is not None:
            return self.repository.get(aggregate_id, version=version, projector_func=project_fast)
        cache = self.repository.cache
        if reads.trust_cache and cache is not None:
            try:
                cached = cache.get(aggregate_id)
            except KeyError:
                reads.append((aggregate_id, 0))
                raise AggregateNotFoundError(aggregate_id) from None
            reads.append((aggregate_id, cached.version))
            with fastforward_lock(self.repository, aggregate_id):
                return deepcopy(cached)
        try:
            aggregate = self.repository.get(aggregate_id, projector_func=project_fast)
        except AggregateNotFoundError:
            reads.append((aggregate_id, 0))
            raise
        reads.append((aggregate_id, aggregate.version))
        return aggregate

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """The library's ``save``; the event store also gets the saved aggregates by id.

        The library hands ``save``'s keyword arguments to the event store's ``put`` (and on
        to the recorder): ``IndexingEventStore`` needs each event's aggregate for the stream
        type of its index row.
        """
        # A class check, not the library's runtime Protocol (DomainEventProtocol): an
        # isinstance against a Protocol inspects its members each time.
        aggregates = {obj.id: obj for obj in objs if isinstance(obj, FleetAggregate)}
        if len(aggregates) == len(objs):  # aggregates only, as every command saves
            recordings = save_aggregates(self, objs, aggregates=aggregates, **kwargs)
        else:
            recordings = super().save(*objs, aggregates=aggregates, **kwargs)
        self._cache_saved(aggregates.values())
        return recordings

    def _cache_saved(self, aggregates: Iterable[FleetAggregate]) -> None:
        """Put a copy of each saved aggregate in the library's aggregate cache.

        With fast-forward on, the library leaves a saved aggregate out of the cache, so the
        next command on the stream read, decoded and applied this write's own events again
        to bring the cached copy up to date. A copy (the caller keeps its object) taken
        after the commit is never ahead of the log. When it falls behind (another process
        wrote, or a slower thread put an older copy last) the next load fast-forwards it
        from the log as before.
        """
        cache = self.repository.cache
        if cache is None or not self.repository.fastforward:
            return  # no cache, or the library caches saved aggregates itself
        for aggregate in aggregates:
            cache.put(aggregate.id, deepcopy(aggregate))

    def _committed(self, rows: Sequence[IndexRow], recordings: list[Recording[UUID]]) -> None:
        """A write committed: tell the listeners (``IndexingEventStore`` calls this)."""
        self._announce([row.event_type for row in rows])
        if self.committed_listeners:
            committed = [
                (
                    r.notification.id,
                    type(r.domain_event).event_type,  # type: ignore[attr-defined]
                    str(r.notification.originator_id),
                    r.domain_event.correlation_id,  # type: ignore[attr-defined]
                )
                for r in recordings
            ]
            self._tell(self.committed_listeners, committed)

    def _announce(self, event_types: Sequence[str]) -> None:
        """Tell the listeners what was committed; their failure never fails the write."""
        self._tell(self.recorded_listeners, event_types)

    @staticmethod
    def _tell(listeners: Sequence[Callable[[Any], object]], what: Any) -> None:
        for listener in listeners:
            try:
                listener(what)
            except Exception:  # the events are durable: log, and go on
                log.exception("a listener of recorded events failed")
