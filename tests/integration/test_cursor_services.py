"""Cursors through the Python services, on both backends."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from application import Conflict, Fleet, NotFound, PreconditionFailed, ValidationError

CURSOR_KEYS = {
    "id",
    "stream_id",
    "consumer_id",
    "target_stream_id",
    "position",
    "version",
    "created_at",
    "updated_at",
}


def cursor_events(fleet: Fleet, cursor: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(e["event_type"], e["data"]) for e in fleet.stream_events(cursor["stream_id"])]


def test_advance_creates_on_first_use_and_moves_forward(fleet: Fleet) -> None:
    cursor = fleet.advance_cursor("reader", "orders", 5)
    assert set(cursor) >= CURSOR_KEYS
    assert cursor["id"] == cursor["stream_id"]
    assert (cursor["consumer_id"], cursor["target_stream_id"]) == ("reader", "orders")
    assert (cursor["position"], cursor["previous_position"], cursor["version"]) == (5, 0, 1)
    moved = fleet.advance_cursor("reader", "orders", 9)
    assert (moved["id"], moved["position"], moved["previous_position"]) == (cursor["id"], 9, 5)
    assert moved["version"] == 2 and moved["updated_at"] > moved["created_at"]
    assert fleet.get_cursor(cursor["id"]) == moved
    pair = {"consumer_id": "reader", "target_stream_id": "orders"}
    assert cursor_events(fleet, cursor) == [
        ("cursor_advanced", {**pair, "position": 5, "previous_position": 0}),
        ("cursor_advanced", {**pair, "position": 9, "previous_position": 5}),
    ]


def test_advancing_to_the_same_position_records_nothing(fleet: Fleet) -> None:
    cursor = fleet.advance_cursor("reader", "orders", 3)
    head = fleet.head_position()
    with fleet.context() as scope:
        again = fleet.advance_cursor("reader", "orders", 3)
    assert again == cursor
    assert fleet.head_position() == head and scope.position == head
    assert fleet.advance_cursor("other", "orders", 0)["version"] == 1  # first use records


def test_advance_never_moves_backwards(fleet: Fleet) -> None:
    fleet.advance_cursor("reader", "orders", 10)
    head = fleet.head_position()
    with pytest.raises(Conflict, match="cannot move backwards from 10 to 4; use reset"):
        fleet.advance_cursor("reader", "orders", 4)
    assert fleet.head_position() == head


def test_reset_goes_anywhere_and_always_records(fleet: Fleet) -> None:
    first = fleet.reset_cursor("reader", "orders", 7)  # first use by a reset
    assert (first["position"], first["reset_count"], first["version"]) == (7, 1, 1)
    back = fleet.reset_cursor("reader", "orders")
    assert (back["position"], back["previous_position"], back["reset_count"]) == (0, 7, 2)
    same = fleet.reset_cursor("reader", "orders", 0)
    assert same["version"] == 3
    assert fleet.advance_cursor("reader", "orders", 2)["position"] == 2
    assert [t for t, _ in cursor_events(fleet, first)] == [
        "cursor_reset",
        "cursor_reset",
        "cursor_reset",
        "cursor_advanced",
    ]
    assert cursor_events(fleet, first)[1][1]["previous_position"] == 7


def test_one_cursor_per_consumer_and_stream(fleet: Fleet) -> None:
    ids = {
        fleet.advance_cursor(consumer, stream, 1)["id"]
        for consumer in ("a", "b")
        for stream in ("x", "y")
    }
    assert len(ids) == 4
    assert fleet.advance_cursor("a", "x", 2)["id"] in ids


def test_every_write_honours_the_cursor_version(fleet: Fleet) -> None:
    with pytest.raises(PreconditionFailed):
        fleet.advance_cursor("reader", "orders", 1, expected_version=1)  # no cursor yet
    with pytest.raises(PreconditionFailed):
        fleet.reset_cursor("reader", "orders", expected_version=1)
    fleet.advance_cursor("reader", "orders", 1)
    fleet.advance_cursor("reader", "orders", 2)
    head = fleet.head_position()
    with pytest.raises(PreconditionFailed, match="current version is 2"):
        fleet.advance_cursor("reader", "orders", 3, expected_version=1)
    with pytest.raises(PreconditionFailed):
        fleet.reset_cursor("reader", "orders", expected_version=1)
    assert fleet.head_position() == head
    assert fleet.advance_cursor("reader", "orders", 3, expected_version=2)["version"] == 3
    assert fleet.reset_cursor("reader", "orders", expected_version=3)["version"] == 4


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "orders", 1), "consumer_id"),
        (("reader", "", 1), "stream_id"),
        (("reader", "s" * 129, 1), "stream_id"),
        (("reader", "orders", -1), "position"),
        (("reader", "orders", "3"), "position"),
        (("reader", "orders", True), "position"),
    ],
)
def test_invalid_input_names_the_field(fleet: Fleet, args: tuple[Any, ...], field: str) -> None:
    for command in (fleet.advance_cursor, fleet.reset_cursor):
        with pytest.raises(ValidationError) as error:
            command(*args)
        assert field in error.value.errors
    assert fleet.head_position() == 0


def test_an_unknown_cursor_is_not_found(fleet: Fleet) -> None:
    mission = fleet.create_mission(title="not a cursor")
    for cursor_id in ("nope", str(uuid.uuid4()), mission["id"]):
        with pytest.raises(NotFound):
            fleet.get_cursor(cursor_id)


def test_racing_first_advances_create_one_cursor(backend: dict[str, str]) -> None:
    fleets = [Fleet(env=backend) for _ in range(6)]
    results: list[dict[str, Any]] = []
    try:
        threads = [
            threading.Thread(target=lambda f=f: results.append(f.advance_cursor("r", "s", 4)))
            for f in fleets
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(results) == 6 and {(r["position"], r["version"]) for r in results} == {(4, 1)}
        assert len(fleets[0].stream_events(results[0]["stream_id"])) == 1
    finally:
        for f in fleets:
            f.close()
