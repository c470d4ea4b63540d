"""Cursor aggregate: forward-only advance, reset anywhere, either may come first."""

from __future__ import annotations

import pytest

from domain.cursor import Cursor, cursor_stream_id
from domain.errors import RuleError


def replay(events):
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def test_id_is_stable_per_consumer_and_stream_and_unambiguous():
    assert Cursor.create_id("c1", "s1") == cursor_stream_id("c1", "s1")
    assert Cursor.create_id("c1", "s1") != Cursor.create_id("c1", "s2")
    assert Cursor.create_id("c1", "s1") != Cursor.create_id("s1", "c1")
    # A separator inside an id cannot make two pairs collide.
    assert Cursor.create_id("a/b", "c") != Cursor.create_id("a", "b/c")


def test_first_advance_creates_the_stream_from_zero():
    cursor = Cursor.open_advanced("c1", "s1", 5)
    assert cursor.id == Cursor.create_id("c1", "s1")
    assert (cursor.consumer_id, cursor.target_stream_id) == ("c1", "s1")
    assert (cursor.position, cursor.previous_position, cursor.version) == (5, 0, 1)
    [event] = cursor.collect_events()
    assert type(event).TOPIC == "cursor_advanced" and event.event_type == "cursor_advanced"


def test_first_advance_to_zero_still_creates_the_stream():
    cursor = Cursor.open_advanced("c1", "s1", 0)
    assert cursor.position == 0 and cursor.version == 1


def test_first_reset_creates_the_stream():
    cursor = Cursor.open_reset("c1", "s1")
    assert (cursor.position, cursor.previous_position, cursor.reset_count) == (0, 0, 1)
    [event] = cursor.collect_events()
    assert type(event).TOPIC == "cursor_reset" and event.event_type == "cursor_reset"
    assert Cursor.open_reset("c1", "s1", 9).position == 9


def test_advance_moves_forward_and_uses_the_again_class():
    cursor = Cursor.open_advanced("c1", "s1", 1)
    assert cursor.advance(4) is True
    assert (cursor.position, cursor.previous_position, cursor.version) == (4, 1, 2)
    events = cursor.collect_events()
    assert [type(e).TOPIC for e in events] == ["cursor_advanced", "cursor_advanced.again"]
    assert {e.event_type for e in events} == {"cursor_advanced"}
    assert (events[1].consumer_id, events[1].target_stream_id) == ("c1", "s1")


def test_advance_backwards_is_refused():
    cursor = Cursor.open_advanced("c1", "s1", 10)
    with pytest.raises(RuleError, match="cannot move backwards from 10 to 9; use reset"):
        cursor.advance(9)
    assert cursor.version == 1 and cursor.position == 10


def test_advance_to_the_same_position_records_nothing():
    cursor = Cursor.open_advanced("c1", "s1", 3)
    assert cursor.advance(3) is False
    assert cursor.version == 1
    assert len(cursor.collect_events()) == 1


def test_reset_may_go_anywhere_and_always_records():
    cursor = Cursor.open_advanced("c1", "s1", 10)
    cursor.reset(2)
    assert (cursor.position, cursor.previous_position) == (2, 10)
    cursor.reset(50)
    assert (cursor.position, cursor.previous_position) == (50, 2)
    cursor.reset(50)
    cursor.reset()
    assert cursor.position == 0 and cursor.reset_count == 4
    assert cursor.version == 5
    events = cursor.collect_events()
    assert [type(e).TOPIC for e in events[1:]] == ["cursor_reset.again"] * 4
    cursor.advance(1)
    assert cursor.position == 1


def test_advance_after_reset_is_forward_only_from_the_reset_position():
    cursor = Cursor.open_reset("c1", "s1", 7)
    with pytest.raises(RuleError):
        cursor.advance(6)
    assert cursor.advance(8)


@pytest.mark.parametrize("position", [-1, 1.5, "3", True, None])
def test_position_must_be_a_non_negative_integer(position):
    with pytest.raises(RuleError, match="position must be an integer >= 0"):
        Cursor.open_advanced("c1", "s1", position)
    with pytest.raises(RuleError, match="position must be an integer >= 0"):
        Cursor.open_reset("c1", "s1", position)
    cursor = Cursor.open_advanced("c1", "s1", 0)
    with pytest.raises(RuleError):
        cursor.advance(position)
    with pytest.raises(RuleError):
        cursor.reset(position)
    assert cursor.version == 1


@pytest.mark.parametrize("opener", ["advance", "reset"])
def test_replay_gives_the_same_state(opener):
    if opener == "advance":
        cursor = Cursor.open_advanced("c1", "s1", 3)
    else:
        cursor = Cursor.open_reset("c1", "s1", 3)
    cursor.advance(8)
    cursor.reset(1)
    cursor.advance(2)
    events = cursor.collect_events()
    again = replay(events)
    assert again.state_dict() == cursor.state_dict()
    assert again.version == cursor.version == 4
