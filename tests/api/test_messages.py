"""Messages over HTTP: send to a mailbox, list it, read, ack, archive, requeue."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import API, body, etag, events, position, problem
from web import get_fleet


def send(client: FlaskClient, mailbox: str = "inbox", **fields: Any) -> dict[str, Any]:
    payload = {"message_type": "task", "content": {"n": 1}, **fields}
    response = client.post(f"{API}/mailboxes/{mailbox}/messages", json=payload)
    return body(response, 201)["message"]  # type: ignore[no-any-return]


def act(client: FlaskClient, message_id: str, action: str, **fields: Any) -> Any:
    return client.post(f"{API}/messages/{message_id}/{action}", json=fields)


def listing(client: FlaskClient, mailbox: str = "inbox", **query: Any) -> dict[str, Any]:
    response = client.get(f"{API}/mailboxes/{mailbox}/messages", query_string=query)
    return body(response, 200)  # type: ignore[no-any-return]


class TestSend:
    def test_the_first_message_opens_the_mailbox(self, client: FlaskClient) -> None:
        response = client.post(
            f"{API}/mailboxes/agents.ace/messages",
            json={
                "message_type": "task",
                "content": {"do": "review"},
                "sender_id": "lead",
                "thread_id": "t-1",
                "priority": "urgent",
            },
        )
        message = body(response, 201)["message"]
        assert list(message)[:3] == ["id", "mailbox_id", "sender_id"]
        assert (message["mailbox_id"], message["status"], message["priority"]) == (
            "agents.ace",
            "pending",
            "urgent",
        )
        assert message["read_at"] is None and message["acked_at"] is None
        assert etag(response) == message["version"] == 1
        assert position(response) == events(client)[-1]["id"]
        event = events(client, type="squawk_sent")[0]
        assert event["stream_id"] == message["stream_id"] and event["stream_type"] == "mailbox"
        assert event["data"]["message_id"] == message["id"]

    def test_later_messages_grow_the_mailbox_version(self, client: FlaskClient) -> None:
        send(client)
        response = client.post(
            f"{API}/mailboxes/inbox/messages", json={"message_type": "note", "content": {}}
        )
        assert body(response, 201)["message"]["priority"] == "normal"
        assert etag(response) == 2

    @pytest.mark.parametrize(
        ("payload", "fields"),
        [
            ({}, ("message_type", "content")),
            ({"message_type": "t", "content": "text"}, ("content",)),
            ({"message_type": "", "content": {}}, ("message_type",)),
            ({"message_type": "t", "content": {}, "priority": "critical"}, ("priority",)),
            ({"message_type": "t", "content": {}, "sender_id": ""}, ("sender_id",)),
            ({"message_type": "t", "content": {}, "colour": "red"}, ("colour",)),
        ],
    )
    def test_invalid(
        self, pristine_client: FlaskClient, payload: dict, fields: tuple[str, ...]
    ) -> None:
        problem(pristine_client.post(f"{API}/mailboxes/inbox/messages", json=payload), 422, *fields)

    def test_a_malformed_mailbox_id_is_a_422(self, pristine_client: FlaskClient) -> None:
        payload = {"message_type": "t", "content": {}}
        problem(
            pristine_client.post(f"{API}/mailboxes/a%20b/messages", json=payload), 422, "mailbox_id"
        )

    def test_if_match_names_the_mailbox_version(self, client: FlaskClient) -> None:
        payload = {"message_type": "t", "content": {}}
        url = f"{API}/mailboxes/inbox/messages"
        never = problem(client.post(url, json=payload, headers={"If-Match": '"1"'}), 412)
        assert never["current_version"] == 0  # no message yet: no version, as every 412 says
        assert never["detail"] == "expected version 1, but the current version is 0"
        send(client)
        stale = problem(client.post(url, json=payload, headers={"If-Match": '"7"'}), 412)
        assert stale["current_version"] == 1
        assert etag(client.post(url, json=payload, headers={"If-Match": '"1"'})) == 2
        problem(client.post(url, json=payload, headers={"If-Match": "W/1"}), 400)


class TestList:
    def test_oldest_first_paged_and_filtered(self, client: FlaskClient) -> None:
        sent = [send(client, content={"n": i}) for i in range(5)]
        send(client, "elsewhere")
        body(act(client, sent[2]["id"], "read", reader_id="bee"), 200)
        data = listing(client)
        assert (data["total"], data["limit"], data["offset"]) == (5, 100, 0)
        assert [m["id"] for m in data["messages"]] == [m["id"] for m in sent]
        assert {m["version"] for m in data["messages"]} == {6}
        page = listing(client, limit=2, offset=3)
        assert page["total"] == 5 and [m["content"]["n"] for m in page["messages"]] == [3, 4]
        read = listing(client, status="read")
        assert read["total"] == 1 and read["messages"][0]["reader_id"] == "bee"
        assert listing(client, status="pending")["total"] == 4

    def test_a_mailbox_that_never_received_a_message_is_empty(self, client: FlaskClient) -> None:
        assert listing(client, "nobody") == {"messages": [], "total": 0, "limit": 100, "offset": 0}

    def test_min_position_reads_your_write(self, app_factory: Any) -> None:
        writer = app_factory({"FLEET_PROJECTOR": "external"}).test_client()
        response = writer.post(
            f"{API}/mailboxes/inbox/messages", json={"message_type": "t", "content": {}}
        )
        written = position(response)
        problem(writer.get(f"{API}/mailboxes/inbox/messages?min_position={written}"), 503)
        assert listing(writer)["total"] == 0
        reader = app_factory().test_client()  # embedded: catches up when it starts
        assert listing(reader, min_position=written)["total"] == 1

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=abc", "limit"),
            ("offset=-1", "offset"),
            ("status=x", "status"),
        ],
    )
    def test_invalid_queries(self, pristine_client: FlaskClient, query: str, field: str) -> None:
        problem(pristine_client.get(f"{API}/mailboxes/inbox/messages?{query}"), 422, field)


class TestLifecycle:
    def test_read_ack_archive(self, app: Flask, client: FlaskClient) -> None:
        message = send(client)
        response = act(client, message["id"], "read", reader_id="bee")
        read = body(response, 200)["message"]
        assert (read["status"], read["reader_id"], etag(response)) == ("read", "bee", 2)
        assert position(response) == events(client)[-1]["id"]
        response = act(client, message["id"], "ack", acker_id="bee", response={"ok": 1})
        acked = body(response, 200)["message"]
        assert (acked["status"], acked["response"], etag(response)) == ("acked", {"ok": 1}, 3)
        archived = body(act(client, message["id"], "archive", archived_by="bee"), 200)["message"]
        assert archived["status"] == "archived" and archived["archived_at"] is not None
        assert archived == get_fleet(app).get_message(message["id"])
        assert listing(client)["messages"] == [archived]
        fetched = client.get(f"{API}/messages/{message['id']}")
        assert body(fetched, 200)["message"] == archived and etag(fetched) == 4
        problem(client.get(f"{API}/messages/no-such-message"), 404)

    def test_requeue_with_or_without_a_reason(self, client: FlaskClient) -> None:
        message = send(client)
        act(client, message["id"], "read", reader_id="bee")
        requeued = body(client.post(f"{API}/messages/{message['id']}/requeue"), 200)["message"]
        assert (requeued["status"], requeued["requeue_count"]) == ("pending", 1)
        act(client, message["id"], "read", reader_id="bee")
        again = body(act(client, message["id"], "requeue", reason="crashed"), 200)["message"]
        assert (again["requeue_count"], again["requeue_reason"]) == (2, "crashed")
        assert [e["data"].get("reason") for e in events(client, type="squawk_requeued")] == [
            None,
            "crashed",
        ]

    def test_the_ack_names_its_cause_and_keeps_the_request_correlation(
        self, client: FlaskClient
    ) -> None:
        payload = {"message_type": "t", "content": {}}
        headers = {"X-Correlation-ID": "conversation-9"}
        sent = client.post(f"{API}/mailboxes/inbox/messages", json=payload, headers=headers)
        message_id = body(sent, 201)["message"]["id"]
        act(client, message_id, "read", reader_id="bee")
        client.post(
            f"{API}/messages/{message_id}/ack",
            json={"acker_id": "bee"},
            headers={"X-Correlation-ID": "ack-request", "X-Fleet-Actor": "bee"},
        )
        sent_event = events(client, type="squawk_sent")[0]
        acked = events(client, type="squawk_acked")[0]
        assert acked["causation_id"] == sent_event["event_id"]
        assert acked["correlation_id"] == "ack-request"
        assert acked["metadata"]["actor"] == "bee" and acked["metadata"]["source"] == "http"

    @pytest.mark.parametrize(
        ("steps", "action", "fields"),
        [
            ([], "ack", {"acker_id": "bee"}),
            ([], "archive", {"archived_by": "bee"}),
            ([], "requeue", {}),
            (["read"], "read", {"reader_id": "bee"}),
            (["read", "ack", "archive"], "requeue", {}),
        ],
    )
    def test_lifecycle_breaks_are_409(
        self, client: FlaskClient, steps: list[str], action: str, fields: dict[str, Any]
    ) -> None:
        message = send(client)
        step_fields = {
            "read": {"reader_id": "b"},
            "ack": {"acker_id": "b"},
            "archive": {"archived_by": "b"},
        }
        for step in steps:
            body(act(client, message["id"], step, **step_fields[step]), 200)
        conflict = problem(act(client, message["id"], action, **fields), 409)
        assert "allowed next statuses" in conflict["detail"]

    @pytest.mark.parametrize("action", ["read", "ack", "archive", "requeue"])
    def test_an_unknown_message_is_404(self, pristine_client: FlaskClient, action: str) -> None:
        fields = {
            "read": {"reader_id": "b"},
            "ack": {"acker_id": "b"},
            "archive": {"archived_by": "b"},
        }
        problem(act(pristine_client, "no-such-message", action, **fields.get(action, {})), 404)

    @pytest.mark.parametrize(
        ("action", "payload", "field"),
        [
            ("read", {}, "reader_id"),
            ("read", {"reader_id": ""}, "reader_id"),
            ("ack", {"acker_id": "b", "response": [1]}, "response"),
            ("archive", {}, "archived_by"),
            ("requeue", {"reason": 3}, "reason"),
            ("requeue", {"why": "x"}, "why"),
        ],
    )
    def test_invalid_bodies_are_422(
        self, client: FlaskClient, action: str, payload: dict[str, Any], field: str
    ) -> None:
        message = send(client)
        problem(act(client, message["id"], action, **payload), 422, field)

    def test_if_match_guards_the_mailbox(self, client: FlaskClient) -> None:
        message = send(client)
        send(client)  # the mailbox moves on to version 2
        url = f"{API}/messages/{message['id']}/read"
        stale = client.post(url, json={"reader_id": "b"}, headers={"If-Match": '"1"'})
        assert problem(stale, 412)["current_version"] == 2
        assert listing(client, status="read")["total"] == 0
        fresh = client.post(url, json={"reader_id": "b"}, headers={"If-Match": '"2"'})
        assert etag(fresh) == 3
        problem(client.post(url, json={"reader_id": "b"}, headers={"If-Match": "3"}), 400)


def test_a_conversation_on_each_backend(client: FlaskClient) -> None:
    task = send(client, "coder", sender_id="lead", content={"sortie": "build"})
    note = send(client, "coder", message_type="note")
    body(act(client, task["id"], "read", reader_id="coder"), 200)
    body(act(client, task["id"], "ack", acker_id="coder", response={"eta": 5}), 200)
    body(act(client, note["id"], "read", reader_id="coder"), 200)
    body(act(client, note["id"], "requeue"), 200)
    archived = body(act(client, task["id"], "archive", archived_by="lead"), 200)["message"]
    data = listing(client, "coder")
    assert [(m["id"], m["status"]) for m in data["messages"]] == [
        (task["id"], "archived"),
        (note["id"], "pending"),
    ]
    assert data["messages"][0] == archived and archived["version"] == 7
    assert [e["event_type"] for e in events(client, stream_id=task["stream_id"])] == [
        "squawk_sent",
        "squawk_sent",
        "squawk_read",
        "squawk_acked",
        "squawk_read",
        "squawk_requeued",
        "squawk_archived",
    ]
