"""Cursors over HTTP: advance (created on first use), reset, read."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import API, body, etag, events, position, problem
from web import get_fleet


def advance(client: FlaskClient, position: int, **headers: str) -> Any:
    return client.post(
        f"{API}/cursors/advance",
        json={"consumer_id": "reader", "stream_id": "orders", "position": position},
        headers=headers,
    )


def test_advance_creates_then_moves_forward(app: Flask, client: FlaskClient) -> None:
    response = advance(client, 5)
    cursor = body(response, 200)["cursor"]
    assert (cursor["consumer_id"], cursor["target_stream_id"], cursor["position"]) == (
        "reader",
        "orders",
        5,
    )
    assert etag(response) == cursor["version"] == 1
    assert position(response) == events(client)[-1]["id"]
    moved = advance(client, 8)
    assert (body(moved, 200)["cursor"]["previous_position"], etag(moved)) == (5, 2)
    read = client.get(f"{API}/cursors/{cursor['id']}")
    assert body(read, 200)["cursor"] == get_fleet(app).get_cursor(cursor["id"])
    assert etag(read) == 2
    assert [e["event_type"] for e in events(client, stream_id=cursor["stream_id"])] == [
        "cursor_advanced",
        "cursor_advanced",
    ]


def test_advancing_to_the_same_position_records_nothing(client: FlaskClient) -> None:
    body(advance(client, 5), 200)
    head = events(client)[-1]["id"]
    again = advance(client, 5)
    assert (body(again, 200)["cursor"]["version"], etag(again)) == (1, 1)
    assert position(again) == head == events(client)[-1]["id"]


def test_backwards_is_409_and_reset_may_go_anywhere(client: FlaskClient) -> None:
    body(advance(client, 5), 200)
    conflict = problem(advance(client, 2), 409)
    assert "cannot move backwards from 5 to 2" in conflict["detail"]
    reset = client.post(
        f"{API}/cursors/reset", json={"consumer_id": "reader", "stream_id": "orders"}
    )
    cursor = body(reset, 200)["cursor"]
    assert (cursor["position"], cursor["previous_position"], cursor["reset_count"]) == (0, 5, 1)
    assert body(advance(client, 2), 200)["cursor"]["position"] == 2
    first_reset = client.post(
        f"{API}/cursors/reset", json={"consumer_id": "new", "stream_id": "orders", "position": 4}
    )
    assert body(first_reset, 200)["cursor"]["position"] == 4
    assert len(events(client, type="cursor_reset")) == 2


def test_if_match_guards_the_cursor(client: FlaskClient) -> None:
    assert problem(advance(client, 1, **{"If-Match": '"1"'}), 412)["current_version"] == 0
    body(advance(client, 1), 200)
    body(advance(client, 2), 200)
    assert problem(advance(client, 3, **{"If-Match": '"1"'}), 412)["current_version"] == 2
    assert etag(advance(client, 3, **{"If-Match": '"2"'})) == 3
    reset = client.post(
        f"{API}/cursors/reset",
        json={"consumer_id": "reader", "stream_id": "orders"},
        headers={"If-Match": '"1"'},
    )
    problem(reset, 412)


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, ("consumer_id", "stream_id", "position")),
        ({"consumer_id": "r", "stream_id": "s", "position": -1}, ("position",)),
        ({"consumer_id": "r", "stream_id": "s", "position": "3"}, ("position",)),
        ({"consumer_id": "r", "stream_id": "s", "position": 1.5}, ("position",)),
        ({"consumer_id": "", "stream_id": "s", "position": 1}, ("consumer_id",)),
        ({"consumer_id": "r", "stream_id": "s", "position": 1, "x": 1}, ("x",)),
    ],
)
def test_invalid_bodies_are_422(
    pristine_client: FlaskClient, payload: dict[str, Any], fields: tuple[str, ...]
) -> None:
    problem(pristine_client.post(f"{API}/cursors/advance", json=payload), 422, *fields)
    reset_fields = tuple(f for f in fields if f != "position" or "position" in payload)
    problem(pristine_client.post(f"{API}/cursors/reset", json=payload), 422, *reset_fields)


# Named ids: a random id in a test's name would differ between pytest-xdist workers.
@pytest.mark.parametrize("cursor_id", ["nope", str(uuid.uuid4())], ids=["nope", "unknown-uuid"])
def test_an_unknown_cursor_is_404(pristine_client: FlaskClient, cursor_id: str) -> None:
    problem(pristine_client.get(f"{API}/cursors/{cursor_id}"), 404)
