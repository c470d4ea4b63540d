"""Fixtures of the console tests: an app per test on a fresh store, and its scenario."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import make_app
from tests.ui.scenario import Call, Scenario, build
from web import get_fleet

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app_factory(backend: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        app = make_app(dict(backend), **config)
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


def api_caller(client: FlaskClient, token: str | None = None) -> Call:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        response = client.open(path, method=method, json=body, headers=headers)
        return response.status_code, response.get_json(silent=True)

    return call


@pytest.fixture
def scenario(client: FlaskClient) -> Scenario:
    return build(api_caller(client))


def csrf_of(client: FlaskClient, page: str = "/ui/") -> str:
    """The CSRF token the console's forms carry for this client's session."""
    html = client.get(page).get_data(as_text=True)
    match = CSRF.search(html)
    assert match, html[:500]
    return match.group(1)
