"""Aggregates and stored events as the plain dicts of the API contract."""

from __future__ import annotations

import copy
import functools
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Mapper

from application.registry import event_data
from application.store.query import IndexedEvent
from domain.base import FleetAggregate
from domain.checkpoint import Checkpoint
from domain.cursor import Cursor
from domain.lock import FileLock
from domain.mailbox import Mailbox
from domain.mission import Mission
from domain.sortie import SETTLED_STATUSES, SORTIE_STATUSES, Sortie
from domain.specialist import Specialist


def iso(value: datetime | None) -> str | None:
    """ISO-8601 with microseconds always present, so stored strings sort by time."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # every time the log stamps
        return _utc_iso(value)
    return value.isoformat(timespec="microseconds")


@functools.lru_cache(maxsize=4096)
def _utc_iso(value: datetime) -> str:
    """``iso`` of a UTC time, remembered: a row and its resource write the same few times
    several times over (a specialist's creation is its registration, its last change its
    last heartbeat: nine calls per row for two or three times), and a hit costs a tenth of
    formatting. Only UTC: times in other zones can be equal yet print differently."""
    return value.isoformat(timespec="microseconds")


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
    finished = sum(summary[status] for status in SETTLED_STATUSES)
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
        "estimate_minutes": sortie.estimate_minutes,
        "required_capabilities": list(sortie.required_capabilities),
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


def _iso_text(value: str | None) -> str | None:
    """A time a message record keeps as text, written like ``iso`` (microseconds always)."""
    return iso(datetime.fromisoformat(value)) if value is not None else None


def message_resource(mailbox: Mailbox, message_id: str) -> dict[str, Any]:
    """One message; ``version`` is its mailbox's, which is what If-Match guards."""
    message = mailbox.messages[message_id]
    return {
        "id": message_id,
        "mailbox_id": message["mailbox_id"],
        "sender_id": message["sender_id"],
        "thread_id": message["thread_id"],
        "message_type": message["message_type"],
        "content": copy.deepcopy(message["content"]),
        "priority": message["priority"],
        "status": message["status"],
        "sent_at": _iso_text(message["sent_at"]),
        "read_at": _iso_text(message["read_at"]),
        "acked_at": _iso_text(message["acked_at"]),
        "reader_id": message["reader_id"],
        "acker_id": message["acker_id"],
        "response": copy.deepcopy(message["response"]),
        "archived_by": message["archived_by"],
        "archived_at": _iso_text(message["archived_at"]),
        "requeue_count": message["requeue_count"],
        "requeue_reason": message["requeue_reason"],
        "stream_id": str(mailbox.id),
        "version": mailbox.version,
        "created_at": _iso_text(message["sent_at"]),
        "updated_at": _iso_text(message["updated_at"]),
    }


def cursor_resource(cursor: Cursor) -> dict[str, Any]:
    return {
        "id": str(cursor.id),
        "consumer_id": cursor.consumer_id,
        "target_stream_id": cursor.target_stream_id,
        "position": cursor.position,
        "previous_position": cursor.previous_position,
        "reset_count": cursor.reset_count,
        **common(cursor),
    }


def utc_text(value: datetime) -> str:
    """``iso`` in UTC: stored as text, such times compare correctly as strings."""
    return iso(value.astimezone(UTC)) or ""


def lock_resource(lock: FileLock) -> dict[str, Any]:
    """The path's current lock. ``created_at`` is when this lock was taken (the path's
    stream may be older); ``version`` is the path stream's, which If-Match guards."""
    return {
        "id": lock.lock_id,
        "file": lock.file_path,
        "normalized_path": lock.normalized_path,
        "reserved_by": lock.specialist_id,
        "reserved_at": iso(lock.reserved_at),
        "expires_at": iso(lock.expires_at),
        "timeout_ms": lock.timeout_ms,
        "purpose": lock.purpose,
        "checksum": lock.checksum,
        "status": lock.status,
        "released_at": iso(lock.released_at),
        "released_by": lock.released_by,
        **common(lock),
        "created_at": iso(lock.reserved_at),
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
