"""Data schemas of the sortie stream's events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marshmallow import ValidationError, fields, validate

from application.event_schemas.base import (
    ID_PATTERN,
    PRIORITY,
    EventSchema,
    identifier,
    json_object,
    optional_text,
    text,
)
from application.event_schemas.mission import Changes
from domain.sortie import (
    BLOCKER_TYPES,
    RELEASABLE,
    REVIEW_TYPES,
    SORTIE_RELEASE_REASONS,
    VERDICTS,
)

NON_NEGATIVE = validate.Range(min=0)
BLOCKER_TYPE = validate.OneOf(BLOCKER_TYPES)
REVIEW_TYPE = validate.OneOf(REVIEW_TYPES)
VERDICT = validate.OneOf(VERDICTS)


def unique_ids(value: Sequence[Any]) -> None:
    """A dependency list: non-empty id strings, each named once."""
    if any(not isinstance(item, str) or not item.strip() for item in value):
        raise ValidationError("dependency ids must be non-empty strings")
    duplicates = sorted({item for item in value if value.count(item) > 1})
    if duplicates:
        raise ValidationError(f"duplicate dependency ids: {', '.join(duplicates)}")


def dependencies(**kwargs: Any) -> fields.List[Any]:
    items = fields.String(validate=validate.Length(max=128))
    return fields.List(items, validate=unique_ids, **kwargs)


def optional_id() -> fields.String:
    return fields.String(
        load_default=None,
        allow_none=True,
        validate=[
            validate.Length(min=1, max=128),
            validate.Regexp(ID_PATTERN, error="must use only letters, digits and _ . : -"),
        ],
    )


def estimate(**kwargs: Any) -> fields.Integer:
    """Minutes of work a sortie is expected to take; None when unknown."""
    return fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=0, max=10_000_000), **kwargs
    )


def capabilities(**kwargs: Any) -> fields.List[Any]:
    """Capability names, as specialists register them (1-200 characters each)."""
    return fields.List(text(1, 200), **kwargs)


class SortieChanges(EventSchema):
    """The fields a sortie update may change; unknown keys are refused."""

    title = fields.String(allow_none=True, validate=validate.Length(min=1, max=200))
    description = text(1, 10000)
    priority = fields.String(validate=PRIORITY)
    metadata = json_object()
    dependencies = dependencies()
    estimate_minutes = estimate()


class SortieCreated(EventSchema):
    """Version 2 added ``estimate_minutes`` (version 1 events are read with None), version 3
    ``required_capabilities`` (older events are read with none)."""

    mission_id = optional_id()
    title = optional_text(200, min_len=1)
    description = text(1, 10000, required=True)
    priority = fields.String(load_default="medium", validate=PRIORITY)
    dependencies = dependencies(load_default=list)
    assigned_to = optional_id()
    metadata = json_object(load_default=dict)
    estimate_minutes = estimate(load_default=None)
    required_capabilities = capabilities(load_default=list)


class SortieUpdated(EventSchema):
    changes = Changes(SortieChanges)


class SortieAssigned(EventSchema):
    specialist_id = identifier(required=True)


class SortieReleased(EventSchema):
    reason = fields.String(required=True, validate=validate.OneOf(SORTIE_RELEASE_REASONS))
    previous_assignee = identifier(required=True)
    previous_status = fields.String(required=True, validate=validate.OneOf(RELEASABLE))


class SortieStarted(EventSchema):
    specialist_id = identifier(required=True)


class SortieProgress(EventSchema):
    progress = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=100))
    status_message = optional_text(2000)


class SortieBlocked(EventSchema):
    reason = text(1, 2000, required=True)
    blocker_type = fields.String(load_default="external", validate=BLOCKER_TYPE)
    blocker_id = optional_text(128, min_len=1)


class SortieUnblocked(EventSchema):
    resolution = optional_text(2000)


class SortieCompleted(EventSchema):
    result = json_object(load_default=dict)
    duration_ms = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)


class SortieFailed(EventSchema):
    error = text(1, 2000, required=True)
    result = json_object(load_default=None, allow_none=True)


class SortieCancelled(EventSchema):
    reason = optional_text(2000)


class ReviewStarted(EventSchema):
    review_id = text(1, 128, required=True)
    reviewer_id = text(1, 128, required=True)
    review_type = fields.String(load_default="general", validate=REVIEW_TYPE)


class ReviewCompleted(EventSchema):
    review_id = text(1, 128, required=True)
    verdict = fields.String(required=True, validate=VERDICT)
    feedback = optional_text(10000)


SCHEMAS = {
    "sortie_created": SortieCreated,
    "sortie_updated": SortieUpdated,
    "sortie_assigned": SortieAssigned,
    "sortie_released": SortieReleased,
    "sortie_started": SortieStarted,
    "sortie_progress": SortieProgress,
    "sortie_blocked": SortieBlocked,
    "sortie_unblocked": SortieUnblocked,
    "sortie_completed": SortieCompleted,
    "sortie_failed": SortieFailed,
    "sortie_cancelled": SortieCancelled,
    "review_started": ReviewStarted,
    "review_completed": ReviewCompleted,
}
