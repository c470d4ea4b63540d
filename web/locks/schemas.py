"""Request and response schemas of file locks."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from application.event_schemas.base import text
from application.event_schemas.lock import PATH_MAX, PURPOSE, TIMEOUT_MS
from application.services.locks import LOCK_STATUS_FILTERS
from domain.lock import LOCK_STATUSES
from web.schemas import (
    BodySchema,
    PageQuerySchema,
    ProblemSchema,
    ResourceSchema,
    StrictBoolean,
    envelope,
    nullable_text,
    nullable_timestamp,
    page,
    resource,
    timestamp,
)


@resource
class LockSchema(ResourceSchema):
    id = fields.String(required=True, metadata={"description": "The lock id, one per acquisition."})
    file = fields.String(required=True, metadata={"description": "The path as it was given."})
    normalized_path = fields.String(
        required=True, metadata={"description": "POSIX-normalised: a//b/./c/../d/ is a/b/d."}
    )
    reserved_by = fields.String(required=True, metadata={"description": "The holder."})
    reserved_at = timestamp(required=True)
    expires_at = timestamp(required=True)
    timeout_ms = fields.Integer(required=True)
    purpose = fields.String(required=True, validate=PURPOSE)
    checksum = nullable_text()
    status = fields.String(required=True, validate=validate.OneOf(LOCK_STATUSES))
    released_at = nullable_timestamp()
    released_by = nullable_text()
    stream_id = fields.String(
        required=True, metadata={"description": "The stream of the path (one per path)."}
    )
    version = fields.Integer(
        required=True,
        metadata={"description": "The path stream's version (and ETag): If-Match names it."},
    )
    created_at = fields.String(
        required=True, metadata={"format": "date-time", "description": "When it was acquired."}
    )


class AcquireSchema(BodySchema):
    file = text(1, PATH_MAX, required=True, metadata={"description": "The path to lock."})
    specialist_id = text(1, 128, required=True, metadata={"description": "Who takes it."})
    timeout_ms = fields.Integer(
        strict=True,
        validate=TIMEOUT_MS,
        metadata={"description": "How long it holds unless released; default 30000."},
    )
    purpose = fields.String(validate=PURPOSE, metadata={"description": "Default edit."})
    checksum = text(1, 256, metadata={"description": "The file's checksum, for the record."})


class ReleaseSchema(BodySchema):
    specialist_id = text(1, 128, required=True, metadata={"description": "Who releases it."})
    force = StrictBoolean(
        metadata={"description": "Release a lock held by someone else (recorded as forced)."}
    )


class LockQuerySchema(PageQuerySchema):
    status = fields.String(
        load_default="active",
        validate=validate.OneOf(LOCK_STATUS_FILTERS),
        metadata={"description": "Default active; all lists every status."},
    )
    specialist_id = fields.String(
        validate=validate.Length(min=1, max=128), metadata={"description": "The holder."}
    )


class LockHolderSchema(ma.Schema):
    id = fields.String(required=True)
    reserved_by = fields.String(required=True)
    expires_at = timestamp(required=True)


class LockConflictSchema(ProblemSchema):
    """The 409 of an acquisition: the path's holder (the refusal is recorded)."""

    lock = fields.Nested(LockHolderSchema, required=True)


LockResponseSchema = envelope("LockResponse", "lock", LockSchema)
LockPageSchema = page("LockPage", "locks", LockSchema)
