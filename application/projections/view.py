"""Where projections write: the library's tracking recorders, and their positions.

SQLite's recorder hard-codes a table called ``tracking`` keyed by the upstream
application's name, so two projections there would share one position. On SQLite every
projection keeps its position in one table of Fleet's, ``fleet_projection_tracking``
(migration 0008), keyed by projection too: a write moves them all with one statement
(``track_together``) and one page. On PostgreSQL each projection has a table of the library's
recorder, named after it, and a write moves them all with one statement too
(``seams.insert_trackings``).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import OperationalError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from application.seams import (
    insert_tracking,
    insert_trackings,
    max_tracking_id,
    render_library_statements,
)
from application.store.portable import PortableCursor
from application.store.postgres import connects_in_schema

# SQLite: every projection's position (migration 0008 creates it, and moves the positions of
# the tables each projection had before).
TRACKING_TABLE = "fleet_projection_tracking"
CREATE_TRACKING_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} (projection TEXT NOT NULL, "
    "application_name TEXT NOT NULL, notification_id INTEGER, "
    "PRIMARY KEY (projection, application_name)) WITHOUT ROWID"
)


class ProjectionTrackingRecorder(SQLiteTrackingRecorder):
    """The library's SQLite tracking recorder, on one projection's rows of
    ``fleet_projection_tracking``."""

    def __init__(self, datastore: SQLiteDatastore, projection: str, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        # What picks this projection's rows, before the application's name.
        self.rows_of = f"projection = '{projection}' AND "
        # The projection's name is fixed in code; values are bound.
        self.insert_tracking_statement = (
            f"INSERT INTO {TRACKING_TABLE} VALUES ('{projection}', :application_name, "  # noqa: S608
            ":notification_id) ON CONFLICT (projection, application_name) DO UPDATE SET "
            f"notification_id = :notification_id WHERE {TRACKING_TABLE}.notification_id < "
            ":notification_id RETURNING notification_id"
        )
        self.select_max_tracking_id_statement = (
            f"SELECT MAX(notification_id) FROM {TRACKING_TABLE} "  # noqa: S608
            f"WHERE {self.rows_of}application_name = ?"
        )

    def construct_create_table_statements(self) -> list[str]:
        return [CREATE_TRACKING_TABLE]

    def create_table(self) -> None:
        """The table only: the library's own also moves its ``tracking`` table to one row an
        application, which this table has always been."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(CREATE_TRACKING_TABLE)


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
        self.name = name
        self.postgres = isinstance(datastore, PostgresDatastore)
        # The tracking table, and what picks this projection's rows in it.
        self.recorder: TrackingRecorder
        if isinstance(datastore, PostgresDatastore):
            self.table, self.rows_of = f"fleet_{name}_tracking", ""
            self.recorder = PostgresTrackingRecorder(datastore, tracking_table_name=self.table)
            render_library_statements(self.recorder)
        else:
            recorder = ProjectionTrackingRecorder(datastore, name)
            self.table, self.rows_of, self.recorder = TRACKING_TABLE, recorder.rows_of, recorder
        if create_table:  # off (the library's CREATE_TABLE=no) for a role without DDL rights
            self.recorder.create_table()
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
        tx.execute(
            f"DELETE FROM {self.table} WHERE {self.rows_of}application_name = ?",  # noqa: S608
            [application_name],
        )

    def position_column(self, alias: str) -> str:
        """A column of this projection's position (NULL before the first), for a statement
        that reads several at once; its one parameter is the upstream application's name."""
        return (
            f"(SELECT MAX(notification_id) FROM {self.table} "  # noqa: S608 - fixed names
            f"WHERE {self.rows_of}application_name = ?) AS {alias}"
        )

    def position(self, application_name: str) -> int:
        return self.recorder.max_tracking_id(application_name) or 0

    def position_in(self, tx: ViewTx, application_name: str) -> int:
        """The position, read in a transaction the caller already holds."""
        return int(max_tracking_id(self.recorder, application_name, tx.cursor) or 0)


def track_together(views: Sequence[View], tx: ViewTx, tracking: Tracking) -> list[bool]:
    """Record one ``tracking`` for several projections with one statement; per view, whether
    its position advanced (one that was already there or past it stays where it is).

    A write most projections take nothing from (a heartbeat) still moves each one's position.
    On SQLite their rows are in one table: one upsert of several rows. On PostgreSQL, one
    statement over their tables (``seams.insert_trackings``).
    """
    if not views:
        return []
    if tx.postgres:
        return insert_trackings([view.recorder for view in views], tx.cursor, tracking)
    names = tuple(view.name for view in views)
    params = [tracking.application_name, tracking.notification_id] * len(names)
    moved = {row[0] for row in tx.fetchall(_together_statement(names), params)}
    return [name in moved for name in names]


@functools.lru_cache(maxsize=64)
def _together_statement(names: tuple[str, ...]) -> str:
    rows = ", ".join(f"('{name}', ?, ?)" for name in names)
    return (
        f"INSERT INTO {TRACKING_TABLE} VALUES {rows} "  # noqa: S608 - names fixed in code
        "ON CONFLICT (projection, application_name) DO UPDATE SET "
        f"notification_id = excluded.notification_id WHERE {TRACKING_TABLE}.notification_id "
        "< excluded.notification_id RETURNING projection"
    )
