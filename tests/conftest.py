"""Shared fixtures: one isolated event store per test, on SQLite and on PostgreSQL.

``backend`` gives the env dict of a fresh store. SQLite uses a file in the
test's ``tmp_path``; PostgreSQL uses a schema of its own in the ``test``
database on 127.0.0.1:5432, created before the test and dropped after it.

When the PostgreSQL server does not answer, its tests are skipped, unless
``FLEET_TEST_POSTGRES=1`` (CI sets it): then they fail, so a broken server
can never turn the PostgreSQL half of the suite silently green.

``make test`` runs the suite on every core with pytest-xdist (``--dist loadgroup``);
``pytest_collection_modifyitems`` below says which tests must share a worker.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from application.fleet import Fleet
from application.store.portable import PortableCursor
from tests.stores import PostgresSchemas, SQLiteTemplate, wants_migrated_store

PG_HOST = os.environ.get("FLEET_TEST_POSTGRES_HOST", "127.0.0.1")
PG_PORT = os.environ.get("FLEET_TEST_POSTGRES_PORT", "5432")
PG_USER = os.environ.get("FLEET_TEST_POSTGRES_USER", "postgres")
PG_PASSWORD = os.environ.get("FLEET_TEST_POSTGRES_PASSWORD", "")  # trust auth: empty is accepted
PG_DBNAME = os.environ.get("FLEET_TEST_POSTGRES_DBNAME", "test")


# Tests that start multi-worker servers (each with its PostgreSQL pools and load threads)
# run one at a time on one xdist worker: two at once would double the connections held
# against the server's max_connections and squeeze each other's timed load phases.
SERVER_TESTS = ("tests/reliability/", "tests/e2e/")
# A module whose module-scoped fixture is expensive (build + install a wheel): one worker.
ONE_WORKER_MODULES = ("tests/test_packaging.py",)


def shared_worker(nodeid: str) -> str | None:
    """The group of tests that must run on one worker, if ``nodeid`` belongs to one."""
    if nodeid.startswith(SERVER_TESTS):
        return "servers"
    module = nodeid.split("::", 1)[0]
    return module if module in ONE_WORKER_MODULES else None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``, with the groups above.

    xdist's own ``xdist_group`` marker does nothing under pytest 9 (xdist renames a test by
    setting ``item._nodeid``, which pytest 9 no longer reads), so the groups are given to
    the scheduler here, by test id.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedWorkerScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return shared_worker(nodeid) or nodeid

    return SharedWorkerScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, hand out the longest work first.

    xdist deals tests out in collection order; the shared-worker groups and the ``slow``
    tests go first so that the short ones fill the gaps at the end instead of one long test
    finishing alone. A plain ``pytest`` run keeps the file order.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return

    def rank(item: pytest.Item) -> int:
        if shared_worker(item.nodeid):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)  # stable: file order within each rank


def postgres_required() -> bool:
    return os.environ.get("FLEET_TEST_POSTGRES") == "1"


def pg_conninfo() -> dict[str, Any]:
    return {
        "host": PG_HOST,
        "port": int(PG_PORT),
        "user": PG_USER,
        "password": PG_PASSWORD,
        "dbname": PG_DBNAME,
    }


@cache
def postgres_unavailable() -> str | None:
    """Why the server cannot be used, or None when it answers (asked once per session)."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a hard dependency
        return f"psycopg is not installed: {exc}"
    try:
        with psycopg.connect(**pg_conninfo(), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL on {PG_HOST}:{PG_PORT} (db {PG_DBNAME!r}) does not answer: {exc}"
    return None


def require_postgres() -> None:
    """Skip (or fail, when FLEET_TEST_POSTGRES=1) if the server does not answer."""
    reason = postgres_unavailable()
    if reason is None:
        return
    if postgres_required():
        pytest.fail(f"FLEET_TEST_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(f"{reason} (set FLEET_TEST_POSTGRES=1 to make this a failure)")


def sqlite_env_for(path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}


def postgres_env_for(schema: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": PG_DBNAME,
        "POSTGRES_HOST": PG_HOST,
        "POSTGRES_PORT": PG_PORT,
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": PG_PASSWORD,
        "POSTGRES_SCHEMA": schema,
    }


def lent_env(schema: str) -> dict[str, str]:
    """Env of a lent, migrated schema: its Fleets start as servers on a created store may
    (``CREATE_TABLE=no``), without the library's start-up DDL. Each run of it re-creates a
    function and bumps catalog rows, which every new server backend then reloads: a quarter
    of a PostgreSQL Fleet start, for no test's benefit (fresh stores still run it)."""
    return {**postgres_env_for(schema), "CREATE_TABLE": "no"}


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SQLiteTemplate:
    """A migrated SQLite store, made once per process (see tests/stores.py)."""
    return SQLiteTemplate(tmp_path_factory.mktemp("sqlite-template"), sqlite_env_for)


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[PostgresSchemas]:
    """Migrated PostgreSQL schemas lent to tests, made once per process (tests/stores.py)."""
    require_postgres()
    schemas = PostgresSchemas(pg_conninfo(), postgres_env_for)
    try:
        yield schemas
    finally:
        schemas.close()


@pytest.fixture
def sqlite_env(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """Env of a fresh SQLite store, for SQLite-only tests.

    Empty, unless the test also asks for ``fleet`` or ``app_factory``: then it is a copy of
    a migrated store, what their Fleet would have made of the empty one at setup.
    """
    path = tmp_path / "fleet.sqlite3"
    if wants_migrated_store(request.fixturenames):
        request.getfixturevalue("sqlite_template").copy_to(path)
    return sqlite_env_for(path)


@pytest.fixture
def postgres_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Env of a fresh PostgreSQL schema, dropped (with everything in it) after the test.

    Empty, unless the test also asks for ``fleet`` or ``app_factory``: then it is a
    migrated schema lent for the test and reset (or dropped) after it; see tests/stores.py.
    """
    require_postgres()
    if wants_migrated_store(request.fixturenames):
        schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
        with schemas.lending() as lent:
            yield lent_env(lent)
        return
    import psycopg
    from psycopg.sql import SQL, Identifier

    schema = f"fleet_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**pg_conninfo(), autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
    try:
        yield postgres_env_for(schema)
    finally:
        with psycopg.connect(**pg_conninfo(), autocommit=True) as conn:
            for name in (schema, f"{schema}_archive"):  # the archive's schema too
                conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(name)))


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """Env dict of a fresh, isolated store on each backend."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_env")
    return request.getfixturevalue("postgres_env")


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def store_for_module(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A migrated store on ``request.param``'s backend, for a module-scoped fixture."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("module-store") / "fleet.sqlite3"
        request.getfixturevalue("sqlite_template").copy_to(path)
        yield sqlite_env_for(path)
        return
    require_postgres()
    schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
    with schemas.lending() as lent:
        yield lent_env(lent)


@pytest.fixture(scope="module", params=BACKENDS)
def module_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Env of an empty migrated store on each backend, shared by the tests of one module.

    For tests that change nothing (``pristine_client`` in tests/api, ``shown_client`` in
    tests/ui): their fixtures check, after each test, that the log did not grow.
    """
    with store_for_module(request, tmp_path_factory) as env:
        yield env


@pytest.fixture(scope="module", params=BACKENDS)
def seeded_module_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A second such store, for a module's fixture that writes what its refusals need
    (``module_backend`` stays empty for the module's ``pristine_client`` tests)."""
    with store_for_module(request, tmp_path_factory) as env:
        yield env


@pytest.fixture
def fleet(backend: dict[str, str]) -> Iterator[Fleet]:
    f = Fleet(env=backend)
    try:
        yield f
    finally:
        f.close()


class RawStore:
    """Direct SQL on a backend's store, bypassing Fleet (to prove what the database enforces)."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.backend = (
            "postgres" if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres" else "sqlite"
        )
        if self.backend == "postgres":
            import psycopg
            from psycopg.sql import SQL, Identifier

            self.conn: Any = psycopg.connect(**pg_conninfo(), autocommit=True)
            self.conn.execute(
                SQL("SET search_path TO {}").format(Identifier(env["POSTGRES_SCHEMA"]))
            )
            self.events_table = "fleet_events"
            self.position_column = "notification_id"
            self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
        else:
            self.conn = sqlite3.connect(env["SQLITE_DBNAME"], isolation_level=None, timeout=15)
            self.events_table = "stored_events"
            self.position_column = "rowid"
            self.errors = (sqlite3.Error,)

    def _cursor(self) -> PortableCursor:
        """A fresh cursor of the connection that takes ``?`` on both backends."""
        return PortableCursor(self.conn.cursor(), postgres=self.backend == "postgres")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor().execute(sql, params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._cursor().fetchall(sql, params)]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.rows(sql, params)[0][0]

    def event_rows(self) -> list[tuple[Any, ...]]:
        return self.rows(
            f"SELECT {self.position_column}, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {self.events_table} ORDER BY {self.position_column}"
        )

    def positions(self) -> list[int]:
        return [
            int(r[0])
            for r in self.rows(
                f"SELECT {self.position_column} FROM {self.events_table} "  # noqa: S608
                f"ORDER BY {self.position_column}"
            )
        ]

    def index_rows(self) -> list[tuple[Any, ...]]:
        return self.rows(
            "SELECT position, event_type, stream_id, stream_type, correlation_id "
            "FROM fleet_event_index ORDER BY position"
        )

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def raw_store(backend: dict[str, str]) -> Iterator[RawStore]:
    store = RawStore(backend)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module", params=["in_process", "http"])
def fleet_door(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The same services through each door: ``Fleet`` in this process, or ``FleetClient``
    talking to a live gunicorn. One fresh SQLite store per module and door, so scenarios
    name their own ids rather than count on an empty store."""
    from application.client import FleetClient
    from tests.servers import clean_environ, gunicorn

    folder = tmp_path_factory.mktemp(f"door-{request.param}")
    env = sqlite_env_for(folder / "fleet.sqlite3")
    if request.param == "in_process":
        fleet = Fleet(env=env)
        try:
            yield fleet
        finally:
            fleet.close()
        return
    with gunicorn(clean_environ(**env), folder / "gunicorn.log") as (base, _):
        client = FleetClient(base, timeout=30)
        try:
            yield client
        finally:
            client.close()


@pytest.fixture(scope="module")
def fleet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a live gunicorn on a fresh SQLite store, shared by a module."""
    from tests.servers import clean_environ, gunicorn

    folder = tmp_path_factory.mktemp("server")
    env = sqlite_env_for(folder / "fleet.sqlite3")
    with gunicorn(clean_environ(**env), folder / "gunicorn.log") as (base, _):
        yield base
