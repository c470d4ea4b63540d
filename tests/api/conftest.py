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
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import make_app, shared_app, untouched_client
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


@pytest.fixture(scope="module")
def pristine_app(module_backend: dict[str, str]) -> Iterator[Flask]:
    """An app on an empty, migrated store, shared by the module's tests on one backend."""
    with shared_app(module_backend) as app:
        yield app


@pytest.fixture
def pristine_client(pristine_app: Flask) -> Iterator[FlaskClient]:
    """A client of the module's shared app, for a test whose requests are all refused.

    After the test the store must still hold no event: a test that wrote would leave its
    writes to the next one, so it fails here and must take ``client`` instead.
    """
    yield from untouched_client(pristine_app)
