"""Checkpoints over HTTP: capture a mission or the fleet, read, list, restore."""

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


def checkpoint(client: FlaskClient, stream_id: str, **fields: object) -> dict:
    response = client.post(f"{API}/checkpoints", json={"stream_id": stream_id, **fields})
    return body(response, 201)["checkpoint"]  # type: ignore[no-any-return]


class TestCreate:
    def test_a_mission_with_its_sorties(self, client: FlaskClient) -> None:
        m = mission(client)
        s = sortie(client, mission_id=m["id"])
        response = client.post(
            f"{API}/checkpoints", json={"stream_id": m["id"], "description": "d"}
        )
        created = body(response, 201)["checkpoint"]
        assert (created["target_stream_id"], created["target_version"]) == (m["id"], 1)
        assert [e["stream_id"] for e in created["state"]["streams"]] == [m["id"], s["id"]]
        assert (created["restored_count"], created["description"]) == (0, "d")
        assert etag(response) == 1
        assert position(response) == events(client)[-1]["id"]
        assert [e["event_type"] for e in events(client)[-2:]] == [
            "checkpoint_created",
            "fleet_checkpointed",
        ]
        assert events(client, type="fleet_checkpointed")[0]["data"]["trigger"] == "manual"

    def test_the_fleet(self, client: FlaskClient) -> None:
        open_one = mission(client)
        closed = mission(client)
        client.patch(f"{API}/missions/{closed['id']}", json={"status": "cancelled"})
        created = checkpoint(client, "fleet")
        assert created["target_stream_id"] == "fleet"
        assert [e["stream_id"] for e in created["state"]["streams"]] == [open_one["id"]]

    @pytest.mark.parametrize(
        "payload",
        [{}, {"stream_id": ""}, {"stream_id": "nothing"}, {"stream_id": "fleet", "x": 1}],
    )
    def test_invalid(self, pristine_client: FlaskClient, payload: dict) -> None:
        data = problem(pristine_client.post(f"{API}/checkpoints", json=payload), 422)
        assert set(data["errors"]) & {"stream_id", "x"}


class TestReadAndList:
    def test_get_and_list(self, client: FlaskClient) -> None:
        a, b = mission(client), mission(client)
        first = checkpoint(client, a["id"])
        second = checkpoint(client, b["id"])
        third = checkpoint(client, a["id"])
        response = client.get(f"{API}/checkpoints/{first['id']}")
        assert body(response, 200)["checkpoint"]["id"] == first["id"]
        assert etag(response) == 1
        page = body(client.get(f"{API}/checkpoints"), 200)
        assert [c["id"] for c in page["checkpoints"]] == [first["id"], second["id"], third["id"]]
        page = body(client.get(f"{API}/checkpoints", query_string={"stream_id": a["id"]}), 200)
        assert [c["id"] for c in page["checkpoints"]] == [first["id"], third["id"]]
        assert page["total"] == 2
        problem(client.get(f"{API}/checkpoints", query_string={"limit": 0}), 422, "limit")

    @pytest.mark.parametrize("checkpoint_id", ["nope", "00000000-0000-0000-0000-000000000000"])
    def test_unknown_is_404(self, pristine_client: FlaskClient, checkpoint_id: str) -> None:
        problem(pristine_client.get(f"{API}/checkpoints/{checkpoint_id}"), 404)
        problem(
            pristine_client.post(
                f"{API}/checkpoints/{checkpoint_id}/restore", json={"confirm": True}
            ),
            404,
        )


class TestRestore:
    def test_restore_brings_the_mission_back_and_keeps_history(self, client: FlaskClient) -> None:
        register(client, "s1")
        m = mission(client, title="Before")
        kept = sortie(client, mission_id=m["id"])
        saved = checkpoint(client, m["id"])
        client.patch(f"{API}/missions/{m['id']}", json={"title": "After", "status": "in_progress"})
        run_to(client, kept["id"], "in_progress")
        newcomer = sortie(client, mission_id=m["id"])
        history = len(events(client, stream_id=m["stream_id"]))

        response = client.post(
            f"{API}/checkpoints/{saved['id']}/restore",
            json={"confirm": True},
            headers={"X-Correlation-ID": "restore-1"},
        )
        data = body(response, 200)
        assert data["restored"] is True
        assert data["checkpoint"]["restored_count"] == 1
        assert data["checkpoint"]["last_restored_at"] is not None
        assert etag(response) == data["checkpoint"]["version"] == 2

        now = body(client.get(f"{API}/missions/{m['id']}"), 200)
        assert (now["mission"]["title"], now["mission"]["status"]) == ("Before", "pending")
        statuses = {s["id"]: s["status"] for s in now["sorties"]}
        assert statuses == {kept["id"]: "pending", newcomer["id"]: "cancelled"}
        assert now["mission"]["progress"]["cancelled"] == 1
        mission_events = events(client, stream_id=m["stream_id"])
        assert len(mission_events) == history + 1
        assert mission_events[-1]["event_type"] == "fleet_recovered"
        caused = events(client, correlation_id="restore-1")
        assert {"checkpoint_restored", "fleet_recovered", "sortie_cancelled"} <= {
            e["event_type"] for e in caused
        }
        assert position(response) == events(client)[-1]["id"]
        patch_sortie(client, kept["id"], status="assigned", assigned_to="s1")

    def test_a_fleet_checkpoint_restores_each_mission(self, client: FlaskClient) -> None:
        a, b = mission(client, "a"), mission(client, "b")
        saved = checkpoint(client, "fleet")
        for m in (a, b):
            client.patch(f"{API}/missions/{m['id']}", json={"title": "changed"})
        body(client.post(f"{API}/checkpoints/{saved['id']}/restore", json={"confirm": True}), 200)
        titles = [
            body(client.get(f"{API}/missions/{m['id']}"), 200)["mission"]["title"] for m in (a, b)
        ]
        assert titles == ["a", "b"]

    @pytest.mark.parametrize(
        "payload", [{}, {"confirm": False}, {"confirm": "true"}, {"confirm": 1}, {"confirm": None}]
    )
    def test_confirm_must_be_true(self, client: FlaskClient, payload: dict) -> None:
        saved = checkpoint(client, mission(client)["id"])
        before = len(events(client))
        response = client.post(f"{API}/checkpoints/{saved['id']}/restore", json=payload)
        problem(response, 422, "confirm")
        assert len(events(client)) == before

    def test_if_match_pins_the_checkpoint_version(self, client: FlaskClient) -> None:
        saved = checkpoint(client, mission(client)["id"])
        url = f"{API}/checkpoints/{saved['id']}/restore"
        first = client.post(url, json={"confirm": True}, headers={"If-Match": '"1"'})
        assert body(first, 200)["checkpoint"]["restored_count"] == 1
        before = len(events(client))
        stale = client.post(url, json={"confirm": True}, headers={"If-Match": '"1"'})
        problem(stale, 412)
        assert len(events(client)) == before
