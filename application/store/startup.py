"""One process at a time creates tables and runs migrations on a store.

Workers that boot together on one store race through the library's start-up DDL.
On PostgreSQL ``CREATE OR REPLACE FUNCTION es_insert_events_...`` and the table
creations fail with "tuple concurrently updated" or a duplicate type; on SQLite two
processes both see no tracking table and both insert its migration row, and the loser
gets "Failed to record tracking for __migration__ 1". So start-up is serialised: a
PostgreSQL advisory lock per schema, an ``flock`` on a file beside the SQLite database.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg
from eventsourcing.utils import Environment
from psycopg.conninfo import make_conninfo
from psycopg.sql import SQL, Identifier

from application.settings import POSTGRES
from application.store.sqlite import database_file


@contextmanager
def startup_lock(settings: Mapping[str, str], create_schema: bool = False) -> Iterator[None]:
    """Hold the store's start-up lock; a no-op for an in-memory SQLite database.

    ``create_schema`` creates a missing ``POSTGRES_SCHEMA`` (the library expects it to
    exist); only a role that may create tables asks for it.
    """
    if settings.get("PERSISTENCE_MODULE") == POSTGRES:
        with _postgres_lock(settings, create_schema):
            yield
        return
    path = database_file(settings.get("SQLITE_DBNAME", ""))
    if path is None:
        yield
        return
    with open(f"{path}.startup-lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _postgres_lock(settings: Mapping[str, str], create_schema: bool) -> Iterator[None]:
    env = Environment("fleet", dict(settings))
    conninfo = make_conninfo(
        host=env.get("POSTGRES_HOST") or "",
        port=env.get("POSTGRES_PORT") or "5432",
        dbname=env.get("POSTGRES_DBNAME") or "",
        user=env.get("POSTGRES_USER") or "",
        password=env.get("POSTGRES_PASSWORD") or "",
    )
    schema = env.get("POSTGRES_SCHEMA") or "public"
    key = f"fleet:startup:{schema}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            if create_schema:
                conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
