"""The SQLite archive: a second database file beside the live one (two-step moves)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from application.store.archive.common import (
    DEFAULT_BATCH,
    ELIGIBLE,
    TABLE,
    ArchiveReads,
    Cached,
    now,
)


class SQLiteArchive(ArchiveReads):
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

    def _rows(self, template: str, params: Sequence[Any]) -> list[Any]:
        with self._read() as conn:
            if conn is None:
                return []
            try:
                return conn.execute(template.format(archive=TABLE), list(params)).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise

    def _key(self, stream: UUID) -> Any:
        return stream.hex

    def _stream(self, value: Any) -> UUID:
        return UUID(value)

    def _among(self, positions: Sequence[int]) -> tuple[str, list[Any]]:
        return f"IN ({', '.join('?' * len(positions))})", list(positions)

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
