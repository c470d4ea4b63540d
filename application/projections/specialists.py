"""``specialists_projection``: specialists by status and capability.

Version 2 adds ``last_seen`` (UTC text), which the heartbeat sweep selects by.
"""

from __future__ import annotations

from typing import Any

from application.projections.base import RowProjection, RowTable, Touched
from application.projections.view import ViewTx
from application.resources import specialist_resource, utc_text
from domain.base import SHARED_EVENTS
from domain.specialist import Registration, Specialist

CHANGES_CAPABILITIES: tuple[type, ...] = (Registration, *SHARED_EVENTS)


class SpecialistsProjection(RowProjection):
    name = "specialists"
    version = 2
    tables = (
        RowTable(
            table="specialists_projection",
            aggregate_type=Specialist,
            public_id=lambda s: s.specialist_id,
            columns=lambda s: {"status": s.status, "last_seen": utc_text(s.last_seen)},
            render=specialist_resource,
        ),
    )
    owned_tables = ("specialist_capabilities", "specialists_projection")

    def after_page(self, tx: ViewTx, changed: list[Touched]) -> None:
        """Rewrite the capability rows of the specialists whose capabilities may have
        changed: by a registration, or by a restore or compaction of their stream (not by
        a heartbeat, the commonest write)."""
        specialists: list[Any] = [
            item.aggregate
            for item in changed
            if any(issubclass(cls, CHANGES_CAPABILITIES) for cls in item.applied)
        ]
        if not specialists:
            return
        ids = [s.specialist_id for s in specialists]
        marks = ", ".join("?" * len(ids))
        tx.execute(f"DELETE FROM specialist_capabilities WHERE specialist_id IN ({marks})", ids)  # noqa: S608 - placeholders only
        tx.executemany(
            "INSERT INTO specialist_capabilities (specialist_id, capability) VALUES (?, ?)",
            [(s.specialist_id, c) for s in specialists for c in sorted(set(s.capabilities))],
        )
