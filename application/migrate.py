"""Versioned schema changes for Fleet's own tables (the library keeps its own).

Each migration is ``migrations/<backend>/NNNN_name.up.sql`` with a matching
``.down.sql``. Applied versions and checksums are recorded in
``fleet_schema_migrations``; each migration runs in its own transaction.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS fleet_schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
    "applied_at TEXT NOT NULL)"
)
_FILE = re.compile(r"^(\d{4})_(\w+)\.up\.sql$")
_PG_LOCK_KEY = 0x666C656574  # "fleet"


class MigrationError(RuntimeError):
    """An applied migration changed on disk, or a migration failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: str
    down: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.up.encode()).hexdigest()


def load_migrations(backend: str) -> list[Migration]:
    folder = resources.files("migrations").joinpath(backend)
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            down = folder.joinpath(entry.name.replace(".up.sql", ".down.sql")).read_text()
            found.append(Migration(int(match[1]), match[2], entry.read_text(), down))
    return sorted(found, key=lambda m: m.version)


def sqlite_statements(script: str) -> Iterator[str]:
    """Split a script into statements, keeping trigger bodies whole."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if statement and not all(
                part.strip().startswith("--") or not part.strip() for part in statement.splitlines()
            ):
                yield statement


def _verify(applied: dict[int, str], migrations: list[Migration]) -> None:
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} changed after it was applied"
            )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def upgrade_sqlite(dbname: str) -> list[int]:
    """Apply pending SQLite migrations; returns the versions applied."""
    conn = sqlite3.connect(dbname, isolation_level=None, uri=True, timeout=30)
    try:
        migrations = load_migrations("sqlite")
        if _sqlite_up_to_date(conn, migrations):
            return []  # the common start-up path takes no write lock
        conn.execute(TRACKING_DDL)
        done: list[int] = []
        for migration in migrations:
            conn.execute("BEGIN IMMEDIATE")
            try:
                applied = dict(
                    conn.execute("SELECT version, checksum FROM fleet_schema_migrations")
                )
                _verify(applied, [migration])
                if migration.version not in applied:
                    for statement in sqlite_statements(migration.up):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO fleet_schema_migrations VALUES (?, ?, ?, ?)",
                        (migration.version, migration.name, migration.checksum, _now()),
                    )
                    done.append(migration.version)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return done
    finally:
        conn.close()


def _sqlite_up_to_date(conn: sqlite3.Connection, migrations: list[Migration]) -> bool:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'fleet_schema_migrations'"
    ).fetchone()
    if not exists:
        return False
    applied = dict(conn.execute("SELECT version, checksum FROM fleet_schema_migrations"))
    _verify(applied, migrations)
    return all(m.version in applied for m in migrations)


def upgrade_postgres(datastore: PostgresDatastore) -> list[int]:
    """Apply pending PostgreSQL migrations in the datastore's schema."""
    done: list[int] = []
    for migration in load_migrations("postgres"):
        with datastore.transaction(commit=True) as curs:
            _pg_prepare(curs, datastore.schema)
            curs.execute("SELECT version, checksum FROM fleet_schema_migrations")
            applied = {row["version"]: row["checksum"] for row in curs.fetchall()}
            _verify(applied, [migration])
            if migration.version in applied:
                continue
            curs.execute(migration.up.encode())
            curs.execute(
                "INSERT INTO fleet_schema_migrations VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, migration.checksum, _now()),
            )
            done.append(migration.version)
    return done


def _pg_prepare(curs: Any, schema: str) -> None:
    curs.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
    curs.execute(SQL("SET LOCAL search_path TO {}").format(Identifier(schema)))
    curs.execute(TRACKING_DDL)
