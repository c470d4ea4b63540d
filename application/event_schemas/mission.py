"""Data schemas of the mission stream's events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Any

from marshmallow import ValidationError, fields, validate

from application.event_schemas.base import PRIORITY, EventSchema, json_object, optional_text, text

NON_NEGATIVE = validate.Range(min=0)
NOT_EMPTY = validate.Length(min=1, error="must name at least one field to change")


class Changes(fields.Nested):
    """A ``changes`` object: a nested schema, refused whole when not an object or empty."""

    def __init__(self, schema: type[EventSchema], **kwargs: Any):
        super().__init__(schema, required=True, validate=NOT_EMPTY, **kwargs)

    def _deserialize(
        self,
        value: Any,
        attr: str | None,
        data: Mapping[str, Any] | None,
        partial: bool | Sequence[str] | Set[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError("must be an object naming the fields to change")
        return super()._deserialize(value, attr, data, partial, **kwargs)


class MissionChanges(EventSchema):
    """The fields a mission update may change; unknown keys are refused."""

    title = text(1, 200)
    description = fields.String(allow_none=True, validate=validate.Length(max=10000))
    goals = fields.List(text(1, 1000))
    priority = fields.String(validate=PRIORITY)
    metadata = json_object()


class MissionCreated(EventSchema):
    title = text(1, 200, required=True)
    description = optional_text(10000)
    goals = fields.List(text(1, 1000), load_default=list)
    priority = fields.String(load_default="medium", validate=PRIORITY)
    metadata = json_object(load_default=dict)


class MissionUpdated(EventSchema):
    changes = Changes(MissionChanges)


class MissionStarted(EventSchema):
    started_at = fields.AwareDateTime(required=True)


class MissionCompleted(EventSchema):
    result = json_object(load_default=dict)
    sorties_completed = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)
    sorties_failed = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)
    duration_ms = fields.Integer(required=True, strict=True, validate=NON_NEGATIVE)


class MissionFailed(EventSchema):
    reason = text(1, 2000, required=True)
    result = json_object(load_default=None, allow_none=True)


class MissionCancelled(EventSchema):
    reason = optional_text(2000)


SCHEMAS = {
    "mission_created": MissionCreated,
    "mission_updated": MissionUpdated,
    "mission_started": MissionStarted,
    "mission_completed": MissionCompleted,
    "mission_failed": MissionFailed,
    "mission_cancelled": MissionCancelled,
}
