"""Query and response schemas of the event log."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from web.schemas import (
    NON_NEGATIVE,
    POSITIVE,
    PagingSchema,
    QuerySchema,
    envelope,
    json_object,
    nullable_text,
    page,
    timestamp,
    wait_seconds,
)


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


class EventQuerySchema(PagingSchema):
    type = fields.String(
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "One event type or a comma list; unknown ones are a 422."},
    )
    stream_id = fields.String(validate=validate.Length(min=1, max=200))
    correlation_id = fields.String(validate=validate.Length(min=1, max=200))
    after = fields.Integer(
        validate=NON_NEGATIVE, metadata={"description": "Only events after this position."}
    )
    wait = wait_seconds(
        "When no event matches, wait up to this many seconds (0-30) for one past `after` "
        "(0 when not given)."
    )


class FeedQuerySchema(QuerySchema):
    type = EventQuerySchema._declared_fields["type"]
    stream_id = EventQuerySchema._declared_fields["stream_id"]
    correlation_id = EventQuerySchema._declared_fields["correlation_id"]
    after = fields.Integer(
        validate=NON_NEGATIVE,
        metadata={"description": "Start after this position (Last-Event-ID wins when sent)."},
    )


class StreamQuerySchema(QuerySchema):
    from_sequence = fields.Integer(validate=POSITIVE, metadata={"description": "Inclusive."})
    to_sequence = fields.Integer(validate=POSITIVE, metadata={"description": "Inclusive."})


EventResponseSchema = envelope("EventResponse", "event", EventSchema)
EventPageSchema = page("EventPage", "events", EventSchema)
StreamEventsSchema = ma.Schema.from_dict(
    {
        "events": fields.List(fields.Nested(EventSchema), required=True),
        "stream_id": fields.String(required=True),
    },
    name="StreamEvents",
)
