"""Every event a request records carries the request's X-Correlation-ID.

Even an event caused by one of another correlation (an ack by its message's send, a
recovery by its restore, a lock timeout found by the next acquirer): its causation_id
names the cause, its correlation_id is the request's. One request per command route,
and the test fails when a command route is added without one here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import API, body, events
from web import get_fleet

READS = {"GET", "HEAD", "OPTIONS"}


def command_routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (method, re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"<\1>", rule.rule))  # without converters
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(API)
        for method in (rule.methods or set()) - READS
    }


class Recorder:
    """Sends each command with a correlation id of its own and checks what it recorded."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.covered: set[tuple[str, str]] = set()
        self.head = 0
        self.sent = 0

    def send(self, method: str, rule: str, status: int, url: str = "", /, **json: Any) -> Any:
        self.sent += 1
        correlation = f"c{self.sent}-{method}-{rule}"
        response = self.client.open(
            url or rule, method=method, json=json, headers={"X-Correlation-ID": correlation}
        )
        data = body(response, status)
        assert response.headers["X-Correlation-ID"] == correlation
        recorded = [e for e in events(self.client) if e["id"] > self.head]
        assert recorded, (method, rule, "recorded nothing")
        assert {e["correlation_id"] for e in recorded} == {correlation}, (method, rule, recorded)
        found = events(self.client, correlation_id=correlation)
        assert [e["id"] for e in found] == [e["id"] for e in recorded]
        self.head = recorded[-1]["id"]
        self.covered.add((method, rule))
        return data


def test_every_command_records_its_events_under_the_request_correlation(
    app: Flask, client: FlaskClient
) -> None:
    r = Recorder(client)
    spec = f"{API}/specialists"
    r.send("POST", f"{spec}/register", 201, specialist_id="s1", name="S", spawned_by="boss")
    r.send("PATCH", f"{spec}/<specialist_id>/heartbeat", 200, f"{spec}/s1/heartbeat", status="busy")
    r.send("POST", f"{spec}/<specialist_id>/heartbeat", 200, f"{spec}/s1/heartbeat")

    m = r.send("POST", f"{API}/missions", 201, title="M")["mission"]
    r.send("PATCH", f"{API}/missions/<mission_id>", 200, f"{API}/missions/{m['id']}", title="N")
    s = r.send("POST", f"{API}/sorties", 201, description="d", mission_id=m["id"])["sortie"]
    sortie_url = f"{API}/sorties/{s['id']}"
    r.send(
        "PATCH", f"{API}/sorties/<sortie_id>", 200, sortie_url, status="assigned", assigned_to="s1"
    )
    r.send("POST", f"{API}/sorties", 201, description="free", mission_id=m["id"])
    r.send("POST", f"{API}/sorties/claim", 200, specialist_id="s1")
    c = r.send("POST", f"{API}/checkpoints", 201, stream_id=m["id"])["checkpoint"]
    client.post(f"{API}/sorties", json={"description": "later", "mission_id": m["id"]})
    r.head = events(client)[-1]["id"]
    restore = f"{API}/checkpoints/{c['id']}/restore"
    r.send("POST", f"{API}/checkpoints/<checkpoint_id>/restore", 200, restore, confirm=True)

    box = f"{API}/mailboxes/<mailbox_id>/messages"
    message = r.send(
        "POST", box, 201, f"{API}/mailboxes/inbox/messages", message_type="t", content={}
    )
    msg = f"{API}/messages/{message['message']['id']}"
    rule = f"{API}/messages/<message_id>"
    r.send("POST", f"{rule}/read", 200, f"{msg}/read", reader_id="bee")
    r.send("POST", f"{rule}/ack", 200, f"{msg}/ack", acker_id="bee")  # caused by the send
    r.send("POST", f"{rule}/requeue", 200, f"{msg}/requeue")
    client.post(f"{msg}/read", json={"reader_id": "bee"})
    client.post(f"{msg}/ack", json={"acker_id": "bee"})
    r.head = events(client)[-1]["id"]
    r.send("POST", f"{rule}/archive", 200, f"{msg}/archive", archived_by="bee")

    cursor = {"consumer_id": "reader", "stream_id": "orders"}
    r.send("POST", f"{API}/cursors/advance", 200, **cursor, position=3)
    r.send("POST", f"{API}/cursors/reset", 200, **cursor)

    first = r.send("POST", f"{API}/locks/acquire", 201, file="a.txt", specialist_id="s1")["lock"]
    r.send("POST", f"{API}/locks/acquire", 409, file="a.txt", specialist_id="s2")  # conflict
    later = datetime.now(UTC) + timedelta(hours=2)
    get_fleet(app).clock = lambda: later  # the first lock has timed out by now
    taken = r.send("POST", f"{API}/locks/acquire", 201, file="a.txt", specialist_id="s2")["lock"]
    assert first["id"] != taken["id"]
    assert "lock_timeout" in [e["event_type"] for e in events(client)[-2:]]
    release = f"{API}/locks/{taken['id']}/release"
    r.send("POST", f"{API}/locks/<lock_id>/release", 200, release, specialist_id="s2")

    for name in ("s2", "s3"):
        client.post(f"{spec}/register", json={"specialist_id": name, "name": name})
    r.head = events(client)[-1]["id"]
    r.send("POST", f"{spec}/<specialist_id>/complete", 200, f"{spec}/s1/complete", reason="success")
    r.send("POST", f"{spec}/<specialist_id>/fail", 200, f"{spec}/s2/fail", error="boom")
    r.send("DELETE", f"{spec}/<specialist_id>", 200, f"{spec}/s3")
    r.send("POST", f"{API}/compaction", 200, stream_id=m["id"])

    assert r.covered == command_routes(app)
    caused = [e for e in events(client) if e["causation_id"] is not None]
    assert {e["event_type"] for e in caused} >= {"squawk_acked", "fleet_recovered"}
