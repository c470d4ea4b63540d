"""List queries: read from projection tables, never by replaying aggregates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from application.projections import Projector
from application.resources import progress_summary
from application.services.base import Service
from application.services.events import check_filters, check_page

DEFAULT_WAIT = 5.0


class ListService(Service):
    projector: Projector
    min_position_timeout: float = DEFAULT_WAIT

    def _page(
        self,
        table: str,
        filters: Sequence[tuple[str, Any]],
        order: str,
        limit: int,
        offset: int,
        min_position: int | None,
        join: str = "",
        columns: str = "t.*",
    ) -> tuple[list[dict[str, Any]], int]:
        """One filtered page of rows and the total; the SQL is built from fixed names only."""
        check_page(limit, offset)
        check_filters(**{column.split(".")[-1]: value for column, value in filters})
        if min_position is not None:
            self._existing_position(min_position)
            self.projector.wait_for(min_position, self.min_position_timeout)
        where = [f"{column} = ?" for column, value in filters if value is not None]
        params = [value for _, value in filters if value is not None]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self.projector.read() as tx:
            rows = tx.fetchall(
                f"SELECT {columns} FROM {table} t{join}{clause} ORDER BY {order} LIMIT ? OFFSET ?",  # noqa: S608
                [*params, limit, offset],
            )
            count = f"SELECT COUNT(*) AS n FROM {table} t{join}{clause}"  # noqa: S608 - fixed names
            total = tx.fetchall(count, params)[0]["n"]
        return [self.row_resource(table, row) for row in rows], int(total)

    @staticmethod
    def row_resource(table: str, row: Any) -> dict[str, Any]:
        resource: dict[str, Any] = json.loads(row["resource"])
        if table == "missions_projection":
            resource["progress"] = json.loads(row["progress"])
        elif table == "sorties_projection":
            resource["blocked_by"] = json.loads(row["blocked_by"])
        elif table == "messages_projection":
            resource["version"] = row["mailbox_version"]  # the mailbox's, now
        return resource

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

    def _mission_sortie_rows(self, mission_id: str) -> list[dict[str, Any]]:
        """Every sortie of a mission, read after the projections caught up with the log."""
        head = self.app.recorder.max_notification_id() or 0
        self.projector.wait_for(head, self.min_position_timeout)
        with self.projector.read() as tx:
            rows = tx.fetchall(
                "SELECT * FROM sorties_projection WHERE mission_id = ? ORDER BY created_at, id",
                [mission_id],
            )
            return [self.row_resource("sorties_projection", row) for row in rows]

    def _mission_progress(self, mission_id: str) -> dict[str, int]:
        with self.projector.read() as tx:
            rows = tx.fetchall(
                "SELECT progress FROM missions_projection WHERE id = ?", [mission_id]
            )
        progress: dict[str, int] = json.loads(rows[0]["progress"]) if rows else {}
        return progress or progress_summary({})
