"""One registry: public ``event_type`` <-> event classes <-> data schema.

The API validates with the same schema the store's events are checked against,
and a test fails when a catalogue type lacks a class or a schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from marshmallow import Schema

from application.event_schemas import EVENT_SCHEMAS
from application.event_schemas.base import load
from domain.aggregates import AGGREGATE_TYPES
from domain.base import SHARED_EVENTS, FleetAggregate, event_classes

_ENVELOPE = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "event_id",
        "correlation_id",
        "causation_id",
        "event_metadata",
    }
)


@dataclass(frozen=True)
class EventType:
    name: str
    classes: tuple[type[FleetAggregate.Event], ...]
    schema: type[Schema]

    def validate(self, data: Mapping[str, Any], partial: tuple[str, ...] = ()) -> dict[str, Any]:
        """Check event data; ``partial`` names required fields the domain fills in."""
        return load(_schema(self.schema, partial), data)


@cache
def _schema(schema: type[Schema], partial: tuple[str, ...]) -> Schema:
    """One instance per schema and ``partial``: building one costs more than the check
    (marshmallow 4 schemas keep no per-call state, so threads may share one)."""
    return schema(partial=partial)


def _collect() -> dict[str, list[type[FleetAggregate.Event]]]:
    found: dict[str, list[type[FleetAggregate.Event]]] = {}
    for aggregate_cls in AGGREGATE_TYPES:
        for cls in event_classes(aggregate_cls):
            found.setdefault(cls.event_type, []).append(cls)
    for cls in SHARED_EVENTS:
        found.setdefault(cls.event_type, []).append(cls)
    return found


@cache
def registry() -> dict[str, EventType]:
    classes = _collect()
    unmatched = sorted(set(classes) ^ set(EVENT_SCHEMAS))
    if unmatched:
        raise LookupError(f"event types without both a class and a schema: {', '.join(unmatched)}")
    return {
        name: EventType(name, tuple(classes[name]), EVENT_SCHEMAS[name]) for name in sorted(classes)
    }


def event_types() -> list[str]:
    return list(registry())


def get_event_type(name: str) -> EventType:
    return registry()[name]


def event_data(event: FleetAggregate.Event) -> dict[str, Any]:
    """The event's own data, without the envelope the library and Fleet add."""
    return {key: value for key, value in vars(event).items() if key not in _ENVELOPE}
