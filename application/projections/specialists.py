"""``specialists_projection``: specialists by status and capability."""

from __future__ import annotations

from typing import Any

from application.projections.base import RowProjection, RowTable, Touched
from application.projections.view import ViewTx
from application.resources import specialist_resource
from domain.specialist import Specialist


class SpecialistsProjection(RowProjection):
    name = "specialists"
    version = 1
    tables = (
        RowTable(
            table="specialists_projection",
            aggregate_type=Specialist,
            public_id=lambda s: s.specialist_id,
            columns=lambda s: {"status": s.status},
            render=specialist_resource,
        ),
    )
    owned_tables = ("specialist_capabilities", "specialists_projection")

    def after_page(self, tx: ViewTx, changed: list[Touched]) -> None:
        for item in changed:
            specialist: Any = item.aggregate
            tx.execute(
                "DELETE FROM specialist_capabilities WHERE specialist_id = ?",
                [specialist.specialist_id],
            )
            tx.executemany(
                "INSERT INTO specialist_capabilities (specialist_id, capability) VALUES (?, ?)",
                [(specialist.specialist_id, c) for c in sorted(set(specialist.capabilities))],
            )
