"""Bearer-token auth over every route of the app, found in its ``url_map``.

With ``FLEET_API_TOKEN`` set, no write (POST, PUT, PATCH, DELETE) may succeed without
the token or with a wrong one; with ``FLEET_AUTH_READS=1`` no read may either, except
the documented open ones (``/health`` and the OpenAPI document). The routes are never
listed by hand: one added later without auth fails these tests (the last test shows
that it does). Settings and header parsing are in ``tests/api/test_auth.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient

from tests.api.support import make_app
from tests.reliability.hostile_support import (
    OPEN_READS,
    Route,
    path_for,
    problem_failure,
    read_routes,
    seed,
    state_diff,
    store_state,
    write_routes,
)
from web import get_fleet

TOKEN = "s3cret-token"  # noqa: S105 - a test token
GOOD = {"Authorization": f"Bearer {TOKEN}"}
BAD_HEADERS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer \u00ff\u00fe"},  # latin-1 bytes, as a server passes them on
    {"X-Api-Token": TOKEN},
]


@pytest.fixture
def secured(sqlite_env: dict[str, str]) -> Iterator[tuple[Flask, dict[str, Any]]]:
    """An app with a token and reads protected too, seeded (with the token)."""
    app = make_app(sqlite_env, FLEET_API_TOKEN=TOKEN, FLEET_AUTH_READS=1)
    app.config["TESTING"] = False
    ids = seed(app.test_client(), GOOD)
    try:
        yield app, ids
    finally:
        get_fleet(app).close()


def unauthenticated(
    app: Flask, client: FlaskClient, found: list[Route], ids: dict[str, Any]
) -> list[str]:
    """What each route answers without a valid token, where that is not a 401 problem."""
    failures = []
    for route in found:
        url = path_for(app, route, ids)
        for headers in BAD_HEADERS:
            response = client.open(url, method=route.method, json={}, headers=headers)
            got = (response.status_code, response.content_type or "", response.get_json(True, True))
            why = problem_failure(*got)
            if got[0] != 401:
                why = f"answered {got[0]} without a valid token"
            elif not response.headers.get("WWW-Authenticate", "").lower().startswith("bearer"):
                why = "401 without WWW-Authenticate: Bearer"
            if why:
                failures.append(f"{route.label} with {headers}: {why}")
    return failures


def test_no_write_succeeds_without_the_token(secured: tuple[Flask, dict[str, Any]]) -> None:
    app, ids = secured
    client = app.test_client()
    found = write_routes(app)
    labels = {route.label for route in found}
    # Discovery found the API, not nothing: a few known writes of each kind are in it.
    assert len(found) >= 20, labels
    assert {
        "POST /api/v1/missions",
        "PATCH /api/v1/sorties/<sortie_id>",
        "DELETE /api/v1/specialists/<specialist_id>",
    } <= labels
    before = store_state(app.config["FLEET_ENV"])
    assert unauthenticated(app, client, found, ids) == []
    assert not state_diff(before, store_state(app.config["FLEET_ENV"]))
    # The 401 was the token's doing: with it, no route answers 401.
    for route in found:
        response = client.open(
            path_for(app, route, ids), method=route.method, json={}, headers=GOOD
        )
        assert response.status_code != 401, route.label


def test_with_auth_reads_no_read_succeeds_without_the_token(
    secured: tuple[Flask, dict[str, Any]],
) -> None:
    app, ids = secured
    client = app.test_client()
    found = [route for route in read_routes(app) if route.rule.rule not in OPEN_READS]
    assert len(found) >= 15, [route.label for route in found]
    before = store_state(app.config["FLEET_ENV"])
    assert unauthenticated(app, client, found, ids) == []
    heads = [
        route.label for route in found if client.head(path_for(app, route, ids)).status_code != 401
    ]
    assert heads == [], "HEAD answers without the token"
    for route in found:
        assert client.get(path_for(app, route, ids), headers=GOOD).status_code != 401, route.label
    assert not state_diff(before, store_state(app.config["FLEET_ENV"]))


def test_the_documented_open_reads_stay_open(secured: tuple[Flask, dict[str, Any]]) -> None:
    app, _ = secured
    client = app.test_client()
    rules = {route.rule.rule for route in read_routes(app)}
    assert rules >= OPEN_READS
    for path in OPEN_READS:
        assert client.get(path).status_code == 200, path


def test_without_auth_reads_every_read_is_open(sqlite_env: dict[str, str]) -> None:
    app = make_app(sqlite_env, FLEET_API_TOKEN=TOKEN)
    try:
        client = app.test_client()
        ids = seed(client, GOOD)
        for route in read_routes(app):
            response = client.get(path_for(app, route, ids))
            assert response.status_code == 200, (route.label, response.get_json())
    finally:
        get_fleet(app).close()


def test_a_route_added_without_auth_is_caught(sqlite_env: dict[str, str]) -> None:
    """The check above is not vacuous: a plain Flask route, outside the API's guarded
    blueprints, is reported, for writes and (with FLEET_AUTH_READS) for reads."""
    app = make_app(sqlite_env, FLEET_API_TOKEN=TOKEN, FLEET_AUTH_READS=1)
    try:
        careless = Blueprint("careless", __name__)

        @careless.route("/api/v1/careless/<thing_id>", methods=["GET", "POST", "DELETE"])
        def handler(thing_id: str) -> dict[str, str]:
            return {"thing": thing_id}

        app.register_blueprint(careless)
        client = app.test_client()
        added = [r for r in write_routes(app) + read_routes(app) if "careless" in r.rule.rule]
        assert {route.method for route in added} == {"GET", "POST", "DELETE"}
        failures = unauthenticated(app, client, added, {})
        assert len(failures) == len(added) * len(BAD_HEADERS)
        assert all("answered 200 without a valid token" in failure for failure in failures)
    finally:
        get_fleet(app).close()
