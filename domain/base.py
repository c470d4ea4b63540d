"""What every Fleet aggregate and event shares.

Each event class has a stable ``TOPIC`` (how it is stored) and a public
``event_type`` (how the API names it); both are written out by hand so that
moving or renaming code never orphans stored events. The envelope fields come
from the surrounding ``event_context`` (see ``domain.envelope``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from domain.envelope import (
    causation_from_context,
    correlation_from_context,
    metadata_from_context,
    new_id,
)
from domain.errors import TransitionError

# The priorities of missions and sorties, lowest first (claims take the highest first).
PRIORITIES = ("low", "medium", "high", "critical")


class Lifecycle:
    """A status machine: which status may follow which."""

    def __init__(self, kind: str, transitions: Mapping[str, Iterable[str]]):
        self.kind = kind
        self.transitions = {status: frozenset(nxt) for status, nxt in transitions.items()}

    @property
    def statuses(self) -> tuple[str, ...]:
        """Every status, in the order the transitions table lists them (the API's order)."""
        return tuple(self.transitions)

    @property
    def targets(self) -> tuple[str, ...]:
        """The statuses some transition leads to, in ``statuses`` order (a status only
        creation gives, such as a sortie's ``pending``, is not one)."""
        reachable = {target for nxt in self.transitions.values() for target in nxt}
        return tuple(status for status in self.transitions if status in reachable)

    @property
    def open_statuses(self) -> tuple[str, ...]:
        """The statuses that are not final, in ``statuses`` order."""
        return tuple(status for status in self.transitions if not self.is_final(status))

    def allowed(self, current: str) -> frozenset[str]:
        return self.transitions.get(current, frozenset())

    def is_final(self, status: str) -> bool:
        return not self.allowed(status)

    def check(self, current: str, target: str) -> None:
        if target not in self.allowed(current):
            raise TransitionError(self.kind, current, target, self.allowed(current))


class FleetAggregate(Aggregate):
    """Base aggregate: envelope-carrying events, restorable state."""

    STREAM_TYPE: ClassVar[str]
    DATETIME_FIELDS: ClassVar[frozenset[str]] = frozenset()

    class Event(Aggregate.Event):
        event_type: ClassVar[str]
        _: KW_ONLY
        event_id: str = field(default_factory=new_id)
        correlation_id: str = field(default_factory=correlation_from_context)
        causation_id: str | None = field(default_factory=causation_from_context)
        event_metadata: dict[str, Any] = field(default_factory=metadata_from_context)

    class Created(Event, Aggregate.Created):
        pass

    def __deepcopy__(self, memo: dict[int, Any]) -> FleetAggregate:
        """The copy the library's aggregate cache hands each command (it deep-copies, so a
        command that fails half-way leaves the cached one intact). Attributes are plain
        data: containers are copied all the way down, the rest (strings, numbers, times,
        ids, frozen events) are immutable and shared. ``copy.deepcopy``'s general walk
        (memo, ``__reduce_ex__``, a dispatch per value) was 4 % of a command's CPU."""
        clone = object.__new__(type(self))
        clone.__dict__.update({key: _plain_copy(value) for key, value in vars(self).items()})
        return clone

    def record_compaction(self, from_sequence: int, to_sequence: int) -> None:
        """Mark that events ``from_sequence..to_sequence`` are folded into a snapshot taken
        at the version this event gets (``snapshot_version``)."""
        self.trigger_event(
            ContextCompacted,
            from_sequence=from_sequence,
            to_sequence=to_sequence,
            snapshot_version=self.version + 1,
        )

    def state_dict(self) -> dict[str, Any]:
        """The aggregate's own attributes as JSON-ready data (checkpoints keep this)."""
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in vars(self).items()
            if not key.startswith("_")
        }

    def _restore(self, state: Mapping[str, Any]) -> None:
        # Copy: the aggregate must never share nested objects with an event's data.
        for key, value in copy.deepcopy(dict(state)).items():
            if key in self.DATETIME_FIELDS and isinstance(value, str):
                value = datetime.fromisoformat(value)
            setattr(self, key, value)


_SHARED = (str, int, float, bool, type(None), datetime, UUID, frozenset)


def _plain_copy(value: Any) -> Any:
    """A deep copy of plain data (``FleetAggregate.__deepcopy__``)."""
    if isinstance(value, _SHARED):
        return value
    if isinstance(value, dict):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain_copy(item) for item in value)
    if isinstance(value, set):
        return {_plain_copy(item) for item in value}
    return copy.deepcopy(value)


def _shared_event(cls: type[FleetAggregate.Event]) -> type[FleetAggregate.Event]:
    """Register an event class that several aggregate types record."""
    register_topic(cls.TOPIC, cls)  # type: ignore[attr-defined]
    return cls


@_shared_event
class FleetRecovered(FleetAggregate.Event):
    """A checkpoint restore put this stream back as it was at ``restored_version``."""

    TOPIC = "fleet_recovered"
    event_type = "fleet_recovered"
    checkpoint_id: str
    restored_version: int
    state: dict[str, Any]

    def apply(self, aggregate: FleetAggregate) -> None:
        aggregate._restore(self.state)


@_shared_event
class ContextCompacted(FleetAggregate.Event):
    """The stream was snapshotted; history stays in the log."""

    TOPIC = "context_compacted"
    event_type = "context_compacted"
    from_sequence: int
    to_sequence: int
    snapshot_version: int


SHARED_EVENTS: tuple[type[FleetAggregate.Event], ...] = (FleetRecovered, ContextCompacted)


def event_classes(aggregate_cls: type[FleetAggregate]) -> list[type[FleetAggregate.Event]]:
    """The event classes an aggregate defines itself (not the shared ones)."""
    return [
        value
        for name, value in vars(aggregate_cls).items()
        if isinstance(value, type)
        and issubclass(value, FleetAggregate.Event)
        and name != "Event"
        and getattr(value, "event_type", None)
    ]
