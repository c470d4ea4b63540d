"""The PostgreSQL archive: a schema of the same database (one-transaction moves)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from application.store.archive.common import (
    COLUMNS,
    DEFAULT_BATCH,
    ELIGIBLE,
    TABLE,
    ArchiveReads,
    Cached,
    now,
)


class PostgresArchive(ArchiveReads):
    """A schema of the same database: a batch moves in one transaction."""

    def __init__(self, datastore: PostgresDatastore, schema: str, events_table: str):
        self.datastore = datastore
        self.schema = schema
        self.events_table = events_table
        self._exists = Cached()
        self._max = Cached()

    @staticmethod
    def default_schema(live_schema: str) -> str:
        return f"{live_schema}_archive"

    @contextmanager
    def _tx(self, commit: bool = False) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as curs:
            curs.execute(
                SQL("SET LOCAL search_path TO {}").format(Identifier(self.datastore.schema))
            )
            yield curs

    def _sql(self, template: str) -> Any:
        return SQL(template.replace("?", "%s")).format(
            archive=Identifier(self.schema, TABLE),
            events=Identifier(self.datastore.schema, self.events_table),
        )

    def exists(self) -> bool:
        return bool(self._exists.get(False, self._look))

    def _look(self) -> int:
        with self._tx() as curs:
            curs.execute("SELECT to_regclass(%s) AS t", (f'"{self.schema}".{TABLE}',))
            row = curs.fetchone()
        if row is not None and row["t"] is not None:
            self._exists.keep(1)  # an archive, once made, stays
            return 1
        return 0

    def _rows(self, template: str, params: Sequence[Any]) -> list[Any]:
        if not self.exists():
            return []
        with self._tx() as curs:
            curs.execute(self._sql(template), list(params))
            return list(curs.fetchall())

    def _key(self, stream: UUID) -> Any:
        return stream

    def _stream(self, value: Any) -> UUID:
        stream: UUID = value  # psycopg reads a uuid column as a UUID
        return stream

    def _among(self, positions: Sequence[int]) -> tuple[str, list[Any]]:
        return "= ANY(?)", [list(positions)]

    def _create(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.schema)))
            curs.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {archive} (notification_id BIGINT PRIMARY KEY, "
                    "originator_id UUID NOT NULL, originator_version BIGINT NOT NULL, "
                    "topic TEXT NOT NULL, state BYTEA NOT NULL, archived_at TEXT NOT NULL, "
                    "UNIQUE (originator_id, originator_version))"
                )
            )
        self._exists.keep(1)

    def move(
        self, stream: UUID, max_version: int, max_position: int, batch: int = DEFAULT_BATCH
    ) -> int:
        """Move the stream's eligible rows, ``batch`` per transaction; returns how many."""
        self._max.forget()
        if not self.exists():
            self._create()
        eligible = ELIGIBLE.format(pos="notification_id", events="{events}")
        moved = 0
        while True:
            with self._tx(commit=True) as curs:
                curs.execute(
                    self._sql(
                        "SELECT MAX(originator_version) AS bound FROM (SELECT originator_version "  # noqa: S608
                        f"FROM {{events}} WHERE {eligible} ORDER BY originator_version LIMIT ?) b"
                    ),
                    [stream, max_version, max_position, stream, max_version, batch],
                )
                row = curs.fetchone()
                bound = row["bound"] if row else None
                if bound is None:
                    return moved
                args = [stream, bound, max_position, stream, bound]
                curs.execute(
                    self._sql(
                        f"INSERT INTO {{archive}} SELECT {COLUMNS}, ? FROM {{events}} "  # noqa: S608
                        f"WHERE {eligible} ON CONFLICT DO NOTHING"
                    ),
                    [now(), *args],
                )
                curs.execute(
                    "INSERT INTO fleet_archive_permit VALUES (%s, %s, %s)",
                    (stream, bound, max_position),
                )
                curs.execute(
                    self._sql(
                        f"DELETE FROM {{events}} e WHERE {eligible} AND EXISTS (SELECT 1 "  # noqa: S608
                        "FROM {archive} a WHERE a.notification_id = e.notification_id "
                        "AND a.originator_id = e.originator_id "
                        "AND a.originator_version = e.originator_version "
                        "AND a.topic = e.topic AND a.state = e.state)"
                    ),
                    args,
                )
                deleted = int(curs.rowcount)
                curs.execute("DELETE FROM fleet_archive_permit WHERE originator_id = %s", (stream,))
            moved += deleted
            if deleted == 0:
                return moved

    def close(self) -> None:
        """Nothing of its own: it uses the application's datastore."""
