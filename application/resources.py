"""Aggregates and stored events as the plain dicts of the API contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.persistence import Mapper

from application.registry import event_data
from application.store.query import IndexedEvent
from domain.base import FleetAggregate
from domain.checkpoint import Checkpoint
from domain.mission import Mission
from domain.sortie import Sortie
from domain.specialist import Specialist

SORTIE_STATUSES = (
    "pending",
    "assigned",
    "in_progress",
    "blocked",
    "review",
    "completed",
    "failed",
    "cancelled",
)


def iso(value: datetime | None) -> str | None:
    """ISO-8601 with microseconds always present, so stored strings sort by time."""
    return value.isoformat(timespec="microseconds") if value is not None else None


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


def progress_summary(counts: dict[str, int]) -> dict[str, int]:
    """Sortie counts per status; ``percent`` is the share completed or cancelled."""
    summary = {status: int(counts.get(status, 0)) for status in SORTIE_STATUSES}
    total = sum(summary.values())
    finished = summary["completed"] + summary["cancelled"]
    return {"total": total, **summary, "percent": (100 * finished) // total if total else 0}


def mission_resource(mission: Mission, progress: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": str(mission.id),
        "title": mission.title,
        "description": mission.description,
        "goals": list(mission.goals),
        "priority": mission.priority,
        "metadata": dict(mission.metadata),
        "status": mission.status,
        "result": mission.result,
        "reason": mission.reason,
        "progress": progress if progress is not None else progress_summary({}),
        "started_at": iso(mission.started_at),
        "completed_at": iso(mission.completed_at),
        **common(mission),
    }


def sortie_resource(sortie: Sortie, blocked_by: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": str(sortie.id),
        "mission_id": sortie.mission_id,
        "title": sortie.title,
        "description": sortie.description,
        "priority": sortie.priority,
        "metadata": dict(sortie.metadata),
        "status": sortie.status,
        "dependencies": list(sortie.dependencies),
        "blocked_by": list(blocked_by or []),
        "assigned_to": sortie.assigned_to,
        "progress": sortie.progress,
        "status_message": sortie.status_message,
        "result": sortie.result,
        "error": sortie.error,
        "blocker": sortie.blocker,
        "review": sortie.review,
        "started_at": iso(sortie.started_at),
        "completed_at": iso(sortie.completed_at),
        **common(sortie),
    }


def checkpoint_resource(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "id": str(checkpoint.id),
        "target_stream_id": checkpoint.target_stream_id,
        "target_version": checkpoint.target_version,
        "position": checkpoint.position,
        "description": checkpoint.description,
        "state": checkpoint.state,
        "restored_count": checkpoint.restored_count,
        "last_restored_at": iso(checkpoint.last_restored_at),
        **common(checkpoint),
    }


def event_resource(mapper: Mapper[Any], indexed: IndexedEvent) -> dict[str, Any]:
    notification = indexed.notification
    event: Any = mapper.to_domain_event(notification)
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
