"""List queries: read from projection tables, never by replaying aggregates."""

from __future__ import annotations

import json
from typing import Any

from application.app import note_log_read
from application.resources import progress_summary
from application.services.base import Service, row_resource
from application.store.query import LogRead
from domain.sortie import Sortie


class ListService(Service):
    """The list queries of the contract, and the mission's sortie rows other services read."""

    row_resource = staticmethod(row_resource)

    def list_specialists(
        self,
        status: str | None = None,
        capability: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Specialists ordered by id."""
        join = ""
        if capability is not None:
            join = " JOIN specialist_capabilities c ON c.specialist_id = t.id"
        return self._page(
            "specialists_projection",
            [("t.status", status), ("c.capability", capability)],
            "t.id",
            limit,
            offset,
            min_position,
            join,
        )

    def list_missions(
        self,
        status: str | None = None,
        priority: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Missions oldest first."""
        return self._page(
            "missions_projection",
            [("t.status", status), ("t.priority", priority)],
            "t.created_at, t.id",
            limit,
            offset,
            min_position,
        )

    def list_sorties(
        self,
        mission_id: str | None = None,
        status: str | None = None,
        assigned_to: str | None = None,
        priority: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Sorties oldest first."""
        return self._page(
            "sorties_projection",
            [
                ("t.mission_id", mission_id),
                ("t.status", status),
                ("t.assigned_to", assigned_to),
                ("t.priority", priority),
            ],
            "t.created_at, t.id",
            limit,
            offset,
            min_position,
        )

    def list_checkpoints(
        self,
        stream_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Checkpoints oldest first; ``stream_id`` is the checkpointed stream."""
        return self._page(
            "checkpoints_projection",
            [("t.target_stream_id", stream_id)],
            "t.created_at, t.id",
            limit,
            offset,
            min_position,
        )

    def mission_sortie_rows(self, mission_id: str, confirmed: bool = False) -> list[dict[str, Any]]:
        """Every sortie of a mission, read after the projections caught up with the log.

        ``confirmed``: a decision's read, which its write confirms (``note_log_read``): the
        rows hold at the commit unless a sortie was created (a sortie joins its mission
        only then) or one of these sorties recorded an event after the head read here.
        Every projection has applied the head before the rows are read, embedded or not
        (an external projector's rows may be further on: an event between is taken as a
        change, and the command decides again).
        """
        head = self.app.recorder.max_notification_id() or 0
        self.projector.wait_for(head, self.min_position_timeout)
        with self.projector.read() as tx:
            rows = tx.fetchall(
                "SELECT * FROM sorties_projection WHERE mission_id = ? ORDER BY created_at, id",
                [mission_id],
            )
            sorties = [row_resource("sorties_projection", row) for row in rows]
        if confirmed:
            streams = tuple(sortie["id"] for sortie in sorties)
            note_log_read(LogRead(head, (Sortie.Created.event_type,), streams, Sortie.STREAM_TYPE))
        return sorties

    def mission_progress(self, mission_id: str) -> dict[str, int]:
        with self.projector.read() as tx:
            rows = tx.fetchall(
                "SELECT progress FROM missions_projection WHERE id = ?", [mission_id]
            )
        progress: dict[str, int] = json.loads(rows[0]["progress"]) if rows else {}
        return progress or progress_summary({})
