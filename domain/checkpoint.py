"""Checkpoints: saved states of a mission (or the whole fleet) that can be restored.

A checkpoint stream records its creation and every restore. The fleet stream
(one per deployment) records each checkpoint taken, so operators can see when
and why the fleet was checkpointed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import FleetAggregate
from domain.errors import RuleError

FLEET_LOG_ID = uuid5(NAMESPACE_URL, "fleet:/fleet")
FLEET_TARGET = "fleet"
CHECKPOINT_TRIGGERS = ("manual", "scheduled", "progress", "shutdown")


def _check_non_negative(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RuleError(f"{name} must be an integer >= 0")


class Checkpoint(FleetAggregate):
    TOPIC = "checkpoint"
    STREAM_TYPE = "checkpoint"
    DATETIME_FIELDS = frozenset({"last_restored_at"})

    if TYPE_CHECKING:  # for the type checker only: real annotations would make fields
        target_stream_id: str
        target_version: int
        position: int
        description: str | None
        state: dict[str, Any]
        restored_count: int
        last_restored_at: datetime | None
        last_restored_streams: list[str]
        last_restored_position: int | None

    class Created(FleetAggregate.Created):
        TOPIC = "checkpoint_created"
        event_type = "checkpoint_created"
        target_stream_id: str
        target_version: int
        position: int
        state: dict[str, Any]
        description: str | None = None

        def apply(self, aggregate: Checkpoint) -> None:
            aggregate.target_stream_id = self.target_stream_id
            aggregate.target_version = self.target_version
            aggregate.position = self.position
            aggregate.description = self.description
            aggregate.state = dict(self.state)
            aggregate.restored_count = 0
            aggregate.last_restored_at = None
            aggregate.last_restored_streams = []
            aggregate.last_restored_position = None

    class Restored(FleetAggregate.Event):
        TOPIC = "checkpoint_restored"
        event_type = "checkpoint_restored"
        restored_streams: list[str]
        position: int

        def apply(self, aggregate: Checkpoint) -> None:
            aggregate.restored_count += 1
            aggregate.last_restored_at = self.timestamp
            aggregate.last_restored_streams = list(self.restored_streams)
            aggregate.last_restored_position = self.position

    @property
    def is_fleet(self) -> bool:
        return self.target_stream_id == FLEET_TARGET

    @classmethod
    def create(
        cls,
        target_stream_id: str,
        target_version: int,
        position: int,
        state: Mapping[str, Any],
        description: str | None = None,
    ) -> Checkpoint:
        if not target_stream_id:
            raise RuleError("a checkpoint needs a target stream")
        _check_non_negative(target_version=target_version, position=position)
        return cls._create(
            cls.Created,
            target_stream_id=target_stream_id,
            target_version=target_version,
            position=position,
            state=dict(state),
            description=description,
        )

    def record_restore(self, restored_streams: Sequence[str], position: int) -> None:
        """Note a restore; the restored streams record their own ``fleet_recovered``."""
        _check_non_negative(position=position)
        self.trigger_event(
            self.Restored, restored_streams=[str(s) for s in restored_streams], position=position
        )


@dataclass(frozen=True, kw_only=True)
class FleetCheckpointed:
    """The data of fleet_checkpointed, shared by its stream-starting and later classes."""

    checkpoint_id: str
    trigger: str
    streams: int
    position: int


class FleetLog(FleetAggregate):
    """The fleet stream; its first ``fleet_checkpointed`` starts it (there is no other start)."""

    TOPIC = "fleet"
    STREAM_TYPE = "fleet"
    DATETIME_FIELDS = frozenset({"last_checkpoint_at"})

    if TYPE_CHECKING:  # for the type checker only: real annotations would make fields
        checkpoint_count: int
        last_checkpoint_id: str
        last_trigger: str
        last_streams: int
        last_position: int
        last_checkpoint_at: datetime

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return FLEET_LOG_ID

    class Created(FleetCheckpointed, FleetAggregate.Created):
        TOPIC = "fleet_checkpointed"
        event_type = "fleet_checkpointed"

        def apply(self, aggregate: FleetLog) -> None:
            aggregate.checkpoint_count = 0
            aggregate._record(self)

    class Checkpointed(FleetCheckpointed, FleetAggregate.Event):
        """A later checkpoint: same public type, not a stream start."""

        TOPIC = "fleet_checkpointed.again"
        event_type = "fleet_checkpointed"

        def apply(self, aggregate: FleetLog) -> None:
            aggregate._record(self)

    def _record(self, event: Created | Checkpointed) -> None:
        self.checkpoint_count += 1
        self.last_checkpoint_id = event.checkpoint_id
        self.last_trigger = event.trigger
        self.last_streams = event.streams
        self.last_position = event.position
        self.last_checkpoint_at = event.timestamp

    @staticmethod
    def _check(trigger: str, streams: int, position: int) -> None:
        if trigger not in CHECKPOINT_TRIGGERS:
            raise RuleError(f"trigger must be one of: {', '.join(CHECKPOINT_TRIGGERS)}")
        _check_non_negative(streams=streams, position=position)

    @classmethod
    def first(cls, checkpoint_id: str, trigger: str, streams: int, position: int) -> FleetLog:
        """Start the fleet stream with its first checkpoint."""
        cls._check(trigger, streams, position)
        return cls._create(
            cls.Created,
            id=FLEET_LOG_ID,
            checkpoint_id=checkpoint_id,
            trigger=trigger,
            streams=streams,
            position=position,
        )

    def record_checkpoint(
        self, checkpoint_id: str, trigger: str, streams: int, position: int
    ) -> None:
        self._check(trigger, streams, position)
        self.trigger_event(
            self.Checkpointed,
            checkpoint_id=checkpoint_id,
            trigger=trigger,
            streams=streams,
            position=position,
        )
