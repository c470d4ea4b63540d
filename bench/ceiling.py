"""The HTTP ceiling: a bare Flask app served exactly like Fleet (``gunicorn bench.ceiling:app``).

``POST /noop`` parses the JSON body and answers it; ``POST /insert`` also writes what Fleet
writes for a one-event command, an event row and its index row, in one transaction, with
plain ``sqlite3`` or ``psycopg`` (the store named by ``PERSISTENCE_MODULE``, as for Fleet).
``POST /insert-queued`` is that insert with the process's threads taking turns.
No validation, no aggregate, no projection: the most any Flask service on this server, this
database and this disk could do.

``POST /library-save`` saves a one-event aggregate with the library's bare
``Application.save()`` instead, taking turns on SQLite as Fleet's commands do: the most a
Flask service built on the library could do, before any of Fleet's own work.
``POST /library-register`` is a whole registration command with the library alone
(``bench.bare.library_register``: look the stream up, then save), its threads taking turns
on both backends as Fleet's commands do: the least the library lets a command cost.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import uuid
from typing import Any

from eventsourcing.application import Application
from flask import Flask, request

from bench.bare import BareSpecialist, library_register

SQLITE_TABLES = (
    "CREATE TABLE IF NOT EXISTS ceiling_events (originator_id TEXT, originator_version INTEGER, "
    "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))",
    "CREATE TABLE IF NOT EXISTS ceiling_index (position INTEGER PRIMARY KEY, "
    "event_type TEXT NOT NULL, stream_id TEXT NOT NULL, correlation_id TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ceiling_index_type ON ceiling_index (event_type, position)",
    "CREATE INDEX IF NOT EXISTS ceiling_index_stream ON ceiling_index (stream_id, position)",
)
POSTGRES_TABLES = (
    "CREATE TABLE IF NOT EXISTS ceiling_events (position BIGSERIAL, originator_id UUID, "
    "originator_version INTEGER, topic TEXT, state BYTEA, "
    "PRIMARY KEY (originator_id, originator_version))",
    "CREATE TABLE IF NOT EXISTS ceiling_index (position BIGINT PRIMARY KEY, "
    "event_type TEXT NOT NULL, stream_id TEXT NOT NULL, correlation_id TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ceiling_index_type ON ceiling_index (event_type, position)",
    "CREATE INDEX IF NOT EXISTS ceiling_index_stream ON ceiling_index (stream_id, position)",
)


class SQLiteStore:
    def __init__(self) -> None:
        self.path = os.environ["SQLITE_DBNAME"]
        self.local = threading.local()
        conn = self.connect()
        # Each worker of a multi-worker server sets the file up at import, at the same moment.
        # On a fresh file, a second worker's switch to WAL while the first one's is under way
        # fails at once ("database is locked": SQLite does not wait where waiting could
        # deadlock), so they take turns through a lock file beside it (the lock ends with
        # the file's closing).
        with open(f"{self.path}.setup-lock", "a") as setup:
            fcntl.flock(setup, fcntl.LOCK_EX)
            conn.execute("PRAGMA journal_mode = WAL")  # as the library sets it; synchronous FULL
            for sql in SQLITE_TABLES:
                conn.execute(sql)

    def connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self.local, "conn", None)
        if conn is None:
            timeout = float(os.environ.get("SQLITE_LOCK_TIMEOUT", "15"))
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=timeout)
            self.local.conn = conn
        return conn

    def insert(self, stream: str, topic: str, state: bytes) -> int:
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")  # the library's write transactions take the lock first
        try:
            cursor = conn.execute(
                "INSERT INTO ceiling_events VALUES (?, 1, ?, ?)", (stream, topic, state)
            )
            position = int(cursor.lastrowid or 0)
            conn.execute(
                "INSERT INTO ceiling_index VALUES (?, ?, ?, ?)", (position, topic, stream, stream)
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return position


class PostgresStore:
    def __init__(self) -> None:
        import psycopg

        self.psycopg = psycopg
        self.local = threading.local()
        conn = self.connect()
        with conn.transaction():
            # Each worker of a multi-worker server creates the tables at import, at the same
            # moment: concurrent CREATE TABLE IF NOT EXISTS can still fail on the catalog's
            # unique index, so they take turns (the lock ends with the transaction).
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('bench.ceiling'))")
            for sql in POSTGRES_TABLES:
                conn.execute(sql)

    def connect(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            env = os.environ
            conn = self.psycopg.connect(
                dbname=env["POSTGRES_DBNAME"],
                host=env["POSTGRES_HOST"],
                port=env["POSTGRES_PORT"],
                user=env["POSTGRES_USER"],
                password=env.get("POSTGRES_PASSWORD", ""),
                options=f"-c search_path={env['POSTGRES_SCHEMA']}",
                autocommit=True,
            )
            self.local.conn = conn
        return conn

    def insert(self, stream: str, topic: str, state: bytes) -> int:
        conn = self.connect()
        with conn.transaction():
            position = conn.execute(
                "INSERT INTO ceiling_events (originator_id, originator_version, topic, state) "
                "VALUES (%s, 1, %s, %s) RETURNING position",
                (stream, topic, state),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO ceiling_index VALUES (%s, %s, %s, %s)",
                (position, topic, stream, stream),
            )
        return int(position)


class LibraryOnly(Application[Any]):
    """The library's application with its defaults, on the ceiling's store (its own tables)."""


def library_only(store: SQLiteStore | PostgresStore) -> LibraryOnly:
    """Built by one worker at a time: each creates the library's tables at start-up."""
    if isinstance(store, SQLiteStore):
        return LibraryOnly()
    conn = store.connect()
    conn.execute("SELECT pg_advisory_lock(hashtext('bench.ceiling'))")
    try:
        return LibraryOnly()
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext('bench.ceiling'))")


def create_app() -> Flask:
    app = Flask(__name__)
    postgres = os.environ.get("PERSISTENCE_MODULE") == "eventsourcing.postgres"
    store = PostgresStore() if postgres else SQLiteStore()
    library = library_only(store)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/noop")
    def noop() -> tuple[dict[str, Any], int]:
        return {"received": request.get_json()}, 201

    @app.post("/insert")
    def insert() -> tuple[dict[str, Any], int]:
        body = request.get_json()
        stream = str(uuid.uuid4())
        position = store.insert(stream, "specialist_registered", json.dumps(body).encode())
        return {"id": stream, "position": position, "received": body}, 201

    # The same insert, one thread of the process at a time, as Fleet's commands take turns
    # on SQLite. ``/insert`` lets the threads race for SQLite's lock through its busy
    # handler, which sleeps 1-100 ms between tries: its rate swings between runs and its
    # tail is that sleep. Measured beside it, as data for choosing the baseline; the
    # targets stay against ``/insert``.
    turn = threading.Lock()

    @app.post("/insert-queued")
    def insert_queued() -> tuple[dict[str, Any], int]:
        body = request.get_json()
        stream = str(uuid.uuid4())
        with turn:
            position = store.insert(stream, "specialist_registered", json.dumps(body).encode())
        return {"id": stream, "position": position, "received": body}, 201

    save_turn = threading.Lock() if not postgres else contextlib.nullcontext()

    @app.post("/library-save")
    def library_save() -> tuple[dict[str, Any], int]:
        body = request.get_json()
        specialist = BareSpecialist(body["specialist_id"], body["name"], body["capabilities"])
        with save_turn:
            position = library.save(specialist)[-1].notification.id
        return {"id": str(specialist.id), "position": position, "received": body}, 201

    command_turn = threading.Lock()

    @app.post("/library-register")
    def library_register_route() -> tuple[dict[str, Any], int]:
        body = request.get_json()
        with command_turn:
            specialist = library_register(
                library, body["specialist_id"], body["name"], body["capabilities"]
            )
        return {"id": str(specialist.id), "version": specialist.version, "received": body}, 201

    return app


app = create_app()
