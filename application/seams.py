"""Every use of a library's private API, in one place: the seams.

Fleet uses the libraries' public APIs wherever they offer what it needs. Where they do
not, the private name it relies on is used here and nowhere else, with a docstring per
seam saying why it is needed; ``tests/unit/test_seams.py`` has a test per seam that fails
loudly when a library upgrade removes or changes the private thing. So an upgrade of
eventsourcing, flask-smorest, werkzeug or marshmallow means reading this module and running that
test, not searching the code base.

The flask-smorest, werkzeug and marshmallow seams serve ``web/`` only, but live here too: one module
keeps the list whole, and the layers allow it (``web`` may import ``application``, never
the reverse, so a seam module in ``web/`` could not serve the store). They import no web
framework (they take the objects they touch as arguments), so importing this module costs
the store, the CLI and the projector nothing.

Not seams: the documented extension points that happen to start with an underscore,
such as marshmallow's ``Field._deserialize`` (custom fields override it, as marshmallow's
documentation says).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

import psycopg
from eventsourcing.application import Application, ProcessingEvent, Repository
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresTrackingRecorder
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
)
from eventsourcing.utils import retry
from psycopg import pq
from psycopg.sql import SQL, Composable, Identifier

if TYPE_CHECKING:
    import marshmallow as ma
    from marshmallow.fields import Field

log = logging.getLogger(__name__)


# ---- eventsourcing: the SQLite connection pool -------------------------------------------


def share_writer_lock(pool: Any, leader: Any) -> None:
    """Make ``pool`` hand out its writer connection under ``leader``'s one-writer lock.

    eventsourcing's ``ConnectionPool`` lets one writer at a time through its own
    ``_writer_lock``. Two pools on one SQLite file in one process (the events' and the
    projections', see ``application.store.sqlite.queue_writers_together``) then meet at
    SQLite's lock instead, whose busy handler sleeps before each retry; one lock for both
    hands the file over at once. The pool has no public way to share its lock.
    """
    pool._writer_lock = leader._writer_lock


def writer_lock(pool: Any) -> Any:
    """The lock ``pool`` lets its writers through (the pool's own, or one put there by
    ``replace_writer_lock`` or ``share_writer_lock``); the pool does not expose it."""
    return pool._writer_lock


def replace_writer_lock(pool: Any, lock: Any) -> None:
    """Let ``pool``'s writers through ``lock`` (``acquire(timeout=...)``, ``release()``)
    instead of the pool's own thread lock (see ``application.store.sqlite``). The pool
    has no public way to change it; call it before the pool hands out a writer."""
    pool._writer_lock = lock


class StatementCachingPool(SQLiteConnectionPool):
    """The library's SQLite pool, with connections that keep their prepared statements.

    The library opens each connection with ``cached_statements=True``, which ``sqlite3``
    reads as a cache of *one* statement, so every statement but a repeat of the last is
    compiled again: a command runs 15-20 different ones. With sqlite3's own default (128)
    a command costs 15-20 % less CPU (same process, alternating batches). The pool's
    ``_create_connection`` is its abstract hook for subclasses, but the library's body has
    to be repeated here to change that one argument.
    """

    STATEMENTS = 128

    @classmethod
    def like(cls, pool: SQLiteConnectionPool) -> StatementCachingPool:
        """A pool with ``pool``'s settings (before it opened a connection)."""
        return cls(
            db_name=pool.db_name,
            lock_timeout=pool.lock_timeout,
            pool_size=pool.pool_size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.pool_timeout,
            max_age=pool.max_age,
            pre_ping=pool.pre_ping,
        )

    def _create_connection(self) -> SQLiteConnection:
        try:
            connection = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=self.STATEMENTS,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as error:
            raise InterfaceError(error) from error
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
            if mode.lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        connection.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=connection, max_age=self.max_age)


# ---- eventsourcing: tracking inside the caller's transaction -----------------------------


def insert_tracking(recorder: TrackingRecorder, cursor: Any, tracking: Tracking) -> None:
    """Record ``tracking`` in the transaction of ``cursor``; fails if it would not advance.

    A projection writes its rows and its position in one transaction (so every event
    counts once). The public ``TrackingRecorder.insert_tracking`` opens a transaction of
    its own; ``_insert_tracking`` (both backends) writes with the caller's cursor, using
    the recorder's ``insert_tracking_statement`` (which ``application.projections.view``
    points at the projection's own table on SQLite).
    """
    recorder._insert_tracking(cursor, tracking)  # type: ignore[attr-defined]


def max_tracking_id(recorder: TrackingRecorder, application_name: str, cursor: Any) -> int | None:
    """The tracked position, read in the transaction of ``cursor`` (None before the first).

    The public ``max_tracking_id`` reads in a transaction of its own, which would not see
    what the caller's open transaction wrote, and on SQLite would wait for it.
    """
    found: int | None = recorder._max_tracking_id(application_name, cursor)  # type: ignore[attr-defined]
    return found


# ---- eventsourcing on psycopg: statements rendered once ----------------------------------

# The library's PostgreSQL recorders keep their statements as psycopg ``Composed`` objects
# (public attributes, but the library's SQL), their schema and table names as identifiers.
LIBRARY_STATEMENTS = (
    "insert_events_statement",
    "select_events_statement",
    "max_notification_id_statement",
    "insert_tracking_statement",
    "max_tracking_id_statement",
)


def plain(statement: Composable) -> SQL:
    """``statement`` rendered once, as SQL text.

    psycopg renders a ``Composed`` again at every execution, escaping each identifier in it
    anew: 6 % of a PostgreSQL heartbeat's time (bench/findings.md). As text, rendering is an
    encode, and the statement is the same (``tests/unit/test_seams.py`` compares each with
    its rendering on a live connection).
    """
    return SQL(statement.as_string(None))


def render_library_statements(recorder: object) -> None:
    """Replace a library recorder's statements (``LIBRARY_STATEMENTS`` and its table locks)
    with their text, rendered once (``plain``)."""
    for name in LIBRARY_STATEMENTS:
        statement = getattr(recorder, name, None)
        if isinstance(statement, Composable):
            setattr(recorder, name, plain(statement))
    locks = getattr(recorder, "lock_table_statements", None)
    if locks:
        recorder.lock_table_statements = [  # type: ignore[attr-defined]
            plain(lock) if isinstance(lock, Composable) else lock for lock in locks
        ]


def insert_trackings(
    recorders: Sequence[TrackingRecorder], cursor: Any, tracking: Tracking
) -> list[bool]:
    """Record one ``tracking`` for several projections with one PostgreSQL statement.

    A write most projections take nothing from (a heartbeat) still moves each one's
    position: one upsert per projection, each a round trip on PostgreSQL. Here each
    recorder's own ``insert_tracking_statement`` (a public attribute, but the library's
    SQL: what ``_insert_tracking`` runs) becomes one data-modifying CTE of a single
    statement. Returns, per recorder, whether its position advanced (what
    ``_insert_tracking`` tells by raising ``IntegrityError``). Single-row tracking only,
    the library's default; anything else goes one ``insert_tracking`` at a time.
    """
    if not all(
        isinstance(r, PostgresTrackingRecorder) and r.datastore.single_row_tracking
        for r in recorders
    ):
        advanced = []
        for recorder in recorders:
            try:
                insert_tracking(recorder, cursor, tracking)
            except IntegrityError:
                advanced.append(False)
            else:
                advanced.append(True)
        return advanced
    statement = _trackings_statement(
        tuple(r.insert_tracking_statement.as_string(None) for r in recorders)  # type: ignore[attr-defined]
    )
    cursor.execute(
        statement,
        {
            "application_name": tracking.application_name,
            "notification_id": tracking.notification_id,
        },
    )
    row = cursor.fetchone()
    return [bool(row[f"t{number}"]) for number in range(len(recorders))]


# ---- eventsourcing: writing beside the events, in their transaction ----------------------


class SQLiteInsertSeam(SQLiteApplicationRecorder):
    """The library's SQLite recorder, calling ``events_inserted`` inside its insert.

    Fleet writes each event's index row and the command's idempotency key in the
    events' own transaction, so a write is indexed exactly when it commits and a key
    another write holds fails the write whole. ``insert_events(**kwargs)`` hands the
    save's keyword arguments down (public), but only the private ``_insert_events`` runs
    with the transaction's cursor, after the rows got their positions.
    """

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        self.events_inserted(c, stored_events, positions, kwargs)
        return positions

    def events_inserted(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        positions: Sequence[int] | None,
        kwargs: Mapping[str, Any],
    ) -> None:
        """Called in the events' transaction once they are inserted at ``positions``."""


class PostgresInsertSeam(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, calling ``events_inserted`` inside its insert.

    As ``SQLiteInsertSeam``: ``_fetch_ids_after_insert_events`` is where the library has
    the events' positions, in their transaction (it is not called when the library's
    ``POSTGRES_ENABLE_DB_FUNCTIONS`` inserts through a database function instead).

    Its statements are rendered once (``render_library_statements``), the ``NOTIFY`` of
    each insert too: the library's ``_notify_channel`` composes that one anew each time.

    ``insert_events`` runs the library's own steps (``_insert_events``,
    ``_insert_stored_events``, ``_fetch_ids_after_insert_events``) in one pipeline, as the
    library's does, but opens and ends the transaction with ``BEGIN`` and ``COMMIT``
    statements of that pipeline. The library's uses psycopg's ``transaction()``, which in
    pipeline mode nests two more pipelines, each synced going in or out: three of a
    heartbeat's eight round trips, waited for with the events' table lock held
    (bench/findings.md).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        render_library_statements(self)
        self._notify_statement = plain(SQL("NOTIFY {}").format(Identifier(self.channel_name)))

    def _notify_channel(self, curs: Any) -> None:
        curs.execute(self._notify_statement)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.datastore.enable_db_functions or not stored_events:
            return cast(Sequence[int] | None, super().insert_events(stored_events, **kwargs))
        with self.datastore.get_connection() as connection, connection.pipeline() as pipeline:
            cursor = connection.cursor()
            try:
                cursor.execute(BEGIN)
                self._insert_events(cursor, stored_events, **kwargs)
                self._insert_stored_events(cursor, stored_events, **kwargs)
                # Synced here so that a clash of versions is the insert's IntegrityError.
                pipeline.sync()
                positions = self._fetch_ids_after_insert_events(cursor, stored_events, **kwargs)
            except BaseException:
                with contextlib.suppress(psycopg.Error):  # what the failure made it skip
                    pipeline.sync()
                with contextlib.suppress(psycopg.Error):  # a lost connection is not reused
                    cursor.execute(ROLLBACK, prepare=False)
                    pipeline.sync()
                    forget_prepared_statements(connection)
                    pipeline.sync()
                raise
            cursor.execute(COMMIT)  # answered, or its failure raised, as the pipeline ends
        return positions

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        self.events_inserted(curs, stored_events, positions, kwargs)
        return positions

    def events_inserted(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        positions: Sequence[int] | None,
        kwargs: Mapping[str, Any],
    ) -> None:
        """Called in the events' transaction once they are inserted at ``positions``."""


@functools.lru_cache(maxsize=64)
def _trackings_statement(upserts: tuple[str, ...]) -> SQL:
    """``insert_trackings``' statement for these upserts, built and rendered once."""
    names = [Identifier(f"t{number}") for number in range(len(upserts))]
    ctes: list[Composable] = [
        SQL("{} AS ({})").format(name, SQL(upsert))
        for name, upsert in zip(names, upserts, strict=True)
    ]
    counts: list[Composable] = [
        SQL("(SELECT count(*) FROM {}) AS {}").format(name, name) for name in names
    ]
    return plain(SQL("WITH {} SELECT {}").format(SQL(", ").join(ctes), SQL(", ").join(counts)))


BEGIN, COMMIT, ROLLBACK = SQL("BEGIN"), SQL("COMMIT"), SQL("ROLLBACK")


def forget_prepared_statements(connection: Any) -> None:
    """After a rollback, what psycopg's own transaction does after one: forget the
    statements it prepared, on the server too, at once.

    psycopg prepares the statements run often or asked to be (``_prepared``, its cache)
    and, seeing a rollback, empties its cache and marks the server's for a ``DEALLOCATE
    ALL``. Left to psycopg, that one is sent after the connection's next statement: when
    that one is prepared again on the spot (the library's ``select_events`` asks for it),
    the server drops it too, and its next run fails ("prepared statement ... does not
    exist"). A ``ROLLBACK TO SAVEPOINT`` counts as a rollback too. In pipeline mode
    ``maintain_gen`` queues the ``DEALLOCATE ALL``; the caller syncs.
    """
    connection._prepared.clear()
    connection.wait(connection._prepared.maintain_gen(connection))


# ---- psycopg: results still to be read in pipeline mode ----------------------------------


def in_pipeline(connection: Any) -> bool:
    """Whether a psycopg connection is in pipeline mode (``PostgresInsertSeam``'s insert runs
    in one)."""
    return bool(connection.pgconn.pipeline_status != pq.PipelineStatus.OFF)


def unread_pipeline_results(connection: Any) -> bool:
    """Whether statements sent in pipeline mode have results not read yet.

    A statement that fails in a pipeline says so only when its result is read, and the
    statements after it are skipped until the next sync. psycopg keeps the results it still
    expects in its private ``Pipeline.result_queue``; no public call tells whether a
    failure may still be waiting without reading it (a round trip).
    """
    pipeline = connection._pipeline
    return pipeline is not None and bool(pipeline.result_queue)


def sync_pipeline(connection: Any) -> None:
    """Send a sync and read every result: raises the first failure among them, and leaves
    the pipeline usable again after one (``Pipeline.sync``, public, on psycopg's private
    ``_pipeline``: the library's insert holds the ``Pipeline`` object, not Fleet)."""
    connection._pipeline.sync()


# ---- eventsourcing: saving aggregates without runtime protocol checks ---------------------


def save_aggregates(app: Application[Any], saved: Sequence[Any], /, **kwargs: Any) -> list[Any]:
    """``app.save(*saved, **kwargs)``, collecting the events without protocol checks.

    The library's ``save`` collects events through ``ProcessingEvent.collect_events``, which
    asks of each object whether it is a ``DomainEventProtocol``, then a
    ``CollectEventsProtocol``. Both are runtime-checkable Protocols, and on Python 3.11 such
    an ``isinstance`` lists the protocol's members again at every call: 3 % of an in-process
    heartbeat (bench/findings.md). Given aggregates only, this collects their events
    directly and then runs the rest of the library's ``save`` as it is: its private
    ``_record``, ``_take_snapshots`` and ``_notify``, then ``notify``.
    """
    processing_event: ProcessingEvent[Any] = ProcessingEvent()
    for aggregate in saved:
        processing_event.events.extend(aggregate.collect_events())
        processing_event.aggregates[aggregate.id] = aggregate
    processing_event.saved_kwargs.update(kwargs)
    recordings: list[Any] = app._record(processing_event)
    app._take_snapshots(processing_event)
    app._notify(recordings)
    app.notify(processing_event.events)  # the library's save calls it too (deprecated there)
    return recordings


# ---- eventsourcing: the aggregate cache's fast-forward lock -------------------------------


@contextlib.contextmanager
def fastforward_lock(repository: Repository[Any], aggregate_id: Any) -> Iterator[None]:
    """Hold the lock under which the library fast-forwards a cached aggregate in place.

    The library's ``Repository.get`` applies newer events to the cached object itself, under
    a per-aggregate lock it keeps in private ``_use_fastforward_lock`` and
    ``_disuse_fastforward_lock``. A copy of the cached object taken while another thread
    fast-forwards it could be half of one version and half of the next, so
    ``FleetApplication.get`` copies it holding the same lock.
    """
    lock = repository._use_fastforward_lock(aggregate_id)
    try:
        with lock:
            yield
    finally:
        repository._disuse_fastforward_lock(aggregate_id)


# ---- eventsourcing: an aggregate's snapshot state -----------------------------------------

# The attributes of the library's ``Aggregate`` that ``Snapshot.take`` leaves out of a state.
NOT_STATE = ("_id", "_version", "_pending_events")


def snapshot_state(aggregate: Any) -> dict[str, Any]:
    """``Snapshot.take(aggregate).state``, without making the snapshot around it.

    Every projection row keeps its aggregate's state, and ``take`` also stamps the snapshot
    with the time and resolves its topic: most of its 3.7 µs, for each row a write or a
    rebuild writes. What the state holds is the library's rule: the aggregate's attributes
    but its private id, version and pending events, and its ``class_version`` above 1.
    """
    state = dict(vars(aggregate))
    for name in NOT_STATE:
        del state[name]
    class_version = getattr(type(aggregate), "class_version", 1)
    if class_version > 1:
        state["class_version"] = class_version
    return state


# ---- flask-smorest: the OpenAPI document --------------------------------------------------


def add_doc_callback(blueprint: Any, callback: Callable[..., dict[str, Any]]) -> None:
    """Run ``callback(doc, doc_info, api=, app=, spec=, method=)`` on every operation's doc.

    A ``flask_smorest.Blueprint`` builds each operation's OpenAPI entry by passing it
    through the callbacks in its private ``_prepare_doc_cbks`` list, after its own
    (arguments, response, pagination, ETag). Fleet adds what every operation shares (id
    headers, security, idempotency key, 400/401) there: it depends on the app's settings
    and the method, which no public decorator sees.
    """
    blueprint._prepare_doc_cbks.append(callback)


def doc_info(view: Any) -> dict[str, Any]:
    """What flask-smorest's decorators noted on ``view`` for its OpenAPI entry ({} if none).

    flask-smorest keeps it in the function attribute ``_apidoc``; the blueprint hands it to
    the doc callbacks as ``doc_info`` (see ``add_doc_callback``).
    """
    found: dict[str, Any] = getattr(view, "_apidoc", {})
    return found


def set_doc_info(view: Any, info: dict[str, Any]) -> None:
    """Replace what ``doc_info(view)`` returns: how Fleet's own decorators (links, If-Match)
    pass their notes to its doc callback, beside flask-smorest's own."""
    view._apidoc = info


class SharedSpecSeam:
    """Mixed in before ``flask_smorest.Api``: an app can take an OpenAPI document already
    built by an earlier app of this process instead of building its own.

    Building the document (every schema resolved, every operation documented) is most of
    the cost of an app factory; the test suite builds hundreds of apps with the same code
    and settings. flask-smorest has no public way to hand an ``Api`` a built spec: its
    private ``_init_spec`` makes the ``APISpec`` and plugins, ``_register_converter``
    documents a URL converter, and ``register_blueprint`` documents the views as it
    registers them, noting the blueprint in the app's ``extensions["flask-smorest"]``
    (``blp_name_to_api``) and in the private ``_app``. With ``shared`` set (a built
    ``(spec, flask_plugin, ma_plugin)``) these steps only register, never document.
    """

    shared: tuple[Any, Any, Any] | None = None
    _app: Any
    spec: Any
    flask_plugin: Any
    ma_plugin: Any

    def _init_spec(self, **kwargs: Any) -> None:
        if self.shared is None:
            super()._init_spec(**kwargs)  # type: ignore[misc]
            return
        from flask_smorest.spec import openapi_cli

        self.spec, self.flask_plugin, self.ma_plugin = self.shared
        self._app.cli.add_command(openapi_cli)

    def _register_converter(self, converter: Any, func: Any) -> None:
        if self.shared is None:
            super()._register_converter(converter, func)  # type: ignore[misc]

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        if self.shared is None:
            super().register_blueprint(blp, parameters=parameters, **options)  # type: ignore[misc]
            return
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)


# ---- werkzeug: the URL builders of routing rules -------------------------------------------


class SharedBuilderSeam:
    """Mixed in before werkzeug's ``Rule``: rules alike share one compiled URL builder.

    Binding a rule to a map compiles two Python functions for it from an AST (its URL
    builders, with and without unknown arguments as a query string): about 1.2 ms a
    route, so most of an app factory's time once the OpenAPI document is shared, and the
    test suite builds hundreds of apps with the same routes. A builder depends only on
    the rule's parsed parts (the private ``_trace``) and the names of its defaults, and it
    reaches its rule through its ``self`` argument (``self._converters``), so one function
    serves every rule with the same parts. werkzeug has no public hook for this; the
    private ``_compile_builder(append_unknown)`` is overridden. A rule whose defaults fill
    a variable of its path bakes the converted value into its builder: it is compiled as
    werkzeug does.
    """

    _builders: ClassVar[dict[Hashable, Callable[..., Any]]] = {}
    _trace: list[tuple[bool, str]]
    defaults: Mapping[str, Any] | None

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., Any]:
        compile_builder = super()._compile_builder  # type: ignore[misc]
        defaults = tuple(self.defaults or ())
        if any(dynamic and part in defaults for dynamic, part in self._trace):
            return compile_builder(append_unknown)  # type: ignore[no-any-return]
        key = (tuple(self._trace), defaults, append_unknown)
        builder = self._builders.get(key)
        if builder is None:
            builder = self._builders[key] = compile_builder(append_unknown)
        return builder


# ---- marshmallow: declared field order ----------------------------------------------------


def declared_fields(schema: type[ma.Schema]) -> dict[str, Field[Any]]:
    """The fields a schema class declares, in order (inherited ones first).

    marshmallow keeps them in the class attribute ``_declared_fields``; instances copy
    their fields from it, and apispec documents a schema's properties in its order.
    """
    return schema._declared_fields


def set_declared_fields(schema: type[ma.Schema], fields: dict[str, Field[Any]]) -> None:
    """Replace a schema class's declared fields (to reorder them): answers are dumped and
    documented in this order, which ``web.schemas.resource`` makes the services' order."""
    schema._declared_fields = fields
