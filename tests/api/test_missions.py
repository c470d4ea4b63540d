"""Missions over HTTP: create, read with sorties, list, and the PATCH that moves them."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.api.support import (
    API,
    body,
    etag,
    events,
    mission,
    patch_sortie,
    position,
    problem,
    register,
    run_to,
    sortie,
)


def patch(client: FlaskClient, mission_id: str, expect: int = 200, **fields: object) -> dict:
    """PATCH a mission; the mission when ``expect`` is 200, else the problem."""
    data = body(client.patch(f"{API}/missions/{mission_id}", json=fields), expect)
    return data["mission"] if expect == 200 else data


class TestCreate:
    def test_defaults(self, client: FlaskClient) -> None:
        response = client.post(f"{API}/missions", json={"title": "Ship it"})
        created = body(response, 201)["mission"]
        assert created["status"] == "pending"
        assert (created["priority"], created["goals"], created["metadata"]) == ("medium", [], {})
        assert created["progress"]["total"] == 0
        assert created["id"] == created["stream_id"]
        assert etag(response) == 1
        assert position(response) == events(client)[-1]["id"]

    @pytest.mark.parametrize(
        ("payload", "fields"),
        [
            ({}, ("title",)),
            ({"title": ""}, ("title",)),
            ({"title": "t" * 201}, ("title",)),
            ({"title": "t", "priority": "urgent"}, ("priority",)),
            ({"title": "t", "goals": "all"}, ("goals",)),
            ({"title": "t", "goals": ["ok", ""]}, ("goals.1",)),
            ({"title": "t", "status": "completed"}, ("status",)),
        ],
    )
    def test_invalid(
        self, pristine_client: FlaskClient, payload: dict, fields: tuple[str, ...]
    ) -> None:
        problem(pristine_client.post(f"{API}/missions", json=payload), 422, *fields)


class TestRead:
    def test_get_has_the_sorties_oldest_first(self, client: FlaskClient) -> None:
        m = mission(client, goals=["g"])
        first = sortie(client, "first", mission_id=m["id"])
        second = sortie(client, "second", mission_id=m["id"])
        sortie(client, "elsewhere")
        response = client.get(f"{API}/missions/{m['id']}")
        data = body(response, 200)
        assert data["mission"]["progress"]["pending"] == 2
        assert [s["id"] for s in data["sorties"]] == [first["id"], second["id"]]
        assert etag(response) == 1

    @pytest.mark.parametrize("mission_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
    def test_unknown_is_404(self, pristine_client: FlaskClient, mission_id: str) -> None:
        problem(pristine_client.get(f"{API}/missions/{mission_id}"), 404)

    def test_a_sortie_id_is_not_a_mission(self, client: FlaskClient) -> None:
        problem(client.get(f"{API}/missions/{sortie(client)['id']}"), 404)

    def test_time_travel(self, client: FlaskClient) -> None:
        m = mission(client)
        patch(client, m["id"], status="in_progress")
        then = body(client.get(f"{API}/missions/{m['id']}", query_string={"version": 1}), 200)
        assert then["mission"]["status"] == "pending"
        problem(client.get(f"{API}/missions/{m['id']}", query_string={"version": 9}), 404)

    def test_list_filters_and_pages(self, client: FlaskClient) -> None:
        a = mission(client, "a", priority="high")
        b = mission(client, "b")
        c = mission(client, "c", priority="high")
        patch(client, c["id"], status="cancelled")

        def ids(**query: object) -> list[str]:
            data = body(client.get(f"{API}/missions", query_string=query), 200)
            return [m["id"] for m in data["missions"]]

        assert ids() == [a["id"], b["id"], c["id"]]
        assert ids(priority="high") == [a["id"], c["id"]]
        assert ids(status="pending", priority="high") == [a["id"]]
        assert ids(limit=2, offset=1) == [b["id"], c["id"]]
        problem(client.get(f"{API}/missions", query_string={"priority": "x"}), 422, "priority")
        problem(client.get(f"{API}/missions", query_string={"status": "x"}), 422, "status")


class TestPatch:
    def test_fields_change_and_the_version_grows(self, client: FlaskClient) -> None:
        m = mission(client)
        response = client.patch(
            f"{API}/missions/{m['id']}", json={"title": "New", "goals": ["x"], "priority": "low"}
        )
        changed = body(response, 200)["mission"]
        assert (changed["title"], changed["goals"], changed["priority"]) == ("New", ["x"], "low")
        assert etag(response) == 2

    def test_fields_and_status_in_one_request(self, client: FlaskClient) -> None:
        m = mission(client)
        changed = patch(client, m["id"], status="in_progress", description="now")
        assert (changed["status"], changed["description"], changed["version"]) == (
            "in_progress",
            "now",
            3,
        )
        assert changed["started_at"] is not None

    def test_complete_needs_every_sortie_completed_or_cancelled(self, client: FlaskClient) -> None:
        register(client, "s1")
        m = mission(client)
        done = sortie(client, mission_id=m["id"])
        dropped = sortie(client, mission_id=m["id"])
        patch(client, m["id"], status="in_progress")
        run_to(client, done["id"], "completed")
        conflict = patch(client, m["id"], 409, status="completed")
        assert dropped["id"] in conflict["detail"]
        patch_sortie(client, dropped["id"], status="cancelled")
        completed = patch(client, m["id"], status="completed", result={"ok": True})
        assert (completed["status"], completed["result"]) == ("completed", {"ok": True})
        assert completed["progress"]["percent"] == 100
        patch(client, m["id"], 409, status="cancelled")
        problem(
            client.post(f"{API}/sorties", json={"description": "x", "mission_id": m["id"]}), 409
        )

    def test_fail_needs_a_reason(self, client: FlaskClient) -> None:
        m = mission(client)
        problem(client.patch(f"{API}/missions/{m['id']}", json={"status": "failed"}), 422, "reason")
        both = {"status": "failed", "title": "", "goals": "all"}  # one 422 names all three
        data = problem(client.patch(f"{API}/missions/{m['id']}", json=both), 422)
        assert set(data["errors"]) == {"reason", "title", "goals"}
        assert (
            "allowed next statuses"
            in patch(client, m["id"], 409, status="failed", reason="r")["detail"]
        )
        patch(client, m["id"], status="in_progress")
        failed = patch(client, m["id"], status="failed", reason="no budget")
        assert (failed["status"], failed["reason"]) == ("failed", "no budget")

    def test_pending_is_not_a_move_a_request_can_make(self, client: FlaskClient) -> None:
        m = mission(client)
        patch(client, m["id"], 409, status="pending")

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({}, "_schema"),
            ({"status": "done"}, "status"),
            ({"title": ""}, "title"),
            ({"result": "ok", "status": "completed"}, "result"),
            ({"owner": "me"}, "owner"),
        ],
    )
    def test_invalid(self, client: FlaskClient, payload: dict, field: str) -> None:
        m = mission(client)
        problem(client.patch(f"{API}/missions/{m['id']}", json=payload), 422, field)

    def test_unknown_mission_is_404(self, pristine_client: FlaskClient) -> None:
        problem(pristine_client.patch(f"{API}/missions/nope", json={"title": "x"}), 404)

    def test_if_match(self, client: FlaskClient) -> None:
        m = mission(client)
        stale = client.patch(
            f"{API}/missions/{m['id']}", json={"title": "x"}, headers={"If-Match": '"0"'}
        )
        problem(stale, 412)
        ok = client.patch(
            f"{API}/missions/{m['id']}", json={"title": "x"}, headers={"If-Match": '"1"'}
        )
        assert etag(ok) == 2
        assert body(client.get(f"{API}/missions/{m['id']}"), 200)["mission"]["title"] == "x"
