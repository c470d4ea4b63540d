"""Data schemas of the cursor stream's events."""

from __future__ import annotations

from marshmallow import fields, validate

from application.event_schemas.base import EventSchema, text

NON_NEGATIVE = validate.Range(min=0)


class CursorAdvanced(EventSchema):
    consumer_id = text(1, 128, required=True)
    target_stream_id = text(1, 128, required=True)
    position = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)
    previous_position = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)


class CursorReset(EventSchema):
    consumer_id = text(1, 128, required=True)
    target_stream_id = text(1, 128, required=True)
    position = fields.Integer(load_default=0, strict=True, validate=NON_NEGATIVE)
    previous_position = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)


SCHEMAS = {
    "cursor_advanced": CursorAdvanced,
    "cursor_reset": CursorReset,
}
