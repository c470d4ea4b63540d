"""Versioned schema changes for Fleet's own tables (the library keeps its own).

Each migration is ``<folder>/<backend>/NNNN_name.up.sql`` with a matching
``.down.sql`` (the folder is the ``migrations`` package unless one is given).
Applied versions and checksums (of the ``.up.sql``) are recorded in
``fleet_schema_migrations``; each migration, up or down, runs in its own
transaction together with its tracking row, so a failing one changes nothing.

A small runner rather than a migration library: it has to run inside the
eventsourcing datastore's own connection and transaction on PostgreSQL (the
``POSTGRES_SCHEMA`` search path, the start-up advisory lock), which tools that
open their own connections from a URL (yoyo-migrations, alembic) cannot share.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from application.store.portable import PortableCursor

TRACKING_TABLE = "fleet_schema_migrations"
TRACKING_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
    "applied_at TEXT NOT NULL)"
)
_FILE = re.compile(r"^(\d{4})_(\w+)\.up\.sql$")
_PG_LOCK_KEY = 0x666C656574  # "fleet"


class MigrationError(RuntimeError):
    """An applied migration changed on disk, a migration failed, or a request is impossible."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: str
    down: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.up.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class Applied:
    """A row of ``fleet_schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: str


@dataclass(frozen=True)
class MigrationStatus:
    """One line of ``fleet db status``.

    ``state`` is ``ok`` (applied, file unchanged), ``changed`` (applied, file edited
    since), ``pending`` (not applied) or ``missing`` (applied, no file any more).
    """

    version: int
    name: str
    state: str
    applied_at: str | None = None


def migrations_root(folder: str | Path | Traversable | None = None) -> Traversable:
    """The folder holding ``sqlite/`` and ``postgres/``: the package's unless given."""
    if folder is None or folder == "":
        return resources.files("migrations")
    if isinstance(folder, str | Path):
        return Path(folder)
    return folder


def load_migrations(
    backend: str, folder: str | Path | Traversable | None = None
) -> list[Migration]:
    """Every migration of ``backend``, oldest first; a missing ``.down.sql`` is an error."""
    directory = migrations_root(folder).joinpath(backend)
    found = []
    for entry in directory.iterdir():
        match = _FILE.match(entry.name)
        if match:
            down = directory.joinpath(entry.name.replace(".up.sql", ".down.sql"))
            if not down.is_file():
                raise MigrationError(f"{entry.name} has no matching .down.sql")
            found.append(Migration(int(match[1]), match[2], entry.read_text(), down.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version in {backend}: {sorted(versions)}")
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
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise MigrationError(f"incomplete SQL statement at the end of a script: {buffer[:80]!r}")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class MigrationTx(PortableCursor):
    """One migration transaction: ``?`` placeholders on both backends, rows by column name."""

    def __init__(self, cursor: Any, backend: str):
        super().__init__(cursor, postgres=backend == "postgres")
        self.backend = backend

    def run_script(self, script: str) -> None:
        if self.backend == "postgres":
            if script.strip():
                self.cursor.execute(script.encode())  # several statements, no parameters
        else:
            for statement in sqlite_statements(script):
                self.cursor.execute(statement)

    def applied(self) -> dict[int, Applied]:
        rows = self.fetchall(
            f"SELECT version, name, checksum, applied_at FROM {TRACKING_TABLE}"  # noqa: S608
        )
        return {
            int(r["version"]): Applied(
                int(r["version"]), r["name"], r["checksum"], str(r["applied_at"])
            )
            for r in rows
        }


class Target(Protocol):
    """Where migrations run: one backend's database (and schema)."""

    backend: str

    def transaction(self) -> Any:
        """A write transaction that holds the migration lock; the tracking table exists."""

    def read_applied(self) -> dict[int, Applied]:
        """The applied migrations, without taking any lock ({} before the first)."""


class SQLiteTarget:
    """SQLite through a connection of its own: ``BEGIN IMMEDIATE`` serialises runners."""

    backend = "sqlite"

    def __init__(self, dbname: str, timeout: float = 30):
        self.dbname = dbname
        self.timeout = timeout

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.dbname, isolation_level=None, uri=True, timeout=self.timeout)
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[MigrationTx]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(TRACKING_DDL)
                yield MigrationTx(conn.cursor(), self.backend)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def read_applied(self) -> dict[int, Applied]:
        with self._connect() as conn:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TRACKING_TABLE,)
            ).fetchone()
            if not exists:
                return {}
            return MigrationTx(conn.cursor(), self.backend).applied()


class PostgresTarget:
    """PostgreSQL through the library's datastore, in its ``POSTGRES_SCHEMA``."""

    backend = "postgres"

    def __init__(self, datastore: PostgresDatastore):
        self.datastore = datastore

    @contextmanager
    def transaction(self) -> Iterator[MigrationTx]:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
            self._search_path(curs)
            curs.execute(TRACKING_DDL)
            yield MigrationTx(curs, self.backend)

    def read_applied(self) -> dict[int, Applied]:
        with self.datastore.transaction(commit=False) as curs:
            self._search_path(curs)
            curs.execute("SELECT to_regclass(%s) AS t", (TRACKING_TABLE,))
            row = curs.fetchone()
            if row is None or row["t"] is None:
                return {}
            return MigrationTx(curs, self.backend).applied()

    def _search_path(self, curs: Any) -> None:
        curs.execute(SQL("SET LOCAL search_path TO {}").format(Identifier(self.datastore.schema)))


Hook = Callable[[MigrationTx], object]


class Migrator:
    """Upgrades, downgrades and reports one store's schema.

    ``after_up`` maps a version to a function run in that migration's transaction
    after its SQL, for work SQL cannot do (re-indexing stored events).
    """

    def __init__(
        self,
        target: Target,
        migrations: Sequence[Migration],
        after_up: Mapping[int, Hook] | None = None,
    ):
        self.target = target
        self.migrations = {m.version: m for m in migrations}
        self.after_up = dict(after_up or {})

    @property
    def latest(self) -> int:
        return max(self.migrations, default=0)

    def status(self) -> list[MigrationStatus]:
        applied = self.target.read_applied()
        report = [
            MigrationStatus(m.version, m.name, "pending")
            for m in self.migrations.values()
            if m.version not in applied
        ]
        for version, row in applied.items():
            migration = self.migrations.get(version)
            if migration is None:
                state = "missing"
            else:
                state = "ok" if row.checksum == migration.checksum else "changed"
            report.append(MigrationStatus(version, row.name, state, row.applied_at))
        return sorted(report, key=lambda s: s.version)

    def current_version(self) -> int:
        return max(self.target.read_applied(), default=0)

    def pending(self) -> list[int]:
        return [s.version for s in self.status() if s.state == "pending"]

    def verified_pending(self) -> list[int]:
        """``verify``, then the versions not applied yet, from one read of the store."""
        applied = self.target.read_applied()
        self._verify(applied)
        return [version for version in sorted(self.migrations) if version not in applied]

    def verify(self) -> None:
        """Refuse a store whose applied migrations were edited since."""
        self._verify(self.target.read_applied())

    def _verify(self, applied: Mapping[int, Applied]) -> None:
        for version, row in sorted(applied.items()):
            migration = self.migrations.get(version)
            if migration is not None and migration.checksum != row.checksum:
                raise MigrationError(f"migration {migration.label} changed after it was applied")

    def upgrade(self, to: int | None = None) -> list[int]:
        """Apply pending migrations up to ``to`` (all by default); returns the versions applied.

        Re-running is a no-op that takes no write lock.
        """
        wanted = [v for v in sorted(self.migrations) if to is None or v <= to]
        applied = self.target.read_applied()
        self._verify(applied)
        if all(v in applied for v in wanted):
            return []
        done: list[int] = []
        for version in wanted:
            migration = self.migrations[version]
            with self.target.transaction() as tx:
                current = tx.applied()
                self._verify(current)
                if version in current:
                    continue  # another runner applied it meanwhile
                try:
                    tx.run_script(migration.up)
                    if hook := self.after_up.get(version):
                        hook(tx)
                except Exception as exc:
                    raise MigrationError(f"migration {migration.label} failed: {exc}") from exc
                tx.execute(
                    f"INSERT INTO {TRACKING_TABLE} (version, name, checksum, applied_at) "  # noqa: S608
                    "VALUES (?, ?, ?, ?)",
                    [version, migration.name, migration.checksum, _now()],
                )
            done.append(version)
        return done

    def downgrade(self, to: int | None = None, steps: int | None = None) -> list[int]:
        """Undo applied migrations newest first: those above ``to``, or the last ``steps``.

        Returns the versions undone. Each runs its ``.down.sql`` in its own transaction.
        """
        if (to is None) == (steps is None):
            raise MigrationError("downgrade needs exactly one of `to` and `steps`")
        if (to is not None and to < 0) or (steps is not None and steps < 0):
            raise MigrationError("`to` and `steps` must not be negative")
        rows = self.target.read_applied()
        applied = sorted(rows, reverse=True)
        targets = applied[:steps] if steps is not None else [v for v in applied if v > (to or 0)]
        for version in targets:  # check them all before undoing any
            if version not in self.migrations:
                raise MigrationError(
                    f"migration {version:04d} is applied but its files are missing: "
                    "cannot downgrade past it"
                )
        self._verify({v: rows[v] for v in targets})
        done: list[int] = []
        for version in targets:
            migration = self.migrations[version]
            with self.target.transaction() as tx:
                current = tx.applied()
                if version not in current:
                    continue
                if current[version].checksum != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.label} changed after it was applied; "
                        "its .down.sql may not undo what was applied"
                    )
                try:
                    tx.run_script(migration.down)
                except Exception as exc:
                    raise MigrationError(
                        f"downgrade of migration {migration.label} failed: {exc}"
                    ) from exc
                tx.execute(f"DELETE FROM {TRACKING_TABLE} WHERE version = ?", [version])  # noqa: S608
            done.append(version)
        return done
