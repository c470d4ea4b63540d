"""SQLite: the library's recorder, plus the event index written in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from application.idempotency import KeyRecord, Remembered, remembered_from
from application.seams import share_writer_lock
from application.store.keys import (
    DELETE_KEY,
    DROP_STALE_KEY,
    IDEMPOTENCY_TABLE,
    INSERT_KEY,
    INSERT_KEY_IF_NEW,
    PURGE_KEYS_IN_ORDER,
    SELECT_KEY,
)
from application.store.query import (
    ADD_COUNTS,
    EVENT_COUNTS_TABLE,
    EVENT_INDEX_TABLE,
    INDEX_AFTER,
    INSERT_INDEX,
    EventFilter,
    EventPage,
    IndexedEvent,
    IndexRow,
    archived_placeholder,
    count_params,
    count_query,
    index_params,
    page_query,
)


def wait_in_pool_as_long_as_for_the_lock(datastore: object, env: Mapping[str, str]) -> None:
    """Let threads queue for a connection as long as SQLite waits for its write lock.

    The library's pool lets one writer per process at a time and queues every other
    request behind it (FIFO), but gives up after a fixed 5 s, while the writer itself
    waits up to ``SQLITE_LOCK_TIMEOUT`` (15 s) for another process's lock. So a lock held
    for 5-15 s (a long maintenance transaction in another process) failed the queued
    requests of every worker although their own wait was still within the timeout.
    """
    if not isinstance(datastore, SQLiteDatastore):
        return
    lock_timeout = float(env.get("SQLITE_LOCK_TIMEOUT") or 0)
    datastore.pool.pool_timeout = max(datastore.pool.pool_timeout, lock_timeout)


def queue_writers_together(datastore: object, leader: object) -> None:
    """Make ``datastore``'s writers queue behind the same in-process lock as ``leader``'s.

    The projections have a datastore (a pool) of their own on the events' SQLite file, so
    that their connections can commit without a disk flush. Each pool lets one writer at a
    time, but two pools in one process met at SQLite's own lock, whose busy handler
    *sleeps* (1, 2, 5, 10 ms ...) before it retries: with 8 server threads, an embedded
    write and a catch-up kept missing each other. One lock for both hands the database
    over at once (8 threads registering: about 370 writes/s with two locks, 550 with one).
    Other processes still meet at SQLite's lock.
    """
    if not (isinstance(datastore, SQLiteDatastore) and isinstance(leader, SQLiteDatastore)):
        return
    if datastore.pool.db_name != leader.pool.db_name:
        return
    share_writer_lock(datastore.pool, leader.pool)  # no public way: see application.seams


class FleetSQLiteRecorder(SQLiteApplicationRecorder):
    """Writes each event's index row beside it, so filtered reads are exact and immediate."""

    def _sql(self, template: str) -> str:
        return template.format(
            index=EVENT_INDEX_TABLE,
            events=self.events_table_name,
            counts=EVENT_COUNTS_TABLE,
            keys=IDEMPOTENCY_TABLE,
            pos="rowid",
            p="?",
        )

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        rows: Sequence[IndexRow] = kwargs.get("event_index", ())
        if rows and positions:
            c.executemany(self._sql(INSERT_INDEX), index_params(positions, stored_events, rows))
            c.executemany(self._sql(ADD_COUNTS), count_params(rows))
        key: KeyRecord | None = kwargs.get("idempotency")
        if key is not None and positions:
            self._claim_key(c, key, positions[-1])
        return positions

    def _claim_key(self, c: SQLiteCursor, key: KeyRecord, position: int) -> None:
        """In the events' transaction: a key another write holds fails this one, whole."""
        c.execute(self._sql(DROP_STALE_KEY), key.stale_params())
        c.execute(self._sql(INSERT_KEY), key.insert_params(position))
        if key.probe:
            c.execute(self._sql(DELETE_KEY), key.key_params())

    def select_key(self, scope: str, key: str, since: float) -> Remembered | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._sql(SELECT_KEY), [scope, key, since])
            row = c.fetchone()
        return None if row is None else remembered_from(row)

    def insert_key(self, record: KeyRecord, position: int) -> None:
        """Remember a key on its own (a command of several writes), unless taken."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._sql(DROP_STALE_KEY), record.stale_params())
            c.execute(self._sql(INSERT_KEY_IF_NEW), record.insert_params(position))

    def purge_keys(self, before: float) -> int:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._sql(PURGE_KEYS_IN_ORDER), [before])
            return int(c.sqlite_cursor.rowcount)

    def select_event_page(self, flt: EventFilter, limit: int, offset: int = 0) -> EventPage:
        select, params = page_query(flt, "?")
        count, count_args = count_query(flt, "?")
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._sql(select), [*params, limit, offset])
            rows = c.fetchall()
            c.execute(self._sql(count), count_args)
            total = int(c.fetchone()[0])
        return EventPage([self._indexed(row) for row in rows], total)

    def select_index_after(self, position: int, limit: int) -> list[tuple[int, str, str, str]]:
        """(position, event_type, stream_id, correlation_id) of the events after ``position``."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._sql(INDEX_AFTER), [position, limit])
            return [tuple(row) for row in c.fetchall()]

    def _indexed(self, row: Any) -> IndexedEvent:
        if row["topic"] is None:
            notification = archived_placeholder(row["position"])
        else:
            notification = Notification(
                id=row["position"],
                originator_id=self.convert_originator_id(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"],
            )
        return IndexedEvent(
            notification, row["event_type"], row["stream_type"], row["correlation_id"]
        )
