"""Bearer-token auth: off by default; on for writes with FLEET_API_TOKEN; reads too on request.

Every route, with every kind of missing or wrong token, is checked in
``tests/reliability/test_auth_routes.py``; here are the settings and a few single cases.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from tests.api.support import API, body, problem

TOKEN = "s3cret-token"  # noqa: S105 - a test token
GOOD = {"Authorization": f"Bearer {TOKEN}"}


def test_without_a_token_configured_nothing_is_asked(app_factory: Callable[..., Flask]) -> None:
    client = app_factory().test_client()
    body(client.post(f"{API}/missions", json={"title": "t"}), 201)


def test_the_right_token_writes_and_reads_stay_open(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(FLEET_API_TOKEN=TOKEN).test_client()
    created = body(client.post(f"{API}/missions", json={"title": "t"}, headers=GOOD), 201)
    body(client.get(f"{API}/missions/{created['mission']['id']}"), 200)
    problem(client.delete(f"{API}/specialists/x"), 401)
    problem(client.patch(f"{API}/missions/x", json={"title": "t"}), 401)
    problem(client.patch(f"{API}/missions/x", json={"title": "t"}, headers=GOOD), 404)


def test_the_token_is_checked_before_the_body(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(FLEET_API_TOKEN=TOKEN, FLEET_MAX_BODY_BYTES=10).test_client()
    problem(client.post(f"{API}/missions", data=b"{broken" * 10), 401)
    problem(client.post(f"{API}/missions", data=b"{broken" * 10, headers=GOOD), 413)
    problem(client.post(f"{API}/missions", data=b"{broken", headers=GOOD), 400)


def test_settings_come_from_fleet_environment_variables(
    app_factory: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_API_TOKEN", "1e3")  # JSON-like, yet compared verbatim
    monkeypatch.setenv("FLEET_AUTH_READS", "true")
    client = app_factory().test_client()
    problem(client.get(f"{API}/missions"), 401)
    problem(client.get(f"{API}/missions", headers={"Authorization": "Bearer 1000.0"}), 401)
    body(client.get(f"{API}/missions", headers={"Authorization": "Bearer 1e3"}), 200)


def test_explicit_config_wins_over_the_environment(
    app_factory: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_API_TOKEN", "from-env")
    client = app_factory(FLEET_API_TOKEN=None).test_client()
    body(client.post(f"{API}/missions", json={"title": "t"}), 201)
