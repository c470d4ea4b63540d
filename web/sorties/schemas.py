"""Request and response schemas of sorties."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from application.event_schemas.base import identifier, text
from domain.sortie import (
    BLOCKER_TYPES,
    PATCH_STATUSES,
    REVIEW_TYPES,
    REWORK_VERDICTS,
    SORTIE_STATUSES,
    VERDICTS,
    patch_field_errors,
)
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


def estimate_minutes() -> fields.Integer:
    return fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=10_000_000),
        metadata={"description": "Expected minutes of work (0 or more)."},
    )


def capability_list(**kwargs: Any) -> fields.List:
    return fields.List(text(1, 200), **kwargs)


def sortie_ids(**kwargs: Any) -> fields.List:
    return fields.List(fields.String(validate=validate.Length(min=1, max=128)), **kwargs)


class BlockerSchema(ma.Schema):
    reason = fields.String(required=True)
    blocker_type = fields.String(required=True, validate=validate.OneOf(BLOCKER_TYPES))
    blocker_id = nullable_text()


class ReviewSchema(ma.Schema):
    review_id = fields.String(required=True)
    reviewer_id = fields.String(required=True)
    review_type = fields.String(required=True, validate=validate.OneOf(REVIEW_TYPES))
    verdict = fields.String(allow_none=True, validate=validate.OneOf(VERDICTS))
    feedback = nullable_text()


@resource
class SortieSchema(ResourceSchema):
    mission_id = nullable_text()
    title = nullable_text()
    description = fields.String(required=True)
    priority = priority(required=True)
    metadata = json_object(required=True)
    status = fields.String(required=True, validate=validate.OneOf(SORTIE_STATUSES))
    dependencies = fields.List(fields.String(), required=True)
    blocked_by = fields.List(
        fields.String(), required=True, metadata={"description": "Dependencies not completed."}
    )
    assigned_to = nullable_text()
    estimate_minutes = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "Expected minutes of work; null when not estimated."},
    )
    required_capabilities = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "A claimer must have every one of these capabilities."},
    )
    progress = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    status_message = nullable_text()
    result = json_object(allow_none=True)
    error = nullable_text()
    blocker = fields.Nested(BlockerSchema, allow_none=True)
    review = fields.Nested(ReviewSchema, allow_none=True)
    started_at = nullable_timestamp()
    completed_at = nullable_timestamp()


class SortieCreateSchema(BodySchema):
    description = text(1, 10000, required=True)
    mission_id = text(1, 128, metadata={"description": "An existing mission, not final."})
    title = text(1, 200)
    priority = priority()
    dependencies = sortie_ids(metadata={"description": "Ids of existing sorties."})
    assigned_to = identifier(metadata={"description": "A registered specialist."})
    metadata = json_object()
    estimate_minutes = estimate_minutes()
    required_capabilities = capability_list(
        metadata={"description": "Capabilities a claimer needs (POST /sorties/claim); none."}
    )


class SortiePatchSchema(StatusPatchSchema):
    """One status change per request; see the table of the API contract."""

    STATUS_RULE = staticmethod(patch_field_errors)

    status = fields.String(validate=validate.OneOf(PATCH_STATUSES))
    assigned_to = identifier(metadata={"description": "To assigned: a registered specialist."})
    resolution = text(0, 2000, metadata={"description": "blocked to in_progress."})
    verdict = fields.String(
        validate=validate.OneOf(REWORK_VERDICTS),
        metadata={"description": "review to in_progress (required there)."},
    )
    feedback = text(0, 10000, metadata={"description": "Leaving review."})
    reason = text(1, 2000, metadata={"description": "To blocked (required) or cancelled."})
    blocker_type = fields.String(validate=validate.OneOf(BLOCKER_TYPES))
    blocker_id = text(1, 128)
    reviewer_id = text(1, 128, metadata={"description": "To review (required)."})
    review_type = fields.String(validate=validate.OneOf(REVIEW_TYPES))
    result = json_object(metadata={"description": "To completed or failed."})
    error = text(1, 2000, metadata={"description": "To failed (required)."})
    progress = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=100),
        metadata={"description": "0-100, while in_progress."},
    )
    status_message = text(0, 2000, metadata={"description": "With progress."})
    title = text(1, 200)
    description = text(1, 10000)
    priority = priority()
    metadata = json_object()
    dependencies = sortie_ids(metadata={"description": "While pending or assigned; no cycles."})
    estimate_minutes = estimate_minutes()


class ClaimSchema(BodySchema):
    specialist_id = identifier(
        required=True, metadata={"description": "The claimer: a registered, live specialist."}
    )
    mission_id = text(1, 128, metadata={"description": "Claim only from this mission."})
    capabilities = capability_list(
        metadata={"description": "The claimer's capabilities; default: those it registered."}
    )


class SortieQuerySchema(PageQuerySchema):
    mission_id = fields.String(validate=validate.Length(min=1, max=128))
    status = fields.String(validate=validate.OneOf(SORTIE_STATUSES))
    assigned_to = fields.String(validate=validate.Length(min=1, max=128))
    priority = priority()


SortieResponseSchema = envelope("SortieResponse", "sortie", SortieSchema)
SortiePageSchema = page("SortiePage", "sorties", SortieSchema)
