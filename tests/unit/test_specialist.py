"""Specialist lifecycle: registration, heartbeats, the end states, and replay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import TransitionError
from domain.specialist import LIFECYCLE, Specialist, specialist_stream_id


def replay(specialist: Specialist) -> Specialist:
    rebuilt = None
    for event in specialist.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert isinstance(rebuilt, Specialist)
    return rebuilt


def test_registration_starts_active_with_a_stream_named_by_its_id() -> None:
    specialist = Specialist.register("sp-1", "Scout", ["search"], {"zone": "eu"})
    assert specialist.id == specialist_stream_id("sp-1")
    assert specialist.status == "active" and specialist.version == 1
    assert specialist.last_seen == specialist.registered_at == specialist.created_on


def test_heartbeats_move_between_live_statuses_and_merge_metadata() -> None:
    specialist = Specialist.register("sp-1", "Scout", [], {"a": 1})
    specialist.heartbeat("busy", current_sortie="s-1", metrics={"cpu": 3}, metadata={"b": 2})
    specialist.heartbeat("idle")
    assert specialist.status == "idle" and specialist.current_sortie == "s-1"
    assert specialist.metadata == {"a": 1, "b": 2} and specialist.metrics == {"cpu": 3}


def test_an_inactive_specialist_comes_back_with_a_heartbeat() -> None:
    specialist = Specialist.register("sp-1", "Scout", [], {})
    specialist.mark_inactive("heartbeat_timeout")
    with pytest.raises(TransitionError, match="inactive"):
        specialist.mark_inactive("deregistered")
    specialist.heartbeat("busy")
    assert specialist.status == "busy"


@pytest.mark.parametrize("end", ["complete", "fail"])
def test_completed_and_failed_are_final(end: str) -> None:
    specialist = Specialist.register("sp-1", "Scout", [], {})
    if end == "complete":
        specialist.complete("success", summary="done")
    else:
        specialist.fail("crashed", details={"exit": 1})
    with pytest.raises(TransitionError, match="none \\(final status\\)"):
        specialist.heartbeat()
    with pytest.raises(TransitionError):
        specialist.mark_inactive("deregistered")
    with pytest.raises(TransitionError):
        specialist.complete("success")


def test_re_registration_revives_and_keeps_the_stream() -> None:
    specialist = Specialist.register("sp-1", "Scout", ["a"], {})
    specialist.fail("crashed")
    specialist.reregister("Scout 2", ["b"], {"v": 2})
    specialist.record_spawn("planner", mission_id="m-1")
    assert specialist.status == "active" and specialist.name == "Scout 2"
    assert specialist.spawned_by == "planner" and specialist.version == 4
    types = [type(e).event_type for e in specialist.pending_events]
    assert types == [
        "specialist_registered",
        "specialist_failed",
        "specialist_registered",
        "specialist_spawned",
    ]


def test_silence_is_measured_from_the_last_heartbeat() -> None:
    specialist = Specialist.register("sp-1", "Scout", [], {})
    later = specialist.last_seen + timedelta(seconds=61)
    assert specialist.is_silent_since(later)
    assert not specialist.is_silent_since(specialist.last_seen)
    specialist.complete("success")
    assert not specialist.is_silent_since(later)


def test_a_refused_command_records_nothing() -> None:
    specialist = Specialist.register("sp-1", "Scout", [], {})
    specialist.complete("success")
    before = len(specialist.pending_events)
    with pytest.raises(TransitionError):
        specialist.heartbeat("busy")
    assert len(specialist.pending_events) == before


COMMANDS = st.lists(
    st.sampled_from(["active", "busy", "idle", "inactive", "complete", "fail", "reregister"]),
    max_size=30,
)


@settings(max_examples=200, database=None)
@given(COMMANDS)
def test_random_commands_never_reach_a_forbidden_state(commands: list[str]) -> None:
    specialist = Specialist.register("sp-1", "Scout", [], {})
    history = [specialist.status]
    for command in commands:
        before = specialist.status
        try:
            if command in ("active", "busy", "idle"):
                specialist.heartbeat(command)
            elif command == "inactive":
                specialist.mark_inactive("deregistered")
            elif command == "complete":
                specialist.complete("success")
            elif command == "fail":
                specialist.fail("boom")
            else:
                specialist.reregister("Again", [], {})
        except TransitionError:
            assert specialist.status == before
            continue
        if command != "reregister":
            assert specialist.status in LIFECYCLE.allowed(before)
        history.append(specialist.status)
    assert set(history) <= set(LIFECYCLE.statuses)
    assert replay(specialist).state_dict() == specialist.state_dict()
