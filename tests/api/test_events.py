"""The event log over HTTP: filtered lists, one event, one stream's history."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.api.support import API, body, events, mission, problem, register

EVENT_KEYS = {
    "id",
    "event_id",
    "event_type",
    "stream_id",
    "stream_type",
    "sequence_number",
    "causation_id",
    "correlation_id",
    "data",
    "metadata",
    "schema_version",
    "created_at",
}


@pytest.fixture
def log(client: FlaskClient) -> list[dict]:
    """Five events: a specialist (3) and a mission (2)."""
    register(client, "s1")
    client.patch(f"{API}/specialists/s1/heartbeat", json={"status": "idle"})
    m = mission(client)
    client.patch(
        f"{API}/missions/{m['id']}",
        json={"status": "in_progress"},
        headers={"X-Correlation-ID": "start-it"},
    )
    client.delete(f"{API}/specialists/s1")
    return events(client)


class TestList:
    def test_oldest_first_with_every_member(self, client: FlaskClient, log: list[dict]) -> None:
        assert [e["id"] for e in log] == sorted(e["id"] for e in log)
        assert [e["event_type"] for e in log] == [
            "specialist_registered",
            "specialist_active",
            "mission_created",
            "mission_started",
            "specialist_inactive",
        ]
        for event in log:
            assert set(event) == EVENT_KEYS
            assert isinstance(event["schema_version"], int)
        assert log[0]["metadata"]["source"] == "http"

    def test_filters(self, client: FlaskClient, log: list[dict]) -> None:
        def types(**query: object) -> list[str]:
            return [e["event_type"] for e in events(client, **query)]

        assert types(type="mission_created") == ["mission_created"]
        assert types(type="mission_started, specialist_registered") == [
            "specialist_registered",
            "mission_started",
        ]
        assert types(stream_id=log[2]["stream_id"]) == ["mission_created", "mission_started"]
        assert types(correlation_id="start-it") == ["mission_started"]
        assert types(after=log[2]["id"]) == ["mission_started", "specialist_inactive"]
        assert types(after=log[-1]["id"]) == []
        assert types(stream_id="nothing") == []

    def test_paging(self, client: FlaskClient, log: list[dict]) -> None:
        page = body(client.get(f"{API}/events", query_string={"limit": 2, "offset": 1}), 200)
        assert [e["id"] for e in page["events"]] == [log[1]["id"], log[2]["id"]]
        assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
        page = body(client.get(f"{API}/events", query_string={"offset": 10}), 200)
        assert (page["events"], page["total"]) == ([], 5)

    def test_an_unknown_type_lists_the_valid_ones(self, client: FlaskClient) -> None:
        data = problem(
            client.get(f"{API}/events", query_string={"type": "mission_made"}), 422, "type"
        )
        assert "mission_created" in data["errors"]["type"][0]

    @pytest.mark.parametrize(
        ("query", "field"),
        [({"limit": 1001}, "limit"), ({"offset": "x"}, "offset"), ({"after": -1}, "after")],
    )
    def test_bad_query(self, pristine_client: FlaskClient, query: dict, field: str) -> None:
        problem(pristine_client.get(f"{API}/events", query_string=query), 422, field)


class TestOne:
    def test_by_position(self, client: FlaskClient, log: list[dict]) -> None:
        assert body(client.get(f"{API}/events/{log[3]['id']}"), 200)["event"] == log[3]

    @pytest.mark.parametrize("position", ["0", "99", "abc", "-1", str(2**63), "1.5"])
    def test_nothing_there_is_404(
        self, client: FlaskClient, log: list[dict], position: str
    ) -> None:
        problem(client.get(f"{API}/events/{position}"), 404)


class TestStream:
    def test_in_sequence_order_with_inclusive_bounds(
        self, client: FlaskClient, log: list[dict]
    ) -> None:
        stream = log[0]["stream_id"]
        data = body(client.get(f"{API}/streams/{stream}/events"), 200)
        assert data["stream_id"] == stream
        assert [e["sequence_number"] for e in data["events"]] == [1, 2, 3]
        data = body(
            client.get(
                f"{API}/streams/{stream}/events",
                query_string={"from_sequence": 2, "to_sequence": 2},
            ),
            200,
        )
        assert [e["event_type"] for e in data["events"]] == ["specialist_active"]
        data = body(
            client.get(f"{API}/streams/{stream}/events", query_string={"from_sequence": 5}), 200
        )
        assert data["events"] == []

    @pytest.mark.parametrize("stream", ["nothing", "00000000-0000-0000-0000-000000000000"])
    def test_unknown_stream_is_404(self, pristine_client: FlaskClient, stream: str) -> None:
        problem(pristine_client.get(f"{API}/streams/{stream}/events"), 404)

    def test_bad_bounds(self, client: FlaskClient, log: list[dict]) -> None:
        url = f"{API}/streams/{log[0]['stream_id']}/events"
        problem(client.get(url, query_string={"from_sequence": 0}), 422, "from_sequence")
        problem(client.get(url, query_string={"to_sequence": "z"}), 422, "to_sequence")
