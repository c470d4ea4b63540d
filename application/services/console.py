"""Aggregate reads for the operator console: counts per status and the write rate.

The console's overview must stay fast with thousands of specialists and sorties, so it
reads counts with ``GROUP BY`` on the projection tables rather than listing every row,
and the write rate from the log's positions (see ``write_rate``).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from application.services.base import Foundation, Service
from application.services.lists import ListService
from application.services.locks import LockService
from domain.mailbox import MESSAGE_STATUSES
from domain.mission import OPEN_MISSION_STATUSES

UNREAD = "pending"  # a message nobody has read yet
assert UNREAD in MESSAGE_STATUSES  # noqa: S101 - the vocabulary lives in domain/


class ConsoleService(Service):
    def __init__(self, foundation: Foundation, lists: ListService, locks: LockService) -> None:
        super().__init__(foundation)
        self.lists = lists
        self.locks = locks
        self._minute_marks: dict[datetime, int] = {}
        self._marks_lock = threading.Lock()

    def status_counts(self, table: str) -> dict[str, int]:
        """Rows per status of ``specialists``, ``missions``, ``sorties`` or ``locks``."""
        tables = {
            "specialists": "specialists_projection",
            "missions": "missions_projection",
            "sorties": "sorties_projection",
            "locks": "locks_projection",
        }
        name = tables[table]  # a fixed name, never the caller's text, goes into the SQL
        with self.projector.read() as tx:
            rows = tx.fetchall(
                f"SELECT status, COUNT(*) AS n FROM {name} GROUP BY status ORDER BY status"  # noqa: S608
            )
        return {row["status"]: int(row["n"]) for row in rows}

    def unread_by_mailbox(self, limit: int = 50) -> list[dict[str, Any]]:
        """Mailboxes with unread (pending) messages, most unread first."""
        with self.projector.read() as tx:
            rows = tx.fetchall(
                "SELECT mailbox_id, COUNT(*) AS n FROM messages_projection WHERE status = ? "
                "GROUP BY mailbox_id ORDER BY n DESC, mailbox_id LIMIT ?",
                [UNREAD, limit],
            )
        return [{"mailbox_id": row["mailbox_id"], "unread": int(row["n"])} for row in rows]

    def mailboxes(self, limit: int = 200) -> list[dict[str, Any]]:
        """Every mailbox with its message count and unread count, by id."""
        with self.projector.read() as tx:
            rows = tx.fetchall(
                "SELECT mailbox_id, COUNT(*) AS total, "
                "SUM(CASE WHEN status = ? THEN 1 ELSE 0 END) AS unread "
                "FROM messages_projection GROUP BY mailbox_id ORDER BY mailbox_id LIMIT ?",
                [UNREAD, limit],
            )
        return [
            {"mailbox_id": r["mailbox_id"], "total": int(r["total"]), "unread": int(r["unread"])}
            for r in rows
        ]

    def write_rate(self, minutes: int = 60, now: datetime | None = None) -> list[dict[str, Any]]:
        """Events recorded in each of the last ``minutes`` whole minutes, oldest first.

        The log keeps no time column, but positions grow with time: the first position
        of each minute is found by bisecting the log on event timestamps. Past minutes
        never change (the log is append-only), so their marks are cached per process and
        a render only bisects for the minutes it has not seen.
        """
        now = (now or datetime.now(UTC)).astimezone(UTC)
        current = now.replace(second=0, microsecond=0)
        starts = [current - timedelta(minutes=m) for m in range(minutes - 1, -1, -1)]
        head = self._head()
        marks = [self._first_position_at(start, head) for start in starts]
        marks.append(head + 1)
        return [
            {"minute": start.isoformat(), "events": max(marks[i + 1] - marks[i], 0)}
            for i, start in enumerate(starts)
        ]

    def _first_position_at(self, moment: datetime, head: int) -> int:
        """The first position recorded at or after ``moment`` (``head + 1`` if none)."""
        cached = self._minute_marks.get(moment)
        if cached is not None:
            return cached
        low, high = 1, head + 1
        while low < high:
            middle = (low + high) // 2
            found = self._timestamp_from(middle)
            if found is None:
                high = middle
            elif found[1] < moment:
                low = found[0] + 1
            else:
                high = middle
        # Only a minute that is over and whose mark lies inside the log is final.
        if moment + timedelta(minutes=1) <= datetime.now(UTC) and low <= head:
            with self._marks_lock:
                self._minute_marks[moment] = low
        return low

    def _timestamp_from(self, position: int) -> tuple[int, datetime] | None:
        """The first event at or after ``position``: its position and timestamp."""
        notifications = self.app.recorder.select_notifications(start=position, limit=1)
        if not notifications:
            return None
        event: Any = self.app.mapper.to_domain_event(notifications[0])
        return notifications[0].id, event.timestamp

    def overview(self, rows: int = 50) -> dict[str, Any]:
        """What the console's front page shows, in one call."""
        open_missions: list[dict[str, Any]] = []
        for status in reversed(OPEN_MISSION_STATUSES):  # furthest along first
            found, _ = self.lists.list_missions(status=status, limit=rows)
            open_missions += found
        specialists, _ = self.lists.list_specialists(limit=rows)
        locks, active_locks = self.locks.list_locks(status="active", limit=rows)
        projections = self.projector.status()
        return {
            "head": self._head(),
            "specialist_counts": self.status_counts("specialists"),
            "specialists": specialists,
            "mission_counts": self.status_counts("missions"),
            "missions": open_missions[:rows],
            "sortie_counts": self.status_counts("sorties"),
            "locks": locks,
            "active_locks": active_locks,
            "unread": self.unread_by_mailbox(rows),
            "projections": projections,
            "max_lag": max((p["lag"] for p in projections), default=0),
            "write_rate": self.write_rate(),
        }
