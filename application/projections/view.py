"""Where projections write: the library's tracking recorders, one tracking table each.

SQLite's recorder hard-codes a table called ``tracking`` keyed by the upstream
application's name, so two projections there would share one position.
``named_view`` gives each projection its own table on either backend.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import OperationalError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from application.seams import insert_tracking, max_tracking_id, render_library_statements
from application.store.portable import PortableCursor
from application.store.postgres import connects_in_schema


class NamedSQLiteTrackingRecorder(SQLiteTrackingRecorder):
    tracking_table = "tracking"

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        table = self.tracking_table
        # The table name is fixed per projection in code; values are bound.
        self.insert_tracking_statement = (
            f"INSERT INTO {table} VALUES (:application_name, :notification_id) "  # noqa: S608
            "ON CONFLICT (application_name) DO UPDATE SET notification_id = :notification_id "
            f"WHERE {table}.notification_id < :notification_id RETURNING notification_id"
        )
        self.select_max_tracking_id_statement = (
            f"SELECT MAX(notification_id) FROM {table} WHERE application_name=?"  # noqa: S608
        )
        self.create_table_statements = self.construct_create_table_statements()

    def construct_create_table_statements(self) -> list[str]:
        table = getattr(self, "tracking_table", "tracking")
        return [
            f"CREATE TABLE IF NOT EXISTS {table} (application_name TEXT, notification_id INTEGER, "
            "PRIMARY KEY (application_name)) WITHOUT ROWID"
        ]


# A view transaction: ``?`` placeholders on both backends (``application.store.portable``).
ViewTx = PortableCursor


class View:
    """One projection's tracking recorder plus transactions over its datastore."""

    def __init__(
        self,
        name: str,
        datastore: SQLiteDatastore | PostgresDatastore,
        create_table: bool = True,
    ):
        self.postgres = isinstance(datastore, PostgresDatastore)
        self.table = f"fleet_{name}_tracking"
        if isinstance(datastore, PostgresDatastore):
            self.recorder: TrackingRecorder = PostgresTrackingRecorder(
                datastore, tracking_table_name=self.table
            )
            render_library_statements(self.recorder)
        else:
            cls = type(
                f"{name}_view", (NamedSQLiteTrackingRecorder,), {"tracking_table": self.table}
            )
            self.recorder = cls(datastore)
        if create_table:  # off (the library's CREATE_TABLE=no) for a role without DDL rights
            self.recorder.create_table()  # type: ignore[attr-defined]
        self.datastore = datastore
        # The projector's pool starts its connections in the schema (``connect_in_schema``);
        # a pool that does not needs ``SET LOCAL search_path`` in each transaction.
        self.set_search_path = isinstance(datastore, PostgresDatastore) and not (
            connects_in_schema(datastore)
        )

    @contextmanager
    def transaction(self, commit: bool = True) -> Iterator[ViewTx]:
        datastore = self.datastore
        if isinstance(datastore, PostgresDatastore):
            with datastore.transaction(commit=commit) as cursor:
                if self.set_search_path:
                    cursor.execute(
                        SQL("SET LOCAL search_path TO {}").format(Identifier(datastore.schema))
                    )
                yield ViewTx(cursor, self.postgres)
            return
        with datastore.get_connection(commit=commit) as connection:
            if commit:
                # Projection rows are derived and committed with their position, so they
                # need not be flushed to disk at each commit (WAL, synchronous=NORMAL): a
                # power cut can only lose the last pages, which are applied again; a
                # process crash loses nothing. WAL frames are flushed in order, so the next
                # event commit (synchronous=FULL, the events' own connection) makes them
                # durable too. The setting is the connection's, and cannot change in a
                # transaction: hence here, before BEGIN.
                try:
                    connection.cursor().execute("PRAGMA synchronous = NORMAL")
                except sqlite3.OperationalError as exc:  # "locked": as the library reports it
                    raise OperationalError(exc) from exc
            with connection.transaction(commit=commit) as cursor:
                yield ViewTx(cursor, self.postgres)

    def track(self, tx: ViewTx, tracking: Tracking) -> None:
        """Record the position in the same transaction; fails if it would not advance."""
        insert_tracking(self.recorder, tx.cursor, tracking)

    def forget(self, tx: ViewTx, application_name: str) -> None:
        tx.execute(f"DELETE FROM {self.table} WHERE application_name = ?", [application_name])  # noqa: S608

    def position(self, application_name: str) -> int:
        return self.recorder.max_tracking_id(application_name) or 0

    def position_in(self, tx: ViewTx, application_name: str) -> int:
        """The position, read in a transaction the caller already holds."""
        return int(max_tracking_id(self.recorder, application_name, tx.cursor) or 0)
