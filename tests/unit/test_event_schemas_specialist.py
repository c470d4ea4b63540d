"""Event data schemas of the specialist stream."""

from __future__ import annotations

import pytest

from application.errors import ValidationError
from application.registry import get_event_type

VALID = {
    "specialist_registered": {"specialist_id": "sp-1.a:b_c", "name": "Scout"},
    "specialist_spawned": {"specialist_id": "sp-1", "name": "Scout", "spawned_by": "planner"},
    "specialist_active": {},
    "specialist_inactive": {"reason": "heartbeat_timeout", "last_seen": "2026-01-01T00:00:00Z"},
    "specialist_completed": {"reason": "success"},
    "specialist_failed": {"error": "crashed"},
}
INVALID = [
    ("specialist_registered", "specialist_id", "has space"),
    ("specialist_registered", "specialist_id", "x" * 129),
    ("specialist_registered", "specialist_id", ""),
    ("specialist_registered", "name", ""),
    ("specialist_registered", "name", "x" * 201),
    ("specialist_registered", "capabilities", "search"),
    ("specialist_registered", "capabilities", [1]),
    ("specialist_registered", "metadata", ["not", "an", "object"]),
    ("specialist_spawned", "config", "text"),
    ("specialist_active", "status", "sleeping"),
    ("specialist_active", "metrics", 3),
    ("specialist_inactive", "reason", "bored"),
    ("specialist_inactive", "last_seen", "2026-01-01T00:00:00"),
    ("specialist_completed", "reason", "finished"),
    ("specialist_failed", "error", ""),
    ("specialist_failed", "error", "x" * 2001),
]


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_valid_data_is_accepted_with_defaults(event_type: str) -> None:
    data = get_event_type(event_type).validate(VALID[event_type])
    assert set(VALID[event_type]) <= set(data)


def test_defaults_fill_the_optional_fields() -> None:
    data = get_event_type("specialist_registered").validate(VALID["specialist_registered"])
    assert data["capabilities"] == [] and data["metadata"] == {}
    assert get_event_type("specialist_active").validate({})["status"] == "active"


@pytest.mark.parametrize(("event_type", "field", "value"), INVALID)
def test_invalid_data_is_refused_naming_the_field(
    event_type: str, field: str, value: object
) -> None:
    with pytest.raises(ValidationError) as refused:
        get_event_type(event_type).validate({**VALID[event_type], field: value})
    assert any(name == field or name.startswith(f"{field}.") for name in refused.value.errors)
    assert field in str(refused.value)


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_unknown_fields_and_missing_required_fields_are_refused(event_type: str) -> None:
    with pytest.raises(ValidationError) as unknown:
        get_event_type(event_type).validate({**VALID[event_type], "colour": "red"})
    assert unknown.value.errors == {"colour": ["Unknown field."]}
    for field in VALID[event_type]:
        rest = {k: v for k, v in VALID[event_type].items() if k != field}
        with pytest.raises(ValidationError) as missing:
            get_event_type(event_type).validate(rest)
        assert field in missing.value.errors
