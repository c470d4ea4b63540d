"""Concurrent writers on both backends: threads in one Fleet, processes on one store.

Nothing is lost, nothing raises (no "database is locked" on SQLite, no start-up DDL
collision on PostgreSQL), positions run 1..N and the event index matches the log.
"""

from __future__ import annotations

import queue
import threading
import traceback
from typing import TYPE_CHECKING, Any
from uuid import UUID

import pytest

from application.fleet import Fleet
from domain.specialist import specialist_stream_id
from tests.processes import fleet_processes

if TYPE_CHECKING:
    from tests.conftest import RawStore

THREADS = 8
PROCESSES = 4
EVENTS_PER_WRITER = 25  # one registration + 24 heartbeats
STATUSES = ("busy", "idle", "active")


def append_events(fleet: Fleet, writer: str, count: int = EVENTS_PER_WRITER) -> None:
    fleet.register_specialist(writer, f"Writer {writer}", capabilities=["load"])
    for i in range(count - 1):
        fleet.heartbeat(writer, status=STATUSES[i % len(STATUSES)], metrics={"i": i})


def process_writer(env: dict[str, str], writer: str, start: Any, results: Any) -> None:
    """Runs in a spawned process: builds its own Fleet on the shared store, then appends."""
    try:
        start.wait(timeout=60)  # start up together too: start-up must not collide
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


def assert_nothing_lost(store: RawStore, writers: list[str]) -> None:
    """N events and N index rows at positions 1..N; each stream's versions 1..k in order."""
    expected = len(writers) * EVENTS_PER_WRITER
    events = store.event_rows()
    index = store.index_rows()
    assert len(events) == expected
    assert len(index) == expected
    # One stream per writer, so no conflict burns a PostgreSQL sequence value: no gaps.
    assert [int(row[0]) for row in events] == list(range(1, expected + 1))
    assert [int(row[0]) for row in index] == [int(row[0]) for row in events]
    assert [row[2] for row in index] == [str(UUID(str(row[1]))) for row in events]
    for writer in writers:
        stream = specialist_stream_id(writer)
        versions = [row[2] for row in events if UUID(str(row[1])) == stream]
        assert versions == list(range(1, EVENTS_PER_WRITER + 1)), writer
    types = [row[1] for row in index]
    assert types.count("specialist_registered") == len(writers)
    assert types.count("specialist_active") == len(writers) * (EVENTS_PER_WRITER - 1)


def test_threads_append_through_one_fleet(fleet: Fleet, raw_store: RawStore) -> None:
    writers = [f"thread-{n}" for n in range(THREADS)]
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(writer: str) -> None:
        try:
            start.wait(timeout=30)
            append_events(fleet, writer)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert_nothing_lost(raw_store, writers)
    _, total = fleet.events(limit=1)
    assert total == THREADS * EVENTS_PER_WRITER


def test_processes_append_to_one_store(backend: dict[str, str], raw_store: RawStore) -> None:
    ctx = fleet_processes()
    start = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    writers = [f"process-{n}" for n in range(PROCESSES)]
    procs = [ctx.Process(target=process_writer, args=(backend, w, start, results)) for w in writers]
    for proc in procs:
        proc.start()
    reported: dict[str, str | None] = {}
    try:
        for _ in procs:
            writer, error = results.get(timeout=120)
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
    assert reported == dict.fromkeys(writers), reported  # nothing raised, in any process
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    assert_nothing_lost(raw_store, writers)
