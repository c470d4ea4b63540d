"""What both archives share: the reader protocol, the safety rules, small helpers."""

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
