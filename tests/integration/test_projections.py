"""Projections: rows equal the aggregates, exactly once, rebuildable, versioned, crash-safe."""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import IntegrityError, Tracking
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application import Conflict, Fleet
from application.projections import Projector
from application.projections import base as projection_base
from application.projections.runner import ProjectionVersionError
from application.projections.specialists import SpecialistsProjection
from domain.specialist import Specialist

TABLES = (
    "specialists_projection",
    "specialist_capabilities",
    "missions_projection",
    "sorties_projection",
    "sortie_dependencies",
    "checkpoints_projection",
)


def row_values(row: Any) -> tuple[Any, ...]:
    """A row's values, blobs as bytes: PostgreSQL's rows are dicts (iterating one gives its
    keys), SQLite's are sequences."""
    values = row.values() if isinstance(row, dict) else row
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in values)


def table_contents(
    fleet: Fleet, tables: Sequence[str] = TABLES
) -> dict[str, list[tuple[Any, ...]]]:
    with fleet.projector.read() as tx:
        return {
            table: sorted(
                row_values(row)
                for row in tx.fetchall(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
            )
            for table in tables
        }


def some_work(fleet: Fleet, n: int = 3) -> dict[str, Any]:
    for i in range(n):
        fleet.register_specialist(
            specialist_id=f"sp-{i}", name=f"S{i}", capabilities=["x", f"c{i}"]
        )
    mission = fleet.create_mission(title="Work")
    first = fleet.create_sortie(description="first", mission_id=mission["id"])
    second = fleet.create_sortie(
        description="second", mission_id=mission["id"], dependencies=[first["id"]]
    )
    fleet.update_sortie(first["id"], status="assigned", assigned_to="sp-0")
    fleet.update_sortie(first["id"], status="in_progress")
    fleet.update_sortie(first["id"], status="completed")
    fleet.heartbeat("sp-1", status="busy")
    fleet.create_checkpoint(mission["id"])
    return {"mission": mission, "first": first, "second": second}


def test_lists_read_the_projections(fleet: Fleet) -> None:
    made = some_work(fleet)
    assert fleet.list_specialists(capability="x")[1] == 3
    assert [s["id"] for s in fleet.list_specialists(capability="c2")[0]] == ["sp-2"]
    assert [s["id"] for s in fleet.list_specialists(status="busy")[0]] == ["sp-1"]
    sorties, total = fleet.list_sorties(mission_id=made["mission"]["id"])
    assert total == 2 and [s["blocked_by"] for s in sorties] == [[], []]
    assert fleet.list_sorties(status="completed")[1] == 1
    assert fleet.list_sorties(assigned_to="sp-0")[1] == 1
    missions, _ = fleet.list_missions(status="pending")
    assert missions[0]["progress"]["completed"] == 1 and missions[0]["progress"]["percent"] == 50
    assert fleet.list_checkpoints(stream_id=made["mission"]["id"])[1] == 1
    page, total = fleet.list_specialists(limit=2, offset=2)
    assert total == 3 and [s["id"] for s in page] == ["sp-2"]
    assert fleet.list_specialists(offset=10)[0] == []


def test_each_row_records_its_last_event_position(fleet: Fleet) -> None:
    made = some_work(fleet)
    with fleet.projector.read() as tx:
        rows = tx.fetchall(
            "SELECT position FROM sorties_projection WHERE id = ?", [made["first"]["id"]]
        )
    last = fleet.stream_events(made["first"]["stream_id"])[-1]["id"]
    assert rows[0]["position"] == last


def test_each_row_holds_its_aggregates_state_and_resource(fleet: Fleet) -> None:
    """A row's state reads back as the library's transcoder writes the stored aggregate's,
    and its resource is the aggregate rendered: every table that keeps an aggregate."""
    some_work(fleet)
    fleet.send_message("inbox", "task", {"n": 1, "big": 10**30, "text": "é✓"})
    fleet.acquire_lock("src/a.py", "sp-0")
    transcoder = fleet.app.mapper.transcoder
    checked = 0
    for projection in fleet.projector.projections.values():
        for table in projection.tables:
            with fleet.projector.read() as tx:
                rows = tx.fetchall(f"SELECT stream_id, state, resource FROM {table.table}")  # noqa: S608
            for row in rows:
                aggregate = fleet.app.repository.get(UUID(row["stream_id"]))
                stored = Snapshot.take(aggregate).state
                assert transcoder.decode(bytes(row["state"])) == transcoder.decode(
                    transcoder.encode(stored)
                ), table.table
                assert json.loads(row["resource"]) == json.loads(
                    json.dumps(table.render(aggregate))
                ), table.table
                checked += 1
    assert checked == 9  # 3 specialists, a mission, 2 sorties, a checkpoint, a mailbox, a lock


def test_a_page_applied_twice_counts_once(fleet: Fleet) -> None:
    some_work(fleet)
    before = table_contents(fleet)
    projection = fleet.projector.projections["specialists"]
    notes = fleet.app.recorder.select_notifications(start=1, limit=5)
    with pytest.raises(IntegrityError), projection.view.transaction() as tx:
        projection.view.track(tx, Tracking(fleet.app.name, notes[-1].id))
        projection.apply_page(tx, [(n.id, fleet.app.mapper.to_domain_event(n)) for n in notes])
    assert table_contents(fleet) == before


def test_rebuild_equals_incremental_and_is_independent(fleet: Fleet) -> None:
    some_work(fleet)
    incremental = table_contents(fleet)
    positions = {row["name"]: row["position"] for row in fleet.projector.status()}
    assert fleet.projector.rebuild("specialists") == positions["specialists"]
    assert table_contents(fleet) == incremental
    fleet.projector.rebuild("work")
    fleet.projector.rebuild("checkpoints")
    assert table_contents(fleet) == incremental
    assert all(row["lag"] == 0 for row in fleet.projector.status())


def test_a_progress_report_rewrites_the_sorties_row_alone(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A progress report moves no dependency, status or mission, so the rows derived from
    other rows (``blocked_by``, the mission's counters) are left alone; a status change
    refreshes them, and a rebuild agrees with both."""
    made = some_work(fleet)
    second = made["second"]["id"]
    fleet.update_sortie(second, status="assigned", assigned_to="sp-2")
    fleet.update_sortie(second, status="in_progress")
    work = fleet.projector.projections["work"]
    refreshed: list[str] = []

    def noted(step: str) -> Any:
        original = getattr(work, step)

        def refresh(*args: Any) -> None:
            refreshed.append(step)
            original(*args)

        return refresh

    for step in ("_refresh_blocked_by", "_refresh_progress"):
        monkeypatch.setattr(work, step, noted(step))
    fleet.update_sortie(second, progress=40, status_message="halfway")
    assert refreshed == []
    row = fleet.list_sorties(mission_id=made["mission"]["id"], status="in_progress")[0][0]
    assert (row["progress"], row["status_message"]) == (40, "halfway")
    fleet.update_sortie(second, status="completed")
    assert refreshed == ["_refresh_blocked_by", "_refresh_progress"]
    mission = fleet.list_missions()[0][0]
    assert mission["progress"]["completed"] == 2
    incremental = table_contents(fleet)
    fleet.projector.rebuild("work")
    assert table_contents(fleet) == incremental


@pytest.mark.parametrize("held", [1, 2, 1000])
def test_a_rebuild_holding_rows_across_pages_equals_incremental(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, held: int
) -> None:
    """A rebuild folds across pages and writes its rows when it holds ``held`` streams and
    at the end: whatever the bound and the page size, the tables come out as the catch-up
    wrote them, derived rows (capabilities, blocked_by, progress) included; and holding
    every stream, it writes each row once, however its events are spread over the log."""
    made = some_work(fleet)
    for turn in range(4):  # each stream's events spread over the log, as a fleet writes them
        for i in range(3):
            fleet.heartbeat(f"sp-{i}", status=["busy", "idle"][(turn + i) % 2])
        if turn == 1:
            fleet.update_sortie(made["second"]["id"], status="assigned", assigned_to="sp-1")
    fleet.create_sortie(description="third", mission_id=made["mission"]["id"])
    incremental = table_contents(fleet)
    monkeypatch.setattr(projection_base, "REBUILD_HELD_STREAMS", held)
    fleet.projector.page_size = 2
    specialists = fleet.projector.projections["specialists"]
    written: list[str] = []
    save_all = specialists._save_all

    def counting(tx: Any, changed: list[Any]) -> None:
        written.extend(str(item.aggregate.id) for item in changed)
        save_all(tx, changed)

    monkeypatch.setattr(specialists, "_save_all", counting)
    for name in ("specialists", "work", "checkpoints"):
        fleet.projector.rebuild(name)
    assert table_contents(fleet) == incremental
    if held == 1000:
        assert len(written) == len(set(written)) == 3
    else:
        assert len(written) > 3


def test_a_catch_up_page_takes_sqlites_write_lock_before_it_reads(
    sqlite_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read first, a page's transaction would hold a snapshot that another connection's
    commit makes stale, and SQLite refuses such a transaction the write lock at once
    instead of waiting for it: a page reads its positions with the lock already held."""
    fleet = Fleet(env={**sqlite_env, "FLEET_PROJECTOR": "external"})
    other = sqlite3.connect(sqlite_env["SQLITE_DBNAME"], isolation_level=None, timeout=0)
    projector = fleet.projector
    positions_in = projector._positions_in
    other_writer: list[str] = []

    def try_writing_meanwhile(tx: Any, serialise: bool = False) -> dict[str, int]:
        if serialise:  # the page's own read, in its transaction
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                other_writer.append("could write")
            except sqlite3.OperationalError as error:
                other_writer.append(str(error))
        return positions_in(tx, serialise)

    try:
        fleet.register_specialist(specialist_id="s", name="S")
        monkeypatch.setattr(projector, "_positions_in", try_writing_meanwhile)
        projector.catch_up()
        assert other_writer == ["database is locked"]
        assert fleet.list_specialists()[1] == 1
    finally:
        other.close()
        fleet.close()


def test_a_version_bump_rebuilds_or_is_refused(fleet: Fleet) -> None:
    some_work(fleet)

    class SpecialistsNext(SpecialistsProjection):
        name = "specialists"
        version = SpecialistsProjection.version + 1

    projector = Projector(fleet.app, [SpecialistsNext])
    try:
        with pytest.raises(ProjectionVersionError, match="specialists"):
            projector.ensure_versions(auto_rebuild=False)
        assert projector.ensure_versions() == ["specialists"]
        assert projector.status()[0]["stored_version"] == SpecialistsNext.version
        assert projector.ensure_versions() == []
    finally:
        projector.close()


def test_min_position_waits_for_the_projector(backend: dict[str, str]) -> None:
    fleet = Fleet(
        env={**backend, "FLEET_PROJECTOR": "external", "FLEET_MIN_POSITION_TIMEOUT": "0.2"}
    )
    try:
        fleet.register_specialist(specialist_id="late", name="Late")
        head = fleet.app.recorder.max_notification_id()
        assert fleet.list_specialists()[1] == 0
        with pytest.raises(Exception, match="not reached position"):
            fleet.list_specialists(min_position=head)
        fleet.projector.catch_up()
        assert fleet.list_specialists(min_position=head)[1] == 1
    finally:
        fleet.close()


def test_readers_see_the_old_table_while_a_rebuild_runs(backend: dict[str, str]) -> None:
    fleet = Fleet(env=backend)
    try:
        some_work(fleet, n=5)
        halfway, release = threading.Event(), threading.Event()

        def slow_progress(_: int) -> None:
            halfway.set()
            release.wait(10)

        fleet.projector.page_size = 3
        worker = threading.Thread(
            target=fleet.projector.rebuild, args=("specialists", slow_progress)
        )
        worker.start()
        assert halfway.wait(10)
        # Another Fleet starts and reads while the rebuild's transaction is open: neither
        # its start-up nor its read waits for the rebuild (which waits for them).
        seen: list[int] = []

        def read_beside() -> None:
            reader = Fleet(env={**backend, "FLEET_PROJECTOR": "external"})
            try:
                seen.append(reader.list_specialists()[1])
            finally:
                reader.close()

        beside = threading.Thread(target=read_beside)
        try:
            beside.start()
            beside.join(8)  # the rebuild's first page waits up to 10 s for it
            assert not beside.is_alive(), "the reader waited for the rebuild"
            assert seen == [5]
        finally:
            release.set()
            beside.join(10)
            worker.join(10)
        assert fleet.list_specialists()[1] == 5
    finally:
        fleet.close()


settings.register_profile("fleet", deadline=None, max_examples=12)

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "register",
                "beat",
                "mission",
                "sortie",
                "assign",
                "start",
                "progress",
                "complete",
                "cancel",
            ]
        ),
        st.integers(0, 3),
    ),
    max_size=25,
)


@settings(deadline=None, max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS)
def test_projection_rows_equal_the_aggregates(operations: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        fleet = Fleet(env={"SQLITE_DBNAME": str(Path(folder) / "p.db")})
        try:
            run_operations(fleet, operations)
            for specialist in fleet.list_specialists(limit=1000)[0]:
                assert specialist == fleet.get_specialist(specialist["id"])
            for sortie in fleet.list_sorties(limit=1000)[0]:
                assert sortie == fleet.get_sortie(sortie["id"])
            for mission in fleet.list_missions(limit=1000)[0]:
                statuses = [s["status"] for s in fleet.mission_sorties(mission["id"])]
                assert mission["progress"]["total"] == len(statuses)
                for status in set(statuses):
                    assert mission["progress"][status] == statuses.count(status)
                assert {k: v for k, v in mission.items() if k != "progress"} == {
                    k: v for k, v in fleet.get_mission(mission["id"]).items() if k != "progress"
                }
        finally:
            fleet.close()


def run_operations(fleet: Fleet, operations: list[tuple[str, int]]) -> None:
    missions: list[str] = []
    sorties: list[str] = []
    for name, k in operations:
        try:
            if name == "register":
                fleet.register_specialist(
                    specialist_id=f"s{k}", name=f"S{k}", capabilities=[f"c{k}"]
                )
            elif name == "beat":
                fleet.heartbeat(f"s{k}", status=["active", "busy", "idle", "busy"][k])
            elif name == "mission":
                missions.append(fleet.create_mission(title=f"m{k}")["id"])
            elif name == "sortie":
                deps = sorties[-1:] if k % 2 else []
                mission_id = missions[k % len(missions)] if missions else None
                sorties.append(
                    fleet.create_sortie(
                        description=f"d{k}", mission_id=mission_id, dependencies=deps
                    )["id"]
                )
            elif sorties:
                sortie = sorties[k % len(sorties)]
                if name == "assign":
                    fleet.update_sortie(sortie, status="assigned", assigned_to=f"s{k}")
                elif name == "start":
                    fleet.update_sortie(sortie, status="in_progress")
                elif name == "progress":
                    fleet.update_sortie(sortie, progress=25 * k, status_message=f"step {k}")
                elif name == "complete":
                    fleet.update_sortie(sortie, status="completed")
                else:
                    fleet.update_sortie(sortie, status="cancelled")
        except (Conflict, Exception) as exc:  # rule breaks are expected in random sequences
            if type(exc).__name__ not in ("Conflict", "ValidationError", "NotFound"):
                raise


def _wait_for_position(
    fleet: Fleet, position: int, process: subprocess.Popen[bytes], log: Path, seconds: float
) -> int:
    """The projections' position once it reaches ``position``; fails showing the log."""
    deadline = time.monotonic() + seconds
    while (at := fleet.projector.min_position()) < position and time.monotonic() < deadline:
        assert process.poll() is None, f"the projector exited:\n{log.read_text()}"
        time.sleep(0.01)
    assert at >= position, f"the projector stood at {at} of {position}:\n{log.read_text()}"
    return at


def test_a_killed_projector_resumes_exactly_once(backend: dict[str, str], tmp_path: Path) -> None:
    writer = Fleet(env={**backend, "FLEET_PROJECTOR": "external"})
    log = tmp_path / "projector.log"
    script = [sys.executable, "-m", "application.cli", "projector"]
    # One event per transaction: slow enough to be caught part of the way through.
    env = {**os.environ, **backend, "FLEET_PROJECTION_PAGE_SIZE": "1"}
    process = None
    try:
        specialists = [Specialist.register(f"k{i}", "K", ["a", "b"], {}) for i in range(200)]
        for specialist in specialists:
            specialist.heartbeat("busy")
        writer.app.save(*specialists)
        head = writer.app.recorder.max_notification_id()

        # Kill the projector once it is part of the way through the log.
        with log.open("ab") as stderr:
            process = subprocess.Popen(script, env=env, cwd=tmp_path, stderr=stderr)  # noqa: S603
        _wait_for_position(writer, head // 3, process, log, seconds=60)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        stopped_at = writer.projector.min_position()
        assert 0 < stopped_at < head

        # Restart: it picks up where the tracking row says and finishes.
        with log.open("ab") as stderr:
            process = subprocess.Popen(script, env=env, cwd=tmp_path, stderr=stderr)  # noqa: S603
        _wait_for_position(writer, head, process, log, seconds=120)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
        recovered = table_contents(writer)
        for name in writer.projector.projections:
            writer.projector.rebuild(name)
        assert table_contents(writer) == recovered
        assert writer.list_specialists(capability="a")[1] == 200
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)
        writer.close()


def test_a_stop_ends_a_catch_up_after_the_page_under_way(backend: dict[str, str]) -> None:
    """A projector told to stop with a backlog before it does not apply all of it first."""
    fleet = Fleet(env={**backend, "FLEET_PROJECTOR": "external"})
    try:
        fleet.app.save(*[Specialist.register(f"s{i}", "S", ["a"], {}) for i in range(10)])
        fleet.projector.page_size = 3
        stop = threading.Event()
        stop.set()
        assert fleet.projector.catch_up(stop) == 1
        assert fleet.projector.min_position() == 3
        assert fleet.projector.catch_up() == 3  # the rest, from where the stop left it
        assert fleet.list_specialists()[1] == 10
    finally:
        fleet.close()


def test_racing_projectors_apply_each_event_once(backend: dict[str, str]) -> None:
    fleet = Fleet(env={**backend, "FLEET_PROJECTOR": "external"})
    rivals = [
        Projector(
            fleet.app, list(type(p) for p in fleet.projector.projections.values()), page_size=7
        )
        for _ in range(3)
    ]
    try:
        for i in range(60):
            fleet.register_specialist(specialist_id=f"r{i}", name="R", capabilities=["z"])
            fleet.heartbeat(f"r{i}", status="idle")
        threads = [threading.Thread(target=rival.catch_up) for rival in rivals]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        raced = table_contents(fleet)
        assert fleet.list_specialists(status="idle")[1] == 60
        for name in fleet.projector.projections:
            fleet.projector.rebuild(name)
        assert table_contents(fleet) == raced
    finally:
        for rival in rivals:
            rival.close()
        fleet.close()


def test_a_position_a_rival_moved_first_stays_and_the_other_projections_apply(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The race window of a projection that takes none of a page's events: a rival moved
    its position after this projector read the positions. The rival's position stands, the
    other projections are applied, and the log says why this one was skipped."""
    fleet = Fleet(env={**backend, "FLEET_PROJECTOR": "external"})
    types = [type(p) for p in fleet.projector.projections.values()]
    late = Projector(fleet.app, types)
    try:
        fleet.register_specialist(specialist_id="s1", name="S")
        fleet.projector.catch_up()
        fleet.heartbeat("s1", status="busy")  # nothing for the work projection's rows
        stale = late._positions_in
        work = fleet.projector.projections["work"]  # a rival moves the work position alone
        with work.view.transaction() as tx:
            work.view.track(tx, Tracking(fleet.app.name, fleet.head_position()))
        monkeypatch.setattr(
            late,
            "_positions_in",
            lambda tx, **kw: {**stale(tx, **kw), "work": fleet.head_position() - 1},
        )
        before = late._positions  # the first read, outside the write transaction, too
        monkeypatch.setattr(
            late, "_positions", lambda: {**before(), "work": fleet.head_position() - 1}
        )
        caplog.set_level("INFO")
        late.catch_up()
        assert "projection work: another projector applied this page" in caplog.text
        assert fleet.get_specialist("s1")["status"] == "busy"
        assert fleet.projector.min_position() == fleet.head_position()
    finally:
        late.close()
        fleet.close()


def test_a_rebuild_pauses_the_cyclic_collector_and_restores_it(fleet: Fleet) -> None:
    """The collector is off while a rebuild replays (its held folds would set off full
    collections) and is back as it was afterwards: on after a rebuild, on after one that
    failed, and still off if the caller had turned it off."""
    some_work(fleet)
    seen: list[bool] = []
    fleet.projector.rebuild("specialists", progress=lambda _: seen.append(gc.isenabled()))
    assert seen and not any(seen)
    assert gc.isenabled()

    def fail(_: int) -> None:
        raise RuntimeError("progress failed")

    with pytest.raises(RuntimeError, match="progress failed"):
        fleet.projector.rebuild("specialists", progress=fail)
    assert gc.isenabled()
    gc.disable()
    try:
        fleet.projector.rebuild("specialists")
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("projection", "wanted", "unwanted"),
    [
        (
            "specialists",
            ["specialist_registered", "specialist_registered.again", "specialist_active"],
            ["sortie_created", "squawk_sent", "lock_acquired"],
        ),
        ("work", ["mission_created", "sortie_created", "sortie_progress"], ["specialist_active"]),
        ("locks", ["lock_acquired", "lock_acquired.again"], ["mission_created"]),
    ],
)
def test_a_rebuild_decodes_only_the_topics_its_rows_take(
    fleet: Fleet, projection: str, wanted: list[str], unwanted: list[str]
) -> None:
    """What a rebuild skips undecoded: events of other aggregates. Restores and compactions
    touch every kind of stream, so every projection takes them."""
    rows = fleet.projector.projections[projection]
    shared = ["fleet_recovered", "context_compacted"]
    assert all(rows.wants(topic) for topic in [*wanted, *shared])
    assert not any(rows.wants(topic) for topic in unwanted)


def test_the_positions_read_at_once_are_each_projections_own(fleet: Fleet) -> None:
    """The one-statement read every catch-up starts with (on PostgreSQL outside any
    transaction, the tables named in their schema) gives what each tracking table holds."""
    fleet.register_specialist(specialist_id="s1", name="S")
    work = fleet.projector.projections["work"]
    with work.view.transaction() as tx:  # one position apart from the others
        work.view.track(tx, Tracking(fleet.app.name, fleet.head_position() + 5))
    own = {name: p.view.position(fleet.app.name) for name, p in fleet.projector.projections.items()}
    assert fleet.projector._positions() == own
    assert own["work"] == fleet.head_position() + 5
    assert fleet.projector.min_position() == min(own.values()) == fleet.head_position()
