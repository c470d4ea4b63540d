"""Data schemas of the checkpoint and fleet streams' own events."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from application.event_schemas.base import EventSchema, json_object, optional_text, text
from domain.checkpoint import CHECKPOINT_TRIGGERS

NON_NEGATIVE = validate.Range(min=0)
TRIGGER = validate.OneOf(CHECKPOINT_TRIGGERS)


def count(**kwargs: Any) -> fields.Integer:
    """A non-negative integer; ``"3"`` or ``3.0`` is refused."""
    return fields.Integer(strict=True, validate=NON_NEGATIVE, **kwargs)


class CheckpointCreated(EventSchema):
    target_stream_id = text(1, 200, required=True)
    target_version = count(required=True)
    position = count(required=True)
    description = optional_text(2000)
    state = json_object(required=True)


class CheckpointRestored(EventSchema):
    restored_streams = fields.List(text(1, 200), required=True)
    position = count(required=True)


class FleetCheckpointed(EventSchema):
    checkpoint_id = text(1, 128, required=True)
    trigger = fields.String(required=True, validate=TRIGGER)
    streams = count(required=True)
    position = count(required=True)


SCHEMAS = {
    "checkpoint_created": CheckpointCreated,
    "checkpoint_restored": CheckpointRestored,
    "fleet_checkpointed": FleetCheckpointed,
}
