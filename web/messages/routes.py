"""Message endpoints: send to a mailbox, list it, and move a message through its lifecycle.

A message's ``version`` and ETag are its mailbox's: If-Match on any of these writes
names the mailbox's version, so a write based on a stale read of the mailbox is a 412.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.views import MethodView

from application.outcomes import Written
from web.extensions import ETAG_HEADER, WRITE_HEADERS, Blueprint
from web.messages.schemas import (
    MAILBOX_ID,
    AckSchema,
    ArchiveSchema,
    MessagePageSchema,
    MessageQuerySchema,
    MessageResponseSchema,
    ReadSchema,
    RequeueSchema,
    SendSchema,
)
from web.request_cycle import Answer, command, fleet, found, if_match, listed, written

# The blueprint keeps the name "squawks": it is the OpenAPI tag of these operations (and the
# prefix of their endpoint names), which clients may group by.
blp = Blueprint(
    "squawks",
    __name__,
    url_prefix="/api/v1",
    description="Squawks: durable messages in mailboxes, pending → read → acked → archived.",
)


@blp.route("/mailboxes/<mailbox_id>/messages", parameters=[MAILBOX_ID])
class Messages(MethodView):
    @blp.doc(operationId="list_messages")
    @blp.arguments(MessageQuerySchema, location="query")
    @blp.response(200, MessagePageSchema)
    @blp.problems(422, 503)
    def get(self, args: dict[str, Any], mailbox_id: str) -> dict[str, Any]:
        """List a mailbox's messages in the order they were sent

        A mailbox that never received a message answers an empty list.
        """
        return listed("messages", fleet().list_messages(mailbox_id, **args), args)

    @blp.doc(operationId="send_message")
    @blp.arguments(SendSchema)
    @blp.response(201, MessageResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(422)
    @blp.conditional
    @blp.links((201,), read_message="message_id=/message/id")
    def post(self, args: dict[str, Any], mailbox_id: str) -> Answer:
        """Send a message (the first one opens the mailbox)

        If-Match names the mailbox's version: a mailbox with no messages has none (412).
        """
        with command():
            message = fleet().send_message(mailbox_id, expected_version=if_match(), **args)
        return written({"message": message}, message, 201)


@blp.route("/messages/<message_id>")
class MessageById(MethodView):
    @blp.doc(operationId="get_message")
    @blp.response(200, MessageResponseSchema, headers=ETAG_HEADER)
    @blp.problems(404, 503)
    def get(self, message_id: str) -> Answer:
        """Get a message (its version and ETag are its mailbox's)"""
        message = fleet().get_message(message_id)
        return found({"message": message}, message["version"])


def on_message(move: Callable[..., Written], message_id: str, args: dict[str, Any]) -> Answer:
    """Run one lifecycle command on a message, with If-Match on its mailbox."""
    with command():
        message = move(message_id, expected_version=if_match(), **args)
    return written({"message": message}, message)


@blp.route("/messages/<message_id>/read")
class Read(MethodView):
    @blp.doc(operationId="read_message")
    @blp.arguments(ReadSchema)
    @blp.response(200, MessageResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422, 503)
    @blp.conditional
    @blp.links((200,), ack_message="message_id=/message/id")
    def post(self, args: dict[str, Any], message_id: str) -> Answer:
        """Mark a pending message read"""
        return on_message(fleet().read_message, message_id, args)


@blp.route("/messages/<message_id>/ack")
class Ack(MethodView):
    @blp.doc(operationId="ack_message")
    @blp.arguments(AckSchema)
    @blp.response(200, MessageResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422, 503)
    @blp.conditional
    @blp.links(
        (200,),
        archive_message="message_id=/message/id",
        requeue_message="message_id=/message/id",
    )
    def post(self, args: dict[str, Any], message_id: str) -> Answer:
        """Acknowledge a read message

        The squawk_acked event's causation_id is the squawk_sent event's event_id; its
        correlation_id is this request's (its X-Correlation-ID, or the one made for it).
        """
        return on_message(fleet().ack_message, message_id, args)


@blp.route("/messages/<message_id>/archive")
class Archive(MethodView):
    @blp.doc(operationId="archive_message")
    @blp.arguments(ArchiveSchema)
    @blp.response(200, MessageResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422, 503)
    @blp.conditional
    def post(self, args: dict[str, Any], message_id: str) -> Answer:
        """Archive an acked message (final)"""
        return on_message(fleet().archive_message, message_id, args)


@blp.route("/messages/<message_id>/requeue")
class Requeue(MethodView):
    @blp.doc(operationId="requeue_message")
    @blp.arguments(RequeueSchema, required=False)
    @blp.response(200, MessageResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422, 503)
    @blp.conditional
    def post(self, args: dict[str, Any], message_id: str) -> Answer:
        """Return a read or acked message to pending"""
        return on_message(fleet().requeue_message, message_id, args)
