"""Mission aggregate: lifecycle, rules, replay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.base import FleetRecovered
from domain.errors import DomainError, RuleError, TransitionError
from domain.mission import LIFECYCLE, Mission

# The lifecycle as the catalogue states it, written out independently of the code.
ALLOWED = {
    "pending": {"in_progress", "cancelled"},
    "in_progress": {"completed", "failed", "cancelled"},
    "completed": set(),
    "failed": set(),
    "cancelled": set(),
}
TARGET = {"start": "in_progress", "complete": "completed", "fail": "failed", "cancel": "cancelled"}


def replay(events):
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def new_mission(**kwargs) -> Mission:
    data = {"title": "Ship it", "goals": ["build", "test"], "metadata": {"team": "a"}, **kwargs}
    return Mission.create(**data)


def run(mission: Mission, command: str) -> None:
    if command == "start":
        mission.start()
    elif command == "complete":
        mission.complete({"ok": True}, 2, 0, 10, unfinished_sorties=[])
    elif command == "fail":
        mission.fail("broke", {"partial": 1})
    else:
        mission.cancel("no longer needed")


def mission_in(status: str) -> Mission:
    mission = new_mission()
    path = {
        "pending": [],
        "in_progress": ["start"],
        "completed": ["start", "complete"],
        "failed": ["start", "fail"],
        "cancelled": ["cancel"],
    }[status]
    for command in path:
        run(mission, command)
    assert mission.status == status
    return mission


def allowed_text(status: str) -> str:
    allowed = sorted(ALLOWED[status])
    return ", ".join(allowed) if allowed else "none (final status)"


def test_create_records_mission_created_with_defaults():
    mission = Mission.create("Title")
    assert mission.status == "pending"
    assert mission.priority == "medium"
    assert mission.goals == [] and mission.metadata == {} and mission.description is None
    assert mission.result is None and mission.reason is None
    assert mission.started_at is None and mission.completed_at is None
    [event] = mission.collect_events()
    assert type(event).TOPIC == "mission_created" and event.event_type == "mission_created"
    assert mission.version == 1


def test_create_refuses_an_unknown_priority():
    with pytest.raises(RuleError, match="priority must be one of"):
        Mission.create("T", priority="urgent")


def test_code_lifecycle_matches_the_catalogue():
    assert set(LIFECYCLE.statuses) == set(ALLOWED)
    for status, allowed in ALLOWED.items():
        assert LIFECYCLE.allowed(status) == allowed


@pytest.mark.parametrize("status", sorted(ALLOWED))
@pytest.mark.parametrize("command", sorted(TARGET))
def test_every_transition_is_allowed_or_refused_naming_the_allowed_statuses(status, command):
    mission = mission_in(status)
    mission.collect_events()
    target = TARGET[command]
    if target in ALLOWED[status]:
        run(mission, command)
        assert mission.status == target
        assert len(mission.collect_events()) == 1
    else:
        version = mission.version
        with pytest.raises(TransitionError) as info:
            run(mission, command)
        assert f"allowed next statuses: {allowed_text(status)}" in str(info.value)
        assert info.value.allowed == sorted(ALLOWED[status])
        assert mission.version == version and mission.status == status


def test_start_records_started_at_equal_to_the_event_time():
    mission = new_mission()
    mission.start()
    event = mission.collect_events()[-1]
    assert event.event_type == "mission_started"
    assert event.started_at == event.timestamp == mission.started_at


def test_complete_refuses_while_sorties_are_unfinished_and_names_them():
    mission = mission_in("in_progress")
    with pytest.raises(RuleError, match="s-1, s-2"):
        mission.complete({}, 1, 0, 5, unfinished_sorties=["s-1", "s-2"])
    assert mission.status == "in_progress"


def test_complete_records_result_counts_and_completion_time():
    mission = mission_in("in_progress")
    mission.collect_events()
    mission.complete(None, 3, 1, 1234, [])
    [event] = mission.collect_events()
    assert (event.result, event.sorties_completed, event.sorties_failed, event.duration_ms) == (
        {},
        3,
        1,
        1234,
    )
    assert mission.status == "completed" and mission.result == {}
    assert mission.completed_at == event.timestamp


def test_fail_and_cancel_record_reason_and_completion_time():
    failed = mission_in("failed")
    assert failed.reason == "broke" and failed.result == {"partial": 1}
    assert failed.completed_at is not None
    cancelled = mission_in("cancelled")
    assert cancelled.reason == "no longer needed" and cancelled.completed_at is not None


def test_fail_needs_a_reason():
    with pytest.raises(RuleError, match="reason"):
        mission_in("in_progress").fail("")


def test_update_applies_only_the_changed_fields():
    mission = new_mission(description="old")
    mission.update({"title": "New", "goals": ["one"], "priority": "high"})
    assert mission.title == "New" and mission.goals == ["one"] and mission.priority == "high"
    assert mission.description == "old" and mission.metadata == {"team": "a"}
    mission.update({"description": None, "metadata": {"x": 1}})
    assert mission.description is None and mission.metadata == {"x": 1}
    assert [e.event_type for e in mission.collect_events()][1:] == ["mission_updated"] * 2


def test_update_is_allowed_in_progress():
    mission = mission_in("in_progress")
    mission.update({"title": "Still going"})
    assert mission.title == "Still going"


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_update_refuses_a_final_mission(status):
    mission = mission_in(status)
    with pytest.raises(RuleError, match=f"mission is {status}"):
        mission.update({"title": "Too late"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "no changes"),
        ({"status": "completed"}, "cannot be changed: status"),
        ({"priority": "urgent"}, "priority must be one of"),
    ],
)
def test_update_refuses_bad_changes(changes, message):
    mission = new_mission()
    with pytest.raises(RuleError, match=message):
        mission.update(changes)
    assert mission.version == 1


def test_duration_since_start():
    mission = new_mission()
    assert mission.duration_ms_since_start(mission.created_on) == 0
    mission.start()
    assert mission.duration_ms_since_start(mission.started_at + timedelta(seconds=1.5)) == 1500
    assert mission.duration_ms_since_start(mission.started_at - timedelta(seconds=1)) == 0


def test_replay_rebuilds_the_same_state():
    mission = new_mission(description="d", priority="critical")
    mission.update({"goals": ["g"]})
    mission.start()
    mission.complete({"done": True}, 1, 0, 7, [])
    copy = replay(mission.collect_events())
    assert isinstance(copy, Mission)
    assert copy.state_dict() == mission.state_dict()
    assert copy.version == mission.version == 4


def test_fleet_recovered_puts_the_state_back_including_datetimes():
    mission = mission_in("in_progress")
    saved = mission.state_dict()
    version = mission.version
    mission.cancel("oops")
    mission.trigger_event(FleetRecovered, checkpoint_id="c1", restored_version=version, state=saved)
    assert mission.status == "in_progress" and mission.completed_at is None
    assert mission.state_dict() == saved
    assert mission.started_at.tzinfo is not None
    assert replay(mission.collect_events()).state_dict() == saved


COMMANDS = st.sampled_from(["start", "complete", "complete_unfinished", "fail", "cancel", "update"])


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(COMMANDS, max_size=12))
def test_random_commands_never_break_the_lifecycle(commands):
    mission = new_mission()
    seen = [mission.status]
    for command in commands:
        before = (mission.status, mission.version)
        try:
            if command == "complete_unfinished":
                mission.complete({}, 0, 0, 0, ["s"])
            elif command == "update":
                mission.update({"title": "t2"})
            else:
                run(mission, command)
        except DomainError:
            assert (mission.status, mission.version) == before
            continue
        if before[0] in ("completed", "failed", "cancelled"):
            pytest.fail(f"a final mission changed: {command}")
        assert mission.status in ALLOWED
        if mission.status != before[0]:
            assert mission.status in ALLOWED[before[0]]
            seen.append(mission.status)
    assert replay(mission.collect_events()).state_dict() == mission.state_dict()
    assert seen[0] == "pending"
