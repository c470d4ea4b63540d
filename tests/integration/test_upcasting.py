"""Schema evolution: ``sortie_created`` v2 adds ``estimate_minutes``, v3
``required_capabilities``; v1 and v2 events and snapshots written by earlier code still
load, upcast by the library (``class_version`` and ``upcast_v1_v2``/``upcast_v2_v3`` on the
event class and on the ``Sortie`` aggregate).

The fixture below is what the version 1 code stored (captured from it, byte for byte): a
sortie created, assigned, started and at 40 %, with a snapshot at version 3.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from application.app import project_fast
from application.fleet import Fleet
from application.store.query import IndexRow
from domain.sortie import Sortie

V1_STREAM = UUID("acc6fa53-72ff-4d60-9f50-1cee51cce98c")
V1_EVENTS = [
    (
        1,
        "sortie_created",
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-27T06:35:37.327599+00:00"},'
        b'"originator_topic":"sortie","event_id":"7d744d07-cf8f-4f27-ae5c-d04fab89f561",'
        b'"correlation_id":"fixture-v1","causation_id":null,"event_metadata":{"actor":"fixture"},'
        b'"description":"written by v1","priority":"high","dependencies":[],"metadata":{"k":"v"},'
        b'"mission_id":null,"title":"Old sortie","assigned_to":null}',
    ),
    (
        2,
        "sortie_assigned",
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-27T06:35:37.327751+00:00"},'
        b'"event_id":"983e0aa1-1360-4b46-a65f-cda7dfc69c65","correlation_id":"fixture-v1",'
        b'"causation_id":null,"event_metadata":{"actor":"fixture"},"specialist_id":"spec-1"}',
    ),
    (
        3,
        "sortie_started",
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-27T06:35:37.327782+00:00"},'
        b'"event_id":"d7bcf3a0-707e-4454-9063-63c2f5074a69","correlation_id":"fixture-v1",'
        b'"causation_id":null,"event_metadata":{"actor":"fixture"},"specialist_id":"spec-1"}',
    ),
    (
        4,
        "sortie_progress",
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-27T06:35:37.327799+00:00"},'
        b'"event_id":"e6c4f79e-67d7-4d0e-a52b-bb23a29a74dd","correlation_id":"fixture-v1",'
        b'"causation_id":null,"event_metadata":{"actor":"fixture"},"progress":40,'
        b'"status_message":"halfway"}',
    ),
]
V1_SNAPSHOT = (
    3,
    "eventsourcing.domain:Snapshot",
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-27T06:35:37.329368+00:00"},'
    b'"topic":"sortie","state":{"_created_on":{"_type_":"datetime_iso",'
    b'"_data_":"2026-11-27T06:35:37.327599+00:00"},"_modified_on":{"_type_":"datetime_iso",'
    b'"_data_":"2026-11-27T06:35:37.327782+00:00"},"mission_id":null,"title":"Old sortie",'
    b'"description":"written by v1","priority":"high","metadata":{"k":"v"},"dependencies":[],'
    b'"assigned_to":"spec-1","status":"in_progress","progress":0,"status_message":null,'
    b'"result":null,"error":null,"cancel_reason":null,"blocker":null,"review":null,'
    b'"started_at":{"_type_":"datetime_iso","_data_":"2026-11-27T06:35:37.327782+00:00"},'
    b'"completed_at":null}}',
)


def store_v1_fixture(fleet: Fleet) -> None:
    """Insert the v1 rows as they were stored, with their index rows, through the recorders."""
    fleet.app.recorder.insert_events(
        [StoredEvent(V1_STREAM, version, topic, state) for version, topic, state in V1_EVENTS],
        event_index=[IndexRow(topic, "sortie", "fixture-v1") for _, topic, _ in V1_EVENTS],
    )
    assert fleet.app.snapshots is not None
    version, topic, state = V1_SNAPSHOT
    fleet.app.snapshots.recorder.insert_events([StoredEvent(V1_STREAM, version, topic, state)])
    fleet.projector.catch_up()


def test_the_fixture_is_version_1() -> None:
    created = json.loads(V1_EVENTS[0][2])
    snapshot = json.loads(V1_SNAPSHOT[2])
    assert "class_version" not in created and "estimate_minutes" not in created
    assert "class_version" not in snapshot["state"]
    assert "estimate_minutes" not in snapshot["state"]
    assert Sortie.class_version == Sortie.Created.class_version == 3


def test_v1_events_and_snapshot_still_load(fleet: Fleet) -> None:
    store_v1_fixture(fleet)
    assert fleet.app.snapshots is not None
    [snapshot] = fleet.app.snapshots.get(V1_STREAM)
    from_snapshot = snapshot.mutate(None)  # the aggregate upcaster ran
    assert from_snapshot.version == 3 and from_snapshot.estimate_minutes is None

    loaded = fleet.app.get(V1_STREAM)  # snapshot at 3 + event 4
    assert (loaded.version, loaded.status, loaded.progress) == (4, "in_progress", 40)
    assert loaded.estimate_minutes is None and loaded.required_capabilities == []
    for version in range(1, 5):
        replayed = project_fast(None, fleet.app.events.get(V1_STREAM, lte=version))
        at_version = fleet.app.get(V1_STREAM, version=version)
        assert vars(at_version) == vars(replayed)
        assert at_version.estimate_minutes is None

    sortie = fleet.get_sortie(str(V1_STREAM))
    assert sortie["estimate_minutes"] is None and sortie["title"] == "Old sortie"
    assert fleet.get_sortie(str(V1_STREAM), version=1)["status"] == "pending"
    listed, total = fleet.list_sorties()
    assert total == 1 and listed[0]["estimate_minutes"] is None

    [created] = fleet.events(type="sortie_created")[0]
    assert created["schema_version"] == 3  # served in the current shape
    assert created["data"]["estimate_minutes"] is None
    assert created["data"]["required_capabilities"] == []
    assert created["data"]["title"] == "Old sortie"


def test_new_events_are_version_3(fleet: Fleet, raw_store: Any) -> None:
    store_v1_fixture(fleet)
    updated = fleet.update_sortie(str(V1_STREAM), estimate_minutes=90)
    assert updated["estimate_minutes"] == 90 and updated["version"] == 5
    fresh = fleet.create_sortie(description="new", estimate_minutes=15)
    assert fresh["estimate_minutes"] == 15

    stored = {
        str(UUID(str(row[1]))): json.loads(bytes(row[4]))
        for row in raw_store.event_rows()
        if row[2] == 1
    }
    assert stored[fresh["id"]]["class_version"] == 3
    assert stored[fresh["id"]]["estimate_minutes"] == 15
    assert stored[fresh["id"]]["required_capabilities"] == []
    assert "class_version" not in stored[str(V1_STREAM)]  # old rows are never rewritten

    events, _ = fleet.events(type="sortie_created")
    assert [e["schema_version"] for e in events] == [3, 3]
    assert events[1]["data"]["estimate_minutes"] == 15

    fleet.app.take_snapshot(V1_STREAM)
    assert fleet.app.snapshots is not None
    [newest] = fleet.app.snapshots.recorder.select_events(V1_STREAM, desc=True, limit=1)
    state = fleet.app.mapper.transcoder.decode(newest.state)
    assert state["state"]["class_version"] == 3 and state["state"]["estimate_minutes"] == 90
    assert fleet.app.get(V1_STREAM).estimate_minutes == 90

    listed = {s["id"]: s["estimate_minutes"] for s in fleet.list_sorties()[0]}
    assert listed == {str(V1_STREAM): 90, fresh["id"]: 15}


def test_a_restored_v1_checkpoint_has_no_estimate(fleet: Fleet) -> None:
    mission = fleet.create_mission(title="restore")
    sortie = fleet.create_sortie(description="s", mission_id=mission["id"])
    checkpoint = fleet.create_checkpoint(stream_id=mission["id"])
    fleet.update_sortie(sortie["id"], estimate_minutes=45)
    stored_state = dict(checkpoint["state"])
    assert "sorties" in stored_state or stored_state  # the captured state, as stored
    fleet.restore_checkpoint(checkpoint["id"], confirm=True)
    assert fleet.get_sortie(sortie["id"])["estimate_minutes"] is None


@pytest.mark.parametrize("bad", [-1, True, 1.5, "10"])
def test_estimates_are_whole_minutes(fleet: Fleet, bad: Any) -> None:
    from application.errors import ValidationError

    with pytest.raises(ValidationError) as error:
        fleet.create_sortie(description="x", estimate_minutes=bad)
    assert "estimate_minutes" in error.value.errors


V2_STREAM = UUID("5d0c3c55-8c4e-4f5e-9b59-3a4f3f1e2a10")
V2_CREATED = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-01T10:00:00.000000+00:00"},'
    b'"originator_topic":"sortie","event_id":"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",'
    b'"correlation_id":"fixture-v2","causation_id":null,"event_metadata":{},'
    b'"description":"written by v2","priority":"critical","dependencies":[],"metadata":{},'
    b'"mission_id":null,"title":null,"assigned_to":null,"estimate_minutes":30,'
    b'"class_version":2}'
)
V2_SNAPSHOT_STATE = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-01T10:00:01.000000+00:00"},'
    b'"topic":"sortie","state":{"_created_on":{"_type_":"datetime_iso",'
    b'"_data_":"2026-12-01T10:00:00.000000+00:00"},"_modified_on":{"_type_":"datetime_iso",'
    b'"_data_":"2026-12-01T10:00:00.000000+00:00"},"mission_id":null,"title":null,'
    b'"description":"written by v2","priority":"critical","metadata":{},"dependencies":[],'
    b'"assigned_to":null,"estimate_minutes":30,"status":"pending","progress":0,'
    b'"status_message":null,"result":null,"error":null,"cancel_reason":null,"blocker":null,'
    b'"review":null,"started_at":null,"completed_at":null,"class_version":2}}'
)


def test_v2_events_and_snapshots_need_no_capabilities(fleet: Fleet) -> None:
    """A sortie created before ``required_capabilities`` existed is claimable by anyone."""
    fleet.app.recorder.insert_events(
        [StoredEvent(V2_STREAM, 1, "sortie_created", V2_CREATED)],
        event_index=[IndexRow("sortie_created", "sortie", "fixture-v2")],
    )
    assert fleet.app.snapshots is not None
    fleet.app.snapshots.recorder.insert_events(
        [StoredEvent(V2_STREAM, 1, "eventsourcing.domain:Snapshot", V2_SNAPSHOT_STATE)]
    )
    fleet.projector.catch_up()
    [snapshot] = fleet.app.snapshots.get(V2_STREAM)
    assert snapshot.mutate(None).required_capabilities == []
    replayed = project_fast(None, fleet.app.events.get(V2_STREAM))
    assert replayed.required_capabilities == [] and replayed.estimate_minutes == 30
    assert fleet.get_sortie(str(V2_STREAM))["required_capabilities"] == []
    [created] = fleet.events(type="sortie_created")[0]
    assert created["schema_version"] == 3 and created["data"]["required_capabilities"] == []
    fleet.register_specialist(specialist_id="anyone", name="Anyone")
    claimed = fleet.claim_sortie("anyone", capabilities=[])
    assert claimed is not None and claimed["id"] == str(V2_STREAM)
