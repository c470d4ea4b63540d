"""What both archives share: the reader protocol, the reads, the safety rules, helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

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


class Cached:
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


class ArchiveReads:
    """The reads of both archives, written once; a backend gives its dialect.

    Query templates name the archive table ``{archive}`` and bind values with ``?``;
    ``_rows`` runs them (no rows while there is no archive yet).
    """

    _max: Cached

    # The dialect, per backend

    def _rows(self, template: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _key(self, stream: UUID) -> Any:
        """A stream id as the archive stores it."""
        raise NotImplementedError

    def _stream(self, value: Any) -> UUID:
        """A stored stream id as a UUID."""
        raise NotImplementedError

    def _among(self, positions: Sequence[int]) -> tuple[str, list[Any]]:
        """A condition (and its parameters) that ``notification_id`` is one of ``positions``."""
        raise NotImplementedError

    # The reads

    def max_position(self, fresh: bool = False) -> int:
        return self._max.get(fresh, self._highest)

    def _highest(self) -> int:
        rows = self._rows("SELECT MAX(notification_id) AS n FROM {archive}", [])
        return int(rows[0]["n"] or 0) if rows else 0

    def select_events(
        self, stream: UUID, gt: int | None = None, lte: int | None = None
    ) -> list[StoredEvent]:
        clauses, params = version_range(gt, lte)
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {{archive}} WHERE originator_id = ?{clauses} "  # noqa: S608 - fixed names
            "ORDER BY originator_version",
            [self._key(stream), *params],
        )
        return [notification_from(row, stream) for row in rows]

    def select_notifications(self, after: int, limit: int) -> list[Notification]:
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {{archive}} WHERE notification_id > ? "  # noqa: S608
            "ORDER BY notification_id LIMIT ?",
            [after, limit],
        )
        return [notification_from(row, self._stream(row["originator_id"])) for row in rows]

    def select_positions(self, positions: Sequence[int]) -> dict[int, Notification]:
        if not positions:
            return {}
        among, params = self._among(positions)
        rows = self._rows(
            f"SELECT {COLUMNS} FROM {{archive}} WHERE notification_id {among}",  # noqa: S608
            params,
        )
        return {
            int(r["notification_id"]): notification_from(r, self._stream(r["originator_id"]))
            for r in rows
        }

    def has_stream(self, stream: UUID) -> bool:
        return bool(
            self._rows(
                "SELECT 1 FROM {archive} WHERE originator_id = ? LIMIT 1", [self._key(stream)]
            )
        )

    def count(self) -> int:
        rows = self._rows("SELECT COUNT(*) AS n FROM {archive}", [])
        return int(rows[0]["n"]) if rows else 0


def now() -> str:
    return datetime.now(UTC).isoformat()


def notification_from(row: Any, stream: Any) -> Notification:
    return Notification(
        id=int(row["notification_id"]),
        originator_id=stream,
        originator_version=int(row["originator_version"]),
        topic=row["topic"],
        state=bytes(row["state"]),
    )


def version_range(gt: int | None, lte: int | None) -> tuple[str, list[int]]:
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
