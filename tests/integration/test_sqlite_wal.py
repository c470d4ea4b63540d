"""SQLite in WAL mode: readers never wait for a writer, writers never wait for a reader.

Concurrent appends on both backends are in test_concurrent_appends.py.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from application.fleet import Fleet
from application.store.query import EventFilter


@pytest.fixture
def fleet_sqlite(sqlite_env: dict[str, str]) -> Iterator[Fleet]:
    fleet = Fleet(env=sqlite_env)
    try:
        yield fleet
    finally:
        fleet.close()


def connect(env: dict[str, str]) -> sqlite3.Connection:
    return sqlite3.connect(env["SQLITE_DBNAME"], isolation_level=None, timeout=15)


def test_store_runs_in_wal_mode(fleet_sqlite: Fleet, sqlite_env: dict[str, str]) -> None:
    conn = connect(sqlite_env)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        conn.close()
    assert fleet_sqlite.health()["database"]["wal_mode"] is True


def test_readers_do_not_wait_for_an_open_write_transaction(
    fleet_sqlite: Fleet, sqlite_env: dict[str, str]
) -> None:
    fleet_sqlite.register_specialist("reader-test", "Reader test")
    fleet_sqlite.heartbeat("reader-test", status="busy")

    writer = connect(sqlite_env)
    writer.execute("PRAGMA cache_size = 1")  # force the uncommitted pages out of memory (spill)
    writer.execute("BEGIN IMMEDIATE")
    try:
        writer.executemany(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "VALUES (?, 1, ?, ?)",
            [(uuid.uuid4().hex, "uncommitted", os.urandom(2048)) for _ in range(300)],
        )
        began = time.perf_counter()
        page = fleet_sqlite.app.recorder.select_event_page(EventFilter(), 100)  # type: ignore[attr-defined]
        events, total = fleet_sqlite.events()
        raw = connect(sqlite_env)
        try:
            raw.execute("PRAGMA busy_timeout = 0")  # fail at once rather than wait, if it had to
            raw_count = raw.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
        finally:
            raw.close()
        elapsed = time.perf_counter() - began
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert page.total == total == raw_count == 2
    assert [e.notification.id for e in page.events] == [e["id"] for e in events] == [1, 2]
    assert elapsed < 2.0  # read at once; did not queue behind the writer


def test_writer_commits_while_a_reader_holds_a_snapshot(
    fleet_sqlite: Fleet, sqlite_env: dict[str, str]
) -> None:
    fleet_sqlite.register_specialist("snapshot-test", "Snapshot test")
    reader = connect(sqlite_env)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0] == 1
        began = time.perf_counter()
        fleet_sqlite.heartbeat("snapshot-test", status="busy")  # must not wait for the reader
        elapsed = time.perf_counter() - began
        assert (
            reader.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0] == 1
        )  # its snapshot
        reader.execute("COMMIT")
        assert reader.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0] == 2
    finally:
        reader.close()
    assert elapsed < 2.0
    assert fleet_sqlite.events()[1] == 2


def synchronous_levels(datastore: object) -> set[int]:
    """The ``PRAGMA synchronous`` of every connection a datastore's pool holds."""
    levels = set()
    for connection in list(datastore.pool._pool):  # type: ignore[attr-defined]
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous")
        levels.add(cursor.fetchone()[0])
    return levels


def test_only_projection_commits_skip_the_disk_flush(fleet_sqlite: Fleet) -> None:
    """Events: synchronous=FULL (2), so nothing acknowledged is lost on a power cut.
    Projections: NORMAL (1), derived rows that are applied again if their tail is lost."""
    fleet_sqlite.register_specialist(specialist_id="flush", name="Flush")
    assert synchronous_levels(fleet_sqlite.app.recorder.datastore) == {2}  # type: ignore[attr-defined]
    assert synchronous_levels(fleet_sqlite.projector.datastore) == {1}


def test_event_and_projection_writers_queue_behind_one_lock(fleet_sqlite: Fleet) -> None:
    """In one process they hand the database over directly, not through SQLite's busy
    handler, which sleeps between retries (see ``queue_writers_together``)."""
    events_pool = fleet_sqlite.app.recorder.datastore.pool  # type: ignore[attr-defined]
    assert fleet_sqlite.projector.datastore.pool._writer_lock is events_pool._writer_lock


def autocheckpoint_of_the_pools(fleet: Fleet) -> set[int]:
    pages = set()
    for datastore in (fleet.app.recorder.datastore, fleet.projector.datastore):  # type: ignore[attr-defined]
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint")
            pages.add(cursor.fetchone()[0])
    return pages


def test_checkpoints_stay_sqlites_and_the_log_stays_bounded(sqlite_env: dict[str, str]) -> None:
    """SQLite checkpoints in the commit that takes the log past 1,000 pages, so the log
    holds about that much however many writes come. (A thread checkpointing from its own
    connection, ``PASSIVE``, let it reach about 100 MB in these 1,200 registrations: no
    writer could start it again from the beginning.)"""
    fleet = Fleet(env=sqlite_env)
    try:
        assert autocheckpoint_of_the_pools(fleet) == {1000}  # SQLite's default
        log = Path(sqlite_env["SQLITE_DBNAME"] + "-wal")
        sizes = []
        for number in range(1_200):
            fleet.register_specialist(f"w{number}", "Agent", ["code"], {})
            if number % 200 == 199:
                sizes.append(log.stat().st_size)
        assert max(sizes) < 8 * 2**20, sizes  # 1,000 pages is 4 MB, and the commit past them
    finally:
        fleet.close()
