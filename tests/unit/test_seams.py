"""``application.seams``: one test per library private Fleet relies on.

Each fails loudly when an upgrade of eventsourcing, flask-smorest, werkzeug or marshmallow removes
the private name or changes what Fleet relies on it for; the fix then goes in
``application/seams.py`` alone.
"""

from __future__ import annotations

import contextlib
import inspect
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID, uuid4

import flask_smorest
import marshmallow as ma
import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import (
    ConnectionUnavailableError,
    IntegrityError,
    InterfaceError,
    PersistenceError,
    StoredEvent,
    Tracking,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteDatastore,
    SQLiteTrackingRecorder,
)
from flask import Flask
from flask.views import MethodView

from application import seams
from application.projections.view import View
from domain.specialist import Specialist
from tests.conftest import pg_conninfo


def params(func: Any) -> list[tuple[str, Any]]:
    """A function's parameters, by name and kind."""
    return [(p.name, p.kind) for p in inspect.signature(func).parameters.values()]


POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD


# ---- eventsourcing: the SQLite pool's writer lock ------------------------------------------


def test_a_shared_writer_lock_lets_one_writer_of_both_pools_through(tmp_path: Path) -> None:
    db = str(tmp_path / "seam.sqlite3")
    leader, follower = SQLiteDatastore(db), SQLiteDatastore(db)
    try:
        assert hasattr(leader.pool, "_writer_lock"), "ConnectionPool._writer_lock is gone"
        seams.share_writer_lock(follower.pool, leader.pool)
        assert follower.pool._writer_lock is leader.pool._writer_lock
        writer = leader.pool.get_connection(is_writer=True)
        with pytest.raises(ConnectionUnavailableError):  # queued behind the leader's writer
            follower.pool.get_connection(timeout=0.05, is_writer=True)
        leader.pool.put_connection(writer)
        follower.pool.put_connection(follower.pool.get_connection(timeout=1, is_writer=True))
    finally:
        leader.close()
        follower.close()


class CountingLock:
    """A writer lock that counts its turns: the pool must go through the one it is given."""

    def __init__(self) -> None:
        self.turns = 0
        self._lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.turns += 1
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()


def test_a_replaced_writer_lock_is_the_one_the_pools_writers_take(tmp_path: Path) -> None:
    datastore = SQLiteDatastore(str(tmp_path / "seam.sqlite3"))
    try:
        lock = CountingLock()
        seams.replace_writer_lock(datastore.pool, lock)
        assert seams.writer_lock(datastore.pool) is lock
        writer = datastore.pool.get_connection(is_writer=True)
        assert lock.turns == 1
        with pytest.raises(ConnectionUnavailableError):  # the one writer holds it
            datastore.pool.get_connection(timeout=0.05, is_writer=True)
        datastore.pool.put_connection(writer)
        datastore.pool.put_connection(datastore.pool.get_connection(timeout=1, is_writer=True))
        assert lock.turns == 3
    finally:
        datastore.close()


# ---- eventsourcing: SQLite connections that keep their prepared statements -----------------


def test_a_statement_caching_pool_opens_connections_as_the_librarys_do_with_a_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[dict[str, Any]] = []
    connect = sqlite3.connect

    def spy(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(kwargs)
        return connect(*args, **kwargs)

    monkeypatch.setattr(seams.sqlite3, "connect", spy)
    library = SQLiteDatastore(str(tmp_path / "library.sqlite3"), lock_timeout=7, pool_size=3)
    ours = SQLiteDatastore(str(tmp_path / "ours.sqlite3"), lock_timeout=7, pool_size=3)
    ours.pool = seams.StatementCachingPool.like(ours.pool)
    try:
        looks = []
        for datastore in (library, ours):
            with datastore.transaction(commit=True) as cursor:
                cursor.execute("CREATE TABLE t (a)")
                cursor.execute("INSERT INTO t VALUES (1)")
            with datastore.transaction(commit=False) as cursor:
                cursor.execute("SELECT a FROM t")
                row = cursor.fetchone()
                cursor.execute("PRAGMA journal_mode")
                looks.append((row["a"], cursor.fetchone()[0], datastore.pool.is_journal_mode_wal))
        assert looks[0] == looks[1] == (1, "wal", True)
        # The library's connection caches one statement (when this fails, it changed and
        # the seam may be unneeded); ours, sqlite3's default.
        assert [kwargs["cached_statements"] for kwargs in opened] == [True, 128]
        assert opened[0] == {
            **opened[1],
            "cached_statements": True,
            "database": str(tmp_path / "library.sqlite3"),
        }
    finally:
        library.close()
        ours.close()


def test_a_statement_caching_pool_that_cannot_open_its_file_says_so(tmp_path: Path) -> None:
    pool = seams.StatementCachingPool(db_name=str(tmp_path / "no such folder" / "x.sqlite3"))
    with pytest.raises(InterfaceError):
        pool.get_connection()


# ---- eventsourcing: tracking in the caller's transaction -----------------------------------


@pytest.mark.parametrize("cls", [SQLiteTrackingRecorder, PostgresTrackingRecorder])
def test_the_tracking_privates_take_the_callers_cursor(cls: type[Any]) -> None:
    assert [n for n, _ in params(cls._insert_tracking)][1:] in (
        ["c", "tracking"],
        ["curs", "tracking"],
    )
    assert [n for n, _ in params(cls._max_tracking_id)][1] == "application_name"
    assert len(params(cls._max_tracking_id)) == 3


def check_tracking_in_one_transaction(view: View) -> None:
    with view.transaction() as tx:
        seams.insert_tracking(view.recorder, tx.cursor, Tracking("upstream", 3))
        assert seams.max_tracking_id(view.recorder, "upstream", tx.cursor) == 3  # unseen outside
        assert view.position("other") == 0
    assert view.position("upstream") == 3
    with pytest.raises(IntegrityError), view.transaction() as tx:  # would not advance
        seams.insert_tracking(view.recorder, tx.cursor, Tracking("upstream", 3))
    with pytest.raises(RuntimeError), view.transaction() as tx:  # rolled back with the caller
        seams.insert_tracking(view.recorder, tx.cursor, Tracking("upstream", 9))
        raise RuntimeError
    assert view.position("upstream") == 3
    with view.transaction(commit=False) as tx:
        assert seams.max_tracking_id(view.recorder, "nobody", tx.cursor) is None


def test_tracking_is_written_and_read_in_the_callers_sqlite_transaction(tmp_path: Path) -> None:
    datastore = SQLiteDatastore(str(tmp_path / "seam.sqlite3"))
    try:
        check_tracking_in_one_transaction(View("seam", datastore))
    finally:
        datastore.close()


def datastore_in(schema: str, **pool: int) -> PostgresDatastore:
    info = pg_conninfo()
    return PostgresDatastore(
        info["dbname"], info["host"], info["port"], info["user"], info["password"],
        schema=schema, **pool,
    )  # fmt: skip


@pytest.fixture
def postgres_datastore(postgres_env: dict[str, str]) -> Iterator[PostgresDatastore]:
    # Two connections: a read beside the open transaction.
    datastore = datastore_in(postgres_env["POSTGRES_SCHEMA"], pool_size=2)
    try:
        yield datastore
    finally:
        datastore.close()


@pytest.mark.postgres
def test_tracking_is_written_and_read_in_the_callers_postgres_transaction(
    postgres_datastore: PostgresDatastore,
) -> None:
    check_tracking_in_one_transaction(View("seam", postgres_datastore))


def check_trackings_in_one_statement(views: list[View]) -> None:
    recorders = [view.recorder for view in views]
    with views[0].transaction() as tx:
        seams.insert_tracking(recorders[1], tx.cursor, Tracking("upstream", 7))  # ahead
    with views[0].transaction() as tx:
        moved = seams.insert_trackings(recorders, tx.cursor, Tracking("upstream", 5))
        assert moved == [True, False, True]
    assert [view.position("upstream") for view in views] == [5, 7, 5]
    with pytest.raises(RuntimeError), views[0].transaction() as tx:  # rolled back with it
        seams.insert_trackings(recorders, tx.cursor, Tracking("upstream", 9))
        raise RuntimeError
    assert [view.position("upstream") for view in views] == [5, 7, 5]


def test_several_trackings_go_one_at_a_time_on_sqlite(tmp_path: Path) -> None:
    datastore = SQLiteDatastore(str(tmp_path / "seam.sqlite3"))
    try:
        check_trackings_in_one_statement([View(f"seam{n}", datastore) for n in range(3)])
    finally:
        datastore.close()


@pytest.mark.postgres
def test_several_trackings_are_one_postgres_statement(
    postgres_datastore: PostgresDatastore,
) -> None:
    """Built from each recorder's ``insert_tracking_statement``: its named parameters and
    its RETURNING (which says whether the position advanced) are what this relies on."""
    views = [View(f"seam{n}", postgres_datastore) for n in range(3)]
    statement = views[0].recorder.insert_tracking_statement  # type: ignore[attr-defined]
    text = statement.as_string(None)
    assert "%(application_name)s" in text and "%(notification_id)s" in text
    assert text.rstrip().endswith("RETURNING notification_id")
    assert postgres_datastore.single_row_tracking
    check_trackings_in_one_statement(views)


# ---- eventsourcing on psycopg: statements rendered once -----------------------------------


class NotifyHeard:
    """A cursor that keeps what it is asked to execute."""

    def __init__(self) -> None:
        self.statements: list[Any] = []

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> None:
        self.statements.append(statement)


@pytest.mark.postgres
def test_statements_rendered_once_are_the_librarys_statements(
    postgres_datastore: PostgresDatastore,
) -> None:
    """Each statement the library composes, rendered once as text, reads as psycopg renders
    it on a live connection; the seam's NOTIFY is the one ``_notify_channel`` composes."""
    schema = postgres_datastore.schema
    library = PostgresApplicationRecorder(postgres_datastore, events_table_name="seam_events")
    tracking = PostgresTrackingRecorder(postgres_datastore, tracking_table_name="seam_tracking")
    rendered = seams.PostgresInsertSeam(postgres_datastore, events_table_name="seam_events")
    rendered_tracking = PostgresTrackingRecorder(
        postgres_datastore, tracking_table_name="seam_tracking"
    )
    seams.render_library_statements(rendered_tracking)
    with psycopg.connect(**pg_conninfo()) as connection:
        for original, plain in ((library, rendered), (tracking, rendered_tracking)):
            names = [n for n in seams.LIBRARY_STATEMENTS if hasattr(original, n)]
            assert names  # every recorder has some of them
            for name in names:
                composed = getattr(original, name)
                assert isinstance(composed, psycopg.sql.Composed), name
                text = composed.as_string(connection)
                assert isinstance(getattr(plain, name), psycopg.sql.SQL), name  # text now
                assert getattr(plain, name).as_string(connection) == text, name
                assert schema in text, name  # the schema's name is in the rendered text
        locks = [lock.as_string(connection) for lock in library.lock_table_statements]
        assert [lock.as_string(connection) for lock in rendered.lock_table_statements] == locks
        assert all(isinstance(lock, psycopg.sql.SQL) for lock in rendered.lock_table_statements)
        assert any("LOCK TABLE" in lock for lock in locks)
        composed_notify, plain_notify = NotifyHeard(), NotifyHeard()
        PostgresApplicationRecorder._notify_channel(library, composed_notify)  # type: ignore[arg-type]
        rendered._notify_channel(plain_notify)
        assert all(isinstance(s, psycopg.sql.SQL) for s in plain_notify.statements)
        assert [s.as_string(connection) for s in plain_notify.statements] == [
            s.as_string(connection) for s in composed_notify.statements
        ]


# ---- eventsourcing: the insert seams -------------------------------------------------------


def test_the_private_insert_steps_take_cursor_events_and_the_saves_kwargs() -> None:
    sqlite_step = SQLiteApplicationRecorder._insert_events
    assert [kind for _, kind in params(sqlite_step)] == [POSITIONAL] * 3 + [VAR_KEYWORD]
    # The PostgreSQL seam runs these three steps of the library in its own pipeline.
    for pg_step in (
        PostgresApplicationRecorder._insert_events,
        PostgresApplicationRecorder._insert_stored_events,
        PostgresApplicationRecorder._fetch_ids_after_insert_events,
    ):
        assert [kind for _, kind in params(pg_step)] == [POSITIONAL] * 3 + [VAR_KEYWORD]
    assert [kind for _, kind in params(PostgresApplicationRecorder.insert_events)] == [
        POSITIONAL,
        POSITIONAL,
        VAR_KEYWORD,
    ]


class Heard:
    """What an insert seam's ``events_inserted`` was told; fails the write when asked to."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], dict[str, Any]]] = []
        self.fail: str | None = None  # "database" or "python"

    def __call__(
        self, cursor: Any, positions: Sequence[int] | None, kwargs: Mapping[str, Any]
    ) -> None:
        self.calls.append((list(positions or ()), dict(kwargs)))
        if self.fail == "python":  # a bug, or a value the driver cannot send
            raise ValueError("failed before reaching the database")
        # As Fleet's taken idempotency key does: the database refuses a statement.
        cursor.execute("INSERT INTO no_such_table VALUES (1)" if self.fail else "SELECT 1")


class SQLiteSpy(seams.SQLiteInsertSeam):
    heard: Heard

    def events_inserted(
        self, cursor: Any, stored: Sequence[StoredEvent], positions: Any, kwargs: Any
    ) -> None:
        self.heard(cursor, positions, kwargs)


class PostgresSpy(seams.PostgresInsertSeam):
    heard: Heard

    def events_inserted(
        self, cursor: Any, stored: Sequence[StoredEvent], positions: Any, kwargs: Any
    ) -> None:
        self.heard(cursor, positions, kwargs)


def check_insert_seam(recorder: Any) -> None:
    recorder.heard = Heard()
    recorder.create_table()

    def event(version: int) -> StoredEvent:
        return StoredEvent(uuid4(), version, "topic", b"state")

    positions = recorder.insert_events([event(1), event(1)], marker="m")
    assert recorder.heard.calls == [(list(positions), {"marker": "m"})]
    # Often enough that psycopg prepares its statements (after five runs), then a clash
    # of versions: what follows a rollback must still find its prepared statements.
    clash = event(1)
    for _ in range(6):
        positions = [*positions, *recorder.insert_events([event(1)], marker="m")]
    positions = [*positions, *recorder.insert_events([clash], marker="m")]
    with pytest.raises(IntegrityError):
        recorder.insert_events([clash], marker="m")
    for _ in range(6):
        positions = [*positions, *recorder.insert_events([event(1)], marker="m")]
    recorder.heard.calls.clear()
    recorder.heard.fail = "database"
    with pytest.raises(PersistenceError):
        recorder.insert_events([event(1)], marker="x")
    # Raised in Python: the library's PostgreSQL insert would commit the events anyway
    # (it re-raises after its transaction block), unless the seam aborts the transaction.
    recorder.heard.fail = "python"
    with pytest.raises(Exception):  # noqa: B017 - the backend's own error type
        recorder.insert_events([event(1)], marker="y")
    assert len(recorder.heard.calls) == 2
    # A failure in the hook fails the whole write: the event went with it.
    assert [n.id for n in recorder.select_notifications(start=None, limit=100)] == list(positions)
    recorder.heard.fail = None  # and the store takes the next write, committed
    later = recorder.insert_events([event(1)], marker="z")
    notifications = recorder.select_notifications(start=None, limit=100)
    assert [n.id for n in notifications] == [*positions, *later]


def test_the_sqlite_seam_runs_in_the_events_transaction(tmp_path: Path) -> None:
    datastore = SQLiteDatastore(str(tmp_path / "seam.sqlite3"))
    try:
        check_insert_seam(SQLiteSpy(datastore))
    finally:
        datastore.close()


@pytest.mark.postgres
def test_the_postgres_seam_runs_in_the_events_transaction(
    postgres_datastore: PostgresDatastore,
) -> None:
    check_insert_seam(PostgresSpy(postgres_datastore, events_table_name="seam_events"))


@pytest.mark.postgres
def test_a_rolled_back_postgres_insert_leaves_its_connection_ready(
    postgres_env: dict[str, str],
) -> None:
    """psycopg, seeing a rollback, forgets the statements it prepared, and drops them from
    the server after the next statement it runs. When that one is a statement it prepares
    again (the library's ``select_events``), it drops that too, and the next run fails
    ("prepared statement ... does not exist"). psycopg's own rollback forgets and drops
    at once; so must the seam's."""
    one_connection = datastore_in(postgres_env["POSTGRES_SCHEMA"], pool_size=1, max_overflow=0)
    try:
        recorder = seams.PostgresInsertSeam(one_connection, events_table_name="seam_events")
        recorder.create_table()
        stream = uuid4()
        for version in range(1, 8):  # often enough for psycopg to prepare them all
            recorder.insert_events([StoredEvent(stream, version, "topic", b"state")])
            recorder.select_events(stream)
        with pytest.raises(IntegrityError):  # a clash of versions: rolled back
            recorder.insert_events([StoredEvent(stream, 3, "topic", b"state")])
        for _ in range(3):
            assert len(recorder.select_events(stream)) == 7
        recorder.insert_events([StoredEvent(stream, 8, "topic", b"state")])
        assert len(recorder.select_events(stream)) == 8
    finally:
        one_connection.close()


# ---- flask-smorest: doc callbacks and the views' doc info ----------------------------------


def test_doc_callbacks_and_doc_info_reach_the_openapi_document() -> None:
    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.2")
    api = flask_smorest.Api(app)
    blp = flask_smorest.Blueprint("things", __name__, url_prefix="/things")
    seen: list[dict[str, Any]] = []

    def callback(doc: dict[str, Any], info: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        seen.append({"info": info, **kwargs})
        doc["x-fleet"] = info.get("fleet")
        return doc

    seams.add_doc_callback(blp, callback)

    def noted(view: Any) -> Any:  # as Fleet's own decorators (links, If-Match) do
        assert "response" in seams.doc_info(view)  # what flask-smorest's decorator noted
        seams.set_doc_info(view, {**seams.doc_info(view), "fleet": "noted"})
        return view

    @blp.route("/")
    class Things(MethodView):
        @noted
        @blp.response(200)
        def get(self) -> dict[str, str]:
            return {}

    assert seams.doc_info(Things.get)["fleet"] == "noted"
    assert seams.doc_info(lambda: None) == {}
    api.register_blueprint(blp)

    [call] = seen
    assert call["info"]["fleet"] == "noted" and "response" in call["info"]
    assert call["app"] is app and call["api"] is api and call["method"] == "get"
    operation = api.spec.to_dict()["paths"]["/things/"]["get"]
    assert operation["x-fleet"] == "noted"
    assert "200" in operation["responses"]  # the library's own callbacks ran first


# ---- marshmallow: declared field order -----------------------------------------------------


def test_declared_fields_decide_the_order_of_dumps_and_fields() -> None:
    class Pair(ma.Schema):
        first = ma.fields.Integer()
        second = ma.fields.Integer()

    declared = seams.declared_fields(Pair)
    assert list(declared) == ["first", "second"]
    seams.set_declared_fields(Pair, {"second": declared["second"], "first": declared["first"]})
    assert list(Pair().fields) == ["second", "first"]
    assert list(Pair().dump({"first": 1, "second": 2})) == ["second", "first"]

    class Child(Pair):
        third = ma.fields.Integer()

    assert list(seams.declared_fields(Child)) == ["second", "first", "third"]


def test_the_spec_building_privates_of_flask_smorest_are_where_the_shared_spec_seam_hooks() -> None:
    """``SharedSpecSeam`` overrides these three steps of ``flask_smorest.Api``; an app that
    takes a shared document only registers (tests/api/test_openapi.py compares the apps)."""
    import flask_smorest
    from flask import Flask

    init_spec = inspect.signature(flask_smorest.Api._init_spec).parameters
    assert {"flask_plugin", "marshmallow_plugin", "options"} <= set(init_spec)  # keywords only
    assert list(inspect.signature(flask_smorest.Api._register_converter).parameters) == [
        "self",
        "converter",
        "func",
    ]
    assert "parameters" in inspect.signature(flask_smorest.Api.register_blueprint).parameters
    app = Flask(__name__)
    app.config.update(API_TITLE="T", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = flask_smorest.Api(app)
    assert api._app is app
    assert "blp_name_to_api" in app.extensions["flask-smorest"]


# ---- werkzeug: the URL builders of routing rules -------------------------------------------


def test_rules_alike_share_builders_that_build_what_werkzeugs_own_build() -> None:
    """``SharedBuilderSeam`` overrides ``Rule._compile_builder(append_unknown)``, which reads
    the rule's ``_trace`` (its parsed parts) and ``defaults``. Two maps of the same rules
    share each builder, and every URL is the one werkzeug's own rules build."""
    from werkzeug.routing import Map, Rule

    assert params(Rule._compile_builder) == [("self", POSITIONAL), ("append_unknown", POSITIONAL)]

    class SharingRule(seams.SharedBuilderSeam, Rule):
        pass

    def rules(rule_class: type[Rule]) -> list[Rule]:
        return [
            rule_class("/specialists", endpoint="list"),
            rule_class("/specialists/<name>", endpoint="one"),
            rule_class("/sorties/<int:n>/notes/<path:rest>", endpoint="deep"),
            rule_class("/page", defaults={"size": 10}, endpoint="page"),
            rule_class("/page/<int:size>", endpoint="page"),
            rule_class("/v/<version>", defaults={"version": "v1"}, endpoint="pinned"),
        ]

    plain = Map(rules(Rule)).bind("fleet.test")
    first, second = Map(rules(SharingRule)), Map(rules(SharingRule))
    assert all(rule._trace for rule in first.iter_rules())  # the parts the key is made of
    for one, other in zip(first.iter_rules(), second.iter_rules(), strict=True):
        assert one is not other
        if one.rule == "/v/<version>":  # a default fills the path: compiled per rule
            assert one._build.__func__ is not other._build.__func__  # type: ignore[attr-defined]
        else:
            assert one._build.__func__ is other._build.__func__  # type: ignore[attr-defined]
            assert one._build_unknown.__func__ is other._build_unknown.__func__  # type: ignore[attr-defined]
    calls = [
        ("list", {}),
        ("list", {"status": "busy", "limit": 5}),
        ("one", {"name": "a b/ü"}),
        ("deep", {"n": 7, "rest": "x/y z"}),
        ("page", {}),
        ("page", {"size": 25}),
        ("pinned", {}),
        ("pinned", {"q": "x"}),
    ]
    for adapter in (first.bind("fleet.test"), second.bind("fleet.test")):
        for endpoint, values in calls:
            assert adapter.build(endpoint, values) == plain.build(endpoint, values)
            assert adapter.build(endpoint, values, force_external=True) == plain.build(
                endpoint, values, force_external=True
            )


def test_snapshot_state_is_the_state_a_snapshot_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every kind of aggregate Fleet stores, and a class version above 1."""
    from application import Fleet
    from tests.integration.test_projections import some_work

    fleet = Fleet(env={"SQLITE_DBNAME": str(tmp_path / "seam.db")})
    try:
        some_work(fleet)
        fleet.send_message("inbox", "task", {"n": 1})
        fleet.acquire_lock("src/a.py", "sp-0")
        fleet.advance_cursor("sp-0", str(uuid4()), 3)
        streams = {event["stream_id"] for event in fleet.events(limit=1000)[0]}
        aggregates = [fleet.app.repository.get(UUID(stream)) for stream in streams]
    finally:
        fleet.close()
    kinds = {type(aggregate).__name__ for aggregate in aggregates}
    assert kinds >= {
        "Specialist",
        "Mission",
        "Sortie",
        "Checkpoint",
        "Mailbox",
        "FileLock",
        "Cursor",
    }
    for aggregate in aggregates:
        assert seams.snapshot_state(aggregate) == Snapshot.take(aggregate).state
    monkeypatch.setattr(Specialist, "class_version", 2, raising=False)  # an upcast class
    newer = Specialist.register("s-2", "S", ["x"], {})
    assert seams.snapshot_state(newer) == Snapshot.take(newer).state
    assert seams.snapshot_state(newer)["class_version"] == 2


# ---- eventsourcing: saving aggregates without runtime protocol checks ---------------------


def test_saving_aggregates_through_the_seam_does_what_the_librarys_save_does(
    tmp_path: Path,
) -> None:
    """The seam runs the steps of the library's ``save`` after its collecting: it fails
    when an upgrade adds, drops or reorders one. Then, on a real application, the events are
    recorded with the save's keyword arguments, snapshots are taken at the interval, and
    the application's hooks hear of the recordings."""

    steps = [
        line.strip()
        for line in inspect.getsource(Application.save).splitlines()
        if line.strip().startswith(("processing_event", "recordings =", "self."))
    ]
    assert steps == [
        "processing_event: ProcessingEvent[TAggregateID] = ProcessingEvent()",
        "processing_event.collect_events(*objs, **kwargs)",
        "recordings = self._record(processing_event)",
        "self._take_snapshots(processing_event)",
        "self._notify(recordings)",
        "self.notify(processing_event.events)  # Deprecated.",
    ]

    class Heard(Application[Any]):
        snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Specialist: 2}
        recorded: ClassVar[list[int]] = []

        def _notify(self, recordings: list[Any]) -> None:
            self.recorded.extend(r.notification.id for r in recordings)

    app = Heard(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")}
    )
    try:
        first = Specialist.register("s-1", "S", ["x"], {})
        second = Specialist.register("s-2", "T", ["y"], {})
        second.heartbeat(status="busy", current_sortie=None, metrics=None, metadata=None)
        recordings = seams.save_aggregates(app, [first, second])
        assert [r.notification.id for r in recordings] == [1, 2, 3] == Heard.recorded
        assert app.repository.get(second.id).version == 2
        snapshots = app.snapshots
        assert snapshots is not None
        assert [s.originator_version for s in snapshots.get(second.id)] == [2]
        assert list(snapshots.get(first.id)) == []
    finally:
        app.close()


# ---- eventsourcing: the aggregate cache's fast-forward lock -------------------------------


def test_the_fastforward_lock_is_the_one_the_librarys_fast_forward_takes(tmp_path: Path) -> None:
    """While the seam holds an aggregate's lock, the library's ``Repository.get`` of it
    waits (it fast-forwards the cached object under that lock); then it goes on."""
    app: Application[Any] = Application(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "ff.sqlite3"),
            "AGGREGATE_CACHE_MAXSIZE": "10",
        }
    )
    try:
        specialist = Specialist.register("s-1", "S", [], {})
        app.save(specialist)
        app.repository.get(specialist.id)  # cached
        got: list[int] = []
        reader = threading.Thread(
            target=lambda: got.append(app.repository.get(specialist.id).version)
        )
        with seams.fastforward_lock(app.repository, specialist.id):
            reader.start()
            reader.join(0.3)
            assert reader.is_alive() and got == []
        reader.join(5)
        assert got == [1]
        assert app.repository._fastforward_locks_inuse == {}  # released for good
    finally:
        app.close()


# ---- psycopg: results still to be read in pipeline mode -----------------------------------


@pytest.mark.postgres
def test_pipeline_mode_its_unread_results_and_a_sync_that_shows_their_failure() -> None:
    """What the pipelined savepoint relies on: psycopg's ``_pipeline`` and its
    ``result_queue`` hold what was sent and not read; ``sync`` reads it, raising the first
    failure, and leaves the pipeline usable (the transaction then waits for a rollback)."""
    with psycopg.connect(**pg_conninfo(), autocommit=True) as connection:
        assert not seams.in_pipeline(connection)
        with connection.pipeline(), connection.transaction():
            cursor = connection.cursor()
            assert seams.in_pipeline(connection)
            assert not seams.unread_pipeline_results(connection)
            cursor.execute("SAVEPOINT probe")
            assert seams.unread_pipeline_results(connection)
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)  # reading the last result reads those before it
            assert not seams.unread_pipeline_results(connection)
            cursor.execute("SELECT * FROM no_such_table")
            # The failure shows where its result is read: at the sync, or at the next
            # statement when its answer arrived while psycopg was sending that one.
            with pytest.raises(psycopg.errors.UndefinedTable):
                cursor.execute("SELECT 2")  # skipped by the server after the failure
                seams.sync_pipeline(connection)
            with contextlib.suppress(psycopg.Error):  # the skipped statement's result, if unread
                seams.sync_pipeline(connection)
            assert not seams.unread_pipeline_results(connection)
            cursor.execute("ROLLBACK TO SAVEPOINT probe")
            cursor.execute("SELECT 3")
            assert cursor.fetchone() == (3,)
        assert not seams.in_pipeline(connection)
