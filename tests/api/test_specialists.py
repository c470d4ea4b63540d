"""Specialists over HTTP: register, read (and time travel), list, heartbeat, end of life."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask.testing import FlaskClient

from tests.api.support import API, body, etag, events, position, problem, register


class TestRegister:
    def test_a_new_specialist_is_created(self, client: FlaskClient) -> None:
        response = client.post(
            f"{API}/specialists/register",
            json={
                "specialist_id": "coder-1",
                "name": "Coder",
                "capabilities": ["python"],
                "metadata": {"model": "m"},
            },
        )
        specialist = body(response, 201)["specialist"]
        assert specialist["id"] == "coder-1"
        assert specialist["status"] == "active"
        assert specialist["capabilities"] == ["python"]
        assert specialist["metadata"] == {"model": "m"}
        assert specialist["version"] == 1 == etag(response)
        assert position(response) >= 1
        assert {"stream_id", "registered_at", "last_seen", "created_at", "updated_at"} <= set(
            specialist
        )

    def test_a_known_specialist_is_updated_and_keeps_what_is_omitted(
        self, client: FlaskClient
    ) -> None:
        register(client, "s1", capabilities=["a"], metadata={"k": 1})
        response = client.post(
            f"{API}/specialists/register", json={"specialist_id": "s1", "name": "Renamed"}
        )
        specialist = body(response, 200)["specialist"]
        assert specialist["name"] == "Renamed"
        assert specialist["capabilities"] == ["a"]
        assert specialist["metadata"] == {"k": 1}
        assert specialist["version"] == 2 == etag(response)

    def test_spawned_by_records_specialist_spawned(self, client: FlaskClient) -> None:
        specialist = register(client, "child", spawned_by="parent", config={"depth": 1})
        assert specialist["spawned_by"] == "parent"
        types = [e["event_type"] for e in events(client, stream_id=specialist["stream_id"])]
        assert types == ["specialist_registered", "specialist_spawned"]

    @pytest.mark.parametrize(
        ("payload", "fields"),
        [
            ({}, ("specialist_id", "name")),
            ({"specialist_id": "has space", "name": "x"}, ("specialist_id",)),
            ({"specialist_id": "x" * 129, "name": "x"}, ("specialist_id",)),
            ({"specialist_id": "a", "name": ""}, ("name",)),
            ({"specialist_id": "a", "name": "x", "capabilities": "python"}, ("capabilities",)),
            ({"specialist_id": "a", "name": "x", "capabilities": [""]}, ("capabilities.0",)),
            ({"specialist_id": "a", "name": "x", "metadata": []}, ("metadata",)),
            ({"specialist_id": "a", "name": "x", "colour": "red"}, ("colour",)),
            ({"specialist_id": "a", "name": "x", "mission_id": "m"}, ("mission_id",)),
            ({"specialist_id": 7, "name": None}, ("specialist_id", "name")),
        ],
    )
    def test_invalid_bodies_are_422_naming_the_fields(
        self, pristine_client: FlaskClient, payload: dict[str, object], fields: tuple[str, ...]
    ) -> None:
        response = pristine_client.post(f"{API}/specialists/register", json=payload)
        problem(response, 422, *fields)
        assert body(pristine_client.get(f"{API}/specialists"), 200)["total"] == 0

    def test_if_match_applies_to_re_registration(self, client: FlaskClient) -> None:
        url = f"{API}/specialists/register"
        payload = {"specialist_id": "s1", "name": "S"}
        unknown = problem(client.post(url, json=payload, headers={"If-Match": '"1"'}), 412)
        assert unknown["current_version"] == 0
        assert body(client.get(f"{API}/specialists"), 200)["total"] == 0
        register(client, "s1")
        again = client.post(url, json={**payload, "name": "T"}, headers={"If-Match": '"1"'})
        assert body(again, 200)["specialist"]["name"] == "T"
        problem(client.post(url, json=payload, headers={"If-Match": '"1"'}), 412)


class TestRead:
    def test_get_answers_the_specialist_with_its_etag(self, client: FlaskClient) -> None:
        register(client, "s1")
        response = client.get(f"{API}/specialists/s1")
        assert body(response, 200)["specialist"]["id"] == "s1"
        assert etag(response) == 1

    def test_unknown_is_404(self, pristine_client: FlaskClient) -> None:
        problem(pristine_client.get(f"{API}/specialists/nobody"), 404)

    def test_time_travel_by_version_and_by_time(self, client: FlaskClient) -> None:
        register(client, "s1")
        between = datetime.now(UTC)
        time.sleep(0.01)
        client.patch(f"{API}/specialists/s1/heartbeat", json={"status": "busy"})
        at_1 = client.get(f"{API}/specialists/s1", query_string={"version": 1})
        assert body(at_1, 200)["specialist"]["status"] == "active"
        assert etag(at_1) == 1
        then = client.get(f"{API}/specialists/s1", query_string={"as_of": between.isoformat()})
        assert body(then, 200)["specialist"]["version"] == 1
        now = body(client.get(f"{API}/specialists/s1"), 200)["specialist"]
        assert (now["status"], now["version"]) == ("busy", 2)

    @pytest.mark.parametrize(
        ("query", "status", "field"),
        [
            ({"version": 3}, 404, None),
            ({"as_of": "2000-01-01T00:00:00Z"}, 404, None),
            ({"version": 0}, 422, "version"),
            ({"version": "two"}, 422, "version"),
            ({"as_of": "2026-01-01T00:00:00"}, 422, "as_of"),
            ({"as_of": "yesterday"}, 422, "as_of"),
            ({"version": 1, "as_of": datetime.now(UTC).isoformat()}, 422, "as_of"),
        ],
    )
    def test_time_travel_errors(
        self, client: FlaskClient, query: dict[str, object], status: int, field: str | None
    ) -> None:
        register(client, "s1")
        response = client.get(f"{API}/specialists/s1", query_string=query)
        problem(response, status, *([field] if field else []))


class TestList:
    def test_filters_order_and_paging(self, client: FlaskClient) -> None:
        register(client, "b", capabilities=["go"])
        register(client, "a", capabilities=["python", "go"])
        register(client, "c", capabilities=["python"])
        client.post(f"{API}/specialists/c/fail", json={"error": "boom"})

        page = body(client.get(f"{API}/specialists"), 200)
        assert [s["id"] for s in page["specialists"]] == ["a", "b", "c"]
        assert (page["total"], page["limit"], page["offset"]) == (3, 100, 0)

        def ids(**query: object) -> list[str]:
            data = body(client.get(f"{API}/specialists", query_string=query), 200)
            return [s["id"] for s in data["specialists"]]

        assert ids(capability="python") == ["a", "c"]
        assert ids(status="failed") == ["c"]
        assert ids(status="active", capability="go") == ["a", "b"]
        assert ids(limit=1, offset=1) == ["b"]
        assert ids(offset=3) == []
        assert ids(limit=1000, colour="red") == ["a", "b", "c"]  # unknown params are ignored
        page = body(client.get(f"{API}/specialists", query_string={"offset": 5}), 200)
        assert (page["specialists"], page["total"], page["offset"]) == ([], 3, 5)

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"limit": 0}, "limit"),
            ({"limit": 1001}, "limit"),
            ({"limit": "abc"}, "limit"),
            ({"limit": "1.5"}, "limit"),
            ({"offset": -1}, "offset"),
            ({"status": "sleepy"}, "status"),
            ({"min_position": -1}, "min_position"),
        ],
    )
    def test_bad_query_is_422(
        self, pristine_client: FlaskClient, query: dict[str, object], field: str
    ) -> None:
        problem(pristine_client.get(f"{API}/specialists", query_string=query), 422, field)


class TestLifecycle:
    @pytest.mark.parametrize("method", ["patch", "post"])
    def test_heartbeat(self, client: FlaskClient, method: str) -> None:
        register(client, "s1")
        response = getattr(client, method)(
            f"{API}/specialists/s1/heartbeat",
            json={"status": "busy", "current_sortie": "x", "metrics": {"cpu": 0.5}},
        )
        specialist = body(response, 200)["specialist"]
        assert (specialist["status"], specialist["current_sortie"]) == ("busy", "x")
        assert etag(response) == specialist["version"] == 2
        assert position(response) == events(client)[-1]["id"]

    def test_an_empty_heartbeat_counts_as_an_empty_object(self, client: FlaskClient) -> None:
        register(client, "s1")
        response = client.patch(f"{API}/specialists/s1/heartbeat")
        assert body(response, 200)["specialist"]["status"] == "active"

    def test_heartbeat_errors(self, client: FlaskClient) -> None:
        register(client, "s1")
        problem(client.patch(f"{API}/specialists/nobody/heartbeat", json={}), 404)
        problem(
            client.patch(f"{API}/specialists/s1/heartbeat", json={"status": "x"}), 422, "status"
        )
        problem(
            client.patch(f"{API}/specialists/s1/heartbeat", json={"metrics": 1}), 422, "metrics"
        )

    def test_complete_then_no_more_heartbeats(self, client: FlaskClient) -> None:
        register(client, "s1")
        response = client.post(
            f"{API}/specialists/s1/complete", json={"reason": "success", "summary": "done"}
        )
        assert body(response, 200)["specialist"]["status"] == "completed"
        problem(client.patch(f"{API}/specialists/s1/heartbeat", json={}), 409)
        problem(client.post(f"{API}/specialists/s1/fail", json={"error": "late"}), 409)

    def test_complete_and_fail_validate(self, client: FlaskClient) -> None:
        register(client, "s1")
        problem(client.post(f"{API}/specialists/s1/complete", json={}), 422, "reason")
        problem(
            client.post(f"{API}/specialists/s1/complete", json={"reason": "meh"}), 422, "reason"
        )
        problem(client.post(f"{API}/specialists/s1/fail", json={}), 422, "error")
        problem(client.post(f"{API}/specialists/s1/fail", json={"error": "x" * 2001}), 422, "error")
        problem(client.post(f"{API}/specialists/nobody/complete", json={"reason": "success"}), 404)

    def test_fail(self, client: FlaskClient) -> None:
        register(client, "s1")
        response = client.post(
            f"{API}/specialists/s1/fail", json={"error": "crashed", "details": {"code": 1}}
        )
        assert body(response, 200)["specialist"]["status"] == "failed"
        data = events(client, type="specialist_failed")[0]["data"]
        assert data == {"error": "crashed", "details": {"code": 1}}

    def test_delete_deregisters(self, client: FlaskClient) -> None:
        register(client, "s1")
        response = client.delete(f"{API}/specialists/s1")
        assert body(response, 200)["specialist"]["status"] == "inactive"
        assert etag(response) == 2
        assert events(client)[-1]["data"]["reason"] == "deregistered"
        problem(client.delete(f"{API}/specialists/nobody"), 404)


class TestIfMatch:
    def test_stale_version_is_412_and_changes_nothing(self, client: FlaskClient) -> None:
        register(client, "s1")
        client.patch(f"{API}/specialists/s1/heartbeat", json={})
        before = len(events(client))
        response = client.post(
            f"{API}/specialists/s1/complete",
            json={"reason": "success"},
            headers={"If-Match": '"1"'},
        )
        assert problem(response, 412)["current_version"] == 2
        assert len(events(client)) == before
        assert body(client.get(f"{API}/specialists/s1"), 200)["specialist"]["status"] == "active"

    @pytest.mark.parametrize("value", ['"2"', "*", ' "2" '])
    def test_current_version_or_star_applies(self, client: FlaskClient, value: str) -> None:
        register(client, "s1")
        client.patch(f"{API}/specialists/s1/heartbeat", json={})
        response = client.delete(f"{API}/specialists/s1", headers={"If-Match": value})
        assert etag(response) == 3

    @pytest.mark.parametrize("value", ["2", 'W/"2"', '"2", "3"', '"two"', ""])
    def test_malformed_if_match_is_400(self, client: FlaskClient, value: str) -> None:
        register(client, "s1")
        client.patch(f"{API}/specialists/s1/heartbeat", json={})
        response = client.delete(f"{API}/specialists/s1", headers={"If-Match": value})
        assert "If-Match" in problem(response, 400)["detail"]

    def test_if_match_on_an_unknown_specialist_is_404(self, pristine_client: FlaskClient) -> None:
        problem(pristine_client.delete(f"{API}/specialists/x", headers={"If-Match": '"1"'}), 404)


def test_as_of_accepts_any_timezone(client: FlaskClient) -> None:
    register(client, "s1")
    later = (datetime.now(UTC) + timedelta(hours=1)).astimezone(timezone(timedelta(hours=5.5)))
    response = client.get(f"{API}/specialists/s1", query_string={"as_of": later.isoformat()})
    assert body(response, 200)["specialist"]["version"] == 1
