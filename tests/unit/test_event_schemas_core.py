"""Event data schemas of missions, sorties, checkpoints and the fleet stream."""

from __future__ import annotations

import pytest

from application.errors import ValidationError
from application.event_schemas import EVENT_SCHEMAS, checkpoint, fleet, mission, sortie
from application.event_schemas.base import load
from application.registry import registry

NOW = "2026-01-01T12:00:00+00:00"
LONG = "x" * 10001

# Smallest valid data of each event type, then a fuller one.
MINIMAL = {
    "mission_created": {"title": "T"},
    "mission_updated": {"changes": {"title": "New"}},
    "mission_started": {"started_at": NOW},
    "mission_completed": {"sorties_completed": 1, "sorties_failed": 0, "duration_ms": 5},
    "mission_failed": {"reason": "boom"},
    "mission_cancelled": {},
    "sortie_created": {"description": "D"},
    "sortie_updated": {"changes": {"priority": "low"}},
    "sortie_assigned": {"specialist_id": "spec-1"},
    "sortie_released": {
        "reason": "heartbeat_timeout",
        "previous_assignee": "spec-1",
        "previous_status": "assigned",
    },
    "sortie_started": {"specialist_id": "spec-1"},
    "sortie_progress": {"progress": 0},
    "sortie_blocked": {"reason": "waiting"},
    "sortie_unblocked": {},
    "sortie_completed": {"duration_ms": 0},
    "sortie_failed": {"error": "crash"},
    "sortie_cancelled": {},
    "review_started": {"review_id": "r1", "reviewer_id": "alice"},
    "review_completed": {"review_id": "r1", "verdict": "approved"},
    "checkpoint_created": {
        "target_stream_id": "fleet",
        "target_version": 0,
        "position": 0,
        "state": {},
    },
    "checkpoint_restored": {"restored_streams": [], "position": 3},
    "fleet_checkpointed": {"checkpoint_id": "c1", "trigger": "manual", "streams": 0, "position": 0},
    "fleet_recovered": {"checkpoint_id": "c1", "restored_version": 1, "state": {}},
    "context_compacted": {"from_sequence": 1, "to_sequence": 9, "snapshot_version": 9},
}
FULL = {
    "mission_created": {
        "title": "x" * 200,
        "description": "x" * 10000,
        "goals": ["a", "b"],
        "priority": "critical",
        "metadata": {"k": [1]},
    },
    "mission_updated": {
        "changes": {
            "title": "t",
            "description": None,
            "goals": [],
            "priority": "high",
            "metadata": {},
        }
    },
    "mission_completed": {
        "result": {"ok": True},
        "sorties_completed": 0,
        "sorties_failed": 2,
        "duration_ms": 0,
    },
    "mission_failed": {"reason": "r", "result": {"partial": 1}},
    "mission_cancelled": {"reason": "no"},
    "sortie_created": {
        "mission_id": "m-1",
        "title": "x" * 200,
        "description": "x" * 10000,
        "priority": "high",
        "dependencies": ["a", "b"],
        "assigned_to": "spec-1",
        "metadata": {"k": "v"},
        "required_capabilities": ["python", "sql"],
    },
    "sortie_updated": {
        "changes": {
            "title": None,
            "description": "d",
            "priority": "low",
            "metadata": {},
            "dependencies": ["a"],
        }
    },
    "sortie_progress": {"progress": 100, "status_message": "done"},
    "sortie_blocked": {"reason": "r", "blocker_type": "sortie", "blocker_id": "s-2"},
    "sortie_unblocked": {"resolution": "fixed"},
    "sortie_completed": {"result": {"a": 1}, "duration_ms": 99},
    "sortie_failed": {"error": "e", "result": {}},
    "sortie_cancelled": {"reason": "r"},
    "review_started": {"review_id": "r", "reviewer_id": "bob", "review_type": "security"},
    "review_completed": {"review_id": "r", "verdict": "needs_changes", "feedback": "f"},
    "checkpoint_created": {
        "target_stream_id": "abc",
        "target_version": 4,
        "position": 10,
        "description": "d",
        "state": {"mission": {}},
    },
    "checkpoint_restored": {"restored_streams": ["a", "b"], "position": 0},
    "fleet_checkpointed": {
        "checkpoint_id": "c",
        "trigger": "shutdown",
        "streams": 3,
        "position": 8,
    },
}
MODULES = (mission, sortie, checkpoint, fleet)
CORE_TYPES = sorted(name for module in MODULES for name in module.SCHEMAS)


def check(event_type: str, data: dict) -> dict:
    return load(EVENT_SCHEMAS[event_type](), data)


def test_every_core_event_type_is_covered_and_registered():
    assert sorted(MINIMAL) == CORE_TYPES
    assert set(FULL) <= set(MINIMAL)
    assert set(CORE_TYPES) <= set(registry())


@pytest.mark.parametrize("event_type", sorted(MINIMAL))
def test_minimal_data_is_accepted(event_type):
    check(event_type, MINIMAL[event_type])


@pytest.mark.parametrize("event_type", sorted(FULL))
def test_full_data_is_accepted(event_type):
    check(event_type, FULL[event_type])


def test_defaults_are_filled_in():
    assert check("mission_created", {"title": "T"}) == {
        "title": "T",
        "description": None,
        "goals": [],
        "priority": "medium",
        "metadata": {},
    }
    created = check("sortie_created", {"description": "D"})
    assert created["priority"] == "medium" and created["dependencies"] == []
    assert created["mission_id"] is None and created["assigned_to"] is None
    assert created["required_capabilities"] == []
    assert check("sortie_blocked", {"reason": "r"})["blocker_type"] == "external"
    assert check("review_started", MINIMAL["review_started"])["review_type"] == "general"
    assert check("mission_completed", MINIMAL["mission_completed"])["result"] == {}


def test_changes_keep_only_the_given_keys():
    assert check("mission_updated", {"changes": {"goals": ["g"]}}) == {"changes": {"goals": ["g"]}}
    assert check("sortie_updated", {"changes": {"title": None}}) == {"changes": {"title": None}}


@pytest.mark.parametrize("event_type", sorted(MINIMAL))
def test_unknown_fields_are_refused(event_type):
    with pytest.raises(ValidationError) as info:
        check(event_type, {**MINIMAL[event_type], "surprise": 1})
    assert "surprise" in info.value.errors


def first_required(event_type: str) -> list[str]:
    schema = EVENT_SCHEMAS[event_type]()
    return sorted(name for name, field in schema.fields.items() if field.required)


@pytest.mark.parametrize("event_type", sorted(MINIMAL))
def test_each_required_field_is_required(event_type):
    for name in first_required(event_type):
        data = {k: v for k, v in MINIMAL[event_type].items() if k != name}
        with pytest.raises(ValidationError) as info:
            check(event_type, data)
        assert name in info.value.errors


def bad(event_type: str, field: str, value, expected_key: str | None = None):
    return pytest.param(event_type, field, value, expected_key or field, id=f"{event_type}-{field}")


INVALID = [
    # lengths
    bad("mission_created", "title", ""),
    bad("mission_created", "title", "x" * 201),
    bad("mission_created", "description", LONG),
    bad("mission_created", "goals", [""], "goals.0"),
    bad("sortie_created", "description", ""),
    bad("sortie_created", "description", LONG),
    bad("sortie_created", "title", "x" * 201),
    bad("sortie_failed", "error", ""),
    bad("sortie_created", "required_capabilities", [""], "required_capabilities.0"),
    bad("sortie_created", "required_capabilities", "python"),
    bad("sortie_released", "reason", "bored"),
    bad("sortie_released", "previous_status", "pending"),
    bad("mission_failed", "reason", ""),
    bad("review_started", "review_id", ""),
    # types
    bad("mission_created", "goals", "not a list"),
    bad("mission_created", "metadata", ["not", "a", "dict"]),
    bad("mission_created", "title", 7),
    bad("mission_started", "started_at", "yesterday"),
    bad("mission_started", "started_at", "2026-01-01T12:00:00"),  # no timezone
    bad("checkpoint_created", "state", "s"),
    bad("checkpoint_restored", "restored_streams", "abc"),
    bad("sortie_completed", "result", 5),
    # strict integers and ranges
    bad("mission_completed", "duration_ms", "5"),
    bad("mission_completed", "sorties_completed", 1.5),
    bad("mission_completed", "sorties_failed", -1),
    bad("sortie_progress", "progress", 101),
    bad("sortie_progress", "progress", -1),
    bad("sortie_progress", "progress", "50"),
    bad("sortie_progress", "progress", True),
    bad("sortie_completed", "duration_ms", -1),
    bad("checkpoint_created", "target_version", -1),
    bad("checkpoint_created", "position", "0"),
    bad("checkpoint_restored", "position", -1),
    bad("fleet_checkpointed", "streams", -1),
    bad("fleet_checkpointed", "position", None),
    bad("fleet_recovered", "restored_version", 0),
    bad("context_compacted", "snapshot_version", "9"),
    # enums
    bad("mission_created", "priority", "urgent"),
    bad("sortie_created", "priority", "someday"),
    bad("sortie_blocked", "blocker_type", "weather"),
    bad("review_started", "review_type", "vibes"),
    bad("review_completed", "verdict", "maybe"),
    bad("fleet_checkpointed", "trigger", "hourly"),
    # ids
    bad("sortie_assigned", "specialist_id", "has space"),
    bad("sortie_started", "specialist_id", ""),
    bad("sortie_created", "mission_id", ""),
    bad("sortie_created", "assigned_to", "a/b"),
    # dependency lists
    bad("sortie_created", "dependencies", ["a", "a"]),
    bad("sortie_created", "dependencies", ["a", ""]),
    bad("sortie_created", "dependencies", ["  "]),
    bad("sortie_created", "dependencies", [1], "dependencies.0"),
    bad("sortie_created", "dependencies", None),
    # changes objects
    bad("mission_updated", "changes", {}),
    bad("mission_updated", "changes", "title"),
    bad("mission_updated", "changes", None),
    bad("mission_updated", "changes", {"status": "completed"}, "changes.status"),
    bad("mission_updated", "changes", {"title": ""}, "changes.title"),
    bad("mission_updated", "changes", {"priority": "urgent"}, "changes.priority"),
    bad("mission_updated", "changes", {"goals": "g"}, "changes.goals"),
    bad("sortie_updated", "changes", {}),
    bad("sortie_updated", "changes", []),
    bad("sortie_updated", "changes", {"progress": 5}, "changes.progress"),
    bad("sortie_updated", "changes", {"description": ""}, "changes.description"),
    bad("sortie_updated", "changes", {"description": None}, "changes.description"),
    bad("sortie_updated", "changes", {"dependencies": ["a", "a"]}, "changes.dependencies"),
]


@pytest.mark.parametrize(("event_type", "field", "value", "key"), INVALID)
def test_invalid_values_are_refused_naming_the_field(event_type, field, value, key):
    data = {**MINIMAL[event_type], field: value}
    with pytest.raises(ValidationError) as info:
        check(event_type, data)
    assert key in info.value.errors, info.value.errors
    assert all(messages for messages in info.value.errors.values())


def test_dependency_messages_say_what_is_wrong():
    with pytest.raises(ValidationError) as info:
        check("sortie_created", {"description": "D", "dependencies": ["b", "a", "b"]})
    assert info.value.errors["dependencies"] == ["duplicate dependency ids: b"]
    with pytest.raises(ValidationError) as info:
        check("sortie_created", {"description": "D", "dependencies": [""]})
    assert "non-empty" in info.value.errors["dependencies"][0]


def test_an_empty_changes_object_says_so():
    with pytest.raises(ValidationError) as info:
        check("mission_updated", {"changes": {}})
    assert info.value.errors == {"changes": ["must name at least one field to change"]}
