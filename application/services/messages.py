"""Messages in mailboxes: sent, listed and moved through their lifecycle.

A message id is a plain uuid4 made here; the commands on a message name no
mailbox, so the mailbox is looked up in ``message_directory`` (a projection
table, see ``application.projections.messages``). That mapping never changes, so
a row once found is final and needs no wait; only an id not found yet waits for
the projections to reach the head of the log before it is a ``NotFound``. The
message's state is always read from the mailbox aggregate, never from a row, and
every write honours ``expected_version`` on the mailbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from marshmallow import Schema

from application.errors import NotFound, PreconditionFailed, ValidationError
from application.event_schemas.base import identifier, load
from application.idempotency import idempotent
from application.outcomes import Written
from application.registry import get_event_type
from application.resources import message_resource
from application.services.base import HOT_STREAM_ATTEMPTS, Service, given
from application.store.query import EventFilter
from application.waits import MAX_WAIT, Interest, check_wait
from domain.base import FleetAggregate
from domain.envelope import caused_by, new_id
from domain.mailbox import MESSAGE_STATUSES, Mailbox, mailbox_stream_id

MAILBOX_ID = Schema.from_dict({"mailbox_id": identifier(required=True)}, name="MailboxId")


class MessageService(Service):
    @idempotent
    def send_message(
        self,
        mailbox_id: str,
        message_type: str,
        content: dict[str, Any],
        sender_id: str | None = None,
        thread_id: str | None = None,
        priority: str | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        """Send a message; the first one opens the mailbox. ``expected_version`` is the
        mailbox's (a mailbox with no messages yet has none: that fails the precondition)."""
        data = get_event_type("squawk_sent").validate(
            given(
                mailbox_id=mailbox_id,
                message_id=new_id(),
                message_type=message_type,
                content=content,
                sender_id=sender_id,
                thread_id=thread_id,
                priority=priority,
            )
        )
        holder: list[Mailbox] = []

        def decide() -> list[FleetAggregate]:
            try:
                mailbox: Mailbox = self.app.get(mailbox_stream_id(data["mailbox_id"]))
            except AggregateNotFoundError:
                if expected_version is not None:
                    raise PreconditionFailed(expected_version, 0) from None  # none yet
                mailbox = Mailbox.open_with(**data)
            else:
                self.check_version(mailbox, expected_version)
                mailbox.send(**{k: v for k, v in data.items() if k != "mailbox_id"})
            holder[:] = [mailbox]
            return [mailbox]

        result = self._command(
            decide,
            lambda: message_resource(holder[0], data["message_id"]),
            expected_version=expected_version,
            attempts=HOT_STREAM_ATTEMPTS,  # every sender to this mailbox writes its stream
        )
        return result

    def list_messages(
        self,
        mailbox_id: str,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
        wait: float | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """A mailbox's messages in the order they were sent (none for an unknown mailbox).

        A ``mailbox_id`` no message could ever be sent to is a 422, as it is for a send.
        With ``wait`` (seconds, 0-30), an empty answer waits until a message matching the
        filters exists, or the time is up.
        """
        load(MAILBOX_ID(), {"mailbox_id": mailbox_id})
        if status is not None and status not in MESSAGE_STATUSES:
            statuses = ", ".join(MESSAGE_STATUSES)
            raise ValidationError({"status": [f"must be one of: {statuses}"]})
        seconds = check_wait(wait)
        stream = str(mailbox_stream_id(mailbox_id))

        def attempt(seen: int) -> tuple[list[dict[str, Any]], int]:
            return self._page(
                "messages_projection",
                [("t.mailbox_id", mailbox_id), ("t.status", status)],
                "t.sent_position",
                limit,
                offset,
                max(min_position or 0, seen) or None,
                join=" JOIN mailboxes_projection m ON m.stream_id = t.stream_id",
                columns="t.resource, m.version AS mailbox_version",
            )

        return self.watcher.first(
            seconds, Interest(stream_id=stream), attempt, lambda found: bool(found[0])
        )

    def wait_for_messages(
        self,
        mailbox_id: str,
        status: str | None = None,
        wait: float = MAX_WAIT,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The mailbox's messages (with ``status``), waiting up to ``wait`` s for one."""
        messages, _ = self.list_messages(mailbox_id, status, limit, offset, wait=wait)
        return messages

    def get_message(self, message_id: str) -> dict[str, Any]:
        stream, _ = self._find_message(message_id)
        mailbox = self._load(Mailbox, stream, f"message {message_id!r}")
        self._require(mailbox, message_id)
        return message_resource(mailbox, message_id)

    @idempotent
    def read_message(
        self,
        message_id: str,
        reader_id: str,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        data = self._validated("squawk_read", reader_id=reader_id)
        return self._on_message(
            message_id, lambda m: m.read(message_id, data["reader_id"]), expected_version
        )

    @idempotent
    def ack_message(
        self,
        message_id: str,
        acker_id: str,
        response: dict[str, Any] | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        """Acknowledge a message: the ack is caused by the message's ``squawk_sent``
        (its ``causation_id``) and continues that event's correlation."""
        data = self._validated("squawk_acked", acker_id=acker_id, response=response)
        stream, sent_position = self._find_message(message_id)
        sent = self._sent_event(sent_position)

        def ack(mailbox: Mailbox) -> None:
            with caused_by(sent):
                mailbox.ack(message_id, data["acker_id"], data["response"])

        return self._on_message(message_id, ack, expected_version, stream)

    @idempotent
    def archive_message(
        self,
        message_id: str,
        archived_by: str,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        data = self._validated("squawk_archived", archived_by=archived_by)
        return self._on_message(
            message_id, lambda m: m.archive(message_id, data["archived_by"]), expected_version
        )

    @idempotent
    def requeue_message(
        self,
        message_id: str,
        reason: str | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        """Return a read or acked message to ``pending`` (its delivery details are cleared)."""
        data = self._validated("squawk_requeued", reason=reason)
        return self._on_message(
            message_id, lambda m: m.requeue(message_id, data["reason"]), expected_version
        )

    # Helpers

    @staticmethod
    def _validated(event_type: str, **fields: Any) -> dict[str, Any]:
        """Check a command's fields; the message id is the path's, checked by the lookup."""
        return get_event_type(event_type).validate(given(**fields), partial=("message_id",))

    def _on_message(
        self,
        message_id: str,
        command: Callable[[Mailbox], None],
        expected_version: int | None,
        stream: UUID | None = None,
    ) -> Written:
        if stream is None:
            stream, _ = self._find_message(message_id)

        def checked(mailbox: Mailbox) -> None:
            self._require(mailbox, message_id)
            command(mailbox)

        label = f"message {message_id!r}"
        return self._change(
            Mailbox,
            stream,
            label,
            checked,
            lambda mailbox: message_resource(mailbox, message_id),
            expected_version,
        )

    @staticmethod
    def _require(mailbox: Mailbox, message_id: str) -> None:
        """A restore may take a mailbox back to before a message was sent."""
        if message_id not in mailbox.messages:
            raise NotFound(f"message {message_id!r} not found")

    def _find_message(self, message_id: str) -> tuple[UUID, int]:
        """The message's mailbox stream and the position of its ``squawk_sent`` event."""
        if "\x00" in message_id:
            raise NotFound("message not found")  # no id holds NUL (PostgreSQL cannot store it)
        row = self._directory_row(message_id)
        if row is None:
            # Perhaps sent but not projected yet: only then is waiting worth it.
            self.projector.wait_for(self._head(), self.min_position_timeout)
            row = self._directory_row(message_id)
        if row is None:
            raise NotFound(f"message {message_id!r} not found")
        return UUID(row["stream_id"]), int(row["sent_position"])

    def _directory_row(self, message_id: str) -> Any:
        with self.projector.read() as tx:
            rows = tx.fetchall(
                "SELECT stream_id, sent_position FROM message_directory WHERE message_id = ?",
                [message_id],
            )
        return rows[0] if rows else None

    def _sent_event(self, position: int) -> FleetAggregate.Event:
        page = self.app.index.select_event_page(EventFilter(position=position), 1)
        return cast(
            FleetAggregate.Event, self.app.mapper.to_domain_event(page.events[0].notification)
        )
