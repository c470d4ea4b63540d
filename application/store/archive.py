"""The event archive: where ``fleet compact --archive`` moves old events out of the live log.

Only events that no reader needs from the live log move, under the rules of the
eventsourcing notes (§9): versions 2 to the stream's latest snapshot, never version 1
(the create guard), never the stream's newest event nor the newest row of the table
(SQLite would reuse its rowid), never past the slowest projection's position, and only
events older than the retention age. Each archived row keeps its position
(``notification_id``), so archive plus live is the whole log, in order.

- SQLite: a second database file (``FLEET_ARCHIVE_DBNAME``). SQLite does not make a
  transaction over two WAL database files atomic as a set, so a batch is moved in two
  steps: the rows are copied into the archive and committed there, then one transaction
  on the live file deletes exactly those rows that the archive holds byte for byte. A
  crash between the two leaves a row in both places, which readers see once.
- PostgreSQL: a schema of its own in the same database (``FLEET_ARCHIVE_SCHEMA``); a batch
  is copied and deleted in one transaction.

The live table's trigger lets a DELETE through only while the archive transaction holds
a permit row for that stream (written and removed inside the transaction: no other
transaction ever sees it); every other UPDATE and DELETE is refused (migration 0005).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

TABLE = "archived_events"
CACHE_SECONDS = 5.0  # how long an archive's "not there" and highest position are trusted
COLUMNS = "notification_id, originator_id, originator_version, topic, state"
DEFAULT_BATCH = 5000


class Archive(Protocol):
    """What readers and the compaction job need from an archive, on either backend."""

    def exists(self) -> bool: ...

    def max_position(self, fresh: bool = False) -> int: ...

    def select_events(
        self, stream: UUID, gt: int | None = None, lte: int | None = None
    ) -> list[StoredEvent]: ...

    def select_notifications(self, after: int, limit: int) -> list[Notification]: ...

    def select_positions(self, positions: Sequence[int]) -> dict[int, Notification]: ...

    def has_stream(self, stream: UUID) -> bool: ...

    def count(self) -> int: ...

    def move(
        self, stream: UUID, max_version: int, max_position: int, batch: int = DEFAULT_BATCH
    ) -> int: ...

    def close(self) -> None: ...


class _Cached:
    """A number read from the archive, trusted for ``CACHE_SECONDS`` (or for good)."""

    def __init__(self) -> None:
        self.value = 0
        self.until = 0.0

    def get(self, fresh: bool, read: Callable[[], int]) -> int:
        if fresh or time.monotonic() >= self.until:
            self.value = read()
            if self.until != float("inf"):  # ``read`` may have kept it for good
                self.until = time.monotonic() + CACHE_SECONDS
        return self.value

    def keep(self, value: int) -> None:
        self.value, self.until = value, float("inf")

    def forget(self) -> None:
        if self.until != float("inf"):
            self.until = 0.0


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _notification(row: Any, stream: Any) -> Notification:
    return Notification(
        id=int(row["notification_id"]),
        originator_id=stream,
        originator_version=int(row["originator_version"]),
        topic=row["topic"],
        state=bytes(row["state"]),
    )


def _range(gt: int | None, lte: int | None) -> tuple[str, list[int]]:
    clauses, params = "", []
    if gt is not None:
        clauses += " AND originator_version > ?"
        params.append(gt)
    if lte is not None:
        clauses += " AND originator_version <= ?"
        params.append(lte)
    return clauses, params


# Which live rows of one stream may move: the safety rules, as one WHERE clause
# (parameters: stream, max_version, max_position, stream, max_version).
ELIGIBLE = (
    "originator_id = ? AND originator_version BETWEEN 2 AND ? AND {pos} <= ? "
    "AND {pos} < (SELECT MAX({pos}) FROM {events}) "
    "AND originator_version < (SELECT MAX(originator_version) FROM {events} "
    "WHERE originator_id = ?) AND originator_version <= ?"
)


class SQLiteArchive:
    """The archive file beside the live SQLite file."""

    def __init__(self, dbname: str, path: str, timeout: float = 15):
        self.dbname = dbname
        self.path = path
        self.timeout = timeout
        self._reader: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._max = _Cached()

    @staticmethod
    def default_path(dbname: str) -> str:
        live = Path(dbname)
        return str(live.with_name(f"{live.stem}.archive{live.suffix or '.sqlite3'}"))

    def exists(self) -> bool:
        return Path(self.path).is_file()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        with self._lock:
            if self._reader is None:
                if not self.exists():
                    yield None
                    return
                self._reader = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, timeout=self.timeout,
                    check_same_thread=False, isolation_level=None,
                )  # fmt: skip
                self._reader.row_factory = sqlite3.Row
            yield self._reader

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._read() as conn:
            if conn is None:
                return []
            try:
                return conn.execute(sql, list(params)).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise

    def select_events(
        self, stream: UUID, gt: int | None = None, lte: int | None = None
    ) -> list[StoredEvent]:
        clauses, params = _range(gt, lte)
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {TABLE} WHERE originator_id = ?{clauses} "  # noqa: S608 - fixed names
            "ORDER BY originator_version",
            [stream.hex, *params],
        )
        return [_notification(row, stream) for row in rows]

    def select_notifications(self, after: int, limit: int) -> list[Notification]:
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {TABLE} WHERE notification_id > ? "  # noqa: S608
            "ORDER BY notification_id LIMIT ?",
            [after, limit],
        )
        return [_notification(row, UUID(row["originator_id"])) for row in rows]

    def select_positions(self, positions: Sequence[int]) -> dict[int, Notification]:
        if not positions:
            return {}
        marks = ", ".join("?" * len(positions))
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {TABLE} WHERE notification_id IN ({marks})",  # noqa: S608
            list(positions),
        )
        return {int(r["notification_id"]): _notification(r, UUID(r["originator_id"])) for r in rows}

    def has_stream(self, stream: UUID) -> bool:
        return bool(
            self._rows(f"SELECT 1 FROM {TABLE} WHERE originator_id = ? LIMIT 1", [stream.hex])  # noqa: S608
        )

    def count(self) -> int:
        rows = self._rows(f"SELECT COUNT(*) AS n FROM {TABLE}", [])  # noqa: S608
        return int(rows[0]["n"]) if rows else 0

    def max_position(self, fresh: bool = False) -> int:
        return self._max.get(fresh, self._highest)

    def _highest(self) -> int:
        rows = self._rows(f"SELECT MAX(notification_id) AS n FROM {TABLE}", [])  # noqa: S608
        return int(rows[0]["n"] or 0) if rows else 0

    def move(
        self, stream: UUID, max_version: int, max_position: int, batch: int = DEFAULT_BATCH
    ) -> int:
        """Move the stream's eligible rows, ``batch`` at a time; returns how many moved."""
        self._max.forget()
        conn = sqlite3.connect(self.dbname, uri=True, timeout=self.timeout, isolation_level=None)
        try:
            conn.execute("ATTACH DATABASE ? AS archive", (self.path,))
            conn.execute("PRAGMA archive.journal_mode=WAL")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS archive.{TABLE} ("
                "notification_id INTEGER PRIMARY KEY, originator_id TEXT NOT NULL, "
                "originator_version INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB NOT NULL, "
                "archived_at TEXT NOT NULL, UNIQUE (originator_id, originator_version))"
            )
            eligible = ELIGIBLE.format(pos="rowid", events="main.stored_events")
            moved = 0
            while True:
                key = stream.hex
                bound = conn.execute(
                    f"SELECT MAX(originator_version) FROM (SELECT originator_version "  # noqa: S608
                    f"FROM main.stored_events WHERE {eligible} "
                    "ORDER BY originator_version LIMIT ?)",
                    (key, max_version, max_position, key, max_version, batch),
                ).fetchone()[0]
                if bound is None:
                    return moved
                args = (key, bound, max_position, key, bound)
                # 1. Copy, committed in the archive file (it only reads the live file).
                conn.execute("BEGIN")
                conn.execute(
                    f"INSERT OR IGNORE INTO archive.{TABLE} "  # noqa: S608
                    f"SELECT rowid, originator_id, originator_version, topic, state, ? "
                    f"FROM main.stored_events WHERE {eligible}",
                    (_now(), *args),
                )
                conn.execute("COMMIT")
                # 2. Delete, in one live transaction, exactly the rows the archive holds.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "INSERT INTO main.fleet_archive_permit VALUES (?, ?, ?)",
                        (key, bound, max_position),
                    )
                    deleted = conn.execute(
                        f"DELETE FROM main.stored_events WHERE {eligible} AND EXISTS ("  # noqa: S608
                        f"SELECT 1 FROM archive.{TABLE} a WHERE a.notification_id = "
                        "stored_events.rowid AND a.originator_id = stored_events.originator_id "
                        "AND a.originator_version = stored_events.originator_version "
                        "AND a.topic = stored_events.topic AND a.state = stored_events.state)",
                        args,
                    ).rowcount
                    conn.execute(
                        "DELETE FROM main.fleet_archive_permit WHERE originator_id = ?", (key,)
                    )
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                moved += deleted
                if deleted == 0:
                    return moved
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


class PostgresArchive:
    """A schema of the same database: a batch moves in one transaction."""

    def __init__(self, datastore: PostgresDatastore, schema: str, events_table: str):
        self.datastore = datastore
        self.schema = schema
        self.events_table = events_table
        self._exists = _Cached()
        self._max = _Cached()

    @staticmethod
    def default_schema(live_schema: str) -> str:
        return f"{live_schema}_archive"

    @contextmanager
    def _tx(self, commit: bool = False) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as curs:
            curs.execute(
                SQL("SET LOCAL search_path TO {}").format(Identifier(self.datastore.schema))
            )
            yield curs

    def _sql(self, template: str) -> Any:
        return SQL(template.replace("?", "%s")).format(
            archive=Identifier(self.schema, TABLE),
            events=Identifier(self.datastore.schema, self.events_table),
        )

    def exists(self) -> bool:
        return bool(self._exists.get(False, self._look))

    def _look(self) -> int:
        with self._tx() as curs:
            curs.execute("SELECT to_regclass(%s) AS t", (f'"{self.schema}".{TABLE}',))
            row = curs.fetchone()
        if row is not None and row["t"] is not None:
            self._exists.keep(1)  # an archive, once made, stays
            return 1
        return 0

    def max_position(self, fresh: bool = False) -> int:
        return self._max.get(fresh, self._highest)

    def _highest(self) -> int:
        rows = self._rows("SELECT MAX(notification_id) AS n FROM {archive}", [])
        return int(rows[0]["n"] or 0) if rows else 0

    def _rows(self, template: str, params: Sequence[Any]) -> list[Any]:
        if not self.exists():
            return []
        with self._tx() as curs:
            curs.execute(self._sql(template), list(params))
            return list(curs.fetchall())

    def select_events(
        self, stream: UUID, gt: int | None = None, lte: int | None = None
    ) -> list[StoredEvent]:
        clauses, params = _range(gt, lte)
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {{archive}} WHERE originator_id = ?{clauses} "  # noqa: S608
            "ORDER BY originator_version",
            [stream, *params],
        )
        return [_notification(row, stream) for row in rows]

    def select_notifications(self, after: int, limit: int) -> list[Notification]:
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {{archive}} WHERE notification_id > ? "  # noqa: S608
            "ORDER BY notification_id LIMIT ?",
            [after, limit],
        )
        return [_notification(row, row["originator_id"]) for row in rows]

    def select_positions(self, positions: Sequence[int]) -> dict[int, Notification]:
        if not positions:
            return {}
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {{archive}} WHERE notification_id = ANY(?)",  # noqa: S608
            [list(positions)],
        )
        return {int(r["notification_id"]): _notification(r, r["originator_id"]) for r in rows}

    def has_stream(self, stream: UUID) -> bool:
        return bool(self._rows("SELECT 1 FROM {archive} WHERE originator_id = ? LIMIT 1", [stream]))

    def count(self) -> int:
        rows = self._rows("SELECT COUNT(*) AS n FROM {archive}", [])
        return int(rows[0]["n"]) if rows else 0

    def _create(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.schema)))
            curs.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {archive} (notification_id BIGINT PRIMARY KEY, "
                    "originator_id UUID NOT NULL, originator_version BIGINT NOT NULL, "
                    "topic TEXT NOT NULL, state BYTEA NOT NULL, archived_at TEXT NOT NULL, "
                    "UNIQUE (originator_id, originator_version))"
                )
            )
        self._exists.keep(1)

    def move(
        self, stream: UUID, max_version: int, max_position: int, batch: int = DEFAULT_BATCH
    ) -> int:
        """Move the stream's eligible rows, ``batch`` per transaction; returns how many."""
        self._max.forget()
        if not self.exists():
            self._create()
        eligible = ELIGIBLE.format(pos="notification_id", events="{events}")
        moved = 0
        while True:
            with self._tx(commit=True) as curs:
                curs.execute(
                    self._sql(
                        "SELECT MAX(originator_version) AS bound FROM (SELECT originator_version "  # noqa: S608
                        f"FROM {{events}} WHERE {eligible} ORDER BY originator_version LIMIT ?) b"
                    ),
                    [stream, max_version, max_position, stream, max_version, batch],
                )
                row = curs.fetchone()
                bound = row["bound"] if row else None
                if bound is None:
                    return moved
                args = [stream, bound, max_position, stream, bound]
                curs.execute(
                    self._sql(
                        f"INSERT INTO {{archive}} SELECT {COLUMNS}, ? FROM {{events}} "  # noqa: S608
                        f"WHERE {eligible} ON CONFLICT DO NOTHING"
                    ),
                    [_now(), *args],
                )
                curs.execute(
                    "INSERT INTO fleet_archive_permit VALUES (%s, %s, %s)",
                    (stream, bound, max_position),
                )
                curs.execute(
                    self._sql(
                        f"DELETE FROM {{events}} e WHERE {eligible} AND EXISTS (SELECT 1 "  # noqa: S608
                        "FROM {archive} a WHERE a.notification_id = e.notification_id "
                        "AND a.originator_id = e.originator_id "
                        "AND a.originator_version = e.originator_version "
                        "AND a.topic = e.topic AND a.state = e.state)"
                    ),
                    args,
                )
                deleted = int(curs.rowcount)
                curs.execute("DELETE FROM fleet_archive_permit WHERE originator_id = %s", (stream,))
            moved += deleted
            if deleted == 0:
                return moved

    def close(self) -> None:
        """Nothing of its own: it uses the application's datastore."""
