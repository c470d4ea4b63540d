"""Data schemas of the mailbox stream's events: a message sent, read, acked, archived or
requeued (their event types keep the catalogue's ``squawk_`` prefix, and so do the classes
named after them)."""

from __future__ import annotations

from marshmallow import fields, validate

from application.event_schemas.base import EventSchema, identifier, json_object, optional_text, text
from domain.mailbox import DEFAULT_MESSAGE_PRIORITY, MESSAGE_PRIORITIES

MESSAGE_PRIORITY = validate.OneOf(MESSAGE_PRIORITIES)


class SquawkSent(EventSchema):
    # Every squawk_sent names its mailbox, so a projection of messages needs no lookup.
    mailbox_id = identifier(required=True)
    message_id = text(1, 128, required=True)
    sender_id = optional_text(128, min_len=1)
    thread_id = optional_text(128, min_len=1)
    message_type = text(1, 100, required=True)
    content = json_object(required=True)
    priority = fields.String(load_default=DEFAULT_MESSAGE_PRIORITY, validate=MESSAGE_PRIORITY)


class SquawkRead(EventSchema):
    message_id = text(1, 128, required=True)
    reader_id = text(1, 128, required=True)


class SquawkAcked(EventSchema):
    message_id = text(1, 128, required=True)
    acker_id = text(1, 128, required=True)
    response = json_object(load_default=None, allow_none=True)


class SquawkArchived(EventSchema):
    message_id = text(1, 128, required=True)
    archived_by = text(1, 128, required=True)


class SquawkRequeued(EventSchema):
    message_id = text(1, 128, required=True)
    reason = optional_text(2000)


SCHEMAS = {
    "squawk_sent": SquawkSent,
    "squawk_read": SquawkRead,
    "squawk_acked": SquawkAcked,
    "squawk_archived": SquawkArchived,
    "squawk_requeued": SquawkRequeued,
}
