"""PostgreSQL: the library's recorder, plus the event index written in the same transaction."""

from __future__ import annotations

from typing import Any

from psycopg.sql import SQL, Composed, Identifier

from application.seams import PostgresInsertSeam
from application.store import keys
from application.store.indexing import IndexingRecorder
from application.store.query import EVENT_COUNTS_TABLE, EVENT_INDEX_TABLE


class FleetPostgresRecorder(IndexingRecorder, PostgresInsertSeam):
    """Writes each event's index row beside it, inside the library's insert transaction."""

    PLACEHOLDER = "%s"
    PURGE_KEYS = keys.PURGE_KEYS

    def _sql(self, template: str) -> SQL | Composed:
        schema = self.datastore.schema
        return SQL(template.replace("{p}", "%s")).format(
            index=Identifier(schema, EVENT_INDEX_TABLE),
            events=Identifier(schema, self.events_table_name),
            counts=Identifier(schema, EVENT_COUNTS_TABLE),
            keys=Identifier(schema, keys.IDEMPOTENCY_TABLE),
            pos=Identifier("notification_id"),
        )

    def _rowcount(self, cursor: Any) -> int:
        return int(cursor.rowcount)

    def _stream_id(self, value: Any) -> Any:
        return value  # psycopg reads a uuid column as a UUID
