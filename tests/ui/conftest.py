"""Fixtures of the console tests: an app per test on a fresh store, and its scenario.

The tests that only look (pages, counts) share one app and scenario per module and
backend instead (``shown_client``, ``shown_scenario``): the scenario is some forty writes,
most of such a test. The log must not grow during one of them; that is checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import make_app, shared_app, untouched_client
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


@pytest.fixture(scope="module")
def shown_app(module_backend: dict[str, str]) -> Iterator[tuple[Flask, Scenario]]:
    """An app with the scenario in its store, shared by the module's read-only tests."""
    with shared_app(dict(module_backend)) as app:
        yield app, build(api_caller(app.test_client()))


@pytest.fixture
def shown_scenario(shown_app: tuple[Flask, Scenario]) -> Scenario:
    return shown_app[1]


@pytest.fixture
def shown_client(shown_app: tuple[Flask, Scenario]) -> Iterator[FlaskClient]:
    """A client of the shared scenario app, for a test that only reads (checked after it)."""
    yield from untouched_client(shown_app[0])
