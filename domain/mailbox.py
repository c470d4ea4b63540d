"""Mailboxes: the messages sent to one recipient, each with its own delivery status.

One stream per mailbox, so that a mailbox's messages are ordered and a
mailbox can be listed without scanning other streams. The first message opens
the stream (``Created``, topic ``squawk_sent``); later ones are ``Sent``
(topic ``squawk_sent.again``, same public type).

Message status: ``pending → read → acked → archived``. ``requeue`` returns a
``read`` or ``acked`` message to ``pending`` (a reader that crashed, or an ack
that has to be redone); a pending message has nothing to requeue and an
archived one is final. Requeue clears the read/ack details of the last
delivery (the events keep them) and counts the requeues.

Message records are JSON-ready (timestamps as ISO strings), so that
``state_dict`` and checkpoints keep them verbatim.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import FleetAggregate, Lifecycle
from domain.errors import RuleError, TransitionError

MESSAGE_PRIORITIES = ("low", "normal", "high", "urgent")
DEFAULT_MESSAGE_PRIORITY = "normal"

MESSAGE_LIFECYCLE = Lifecycle(
    "message",
    {
        "pending": {"read"},
        "read": {"acked", "pending"},
        "acked": {"archived", "pending"},
        "archived": set(),
    },
)
MESSAGE_STATUSES = MESSAGE_LIFECYCLE.statuses


def mailbox_stream_id(mailbox_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"fleet:/mailboxes/{mailbox_id}")


def _check_message(message_type: str, content: Any, priority: str) -> None:
    if not isinstance(message_type, str) or not message_type:
        raise RuleError("message_type must be a non-empty string")
    if not isinstance(content, dict):
        raise RuleError("content must be a JSON object")
    if priority not in MESSAGE_PRIORITIES:
        raise RuleError(
            f"priority must be one of {', '.join(MESSAGE_PRIORITIES)}, not {priority!r}"
        )


@dataclass(frozen=True, kw_only=True)
class MessageSent:
    """The data of squawk_sent, shared by its stream-starting and later classes."""

    mailbox_id: str
    message_id: str
    message_type: str
    content: dict[str, Any]
    priority: str
    sender_id: str | None = None
    thread_id: str | None = None


class Mailbox(FleetAggregate):
    TOPIC = "mailbox"
    STREAM_TYPE = "mailbox"
    # Per-message timestamps live inside ``messages`` as ISO strings.
    DATETIME_FIELDS = frozenset()
    LIFECYCLE = MESSAGE_LIFECYCLE

    @staticmethod
    def create_id(mailbox_id: str) -> UUID:
        return mailbox_stream_id(mailbox_id)

    class Created(MessageSent, FleetAggregate.Created):
        """The first message opens the mailbox's stream."""

        TOPIC = "squawk_sent"
        event_type = "squawk_sent"

        def apply(self, aggregate: Mailbox) -> None:
            aggregate._open(self)

    class Sent(MessageSent, FleetAggregate.Event):
        """A further message: same public type, not a stream start."""

        TOPIC = "squawk_sent.again"
        event_type = "squawk_sent"

        def apply(self, aggregate: Mailbox) -> None:
            aggregate._add(self)

    class Read(FleetAggregate.Event):
        TOPIC = "squawk_read"
        event_type = "squawk_read"
        message_id: str
        reader_id: str

        def apply(self, aggregate: Mailbox) -> None:
            aggregate._update(
                self,
                status="read",
                reader_id=self.reader_id,
                read_at=self.timestamp.isoformat(),
            )

    class Acked(FleetAggregate.Event):
        TOPIC = "squawk_acked"
        event_type = "squawk_acked"
        message_id: str
        acker_id: str
        response: dict[str, Any] | None = None

        def apply(self, aggregate: Mailbox) -> None:
            aggregate._update(
                self,
                status="acked",
                acker_id=self.acker_id,
                response=self.response,
                acked_at=self.timestamp.isoformat(),
            )

    class Archived(FleetAggregate.Event):
        TOPIC = "squawk_archived"
        event_type = "squawk_archived"
        message_id: str
        archived_by: str

        def apply(self, aggregate: Mailbox) -> None:
            aggregate._update(
                self,
                status="archived",
                archived_by=self.archived_by,
                archived_at=self.timestamp.isoformat(),
            )

    class Requeued(FleetAggregate.Event):
        TOPIC = "squawk_requeued"
        event_type = "squawk_requeued"
        message_id: str
        reason: str | None = None

        def apply(self, aggregate: Mailbox) -> None:
            previous = aggregate.messages[self.message_id]
            aggregate._update(
                self,
                status="pending",
                reader_id=None,
                read_at=None,
                acker_id=None,
                acked_at=None,
                response=None,
                requeue_count=previous["requeue_count"] + 1,
                requeue_reason=self.reason,
            )

    # State changes shared by the events (assign only; rules are in the commands).

    def _open(self, event: Created) -> None:
        self.mailbox_id: str = event.mailbox_id
        self.messages: dict[str, dict[str, Any]] = {}
        self._add(event)

    def _add(self, event: Created | Sent) -> None:
        at = event.timestamp.isoformat()
        self.messages[event.message_id] = {
            "message_id": event.message_id,
            "mailbox_id": self.mailbox_id,
            "sender_id": event.sender_id,
            "thread_id": event.thread_id,
            "message_type": event.message_type,
            "content": copy.deepcopy(event.content),
            "priority": event.priority,
            "status": "pending",
            "sent_at": at,
            "reader_id": None,
            "read_at": None,
            "acker_id": None,
            "acked_at": None,
            "response": None,
            "archived_by": None,
            "archived_at": None,
            "requeue_count": 0,
            "requeue_reason": None,
            "updated_at": at,
        }

    def _update(self, event: Read | Acked | Archived | Requeued, **changes: Any) -> None:
        # A new record, never an in-place edit: records may be shared with old events.
        record = {**self.messages[event.message_id], **changes}
        record["updated_at"] = event.timestamp.isoformat()
        self.messages[event.message_id] = record

    # Queries.

    def message(self, message_id: str) -> dict[str, Any]:
        """The message's record; RuleError when the mailbox has no such message."""
        try:
            return self.messages[message_id]
        except KeyError:
            raise RuleError(f"message {message_id} not in mailbox {self.mailbox_id}") from None

    def _move(self, message_id: str, target: str) -> None:
        current = self.message(message_id)["status"]
        if target not in self.LIFECYCLE.allowed(current):
            raise TransitionError(
                f"message {message_id}", current, target, self.LIFECYCLE.allowed(current)
            )

    # Commands: check the rule, then record the event.

    @classmethod
    def open_with(
        cls,
        mailbox_id: str,
        message_id: str,
        message_type: str,
        content: dict[str, Any],
        priority: str = DEFAULT_MESSAGE_PRIORITY,
        sender_id: str | None = None,
        thread_id: str | None = None,
    ) -> Mailbox:
        """Start a mailbox's stream with its first message."""
        _check_message(message_type, content, priority)
        return cls._create(
            cls.Created,
            mailbox_id=mailbox_id,
            message_id=message_id,
            message_type=message_type,
            content=content,
            priority=priority,
            sender_id=sender_id,
            thread_id=thread_id,
        )

    def send(
        self,
        message_id: str,
        message_type: str,
        content: dict[str, Any],
        priority: str = DEFAULT_MESSAGE_PRIORITY,
        sender_id: str | None = None,
        thread_id: str | None = None,
    ) -> None:
        if message_id in self.messages:
            raise RuleError(f"message {message_id} already in mailbox {self.mailbox_id}")
        _check_message(message_type, content, priority)
        self.trigger_event(
            self.Sent,
            mailbox_id=self.mailbox_id,
            message_id=message_id,
            message_type=message_type,
            content=content,
            priority=priority,
            sender_id=sender_id,
            thread_id=thread_id,
        )

    def read(self, message_id: str, reader_id: str) -> None:
        self._move(message_id, "read")
        self.trigger_event(self.Read, message_id=message_id, reader_id=reader_id)

    def ack(self, message_id: str, acker_id: str, response: dict[str, Any] | None = None) -> None:
        self._move(message_id, "acked")
        if response is not None and not isinstance(response, dict):
            raise RuleError("response must be a JSON object")
        self.trigger_event(self.Acked, message_id=message_id, acker_id=acker_id, response=response)

    def archive(self, message_id: str, archived_by: str) -> None:
        self._move(message_id, "archived")
        self.trigger_event(self.Archived, message_id=message_id, archived_by=archived_by)

    def requeue(self, message_id: str, reason: str | None = None) -> None:
        self._move(message_id, "pending")
        self.trigger_event(self.Requeued, message_id=message_id, reason=reason)
