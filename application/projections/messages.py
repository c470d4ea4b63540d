"""``messages_projection``: messages by mailbox and status, in the order they were sent.

A message is part of its mailbox aggregate, so the mailbox is the row that
``RowProjection`` folds (``mailboxes_projection``, by the aggregate's own apply
methods) and each message row is derived from it in ``after_page``: only the
messages the page's events name are rewritten, and a checkpoint restore
(``fleet_recovered``) resyncs the whole mailbox, dropping messages it no longer has.

``message_directory`` maps a message id to its mailbox stream and the global
position of its ``squawk_sent`` event. A message never changes mailbox, so the
table is insert-only and a row once found is never stale: commands on a message
(whose path names no mailbox) find the mailbox there, and the ack finds its cause.
The sent position also orders a mailbox's messages exactly, whatever the clocks say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from application.projections.base import Fold, RowProjection, RowTable, Touched
from application.projections.view import ViewTx
from application.resources import common, message_resource
from domain.base import FleetRecovered
from domain.mailbox import Mailbox

MAILBOXES = RowTable(
    table="mailboxes_projection",
    aggregate_type=Mailbox,
    public_id=lambda m: m.mailbox_id,
    columns=lambda m: {},
    render=lambda m: {"id": m.mailbox_id, "messages": len(m.messages), **common(m)},
)
# The sent position comes from the directory, written earlier in the same transaction.
UPSERT_MESSAGE = (
    "INSERT INTO messages_projection "
    "(message_id, stream_id, mailbox_id, status, sent_position, resource) "
    "SELECT ?, ?, ?, ?, d.sent_position, ? FROM message_directory d WHERE d.message_id = ? "
    "ON CONFLICT (message_id) DO UPDATE SET "
    "status = excluded.status, resource = excluded.resource"
)


class MessagesProjection(RowProjection):
    name = "messages"
    version = 1
    tables = (MAILBOXES,)
    owned_tables = ("messages_projection", "message_directory", "mailboxes_projection")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._named: dict[UUID, set[str]] = {}
        self._restored: set[UUID] = set()

    def replay(self, tx: ViewTx, fold: Fold, events: Sequence[tuple[int, Any]]) -> None:
        """Page by page: the messages a page names are noted per page (``apply_page``)."""
        self.apply_page(tx, events, new_streams_have_no_rows=True)

    def apply_page(
        self,
        tx: ViewTx,
        events: Sequence[tuple[int, Any]],
        new_streams_have_no_rows: bool = False,
        written: Mapping[UUID, Any] | None = None,
    ) -> None:
        """Note which messages the page names, then fold the mailboxes.

        Events a row already holds are noted too: rewriting a message from the
        mailbox's current state is idempotent, so that costs nothing in correctness.
        """
        named: dict[UUID, set[str]] = {}
        restored: set[UUID] = set()
        sent: list[tuple[str, str, str, int]] = []
        for position, event in events:
            if isinstance(event, Mailbox.Created | Mailbox.Sent):
                stream = str(event.originator_id)
                sent.append((event.message_id, stream, event.mailbox_id, position))
            if isinstance(event, Mailbox.Event) and hasattr(event, "message_id"):
                named.setdefault(event.originator_id, set()).add(event.message_id)
            elif isinstance(event, FleetRecovered):
                restored.add(event.originator_id)
        tx.executemany(
            "INSERT INTO message_directory (message_id, stream_id, mailbox_id, sent_position) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
            sent,
        )
        self._named, self._restored = named, restored
        try:
            super().apply_page(tx, events, new_streams_have_no_rows, written)
        finally:
            self._named, self._restored = {}, set()

    def after_page(self, tx: ViewTx, changed: list[Touched]) -> None:
        for item in changed:
            mailbox: Mailbox = item.aggregate
            if mailbox.id in self._restored:
                message_ids = set(mailbox.messages)
                self._drop_others(tx, mailbox, message_ids)
            else:
                message_ids = self._named.get(mailbox.id, set()) & set(mailbox.messages)
            tx.executemany(
                UPSERT_MESSAGE,
                [
                    (
                        message_id,
                        str(mailbox.id),
                        mailbox.mailbox_id,
                        mailbox.messages[message_id]["status"],
                        self.json.resource(_resource(mailbox, message_id)),
                        message_id,
                    )
                    for message_id in sorted(message_ids)
                ],
            )

    @staticmethod
    def _drop_others(tx: ViewTx, mailbox: Mailbox, keep: set[str]) -> None:
        """A restore may go back to before some messages were sent: their rows go."""
        rows = tx.fetchall(
            "SELECT message_id FROM messages_projection WHERE stream_id = ?", [str(mailbox.id)]
        )
        tx.executemany(
            "DELETE FROM messages_projection WHERE message_id = ?",
            [(row["message_id"],) for row in rows if row["message_id"] not in keep],
        )


def _resource(mailbox: Mailbox, message_id: str) -> dict[str, Any]:
    """The stored resource; ``version`` is the mailbox's, joined when the list is read
    (stored, it would depend on how events were paged, and go stale with every message)."""
    return {**message_resource(mailbox, message_id), "version": None}
