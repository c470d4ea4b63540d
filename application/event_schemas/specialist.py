"""Data schemas of the specialist stream's events."""

from __future__ import annotations

from marshmallow import fields, validate

from application.event_schemas.base import EventSchema, identifier, json_object, optional_text, text
from domain.specialist import COMPLETION_REASONS, HEARTBEAT_STATUSES, INACTIVE_REASONS, RESERVED_IDS

NOT_RESERVED = validate.NoneOf(
    RESERVED_IDS, error="is reserved (a route's name): choose another id"
)


class SpecialistRegistered(EventSchema):
    specialist_id = identifier(NOT_RESERVED, required=True)
    name = text(1, 200, required=True)
    capabilities = fields.List(text(1, 200), load_default=list)
    metadata = json_object(load_default=dict)


class SpecialistSpawned(EventSchema):
    specialist_id = identifier(required=True)
    name = text(1, 200, required=True)
    spawned_by = text(1, 128, required=True)
    mission_id = optional_text(128)
    sortie_id = optional_text(128)
    config = json_object(load_default=None, allow_none=True)


class SpecialistActive(EventSchema):
    status = fields.String(load_default="active", validate=validate.OneOf(HEARTBEAT_STATUSES))
    current_sortie = optional_text(128)
    metrics = json_object(load_default=None, allow_none=True)
    metadata = json_object(load_default=None, allow_none=True)


class SpecialistInactive(EventSchema):
    reason = fields.String(required=True, validate=validate.OneOf(INACTIVE_REASONS))
    last_seen = fields.AwareDateTime(required=True)


class SpecialistCompleted(EventSchema):
    reason = fields.String(required=True, validate=validate.OneOf(COMPLETION_REASONS))
    summary = optional_text(10000)
    final_checkpoint_id = optional_text(128)


class SpecialistFailed(EventSchema):
    error = text(1, 2000, required=True)
    details = json_object(load_default=None, allow_none=True)


SCHEMAS = {
    "specialist_registered": SpecialistRegistered,
    "specialist_spawned": SpecialistSpawned,
    "specialist_active": SpecialistActive,
    "specialist_inactive": SpecialistInactive,
    "specialist_completed": SpecialistCompleted,
    "specialist_failed": SpecialistFailed,
}
