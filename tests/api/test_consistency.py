"""Read-your-writes: X-Fleet-Position on writes, min_position on lists, strong ETags."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application import Fleet
from tests.api.support import API, body, etag, events, mission, position, problem, register, sortie
from web import get_fleet


def test_every_write_names_the_position_of_its_last_event(client: FlaskClient) -> None:
    register(client, "s1")
    m = mission(client)
    s = sortie(client, mission_id=m["id"])
    writes = [
        client.post(
            f"{API}/specialists/register",
            json={"specialist_id": "s2", "name": "x", "spawned_by": "s1"},
        ),
        client.patch(f"{API}/specialists/s1/heartbeat", json={}),
        client.post(f"{API}/specialists/s2/complete", json={"reason": "success"}),
        client.post(f"{API}/missions", json={"title": "t"}),
        client.patch(f"{API}/missions/{m['id']}", json={"status": "in_progress"}),
        client.post(f"{API}/sorties", json={"description": "d"}),
        client.patch(f"{API}/sorties/{s['id']}", json={"status": "assigned", "assigned_to": "s1"}),
        client.post(f"{API}/checkpoints", json={"stream_id": m["id"]}),
        client.delete(f"{API}/specialists/s1"),
    ]
    for response in writes:
        assert response.status_code in (200, 201), response.get_json()
        event = body(client.get(f"{API}/events/{position(response)}"), 200)["event"]
        assert event["correlation_id"] == response.headers["X-Correlation-ID"]
    assert position(writes[-1]) == events(client)[-1]["id"]
    # Two events in one write: the position is the second one's.
    spawned = events(client, correlation_id=writes[0].headers["X-Correlation-ID"])
    assert position(writes[0]) == spawned[-1]["id"] == spawned[0]["id"] + 1


def test_reads_carry_strong_etags_equal_to_the_version(client: FlaskClient) -> None:
    register(client, "s1")
    m = mission(client)
    s = sortie(client, mission_id=m["id"])
    client.patch(f"{API}/missions/{m['id']}", json={"title": "again"})
    for url, version in [
        (f"{API}/specialists/s1", 1),
        (f"{API}/missions/{m['id']}", 2),
        (f"{API}/sorties/{s['id']}", 1),
    ]:
        assert etag(client.get(url)) == version


# Every list that takes min_position, the event log's included.
LISTS = [
    "missions",
    "sorties",
    "specialists",
    "checkpoints",
    "locks",
    "events",
    "mailboxes/m/messages",
]


class TestMinPosition:
    def test_a_reached_position_answers_at_once(self, client: FlaskClient) -> None:
        response = client.post(f"{API}/missions", json={"title": "t"})
        for url in ("missions", "sorties", "specialists", "checkpoints"):
            page = body(
                client.get(f"{API}/{url}", query_string={"min_position": position(response)}), 200
            )
            assert "total" in page

    @pytest.mark.parametrize("url", ["missions", "sorties", "specialists", "checkpoints"])
    def test_an_unprojected_position_is_503_after_the_wait(
        self, app_factory: Callable[..., Flask], url: str
    ) -> None:
        client = app_factory({"FLEET_PROJECTOR": "external"}).test_client()
        written = client.post(f"{API}/missions", json={"title": "never projected"})
        started = time.monotonic()
        response = client.get(f"{API}/{url}", query_string={"min_position": position(written)})
        assert str(position(written)) in problem(response, 503)["detail"]
        assert response.headers["Retry-After"] == "1"
        assert 0.2 < time.monotonic() - started < 5

    @pytest.mark.parametrize("url", LISTS)
    def test_a_position_beyond_the_head_is_422_at_once(self, client: FlaskClient, url: str) -> None:
        written = client.post(f"{API}/missions", json={"title": "t"})
        beyond = position(written) + 1
        started = time.monotonic()
        response = client.get(f"{API}/{url}", query_string={"min_position": beyond})
        data = problem(response, 422, "min_position")
        assert f"position {beyond} yet" in data["errors"]["min_position"][0]
        assert time.monotonic() - started < 0.2  # no wait: WAIT is 0.3 s here
        problem(client.get(f"{API}/{url}", query_string={"min_position": "x"}), 422, "min_position")
        problem(client.get(f"{API}/{url}", query_string={"min_position": -1}), 422, "min_position")
        reached = client.get(f"{API}/{url}", query_string={"min_position": position(written)})
        assert "total" in body(reached, 200)

    def test_a_list_waits_for_the_projections_to_catch_up(
        self, app_factory: Callable[..., Flask]
    ) -> None:
        app = app_factory({"FLEET_PROJECTOR": "external", "FLEET_MIN_POSITION_TIMEOUT": "5"})
        client = app.test_client()
        written = client.post(f"{API}/missions", json={"title": "late"})
        assert body(client.get(f"{API}/missions"), 200)["total"] == 0  # not projected yet
        fleet: Fleet = get_fleet(app)
        timer = threading.Timer(0.2, fleet.projector.catch_up)
        timer.start()
        try:
            started = time.monotonic()
            page = body(
                client.get(f"{API}/missions", query_string={"min_position": position(written)}), 200
            )
        finally:
            timer.join()
        assert time.monotonic() - started >= 0.15
        assert [m["title"] for m in page["missions"]] == ["late"]
