"""The SQLite archive: a second database file beside the live one (two-step moves)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from application.store.archive.common import (
    COLUMNS,
    DEFAULT_BATCH,
    ELIGIBLE,
    TABLE,
    Cached,
    notification_from,
    now,
    version_range,
)


class SQLiteArchive:
    """The archive file beside the live SQLite file."""

    def __init__(self, dbname: str, path: str, timeout: float = 15):
        self.dbname = dbname
        self.path = path
        self.timeout = timeout
        self._reader: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._max = Cached()

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
        clauses, params = version_range(gt, lte)
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {TABLE} WHERE originator_id = ?{clauses} "  # noqa: S608 - fixed names
            "ORDER BY originator_version",
            [stream.hex, *params],
        )
        return [notification_from(row, stream) for row in rows]

    def select_notifications(self, after: int, limit: int) -> list[Notification]:
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {TABLE} WHERE notification_id > ? "  # noqa: S608
            "ORDER BY notification_id LIMIT ?",
            [after, limit],
        )
        return [notification_from(row, UUID(row["originator_id"])) for row in rows]

    def select_positions(self, positions: Sequence[int]) -> dict[int, Notification]:
        if not positions:
            return {}
        marks = ", ".join("?" * len(positions))
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {TABLE} WHERE notification_id IN ({marks})",  # noqa: S608
            list(positions),
        )
        return {
            int(r["notification_id"]): notification_from(r, UUID(r["originator_id"])) for r in rows
        }

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
                    (now(), *args),
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
