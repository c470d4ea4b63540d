"""The claim: a specialist takes the best sortie it can do, racing other claimers.

Candidates come from the work projection (pending, unheld, nothing blocking it, in the
order of ``domain.sortie.claim_order``), read once it has caught up with the log. Each
is then claimed on its aggregate: ``Sortie.claim`` checks the rule on fresh state, and the
save's optimistic concurrency lets exactly one claimer win a sortie. A claimer that loses
finds the sortie held on its retry and goes on to the next candidate, so it answers
"nothing" only when no candidate is left, never a conflict for a lost race.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from marshmallow import Schema

from application.errors import Conflict, ValidationError
from application.event_schemas.base import identifier, load
from application.event_schemas.sortie import capabilities
from application.idempotency import idempotent
from application.outcomes import Written
from application.services.base import Foundation, Service
from application.services.sorties import SortieService, as_uuid
from application.waits import Interest, check_wait
from domain.base import PRIORITIES, FleetAggregate
from domain.mission import Mission
from domain.sortie import Sortie
from domain.specialist import LIVE, Specialist, specialist_stream_id

CLAIM = Schema.from_dict(
    {
        "specialist_id": identifier(required=True),
        "mission_id": identifier(allow_none=True),
        "capabilities": capabilities(allow_none=True),
    },
    name="Claim",
)
CANDIDATES_PAGE = 100
# Events after which a sortie may have become claimable: a waiting claimer tries again.
CLAIM_CHANCES = frozenset(
    {
        "sortie_created",
        "sortie_released",
        "sortie_completed",  # a dependency done
        "sortie_updated",  # dependencies changed
        "specialist_registered",  # capabilities changed
    }
)
# Highest priority first: rank 0 is the last of PRIORITIES (critical). Fixed text only.
RANK = (
    "(CASE priority "
    + " ".join(f"WHEN '{p}' THEN {len(PRIORITIES) - 1 - i}" for i, p in enumerate(PRIORITIES))
    + " END)"
)


class ClaimService(Service):
    def __init__(self, foundation: Foundation, sorties: SortieService) -> None:
        super().__init__(foundation)
        self.sorties = sorties

    @idempotent
    def claim_sortie(
        self,
        specialist_id: str,
        mission_id: str | None = None,
        capabilities: Sequence[str] | None = None,
        wait: float | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written | None:
        """Assign the best claimable sortie to ``specialist_id``; None when none is left.

        The claimer's capabilities are ``capabilities`` when given, else those it
        registered with. With ``wait`` (seconds, 0-30) a claim that finds nothing waits
        for a sortie to become claimable (created, released, a dependency completed...).
        """
        load(
            CLAIM(),
            {
                "specialist_id": specialist_id,
                "mission_id": mission_id,
                "capabilities": None if capabilities is None else list(capabilities),
            },
        )
        specialist = self._claimer(specialist_id)
        if mission_id is not None:
            self._known_mission(mission_id)
        seconds = check_wait(wait)
        have = list(specialist.capabilities if capabilities is None else capabilities)
        return self.watcher.first(
            seconds,
            Interest(types=CLAIM_CHANCES),
            lambda _: self._claim_once(specialist_id, mission_id, have),
            lambda claimed: claimed is not None,
        )

    def _claim_once(
        self, specialist_id: str, mission_id: str | None, have: Sequence[str]
    ) -> Written | None:
        self.projector.wait_for(self._head(), self.min_position_timeout)
        for stream in self._candidates(mission_id, have):
            claimed = self._try_claim(stream, specialist_id, have)
            if claimed is not None:
                return claimed
        return None

    def _try_claim(self, stream: UUID, specialist_id: str, have: Sequence[str]) -> Written | None:
        """Claim one candidate; None when it is no longer claimable (or taken meanwhile)."""
        holder: list[Sortie] = []

        def decide() -> list[FleetAggregate]:
            sortie = self._load(Sortie, stream, f"sortie {stream}")
            sortie.claim(specialist_id, have, self.sorties.unfinished(sortie.dependencies))
            holder[:] = [sortie]
            return [sortie]

        try:
            claimed = self._command(decide, lambda: self.sorties.sortie_view(holder[0]))
        except Conflict:  # taken by another claimer, or changed so that it no longer fits
            return None
        return claimed

    def _candidates(self, mission_id: str | None, have: Sequence[str]) -> Iterator[UUID]:
        """Claimable-looking sorties, best first, a page at a time.

        Pages continue after the last row seen (not at an offset): rows that other
        claimers take meanwhile leave the set without making this one skip any.
        """
        owned = set(have)
        where = "status = 'pending' AND assigned_to IS NULL AND blocked_by = '[]'"
        params: list[Any] = []
        if mission_id is not None:
            where += " AND mission_id = ?"
            params.append(mission_id)
        after: tuple[int, str, str] | None = None
        while True:
            clause, bound = where, list(params)
            if after is not None:
                clause += (
                    f" AND ({RANK} > ? OR ({RANK} = ? AND "
                    "(created_at > ? OR (created_at = ? AND id > ?))))"
                )
                bound += [after[0], after[0], after[1], after[1], after[2]]
            with self.projector.read() as tx:
                rows = tx.fetchall(
                    f"SELECT stream_id, id, created_at, resource, {RANK} AS rank "  # noqa: S608 - fixed text
                    f"FROM sorties_projection WHERE {clause} "
                    f"ORDER BY rank, created_at, id LIMIT ?",
                    [*bound, CANDIDATES_PAGE],
                )
            for row in rows:
                needed = json.loads(row["resource"]).get("required_capabilities") or []
                if owned.issuperset(needed):
                    yield UUID(row["stream_id"])
            if len(rows) < CANDIDATES_PAGE:
                return
            last = rows[-1]
            after = (int(last["rank"]), last["created_at"], last["id"])

    def _claimer(self, specialist_id: str) -> Specialist:
        try:
            specialist = self.app.get(specialist_stream_id(specialist_id))
        except AggregateNotFoundError:
            specialist = None
        if not isinstance(specialist, Specialist):
            raise ValidationError(
                {"specialist_id": [f"specialist {specialist_id!r} is not registered"]}
            )
        if specialist.status not in LIVE:
            raise Conflict(
                f"specialist {specialist_id!r} is {specialist.status}; "
                f"only a specialist that is {', '.join(LIVE)} claims sorties"
            )
        return specialist

    def _known_mission(self, mission_id: str) -> None:
        stream = as_uuid(mission_id)
        try:
            mission = self.app.get(stream) if stream else None
        except AggregateNotFoundError:
            mission = None
        if not isinstance(mission, Mission):
            raise ValidationError({"mission_id": [f"mission {mission_id!r} does not exist"]})
