"""Event data schemas of messages (the mailbox stream), cursors and locks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from application.errors import ValidationError
from application.event_schemas import cursor, lock, mailbox
from application.event_schemas.base import load
from domain.base import FleetAggregate, event_classes
from domain.cursor import Cursor
from domain.lock import FileLock
from domain.mailbox import Mailbox

SCHEMAS = {**mailbox.SCHEMAS, **cursor.SCHEMAS, **lock.SCHEMAS}
ENVELOPE = {f.name for f in dataclasses.fields(FleetAggregate.Created)}
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

VALID = {
    "squawk_sent": {
        "mailbox_id": "mb-1",
        "message_id": "m1",
        "sender_id": "s1",
        "thread_id": "t1",
        "message_type": "task",
        "content": {"text": "hi", "n": [1, 2]},
        "priority": "urgent",
    },
    "squawk_read": {"message_id": "m1", "reader_id": "r1"},
    "squawk_acked": {"message_id": "m1", "acker_id": "a1", "response": {"ok": True}},
    "squawk_archived": {"message_id": "m1", "archived_by": "x"},
    "squawk_requeued": {"message_id": "m1", "reason": "crashed"},
    "cursor_advanced": {
        "consumer_id": "c1",
        "target_stream_id": "s1",
        "position": 5,
        "previous_position": 2,
    },
    "cursor_reset": {
        "consumer_id": "c1",
        "target_stream_id": "s1",
        "position": 0,
        "previous_position": 5,
    },
    "lock_acquired": {
        "lock_id": "l1",
        "file_path": "a//b/./c/../d/",
        "normalized_path": "a/b/d",
        "specialist_id": "s1",
        "purpose": "delete",
        "timeout_ms": 1000,
        "expires_at": "2026-03-01T12:00:01+00:00",
        "checksum": "sha256:abc",
    },
    "lock_conflict": {
        "requesting_specialist": "s2",
        "holding_specialist": "s1",
        "existing_lock_id": "l1",
    },
    "lock_released": {"lock_id": "l1", "specialist_id": "s1", "reason": "forced"},
    "lock_timeout": {"lock_id": "l1", "specialist_id": "s1", "expired_at": "2026-03-01T12:00:01Z"},
}


def errors_of(event_type: str, data: dict) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        load(SCHEMAS[event_type](), data)
    return info.value.errors


def test_every_coordination_event_type_has_a_schema():
    types = {
        cls.event_type
        for aggregate in (Mailbox, Cursor, FileLock)
        for cls in event_classes(aggregate)
    }
    assert types == set(SCHEMAS) == set(VALID)


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_valid_data_is_accepted(event_type):
    loaded = load(SCHEMAS[event_type](), VALID[event_type])
    assert set(loaded) == set(VALID[event_type])


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_unknown_fields_are_refused(event_type):
    errors = errors_of(event_type, {**VALID[event_type], "surprise": 1})
    assert errors == {"surprise": ["Unknown field."]}


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_every_required_field_is_named_when_missing(event_type):
    errors = errors_of(event_type, {})
    assert errors, event_type
    assert all(messages == ["Missing data for required field."] for messages in errors.values())


def test_optional_fields_get_defaults():
    sent = load(
        mailbox.SquawkSent(),
        {"mailbox_id": "mb", "message_id": "m", "message_type": "t", "content": {}},
    )
    assert sent["priority"] == "normal"
    assert sent["sender_id"] is None and sent["thread_id"] is None
    assert load(mailbox.SquawkAcked(), {"message_id": "m", "acker_id": "a"})["response"] is None
    assert load(mailbox.SquawkRequeued(), {"message_id": "m"})["reason"] is None
    reset = load(
        cursor.CursorReset(), {"consumer_id": "c", "target_stream_id": "s", "previous_position": 3}
    )
    assert reset["position"] == 0
    acquired = dict(VALID["lock_acquired"])
    for key in ("purpose", "timeout_ms", "checksum"):
        del acquired[key]
    loaded = load(lock.LockAcquired(), acquired)
    assert (loaded["purpose"], loaded["timeout_ms"], loaded["checksum"]) == ("edit", 30000, None)
    assert loaded["expires_at"] == T0 + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("squawk_sent", "priority", "medium"),
        ("squawk_sent", "content", ["not", "an", "object"]),
        ("squawk_sent", "content", "text"),
        ("squawk_sent", "content", None),
        ("squawk_sent", "message_type", ""),
        ("squawk_sent", "message_type", "x" * 101),
        ("squawk_sent", "mailbox_id", "has space"),
        ("squawk_sent", "sender_id", ""),
        ("squawk_sent", "message_id", 7),
        ("squawk_read", "reader_id", ""),
        ("squawk_acked", "response", "ok"),
        ("squawk_archived", "archived_by", None),
        ("squawk_requeued", "reason", "x" * 2001),
        ("cursor_advanced", "position", -1),
        ("cursor_advanced", "position", "5"),
        ("cursor_advanced", "position", 1.5),
        ("cursor_advanced", "position", True),
        ("cursor_advanced", "previous_position", -1),
        ("cursor_advanced", "consumer_id", ""),
        ("cursor_reset", "position", -3),
        ("cursor_reset", "target_stream_id", "x" * 129),
        ("lock_acquired", "purpose", "write"),
        ("lock_acquired", "timeout_ms", 0),
        ("lock_acquired", "timeout_ms", 86_400_001),
        ("lock_acquired", "timeout_ms", "1000"),
        ("lock_acquired", "expires_at", "2026-03-01T12:00:01"),
        ("lock_acquired", "expires_at", "tomorrow"),
        ("lock_acquired", "file_path", ""),
        ("lock_acquired", "normalized_path", "x" * 4097),
        ("lock_acquired", "checksum", ""),
        ("lock_conflict", "holding_specialist", ""),
        ("lock_released", "reason", "timeout"),
        ("lock_timeout", "expired_at", "2026-03-01"),
    ],
)
def test_invalid_data_is_refused_naming_the_field(event_type, field, value):
    errors = errors_of(event_type, {**VALID[event_type], field: value})
    assert list(errors) == [field]
    assert errors[field]


def test_timeout_bounds_are_inclusive():
    for timeout_ms in (1, 86_400_000):
        load(lock.LockAcquired(), {**VALID["lock_acquired"], "timeout_ms": timeout_ms})


def test_schema_errors_use_the_application_error_message():
    with pytest.raises(ValidationError, match="invalid input: position: "):
        load(cursor.CursorAdvanced(), {**VALID["cursor_advanced"], "position": -1})


# What the domain records is what the schemas accept.


def data_of(event) -> dict:
    return {k: v for k, v in vars(event).items() if k not in ENVELOPE}


def recorded_events() -> list:
    mailbox = Mailbox.open_with("mb-1", "m1", "task", {"a": 1}, sender_id="s", thread_id="t")
    mailbox.send("m2", "note", {}, priority="urgent")
    mailbox.read("m1", "r")
    mailbox.ack("m1", "a", {"ok": True})
    mailbox.archive("m1", "x")
    mailbox.read("m2", "r")
    mailbox.requeue("m2", "again")
    by_advance = Cursor.open_advanced("c1", "s1", 3)
    by_advance.advance(5)
    by_advance.reset()
    by_reset = Cursor.open_reset("c2", "s1", 4)
    file_lock = FileLock.acquire_new("l1", "a//b/../c", "s1", T0, timeout_ms=10, checksum="h")
    file_lock.record_conflict("s2", T0)
    file_lock.acquire("l2", "a/c", "s2", T0 + timedelta(seconds=1))
    file_lock.release("l2", "s3", force=True)
    return [
        *mailbox.collect_events(),
        *by_advance.collect_events(),
        *by_reset.collect_events(),
        *file_lock.collect_events(),
    ]


def test_domain_events_validate_against_their_schemas():
    events = recorded_events()
    assert {e.event_type for e in events} == set(SCHEMAS)
    for event in events:
        data = data_of(event)
        loaded = load(SCHEMAS[event.event_type](), data)
        assert loaded == data, event.event_type


def test_domain_events_survive_storage_by_their_stable_topics():
    from eventsourcing.persistence import (
        DatetimeAsISO,
        DecimalAsStr,
        JSONTranscoder,
        Mapper,
        UUIDAsHex,
    )

    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    mapper = Mapper(transcoder=transcoder)
    events = recorded_events()
    stored = [mapper.to_stored_event(event) for event in events]
    assert all("." not in s.topic or s.topic.endswith(".again") for s in stored)
    decoded = [mapper.to_domain_event(s) for s in stored]
    assert [type(e) for e in decoded] == [type(e) for e in events]
    assert [data_of(e) for e in decoded] == [data_of(e) for e in events]
