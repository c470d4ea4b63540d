"""Filters over the event index, shared by both backends' recorders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from eventsourcing.persistence import Notification

EVENT_INDEX_TABLE = "fleet_event_index"


@dataclass(frozen=True)
class EventFilter:
    """Which events to list: each given criterion narrows the result."""

    types: Sequence[str] = ()
    stream_id: str | None = None
    correlation_id: str | None = None
    after: int | None = None
    position: int | None = None
    from_sequence: int | None = None
    to_sequence: int | None = None

    @property
    def needs_join(self) -> bool:
        """Sequence bounds live on the events table, not the index."""
        return self.from_sequence is not None or self.to_sequence is not None

    def where(self, placeholder: str) -> tuple[str, list[object]]:
        """A WHERE clause over the index (alias ``i``) built from fixed fragments."""
        clauses: list[str] = []
        params: list[object] = []
        if self.types:
            clauses.append(f"i.event_type IN ({', '.join([placeholder] * len(self.types))})")
            params.extend(self.types)
        if self.stream_id is not None:
            clauses.append(f"i.stream_id = {placeholder}")
            params.append(self.stream_id)
        if self.correlation_id is not None:
            clauses.append(f"i.correlation_id = {placeholder}")
            params.append(self.correlation_id)
        if self.after is not None:
            clauses.append(f"i.position > {placeholder}")
            params.append(self.after)
        if self.position is not None:
            clauses.append(f"i.position = {placeholder}")
            params.append(self.position)
        if self.from_sequence is not None:
            clauses.append(f"e.originator_version >= {placeholder}")
            params.append(self.from_sequence)
        if self.to_sequence is not None:
            clauses.append(f"e.originator_version <= {placeholder}")
            params.append(self.to_sequence)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


@dataclass(frozen=True)
class IndexedEvent:
    """A stored event with its global position and the index's columns."""

    notification: Notification
    event_type: str
    stream_type: str
    correlation_id: str


@dataclass
class EventPage:
    events: list[IndexedEvent] = field(default_factory=list)
    total: int = 0


@dataclass(frozen=True)
class IndexRow:
    """What the recorder writes to the event index for one stored event."""

    event_type: str
    stream_type: str
    correlation_id: str
