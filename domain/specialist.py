"""Specialists: the agents of a fleet, their registration, heartbeats and end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import FleetAggregate, Lifecycle

LIVE = ("active", "busy", "idle")
HEARTBEAT_STATUSES = LIVE
# Why a specialist became inactive (``specialist_inactive``) or ended (``specialist_completed``).
INACTIVE_REASONS = ("heartbeat_timeout", "deregistered")
COMPLETION_REASONS = ("success", "cancelled", "timeout")

LIFECYCLE = Lifecycle(
    "specialist",
    {
        "active": {*LIVE, "inactive", "completed", "failed"},
        "busy": {*LIVE, "inactive", "completed", "failed"},
        "idle": {*LIVE, "inactive", "completed", "failed"},
        "inactive": {*LIVE, "completed", "failed"},
        "completed": set(),
        "failed": set(),
    },
)
SPECIALIST_STATUSES = LIFECYCLE.statuses

# Words no specialist id may be: ``register`` names the registration route beside
# ``/specialists/{id}``, so a specialist called so could never be read over HTTP.
RESERVED_IDS = ("register",)


def specialist_stream_id(specialist_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"fleet:/specialists/{specialist_id}")


@dataclass(frozen=True, kw_only=True)
class Registration:
    """The data of specialist_registered, shared by its stream-starting and later classes."""

    specialist_id: str
    name: str
    capabilities: list[str]
    metadata: dict[str, Any]


class Specialist(FleetAggregate):
    TOPIC = "specialist"
    STREAM_TYPE = "specialist"
    DATETIME_FIELDS = frozenset({"registered_at", "last_seen"})

    if TYPE_CHECKING:  # for the type checker only: real annotations would make fields
        specialist_id: str
        name: str
        capabilities: list[str]
        metadata: dict[str, Any]
        status: str
        current_sortie: str | None
        metrics: dict[str, Any]
        spawned_by: str | None
        spawn: dict[str, Any]
        registered_at: datetime
        last_seen: datetime
        inactive_reason: str | None
        outcome: dict[str, Any] | None

    @staticmethod
    def create_id(specialist_id: str) -> UUID:
        return specialist_stream_id(specialist_id)

    class Created(Registration, FleetAggregate.Created):
        """Registration starts the stream."""

        TOPIC = "specialist_registered"
        event_type = "specialist_registered"

        def apply(self, aggregate: Specialist) -> None:
            aggregate.specialist_id = self.specialist_id
            aggregate.spawned_by = None
            aggregate.current_sortie = None
            aggregate.metrics = {}
            aggregate._register(self)

    class Reregistered(Registration, FleetAggregate.Event):
        """A known specialist registered again: same public type, not a stream start."""

        TOPIC = "specialist_registered.again"
        event_type = "specialist_registered"

        def apply(self, aggregate: Specialist) -> None:
            aggregate._register(self)

    class Spawned(FleetAggregate.Event):
        TOPIC = "specialist_spawned"
        event_type = "specialist_spawned"
        specialist_id: str
        name: str
        spawned_by: str
        mission_id: str | None = None
        sortie_id: str | None = None
        config: dict[str, Any] | None = None

        def apply(self, aggregate: Specialist) -> None:
            aggregate.spawned_by = self.spawned_by
            aggregate.spawn = {
                "mission_id": self.mission_id,
                "sortie_id": self.sortie_id,
                "config": self.config,
            }

    class Active(FleetAggregate.Event):
        """A heartbeat: the specialist is alive, with its current status."""

        TOPIC = "specialist_active"
        event_type = "specialist_active"
        status: str
        current_sortie: str | None = None
        metrics: dict[str, Any] | None = None
        metadata: dict[str, Any] | None = None

        def apply(self, aggregate: Specialist) -> None:
            aggregate.status = self.status
            aggregate.last_seen = self.timestamp
            if self.current_sortie is not None:
                aggregate.current_sortie = self.current_sortie
            if self.metrics is not None:
                aggregate.metrics = self.metrics
            if self.metadata is not None:
                aggregate.metadata = {**aggregate.metadata, **self.metadata}

    class Inactive(FleetAggregate.Event):
        TOPIC = "specialist_inactive"
        event_type = "specialist_inactive"
        reason: str
        last_seen: datetime

        def apply(self, aggregate: Specialist) -> None:
            aggregate.status = "inactive"
            aggregate.inactive_reason = self.reason

    class Completed(FleetAggregate.Event):
        TOPIC = "specialist_completed"
        event_type = "specialist_completed"
        reason: str
        summary: str | None = None
        final_checkpoint_id: str | None = None

        def apply(self, aggregate: Specialist) -> None:
            aggregate.status = "completed"
            aggregate.outcome = {
                "reason": self.reason,
                "summary": self.summary,
                "final_checkpoint_id": self.final_checkpoint_id,
            }

    class Failed(FleetAggregate.Event):
        TOPIC = "specialist_failed"
        event_type = "specialist_failed"
        error: str
        details: dict[str, Any] | None = None

        def apply(self, aggregate: Specialist) -> None:
            aggregate.status = "failed"
            aggregate.outcome = {"error": self.error, "details": self.details}

    LIFECYCLE: ClassVar[Lifecycle] = LIFECYCLE

    def _register(self, event: Created | Reregistered) -> None:
        self.name = event.name
        self.capabilities = list(event.capabilities)
        self.metadata = dict(event.metadata)
        self.status = "active"
        self.registered_at = event.timestamp
        self.last_seen = event.timestamp
        self.inactive_reason = None
        self.outcome = None

    # Commands: check the rule, then record the event.

    @classmethod
    def register(
        cls,
        specialist_id: str,
        name: str,
        capabilities: list[str],
        metadata: dict[str, Any],
    ) -> Specialist:
        return cls._create(
            cls.Created,
            specialist_id=specialist_id,
            name=name,
            capabilities=capabilities,
            metadata=metadata,
        )

    def reregister(self, name: str, capabilities: list[str], metadata: dict[str, Any]) -> None:
        self.trigger_event(
            self.Reregistered,
            specialist_id=self.specialist_id,
            name=name,
            capabilities=capabilities,
            metadata=metadata,
        )

    def record_spawn(
        self,
        spawned_by: str,
        mission_id: str | None = None,
        sortie_id: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.trigger_event(
            self.Spawned,
            specialist_id=self.specialist_id,
            name=self.name,
            spawned_by=spawned_by,
            mission_id=mission_id,
            sortie_id=sortie_id,
            config=config,
        )

    def heartbeat(
        self,
        status: str = "active",
        current_sortie: str | None = None,
        metrics: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.LIFECYCLE.check(self.status, status)
        self.trigger_event(
            self.Active,
            status=status,
            current_sortie=current_sortie,
            metrics=metrics,
            metadata=metadata,
        )

    def mark_inactive(self, reason: str) -> None:
        self.LIFECYCLE.check(self.status, "inactive")
        self.trigger_event(self.Inactive, reason=reason, last_seen=self.last_seen)

    def is_silent_since(self, cutoff: datetime) -> bool:
        """True when a live specialist has not been heard from since ``cutoff``."""
        return self.status in LIVE and self.last_seen < cutoff

    def complete(
        self,
        reason: str,
        summary: str | None = None,
        final_checkpoint_id: str | None = None,
    ) -> None:
        self.LIFECYCLE.check(self.status, "completed")
        self.trigger_event(
            self.Completed,
            reason=reason,
            summary=summary,
            final_checkpoint_id=final_checkpoint_id,
        )

    def fail(self, error: str, details: dict[str, Any] | None = None) -> None:
        self.LIFECYCLE.check(self.status, "failed")
        self.trigger_event(self.Failed, error=error, details=details)
