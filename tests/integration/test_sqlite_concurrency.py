"""SQLite under concurrent writers: nothing lost, no "database is locked", readers never wait."""

from __future__ import annotations

import multiprocessing
import os
import queue
import sqlite3
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from application.fleet import Fleet
from application.store.query import EventFilter
from domain.specialist import specialist_stream_id

THREADS = 8
PROCESSES = 4
EVENTS_PER_WRITER = 25  # one registration + 24 heartbeats
STATUSES = ("busy", "idle", "active")


def append_events(fleet: Fleet, writer: str, count: int = EVENTS_PER_WRITER) -> None:
    fleet.register_specialist(writer, f"Writer {writer}", capabilities=["load"])
    for i in range(count - 1):
        fleet.heartbeat(writer, status=STATUSES[i % len(STATUSES)], metrics={"i": i})


def process_writer(env: dict[str, str], writer: str, start: Any, results: Any) -> None:
    """Runs in a spawned process: builds its own Fleet on the shared file, then appends."""
    try:
        start.wait(timeout=60)  # start up together too: startup DDL must not collide
        fleet = Fleet(env=env)
        try:
            append_events(fleet, writer)
        finally:
            fleet.close()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        start.abort()  # the others stop waiting for this writer
        results.put((writer, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    else:
        results.put((writer, None))


@pytest.fixture
def fleet_sqlite(sqlite_env: dict[str, str]) -> Iterator[Fleet]:
    fleet = Fleet(env=sqlite_env)
    try:
        yield fleet
    finally:
        fleet.close()


def connect(env: dict[str, str]) -> sqlite3.Connection:
    return sqlite3.connect(env["SQLITE_DBNAME"], isolation_level=None, timeout=15)


def assert_nothing_lost(env: dict[str, str], writers: list[str]) -> None:
    """N events, N index rows, positions 1..N, each stream's versions 1..k in order."""
    expected = len(writers) * EVENTS_PER_WRITER
    conn = connect(env)
    try:
        events = conn.execute(
            "SELECT rowid, originator_id, originator_version FROM stored_events ORDER BY rowid"
        ).fetchall()
        index = conn.execute(
            "SELECT position, stream_id, event_type FROM fleet_event_index ORDER BY position"
        ).fetchall()
    finally:
        conn.close()
    assert len(events) == expected
    assert len(index) == expected
    assert [row[0] for row in events] == list(range(1, expected + 1))
    assert [row[0] for row in index] == [row[0] for row in events]
    assert [row[1] for row in index] == [str(UUID(row[1])) for row in events]
    for writer in writers:
        stream = specialist_stream_id(writer)
        versions = [row[2] for row in events if UUID(row[1]) == stream]
        assert versions == list(range(1, EVENTS_PER_WRITER + 1)), writer
    types = [row[2] for row in index]
    assert types.count("specialist_registered") == len(writers)
    assert types.count("specialist_active") == len(writers) * (EVENTS_PER_WRITER - 1)


def test_threads_append_through_one_fleet(fleet_sqlite: Fleet, sqlite_env: dict[str, str]) -> None:
    writers = [f"thread-{n}" for n in range(THREADS)]
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(writer: str) -> None:
        try:
            start.wait(timeout=30)
            append_events(fleet_sqlite, writer)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert_nothing_lost(sqlite_env, writers)
    _, total = fleet_sqlite.events(limit=1)
    assert total == THREADS * EVENTS_PER_WRITER


def test_processes_append_to_one_file(sqlite_env: dict[str, str]) -> None:
    Fleet(env=sqlite_env).close()  # create tables and run migrations once, like a deploy step
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    writers = [f"process-{n}" for n in range(PROCESSES)]
    procs = [
        ctx.Process(target=process_writer, args=(sqlite_env, w, start, results)) for w in writers
    ]
    for proc in procs:
        proc.start()
    reported: dict[str, str | None] = {}
    try:
        for _ in procs:
            writer, error = results.get(timeout=90)
            reported[writer] = error
    except queue.Empty:
        pytest.fail(f"writer processes did not report in time; got {reported}")
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        results.close()
        results.join_thread()
    assert reported == dict.fromkeys(writers), reported  # no "database is locked", no error at all
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    assert_nothing_lost(sqlite_env, writers)


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
