"""``missions_projection`` and ``sorties_projection``: one projection, because a
mission's sortie counters and a sortie's ``blocked_by`` are derived from rows of
both tables and must move in the same transaction.
"""

from __future__ import annotations

import json
from typing import Any

from application.projections.base import RowProjection, RowTable, Touched
from application.projections.view import ViewTx
from application.resources import iso, mission_resource, progress_summary, sortie_resource
from domain.mission import Mission
from domain.sortie import Sortie, unfinished_dependencies

MISSIONS = RowTable(
    table="missions_projection",
    aggregate_type=Mission,
    public_id=lambda m: str(m.id),
    columns=lambda m: {"status": m.status, "priority": m.priority, "created_at": iso(m.created_on)},
    render=mission_resource,
)
SORTIES = RowTable(
    table="sorties_projection",
    aggregate_type=Sortie,
    public_id=lambda s: str(s.id),
    columns=lambda s: {
        "mission_id": s.mission_id,
        "status": s.status,
        "priority": s.priority,
        "assigned_to": s.assigned_to,
        "created_at": iso(s.created_on),
    },
    render=sortie_resource,
)


# Sortie events that move nothing derived from other rows: not the sortie's dependencies,
# not its status (others' ``blocked_by``), not its mission (the counters).
LEAVES_DERIVED_ROWS: tuple[type, ...] = (Sortie.Progressed,)


class WorkProjection(RowProjection):
    name = "work"
    version = 3  # 2: sortie resources carry estimate_minutes; 3: required_capabilities
    tables = (MISSIONS, SORTIES)
    owned_tables = ("sortie_dependencies", "sorties_projection", "missions_projection")

    def after_page(self, tx: ViewTx, changed: list[Touched]) -> None:
        """Dependency rows, ``blocked_by`` and mission counters, for the sorties whose
        events may have moved them (not for a progress report, the commonest write)."""
        sorties = [t.aggregate for t in changed if t.table is SORTIES and _moves_derived(t)]
        missions = {str(t.aggregate.id) for t in changed if t.table is MISSIONS}
        missions |= {s.mission_id for s in sorties if s.mission_id}
        for sortie in sorties:
            sortie_id = str(sortie.id)
            tx.execute("DELETE FROM sortie_dependencies WHERE sortie_id = ?", [sortie_id])
            tx.executemany(
                "INSERT INTO sortie_dependencies (sortie_id, depends_on) VALUES (?, ?)",
                [(sortie_id, d) for d in dict.fromkeys(sortie.dependencies)],
            )
        if sorties:
            self._refresh_blocked_by(tx, {str(s.id) for s in sorties})
        for mission_id in sorted(missions):
            self._refresh_progress(tx, mission_id)

    def _refresh_blocked_by(self, tx: ViewTx, changed: set[str]) -> None:
        marks = ", ".join("?" * len(changed))
        dependents = tx.fetchall(
            f"SELECT DISTINCT sortie_id FROM sortie_dependencies WHERE depends_on IN ({marks})",  # noqa: S608
            sorted(changed),
        )
        for sortie_id in sorted(changed | {row["sortie_id"] for row in dependents}):
            rows = tx.fetchall(
                "SELECT d.depends_on, s.status FROM sortie_dependencies d "
                "LEFT JOIN sorties_projection s ON s.id = d.depends_on WHERE d.sortie_id = ?",
                [sortie_id],
            )
            statuses = {row["depends_on"]: row["status"] for row in rows}
            order = tx.fetchall("SELECT resource FROM sorties_projection WHERE id = ?", [sortie_id])
            if not order:
                continue
            dependencies = json.loads(order[0]["resource"])["dependencies"]
            blocked = unfinished_dependencies(dependencies, statuses.get)
            tx.execute(
                "UPDATE sorties_projection SET blocked_by = ? WHERE id = ?",
                [json.dumps(blocked), sortie_id],
            )

    @staticmethod
    def _refresh_progress(tx: ViewTx, mission_id: str) -> None:
        counts: dict[str, Any] = {
            row["status"]: row["n"]
            for row in tx.fetchall(
                "SELECT status, COUNT(*) AS n FROM sorties_projection WHERE mission_id = ? "
                "GROUP BY status",
                [mission_id],
            )
        }
        tx.execute(
            "UPDATE missions_projection SET progress = ? WHERE id = ?",
            [json.dumps(progress_summary(counts)), mission_id],
        )


def _moves_derived(touched: Touched) -> bool:
    """Whether a sortie's events since its last write may move rows derived from it."""
    applied = touched.applied
    return not applied or not all(issubclass(cls, LEAVES_DERIVED_ROWS) for cls in applied)
