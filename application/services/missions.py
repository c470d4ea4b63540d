"""Mission commands and queries."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from uuid import UUID

from application.errors import Conflict, NotFound
from application.idempotency import idempotent
from application.outcomes import Written
from application.registry import get_event_type
from application.resources import mission_resource, progress_summary, sortie_resource
from application.services.base import FieldErrors, Foundation, Service, given
from application.services.lists import ListService
from domain.base import FleetAggregate
from domain.mission import CHANGEABLE_FIELDS, MISSION_STATUSES, Mission, patch_field_errors
from domain.sortie import SETTLED_STATUSES, Sortie


def mission_uuid(mission_id: str) -> UUID:
    try:
        return UUID(mission_id)
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"mission {mission_id!r} not found") from None


class MissionService(Service):
    def __init__(self, foundation: Foundation, lists: ListService) -> None:
        super().__init__(foundation)
        self.lists = lists

    @idempotent
    def create_mission(
        self,
        title: str,
        description: str | None = None,
        goals: list[str] | None = None,
        priority: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        data = get_event_type("mission_created").validate(
            given(
                title=title,
                description=description,
                goals=goals,
                priority=priority,
                metadata=metadata,
            )
        )
        return self._create(lambda: Mission.create(**data), self._mission_view)

    def get_mission(
        self, mission_id: str, version: int | None = None, as_of: datetime | None = None
    ) -> dict[str, Any]:
        stream = mission_uuid(mission_id)
        label = f"mission {mission_id!r}"
        if as_of is not None:
            version = self._version_at(stream, as_of, label)
        mission = self._load(Mission, stream, label, version)
        if version is None:
            return self._mission_view(mission)
        sorties = self._sorties_at(mission_id, as_of or mission.modified_on)
        counts = Counter(s["status"] for s in sorties)
        return mission_resource(mission, progress_summary(dict(counts)))

    def mission_sorties(
        self, mission_id: str, version: int | None = None, as_of: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The sorties of a mission, oldest first; with ``version``/``as_of``, as they were then."""
        stream = mission_uuid(mission_id)
        label = f"mission {mission_id!r}"
        if as_of is None and version is None:
            self._load(Mission, stream, label)
            return self.lists.mission_sortie_rows(mission_id)
        if as_of is None:
            as_of = self._load(Mission, stream, label, version).modified_on
        else:
            self._version_at(stream, as_of, label)
        return self._sorties_at(mission_id, as_of)

    def _sorties_at(self, mission_id: str, at: datetime) -> list[dict[str, Any]]:
        """Each sortie of the mission that existed at ``at``, as it was then."""
        then: dict[str, Sortie] = {}
        for row in self.lists.mission_sortie_rows(mission_id):
            sortie = self._sortie_at(row["id"], at)
            if sortie is not None:
                then[row["id"]] = sortie

        def done(dependency: str) -> bool:
            sortie = then.get(dependency) or self._sortie_at(dependency, at)
            return sortie is not None and sortie.status == "completed"

        return [
            sortie_resource(s, [d for d in s.dependencies if not done(d)]) for s in then.values()
        ]

    def _sortie_at(self, sortie_id: str, at: datetime) -> Sortie | None:
        try:
            stream = UUID(sortie_id)
            version = self._version_at(stream, at, f"sortie {sortie_id!r}")
        except (ValueError, NotFound):
            return None
        return self._load(Sortie, stream, f"sortie {sortie_id!r}", version)

    @idempotent
    def update_mission(
        self,
        /,
        mission_id: str,
        status: str | None = None,
        result: dict[str, Any] | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
        **changes: Any,
    ) -> Written:
        """Change fields (``mission_updated``) and/or move to ``status``, atomically.

        Every check runs before the 422, so it names every invalid field at once.
        """
        errors = FieldErrors()
        for name in sorted(set(changes) - set(CHANGEABLE_FIELDS)):
            errors.add(name, "Unknown field.")
        changes = given(**{k: v for k, v in changes.items() if k in CHANGEABLE_FIELDS})
        if status is not None and status not in MISSION_STATUSES:
            errors.add("status", f"must be one of: {', '.join(MISSION_STATUSES)}")
        if status is None and not changes:
            errors.add("_schema", "nothing to change: give a status or fields to update")
        if changes:
            with errors.check():
                get_event_type("mission_updated").validate({"changes": changes})
        named = given(reason=reason, result=result)
        for name, message in patch_field_errors(status, named).items():
            errors.add(name, message)
        transition = None
        if status in MISSION_STATUSES:
            with errors.check():
                transition = self._mission_transition(status, result, reason)
        errors.raise_any()
        holder: list[Mission] = []

        def decide() -> list[FleetAggregate]:
            mission = self._load(Mission, mission_uuid(mission_id), f"mission {mission_id!r}")
            self.check_version(mission, expected_version)
            if changes:
                mission.update(changes)
            if transition is not None:
                transition(mission)
            holder[:] = [mission]
            return [mission]

        answer = self._command(
            decide, lambda: self._mission_view(holder[0]), expected_version=expected_version
        )
        return answer

    def _mission_transition(
        self, status: str | None, result: dict[str, Any] | None, reason: str | None
    ) -> Any:
        if status is None:
            return None
        if status == "in_progress":
            return lambda m: m.start()
        if status == "cancelled":
            data = get_event_type("mission_cancelled").validate(given(reason=reason))
            return lambda m: m.cancel(**data)
        if status == "failed":
            data = get_event_type("mission_failed").validate(given(reason=reason, result=result))
            return lambda m: m.fail(**data)
        if status == "completed":
            return lambda m: self._complete_mission(m, result)
        raise Conflict(f"a mission cannot be moved to {status!r} by request")

    def _complete_mission(self, mission: Mission, result: dict[str, Any] | None) -> None:
        sorties = self.lists.mission_sortie_rows(str(mission.id), confirmed=True)
        unfinished = [s["id"] for s in sorties if s["status"] not in SETTLED_STATUSES]
        now = Mission.Completed.create_timestamp()
        data = get_event_type("mission_completed").validate(
            {
                "result": result or {},
                "sorties_completed": sum(s["status"] == "completed" for s in sorties),
                "sorties_failed": sum(s["status"] == "failed" for s in sorties),
                "duration_ms": mission.duration_ms_since_start(now),
            }
        )
        mission.complete(**data, unfinished_sorties=unfinished)

    def _mission_view(self, mission: Mission) -> dict[str, Any]:
        progress = self.lists.mission_progress(str(mission.id))
        return mission_resource(mission, progress or progress_summary({}))
