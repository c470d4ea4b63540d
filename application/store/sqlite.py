"""SQLite: the library's recorder, plus the event index written in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eventsourcing.sqlite import SQLiteDatastore

from application.seams import SQLiteInsertSeam, StatementCachingPool, share_writer_lock
from application.store.indexing import IndexingRecorder
from application.store.keys import IDEMPOTENCY_TABLE, PURGE_KEYS_IN_ORDER
from application.store.query import EVENT_BLOCKS_TABLE, EVENT_COUNTS_TABLE, EVENT_INDEX_TABLE


def keep_prepared_statements(datastore: object) -> None:
    """Give a new SQLite datastore a pool whose connections keep their prepared statements
    (``StatementCachingPool``: the library's keep one). Call it before the datastore
    opens a connection: those it already opened would keep the small cache."""
    if isinstance(datastore, SQLiteDatastore) and not isinstance(
        datastore.pool, StatementCachingPool
    ):
        datastore.pool = StatementCachingPool.like(datastore.pool)


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


class FleetSQLiteRecorder(IndexingRecorder, SQLiteInsertSeam):
    """Writes each event's index row beside it, so filtered reads are exact and immediate."""

    PLACEHOLDER = "?"
    PURGE_KEYS = PURGE_KEYS_IN_ORDER

    def _sql(self, template: str) -> str:
        return template.format(
            index=EVENT_INDEX_TABLE,
            events=self.events_table_name,
            counts=EVENT_COUNTS_TABLE,
            blocks=EVENT_BLOCKS_TABLE,
            keys=IDEMPOTENCY_TABLE,
            pos="rowid",
            p="?",
        )

    def _rowcount(self, cursor: Any) -> int:
        return int(cursor.sqlite_cursor.rowcount)

    def _stream_id(self, value: Any) -> Any:
        return self.convert_originator_id(value)

    def _stored_key(self, stream: UUID) -> Any:
        return stream.hex  # as the library's SQLite recorder stores a UUID
