"""The registry ties every catalogue event type to its classes and its schema."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic, resolve_topic

from application.registry import event_types, get_event_type, registry
from domain.aggregates import AGGREGATE_TYPES

# The 40 public event types of the customer's event catalogue, which Fleet was built to.
CATALOGUE = {
    "specialist_registered", "specialist_spawned", "specialist_active", "specialist_inactive",
    "specialist_completed", "specialist_failed",
    "mission_created", "mission_updated", "mission_started", "mission_completed",
    "mission_failed", "mission_cancelled",
    "sortie_created", "sortie_updated", "sortie_assigned", "sortie_started", "sortie_progress",
    "sortie_blocked", "sortie_unblocked", "sortie_completed", "sortie_failed", "sortie_cancelled",
    "review_started", "review_completed",
    "squawk_sent", "squawk_read", "squawk_acked", "squawk_archived", "squawk_requeued",
    "cursor_advanced", "cursor_reset",
    "lock_acquired", "lock_conflict", "lock_released", "lock_timeout",
    "checkpoint_created", "checkpoint_restored", "fleet_checkpointed", "fleet_recovered",
    "context_compacted",
}  # fmt: skip
# Types added after the catalogue was written (the agent work loop); the catalogue file
# may not list them yet.
BEYOND_CATALOGUE = {"sortie_released"}
SHARED_CATALOGUE = Path(__file__).resolve().parents[3] / "shared" / "event-catalogue.md"
ENVELOPE = {
    "originator_id",
    "originator_version",
    "originator_topic",
    "timestamp",
    "event_id",
    "correlation_id",
    "causation_id",
    "event_metadata",
}


def test_every_catalogue_type_has_classes_and_a_schema() -> None:
    assert len(CATALOGUE) == 40
    assert set(event_types()) == CATALOGUE | BEYOND_CATALOGUE


def test_the_list_matches_the_catalogue_file_when_it_is_beside_the_project() -> None:
    if not SHARED_CATALOGUE.exists():
        pytest.skip("shared/event-catalogue.md is not beside this checkout")
    named = set(re.findall(r"^\| `([a-z_]+)` \|", SHARED_CATALOGUE.read_text(), flags=re.M))
    assert named - BEYOND_CATALOGUE == CATALOGUE


@pytest.mark.parametrize("name", sorted(CATALOGUE | BEYOND_CATALOGUE))
def test_each_class_has_a_stable_topic_and_the_schema_fields(name: str) -> None:
    entry = get_event_type(name)
    schema_fields = set(entry.schema().fields)
    for cls in entry.classes:
        topic = cls.__dict__.get("TOPIC") or cls.TOPIC  # type: ignore[attr-defined]
        assert ":" not in topic, "topics are explicit names, not module paths"
        assert get_topic(cls) == topic and resolve_topic(topic) is cls
        data_fields = {f.name for f in dataclasses.fields(cls)} - ENVELOPE
        assert data_fields == schema_fields, f"{cls.__qualname__} and its schema disagree"


def test_topics_are_unique_across_classes() -> None:
    topics = [get_topic(cls) for entry in registry().values() for cls in entry.classes]
    assert len(topics) == len(set(topics))


def test_every_aggregate_has_a_stable_topic_and_stream_type() -> None:
    for aggregate in AGGREGATE_TYPES:
        assert get_topic(aggregate) == aggregate.__dict__["TOPIC"]
        assert aggregate.STREAM_TYPE
