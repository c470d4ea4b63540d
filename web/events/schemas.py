"""Query and response schemas of the event log."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from application.registry import event_types
from web.schemas import (
    NON_NEGATIVE,
    POSITIVE,
    AnswerSchema,
    PagingSchema,
    QuerySchema,
    envelope,
    json_object,
    nullable_text,
    page,
    timestamp,
    wait_seconds,
)

# What ``type`` accepts, as the service reads it: comma-separated known types, each
# stripped of whitespace, empty items ignored. Documented only: the service's own 422
# lists the valid types.
_ONE_TYPE = "(?:" + "|".join(event_types()) + ")"
TYPE_LIST = rf"^\s*(?:{_ONE_TYPE}\s*)?(?:,\s*(?:{_ONE_TYPE}\s*)?)*$"


class EventSchema(ma.Schema):
    id = fields.Integer(required=True, metadata={"description": "The global position."})
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    stream_id = fields.String(required=True)
    stream_type = fields.String(required=True)
    sequence_number = fields.Integer(required=True, metadata={"description": "Stream version."})
    causation_id = nullable_text()
    correlation_id = fields.String(required=True)
    data = json_object(required=True)
    metadata = json_object(required=True)
    schema_version = fields.Integer(required=True)
    created_at = timestamp(required=True)


def type_filter() -> fields.String:
    """``?type=``: which event types, as the event list and the feed take it."""
    return fields.String(
        validate=validate.Length(min=1, max=2000),
        metadata={
            "description": "One event type or a comma list; unknown ones are a 422.",
            "pattern": TYPE_LIST,
        },
    )


def id_filter() -> fields.String:
    """``?stream_id=`` or ``?correlation_id=``: events of that one id."""
    return fields.String(validate=validate.Length(min=1, max=200))


class EventQuerySchema(PagingSchema):
    type = type_filter()
    stream_id = id_filter()
    correlation_id = id_filter()
    after = fields.Integer(
        validate=NON_NEGATIVE, metadata={"description": "Only events after this position."}
    )
    min_position = fields.Integer(
        validate=NON_NEGATIVE,
        metadata={
            "description": "As on the other lists. The log is read directly and every "
            "existing position is in it, so there is no wait; a position beyond the log's "
            "head names no event yet: 422 at once, naming min_position."
        },
    )
    wait = wait_seconds(
        "When no event matches, wait up to this many seconds (0-30) for one past `after` "
        "(0 when not given)."
    )


class FeedQuerySchema(QuerySchema):
    type = type_filter()
    stream_id = id_filter()
    correlation_id = id_filter()
    after = fields.Integer(
        validate=NON_NEGATIVE,
        metadata={"description": "Start after this position (Last-Event-ID wins when sent)."},
    )


class StreamQuerySchema(QuerySchema):
    from_sequence = fields.Integer(validate=POSITIVE, metadata={"description": "Inclusive."})
    to_sequence = fields.Integer(validate=POSITIVE, metadata={"description": "Inclusive."})


EventResponseSchema = envelope("EventResponse", "event", EventSchema)
EventPageSchema = page("EventPage", "events", EventSchema)
StreamEventsSchema = AnswerSchema.from_dict(
    {
        "events": fields.List(fields.Nested(EventSchema), required=True),
        "stream_id": fields.String(required=True),
    },
    name="StreamEvents",
)
