"""Every public service of ``Fleet``, through both doors: in process and over HTTP.

``fleet_door`` is a ``Fleet`` or a ``FleetClient`` pointed at a live gunicorn; each
scenario runs unchanged against both, so the two doors answer with the same dicts and
raise the same ``application.errors`` (with the same messages). The store is shared by
a module's scenarios, so each one names its own ids.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from application import Conflict, Forbidden, NotFound, PreconditionFailed, ValidationError


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_specialists_register_heartbeat_and_end(fleet_door: Any) -> None:
    ace, bee, cat = unique("ace"), unique("bee"), unique("cat")
    first = fleet_door.register_specialist(
        specialist_id=ace, name="Ace", capabilities=["code", unique("skill")]
    )
    assert first["id"] == ace and first["status"] == "active" and first["version"] == 1
    renamed = fleet_door.register_specialist(specialist_id=ace, name="Ace II", expected_version=1)
    assert renamed["name"] == "Ace II" and renamed["capabilities"] == first["capabilities"]
    with pytest.raises(PreconditionFailed) as stale:
        fleet_door.register_specialist(specialist_id=ace, name="Ace III", expected_version=1)
    assert (stale.value.expected, stale.value.actual) == (1, 2)
    assert str(stale.value) == "expected version 1, but the current version is 2"

    busy = fleet_door.heartbeat(ace, status="busy", metrics={"tokens": 5})
    assert busy["status"] == "busy" and busy["version"] == 3
    assert fleet_door.get_specialist(ace, version=1)["name"] == "Ace"
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert fleet_door.get_specialist(ace, as_of=later)["status"] == "busy"
    skill = first["capabilities"][1]
    found, total = fleet_door.list_specialists(capability=skill)
    assert total == 1 and [s["id"] for s in found] == [ace]

    fleet_door.register_specialist(specialist_id=bee, name="Bee", spawned_by=ace, config={"m": 1})
    assert fleet_door.complete_specialist(bee, reason="success", summary="done")["status"] == (
        "completed"
    )
    fleet_door.register_specialist(specialist_id=cat, name="Cat")
    failed = fleet_door.fail_specialist(cat, error="crashed", details={"code": 9})
    assert failed["status"] == "failed"
    assert fleet_door.deregister_specialist(ace)["status"] == "inactive"

    with pytest.raises(NotFound, match="not found"):
        fleet_door.get_specialist(unique("nobody"))
    with pytest.raises(ValidationError) as bad:
        fleet_door.heartbeat(bee, status="sleeping")
    assert "status" in bad.value.errors
    with pytest.raises(ValidationError) as unnamed:
        fleet_door.register_specialist(specialist_id=unique("x"), name="")
    assert "name" in unnamed.value.errors


def test_a_mission_runs_from_creation_to_completion(fleet_door: Any) -> None:
    ace, bee = unique("ace"), unique("bee")
    fleet_door.register_specialist(specialist_id=ace, name="Ace")
    fleet_door.register_specialist(specialist_id=bee, name="Bee")
    mission = fleet_door.create_mission(title="Ship it", goals=["green CI"], priority="high")
    assert mission["status"] == "pending" and mission["progress"]["total"] == 0
    assert mission["id"] in fleet_door.list_missions_open()[0]
    first = fleet_door.create_sortie(description="write code", mission_id=mission["id"])
    second = fleet_door.create_sortie(
        description="review", mission_id=mission["id"], dependencies=[first["id"]]
    )
    assert second["blocked_by"] == [first["id"]]
    assert [s["id"] for s in fleet_door.mission_sorties(mission["id"])] == [
        first["id"],
        second["id"],
    ]

    fleet_door.update_mission(mission["id"], status="in_progress", title="Ship it now")
    fleet_door.update_sortie(second["id"], status="assigned", assigned_to=bee)
    with pytest.raises(Conflict, match="dependencies not completed"):
        fleet_door.update_sortie(second["id"], status="in_progress")
    fleet_door.update_sortie(first["id"], status="assigned", assigned_to=ace)
    fleet_door.update_sortie(first["id"], status="in_progress")
    halfway = fleet_door.update_sortie(first["id"], progress=40, status_message="half")
    assert halfway["progress"] == 40
    fleet_door.update_sortie(first["id"], status="review", reviewer_id=bee)
    done = fleet_door.update_sortie(first["id"], status="completed", result={"pr": 7})
    assert done["status"] == "completed" and done["review"]["verdict"] == "approved"
    assert fleet_door.get_sortie(second["id"])["blocked_by"] == []
    assert fleet_door.get_sortie(first["id"], version=1)["status"] == "pending"

    with pytest.raises(Conflict, match="not completed or cancelled"):
        fleet_door.update_mission(mission["id"], status="completed")
    fleet_door.update_sortie(second["id"], status="in_progress")
    fleet_door.update_sortie(second["id"], status="completed")
    finished = fleet_door.update_mission(mission["id"], status="completed", result={"ok": True})
    assert finished["status"] == "completed" and finished["progress"]["percent"] == 100
    assert fleet_door.get_mission(mission["id"], version=1)["title"] == "Ship it"
    assert fleet_door.get_mission(mission["id"])["title"] == "Ship it now"
    assert mission["id"] not in fleet_door.list_missions_open()[0]
    listed, total = fleet_door.list_sorties(mission_id=mission["id"], status="completed")
    assert total == 2 and {s["id"] for s in listed} == {first["id"], second["id"]}
    assert fleet_door.list_sorties(assigned_to=ace)[1] == 1
    missions, _ = fleet_door.list_missions(status="completed", limit=1000)
    assert mission["id"] in [m["id"] for m in missions]


def test_sortie_refusals_are_the_same_errors(fleet_door: Any) -> None:
    sortie = fleet_door.create_sortie(description="task")
    with pytest.raises(ValidationError) as missing:
        fleet_door.update_sortie(sortie["id"], status="assigned")
    assert missing.value.errors == {"assigned_to": ["required to assign a sortie"]}
    assert str(missing.value) == "invalid input: assigned_to: required to assign a sortie"
    with pytest.raises(Conflict, match="allowed next statuses: assigned, cancelled"):
        fleet_door.update_sortie(sortie["id"], status="completed")
    with pytest.raises(PreconditionFailed):
        fleet_door.update_sortie(sortie["id"], title="new", expected_version=7)
    with pytest.raises(ValidationError) as bad_mission:
        fleet_door.create_sortie(description="x", mission_id=str(uuid.uuid4()))
    assert "mission_id" in bad_mission.value.errors
    with pytest.raises(NotFound):
        fleet_door.get_sortie(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        fleet_door.get_mission("not-a-mission")
    with pytest.raises(ValidationError) as unknown:
        fleet_door.update_mission(str(uuid.uuid4()), colour="blue")
    assert unknown.value.errors["colour"] == ["Unknown field."]


def test_checkpoints_restore_a_mission(fleet_door: Any) -> None:
    mission = fleet_door.create_mission(title="Before")
    checkpoint = fleet_door.create_checkpoint(mission["stream_id"], description="safe point")
    assert checkpoint["target_stream_id"] == mission["stream_id"]
    fleet_door.update_mission(mission["id"], title="After")
    newcomer = fleet_door.create_sortie(description="added later", mission_id=mission["id"])
    assert fleet_door.get_checkpoint(checkpoint["id"])["description"] == "safe point"
    with pytest.raises(ValidationError) as unconfirmed:
        fleet_door.restore_checkpoint(checkpoint["id"])
    assert "confirm" in unconfirmed.value.errors
    restored = fleet_door.restore_checkpoint(checkpoint["id"], confirm=True)
    assert restored["restored_count"] == 1
    assert fleet_door.get_mission(mission["id"])["title"] == "Before"
    assert fleet_door.get_sortie(newcomer["id"])["status"] == "cancelled"
    listed, total = fleet_door.list_checkpoints(stream_id=mission["stream_id"])
    assert total == 1 and listed[0]["id"] == checkpoint["id"]
    with pytest.raises(NotFound):
        fleet_door.get_checkpoint(str(uuid.uuid4()))

    report = fleet_door.compact(stream_id=mission["stream_id"])
    assert report["streams_compacted"] == 1
    assert report["streams"][0]["stream_id"] == mission["stream_id"]


def test_messages_move_through_their_lifecycle(fleet_door: Any) -> None:
    inbox, ace, bee = unique("inbox"), unique("ace"), unique("bee")
    sent = fleet_door.send_message(
        inbox, message_type="question", content={"q": "ready?"}, sender_id=ace, priority="high"
    )
    assert sent["status"] == "pending" and sent["mailbox_id"] == inbox
    assert fleet_door.get_message(sent["id"])["content"] == {"q": "ready?"}
    read = fleet_door.read_message(sent["id"], reader_id=bee)
    assert read["status"] == "read" and read["reader_id"] == bee
    with pytest.raises(PreconditionFailed):
        fleet_door.ack_message(sent["id"], acker_id=bee, expected_version=read["version"] - 1)
    acked = fleet_door.ack_message(sent["id"], acker_id=bee, response={"a": "yes"})
    assert acked["status"] == "acked"
    requeued = fleet_door.requeue_message(sent["id"], reason="again")
    assert requeued["status"] == "pending" and requeued["requeue_count"] == 1
    fleet_door.read_message(sent["id"], reader_id=bee)
    fleet_door.ack_message(sent["id"], acker_id=bee)
    assert fleet_door.archive_message(sent["id"], archived_by=bee)["status"] == "archived"
    fleet_door.send_message(inbox, message_type="note", content={})
    pending, total = fleet_door.list_messages(inbox, status="pending")
    assert total == 1 and pending[0]["message_type"] == "note"
    assert fleet_door.list_messages(inbox)[1] == 2
    assert fleet_door.list_messages(unique("empty")) == ([], 0)

    with pytest.raises(Conflict, match="allowed next statuses"):
        fleet_door.ack_message(pending[0]["id"], acker_id=bee)
    with pytest.raises(NotFound):
        fleet_door.get_message(str(uuid.uuid4()))
    with pytest.raises(ValidationError) as no_type:
        fleet_door.send_message(inbox, message_type="", content={})
    assert "message_type" in no_type.value.errors


def test_cursors_move_forward_and_reset(fleet_door: Any) -> None:
    consumer, stream = unique("reader"), str(uuid.uuid4())
    cursor = fleet_door.advance_cursor(consumer, stream, 5)
    assert cursor["position"] == 5 and cursor["consumer_id"] == consumer
    assert fleet_door.advance_cursor(consumer, stream, 5)["version"] == cursor["version"]
    with pytest.raises(Conflict):
        fleet_door.advance_cursor(consumer, stream, 2)
    reset = fleet_door.reset_cursor(consumer, stream, expected_version=cursor["version"])
    assert reset["position"] == 0
    assert fleet_door.get_cursor(cursor["id"])["position"] == 0
    with pytest.raises(NotFound):
        fleet_door.get_cursor(str(uuid.uuid4()))


def test_locks_are_exclusive_and_name_their_holder(fleet_door: Any) -> None:
    ace, bee = unique("ace"), unique("bee")
    path = f"src/{unique('mod')}.py"
    lock = fleet_door.acquire_lock(f"./{path}", ace, timeout_ms=60_000, purpose="edit")
    assert lock["normalized_path"] == path and lock["reserved_by"] == ace
    with pytest.raises(Conflict, match=f"locked by '{ace}'") as held:
        fleet_door.acquire_lock(path, bee)
    assert held.value.extra["lock"]["id"] == lock["id"]
    assert held.value.extra["lock"]["reserved_by"] == ace
    with pytest.raises(Forbidden):
        fleet_door.release_lock(lock["id"], bee)
    mine, total = fleet_door.list_locks(specialist_id=ace)
    assert total == 1 and mine[0]["id"] == lock["id"]
    released = fleet_door.release_lock(lock["id"], ace)
    assert released["status"] == "released"
    assert fleet_door.get_lock(lock["id"])["status"] == "released"
    assert fleet_door.list_locks(specialist_id=ace) == ([], 0)
    assert fleet_door.list_locks(status=None, specialist_id=ace)[1] == 1
    with pytest.raises(NotFound):
        fleet_door.get_lock(unique("lock"))
    with pytest.raises(ValidationError) as bad:
        fleet_door.acquire_lock("", ace)
    assert "file" in bad.value.errors


def test_the_event_log_tells_what_happened(fleet_door: Any) -> None:
    before = fleet_door.head_position()
    mission = fleet_door.create_mission(title="Logged")
    fleet_door.update_mission(mission["id"], status="in_progress")
    assert fleet_door.head_position() == before + 2
    events, total = fleet_door.events(stream_id=mission["stream_id"])
    assert total == 2 and [e["event_type"] for e in events] == [
        "mission_created",
        "mission_started",
    ]
    typed, _ = fleet_door.events(type=["mission_started"], after=before)
    assert [e["stream_id"] for e in typed] == [mission["stream_id"]]
    by_correlation, _ = fleet_door.events(correlation_id=events[0]["correlation_id"])
    assert by_correlation[0]["id"] == events[0]["id"]
    assert fleet_door.get_event(events[1]["id"])["event_type"] == "mission_started"
    history = fleet_door.stream_events(mission["stream_id"], from_sequence=2)
    assert [e["sequence_number"] for e in history] == [2]
    with pytest.raises(ValidationError, match="valid types"):
        fleet_door.events(type="nonsense")
    with pytest.raises(NotFound):
        fleet_door.get_event(10**9)
    with pytest.raises(NotFound):
        fleet_door.stream_events(str(uuid.uuid4()))
    health = fleet_door.health()
    assert health["status"] == "ok" and health["database"]["backend"] == "sqlite"


def test_agents_claim_wait_and_follow(fleet_door: Any) -> None:
    ace, skill = unique("ace"), unique("skill")
    fleet_door.register_specialist(specialist_id=ace, name="Ace", capabilities=[skill])
    mission = fleet_door.create_mission(title="Claimed")
    start = fleet_door.head_position()
    wanted = fleet_door.create_sortie(
        description="needs the skill", mission_id=mission["id"], required_capabilities=[skill]
    )
    assert wanted["required_capabilities"] == [skill]
    assert fleet_door.claim_sortie(ace, mission_id=mission["id"], capabilities=["other"]) is None
    claimed = fleet_door.claim_sortie(ace, mission_id=mission["id"], idempotency_key=unique("k"))
    assert claimed is not None and claimed["id"] == wanted["id"]
    assert claimed["assigned_to"] == ace and claimed["status"] == "assigned"
    assert fleet_door.claim_sortie(ace, mission_id=mission["id"], wait=0.2) is None
    with pytest.raises(ValidationError) as too_long:
        fleet_door.claim_sortie(ace, wait=31)
    assert "wait" in too_long.value.errors

    key = unique("key")
    sent = fleet_door.send_message(ace, "note", {"n": 1}, idempotency_key=key)
    assert fleet_door.send_message(ace, "note", {"n": 1}, idempotency_key=key) == sent
    assert fleet_door.list_messages(ace)[1] == 1  # the retry with the same key wrote nothing
    assert fleet_door.wait_for_messages(ace, status="pending", wait=0.1) == [sent]
    quiet = unique("quiet")
    assert fleet_door.wait_for_messages(quiet, wait=0.2) == []
    later = threading.Timer(0.3, fleet_door.send_message, (quiet, "note", {"n": 2}))
    later.start()
    try:
        arrived, total = fleet_door.list_messages(quiet, wait=10)
    finally:
        later.join()
    assert total == 1 and arrived[0]["content"] == {"n": 2}

    head = fleet_door.head_position()
    assert fleet_door.events(after=head, wait=0.2) == ([], 0)
    logged, _ = fleet_door.events(after=start, limit=4)
    feed = fleet_door.subscribe(after=start)
    followed = [next(feed) for _ in range(4)]
    feed.close()
    assert followed == logged
    live = fleet_door.follow(after=head, stream_id=mission["stream_id"])
    try:
        fleet_door.update_mission(mission["id"], title="Followed")
        event = next(event for event in live if event is not None)
    finally:
        live.close()
    assert event["event_type"] == "mission_updated" and event["id"] > head
    with pytest.raises(ValidationError, match="valid types"):
        fleet_door.follow(type="nonsense")
