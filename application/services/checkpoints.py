"""Checkpoints: capture a mission (or every open mission) and restore it by appending events."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from application.errors import NotFound, ValidationError
from application.idempotency import idempotent
from application.outcomes import Written
from application.registry import get_event_type
from application.resources import checkpoint_resource
from application.services.base import Foundation, Service, given
from application.services.lists import ListService
from domain.base import FleetAggregate, FleetRecovered
from domain.checkpoint import FLEET_LOG_ID, FLEET_TARGET, Checkpoint, FleetLog
from domain.envelope import caused_by
from domain.mission import OPEN_MISSION_STATUSES, Mission
from domain.sortie import Sortie


def _entry(aggregate: FleetAggregate) -> dict[str, Any]:
    return {
        "stream_id": str(aggregate.id),
        "stream_type": aggregate.STREAM_TYPE,
        "version": aggregate.version,
        "state": aggregate.state_dict(),
    }


class CheckpointService(Service):
    def __init__(self, foundation: Foundation, lists: ListService) -> None:
        super().__init__(foundation)
        self.lists = lists

    @idempotent
    def create_checkpoint(
        self,
        stream_id: str,
        description: str | None = None,
        trigger: str = "manual",
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        """Checkpoint one stream (a mission with its sorties) or ``"fleet"``."""
        get_event_type("checkpoint_created").validate(
            given(target_stream_id=stream_id, description=description),
            partial=("target_version", "position", "state"),
        )
        holder: list[Checkpoint] = []

        def decide() -> list[FleetAggregate]:
            position = self._head()
            streams, target_version = self._capture(stream_id)
            checkpoint = Checkpoint.create(
                target_stream_id=stream_id,
                target_version=target_version,
                position=position,
                state={"streams": [_entry(a) for a in streams]},
                description=description,
            )
            with caused_by(cast(FleetAggregate.Event, checkpoint.pending_events[0])):
                log = self._fleet_log()
                args = (str(checkpoint.id), trigger, len(streams), position)
                if log is None:
                    log = FleetLog.first(*args)
                else:
                    log.record_checkpoint(*args)
            holder[:] = [checkpoint]
            return [checkpoint, log]

        result = self._command(decide, lambda: checkpoint_resource(holder[0]))
        return result

    def get_checkpoint(self, checkpoint_id: str) -> dict[str, Any]:
        return checkpoint_resource(self._checkpoint(checkpoint_id))

    @idempotent
    def restore_checkpoint(
        self,
        checkpoint_id: str,
        confirm: bool = False,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        """Append ``fleet_recovered`` to every captured stream; cancel sorties added since."""
        if confirm is not True:
            raise ValidationError({"confirm": ["must be true to restore a checkpoint"]})
        holder: list[Checkpoint] = []

        def decide() -> list[FleetAggregate]:
            checkpoint = self._checkpoint(checkpoint_id)
            self.check_version(checkpoint, expected_version)
            entries = checkpoint.state.get("streams", [])
            checkpoint.record_restore([e["stream_id"] for e in entries], checkpoint.position)
            changed: list[FleetAggregate] = [checkpoint]
            with caused_by(cast(FleetAggregate.Event, checkpoint.pending_events[-1])):
                for entry in entries:
                    aggregate = self.app.get(UUID(entry["stream_id"]))
                    aggregate.trigger_event(
                        FleetRecovered,
                        checkpoint_id=str(checkpoint.id),
                        restored_version=entry["version"],
                        state=entry["state"],
                    )
                    changed.append(aggregate)
                changed += self._cancel_newcomers(entries)
            holder[:] = [checkpoint]
            return changed

        result = self._command(
            decide, lambda: checkpoint_resource(holder[0]), expected_version=expected_version
        )
        return result

    # Capture and restore helpers

    def _capture(self, stream_id: str) -> tuple[list[FleetAggregate], int]:
        if stream_id == FLEET_TARGET:
            log = self._fleet_log()
            missions, _ = self.list_missions_open()
            streams: list[FleetAggregate] = []
            for mission_id in missions:
                streams += self._mission_with_sorties(self.app.get(UUID(mission_id)))
            return streams, log.version if log else 0
        try:
            aggregate = self.app.get(UUID(stream_id))
        except (ValueError, AggregateNotFoundError):
            raise ValidationError({"stream_id": [f"stream {stream_id!r} does not exist"]}) from None
        if isinstance(aggregate, Mission):
            return self._mission_with_sorties(aggregate), aggregate.version
        return [aggregate], aggregate.version

    def list_missions_open(self) -> tuple[list[str], int]:
        """Ids of every mission not yet final."""
        ids: list[str] = []
        for status in OPEN_MISSION_STATUSES:
            offset = 0
            while True:
                page, total = self.lists.list_missions(status=status, limit=1000, offset=offset)
                ids += [m["id"] for m in page]
                offset += len(page)
                if offset >= total or not page:
                    break
        return ids, len(ids)

    def _mission_with_sorties(self, mission: Mission) -> list[FleetAggregate]:
        rows = self.lists.mission_sortie_rows(str(mission.id))
        return [mission, *(self.app.get(UUID(row["id"])) for row in rows)]

    def _cancel_newcomers(self, entries: list[dict[str, Any]]) -> list[FleetAggregate]:
        captured = {e["stream_id"] for e in entries}
        cancelled: list[FleetAggregate] = []
        for entry in entries:
            if entry["stream_type"] != Mission.STREAM_TYPE:
                continue
            # Confirmed in the write: a sortie created meanwhile is cancelled too.
            for row in self.lists.mission_sortie_rows(entry["stream_id"], confirmed=True):
                if row["id"] in captured:
                    continue
                sortie = self.app.get(UUID(row["id"]))
                if isinstance(sortie, Sortie) and not sortie.is_final:
                    sortie.cancel("restored to a checkpoint taken before this sortie existed")
                    cancelled.append(sortie)
        return cancelled

    def _fleet_log(self) -> FleetLog | None:
        try:
            log: FleetLog = self.app.get(FLEET_LOG_ID)
        except AggregateNotFoundError:
            return None
        return log

    def _checkpoint(self, checkpoint_id: str) -> Checkpoint:
        try:
            stream = UUID(checkpoint_id)
        except (ValueError, TypeError):
            raise NotFound(f"checkpoint {checkpoint_id!r} not found") from None
        return self._load(Checkpoint, stream, f"checkpoint {checkpoint_id!r}")
