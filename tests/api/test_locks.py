"""File locks over HTTP: acquire, release, read, list; every documented status."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import API, body, etag, events, position, problem
from web import get_fleet

TOKEN = "lock-test-token"  # noqa: S105 - a test token


def acquire(client: FlaskClient, file: str = "src/app.py", who: str = "ace", **fields: Any) -> dict:
    response = client.post(
        f"{API}/locks/acquire", json={"file": file, "specialist_id": who, **fields}
    )
    return body(response, 201)["lock"]  # type: ignore[no-any-return]


def release(client: FlaskClient, lock_id: str, expect: int = 200, **fields: Any) -> dict:
    response = client.post(f"{API}/locks/{lock_id}/release", json=fields)
    data = body(response, expect)
    return data["lock"] if expect == 200 else data  # type: ignore[no-any-return]


def listed(client: FlaskClient, **query: Any) -> list[str]:
    data = body(client.get(f"{API}/locks", query_string=query), 200)
    return [lock["id"] for lock in data["locks"]]


def test_a_lock_is_acquired_contested_and_released(client: FlaskClient) -> None:
    response = client.post(
        f"{API}/locks/acquire",
        json={"file": "src//x/../app.py/", "specialist_id": "ace", "timeout_ms": 60_000},
    )
    lock = body(response, 201)["lock"]
    assert (lock["normalized_path"], lock["status"], lock["reserved_by"]) == (
        "src/app.py",
        "active",
        "ace",
    )
    assert etag(response) == 1 and position(response) == events(client)[-1]["id"]

    contested = client.post(
        f"{API}/locks/acquire",
        json={"file": "./src/app.py", "specialist_id": "bee"},
        headers={"X-Correlation-ID": "race-1"},
    )
    data = problem(contested, 409)
    assert data["lock"] == {
        "id": lock["id"],
        "reserved_by": "ace",
        "expires_at": lock["expires_at"],
    }
    [recorded] = events(client, type="lock_conflict")
    assert recorded["correlation_id"] == "race-1"
    assert recorded["data"]["requesting_specialist"] == "bee"

    read = client.get(f"{API}/locks/{lock['id']}")
    assert body(read, 200)["lock"]["version"] == 2 and etag(read) == 2
    assert listed(client) == [lock["id"]]

    problem(client.post(f"{API}/locks/{lock['id']}/release", json={"specialist_id": "bee"}), 403)
    done = client.post(
        f"{API}/locks/{lock['id']}/release",
        json={"specialist_id": "ace"},
        headers={"If-Match": '"2"'},
    )
    assert body(done, 200)["lock"]["status"] == "released" and etag(done) == 3
    assert listed(client) == [] and listed(client, status="released") == [lock["id"]]
    assert acquire(client, "src/app.py", "bee")["stream_id"] == lock["stream_id"]


def test_release_by_force_and_its_refusals(client: FlaskClient) -> None:
    lock = acquire(client)
    assert "only the holder" in release(client, lock["id"], 403, specialist_id="bee")["detail"]
    stale = client.post(
        f"{API}/locks/{lock['id']}/release",
        json={"specialist_id": "bee", "force": True},
        headers={"If-Match": '"7"'},
    )
    assert problem(stale, 412)["current_version"] == 1
    bad_tag = client.post(
        f"{API}/locks/{lock['id']}/release",
        json={"specialist_id": "ace"},
        headers={"If-Match": "1"},
    )
    problem(bad_tag, 400)
    forced = release(client, lock["id"], specialist_id="bee", force=True)
    assert (forced["status"], forced["released_by"]) == ("force_released", "bee")
    assert "cannot go from" in release(client, lock["id"], 409, specialist_id="ace")["detail"]
    problem(client.post(f"{API}/locks/nope/release", json={"specialist_id": "ace"}), 404)
    reasons = [e["data"]["reason"] for e in events(client, type="lock_released")]
    assert reasons == ["forced"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "file"),
        ({"file": "a"}, "specialist_id"),
        ({"file": "", "specialist_id": "ace"}, "file"),
        ({"file": "../etc/passwd", "specialist_id": "ace"}, "file"),
        ({"file": "a/..", "specialist_id": "ace"}, "file"),
        ({"file": "a\x00", "specialist_id": "ace"}, "file"),
        ({"file": "a", "specialist_id": "ace", "timeout_ms": 0}, "timeout_ms"),
        ({"file": "a", "specialist_id": "ace", "timeout_ms": "5"}, "timeout_ms"),
        ({"file": "a", "specialist_id": "ace", "timeout_ms": 1.5}, "timeout_ms"),
        ({"file": "a", "specialist_id": "ace", "purpose": "write"}, "purpose"),
        ({"file": "a", "specialist_id": "ace", "checksum": ""}, "checksum"),
        ({"file": "a", "specialist_id": "ace", "colour": "red"}, "colour"),
    ],
)
def test_invalid_acquisitions_are_422(
    pristine_client: FlaskClient, payload: dict[str, Any], field: str
) -> None:
    problem(pristine_client.post(f"{API}/locks/acquire", json=payload), 422, field)
    assert events(pristine_client) == []


def test_bodies_that_are_not_objects_are_400(client: FlaskClient) -> None:
    problem(client.post(f"{API}/locks/acquire", data="[1]"), 400)
    lock = acquire(client)
    problem(client.post(f"{API}/locks/{lock['id']}/release", data="{nope"), 400)


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "specialist_id"), ({"specialist_id": "ace", "force": "yes"}, "force")],
)
def test_invalid_releases_are_422(client: FlaskClient, payload: dict, field: str) -> None:
    lock = acquire(client)
    problem(client.post(f"{API}/locks/{lock['id']}/release", json=payload), 422, field)


def test_list_filters_and_pages(client: FlaskClient) -> None:
    a = acquire(client, "1.txt", "ace")
    b = acquire(client, "2.txt", "bee")
    c = acquire(client, "3.txt", "ace")
    release(client, b["id"], specialist_id="bee")
    assert sorted(listed(client)) == sorted([a["id"], c["id"]])
    assert sorted(listed(client, specialist_id="ace")) == sorted([a["id"], c["id"]])
    assert listed(client, status="released") == [b["id"]]
    assert len(listed(client, status="all")) == 3
    page = body(client.get(f"{API}/locks", query_string={"status": "all", "limit": 2}), 200)
    assert (len(page["locks"]), page["total"], page["limit"], page["offset"]) == (2, 3, 2, 0)
    problem(client.get(f"{API}/locks", query_string={"status": "held"}), 422, "status")
    problem(client.get(f"{API}/locks", query_string={"limit": 0}), 422, "limit")
    problem(client.get(f"{API}/locks", query_string={"min_position": 10_000}), 422, "min_position")
    assert body(client.get("/health"), 200)["locks"] == {"active": 2}


def test_get_one_lock(client: FlaskClient) -> None:
    lock = acquire(client)
    response = client.get(f"{API}/locks/{lock['id']}")
    assert body(response, 200)["lock"] == lock and etag(response) == 1
    problem(client.get(f"{API}/locks/00000000-0000-0000-0000-000000000000"), 404)


def test_writes_need_the_token_when_auth_is_on(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(FLEET_API_TOKEN=TOKEN).test_client()
    problem(client.post(f"{API}/locks/acquire", json={"file": "a", "specialist_id": "x"}), 401)
    authorised = client.post(
        f"{API}/locks/acquire",
        json={"file": "a", "specialist_id": "x"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    body(authorised, 201)
    body(client.get(f"{API}/locks"), 200)


def test_the_409_is_documented_with_the_holder(client: FlaskClient) -> None:
    spec = body(client.get(f"{API}/openapi.json"), 200)
    answers = spec["paths"]["/api/v1/locks/acquire"]["post"]["responses"]
    assert set(answers) >= {"201", "409", "422"}
    schema = answers["409"]["content"]["application/problem+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/LockConflict"}
    assert "lock" in spec["components"]["schemas"]["LockConflict"]["required"]
    release_answers = spec["paths"]["/api/v1/locks/{lock_id}/release"]["post"]["responses"]
    assert set(release_answers) >= {"200", "403", "404", "409", "412", "422"}


def test_the_app_sweeps_in_the_background(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(FLEET_SWEEP_INTERVAL=0.01)
    client = app.test_client()
    lock = acquire(client, timeout_ms=1000)
    fleet = get_fleet(app)
    fleet.clock = lambda: datetime.fromisoformat(lock["expires_at"])
    deadline = time.monotonic() + 10
    while not events(client, type="lock_timeout") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert body(client.get(f"{API}/locks/{lock['id']}"), 200)["lock"]["status"] == "expired"
    fleet.close()  # stops the sweeper
    assert fleet.sweeps._sweeper is None


def test_sweeps_are_on_by_default_and_can_be_turned_off(
    app_factory: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[float] = []
    monkeypatch.setattr(
        "application.fleet.Fleet.start_sweeper", lambda _, every: started.append(every)
    )
    from web import settings

    assert settings.DEFAULTS["FLEET_SWEEP_INTERVAL"] == 5
    app_factory(FLEET_SWEEP_INTERVAL=5)
    app_factory(FLEET_SWEEP_INTERVAL=0)
    assert started == [5.0]
