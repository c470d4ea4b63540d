"""``fleet compact --archive``: old events move to the archive under the safety rules, every
other UPDATE or DELETE stays refused, and every read sees archive and live log as one."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from application.cli import main
from application.fleet import Fleet
from domain.specialist import specialist_stream_id

ENV = {"FLEET_SNAPSHOT_INTERVAL": "20", "FLEET_COMPACTION_THRESHOLD": "3"}
LATER = datetime.now(UTC) + timedelta(days=31)  # every event is past the 30-day retention


@pytest.fixture
def store(backend: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    env = {**backend, **ENV}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    fleet = Fleet(env=env)
    try:
        yield fleet
    finally:
        fleet.close()


def build(fleet: Fleet) -> dict[str, str]:
    fleet.register_specialist("arch", "Archer", capabilities=["bow"])
    for i in range(60):
        fleet.heartbeat("arch", status=("busy", "idle", "active")[i % 3], metrics={"i": i})
    fleet.register_specialist("rev", "Reviewer")
    mission = fleet.create_mission(title="Archive me", goals=["keep history"])
    first = fleet.create_sortie(description="first", mission_id=mission["id"])
    second = fleet.create_sortie(
        description="second", mission_id=mission["id"], dependencies=[first["id"]]
    )
    fleet.update_sortie(first["id"], status="assigned", assigned_to="arch")
    fleet.update_sortie(first["id"], status="in_progress")
    for p in (10, 40, 80):
        fleet.update_sortie(first["id"], progress=p, status_message=f"at {p}")
    fleet.update_sortie(first["id"], status="review", reviewer_id="rev")
    fleet.update_sortie(first["id"], status="completed", feedback="fine")
    fleet.update_mission(mission["id"], status="in_progress")
    fleet.create_checkpoint(stream_id=mission["id"])
    fleet.update_sortie(second["id"], title="renamed")
    fleet.heartbeat("arch", status="idle")  # the newest row of the table
    return {
        "arch": str(specialist_stream_id("arch")),
        "mission": mission["id"],
        "first": first["id"],
        "second": second["id"],
    }


def snapshot_of_reads(fleet: Fleet, ids: dict[str, str]) -> dict[str, Any]:
    """Every way a user reads history, as plain data."""
    runner = CliRunner()
    reads: dict[str, Any] = {
        "replay": {k: runner.invoke(main, ["replay", v]).output for k, v in ids.items()},
        "events": fleet.events(limit=1000),
        "stream": fleet.stream_events(ids["arch"], from_sequence=5, to_sequence=30),
        "specialist": [fleet.get_specialist("arch", version=v) for v in range(1, 63)],
        "sortie": [fleet.get_sortie(ids["first"], version=v) for v in range(1, 9)],
        "mission_then": fleet.get_mission(ids["mission"], version=1),
        "lists": (
            fleet.list_specialists(),
            fleet.list_missions(),
            fleet.list_sorties(),
            fleet.list_checkpoints(),
        ),
    }
    created = reads["specialist"][9]["updated_at"]
    reads["as_of"] = fleet.get_specialist("arch", as_of=datetime.fromisoformat(created))
    return reads


def live_versions(raw_store: Any, stream: str) -> list[int]:
    key = stream if raw_store.backend == "postgres" else stream.replace("-", "")
    return [
        r[0]
        for r in raw_store.rows(
            f"SELECT originator_version FROM {raw_store.events_table} "  # noqa: S608
            "WHERE originator_id = ? ORDER BY 1",
            [key],
        )
    ]


def test_archiving_keeps_every_read_the_same(store: Fleet, raw_store: Any) -> None:
    ids = build(store)
    store.compact()  # snapshots every stream with 3 or more events since its last one
    before = snapshot_of_reads(store, ids)
    rows_before = len(raw_store.event_rows())

    report = store.compact(archive=True, now=LATER)
    assert report["events_archived"] > 60
    moved = {a["stream_id"]: a for a in report["archived"]}
    assert moved[ids["arch"]]["to_version"] == 60  # its latest snapshot
    assert len(raw_store.event_rows()) == rows_before - report["events_archived"]
    assert live_versions(raw_store, ids["arch"]) == [1, 61, 62]  # 1 and after the snapshot
    assert store.app.archive is not None and store.app.archive.count() == rows_before - len(
        raw_store.event_rows()
    )

    for name in store.projector.projections:  # rebuilds read archive and live log
        store.projector.rebuild(name)
    after = snapshot_of_reads(store, ids)
    assert after == before
    # Writes go on as before, and the archived stream keeps its history.
    assert store.heartbeat("arch", status="busy")["version"] == 63
    assert [e.originator_version for e in store.app.events.get(specialist_stream_id("arch"))] == (
        list(range(1, 64))
    )
    again = store.compact(archive=True, now=LATER)  # 61-63: now behind compaction's snapshot
    assert again["archived"] == [{"stream_id": ids["arch"], "to_version": 64, "events": 3}]
    assert live_versions(raw_store, ids["arch"]) == [1, 64]
    stream = specialist_stream_id("arch")
    assert [e.originator_version for e in store.app.events.get(stream)] == list(range(1, 65))
    assert store.compact(archive=True, now=LATER)["events_archived"] == 0


def test_archiving_follows_the_safety_rules(
    backend: dict[str, str], raw_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**backend, **ENV, "FLEET_PROJECTOR": "external"}
    fleet = Fleet(env=env)
    try:
        fleet.register_specialist("slow", "Slow")
        for _ in range(25):
            fleet.heartbeat("slow", status="busy")
        fleet.projector.catch_up()
        horizon = fleet.projector.min_position()
        for _ in range(20):
            fleet.heartbeat("slow", status="idle")  # not projected yet
        fleet.register_specialist("other", "Other")
        stream = specialist_stream_id("slow")
        fleet.app.take_snapshot(stream)  # at 46: everything is behind a snapshot

        young = fleet.compact(archive=True)  # every event is younger than 30 days
        assert young["events_archived"] == 0

        report = fleet.compact(archive=True, now=LATER)
        assert fleet.app.archive is not None
        archived = fleet.app.archive.select_notifications(0, 1000)
        assert report["events_archived"] == len(archived) > 0
        assert max(n.id for n in archived) <= horizon  # never past the slowest projection
        assert min(n.originator_version for n in archived) == 2  # never version 1
        assert live_versions(raw_store, str(stream))[0] == 1
        assert live_versions(raw_store, str(stream))[-1] == 46

        fleet.projector.catch_up()
        later = fleet.compact(archive=True, now=LATER)  # the projections moved on
        assert later["events_archived"] == 46 - 2 - len(archived)  # all but 1 and the newest
        assert live_versions(raw_store, str(stream)) == [1, 46]
        assert fleet.get_specialist("slow", version=30)["status"] == "idle"
    finally:
        fleet.close()


def test_only_the_archive_may_remove_events(store: Fleet, raw_store: Any) -> None:
    ids = build(store)
    stream = ids["arch"] if raw_store.backend == "postgres" else ids["arch"].replace("-", "")
    table, pos = raw_store.events_table, raw_store.position_column
    newest = raw_store.scalar(f"SELECT MAX({pos}) FROM {table}")  # noqa: S608
    refused: list[tuple[str, list[Any]]] = [
        (f"DELETE FROM {table} WHERE originator_id = ? AND originator_version = 5", [stream]),  # noqa: S608
        (f"UPDATE {table} SET topic = topic WHERE originator_id = ?", [stream]),  # noqa: S608
        (f"DELETE FROM {table}", []),  # noqa: S608
        ("DELETE FROM fleet_event_index", []),
        ("UPDATE fleet_event_index SET event_type = 'x'", []),
    ]
    if raw_store.backend == "postgres":
        refused += [(f"TRUNCATE {table}", []), ("TRUNCATE fleet_event_index", [])]
    for sql, params in refused:
        with pytest.raises(raw_store.errors, match="immutable"):
            raw_store.execute(sql, params)
    # A forged permit opens only the archive's own narrow path: never version 1, never the
    # newest row, never an UPDATE.
    with_permit: list[tuple[str, list[Any]]] = [
        (f"UPDATE {table} SET topic = topic WHERE originator_id = ?", [stream]),  # noqa: S608
        (f"DELETE FROM {table} WHERE originator_id = ? AND originator_version = 1", [stream]),  # noqa: S608
        (f"DELETE FROM {table} WHERE {pos} = ?", [newest]),  # noqa: S608
    ]
    for sql, params in with_permit:
        raw_store.execute("BEGIN")
        try:
            raw_store.execute(
                "INSERT INTO fleet_archive_permit VALUES (?, ?, ?)", [stream, 1000, newest]
            )
            with pytest.raises(raw_store.errors, match="immutable"):
                raw_store.execute(sql, params)
        finally:
            raw_store.execute("ROLLBACK")
    assert len(raw_store.event_rows()) == newest


def test_a_row_in_both_places_is_read_once(sqlite_env: dict[str, str]) -> None:
    """A crash between the archive's copy and the live delete leaves a row in both."""
    fleet = Fleet(env={**sqlite_env, **ENV})
    try:
        fleet.register_specialist("twice", "Twice")
        for _ in range(25):
            fleet.heartbeat("twice", status="busy")
        stream = specialist_stream_id("twice")
        assert fleet.app.archive is not None
        fleet.app.archive.move(stream, 10, 0)  # horizon 0: creates the archive, moves nothing
        with sqlite3.connect(fleet.app.archive.path) as conn:  # the copy, without the delete
            conn.execute("ATTACH DATABASE ? AS live", (sqlite_env["SQLITE_DBNAME"],))
            conn.execute(
                "INSERT INTO archived_events SELECT rowid, originator_id, originator_version, "
                "topic, state, 'now' FROM live.stored_events WHERE originator_version <= 10"
            )
        versions = [e.originator_version for e in fleet.app.events.get(stream, gt=3)]
        assert versions == list(range(4, 27))
        positions = [n.id for n in fleet.app.select_history(0, 100)]
        assert positions == sorted(set(positions)) and len(positions) == 26
        assert fleet.events(limit=100)[1] == 26
        moved = fleet.app.archive.move(stream, 20, fleet.projector.min_position())
        assert moved == 19  # the copied rows are deleted now, and the rest moved
        assert [e.originator_version for e in fleet.app.events.get(stream)] == list(range(1, 27))
    finally:
        fleet.close()


def test_the_event_index_is_rebuilt_with_archived_events(store: Fleet) -> None:
    build(store)
    store.compact()
    store.compact(archive=True, now=LATER)
    before = store.events(limit=1000)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "downgrade", "--to", "0"]).exit_code == 0
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0  # 0001 re-indexes the log
    assert store.events(limit=1000) == before
    assert store.events(type="specialist_active", limit=1)[1] == 61
