"""SQLite in WAL mode: readers never wait for a writer, writers never wait for a reader.

Concurrent appends on both backends are in test_concurrent_appends.py.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Iterator

import pytest

from application.app import FleetApplication
from application.fleet import Fleet
from application.store.query import EventFilter
from application.store.sqlite import WalCheckpointer


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


def test_a_thread_checkpoints_the_log_not_the_commits(sqlite_env: dict[str, str]) -> None:
    fleet = Fleet(env={**sqlite_env, "FLEET_WAL_CHECKPOINT_INTERVAL": "0.05"})
    try:
        checkpointer = fleet.app.checkpointer
        assert checkpointer is not None
        assert autocheckpoint_of_the_pools(fleet) == {0}  # no commit copies the log
        for number in range(40):
            fleet.register_specialist(f"wal-{number}", "Agent", ["code"], {})
        deadline, last = time.monotonic() + 10, None
        while time.monotonic() < deadline:
            last = checkpointer.last
            if last is not None and last[1] > 0 and last[2] == last[1]:
                break
            time.sleep(0.02)
        assert last is not None and last[0] == 0 and last[1] > 0 and last[2] == last[1], last
    finally:
        fleet.close()
    assert not checkpointer._thread.thread.is_alive()


def test_an_interval_of_zero_leaves_checkpoints_to_sqlite(sqlite_env: dict[str, str]) -> None:
    fleet = Fleet(env={**sqlite_env, "FLEET_WAL_CHECKPOINT_INTERVAL": "0"})
    try:
        assert fleet.app.checkpointer is None
        assert autocheckpoint_of_the_pools(fleet) == {1000}  # SQLite's default
    finally:
        fleet.close()


def test_a_negative_checkpoint_interval_fails_the_start(sqlite_env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="FLEET_WAL_CHECKPOINT_INTERVAL must be 0"):
        Fleet(env={**sqlite_env, "FLEET_WAL_CHECKPOINT_INTERVAL": "-1"})


def test_an_in_memory_store_has_no_log_to_checkpoint() -> None:
    app = FleetApplication(env={"SQLITE_DBNAME": "file:wal_test?mode=memory&cache=shared"})
    try:
        assert app.checkpointer is None
    finally:
        app.close()


def test_a_failed_checkpoint_is_logged_and_the_next_pass_tries_again(
    sqlite_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    checkpointer = WalCheckpointer(sqlite_env["SQLITE_DBNAME"], every=3600, timeout=1)
    try:
        closed = sqlite3.connect(":memory:")
        closed.close()
        checkpointer._checkpoint(closed)
        assert checkpointer.last is None
        assert "WAL checkpoint of" in caplog.text
        live = sqlite3.connect(sqlite_env["SQLITE_DBNAME"], isolation_level=None)
        try:
            checkpointer._checkpoint(live)
        finally:
            live.close()
        assert checkpointer.last is not None
    finally:
        checkpointer.stop()
