"""PostgreSQL: the library's recorder, plus the event index written in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from application.idempotency import KeyRecord, Remembered, remembered_from
from application.store.keys import (
    DELETE_KEY,
    DROP_STALE_KEY,
    IDEMPOTENCY_TABLE,
    INSERT_KEY,
    INSERT_KEY_IF_NEW,
    PURGE_KEYS,
    SELECT_KEY,
)
from application.store.query import (
    ADD_COUNTS,
    EVENT_COUNTS_TABLE,
    EVENT_INDEX_TABLE,
    INDEX_AFTER,
    INSERT_INDEX,
    EventFilter,
    EventPage,
    IndexedEvent,
    IndexRow,
    archived_placeholder,
    count_params,
    count_query,
    index_params,
    page_query,
)


class FleetPostgresRecorder(PostgresApplicationRecorder):
    """Writes each event's index row beside it, inside the library's insert transaction."""

    def _sql(self, template: str) -> SQL | Composed:
        schema = self.datastore.schema
        return SQL(template.replace("{p}", "%s")).format(
            index=Identifier(schema, EVENT_INDEX_TABLE),
            events=Identifier(schema, self.events_table_name),
            counts=Identifier(schema, EVENT_COUNTS_TABLE),
            keys=Identifier(schema, IDEMPOTENCY_TABLE),
            pos=Identifier("notification_id"),
        )

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        rows: Sequence[IndexRow] = kwargs.get("event_index", ())
        if rows and positions:
            curs.executemany(self._sql(INSERT_INDEX), index_params(positions, stored_events, rows))
            curs.executemany(self._sql(ADD_COUNTS), count_params(rows))
        key: KeyRecord | None = kwargs.get("idempotency")
        if key is not None and positions:
            self._claim_key(curs, key, positions[-1])
        return positions

    def _claim_key(self, curs: Cursor[DictRow], key: KeyRecord, position: int) -> None:
        """In the events' transaction: a key another write holds fails this one, whole."""
        curs.execute(self._sql(DROP_STALE_KEY), key.stale_params())
        curs.execute(self._sql(INSERT_KEY), key.insert_params(position))
        if key.probe:
            curs.execute(self._sql(DELETE_KEY), key.key_params())

    def select_key(self, scope: str, key: str, since: float) -> Remembered | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql(SELECT_KEY), [scope, key, since])
            row = curs.fetchone()
        return None if row is None else remembered_from(row)

    def insert_key(self, record: KeyRecord, position: int) -> None:
        """Remember a key on its own (a command of several writes), unless taken."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._sql(DROP_STALE_KEY), record.stale_params())
            curs.execute(self._sql(INSERT_KEY_IF_NEW), record.insert_params(position))

    def purge_keys(self, before: float) -> int:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._sql(PURGE_KEYS), [before])
            return int(curs.rowcount)

    def select_event_page(self, flt: EventFilter, limit: int, offset: int = 0) -> EventPage:
        select, params = page_query(flt, "%s")
        count, count_args = count_query(flt, "%s")
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql(select), [*params, limit, offset])
            rows = curs.fetchall()
            curs.execute(self._sql(count), count_args)
            counted = curs.fetchone()
        total = int(counted["n"]) if counted else 0
        return EventPage([self._indexed(row) for row in rows], total)

    def select_index_after(self, position: int, limit: int) -> list[tuple[int, str, str, str]]:
        """(position, event_type, stream_id, correlation_id) of the events after ``position``."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql(INDEX_AFTER), [position, limit])
            return [
                (row["position"], row["event_type"], row["stream_id"], row["correlation_id"])
                for row in curs.fetchall()
            ]

    @staticmethod
    def _indexed(row: DictRow) -> IndexedEvent:
        if row["topic"] is None:
            notification = archived_placeholder(row["position"])
        else:
            notification = Notification(
                id=row["position"],
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
        return IndexedEvent(
            notification, row["event_type"], row["stream_type"], row["correlation_id"]
        )
