"""Aggregates and stored events as the plain dicts of the API contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.persistence import Mapper

from application.registry import event_data
from application.store.query import IndexedEvent
from domain.base import FleetAggregate
from domain.specialist import Specialist


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def common(aggregate: FleetAggregate) -> dict[str, Any]:
    return {
        "stream_id": str(aggregate.id),
        "version": aggregate.version,
        "created_at": iso(aggregate.created_on),
        "updated_at": iso(aggregate.modified_on),
    }


def specialist_resource(specialist: Specialist) -> dict[str, Any]:
    return {
        "id": specialist.specialist_id,
        "name": specialist.name,
        "status": specialist.status,
        "capabilities": list(specialist.capabilities),
        "metadata": dict(specialist.metadata),
        "current_sortie": specialist.current_sortie,
        "spawned_by": specialist.spawned_by,
        "registered_at": iso(specialist.registered_at),
        "last_seen": iso(specialist.last_seen),
        **common(specialist),
    }


def event_resource(mapper: Mapper[Any], indexed: IndexedEvent) -> dict[str, Any]:
    notification = indexed.notification
    event = mapper.to_domain_event(notification)
    return {
        "id": notification.id,
        "event_id": event.event_id,
        "event_type": indexed.event_type,
        "stream_id": str(event.originator_id),
        "stream_type": indexed.stream_type,
        "sequence_number": event.originator_version,
        "causation_id": event.causation_id,
        "correlation_id": event.correlation_id,
        "data": jsonable(event_data(event)),
        "metadata": dict(event.event_metadata),
        "schema_version": getattr(type(event), "class_version", 1),
        "created_at": iso(event.timestamp),
    }
