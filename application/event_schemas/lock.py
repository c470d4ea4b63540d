"""Data schemas of the lock stream's events."""

from __future__ import annotations

from marshmallow import fields, validate

from application.event_schemas.base import EventSchema, optional_text, text
from domain.lock import LOCK_PURPOSES, LOCK_RELEASE_REASONS

PURPOSE = validate.OneOf(LOCK_PURPOSES)
TIMEOUT_MS = validate.Range(min=1, max=86_400_000)
PATH_MAX = 4096


class LockAcquired(EventSchema):
    lock_id = text(1, 128, required=True)
    file_path = text(1, PATH_MAX, required=True)
    normalized_path = text(1, PATH_MAX, required=True)
    specialist_id = text(1, 128, required=True)
    purpose = fields.String(load_default="edit", validate=PURPOSE)
    timeout_ms = fields.Integer(load_default=30_000, strict=True, validate=TIMEOUT_MS)
    expires_at = fields.AwareDateTime(required=True)
    checksum = optional_text(256, min_len=1)


class LockConflict(EventSchema):
    requesting_specialist = text(1, 128, required=True)
    holding_specialist = text(1, 128, required=True)
    existing_lock_id = text(1, 128, required=True)


class LockReleased(EventSchema):
    lock_id = text(1, 128, required=True)
    specialist_id = text(1, 128, required=True)
    reason = fields.String(required=True, validate=validate.OneOf(LOCK_RELEASE_REASONS))


class LockTimeout(EventSchema):
    lock_id = text(1, 128, required=True)
    specialist_id = text(1, 128, required=True)
    expired_at = fields.AwareDateTime(required=True)


SCHEMAS = {
    "lock_acquired": LockAcquired,
    "lock_conflict": LockConflict,
    "lock_released": LockReleased,
    "lock_timeout": LockTimeout,
}
