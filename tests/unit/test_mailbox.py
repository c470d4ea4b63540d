"""Mailbox aggregate: message lifecycle, rules, replay."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError, RuleError, TransitionError
from domain.mailbox import MESSAGE_LIFECYCLE, Mailbox, mailbox_stream_id


def replay(events):
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def new_mailbox(**kwargs) -> Mailbox:
    data = {"message_type": "task", "content": {"text": "hello"}, **kwargs}
    return Mailbox.open_with("mb-1", "m1", **data)


def test_first_message_opens_the_stream_with_a_stable_id():
    mailbox = new_mailbox(sender_id="s1", thread_id="t1", priority="high")
    assert mailbox.id == Mailbox.create_id("mb-1") == mailbox_stream_id("mb-1")
    assert mailbox.mailbox_id == "mb-1"
    message = mailbox.message("m1")
    assert message["status"] == "pending"
    assert message["priority"] == "high"
    assert message["sender_id"] == "s1" and message["thread_id"] == "t1"
    assert message["mailbox_id"] == "mb-1"
    assert datetime.fromisoformat(message["sent_at"]) == mailbox.created_on
    [event] = mailbox.collect_events()
    assert type(event).TOPIC == "squawk_sent" and event.event_type == "squawk_sent"


def test_later_messages_use_the_again_class_with_the_same_public_type():
    mailbox = new_mailbox()
    mailbox.send("m2", "note", {"n": 2}, priority="low")
    events = mailbox.collect_events()
    assert [type(e).TOPIC for e in events] == ["squawk_sent", "squawk_sent.again"]
    assert {e.event_type for e in events} == {"squawk_sent"}
    assert events[1].mailbox_id == "mb-1"
    assert mailbox.message("m2")["priority"] == "low"
    assert mailbox.message("m1")["priority"] == "normal"


def test_full_lifecycle_sets_timestamps_and_actors():
    mailbox = new_mailbox()
    mailbox.read("m1", "reader")
    mailbox.ack("m1", "acker", {"done": True})
    mailbox.archive("m1", "janitor")
    message = mailbox.message("m1")
    assert message["status"] == "archived"
    assert message["reader_id"] == "reader" and message["read_at"] is not None
    assert message["acker_id"] == "acker" and message["acked_at"] is not None
    assert message["response"] == {"done": True}
    assert message["archived_by"] == "janitor"
    assert message["updated_at"] == message["archived_at"]
    assert mailbox.version == 4


@pytest.mark.parametrize(
    ("steps", "command"),
    [
        ([], "ack"),
        ([], "archive"),
        ([], "requeue"),
        (["read"], "read"),
        (["read"], "archive"),
        (["read", "ack"], "read"),
        (["read", "ack"], "ack"),
        (["read", "ack", "archive"], "requeue"),
        (["read", "ack", "archive"], "read"),
        (["read", "ack", "archive"], "archive"),
    ],
)
def test_illegal_transitions_are_refused_and_record_nothing(steps, command):
    mailbox = new_mailbox()
    for step in steps:
        run(mailbox, step, "m1")
    version = mailbox.version
    with pytest.raises(TransitionError) as info:
        run(mailbox, command, "m1")
    assert "message m1 cannot go from" in str(info.value)
    assert mailbox.version == version


def run(mailbox: Mailbox, command: str, message_id: str) -> None:
    if command == "read":
        mailbox.read(message_id, "r")
    elif command == "ack":
        mailbox.ack(message_id, "a")
    elif command == "archive":
        mailbox.archive(message_id, "x")
    elif command == "requeue":
        mailbox.requeue(message_id, "retry")
    else:  # pragma: no cover - test helper misuse
        raise AssertionError(command)


@pytest.mark.parametrize("steps", [["read"], ["read", "ack"]])
def test_requeue_from_read_or_acked_returns_to_pending_and_clears_the_delivery(steps):
    mailbox = new_mailbox()
    for step in steps:
        run(mailbox, step, "m1")
    mailbox.requeue("m1", reason="reader crashed")
    message = mailbox.message("m1")
    assert message["status"] == "pending"
    assert message["requeue_count"] == 1 and message["requeue_reason"] == "reader crashed"
    assert message["read_at"] is None and message["acked_at"] is None
    assert message["reader_id"] is None and message["response"] is None
    mailbox.read("m1", "r2")
    assert mailbox.message("m1")["status"] == "read"


@pytest.mark.parametrize("command", ["read", "ack", "archive", "requeue"])
def test_unknown_message_is_a_rule_error(command):
    mailbox = new_mailbox()
    with pytest.raises(RuleError, match="message nope not in mailbox mb-1"):
        run(mailbox, command, "nope")


def test_duplicate_message_id_is_refused():
    mailbox = new_mailbox()
    with pytest.raises(RuleError, match="already in mailbox"):
        mailbox.send("m1", "task", {})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"priority": "medium"}, "priority must be one of low, normal, high, urgent"),
        ({"content": ["not", "an", "object"]}, "content must be a JSON object"),
        ({"message_type": ""}, "message_type must be a non-empty string"),
    ],
)
def test_invalid_message_data_is_refused(kwargs, match):
    with pytest.raises(RuleError, match=match):
        new_mailbox(**kwargs)
    mailbox = new_mailbox()
    data = {"message_type": "task", "content": {}, **kwargs}
    with pytest.raises(RuleError, match=match):
        mailbox.send("m2", **data)


def test_ack_response_must_be_an_object():
    mailbox = new_mailbox()
    mailbox.read("m1", "r")
    with pytest.raises(RuleError, match="response must be a JSON object"):
        mailbox.ack("m1", "a", response="ok")  # type: ignore[arg-type]


def test_content_is_copied_not_shared_with_the_event():
    content = {"nested": {"n": 1}}
    mailbox = Mailbox.open_with("mb-1", "m1", "task", content)
    content["nested"]["n"] = 2
    assert mailbox.message("m1")["content"] == {"nested": {"n": 1}}


def test_replay_gives_the_same_state():
    mailbox = new_mailbox()
    mailbox.send("m2", "note", {"n": 2}, sender_id="s", thread_id="t")
    mailbox.read("m1", "r")
    mailbox.ack("m1", "a", {"ok": 1})
    mailbox.requeue("m1")
    mailbox.read("m2", "r")
    events = mailbox.collect_events()
    again = replay(events)
    assert again.state_dict() == mailbox.state_dict()
    assert again.version == mailbox.version == len(events)


def test_restore_from_state_dict_does_not_share_records():
    mailbox = new_mailbox()
    state = mailbox.state_dict()
    restored = replay(mailbox.collect_events())
    restored._restore(state)
    restored.read("m1", "r")
    assert state["messages"]["m1"]["status"] == "pending"


# Random command sequences never reach a forbidden state.

MESSAGE_IDS = ("m1", "m2", "m3")
COMMANDS = ("send", "read", "ack", "archive", "requeue")
TARGET = {"read": "read", "ack": "acked", "archive": "archived", "requeue": "pending"}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(COMMANDS), st.sampled_from(MESSAGE_IDS)), max_size=40))
def test_random_command_sequences_follow_the_lifecycle(steps):
    mailbox = new_mailbox()
    model = {"m1": "pending"}
    for command, message_id in steps:
        before = mailbox.version
        try:
            if command == "send":
                mailbox.send(message_id, "task", {"i": before})
            else:
                run(mailbox, command, message_id)
        except DomainError:
            assert mailbox.version == before
            allowed = (
                message_id not in model
                if command == "send"
                else message_id in model
                and TARGET[command] in MESSAGE_LIFECYCLE.allowed(model[message_id])
            )
            assert not allowed, (command, message_id, model)
            continue
        assert mailbox.version == before + 1
        model[message_id] = "pending" if command == "send" else TARGET[command]
        assert {k: m["status"] for k, m in mailbox.messages.items()} == model
    for message in mailbox.messages.values():
        assert message["status"] in MESSAGE_LIFECYCLE.statuses
        if message["status"] == "pending":
            assert message["read_at"] is None and message["acked_at"] is None
        if message["status"] in ("acked", "archived"):
            assert message["acked_at"] is not None and message["read_at"] is not None
    assert replay(mailbox.collect_events()).state_dict() == mailbox.state_dict()
