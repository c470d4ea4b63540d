"""What both Fleet recorders add to the library's, written once.

In the events' own transaction (``events_inserted``, see ``application.seams``): one
``fleet_event_index`` row per event and the per-type counts, the check of the streams the
command read, and the command's idempotency key. Beside it: the reads of the index and of
the keys. The recorders of ``application.store.sqlite`` and ``application.store.postgres``
give only their dialect: how a query template becomes SQL, which purge query, and how a
row's stream id and affected-row count read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from application.idempotency import KeyRecord, Remembered, remembered_from
from application.store.keys import (
    DELETE_KEY,
    DROP_STALE_KEY,
    INSERT_KEY,
    INSERT_KEY_IF_NEW,
    SELECT_KEY,
)
from application.store.query import (
    ADD_BLOCKS,
    ADD_COUNTS,
    INDEX_AFTER,
    INSERT_INDEX,
    EventFilter,
    EventPage,
    IndexedEvent,
    IndexRow,
    LogRead,
    archived_placeholder,
    block_params,
    count_params,
    count_query,
    index_params,
    page_query,
    recorded_since_query,
)

# A stream's stored version (NULL: no events), one column of ``_versions_check``'s row.
STORED_VERSION = "(SELECT MAX(originator_version) FROM {events} WHERE originator_id = {p}) AS v{n}"


class StaleReads(Exception):
    """A stream a command read but does not write has changed since it read it, or an event
    has been recorded since a projection's rows it read (``LogRead``): the write is rolled
    back, for the command to decide again."""


class IndexingRecorder:
    """Mixed into a backend's recorder (before its ``application.seams`` insert seam)."""

    datastore: Any  # the library recorder's
    PLACEHOLDER: ClassVar[str]  # how the backend's driver marks a bound parameter
    PURGE_KEYS: ClassVar[str]  # the query that forgets the keys older than a time

    # The dialect, per backend

    def _sql(self, template: str) -> Any:
        """A query template (``application.store.query``, ``.keys``) as this backend's SQL."""
        raise NotImplementedError

    def _rowcount(self, cursor: Any) -> int:
        """How many rows the cursor's last statement changed."""
        raise NotImplementedError

    def _stream_id(self, value: Any) -> Any:
        """A stored ``originator_id`` as the library's notifications carry it."""
        raise NotImplementedError

    def _answered(self, cursor: Any) -> AbstractContextManager[Any]:
        """A block whose statements have all been answered when it ends, a failure
        raised then at the latest (SQLite answers each at once)."""
        return contextlib.nullcontext()

    # In the events' transaction

    def events_inserted(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        positions: Sequence[int] | None,
        kwargs: Mapping[str, Any],
    ) -> None:
        """Index the events the save wrote; a key another write holds fails it, whole."""
        rows: Sequence[IndexRow] = kwargs.get("event_index", ())
        if rows and positions:
            self._index_events(cursor, stored_events, positions, rows)
        read: Sequence[tuple[UUID, int]] = kwargs.get("confirm", ())
        confirm = self._versions_check(cursor, read) if read and positions else None
        logged: Sequence[LogRead] = kwargs.get("confirm_log", ())
        unmoved = self._log_check(cursor, logged, positions[0]) if logged and positions else None
        inline = kwargs.get("inline")
        if inline is not None and positions:  # the projections never fail the write
            inline(cursor, positions)
        if confirm is not None:
            confirm()
        if unmoved is not None:
            unmoved()
        key: KeyRecord | None = kwargs.get("idempotency")
        if key is not None and positions:
            # A key another write holds fails its insert: last, the failure is known at
            # the commit (what the projections did is rolled back with the events). A
            # probe's delete follows the insert, so the failure must be known before it
            # goes out.
            with self._answered(cursor) if key.probe else contextlib.nullcontext():
                self._claim_key(cursor, key, positions[-1])

    def _index_events(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        positions: Sequence[int],
        rows: Sequence[IndexRow],
    ) -> None:
        """The events' index rows, and their types' counters and blocks."""
        cursor.executemany(self._sql(INSERT_INDEX), index_params(positions, stored_events, rows))
        cursor.executemany(self._sql(ADD_COUNTS), count_params(rows))
        cursor.executemany(self._sql(ADD_BLOCKS), block_params(positions, rows))

    def _versions_check(self, cursor: Any, read: Sequence[tuple[UUID, int]]) -> Callable[[], None]:
        """Reads each stream's stored version, in the events' transaction; the callable
        raises ``StaleReads`` unless every one is the version the command read.

        The write lock is held (SQLite's writer, the library's table lock on PostgreSQL),
        so no other write can change them before the commit. On PostgreSQL the statement
        goes out now and its answer is read when called, with the projections' (no round
        trip of its own when they are applied inline).
        """
        columns = ", ".join(
            STORED_VERSION.replace("{n}", str(number)) for number in range(len(read))
        )
        reader = self._side_cursor(cursor)
        reader.execute(self._sql(f"SELECT {columns}"), [self._stored_key(s) for s, _ in read])
        answer = self._answer(reader)

        def confirm() -> None:
            row = answer()
            stale = [
                stream
                for number, (stream, version) in enumerate(read)
                if int(row[f"v{number}"] or 0) != version
            ]
            if stale:
                raise StaleReads(f"changed since the command read them: {stale}")

        return confirm

    def _log_check(self, cursor: Any, reads: Sequence[LogRead], before: int) -> Callable[[], None]:
        """Asks the event index whether an event any of ``reads`` did not see has been
        recorded since, in the events' transaction (``before``: this write's first
        position); the callable raises ``StaleReads`` if one has. As ``_versions_check``:
        under the write lock, and on PostgreSQL answered with the projections' statements.
        """
        query, params = recorded_since_query(reads, before, self.PLACEHOLDER)
        reader = self._side_cursor(cursor)
        reader.execute(self._sql(query), params)
        answer = self._answer(reader)

        def confirm() -> None:
            row = answer()
            stale = [read.position for number, read in enumerate(reads) if row[f"c{number}"]]
            if stale:
                raise StaleReads(f"events recorded since the positions the command read: {stale}")

        return confirm

    def _side_cursor(self, cursor: Any) -> Any:
        """A cursor for a statement whose answer is read later (the events' own cursor
        goes on with the next statement)."""
        return cursor

    def _answer(self, reader: Any) -> Callable[[], Any]:
        """The first row of the reader's statement, when called (SQLite: read now)."""
        row = reader.fetchone()
        return lambda: row

    def _stored_key(self, stream: UUID) -> Any:
        """A stream id as the events table stores it."""
        raise NotImplementedError

    def _claim_key(self, cursor: Any, key: KeyRecord, position: int) -> None:
        """In the events' transaction: a key another write holds fails this one, whole."""
        cursor.execute(self._sql(DROP_STALE_KEY), key.stale_params())
        cursor.execute(self._sql(INSERT_KEY), key.insert_params(position))
        if key.probe:
            cursor.execute(self._sql(DELETE_KEY), key.key_params())

    # Idempotency keys

    def select_key(self, scope: str, key: str, since: float) -> Remembered | None:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self._sql(SELECT_KEY), [scope, key, since])
            row = cursor.fetchone()
        return None if row is None else remembered_from(row)

    def insert_key(self, record: KeyRecord, position: int) -> None:
        """Remember a key on its own (a command of several writes), unless taken."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._sql(DROP_STALE_KEY), record.stale_params())
            cursor.execute(self._sql(INSERT_KEY_IF_NEW), record.insert_params(position))

    def purge_keys(self, before: float) -> int:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._sql(self.PURGE_KEYS), [before])
            return self._rowcount(cursor)

    # The event index

    def select_event_page(self, flt: EventFilter, limit: int, offset: int = 0) -> EventPage:
        select, params = page_query(flt, self.PLACEHOLDER)
        count, count_args = count_query(flt, self.PLACEHOLDER)
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self._sql(select), [*params, limit, offset])
            rows = cursor.fetchall()
            cursor.execute(self._sql(count), count_args)
            counted = cursor.fetchone()
        total = int(counted["n"]) if counted else 0
        return EventPage([self._indexed(row) for row in rows], total)

    def select_index_after(self, position: int, limit: int) -> list[tuple[int, str, str, str]]:
        """(position, event_type, stream_id, correlation_id) of the events after ``position``."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self._sql(INDEX_AFTER), [position, limit])
            return [
                (row["position"], row["event_type"], row["stream_id"], row["correlation_id"])
                for row in cursor.fetchall()
            ]

    def _indexed(self, row: Any) -> IndexedEvent:
        if row["topic"] is None:
            notification = archived_placeholder(row["position"])
        else:
            notification = Notification(
                id=row["position"],
                originator_id=self._stream_id(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
        return IndexedEvent(
            notification, row["event_type"], row["stream_type"], row["correlation_id"]
        )
