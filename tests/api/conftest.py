"""Fixtures of the HTTP API tests: one app (one Fleet, one fresh store) per test.

``app`` runs on SQLite; ``backend_app`` runs on SQLite and on PostgreSQL (see the root
conftest for how a PostgreSQL schema is made per test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import make_app
from web import get_fleet


@pytest.fixture
def app_factory(sqlite_env: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Build apps on this test's store (with extra config); closes them afterwards."""
    apps: list[Flask] = []

    def factory(env: dict[str, str] | None = None, **config: Any) -> Flask:
        app = make_app({**sqlite_env, **(env or {})}, **config)
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


@pytest.fixture
def backend_client(backend: dict[str, str]) -> Iterator[FlaskClient]:
    """A client of an app on each backend (SQLite, PostgreSQL)."""
    app = make_app(backend)
    try:
        yield app.test_client()
    finally:
        get_fleet(app).close()
