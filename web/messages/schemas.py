"""Request and response schemas of messages (in mailboxes)."""

from __future__ import annotations

from marshmallow import fields, validate

from application.event_schemas.base import ID_PATTERN, text
from application.event_schemas.mailbox import MESSAGE_PRIORITY
from domain.mailbox import DEFAULT_MESSAGE_PRIORITY, MESSAGE_STATUSES
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
    wait_seconds,
)

MAILBOX_ID = {
    "in": "path",
    "name": "mailbox_id",
    "description": "Any id of 1-128 letters, digits and _ . : -; a mailbox exists once it "
    "receives a message.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": ID_PATTERN},
}


@resource
class MessageSchema(ResourceSchema):
    id = fields.String(required=True, metadata={"description": "The message id (a UUID)."})
    mailbox_id = fields.String(required=True)
    sender_id = nullable_text()
    thread_id = nullable_text()
    message_type = fields.String(required=True)
    content = json_object(required=True)
    priority = fields.String(required=True, validate=MESSAGE_PRIORITY)
    status = fields.String(required=True, validate=validate.OneOf(MESSAGE_STATUSES))
    sent_at = timestamp(required=True)
    read_at = nullable_timestamp()
    acked_at = nullable_timestamp()
    reader_id = nullable_text()
    acker_id = nullable_text()
    response = json_object(allow_none=True)
    archived_by = nullable_text()
    archived_at = nullable_timestamp()
    requeue_count = fields.Integer(required=True)
    requeue_reason = nullable_text()
    stream_id = fields.String(required=True, metadata={"description": "The mailbox's stream."})
    version = fields.Integer(
        required=True,
        metadata={"description": "The mailbox's version (and ETag): If-Match names it."},
    )
    created_at = fields.String(
        required=True, metadata={"format": "date-time", "description": "When it was sent."}
    )


class SendSchema(BodySchema):
    message_type = text(1, 100, required=True)
    content = json_object(required=True)
    sender_id = text(1, 128)
    thread_id = text(1, 128)
    priority = fields.String(
        validate=MESSAGE_PRIORITY, metadata={"description": f"Default {DEFAULT_MESSAGE_PRIORITY}."}
    )


class ReadSchema(BodySchema):
    reader_id = text(1, 128, required=True)


class AckSchema(BodySchema):
    acker_id = text(1, 128, required=True)
    response = json_object()


class ArchiveSchema(BodySchema):
    archived_by = text(1, 128, required=True)


class RequeueSchema(BodySchema):
    reason = text(0, 2000)


class MessageQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(MESSAGE_STATUSES))
    wait = wait_seconds("When no message matches, wait up to this many seconds (0-30) for one.")


MessageResponseSchema = envelope("MessageResponse", "message", MessageSchema)
MessagePageSchema = page("MessagePage", "messages", MessageSchema)
