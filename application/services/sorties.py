"""Sortie commands and queries, including the PATCH state machine of the contract."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from application.errors import Conflict, NotFound, ValidationError
from application.idempotency import idempotent
from application.outcomes import Written
from application.registry import get_event_type
from application.resources import sortie_resource
from application.services.base import FieldErrors, Service, given
from domain.base import FleetAggregate
from domain.mission import Mission
from domain.sortie import (
    CHANGEABLE_FIELDS,
    PATCH_STATUSES,
    REWORK_VERDICTS,
    TRANSITION_FIELDS,
    TRANSITION_REQUIRES,
    Sortie,
    find_cycle,
    patch_field_errors,
    unfinished_dependencies,
)
from domain.specialist import specialist_stream_id


def as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


class SortieService(Service):
    @idempotent
    def create_sortie(
        self,
        description: str,
        mission_id: str | None = None,
        title: str | None = None,
        priority: str | None = None,
        dependencies: list[str] | None = None,
        assigned_to: str | None = None,
        metadata: dict[str, Any] | None = None,
        estimate_minutes: int | None = None,
        required_capabilities: list[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        data = get_event_type("sortie_created").validate(
            given(
                description=description,
                mission_id=mission_id,
                title=title,
                priority=priority,
                dependencies=dependencies,
                assigned_to=assigned_to,
                metadata=metadata,
                estimate_minutes=estimate_minutes,
                required_capabilities=required_capabilities,
            )
        )
        self._existing_sorties(data.get("dependencies") or [])
        if data.get("assigned_to") is not None:
            self.registered(data["assigned_to"], "assigned_to")
        mission_id = data.get("mission_id")
        # In the command's turn, with the write: a mission that closes meanwhile must not
        # take the sortie.
        check = None if mission_id is None else partial(self._open_mission, mission_id)
        return self._create(lambda: Sortie.create(**data), self.sortie_view, check)

    def get_sortie(
        self, sortie_id: str, version: int | None = None, as_of: datetime | None = None
    ) -> dict[str, Any]:
        stream = self._sortie_uuid(sortie_id)
        label = f"sortie {sortie_id!r}"
        if as_of is not None:
            version = self._version_at(stream, as_of, label)
        return self.sortie_view(self._load(Sortie, stream, label, version))

    @idempotent
    def update_sortie(
        self,
        /,
        sortie_id: str,
        status: str | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Written:
        """Apply one PATCH: field changes, at most one status change, then progress.

        Every check runs before the 422, so it names every invalid field at once.
        """
        errors = FieldErrors()
        valid_status = status is None or status in PATCH_STATUSES
        if not valid_status:
            errors.add("status", f"must be one of: {', '.join(PATCH_STATUSES)}")
        named = [name for name, value in fields.items() if value is not None]
        if valid_status:
            for name, message in patch_field_errors(status, named).items():
                errors.add(name, message)
        changes = given(**{k: fields.pop(k, None) for k in CHANGEABLE_FIELDS})
        progress = given(
            progress=fields.pop("progress", None), status_message=fields.pop("status_message", None)
        )
        if status is None and not named:
            errors.add("_schema", "nothing to change: give a status or fields")
        transition = None
        if status in PATCH_STATUSES:
            taken = {k: v for k, v in given(**fields).items() if k in TRANSITION_FIELDS[status]}
            if taken or status not in TRANSITION_REQUIRES:  # else nothing more to check
                with errors.check():
                    transition = self._sortie_transition(status, taken)
        if changes:
            with errors.check():
                get_event_type("sortie_updated").validate({"changes": changes})
            if "dependencies" in changes:
                with errors.check():
                    self._existing_sorties(changes["dependencies"])
                    self._check_no_cycle(sortie_id, changes["dependencies"])
        if progress and "progress" in progress:
            with errors.check():
                progress = get_event_type("sortie_progress").validate(progress)
        errors.raise_any()
        holder: list[Sortie] = []

        def decide() -> list[FleetAggregate]:
            sortie = self._load(Sortie, self._sortie_uuid(sortie_id), f"sortie {sortie_id!r}")
            self.check_version(sortie, expected_version)
            if "dependencies" in changes:
                # Again in the command's turn: the check above named every bad field at
                # once, this one sees the sorties as the write will leave them, so two
                # PATCHes racing cannot close a cycle between them.
                self._check_no_cycle(sortie_id, changes["dependencies"])
            if changes:
                sortie.update(changes)
            if transition is not None:
                transition(sortie)
            if progress:
                sortie.report_progress(**progress)
            holder[:] = [sortie]
            return [sortie]

        result = self._command(
            decide, lambda: self.sortie_view(holder[0]), expected_version=expected_version
        )
        return result

    def _sortie_transition(self, status: str, fields: dict[str, Any]) -> Command:
        """The domain command a PATCH to ``status`` runs, its ``fields`` validated
        (``patch_field_errors`` has checked which fields it may take)."""
        return TRANSITIONS[status](self, fields)

    # Cross-aggregate checks

    def unfinished(self, dependencies: Sequence[str]) -> list[str]:
        """``blocked_by`` from the dependencies' aggregates (the rule is the domain's)."""
        return unfinished_dependencies(dependencies, self._status_of)

    def _status_of(self, sortie_id: str) -> str | None:
        stream = as_uuid(sortie_id)
        try:
            return str(self.app.get(stream).status) if stream is not None else None
        except AggregateNotFoundError:
            return None

    def _open_mission(self, mission_id: str) -> None:
        stream = as_uuid(mission_id)
        try:
            mission = self.app.get(stream) if stream else None
        except AggregateNotFoundError:
            mission = None
        if not isinstance(mission, Mission):
            raise ValidationError({"mission_id": [f"mission {mission_id!r} does not exist"]})
        if mission.is_final:
            raise Conflict(f"mission {mission_id!r} is {mission.status}; it takes no new sorties")

    def _existing_sorties(self, ids: Sequence[str]) -> None:
        missing = []
        for sortie_id in ids:
            stream = as_uuid(sortie_id)
            if (
                stream is None
                or not self.app.recorder.select_events(stream, limit=1)
                or not isinstance(self.app.get(stream), Sortie)
            ):
                missing.append(sortie_id)
        if missing:
            raise ValidationError({"dependencies": [f"no such sortie: {', '.join(missing)}"]})

    def _check_no_cycle(self, sortie_id: str, dependencies: Sequence[str]) -> None:
        graph: dict[str, list[str]] = {sortie_id: list(dependencies)}
        pending = list(dependencies)
        while pending:
            current = pending.pop()
            if current in graph:
                continue
            stream = as_uuid(current)
            node = self.app.get(stream) if stream else None
            graph[current] = list(node.dependencies) if isinstance(node, Sortie) else []
            pending.extend(graph[current])
        cycle = find_cycle(graph)
        if cycle:
            raise ValidationError({"dependencies": [f"dependency cycle: {' -> '.join(cycle)}"]})

    def registered(self, specialist_id: str, field: str) -> None:
        if not self.app.recorder.select_events(specialist_stream_id(specialist_id), limit=1):
            raise ValidationError({field: [f"specialist {specialist_id!r} is not registered"]})

    def _sortie_uuid(self, sortie_id: str) -> UUID:
        stream = as_uuid(sortie_id)
        if stream is None:
            raise NotFound(f"sortie {sortie_id!r} not found")
        return stream

    def sortie_view(self, sortie: Sortie) -> dict[str, Any]:
        return sortie_resource(sortie, self.unfinished(sortie.dependencies))


# The PATCH state machine: each status a PATCH may name, and the domain command it runs.
# An entry validates the fields the move takes against the schema of the event it records
# and returns the command; ``in_progress`` resumes from wherever the sortie is.
Command = Callable[[Sortie], None]


def _assign(service: SortieService, fields: dict[str, Any]) -> Command:
    data = get_event_type("sortie_assigned").validate({"specialist_id": fields["assigned_to"]})
    service.registered(data["specialist_id"], "assigned_to")
    return lambda s: s.assign(data["specialist_id"])


def _resume(service: SortieService, fields: dict[str, Any]) -> Command:
    verdict = fields.get("verdict")
    if verdict is not None and verdict not in REWORK_VERDICTS:
        raise ValidationError({"verdict": ["must be rejected or needs_changes to leave review"]})
    if "resolution" in fields:
        get_event_type("sortie_unblocked").validate({"resolution": fields["resolution"]})

    def resume(sortie: Sortie) -> None:
        unfinished = service.unfinished(sortie.dependencies) if sortie.status == "assigned" else []
        sortie.resume(fields.get("resolution"), verdict, fields.get("feedback"), unfinished)

    return resume


def _block(service: SortieService, fields: dict[str, Any]) -> Command:
    data = get_event_type("sortie_blocked").validate({"blocker_type": "external", **fields})
    return lambda s: s.block(**data)


def _submit_for_review(service: SortieService, fields: dict[str, Any]) -> Command:
    data = get_event_type("review_started").validate(
        {"review_type": "general", **fields}, partial=("review_id",)
    )
    return lambda s: s.submit_for_review(data["reviewer_id"], data["review_type"])


def _complete(service: SortieService, fields: dict[str, Any]) -> Command:
    data = get_event_type("sortie_completed").validate(
        {"result": fields.get("result") or {}}, partial=("duration_ms",)
    )
    feedback = fields.get("feedback")

    def complete(sortie: Sortie) -> None:
        finish = sortie.approve if sortie.status == "review" else sortie.complete
        finish(data["result"], feedback)

    return complete


def _fail(service: SortieService, fields: dict[str, Any]) -> Command:
    data = get_event_type("sortie_failed").validate(fields)
    return lambda s: s.fail(**data)


def _cancel(service: SortieService, fields: dict[str, Any]) -> Command:
    data = get_event_type("sortie_cancelled").validate(fields)
    return lambda s: s.cancel(**data)


TRANSITIONS: dict[str, Callable[[SortieService, dict[str, Any]], Command]] = {
    "assigned": _assign,
    "in_progress": _resume,
    "blocked": _block,
    "review": _submit_for_review,
    "completed": _complete,
    "failed": _fail,
    "cancelled": _cancel,
}
