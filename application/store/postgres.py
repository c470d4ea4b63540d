"""PostgreSQL: the library's recorder, plus the event index written in the same transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import OperationalError, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from application.seams import PostgresInsertSeam, plain
from application.store import keys
from application.store.indexing import IndexingRecorder
from application.store.query import (
    EVENT_BLOCKS_TABLE,
    EVENT_COUNTS_TABLE,
    EVENT_INDEX_TABLE,
    IndexRow,
    block_params,
    count_params,
    index_params,
    index_statement,
)


def open_pool_at_once(datastore: object) -> None:
    """Open a PostgreSQL datastore's pool and wait for its first connection.

    The library opens its pool without waiting and asks it for a connection straight
    away; finding none ready yet, the pool adds a second one beside the one it is still
    opening. So every pool started with two connections where it keeps one (each a
    backend process on the server): four per Fleet, a fifth of its start-up. Waiting for
    the first one once makes the library's own open a no-op.
    """
    if not isinstance(datastore, PostgresDatastore):
        return
    try:
        datastore.pool.open(wait=True, timeout=datastore.pool.timeout)
    except psycopg.OperationalError as exc:  # as the library reports a failed connection
        raise OperationalError(str(exc)) from exc


def search_path_option(schema: str) -> str:
    """libpq ``options`` that start a connection with ``schema`` as its search path.

    The identifier is double-quoted (so any name works as it is spelled) and then escaped
    for ``options``, where a space separates arguments unless a backslash escapes it.
    """
    quoted = '"' + schema.replace('"', '""') + '"'
    return "-c search_path=" + quoted.replace("\\", "\\\\").replace(" ", "\\ ")


def connect_in_schema(datastore: object) -> None:
    """Start each new connection of a PostgreSQL datastore's pool in its schema.

    The projections' SQL names its tables without a schema, so each of their transactions
    began with ``SET LOCAL search_path``: one round trip more for every catch-up and every
    list read. The pool's ``kwargs`` (public, meant to be changed) take effect for the
    connections it opens from now on, so this must run before it opens any.
    """
    if isinstance(datastore, PostgresDatastore) and isinstance(datastore.pool.kwargs, dict):
        datastore.pool.kwargs["options"] = search_path_option(datastore.schema)


def same_database(one: PostgresDatastore, other: PostgresDatastore) -> bool:
    """Whether two datastores' pools connect to the same database of the same server."""
    first, second = one.pool.kwargs, other.pool.kwargs
    if not (isinstance(first, dict) and isinstance(second, dict)):
        return False  # connection arguments made by a function: cannot tell
    return all(first.get(key) == second.get(key) for key in ("host", "port", "dbname"))


def connects_in_schema(datastore: PostgresDatastore) -> bool:
    """Whether ``connect_in_schema`` set up this datastore (no ``SET LOCAL`` needed)."""
    kwargs = datastore.pool.kwargs
    return isinstance(kwargs, dict) and kwargs.get("options") == search_path_option(
        datastore.schema
    )


# Bounds the statements ``_sql`` keeps: the fixed ones and the event filters' combinations
# are far fewer.
RENDERED_TEMPLATES = 512


class FleetPostgresRecorder(IndexingRecorder, PostgresInsertSeam):
    """Writes each event's index row beside it, inside the library's insert transaction."""

    PLACEHOLDER = "%s"
    PURGE_KEYS = keys.PURGE_KEYS

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any):
        # Its connections start in the schema: the projections a write applies in its own
        # transaction (``Projector.apply_inline``) name their tables without one.
        connect_in_schema(datastore)
        open_pool_at_once(datastore)  # before the library's create_table asks for one
        self._rendered: dict[str, SQL] = {}
        super().__init__(datastore, **kwargs)

    def _sql(self, template: str) -> SQL:
        """The template with this schema's names, rendered once (see ``seams.plain``)."""
        statement = self._rendered.get(template)
        if statement is None:
            schema = self.datastore.schema
            statement = plain(
                SQL(template.replace("{p}", "%s")).format(
                    index=Identifier(schema, EVENT_INDEX_TABLE),
                    events=Identifier(schema, self.events_table_name),
                    counts=Identifier(schema, EVENT_COUNTS_TABLE),
                    blocks=Identifier(schema, EVENT_BLOCKS_TABLE),
                    keys=Identifier(schema, keys.IDEMPOTENCY_TABLE),
                    pos=Identifier("notification_id"),
                )
            )
            if len(self._rendered) < RENDERED_TEMPLATES:
                self._rendered[template] = statement
        return statement

    def _rowcount(self, cursor: Any) -> int:
        return int(cursor.rowcount)

    def _index_events(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        positions: Sequence[int],
        rows: Sequence[IndexRow],
    ) -> None:
        """As the base's three statements, in one (``index_statement``)."""
        index = index_params(positions, stored_events, rows)
        counts, blocks = count_params(rows), block_params(positions, rows)
        statement = index_statement(len(index), len(counts), len(blocks))
        cursor.execute(self._sql(statement), [v for row in (*index, *counts, *blocks) for v in row])

    def _stream_id(self, value: Any) -> Any:
        return value  # psycopg reads a uuid column as a UUID

    def _stored_key(self, stream: UUID) -> Any:
        return stream

    def _side_cursor(self, cursor: Any) -> Any:
        return cursor.connection.cursor()

    def _answer(self, reader: Any) -> Callable[[], Any]:
        answer: Callable[[], Any] = reader.fetchone  # in the pipeline: read with those after
        return answer

    def _answered(self, cursor: Any) -> AbstractContextManager[Any]:
        """The library's pipeline, entered again: leaving it syncs.

        The library syncs after its insert, so its own IntegrityError is raised there;
        a failure of Fleet's statements after it would be raised by whichever call
        happened to read its answer, often the next ``execute``, and the library's
        commit then met an aborted pipeline: "pipeline aborted", an OperationalError
        (a 503) in place of the key's IntegrityError. Synced here, the failure comes
        with the pipeline usable and the transaction rolled back, as the library's own
        do. One round trip more, paid only by the keyed refusals (a probe's delete
        follows its insert); a key claimed last needs none, its failure raised at the
        commit. A sync for every write cost about 12 % of an embedded heartbeat.
        """
        return cast(AbstractContextManager[Any], cursor.connection.pipeline())
