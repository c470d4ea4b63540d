"""Fixtures of the HTTP API tests: one app (one Fleet, one fresh store) per test.

Every app runs once on SQLite and once on PostgreSQL (the root conftest's ``backend``
fixture: a SQLite file, or a schema of its own per test).
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
