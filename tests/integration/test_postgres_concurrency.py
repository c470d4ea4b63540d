"""PostgreSQL under concurrent writers: threads in one Fleet, processes on one schema."""

from __future__ import annotations

import multiprocessing
import queue
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from application.fleet import Fleet
from domain.specialist import specialist_stream_id

pytestmark = pytest.mark.postgres

THREADS = 8
PROCESSES = 4
EVENTS_PER_WRITER = 25  # one registration + 24 heartbeats
STATUSES = ("busy", "idle", "active")


def append_events(fleet: Fleet, writer: str, count: int = EVENTS_PER_WRITER) -> None:
    fleet.register_specialist(writer, f"Writer {writer}", capabilities=["load"])
    for i in range(count - 1):
        fleet.heartbeat(writer, status=STATUSES[i % len(STATUSES)], metrics={"i": i})


def process_writer(env: dict[str, str], writer: str, start: Any, results: Any) -> None:
    """Runs in a spawned process: builds its own Fleet on the shared schema, then appends."""
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
def fleet_pg(postgres_env: dict[str, str]) -> Iterator[Fleet]:
    fleet = Fleet(env=postgres_env)
    try:
        yield fleet
    finally:
        fleet.close()


def assert_nothing_lost(env: dict[str, str], writers: list[str]) -> None:
    """N events and N index rows at the same positions, 1..N; each stream's versions 1..k."""
    expected = len(writers) * EVENTS_PER_WRITER
    conninfo = {
        "host": env["POSTGRES_HOST"],
        "port": int(env["POSTGRES_PORT"]),
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"],
        "dbname": env["POSTGRES_DBNAME"],
    }
    schema = Identifier(env["POSTGRES_SCHEMA"])
    with psycopg.connect(**conninfo) as conn:
        events = conn.execute(
            SQL(
                "SELECT notification_id, originator_id, originator_version "
                "FROM {}.fleet_events ORDER BY notification_id"
            ).format(schema)
        ).fetchall()
        index = conn.execute(
            SQL(
                "SELECT position, stream_id, event_type FROM {}.fleet_event_index ORDER BY position"
            ).format(schema)
        ).fetchall()
    assert len(events) == expected
    assert len(index) == expected
    # No writer conflicts here (one stream per writer), so no sequence value is burnt: no gaps.
    assert [row[0] for row in events] == list(range(1, expected + 1))
    assert [row[0] for row in index] == [row[0] for row in events]
    assert [row[1] for row in index] == [str(row[1]) for row in events]
    for writer in writers:
        stream = specialist_stream_id(writer)
        versions = [row[2] for row in events if row[1] == stream]
        assert versions == list(range(1, EVENTS_PER_WRITER + 1)), writer
    types = [row[2] for row in index]
    assert types.count("specialist_registered") == len(writers)
    assert types.count("specialist_active") == len(writers) * (EVENTS_PER_WRITER - 1)


def test_threads_append_through_one_fleet(fleet_pg: Fleet, postgres_env: dict[str, str]) -> None:
    writers = [f"thread-{n}" for n in range(THREADS)]
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(writer: str) -> None:
        try:
            start.wait(timeout=30)
            append_events(fleet_pg, writer)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert_nothing_lost(postgres_env, writers)
    _, total = fleet_pg.events(limit=1)
    assert total == THREADS * EVENTS_PER_WRITER


def test_processes_append_to_one_schema(postgres_env: dict[str, str]) -> None:
    Fleet(env=postgres_env).close()  # create tables and run migrations once, like a deploy step
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    writers = [f"process-{n}" for n in range(PROCESSES)]
    procs = [
        ctx.Process(target=process_writer, args=(postgres_env, w, start, results)) for w in writers
    ]
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
    assert reported == dict.fromkeys(writers), reported
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    assert_nothing_lost(postgres_env, writers)
