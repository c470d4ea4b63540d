"""Helpers of the HTTP API tests: building apps, and short calls that assert their status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from application.fleet import Fleet
from web import create_app, get_fleet

API = "/api/v1"
# Short enough that a min_position that is never reached answers 503 quickly.
WAIT = "0.3"
PROBLEM_JSON = "application/problem+json"


def make_app(env: dict[str, str], **config: Any) -> Flask:
    """An app on ``env``; no background sweeps unless ``FLEET_SWEEP_INTERVAL`` is given."""
    return create_app(
        {
            "TESTING": True,
            "FLEET_ENV": {"FLEET_MIN_POSITION_TIMEOUT": WAIT, **env},
            "FLEET_SWEEP_INTERVAL": 0,
            **config,
        }
    )


def body(response: TestResponse, status: int) -> Any:
    """The JSON body, after checking the status (the body is shown when it differs)."""
    data = response.get_json(force=True, silent=True)
    assert response.status_code == status, (response.status_code, data)
    return data


def problem(response: TestResponse, status: int, *fields: str) -> dict[str, Any]:
    """Check an RFC 9457 answer; ``fields`` must be named in its flat ``errors``."""
    data = body(response, status)
    assert response.mimetype == PROBLEM_JSON
    assert {"type", "title", "status", "detail"} <= set(data)
    assert data["status"] == status
    assert data["type"].startswith("urn:fleet:problem:")
    if fields:
        errors = data["errors"]
        # flat: each field maps to a non-empty list of messages, never to a nested object
        assert all(
            isinstance(v, list) and v and all(isinstance(m, str) for m in v)
            for v in errors.values()
        ), errors
        assert set(fields) <= set(errors), errors
    return data


def etag(response: TestResponse) -> int:
    """The version a strong ``ETag: "<n>"`` names."""
    value = response.headers["ETag"]
    assert value.startswith('"') and value.endswith('"') and not value.startswith("W/"), value
    return int(value.strip('"'))


def position(response: TestResponse) -> int:
    return int(response.headers["X-Fleet-Position"])


def register(client: FlaskClient, specialist_id: str = "s1", **fields: Any) -> dict[str, Any]:
    response = client.post(
        f"{API}/specialists/register",
        json={"specialist_id": specialist_id, "name": specialist_id.upper(), **fields},
    )
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()["specialist"]  # type: ignore[no-any-return]


def mission(client: FlaskClient, title: str = "Mission", **fields: Any) -> dict[str, Any]:
    data = body(client.post(f"{API}/missions", json={"title": title, **fields}), 201)
    return data["mission"]  # type: ignore[no-any-return]


def sortie(client: FlaskClient, description: str = "Do it", **fields: Any) -> dict[str, Any]:
    data = body(client.post(f"{API}/sorties", json={"description": description, **fields}), 201)
    return data["sortie"]  # type: ignore[no-any-return]


def patch_sortie(
    client: FlaskClient, sortie_id: str, expect: int = 200, **fields: Any
) -> dict[str, Any]:
    """PATCH a sortie; the sortie when ``expect`` is 200, else the problem."""
    data = body(client.patch(f"{API}/sorties/{sortie_id}", json=fields), expect)
    return data["sortie"] if expect == 200 else data  # type: ignore[no-any-return]


def run_to(client: FlaskClient, sortie_id: str, target: str, specialist: str = "s1") -> None:
    """Walk a pending sortie to ``in_progress`` or ``completed``."""
    patch_sortie(client, sortie_id, status="assigned", assigned_to=specialist)
    patch_sortie(client, sortie_id, status="in_progress")
    if target == "completed":
        patch_sortie(client, sortie_id, status="completed")


def events(client: FlaskClient, **query: Any) -> list[dict[str, Any]]:
    data = body(client.get(f"{API}/events", query_string={"limit": 1000, **query}), 200)
    return data["events"]  # type: ignore[no-any-return]


def assert_unwritten(fleet: Fleet, head: int) -> None:
    """After a test on a store its module shares: nothing was written to it."""
    now = fleet.head_position()
    assert now == head, (
        f"a test on its module's shared store wrote {now - head} event(s): "
        "give it a store of its own"
    )


def untouched_client(app: Flask) -> Iterator[FlaskClient]:
    """For a fixture over an app its module shares: a client, then the check that the test
    wrote nothing through it (or otherwise)."""
    fleet = get_fleet(app)
    head = fleet.head_position()
    yield app.test_client()
    assert_unwritten(fleet, head)


@contextmanager
def shared_app(env: dict[str, str]) -> Iterator[Flask]:
    """An app for a module-scoped fixture (closed after the module)."""
    app = make_app(env)
    try:
        yield app
    finally:
        get_fleet(app).close()
