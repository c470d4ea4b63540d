"""``checkpoints_projection``: checkpoints by the stream they captured."""

from __future__ import annotations

from application.projections.base import RowProjection, RowTable
from application.resources import checkpoint_resource, iso
from domain.checkpoint import Checkpoint


class CheckpointsProjection(RowProjection):
    name = "checkpoints"
    version = 1
    tables = (
        RowTable(
            table="checkpoints_projection",
            aggregate_type=Checkpoint,
            public_id=lambda c: str(c.id),
            columns=lambda c: {
                "target_stream_id": c.target_stream_id,
                "created_at": iso(c.created_on),
            },
            render=checkpoint_resource,
        ),
    )
    owned_tables = ("checkpoints_projection",)
