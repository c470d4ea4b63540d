"""Request and response schemas of missions."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from application.event_schemas.base import text
from domain.mission import MISSION_STATUSES, patch_field_errors
from domain.sortie import SORTIE_STATUSES
from web.schemas import (
    BodySchema,
    PageQuerySchema,
    ResourceSchema,
    StatusPatchSchema,
    envelope,
    json_object,
    nullable_text,
    nullable_timestamp,
    page,
    priority,
    resource,
)
from web.sorties.schemas import SortieSchema

# Sortie counts per status (one member each, in the lifecycle's order); ``percent`` is the
# share completed or cancelled.
MissionProgressSchema = ma.Schema.from_dict(
    {
        "total": fields.Integer(required=True),
        **{status: fields.Integer(required=True) for status in SORTIE_STATUSES},
        "percent": fields.Integer(required=True, validate=validate.Range(min=0, max=100)),
    },
    name="MissionProgress",
)


@resource
class MissionSchema(ResourceSchema):
    title = fields.String(required=True)
    description = nullable_text()
    goals = fields.List(fields.String(), required=True)
    priority = priority(required=True)
    metadata = json_object(required=True)
    status = fields.String(required=True, validate=validate.OneOf(MISSION_STATUSES))
    result = json_object(allow_none=True)
    reason = nullable_text()
    progress = fields.Nested(MissionProgressSchema, required=True)
    started_at = nullable_timestamp()
    completed_at = nullable_timestamp()


class MissionCreateSchema(BodySchema):
    title = text(1, 200, required=True)
    description = text(0, 10000)
    goals = fields.List(text(1, 1000))
    priority = priority()
    metadata = json_object()


class MissionPatchSchema(StatusPatchSchema):
    STATUS_RULE = staticmethod(patch_field_errors)

    status = fields.String(
        validate=validate.OneOf(MISSION_STATUSES),
        metadata={
            "description": "in_progress (start), completed, failed (needs reason), "
            "cancelled. Any other move is a 409."
        },
    )
    result = json_object(metadata={"description": "With completed or failed."})
    reason = text(1, 2000, metadata={"description": "Why it failed or was cancelled."})
    title = text(1, 200)
    description = text(0, 10000)
    goals = fields.List(text(1, 1000))
    priority = priority()
    metadata = json_object()


class MissionQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(MISSION_STATUSES))
    priority = priority()


MissionResponseSchema = envelope("MissionResponse", "mission", MissionSchema)
MissionDetailSchema = envelope(
    "MissionDetail",
    "mission",
    MissionSchema,
    sorties=fields.List(
        fields.Nested(SortieSchema),
        required=True,
        metadata={"description": "The mission's sorties, oldest first."},
    ),
)
MissionPageSchema = page("MissionPage", "missions", MissionSchema)
