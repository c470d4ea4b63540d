"""Store maintenance queries (compaction): stream heads, snapshot rows, pruning.

Reads run in read-only transactions, which take no write lock on either backend.
Every write is one short transaction of its own, for one stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from application.store.portable import PortableCursor


class StoreMaintenance:
    def __init__(self, app: Application[UUID]):
        recorder: Any = app.recorder
        if app.snapshots is None:
            raise RuntimeError("the application has no snapshot store")
        snapshot_recorder: Any = app.snapshots.recorder
        self.datastore = recorder.datastore
        self.postgres = isinstance(self.datastore, PostgresDatastore)
        self.events = recorder.events_table_name
        self.snapshots = snapshot_recorder.events_table_name
        self.position = "notification_id" if self.postgres else "rowid"

    @contextmanager
    def transaction(self, commit: bool = False) -> Iterator[PortableCursor]:
        with self.datastore.transaction(commit=commit) as cursor:
            if self.postgres:
                cursor.execute(
                    SQL("SET LOCAL search_path TO {}").format(Identifier(self.datastore.schema))
                )
            yield PortableCursor(cursor, self.postgres)

    def stream_key(self, stream: UUID) -> Any:
        """How the backend stores an originator id (uuid on PostgreSQL, hex text on SQLite)."""
        return stream if self.postgres else stream.hex

    def _where_stream(self, stream: UUID | None) -> tuple[str, list[Any]]:
        """A WHERE clause for one stream, or none for every stream."""
        return ("WHERE originator_id = ? ", [self.stream_key(stream)]) if stream else ("", [])

    def heads(self, table: str, stream: UUID | None = None) -> dict[UUID, int]:
        """The highest version of each stream (or of one) in ``table``."""
        where, params = self._where_stream(stream)
        with self.transaction() as tx:
            rows = tx.fetchall(
                f"SELECT originator_id AS id, MAX(originator_version) AS head FROM {table} "  # noqa: S608 - fixed names
                f"{where}GROUP BY originator_id",
                params,
            )
        return {UUID(str(row["id"])): int(row["head"]) for row in rows}

    def event_heads(self, stream: UUID | None = None) -> dict[UUID, int]:
        return self.heads(self.events, stream)

    def snapshot_heads(self, stream: UUID | None = None) -> dict[UUID, int]:
        return self.heads(self.snapshots, stream)

    def crowded_streams(self, keep: int, stream: UUID | None = None) -> list[UUID]:
        """Streams with more than ``keep`` snapshots."""
        where, params = self._where_stream(stream)
        with self.transaction() as tx:
            rows = tx.fetchall(
                f"SELECT originator_id AS id FROM {self.snapshots} {where}"  # noqa: S608 - fixed names
                "GROUP BY originator_id HAVING COUNT(*) > ? ORDER BY originator_id",
                [*params, keep],
            )
        return [UUID(str(row["id"])) for row in rows]

    def delete_snapshots(self, stream: UUID, versions: Sequence[int]) -> int:
        """Remove some snapshots of one stream, in one short transaction."""
        if not versions:
            return 0
        marks = ", ".join("?" * len(versions))
        with self.transaction(commit=True) as tx:
            tx.execute(
                f"DELETE FROM {self.snapshots} WHERE originator_id = ? "  # noqa: S608 - fixed names
                f"AND originator_version IN ({marks})",
                [self.stream_key(stream), *versions],
            )
        return len(versions)
