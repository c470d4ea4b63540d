"""Request and response schemas of cursors."""

from __future__ import annotations

from marshmallow import fields

from application.event_schemas.base import text
from web.schemas import NON_NEGATIVE, BodySchema, ResourceSchema, envelope, resource


@resource
class CursorSchema(ResourceSchema):
    id = fields.String(required=True, metadata={"description": "The cursor's stream id."})
    consumer_id = fields.String(required=True)
    target_stream_id = fields.String(
        required=True, metadata={"description": "The stream the consumer reads (stream_id)."}
    )
    position = fields.Integer(required=True, metadata={"description": "The consumer's counter."})
    previous_position = fields.Integer(required=True)
    reset_count = fields.Integer(required=True)


class AdvanceSchema(BodySchema):
    consumer_id = text(1, 128, required=True)
    stream_id = text(
        1, 128, required=True, metadata={"description": "Any stream id; Fleet does not check it."}
    )
    position = fields.Integer(
        required=True,
        strict=True,
        validate=NON_NEGATIVE,
        metadata={"description": "Opaque to Fleet; lower than the cursor's is a 409."},
    )


class ResetSchema(BodySchema):
    consumer_id = text(1, 128, required=True)
    stream_id = text(1, 128, required=True)
    position = fields.Integer(
        strict=True, validate=NON_NEGATIVE, metadata={"description": "Anywhere; default 0."}
    )


CursorResponseSchema = envelope("CursorResponse", "cursor", CursorSchema)
