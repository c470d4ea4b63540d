"""SQLite: the library's recorder, plus the event index written in the same transaction."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Mapping
from typing import Any

from eventsourcing.sqlite import SQLiteDatastore

from application.periodic import PeriodicThread, repeat
from application.seams import SQLiteInsertSeam, StatementCachingPool, share_writer_lock
from application.store.indexing import IndexingRecorder
from application.store.keys import IDEMPOTENCY_TABLE, PURGE_KEYS_IN_ORDER
from application.store.query import EVENT_BLOCKS_TABLE, EVENT_COUNTS_TABLE, EVENT_INDEX_TABLE

log = logging.getLogger(__name__)

# Seconds between the background WAL checkpoints (``WalCheckpointer``); 0 leaves them to
# SQLite, in the commit that crosses its threshold.
DEFAULT_CHECKPOINT_INTERVAL = 0.5


def background_checkpoint_interval(datastore: object, env: Mapping[str, str]) -> float:
    """Seconds between a ``WalCheckpointer``'s passes over ``datastore``'s file, or 0 when
    SQLite keeps checkpointing in its commits (PostgreSQL, an in-memory database, or
    ``FLEET_WAL_CHECKPOINT_INTERVAL=0``). One rule for both halves: the pools' connections
    stop checkpointing exactly when a thread does it for them."""
    value = float(env.get("FLEET_WAL_CHECKPOINT_INTERVAL") or DEFAULT_CHECKPOINT_INTERVAL)
    if value < 0:
        raise ValueError(f"FLEET_WAL_CHECKPOINT_INTERVAL must be 0 (off) or more, not {value}")
    if not isinstance(datastore, SQLiteDatastore) or datastore.pool.is_sqlite_memory_mode:
        return 0.0
    return value


def prepare_sqlite_pool(datastore: object, env: Mapping[str, str]) -> None:
    """Give a new SQLite datastore Fleet's pool: its connections keep their prepared
    statements (``StatementCachingPool``; the library's keep one) and, when a
    ``WalCheckpointer`` runs, leave checkpoints to it. Call it before the datastore opens a
    connection: those it already opened would keep the library's settings."""
    if not isinstance(datastore, SQLiteDatastore) or isinstance(
        datastore.pool, StatementCachingPool
    ):
        return
    datastore.pool = StatementCachingPool.like(datastore.pool)
    if background_checkpoint_interval(datastore, env) > 0:
        datastore.pool.on_connect = leave_checkpoints_to_the_checkpointer


def leave_checkpoints_to_the_checkpointer(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA wal_autocheckpoint = 0")


class WalCheckpointer:
    """Copies the write-ahead log into the database file from a thread of its own.

    By default SQLite checkpoints inside the commit that takes the log past 1,000 pages,
    so about one write in a hundred also copied the log and flushed the file, and the
    commands behind it waited: in process, the p99 of 12,000 registrations went from
    3.9-4.4 ms to 2.3-2.9 ms with this thread doing it (bench/findings.md). The pools'
    connections turn automatic checkpoints off (``prepare_sqlite_pool``) and this thread
    runs a ``PASSIVE`` checkpoint every ``every`` seconds instead: it takes no lock a writer
    or a reader waits for, and a pass with nothing to copy costs microseconds.
    """

    def __init__(self, db_name: str, every: float, timeout: float):
        self.db_name = db_name
        self.every = every
        self.timeout = timeout
        # The last pass's (busy, frames in the log, frames copied), as SQLite returns them.
        self.last: tuple[int, int, int] | None = None
        self._thread = PeriodicThread("fleet-wal-checkpoint", self._loop)
        self._thread.start()

    def _loop(self, stop: threading.Event) -> None:
        connection = sqlite3.connect(
            self.db_name, uri=True, isolation_level=None, timeout=self.timeout
        )
        try:
            repeat(stop, self.every, lambda: self._checkpoint(connection), wait_first=True)
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:  # the next pass tries again; writers are not affected
            log.exception("WAL checkpoint of %s failed", self.db_name)
            return
        self.last = (int(row[0]), int(row[1]), int(row[2]))

    def stop(self) -> None:
        """Stop the thread (the last connection to close checkpoints what is left)."""
        self._thread.stop(timeout=10)


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
