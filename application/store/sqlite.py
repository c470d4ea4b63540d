"""SQLite: the library's recorder, plus the event index written in the same transaction."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from eventsourcing.sqlite import SQLiteConnectionPool, SQLiteDatastore

from application.seams import (
    SQLiteInsertSeam,
    StatementCachingPool,
    replace_writer_lock,
    share_writer_lock,
    writer_lock,
)
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


class WriterLockAcrossProcesses:
    """One writer at a time among every process on a SQLite file: this process's threads
    queue on a thread lock, then the one in front takes an exclusive ``flock`` on a file
    beside the database (``<database>.writer-lock``), which every Fleet process opens.

    Without it, processes met at SQLite's own write lock, whose busy handler sleeps 1, 2,
    5, 10 ms ... between its retries: two gunicorn workers on one file kept missing each
    other and served about as many writes as one. The kernel hands a released flock to
    its next waiter at once, and drops it when its holder exits, however it exits.

    The pool's timeout bounds the wait on the thread lock. The flock has no timeout (a
    blocking ``flock`` cannot have one, and polling for it instead cost a fifth of two
    workers' writes): the thread in front waits for the write another process is in. A
    process stopped inside a write holds SQLite's lock too, and every other writer times
    out behind the thread in front, as before. SQLite's own lock still guards the file
    against every other writer (the ``sqlite3`` shell, another program).

    A ``Fleet``'s pools get one that takes the flock only from the end of its start
    (``across_processes``, set by ``start_locking_writers_across_processes``). Start-up
    runs the library's ``CREATE TABLE IF NOT EXISTS`` on a writer: under the flock, a
    process starting beside a long write in another one (a projection rebuild, one
    transaction) waited for all of it before it could serve a read; SQLite's lock lets
    those statements through when the tables exist, as it did before the flock.
    """

    def __init__(self, path: str, across_processes: bool = True) -> None:
        self.path = path
        self.across_processes = across_processes
        self._start_in_this_process()
        _LOCKS.add(self)

    def _start_in_this_process(self) -> None:
        """No lock held and no file open yet: at creation, and in a forked child
        (``_restart_locks_in_child``), whose copies of its parent's would share the
        parent's flock (a flock belongs to an open file) and its thread lock's state."""
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._flocked = False  # whether the holder of the thread lock took the flock

    def _file(self) -> int:
        """The lock file, opened by this process."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._fd

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self._threads.acquire(blocking, timeout):
            return False
        if not self.across_processes:
            return True
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._threads.release()
            return False
        except BaseException:
            self._threads.release()
            raise
        self._flocked = True
        return True

    def release(self) -> None:
        try:
            if self._flocked:
                self._flocked = False
                fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def start_across_processes(self) -> None:
        """From now on, take the flock too (waiting for a writer in flight to finish)."""
        with self._threads:
            self.across_processes = True

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


# Every live lock, for a forked child to start its own (asking the pid at each acquire
# instead cost a system call a write, 1-2 % of a registration's CPU under py-spy).
_LOCKS: weakref.WeakSet[WriterLockAcrossProcesses] = weakref.WeakSet()


def _restart_locks_in_child() -> None:
    """Each lock of the parent starts afresh in a forked child, which also closes its copy of
    the parent's lock file: that copy would keep a parent's flock held after the parent
    died, for as long as the child lives."""
    for lock in list(_LOCKS):
        if lock._fd is not None:
            with contextlib.suppress(OSError):
                os.close(lock._fd)
        lock._start_in_this_process()


os.register_at_fork(after_in_child=_restart_locks_in_child)


def database_file(db_name: str) -> str | None:
    """The file a SQLite database name opens (the library opens names as URIs), or None
    for an in-memory database (or none named). The start-up and writer lock files sit
    beside it."""
    if not db_name or SQLiteConnectionPool.detect_memory_mode(db_name):
        return None
    if db_name.startswith("file:"):
        return unquote(urlsplit(db_name).path) or None
    return db_name


def lock_writers_across_processes(datastore: object) -> None:
    """Give a file-backed SQLite datastore's pool a ``WriterLockAcrossProcesses``, not yet
    taking its flock. Call it before the pool hands out a writer (``queue_writers_together``
    then shares it)."""
    if not isinstance(datastore, SQLiteDatastore):
        return
    path = database_file(datastore.pool.db_name)
    if path is not None:
        lock = WriterLockAcrossProcesses(f"{path}.writer-lock", across_processes=False)
        replace_writer_lock(datastore.pool, lock)


def start_locking_writers_across_processes(datastore: object) -> None:
    """From now on, the pool's writers take the flock of its ``WriterLockAcrossProcesses``
    (set by ``lock_writers_across_processes``), once start-up's statements are done."""
    lock = writer_lock(datastore.pool) if isinstance(datastore, SQLiteDatastore) else None
    if isinstance(lock, WriterLockAcrossProcesses):
        lock.start_across_processes()


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
