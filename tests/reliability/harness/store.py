"""The store underneath the servers, reached directly rather than through HTTP.

A test needs the store itself twice: to inflict a fault no HTTP request can (hold the
write lock every event writer needs, as a long maintenance transaction would), and to
read back afterwards what really landed, independently of what the servers answered:
every event with the request that wrote it, and the SQLite file's integrity. Both work
on either backend (a SQLite file, or a PostgreSQL schema).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from application.fleet import Fleet


def is_postgres(store: dict[str, str]) -> bool:
    return store["PERSISTENCE_MODULE"] == "eventsourcing.postgres"


@contextmanager
def offline_fleet(store: dict[str, str]) -> Iterator[Fleet]:
    """A ``Fleet`` in this process on the store, one that does not project on its own
    (``FLEET_PROJECTOR=external``): it reads the store as the servers left it."""
    fleet = Fleet(env={**store, "FLEET_PROJECTOR": "external"})
    try:
        yield fleet
    finally:
        fleet.close()


@dataclass(frozen=True)
class LoggedEvent:
    position: int
    event_type: str
    stream_id: str
    request_id: str | None  # the X-Request-ID of the request that wrote it
    source: str | None  # "http", "sweep", ...


@contextmanager
def raw_connection(store: dict[str, str]) -> Iterator[Any]:
    """A plain DB-API connection to the store (PostgreSQL: its schema on the search path)."""
    if is_postgres(store):
        import psycopg
        from psycopg.sql import SQL, Identifier

        conn = psycopg.connect(
            host=store["POSTGRES_HOST"],
            port=int(store["POSTGRES_PORT"]),
            user=store["POSTGRES_USER"],
            password=store["POSTGRES_PASSWORD"],
            dbname=store["POSTGRES_DBNAME"],
            autocommit=True,
        )
        conn.execute(SQL("SET search_path TO {}").format(Identifier(store["POSTGRES_SCHEMA"])))
    else:
        conn = sqlite3.connect(store["SQLITE_DBNAME"], timeout=30)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def store_write_lock(store: dict[str, str]) -> Iterator[None]:
    """Hold the lock every event writer needs, as a long maintenance transaction would.

    SQLite: the database's write lock (``BEGIN IMMEDIATE``); PostgreSQL: the events table
    in the EXCLUSIVE mode the library's writers take (plain reads still run).
    """
    with raw_connection(store) as conn:
        if is_postgres(store):
            with conn.transaction():
                conn.execute("LOCK TABLE fleet_events IN EXCLUSIVE MODE")
                yield
        else:
            conn.isolation_level = None
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                conn.execute("COMMIT")


def logged_events(store: dict[str, str]) -> list[LoggedEvent]:
    """Every event of the log with the request that wrote it (``metadata.request_id``).

    Also checks that Fleet's event index has exactly one row per stored event.
    """
    table, position = (
        ("fleet_events", "notification_id") if is_postgres(store) else ("stored_events", "rowid")
    )
    with raw_connection(store) as conn:
        stored = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
        indexed = conn.execute("SELECT COUNT(*) FROM fleet_event_index").fetchone()[0]
        unindexed = conn.execute(
            f"SELECT COUNT(*) FROM {table} e WHERE NOT EXISTS "  # noqa: S608
            f"(SELECT 1 FROM fleet_event_index i WHERE i.position = e.{position})"
        ).fetchone()[0]
    assert unindexed == 0 and stored == indexed, (stored, indexed, unindexed)
    events: list[LoggedEvent] = []
    with offline_fleet(store) as fleet:
        while True:
            page, _ = fleet.events(after=events[-1].position if events else 0, limit=1000)
            if not page:
                break
            events.extend(
                LoggedEvent(
                    position=e["id"],
                    event_type=e["event_type"],
                    stream_id=e["stream_id"],
                    request_id=e["metadata"].get("request_id"),
                    source=e["metadata"].get("source"),
                )
                for e in page
            )
    assert len(events) == stored
    return events


def sqlite_integrity(store: dict[str, str]) -> str | None:
    """``PRAGMA integrity_check`` of a SQLite store ("ok"), None on PostgreSQL."""
    if is_postgres(store):
        return None
    with raw_connection(store) as conn:
        return ", ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall())
