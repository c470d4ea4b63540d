"""``POST /api/v1/compaction``, the compaction schedule of the server, and the sortie
``estimate_minutes`` field (``sortie_created`` version 2)."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import API, body, patch_sortie, problem, register, sortie
from web import get_fleet

QUIET = {"FLEET_SNAPSHOT_INTERVAL": "0", "FLEET_COMPACTION_THRESHOLD": "5"}


def heartbeats(client: FlaskClient, who: str, n: int) -> None:
    for i in range(n):
        body(client.patch(f"{API}/specialists/{who}/heartbeat", json={"status": "busy"}), 200)
        del i


def test_compaction_runs_and_reports(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(QUIET).test_client()
    stream = register(client, "long")["stream_id"]
    heartbeats(client, "long", 5)
    register(client, "short")
    response = client.post(f"{API}/compaction", json={}, headers={"X-Correlation-ID": "compact-1"})
    report = body(response, 200)
    assert int(response.headers["X-Fleet-Position"]) == 8  # its context_compacted
    assert "ETag" not in response.headers
    assert report["streams_examined"] == 2 and report["streams_compacted"] == 1
    assert report["streams"] == [
        {
            "stream_id": stream,
            "stream_type": "specialist",
            "from_sequence": 1,
            "to_sequence": 6,
            "snapshot_version": 7,
        }
    ]
    assert {"snapshots_pruned", "events_archived", "compression", "policy", "duration_ms"} <= set(
        report
    )
    events = body(client.get(f"{API}/events?type=context_compacted"), 200)["events"]
    assert [e["correlation_id"] for e in events] == ["compact-1"]
    assert events[0]["metadata"]["source"] == "http"

    short = register(client, "short")["stream_id"]  # re-registered: two events
    one = body(client.post(f"{API}/compaction", json={"stream_id": short}), 200)
    assert [s["stream_id"] for s in one["streams"]] == [short]
    problem(client.post(f"{API}/compaction", json={"stream_id": "nope"}), 422, "stream_id")
    problem(client.post(f"{API}/compaction", json={"colour": "red"}), 422, "colour")


def test_compaction_needs_the_token(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(FLEET_API_TOKEN="sesame")  # noqa: S106 - a test token
    client = app.test_client()
    problem(client.post(f"{API}/compaction", json={}), 401)
    ok = client.post(f"{API}/compaction", json={}, headers={"Authorization": "Bearer sesame"})
    assert body(ok, 200)["streams_compacted"] == 0


def test_the_server_compacts_on_a_schedule(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(QUIET, FLEET_COMPACTION_INTERVAL=0.05)
    client = app.test_client()
    register(client, "sched")
    heartbeats(client, "sched", 5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = body(client.get(f"{API}/events?type=context_compacted"), 200)["events"]
        if events:
            break
        time.sleep(0.05)
    assert events and events[0]["metadata"]["source"] == "compaction"
    get_fleet(app).stop_compactor()
    assert get_fleet(app).compaction._compactor is None


def test_sorties_carry_an_estimate(client: FlaskClient) -> None:
    created = sortie(client, estimate_minutes=30)
    assert created["estimate_minutes"] == 30
    assert sortie(client)["estimate_minutes"] is None
    changed = patch_sortie(client, created["id"], estimate_minutes=45)
    assert changed["estimate_minutes"] == 45 and changed["version"] == 2
    listed = body(client.get(f"{API}/sorties"), 200)["sorties"]
    assert [s["estimate_minutes"] for s in listed] == [45, None]
    for bad in (-1, 1.5, "10", True):
        problem(
            client.post(f"{API}/sorties", json={"description": "x", "estimate_minutes": bad}),
            422,
            "estimate_minutes",
        )
    [created_event] = body(client.get(f"{API}/events?type=sortie_created&limit=1"), 200)["events"]
    assert created_event["schema_version"] == 3  # 3: required_capabilities (docs/work-loop.md)
    assert created_event["data"]["estimate_minutes"] == 30
