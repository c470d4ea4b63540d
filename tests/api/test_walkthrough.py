"""One client's story, on SQLite and on PostgreSQL: a mission from start to restore."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.api.support import (
    API,
    body,
    events,
    mission,
    patch_sortie,
    position,
    problem,
    register,
    sortie,
)


def test_a_mission_from_registration_to_restore(client: FlaskClient) -> None:
    # A specialist joins and a mission is planned with two dependent sorties.
    register(client, "coder", capabilities=["python"])
    m = mission(client, "Ship", goals=["release"], priority="high")
    build = sortie(client, "build", mission_id=m["id"])
    ship = sortie(client, "ship", mission_id=m["id"], dependencies=[build["id"]])
    assert ship["blocked_by"] == [build["id"]]

    # The specialist does the first; the second may start only once it is completed.
    patch_sortie(client, build["id"], status="assigned", assigned_to="coder")
    patch_sortie(client, ship["id"], status="assigned", assigned_to="coder")
    patch_sortie(client, ship["id"], 409, status="in_progress")
    patch_sortie(client, build["id"], status="in_progress")
    done = client.patch(
        f"{API}/sorties/{build['id']}",
        json={"status": "completed"},
        headers={"X-Correlation-ID": "build-done"},
    )
    body(done, 200)
    listed = body(
        client.get(
            f"{API}/sorties",
            query_string={
                "mission_id": m["id"],
                "status": "completed",
                "min_position": position(done),
            },
        ),
        200,
    )
    assert [s["id"] for s in listed["sorties"]] == [build["id"]]

    # Checkpoint, go on, then restore: the mission reads as it did.
    saved = body(client.post(f"{API}/checkpoints", json={"stream_id": m["id"]}), 201)["checkpoint"]
    patch_sortie(client, ship["id"], status="in_progress")
    late = sortie(client, "late", mission_id=m["id"])
    body(client.post(f"{API}/checkpoints/{saved['id']}/restore", json={"confirm": True}), 200)
    now = body(client.get(f"{API}/missions/{m['id']}"), 200)
    statuses = {s["id"]: s["status"] for s in now["sorties"]}
    assert statuses == {build["id"]: "completed", ship["id"]: "assigned", late["id"]: "cancelled"}

    # The log tells the story, by type, by stream and by correlation.
    assert [e["event_type"] for e in events(client, correlation_id="build-done")] == [
        "sortie_completed"
    ]
    recovered = events(client, type="fleet_recovered")
    assert {e["stream_id"] for e in recovered} == {m["id"], build["id"], ship["id"]}
    stream = body(client.get(f"{API}/streams/{ship['stream_id']}/events"), 200)["events"]
    assert [e["event_type"] for e in stream][-1] == "fleet_recovered"


def test_text_the_database_cannot_store_is_refused(client: FlaskClient) -> None:
    """PostgreSQL text holds no NUL: the API refuses it (422) instead of failing later."""
    problem(client.post(f"{API}/missions", json={"title": "a\x00"}), 422, "title")
    problem(client.get(f"{API}/sorties", query_string={"mission_id": "\x00"}), 422, "mission_id")
    body(client.post(f"{API}/missions", json={"title": "fine"}), 201)
