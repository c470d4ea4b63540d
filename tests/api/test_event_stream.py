"""GET /events/stream (Server-Sent Events) and ``Fleet.subscribe``, on both backends: the
frame format, filters, position order, resuming without gap or duplicate (also from
archived positions), keep-alive comments, auth, and feeds ending when the server stops."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application import Fleet
from tests.api.support import API, body, problem
from web import get_fleet

IDLE = "0.3"  # seconds of quiet before a keep-alive comment, in these tests


@pytest.fixture
def app(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory({"FLEET_STREAM_IDLE_SECONDS": IDLE})


class Frames:
    """Reads an open stream frame by frame: ``(id, event, data)`` or ``(None, comment)``."""

    def __init__(self, response: Any):
        self.response = response
        self.chunks: Iterator[bytes] = iter(response.response)

    def next(self) -> dict[str, Any]:
        text = next(self.chunks).decode()
        assert text.endswith("\n\n"), text
        lines = text[:-2].split("\n")
        if lines[0].startswith(":"):
            return {"comment": lines[0][1:].strip()}
        fields = dict(line.split(": ", 1) for line in lines)
        assert set(fields) == {"id", "event", "data"}, fields
        data = json.loads(fields["data"])
        assert int(fields["id"]) == data["id"] and fields["event"] == data["event_type"]
        return data

    def events(self, count: int) -> list[dict[str, Any]]:
        found = []
        while len(found) < count:
            frame = self.next()
            if "comment" not in frame:
                found.append(frame)
        return found

    def close(self) -> None:
        self.response.close()


def open_stream(client: FlaskClient, query: str = "", **headers: str) -> Frames:
    response = client.get(f"{API}/events/stream{query}", headers=headers)
    assert response.status_code == 200, response.get_data()
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    frames = Frames(response)
    assert frames.next() == {"comment": "fleet event stream"}  # sent at once
    return frames


def write(client: FlaskClient, n: int) -> list[int]:
    positions = []
    for i in range(n):
        response = client.post(
            f"{API}/mailboxes/box-{i % 2}/messages", json={"message_type": "t", "content": {"i": i}}
        )
        body(response, 201)
        positions.append(int(response.headers["X-Fleet-Position"]))
    return positions


def test_frames_are_the_events_of_events_in_order(client: FlaskClient) -> None:
    write(client, 3)
    listed = body(client.get(f"{API}/events"), 200)["events"]
    frames = open_stream(client)
    assert frames.events(3) == listed  # the same JSON as /events gives
    # then it follows the log: a later write arrives without reconnecting
    write(client, 1)
    [fresh] = frames.events(1)
    assert fresh["id"] == listed[-1]["id"] + 1
    assert frames.next() == {"comment": "keep-alive"}  # IDLE seconds without an event
    frames.close()


def test_filters_are_those_of_events(app: Flask, client: FlaskClient) -> None:
    positions = write(client, 4)
    stream = body(client.get(f"{API}/events?after={positions[0]}&limit=1"), 200)["events"][0][
        "stream_id"
    ]
    frames = open_stream(client, f"?type=squawk_sent&stream_id={stream}")
    got = frames.events(2)
    assert [e["data"]["content"]["i"] for e in got] == [1, 3]
    client.post(f"{API}/missions", json={"title": "not a message"})
    write(client, 2)  # box-0 then box-1: only the second matches
    [later] = frames.events(1)
    assert later["data"]["content"] == {"i": 1} and later["id"] > positions[-1]
    frames.close()
    problem(client.get(f"{API}/events/stream?type=no_such_type"), 422, "type")
    problem(client.get(f"{API}/events/stream?after=-1"), 422, "after")


@pytest.mark.parametrize("how", ["last-event-id", "after"])
def test_reconnecting_misses_and_repeats_nothing(client: FlaskClient, how: str) -> None:
    write(client, 5)
    frames = open_stream(client)
    first = frames.events(3)
    frames.close()
    write(client, 4)  # written while disconnected
    last = first[-1]["id"]
    if how == "last-event-id":
        # Last-Event-ID wins over ?after=
        frames = open_stream(client, "?after=0", **{"Last-Event-ID": str(last)})
    else:
        frames = open_stream(client, f"?after={last}")
    rest = frames.events(6)
    frames.close()
    ids = [e["id"] for e in first + rest]
    everything = [e["id"] for e in body(client.get(f"{API}/events?limit=1000"), 200)["events"]]
    assert ids == everything  # in order, no gap, no duplicate


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "1 2", "99999999999999999999"])
def test_a_malformed_last_event_id_is_400(pristine_client: FlaskClient, bad: str) -> None:
    problem(pristine_client.get(f"{API}/events/stream", headers={"Last-Event-ID": bad}), 400)


def test_reads_auth_applies(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(FLEET_API_TOKEN="secret", FLEET_AUTH_READS=True)  # noqa: S106
    client = app.test_client()
    problem(client.get(f"{API}/events/stream"), 401)
    frames = open_stream(client, "", Authorization="Bearer secret")
    frames.close()
    open_reads = app_factory(FLEET_API_TOKEN="secret").test_client()  # noqa: S106
    open_stream(open_reads).close()


def test_closing_a_stream_unregisters_it(app: Flask, client: FlaskClient) -> None:
    watcher = get_fleet(app).watcher
    frames = open_stream(client)
    assert watcher.waiting == 1
    frames.close()
    assert watcher.waiting == 0
    client.get(f"{API}/events/stream").close()  # closed before any of it was read
    assert watcher.waiting == 0


def test_a_stopping_server_ends_its_streams(app: Flask, client: FlaskClient) -> None:
    frames = open_stream(client)
    ended = threading.Event()

    def drain() -> None:
        for _ in frames.chunks:
            pass
        ended.set()

    thread = threading.Thread(target=drain)
    thread.start()
    time.sleep(0.1)
    get_fleet(app).stop_waits()
    assert ended.wait(2)
    thread.join()


def test_subscribe_follows_the_log(fleet: Fleet) -> None:
    fleet.create_mission(title="before")
    seen: list[dict[str, Any]] = []
    feed = fleet.subscribe(after=0, type="mission_created")

    def consume() -> None:
        for event in feed:
            seen.append(event)

    thread = threading.Thread(target=consume)
    thread.start()
    fleet.register_specialist(specialist_id="not-a-mission", name="x")
    fleet.create_mission(title="after")
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    fleet.stop_waits()  # ends the iteration
    thread.join(3)
    assert not thread.is_alive()
    assert [e["data"]["title"] for e in seen] == ["before", "after"]


ARCHIVE_ENV = {"FLEET_SNAPSHOT_INTERVAL": "20", "FLEET_COMPACTION_THRESHOLD": "3"}


def test_streams_read_archived_positions_too(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**backend, **ARCHIVE_ENV, "FLEET_STREAM_IDLE_SECONDS": IDLE}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    fleet = Fleet(env=env)
    try:
        fleet.register_specialist("arch", "Archer")
        for i in range(30):
            fleet.heartbeat("arch", status=("busy", "idle", "active")[i % 3])
        fleet.create_mission(title="live")
        everything = fleet.events(limit=1000)[0]
        fleet.compact()
        report = fleet.compact(archive=True, now=datetime.now(UTC) + timedelta(days=31))
        assert report["events_archived"] > 10
        feed = fleet.follow(after=3, idle=0.2)
        streamed = []
        for event in feed:
            if event is None:
                break
            streamed.append(event)
        feed.close()
        now = fleet.events(limit=1000)[0]  # with compaction's own events
        assert streamed == [e for e in now if e["id"] > 3]
        before = [e for e in everything if e["id"] > 3]
        assert streamed[: len(before)] == before
    finally:
        fleet.close()
