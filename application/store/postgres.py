"""PostgreSQL: the library's recorder, plus the event index written in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from application.store.query import EVENT_INDEX_TABLE, EventFilter, EventPage, IndexedEvent, IndexRow
from application.store.sqlite import index_params


class FleetPostgresRecorder(PostgresApplicationRecorder):
    """Writes each event's index row beside it, inside the library's insert transaction."""

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        rows: Sequence[IndexRow] = kwargs.get("event_index", ())
        if rows and positions:
            curs.executemany(
                SQL(
                    "INSERT INTO {schema}.{index} "
                    "(position, event_type, stream_id, stream_type, correlation_id) "
                    "VALUES (%s, %s, %s, %s, %s)"
                ).format(schema=self._schema, index=Identifier(EVENT_INDEX_TABLE)),
                index_params(positions, stored_events, rows),
            )
        return positions

    @property
    def _schema(self) -> Identifier:
        return Identifier(self.datastore.schema)

    def select_event_page(self, flt: EventFilter, limit: int, offset: int = 0) -> EventPage:
        where, params = flt.where("%s")
        tables = SQL("{schema}.{index} i JOIN {schema}.{events} e ON e.notification_id = i.position").format(
            schema=self._schema,
            index=Identifier(EVENT_INDEX_TABLE),
            events=Identifier(self.events_table_name),
        )
        select = SQL(
            "SELECT i.position, i.event_type, i.stream_type, i.correlation_id, "
            "e.originator_id, e.originator_version, e.topic, e.state FROM {tables}{where} "
            "ORDER BY i.position LIMIT %s OFFSET %s"
        ).format(tables=tables, where=SQL(where))  # noqa: S608 - fixed fragments, values are bound
        count_from = (
            tables
            if flt.needs_join
            else SQL("{schema}.{index} i").format(schema=self._schema, index=Identifier(EVENT_INDEX_TABLE))
        )
        count = SQL("SELECT COUNT(*) AS n FROM {tables}{where}").format(tables=count_from, where=SQL(where))
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(select, [*params, limit, offset])
            rows = curs.fetchall()
            curs.execute(count, params)
            counted = curs.fetchone()
        total = int(counted["n"]) if counted else 0
        return EventPage([self._indexed(row) for row in rows], total)

    @staticmethod
    def _indexed(row: DictRow) -> IndexedEvent:
        notification = Notification(
            id=row["position"],
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        return IndexedEvent(notification, row["event_type"], row["stream_type"], row["correlation_id"])
