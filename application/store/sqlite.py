"""SQLite: the library's recorder, plus the event index written in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from application.store.query import EVENT_INDEX_TABLE, EventFilter, EventPage, IndexedEvent, IndexRow

INSERT_INDEX = (
    f"INSERT INTO {EVENT_INDEX_TABLE} "
    "(position, event_type, stream_id, stream_type, correlation_id) VALUES (?, ?, ?, ?, ?)"
)


class FleetSQLiteRecorder(SQLiteApplicationRecorder):
    """Writes each event's index row beside it, so filtered reads are exact and immediate."""

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        rows: Sequence[IndexRow] = kwargs.get("event_index", ())
        if rows and positions:
            c.executemany(INSERT_INDEX, index_params(positions, stored_events, rows))
        return positions

    def select_event_page(self, flt: EventFilter, limit: int, offset: int = 0) -> EventPage:
        where, params = flt.where("?")
        select = (
            "SELECT i.position, i.event_type, i.stream_type, i.correlation_id, "
            "e.originator_id, e.originator_version, e.topic, e.state "
            f"FROM {EVENT_INDEX_TABLE} i JOIN {self.events_table_name} e ON e.rowid = i.position"
            f"{where} ORDER BY i.position LIMIT ? OFFSET ?"
        )
        count = f"SELECT COUNT(*) FROM {EVENT_INDEX_TABLE} i{where}"
        if flt.needs_join:
            count = (
                f"SELECT COUNT(*) FROM {EVENT_INDEX_TABLE} i "
                f"JOIN {self.events_table_name} e ON e.rowid = i.position{where}"
            )
        with self.datastore.transaction(commit=False) as c:
            c.execute(select, [*params, limit, offset])
            rows = c.fetchall()
            c.execute(count, params)
            total = c.fetchone()[0]
        return EventPage([self._indexed(row) for row in rows], total)

    def _indexed(self, row: Any) -> IndexedEvent:
        notification = Notification(
            id=row["position"],
            originator_id=self.convert_originator_id(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"],
        )
        return IndexedEvent(notification, row["event_type"], row["stream_type"], row["correlation_id"])


def index_params(
    positions: Sequence[int], stored_events: Sequence[StoredEvent], rows: Sequence[IndexRow]
) -> list[tuple[object, ...]]:
    return [
        (position, row.event_type, str(UUID(str(event.originator_id))), row.stream_type, row.correlation_id)
        for position, event, row in zip(positions, stored_events, rows, strict=True)
    ]
