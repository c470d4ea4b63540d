"""Missions: a goal the fleet works towards, carried out as sorties."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from domain.base import PRIORITIES, FleetAggregate, Lifecycle
from domain.errors import RuleError

# The fields an update may change, in the order an update's ``changes`` lists them.
CHANGEABLE_FIELDS = ("title", "description", "goals", "priority", "metadata")
CHANGEABLE = frozenset(CHANGEABLE_FIELDS)

LIFECYCLE = Lifecycle(
    "mission",
    {
        "pending": {"in_progress", "cancelled"},
        "in_progress": {"completed", "failed", "cancelled"},
        "completed": set(),
        "failed": set(),
        "cancelled": set(),
    },
)
MISSION_STATUSES = LIFECYCLE.statuses
OPEN_MISSION_STATUSES = LIFECYCLE.open_statuses  # pending, in_progress

# The field a PATCH moving a mission to a status cannot do without, and what a 422 says.
TRANSITION_REQUIRES = {"failed": ("reason", "required to fail a mission")}


def patch_field_errors(status: str | None, names: Collection[str]) -> dict[str, str]:
    """The field a PATCH's ``status`` needs when the PATCH lacks it (web schema and service
    both ask, so a 422 names it beside every other invalid field)."""
    if status in TRANSITION_REQUIRES and TRANSITION_REQUIRES[status][0] not in names:
        return {TRANSITION_REQUIRES[status][0]: TRANSITION_REQUIRES[status][1]}
    return {}


def _check_priority(priority: str) -> None:
    if priority not in PRIORITIES:
        raise RuleError(f"priority must be one of: {', '.join(PRIORITIES)}")


class Mission(FleetAggregate):
    TOPIC = "mission"
    STREAM_TYPE = "mission"
    DATETIME_FIELDS = frozenset({"started_at", "completed_at"})

    if TYPE_CHECKING:  # for the type checker only: real annotations would make fields
        title: str
        description: str | None
        goals: list[str]
        priority: str
        metadata: dict[str, Any]
        status: str
        result: dict[str, Any] | None
        reason: str | None
        started_at: datetime | None
        completed_at: datetime | None

    class Created(FleetAggregate.Created):
        TOPIC = "mission_created"
        event_type = "mission_created"
        title: str
        goals: list[str]
        priority: str
        metadata: dict[str, Any]
        description: str | None = None

        def apply(self, aggregate: Mission) -> None:
            aggregate.title = self.title
            aggregate.description = self.description
            aggregate.goals = list(self.goals)
            aggregate.priority = self.priority
            aggregate.metadata = dict(self.metadata)
            aggregate.status = "pending"
            aggregate.result = None
            aggregate.reason = None
            aggregate.started_at = None
            aggregate.completed_at = None

    class Updated(FleetAggregate.Event):
        TOPIC = "mission_updated"
        event_type = "mission_updated"
        changes: dict[str, Any]

        def apply(self, aggregate: Mission) -> None:
            for key in sorted(CHANGEABLE & set(self.changes)):
                value = self.changes[key]
                if isinstance(value, list | dict):
                    value = type(value)(value)
                setattr(aggregate, key, value)

    class Started(FleetAggregate.Event):
        TOPIC = "mission_started"
        event_type = "mission_started"
        started_at: datetime

        def apply(self, aggregate: Mission) -> None:
            aggregate.status = "in_progress"
            aggregate.started_at = self.started_at

    class Completed(FleetAggregate.Event):
        TOPIC = "mission_completed"
        event_type = "mission_completed"
        result: dict[str, Any]
        sorties_completed: int
        sorties_failed: int
        duration_ms: int

        def apply(self, aggregate: Mission) -> None:
            aggregate.status = "completed"
            aggregate.result = dict(self.result)
            aggregate.completed_at = self.timestamp

    class Failed(FleetAggregate.Event):
        TOPIC = "mission_failed"
        event_type = "mission_failed"
        reason: str
        result: dict[str, Any] | None = None

        def apply(self, aggregate: Mission) -> None:
            aggregate.status = "failed"
            aggregate.reason = self.reason
            aggregate.result = None if self.result is None else dict(self.result)
            aggregate.completed_at = self.timestamp

    class Cancelled(FleetAggregate.Event):
        TOPIC = "mission_cancelled"
        event_type = "mission_cancelled"
        reason: str | None = None

        def apply(self, aggregate: Mission) -> None:
            aggregate.status = "cancelled"
            aggregate.reason = self.reason
            aggregate.completed_at = self.timestamp

    LIFECYCLE: ClassVar[Lifecycle] = LIFECYCLE

    @property
    def is_final(self) -> bool:
        return LIFECYCLE.is_final(self.status)

    def duration_ms_since_start(self, now: datetime) -> int:
        """Milliseconds from ``started_at`` to ``now`` (0 if never started)."""
        if self.started_at is None:
            return 0
        return max(0, int((now - self.started_at).total_seconds() * 1000))

    # Commands: check the rule, then record the event.

    @classmethod
    def create(
        cls,
        title: str,
        description: str | None = None,
        goals: Sequence[str] = (),
        priority: str = "medium",
        metadata: Mapping[str, Any] | None = None,
    ) -> Mission:
        _check_priority(priority)
        return cls._create(
            cls.Created,
            title=title,
            description=description,
            goals=list(goals),
            priority=priority,
            metadata=dict(metadata or {}),
        )

    def update(self, changes: Mapping[str, Any]) -> None:
        if self.is_final:
            raise RuleError(f"mission is {self.status}; a final mission cannot be changed")
        if not changes:
            raise RuleError("no changes given")
        unknown = sorted(set(changes) - CHANGEABLE)
        if unknown:
            raise RuleError(f"mission fields that cannot be changed: {', '.join(unknown)}")
        if "priority" in changes:
            _check_priority(changes["priority"])
        self.trigger_event(self.Updated, changes=dict(changes))

    def start(self) -> None:
        LIFECYCLE.check(self.status, "in_progress")
        now = self.Started.create_timestamp()
        self.trigger_event(self.Started, started_at=now, timestamp=now)

    def complete(
        self,
        result: Mapping[str, Any] | None,
        sorties_completed: int,
        sorties_failed: int,
        duration_ms: int,
        unfinished_sorties: Sequence[str],
    ) -> None:
        """``unfinished_sorties``: ids of the mission's sorties neither completed nor cancelled."""
        LIFECYCLE.check(self.status, "completed")
        if unfinished_sorties:
            raise RuleError(
                "mission cannot complete: sorties not completed or cancelled: "
                + ", ".join(str(s) for s in unfinished_sorties)
            )
        self.trigger_event(
            self.Completed,
            result=dict(result or {}),
            sorties_completed=sorties_completed,
            sorties_failed=sorties_failed,
            duration_ms=duration_ms,
        )

    def fail(self, reason: str, result: Mapping[str, Any] | None = None) -> None:
        LIFECYCLE.check(self.status, "failed")
        if not reason:
            raise RuleError("a failed mission needs a reason")
        self.trigger_event(
            self.Failed, reason=reason, result=None if result is None else dict(result)
        )

    def cancel(self, reason: str | None = None) -> None:
        LIFECYCLE.check(self.status, "cancelled")
        self.trigger_event(self.Cancelled, reason=reason)
