"""Request and response schemas of specialists."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from application.event_schemas.base import identifier, text
from application.event_schemas.specialist import NOT_RESERVED
from domain.specialist import (
    COMPLETION_REASONS,
    HEARTBEAT_STATUSES,
    RESERVED_IDS,
    SPECIALIST_STATUSES,
)
from web.schemas import (
    BodySchema,
    PageQuerySchema,
    ResourceSchema,
    envelope,
    json_object,
    nullable_text,
    nullable_timestamp,
    page,
    resource,
    timestamp,
)

SPAWN_ONLY = ("mission_id", "sortie_id", "config")


@resource
class SpecialistSchema(ResourceSchema):
    id = fields.String(required=True, metadata={"description": "The registered specialist_id."})
    name = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(SPECIALIST_STATUSES))
    capabilities = fields.List(fields.String(), required=True)
    metadata = json_object(required=True)
    current_sortie = nullable_text()
    spawned_by = nullable_text()
    registered_at = timestamp(required=True)
    last_seen = nullable_timestamp()


class RegisterSchema(BodySchema):
    specialist_id = identifier(
        NOT_RESERVED,
        required=True,
        metadata={"description": "Not a reserved word: " + ", ".join(RESERVED_IDS) + "."},
    )
    name = text(1, 200, required=True)
    capabilities = fields.List(
        text(1, 200), metadata={"description": "Omitted on re-registration: kept as they were."}
    )
    metadata = json_object(metadata={"description": "Omitted on re-registration: kept."})
    spawned_by = text(1, 128, metadata={"description": "Who spawned it: also records spawned."})
    mission_id = text(0, 128, metadata={"description": "With spawned_by: the spawning mission."})
    sortie_id = text(0, 128, metadata={"description": "With spawned_by: the spawning sortie."})
    config = json_object(metadata={"description": "With spawned_by: the spawn configuration."})

    @ma.validates_schema
    def spawn_fields_need_spawned_by(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "spawned_by" not in data:
            errors = {name: ["only allowed with spawned_by"] for name in SPAWN_ONLY if name in data}
            if errors:
                raise ma.ValidationError(errors)


class HeartbeatSchema(BodySchema):
    status = fields.String(validate=validate.OneOf(HEARTBEAT_STATUSES))
    current_sortie = text(0, 128)
    metrics = json_object()
    metadata = json_object()


class CompleteSchema(BodySchema):
    reason = fields.String(required=True, validate=validate.OneOf(COMPLETION_REASONS))
    summary = text(0, 10000)
    final_checkpoint_id = text(0, 128)


class FailSchema(BodySchema):
    error = text(1, 2000, required=True)
    details = json_object()


class SpecialistQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(SPECIALIST_STATUSES))
    capability = fields.String(validate=validate.Length(min=1, max=200))


SpecialistResponseSchema = envelope("SpecialistResponse", "specialist", SpecialistSchema)
SpecialistPageSchema = page("SpecialistPage", "specialists", SpecialistSchema)
