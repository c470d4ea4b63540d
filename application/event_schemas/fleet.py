"""Data schemas of the events any stream may record (restore, compaction)."""

from __future__ import annotations

from marshmallow import fields, validate

from application.event_schemas.base import EventSchema, json_object, text

NON_NEGATIVE = validate.Range(min=0)


class FleetRecovered(EventSchema):
    checkpoint_id = text(1, 128, required=True)
    restored_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    state = json_object(required=True)


class ContextCompacted(EventSchema):
    from_sequence = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    to_sequence = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    snapshot_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


SCHEMAS = {
    "fleet_recovered": FleetRecovered,
    "context_compacted": ContextCompacted,
}
