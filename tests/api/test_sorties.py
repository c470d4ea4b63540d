"""Sorties over HTTP: create with references, read, list, and the PATCH state machine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
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
    shared_app,
    sortie,
    untouched_client,
)

UNKNOWN = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def one_sortie_app(seeded_module_backend: dict[str, str]) -> Iterator[tuple[Flask, Any]]:
    """One pending sortie, shared by the module's tests of refused patches."""
    with shared_app(seeded_module_backend) as app:
        yield app, sortie(app.test_client())


@pytest.fixture
def pending(one_sortie_app: tuple[Flask, Any]) -> Any:
    return one_sortie_app[1]


@pytest.fixture
def refusing_client(one_sortie_app: tuple[Flask, Any]) -> Iterator[FlaskClient]:
    """A client of that app; a test that wrote through it fails after it."""
    yield from untouched_client(one_sortie_app[0])


class TestCreate:
    def test_with_mission_dependencies_and_assignee(self, client: FlaskClient) -> None:
        register(client, "s1")
        m = mission(client)
        first = sortie(client, mission_id=m["id"])
        response = client.post(
            f"{API}/sorties",
            json={
                "description": "then",
                "mission_id": m["id"],
                "title": "T",
                "priority": "high",
                "dependencies": [first["id"]],
                "assigned_to": "s1",
                "metadata": {"k": "v"},
            },
        )
        created = body(response, 201)["sortie"]
        assert created["status"] == "assigned"
        assert created["dependencies"] == created["blocked_by"] == [first["id"]]
        assert (created["mission_id"], created["assigned_to"]) == (m["id"], "s1")
        assert etag(response) == 1
        assert position(response) == events(client)[-1]["id"]

    @pytest.mark.parametrize(
        ("payload", "fields"),
        [
            ({}, ("description",)),
            ({"description": ""}, ("description",)),
            ({"description": "d", "mission_id": UNKNOWN}, ("mission_id",)),
            ({"description": "d", "mission_id": "nope"}, ("mission_id",)),
            ({"description": "d", "dependencies": [UNKNOWN]}, ("dependencies",)),
            ({"description": "d", "dependencies": "x"}, ("dependencies",)),
            ({"description": "d", "assigned_to": "ghost"}, ("assigned_to",)),
            ({"description": "d", "priority": "p0"}, ("priority",)),
            ({"description": "d", "status": "assigned"}, ("status",)),
        ],
    )
    def test_invalid(
        self, pristine_client: FlaskClient, payload: dict, fields: tuple[str, ...]
    ) -> None:
        problem(pristine_client.post(f"{API}/sorties", json=payload), 422, *fields)
        assert body(pristine_client.get(f"{API}/sorties"), 200)["total"] == 0

    def test_a_mission_id_must_name_a_mission(self, client: FlaskClient) -> None:
        other = sortie(client)
        problem(
            client.post(f"{API}/sorties", json={"description": "d", "mission_id": other["id"]}),
            422,
            "mission_id",
        )


class TestReadAndList:
    def test_get_and_time_travel(self, client: FlaskClient) -> None:
        register(client, "s1")
        s = sortie(client)
        patch_sortie(client, s["id"], status="assigned", assigned_to="s1")
        response = client.get(f"{API}/sorties/{s['id']}")
        assert body(response, 200)["sortie"]["status"] == "assigned"
        assert etag(response) == 2
        then = client.get(f"{API}/sorties/{s['id']}", query_string={"version": 1})
        assert body(then, 200)["sortie"]["status"] == "pending"
        problem(client.get(f"{API}/sorties/{UNKNOWN}"), 404)
        problem(client.get(f"{API}/sorties/not-a-uuid"), 404)

    def test_list_filters(self, client: FlaskClient) -> None:
        register(client, "s1")
        m = mission(client)
        a = sortie(client, mission_id=m["id"], priority="high")
        b = sortie(client, assigned_to="s1")
        c = sortie(client, mission_id=m["id"])

        def ids(**query: object) -> list[str]:
            data = body(client.get(f"{API}/sorties", query_string=query), 200)
            return [s["id"] for s in data["sorties"]]

        assert ids() == [a["id"], b["id"], c["id"]]
        assert ids(mission_id=m["id"]) == [a["id"], c["id"]]
        assert ids(status="assigned") == ids(assigned_to="s1") == [b["id"]]
        assert ids(priority="high", mission_id=m["id"]) == [a["id"]]
        assert ids(limit=1, offset=2) == [c["id"]]
        problem(client.get(f"{API}/sorties", query_string={"status": "done"}), 422, "status")


class TestLifecycle:
    def test_the_whole_way_with_block_and_review(self, client: FlaskClient) -> None:
        register(client, "s1")
        s = sortie(client)
        patch_sortie(client, s["id"], status="assigned", assigned_to="s1")
        patch_sortie(client, s["id"], status="in_progress")
        moved = patch_sortie(client, s["id"], progress=40, status_message="halfway")
        assert (moved["progress"], moved["status_message"]) == (40, "halfway")
        blocked = patch_sortie(client, s["id"], status="blocked", reason="waiting")
        assert blocked["blocker"]["blocker_type"] == "external"
        patch_sortie(client, s["id"], status="in_progress", resolution="arrived")
        review = patch_sortie(client, s["id"], status="review", reviewer_id="rev")
        assert review["review"]["review_type"] == "general"
        conflict = patch_sortie(client, s["id"], 409, status="in_progress")
        assert "verdict" in conflict["detail"]
        patch_sortie(client, s["id"], status="in_progress", verdict="needs_changes", feedback="x")
        patch_sortie(client, s["id"], status="review", reviewer_id="rev", review_type="code")
        done = patch_sortie(client, s["id"], status="completed", feedback="great", result={"a": 1})
        assert (done["status"], done["result"]) == ("completed", {"a": 1})
        types = [e["event_type"] for e in events(client, stream_id=s["stream_id"])]
        assert types[-2:] == ["review_completed", "sortie_completed"]
        assert "sortie_unblocked" in types and "sortie_progress" in types

    def test_dependencies_must_be_completed_before_start(self, client: FlaskClient) -> None:
        register(client, "s1")
        first = sortie(client)
        second = sortie(client, dependencies=[first["id"]], assigned_to="s1")
        conflict = patch_sortie(client, second["id"], 409, status="in_progress")
        assert first["id"] in conflict["detail"]
        run_to(client, first["id"], "completed")
        assert body(client.get(f"{API}/sorties/{second['id']}"), 200)["sortie"]["blocked_by"] == []
        assert patch_sortie(client, second["id"], status="in_progress")["status"] == "in_progress"

    def test_a_forbidden_move_names_the_allowed_ones(self, client: FlaskClient) -> None:
        s = sortie(client)
        conflict = patch_sortie(client, s["id"], 409, status="review", reviewer_id="r")
        assert "assigned" in conflict["detail"] and "cancelled" in conflict["detail"]

    def test_final_sorties_do_not_change(self, client: FlaskClient) -> None:
        register(client, "s1")
        s = sortie(client)
        patch_sortie(client, s["id"], status="cancelled", reason="dropped")
        patch_sortie(client, s["id"], 409, title="late")
        patch_sortie(client, s["id"], 409, status="assigned", assigned_to="s1")

    def test_progress_only_in_progress(self, client: FlaskClient) -> None:
        s = sortie(client)
        patch_sortie(client, s["id"], 409, progress=10)

    def test_fail(self, client: FlaskClient) -> None:
        register(client, "s1")
        s = sortie(client, assigned_to="s1")
        problem(client.patch(f"{API}/sorties/{s['id']}", json={"status": "failed"}), 422, "error")
        failed = patch_sortie(client, s["id"], status="failed", error="boom")
        assert (failed["status"], failed["error"]) == ("failed", "boom")

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({}, "_schema"),
            ({"status": "pending"}, "status"),
            ({"status": "assigned"}, "assigned_to"),
            ({"status": "assigned", "assigned_to": "ghost"}, "assigned_to"),
            ({"status": "blocked"}, "reason"),
            ({"status": "review"}, "reviewer_id"),
            ({"status": "in_progress", "verdict": "approved"}, "verdict"),
            ({"status": "cancelled", "error": "x"}, "error"),
            ({"progress": 101}, "progress"),
            ({"progress": "50"}, "progress"),
            ({"status_message": "alone"}, "progress"),
            ({"reviewer_id": "r"}, "reviewer_id"),
            ({"dependencies": [UNKNOWN]}, "dependencies"),
            ({"blocker_type": "weather", "status": "blocked", "reason": "r"}, "blocker_type"),
            ({"owner": "me"}, "owner"),
        ],
    )
    def test_invalid_patches(
        self, refusing_client: FlaskClient, pending: Any, payload: dict, field: str
    ) -> None:
        problem(refusing_client.patch(f"{API}/sorties/{pending['id']}", json=payload), 422, field)

    @pytest.mark.parametrize(
        ("payload", "fields"),
        [
            ({"status": "failed", "reason": "r"}, ("reason", "error")),
            ({"status": "failed", "reason": "r", "progress": 500}, ("reason", "error", "progress")),
            ({"status": "blocked", "blocker_type": "weather"}, ("reason", "blocker_type")),
            ({"status": "assigned", "title": ""}, ("assigned_to", "title")),
            ({"status_message": "m", "title": "", "owner": 1}, ("progress", "title", "owner")),
            ({"verdict": "rejected", "priority": "urgent"}, ("verdict", "priority")),
        ],
    )
    def test_one_422_names_every_invalid_field(
        self, refusing_client: FlaskClient, pending: Any, payload: dict, fields: tuple[str, ...]
    ) -> None:
        url = f"{API}/sorties/{pending['id']}"
        data = problem(refusing_client.patch(url, json=payload), 422, *fields)
        assert set(data["errors"]) == set(fields)
        assert etag(refusing_client.get(url)) == 1  # nothing written

    def test_unknown_sortie_is_404(self, pristine_client: FlaskClient) -> None:
        problem(pristine_client.patch(f"{API}/sorties/{UNKNOWN}", json={"title": "x"}), 404)


class TestDependencies:
    def test_a_cycle_is_422_on_dependencies(self, client: FlaskClient) -> None:
        a = sortie(client)
        b = sortie(client, dependencies=[a["id"]])
        problem(
            client.patch(f"{API}/sorties/{a['id']}", json={"dependencies": [b["id"]]}),
            422,
            "dependencies",
        )
        problem(
            client.patch(f"{API}/sorties/{a['id']}", json={"dependencies": [a["id"]]}),
            422,
            "dependencies",
        )

    def test_change_only_while_pending_or_assigned(self, client: FlaskClient) -> None:
        register(client, "s1")
        a, b = sortie(client), sortie(client)
        changed = patch_sortie(client, b["id"], dependencies=[a["id"]], title="B")
        assert (changed["dependencies"], changed["title"]) == ([a["id"]], "B")
        run_to(client, a["id"], "in_progress")
        patch_sortie(client, a["id"], 409, dependencies=[])

    def test_if_match(self, client: FlaskClient) -> None:
        s = sortie(client)
        url = f"{API}/sorties/{s['id']}"
        problem(client.patch(url, json={"title": "x"}, headers={"If-Match": '"2"'}), 412)
        assert etag(client.patch(url, json={"title": "x"}, headers={"If-Match": '"1"'})) == 2
