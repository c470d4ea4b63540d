"""Request and response schemas of checkpoints."""

from __future__ import annotations

from marshmallow import fields, validate

from application.event_schemas.base import text
from web.schemas import (
    BodySchema,
    PageQuerySchema,
    ResourceSchema,
    StrictBoolean,
    envelope,
    json_object,
    nullable_text,
    nullable_timestamp,
    page,
    resource,
)


@resource
class CheckpointSchema(ResourceSchema):
    target_stream_id = fields.String(
        required=True, metadata={"description": "The checkpointed stream, or fleet."}
    )
    target_version = fields.Integer(required=True)
    position = fields.Integer(required=True, metadata={"description": "Global position then."})
    description = nullable_text()
    state = json_object(required=True)
    restored_count = fields.Integer(required=True)
    last_restored_at = nullable_timestamp()


class CheckpointCreateSchema(BodySchema):
    stream_id = text(
        1,
        200,
        required=True,
        metadata={
            "description": "A mission's stream_id (it and its sorties), any other "
            "stream, or fleet (every mission not yet final)."
        },
    )
    description = text(0, 2000)


class RestoreSchema(BodySchema):
    confirm = StrictBoolean(
        required=True,
        metadata={"description": "Must be true.", "enum": [True]},
    )


class CheckpointQuerySchema(PageQuerySchema):
    stream_id = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The checkpointed stream."},
    )


CheckpointResponseSchema = envelope("CheckpointResponse", "checkpoint", CheckpointSchema)
RestoreResponseSchema = envelope(
    "RestoreResponse",
    "checkpoint",
    CheckpointSchema,
    restored=fields.Boolean(required=True, metadata={"enum": [True]}),
)
CheckpointPageSchema = page("CheckpointPage", "checkpoints", CheckpointSchema)
