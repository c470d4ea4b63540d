"""Messages (in mailboxes) through the Python services, on both backends."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from application import Conflict, Fleet, NotFound, PreconditionFailed, ValidationError
from application.errors import Unavailable
from tests.integration.test_projections import table_contents

MESSAGE_KEYS = {
    "id",
    "stream_id",
    "mailbox_id",
    "sender_id",
    "thread_id",
    "message_type",
    "content",
    "priority",
    "status",
    "sent_at",
    "read_at",
    "acked_at",
    "version",
    "created_at",
    "updated_at",
}
MESSAGE_TABLES = ("mailboxes_projection", "message_directory", "messages_projection")


def send(fleet: Fleet, mailbox: str = "inbox", **fields: Any) -> dict[str, Any]:
    return fleet.send_message(
        mailbox, fields.pop("message_type", "task"), fields.pop("content", {"n": 1}), **fields
    )


def types(fleet: Fleet, stream_id: str) -> list[str]:
    return [e["event_type"] for e in fleet.stream_events(stream_id)]


def message_tables(fleet: Fleet) -> dict[str, list[tuple[Any, ...]]]:
    return table_contents(fleet, MESSAGE_TABLES)


def test_a_message_goes_from_pending_to_archived(fleet: Fleet) -> None:
    first = send(fleet, sender_id="ace", thread_id="t-1", priority="high", content={"do": "x"})
    assert set(first) >= MESSAGE_KEYS
    assert (first["status"], first["version"], first["priority"]) == ("pending", 1, "high")
    assert (first["sender_id"], first["thread_id"], first["mailbox_id"]) == ("ace", "t-1", "inbox")
    assert first["created_at"] == first["sent_at"] == first["updated_at"]
    second = send(fleet)
    assert second["stream_id"] == first["stream_id"] and second["version"] == 2
    assert second["priority"] == "normal" and second["id"] != first["id"]

    read = fleet.read_message(first["id"], "bee")
    assert (read["status"], read["version"], read["reader_id"]) == ("read", 3, "bee")
    acked = fleet.ack_message(first["id"], "bee", response={"ok": True})
    assert (acked["status"], acked["acker_id"], acked["response"]) == ("acked", "bee", {"ok": True})
    assert acked["read_at"] < acked["acked_at"] == acked["updated_at"]
    archived = fleet.archive_message(first["id"], "janitor")
    assert (archived["status"], archived["archived_by"]) == ("archived", "janitor")
    assert archived["created_at"] == first["sent_at"]
    assert fleet.get_message(second["id"])["status"] == "pending"
    assert types(fleet, first["stream_id"]) == [
        "squawk_sent",
        "squawk_sent",
        "squawk_read",
        "squawk_acked",
        "squawk_archived",
    ]
    sent = fleet.events(type="squawk_sent")[0]
    assert [e["data"]["mailbox_id"] for e in sent] == ["inbox", "inbox"]


@pytest.mark.parametrize("steps", [["read"], ["read", "ack"]])
def test_requeue_returns_a_message_to_pending(fleet: Fleet, steps: list[str]) -> None:
    message = send(fleet)
    fleet.read_message(message["id"], "bee")
    if "ack" in steps:
        fleet.ack_message(message["id"], "bee")
    requeued = fleet.requeue_message(message["id"], reason="reader crashed")
    assert requeued["status"] == "pending"
    assert (requeued["read_at"], requeued["reader_id"], requeued["acked_at"]) == (None, None, None)
    assert (requeued["requeue_count"], requeued["requeue_reason"]) == (1, "reader crashed")
    event = fleet.events(type="squawk_requeued")[0][0]
    assert event["data"] == {"message_id": message["id"], "reason": "reader crashed"}
    assert fleet.read_message(message["id"], "cat")["reader_id"] == "cat"


def test_the_ack_is_caused_by_the_sent_event(fleet: Fleet) -> None:
    """A caller's correlation id marks the ack; without one, the ack continues the send's."""
    with fleet.context(correlation_id="conversation-1"):
        message = send(fleet)
    with fleet.context(correlation_id="reader-request"):
        fleet.read_message(message["id"], "bee")
    with fleet.context(correlation_id="acker-request", actor="bee") as scope:
        fleet.ack_message(message["id"], "bee")
    sent = fleet.events(type="squawk_sent")[0][0]
    read = fleet.events(type="squawk_read")[0][0]
    acked = fleet.events(type="squawk_acked")[0][0]
    assert acked["causation_id"] == sent["event_id"]
    assert (sent["correlation_id"], acked["correlation_id"]) == ("conversation-1", "acker-request")
    assert acked["metadata"]["actor"] == "bee"
    assert scope.position == acked["id"]
    assert (read["causation_id"], read["correlation_id"]) == (None, "reader-request")

    other = send(fleet)
    fleet.read_message(other["id"], "bee")
    fleet.ack_message(other["id"], "bee")  # no correlation given: the send's is continued
    sent, acked = fleet.events(type="squawk_sent")[0][1], fleet.events(type="squawk_acked")[0][1]
    assert (acked["causation_id"], acked["correlation_id"]) == (
        sent["event_id"],
        sent["correlation_id"],
    )


@pytest.mark.parametrize(
    ("steps", "command", "allowed"),
    [
        ([], "ack", "read"),
        ([], "archive", "read"),
        ([], "requeue", "read"),
        (["read"], "read", "acked, pending"),
        (["read"], "archive", "acked, pending"),
        (["read", "ack"], "ack", "archived, pending"),
        (["read", "ack", "archive"], "requeue", "none"),
    ],
)
def test_lifecycle_breaks_are_conflicts_that_record_nothing(
    fleet: Fleet, steps: list[str], command: str, allowed: str
) -> None:
    message = send(fleet)
    commands = {
        "read": lambda: fleet.read_message(message["id"], "bee"),
        "ack": lambda: fleet.ack_message(message["id"], "bee"),
        "archive": lambda: fleet.archive_message(message["id"], "bee"),
        "requeue": lambda: fleet.requeue_message(message["id"]),
    }
    for step in steps:
        commands[step]()
    before = fleet.head_position()
    with pytest.raises(Conflict, match=f"allowed next statuses: {allowed}"):
        commands[command]()
    assert fleet.head_position() == before


@pytest.mark.parametrize("message_id", ["no-such-message", "0" * 36, "bad\x00id", "x" * 300])
def test_an_unknown_message_is_not_found(fleet: Fleet, message_id: str) -> None:
    send(fleet)
    with pytest.raises(NotFound):
        fleet.get_message(message_id)
    with pytest.raises(NotFound):
        fleet.read_message(message_id, "bee")
    with pytest.raises(NotFound):
        fleet.ack_message(message_id, "bee")


def test_every_write_honours_the_mailbox_version(fleet: Fleet) -> None:
    with pytest.raises(PreconditionFailed):
        send(fleet, "new-box", expected_version=1)  # the mailbox has no version yet
    message = send(fleet)
    other = send(fleet, expected_version=1)
    assert other["version"] == 2
    before = fleet.head_position()
    with pytest.raises(PreconditionFailed, match="current version is 2"):
        fleet.read_message(message["id"], "bee", expected_version=1)
    with pytest.raises(PreconditionFailed):
        send(fleet, expected_version=1)
    assert fleet.head_position() == before
    assert fleet.read_message(message["id"], "bee", expected_version=2)["version"] == 3
    assert fleet.ack_message(message["id"], "bee", expected_version=3)["version"] == 4
    assert fleet.requeue_message(message["id"], expected_version=4)["version"] == 5
    fleet.read_message(message["id"], "bee")
    fleet.ack_message(message["id"], "bee")
    assert fleet.archive_message(message["id"], "bee", expected_version=7)["version"] == 8


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mailbox_id": "has space"}, "mailbox_id"),
        ({"mailbox_id": "m" * 129}, "mailbox_id"),
        ({"message_type": ""}, "message_type"),
        ({"content": ["not", "an", "object"]}, "content"),
        ({"priority": "critical"}, "priority"),
        ({"sender_id": ""}, "sender_id"),
    ],
)
def test_invalid_messages_name_their_field(
    fleet: Fleet, fields: dict[str, Any], field: str
) -> None:
    args = {"mailbox_id": "inbox", "message_type": "task", "content": {}, **fields}
    with pytest.raises(ValidationError) as error:
        fleet.send_message(**args)
    assert field in error.value.errors


def test_invalid_command_fields_are_refused_before_the_lookup(fleet: Fleet) -> None:
    message = send(fleet)
    with pytest.raises(ValidationError) as reader:
        fleet.read_message(message["id"], "")
    assert "reader_id" in reader.value.errors
    with pytest.raises(ValidationError) as response:
        fleet.ack_message("no-such-message", "bee", response="yes")  # type: ignore[arg-type]
    assert "response" in response.value.errors
    with pytest.raises(ValidationError) as status:
        fleet.list_messages("inbox", status="unread")
    assert "status" in status.value.errors


def test_lists_are_per_mailbox_oldest_first_and_paged(fleet: Fleet) -> None:
    sent = [send(fleet, content={"n": i}) for i in range(5)]
    send(fleet, "elsewhere")
    fleet.read_message(sent[1]["id"], "bee")
    fleet.read_message(sent[3]["id"], "bee")
    messages, total = fleet.list_messages("inbox")
    assert total == 5 and [m["id"] for m in messages] == [m["id"] for m in sent]
    assert {m["version"] for m in messages} == {7}  # the mailbox's version, now
    page, total = fleet.list_messages("inbox", limit=2, offset=2)
    assert total == 5 and [m["content"]["n"] for m in page] == [2, 3]
    read, total = fleet.list_messages("inbox", status="read")
    assert total == 2 and [m["id"] for m in read] == [sent[1]["id"], sent[3]["id"]]
    assert fleet.list_messages("inbox", status="archived") == ([], 0)
    assert fleet.list_messages("never-used") == ([], 0)
    assert fleet.list_messages("inbox", offset=10) == ([], 5)
    assert fleet.list_messages("inbox", min_position=fleet.head_position())[1] == 5
    with pytest.raises(ValidationError):
        fleet.list_messages("inbox", limit=0)


def test_projection_rows_equal_the_aggregate_and_rebuild_alike(fleet: Fleet) -> None:
    boxes = ["a", "b"]
    sent = [send(fleet, boxes[i % 2], content={"n": i}) for i in range(6)]
    for message in sent[:4]:
        fleet.read_message(message["id"], "bee")
    fleet.ack_message(sent[0]["id"], "bee", response={"r": 1})
    fleet.archive_message(sent[0]["id"], "bee")
    fleet.ack_message(sent[1]["id"], "bee")
    fleet.requeue_message(sent[2]["id"], reason="again")
    for box in boxes:
        listed, total = fleet.list_messages(box)
        assert total == 3
        for message in listed:
            assert message == fleet.get_message(message["id"])
    incremental = message_tables(fleet)
    fleet.projector.rebuild("messages")
    assert message_tables(fleet) == incremental


def test_a_restored_mailbox_lists_what_it_held_then(fleet: Fleet) -> None:
    kept = send(fleet)
    checkpoint = fleet.create_checkpoint(kept["stream_id"])
    later = send(fleet)
    fleet.read_message(kept["id"], "bee")
    fleet.restore_checkpoint(checkpoint["id"], confirm=True)
    listed, total = fleet.list_messages("inbox")
    assert total == 1 and listed[0]["id"] == kept["id"] and listed[0]["status"] == "pending"
    assert listed[0] == fleet.get_message(kept["id"])
    with pytest.raises(NotFound):
        fleet.get_message(later["id"])
    with pytest.raises(NotFound):
        fleet.read_message(later["id"], "bee")
    assert types(fleet, kept["stream_id"])[-1] == "fleet_recovered"
    fleet.read_message(kept["id"], "bee")
    incremental = message_tables(fleet)
    fleet.projector.rebuild("messages")
    assert message_tables(fleet) == incremental


def test_a_message_not_yet_projected_is_waited_for(backend: dict[str, str]) -> None:
    fleet = Fleet(env={**backend, "FLEET_PROJECTOR": "external", "FLEET_MIN_POSITION_TIMEOUT": "5"})
    try:
        message = send(fleet)
        assert fleet.list_messages("inbox") == ([], 0)  # the projector has not run
        catch_up = threading.Timer(0.2, fleet.projector.catch_up)
        catch_up.start()
        assert fleet.read_message(message["id"], "bee")["status"] == "read"
        catch_up.join()
        fleet.min_position_timeout = 0.1
        with pytest.raises(Unavailable):  # unknown, and the projections are behind
            fleet.get_message("no-such-message")
    finally:
        fleet.close()


def test_concurrent_senders_to_one_mailbox_all_land(backend: dict[str, str]) -> None:
    fleets = [Fleet(env=backend) for _ in range(4)]
    try:
        threads = [
            threading.Thread(target=lambda f=f: [send(f, content={"k": k}) for k in range(5)])
            for f in fleets
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        fleets[0].projector.catch_up()
        messages, total = fleets[0].list_messages("inbox")
        assert total == 20 and {m["version"] for m in messages} == {20}
        assert len(fleets[0].stream_events(messages[0]["stream_id"])) == 20
    finally:
        for f in fleets:
            f.close()
