"""Fixtures of the HTTP API tests: one app (one Fleet, one fresh store) per test.

Every app runs once on SQLite and once on PostgreSQL (the root conftest's ``backend``
fixture: a SQLite file, or a schema of its own per test).

Tests whose every request must be refused (bad bodies, queries and headers, unknown ids)
change nothing, so they share one app per module and backend instead (``pristine_client``):
building an app and its store was most of such a test, four times its requests on
PostgreSQL. The store must still be empty after each of them; that is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import make_app
from tests.conftest import postgres_env_for, require_postgres, sqlite_env_for
from web import get_fleet


@pytest.fixture
def app_factory(backend: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Build apps on this test's store (with extra config); closes them afterwards."""
    apps: list[Flask] = []

    def factory(env: dict[str, str] | None = None, **config: Any) -> Flask:
        app = make_app({**backend, **(env or {})}, **config)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        get_fleet(app).close()


@pytest.fixture
def app(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def pristine_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """An app on an empty, migrated store, shared by the module's tests on one backend."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("pristine") / "fleet.sqlite3"
        request.getfixturevalue("sqlite_template").copy_to(path)
        app = make_app(sqlite_env_for(path))
        yield app
        get_fleet(app).close()
        return
    require_postgres()
    schemas = request.getfixturevalue("postgres_schemas")
    lent = schemas.lend()
    try:
        app = make_app(postgres_env_for(lent))
        yield app
        get_fleet(app).close()
    finally:
        schemas.give_back(lent)


@pytest.fixture
def pristine_client(pristine_app: Flask) -> Iterator[FlaskClient]:
    """A client of the module's shared app, for a test whose requests are all refused.

    After the test the store must still hold no event: a test that wrote would leave its
    writes to the next one, so it fails here and must take ``client`` instead.
    """
    yield pristine_app.test_client()
    written = get_fleet(pristine_app).head_position()
    assert written == 0, f"a test on the shared app wrote {written} event(s): use `client`"
