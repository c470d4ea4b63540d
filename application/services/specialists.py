"""Specialist commands and queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from application.command_scope import ensure_scope
from application.errors import PreconditionFailed
from application.idempotency import idempotent
from application.registry import get_event_type
from application.resources import specialist_resource
from application.services.base import Service, given
from application.services.leases import release_held
from domain.base import FleetAggregate
from domain.specialist import Specialist, specialist_stream_id


class SpecialistService(Service):
    @idempotent
    def register_specialist(
        self,
        specialist_id: str,
        name: str,
        capabilities: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        spawned_by: str | None = None,
        mission_id: str | None = None,
        sortie_id: str | None = None,
        config: dict[str, Any] | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Register a specialist, or update a known one (the scope's ``created`` tells which).

        ``expected_version`` applies to re-registration: a specialist that does not
        exist yet has no version to match, so it fails the precondition too.
        """
        data = get_event_type("specialist_registered").validate(
            given(
                specialist_id=specialist_id, name=name, capabilities=capabilities, metadata=metadata
            )
        )
        spawn = None
        if spawned_by is not None:
            spawn = get_event_type("specialist_spawned").validate(
                given(
                    specialist_id=specialist_id,
                    name=name,
                    spawned_by=spawned_by,
                    mission_id=mission_id,
                    sortie_id=sortie_id,
                    config=config,
                )
            )
        written: list[Specialist] = []

        def decide() -> list[FleetAggregate]:
            try:
                specialist: Specialist = self.app.get(specialist_stream_id(data["specialist_id"]))
                self.check_version(specialist, expected_version)
                specialist.reregister(
                    data["name"],
                    specialist.capabilities if capabilities is None else data["capabilities"],
                    specialist.metadata if metadata is None else data["metadata"],
                )
            except AggregateNotFoundError:
                if expected_version is not None:
                    raise PreconditionFailed(expected_version, 0) from None  # none yet
                specialist = Specialist.register(**data)
            if spawn is not None:
                specialist.record_spawn(
                    spawn["spawned_by"], spawn["mission_id"], spawn["sortie_id"], spawn["config"]
                )
            written[:] = [specialist]
            return [specialist]

        with ensure_scope() as scope:

            def view() -> dict[str, Any]:
                scope.created = written[0].registered_at == written[0].created_on
                return specialist_resource(written[0])

            result: dict[str, Any] = self._command(decide, view, expected_version=expected_version)
        return result

    @idempotent
    def heartbeat(
        self,
        specialist_id: str,
        status: str | None = None,
        current_sortie: str | None = None,
        metrics: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        data = get_event_type("specialist_active").validate(
            given(status=status, current_sortie=current_sortie, metrics=metrics, metadata=metadata)
        )
        return self._on_specialist(specialist_id, expected_version, lambda s: s.heartbeat(**data))

    @idempotent
    def complete_specialist(
        self,
        specialist_id: str,
        reason: str,
        summary: str | None = None,
        final_checkpoint_id: str | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        data = get_event_type("specialist_completed").validate(
            given(reason=reason, summary=summary, final_checkpoint_id=final_checkpoint_id)
        )
        return self._on_specialist(specialist_id, expected_version, lambda s: s.complete(**data))

    @idempotent
    def fail_specialist(
        self,
        specialist_id: str,
        error: str,
        details: dict[str, Any] | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        data = get_event_type("specialist_failed").validate(given(error=error, details=details))
        return self._stop(specialist_id, expected_version, lambda s: s.fail(**data), "failed")

    @idempotent
    def deregister_specialist(
        self,
        specialist_id: str,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        return self._stop(
            specialist_id,
            expected_version,
            lambda s: s.mark_inactive("deregistered"),
            "deregistered",
        )

    def _stop(
        self,
        specialist_id: str,
        expected_version: int | None,
        command: Callable[[Specialist], None],
        why: str,
    ) -> dict[str, Any]:
        """End a specialist; the sorties it held are released in the same save."""
        holder: list[Specialist] = []

        def decide() -> list[FleetAggregate]:
            stream = specialist_stream_id(specialist_id)
            specialist = self._load(Specialist, stream, f"specialist {specialist_id!r}")
            self.check_version(specialist, expected_version)
            command(specialist)
            holder[:] = [specialist]
            released = release_held(
                self.app, self.projector, specialist_id, why, self.min_position_timeout
            )
            return [specialist, *released]

        result: dict[str, Any] = self._command(
            decide, lambda: specialist_resource(holder[0]), expected_version=expected_version
        )
        return result

    def get_specialist(
        self, specialist_id: str, version: int | None = None, as_of: datetime | None = None
    ) -> dict[str, Any]:
        stream = specialist_stream_id(specialist_id)
        if as_of is not None:
            version = self._version_at(stream, as_of, f"specialist {specialist_id!r}")
        return specialist_resource(
            self._load(Specialist, stream, f"specialist {specialist_id!r}", version)
        )

    def _on_specialist(
        self, specialist_id: str, expected_version: int | None, command: Any
    ) -> dict[str, Any]:
        return self._change(
            Specialist,
            specialist_stream_id(specialist_id),
            f"specialist {specialist_id!r}",
            command,
            specialist_resource,
            expected_version,
        )
