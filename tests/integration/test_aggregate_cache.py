"""The library's aggregate cache (fast-forward on): what a save leaves there.

A save puts a copy of each saved aggregate in the cache, so the next command on the stream
starts from the version it wrote instead of reading and applying its own events again. The
copy must be the committed state only, and a cache left behind by another writer must still
be brought up to date from the log.

With ``FLEET_OPTIMISTIC_LOADS`` a command first decides on the cached copy without reading
the log at all, and its write confirms the copy. Whatever another process wrote meanwhile,
the answers must be those of a command that read the log first.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application import Fleet
from application.app import FleetApplication
from application.errors import Conflict, FleetError
from application.services.base import OptimisticLoads
from domain.specialist import Specialist, specialist_stream_id


def cached(app: FleetApplication, aggregate_id: Any) -> Any:
    cache = app.repository.cache
    assert cache is not None and app.repository.fastforward
    return cache.get(aggregate_id)


def test_a_save_caches_a_copy_at_the_saved_version(backend: dict[str, str]) -> None:
    app = FleetApplication(backend)
    try:
        specialist = Specialist.register("s-1", "S", ["code"], {})
        specialist.heartbeat("busy")
        app.save(specialist)
        copy = cached(app, specialist.id)
        assert copy is not specialist
        assert (copy.version, copy.status) == (2, "busy")
        specialist.heartbeat("idle")  # the caller's object, changed and not saved
        after = cached(app, specialist.id)
        assert (after.version, after.status) == (2, "busy")
        assert app.get(specialist.id).status == "busy"
    finally:
        app.close()


def test_a_command_leaves_the_version_it_wrote_in_the_cache(backend: dict[str, str]) -> None:
    fleet = Fleet(env=backend)
    try:
        fleet.register_specialist("s-1", "S")
        written = fleet.heartbeat("s-1", status="busy")
        assert cached(fleet.app, specialist_stream_id("s-1")).version == written["version"] == 2
    finally:
        fleet.close()


@pytest.mark.parametrize("writes_elsewhere", [1, 3])
def test_another_writers_events_still_reach_a_cached_aggregate(
    backend: dict[str, str], writes_elsewhere: int
) -> None:
    first, other = Fleet(env=backend), Fleet(env=backend)
    try:
        first.register_specialist("s-1", "S")
        first.heartbeat("s-1", status="busy")  # cached at version 2 in this process
        for _ in range(writes_elsewhere):
            other.heartbeat("s-1", status="idle")
        version = 2 + writes_elsewhere
        answer = first.heartbeat("s-1", status="busy", expected_version=version)
        assert answer["version"] == version + 1
        assert cached(first.app, specialist_stream_id("s-1")).version == version + 1
    finally:
        first.close()
        other.close()


@pytest.fixture(params=["1", "0"], ids=["optimistic", "reads-first"])
def processes(
    backend: dict[str, str], request: pytest.FixtureRequest
) -> Iterator[tuple[Fleet, Fleet]]:
    """Two ``Fleet``s on one store, as two processes: the first caches what it writes, the
    other writes behind its back; with optimistic loads on and off."""
    env = {**backend, "FLEET_OPTIMISTIC_LOADS": request.param}
    first, other = Fleet(env=env), Fleet(env=env)
    try:
        yield first, other
    finally:
        first.close()
        other.close()


def test_a_command_on_a_stale_copy_decides_on_the_logs_state(
    processes: tuple[Fleet, Fleet],
) -> None:
    first, other = processes
    first.register_specialist("s-1", "S")
    first.heartbeat("s-1", status="busy")  # cached at version 2 here
    other.register_specialist("s-1", "Renamed")  # version 3, unseen by the cache
    answer = first.heartbeat("s-1", status="idle")
    assert (answer["version"], answer["name"], answer["status"]) == (4, "Renamed", "idle")


def test_a_stale_copy_never_accepts_what_the_log_refuses(processes: tuple[Fleet, Fleet]) -> None:
    first, other = processes
    first.register_specialist("s-1", "S")  # cached, active
    other.complete_specialist("s-1", reason="success")
    with pytest.raises(Conflict):
        first.heartbeat("s-1", status="busy")
    assert first.get_specialist("s-1")["version"] == 2


def heartbeat_with_the_version_of_another(fleet: Fleet, seen: list[int]) -> Any:
    """A decision that reads specialist "read" and writes "written" (a heartbeat whose
    metadata names the version it read); each version it read goes to ``seen``."""

    def decide() -> list[Any]:
        read = fleet.app.get(specialist_stream_id("read"))
        written = fleet.app.get(specialist_stream_id("written"))
        written.heartbeat(metadata={"seen": read.version})
        seen.append(read.version)
        return [written]

    return decide


def test_an_aggregate_a_decision_reads_but_does_not_write_is_confirmed(
    processes: tuple[Fleet, Fleet],
) -> None:
    first, other = processes
    for specialist in ("read", "written"):
        first.register_specialist(specialist, specialist)  # both cached at version 1
    other.heartbeat("read")  # version 2, unseen by the cache
    seen: list[int] = []
    first.specialists._write(heartbeat_with_the_version_of_another(first, seen))
    assert seen[-1] == 2
    assert first.get_specialist("written")["metadata"] == {"seen": 2}


def written_meanwhile(fleet: Fleet, monkeypatch: pytest.MonkeyPatch, write: Any) -> None:
    """``write()`` (another process's) runs once, after ``fleet``'s next decision and
    before its save: the moment no check made before the write can see."""
    save = fleet.app.save
    pending = [write]

    def save_after_the_other(*args: Any, **kwargs: Any) -> Any:
        while pending:
            pending.pop()()
        return save(*args, **kwargs)

    monkeypatch.setattr(fleet.app, "save", save_after_the_other)


def test_a_read_aggregate_changed_before_the_write_commits_is_decided_again(
    processes: tuple[Fleet, Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, other = processes
    for specialist in ("read", "written"):
        first.register_specialist(specialist, specialist)
    seen: list[int] = []
    written_meanwhile(first, monkeypatch, lambda: other.heartbeat("read"))
    first.specialists._write(heartbeat_with_the_version_of_another(first, seen))
    assert seen == [1, 2]
    assert first.get_specialist("written")["metadata"] == {"seen": 2}


def test_a_mission_cancelled_by_another_process_before_the_write_takes_no_sortie(
    processes: tuple[Fleet, Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, other = processes
    mission = first.create_mission(title="Closing")
    written_meanwhile(
        first,
        monkeypatch,
        lambda: other.update_mission(mission["id"], status="cancelled", reason="scrapped"),
    )
    with pytest.raises(Conflict, match="takes no new sorties"):
        first.create_sortie("late", mission_id=mission["id"])
    assert first.get_mission(mission["id"])["progress"]["total"] == 0


def test_a_sortie_decided_again_for_its_missions_sake_is_written_once(
    processes: tuple[Fleet, Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second decision saves a sortie of its own: the first's events went with the
    rolled-back save, and answering with it would acknowledge a write never made."""
    first, other = processes
    mission = first.create_mission(title="Moving")
    written_meanwhile(
        first, monkeypatch, lambda: other.update_mission(mission["id"], status="in_progress")
    )
    sortie = first.create_sortie("built again", mission_id=mission["id"])
    for fleet in (first, other):
        assert fleet.get_sortie(sortie["id"])["description"] == "built again"
        assert fleet.get_mission(mission["id"])["progress"]["total"] == 1
    assert sortie["version"] == 1


def mission_with_a_sortie_at_work(
    fleet: Fleet, description: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A mission in progress whose one sortie is in progress, assigned to "worker"."""
    fleet.register_specialist("worker", "W")
    mission = fleet.create_mission(title="Finishing")
    fleet.update_mission(mission["id"], status="in_progress")
    sortie = fleet.create_sortie(description, mission_id=mission["id"])
    fleet.update_sortie(sortie["id"], status="assigned", assigned_to="worker")
    fleet.update_sortie(sortie["id"], status="in_progress")
    return mission, sortie


def mission_with_a_finished_sortie(fleet: Fleet) -> tuple[dict[str, Any], dict[str, Any]]:
    """An open mission whose one sortie is completed: it can complete."""
    mission, sortie = mission_with_a_sortie_at_work(fleet, "done")
    fleet.update_sortie(sortie["id"], status="completed", result={"ok": True})
    return mission, sortie


def a_sortie_added_meanwhile(
    first: Fleet, other: Fleet, mission_id: str, monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    """``other`` adds a sortie to the mission between ``first``'s next decision and its
    save; the list holds it from then on."""
    late: list[dict[str, Any]] = []
    written_meanwhile(
        first,
        monkeypatch,
        lambda: late.append(other.create_sortie("late", mission_id=mission_id)),
    )
    return late


def completions_decided(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each decision of a mission's completion adds 1 to the list this returns."""
    complete = fleet.missions._complete_mission
    decided: list[int] = []

    def counted(*args: Any) -> None:
        decided.append(1)
        complete(*args)

    monkeypatch.setattr(fleet.missions, "_complete_mission", counted)
    return decided


def test_a_sortie_created_before_its_missions_completion_commits_refuses_it(
    processes: tuple[Fleet, Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The completion read the mission's sorties (all settled) from the work projection;
    another process adds one before the write commits: the write finds it, and the
    completion, decided again, is refused naming it."""
    first, other = processes
    mission, _ = mission_with_a_finished_sortie(first)
    late = a_sortie_added_meanwhile(first, other, mission["id"], monkeypatch)
    decided = completions_decided(first, monkeypatch)
    with pytest.raises(Conflict, match="not completed or cancelled") as refused:
        first.update_mission(mission["id"], status="completed")
    assert late and late[0]["id"] in str(refused.value)
    assert len(decided) == 2
    for fleet in (first, other):
        answer = fleet.get_mission(mission["id"])
        assert (answer["status"], answer["progress"]["total"]) == ("in_progress", 2)


@pytest.mark.parametrize("named", [True, False], ids=["streams-named", "by-stream-type"])
def test_a_sortie_reopened_before_its_missions_completion_commits_refuses_it(
    processes: tuple[Fleet, Fleet], monkeypatch: pytest.MonkeyPatch, named: bool
) -> None:
    """One of the mission's sorties goes back to work (a checkpoint of it restored) before
    the completion's write commits: the completion is decided again and refused. Checked
    by the sortie's stream, or, for a mission of more sorties than a statement names, by
    every sortie stream."""
    first, other = processes
    if not named:
        monkeypatch.setattr("application.store.query.LogRead.NAMED_STREAMS", 0)
    mission, sortie = mission_with_a_sortie_at_work(first, "redo")
    checkpoint = first.create_checkpoint(sortie["id"], description="mid-work")
    first.update_sortie(sortie["id"], status="completed", result={"ok": True})
    written_meanwhile(
        first, monkeypatch, lambda: other.restore_checkpoint(checkpoint["id"], confirm=True)
    )
    decided = completions_decided(first, monkeypatch)
    with pytest.raises(Conflict, match=f"not completed or cancelled: {sortie['id']}"):
        first.update_mission(mission["id"], status="completed")
    assert len(decided) == 2
    for fleet in (first, other):
        assert fleet.get_mission(mission["id"])["status"] == "in_progress"
        assert fleet.get_sortie(sortie["id"])["status"] == "in_progress"


def test_a_sortie_created_by_an_external_projectors_writer_refuses_the_completion(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``FLEET_PROJECTOR=external``: the completing process projects nothing itself, its
    rows are the other processes' work; a sortie added after its read still refuses it."""
    first = Fleet(env={**backend, "FLEET_PROJECTOR": "external"})
    other = Fleet(env=backend)  # embedded: its writes move the projections
    try:
        mission, _ = mission_with_a_finished_sortie(other)
        late = a_sortie_added_meanwhile(first, other, mission["id"], monkeypatch)
        with pytest.raises(Conflict, match="not completed or cancelled") as refused:
            first.update_mission(mission["id"], status="completed")
        assert late and late[0]["id"] in str(refused.value)
        assert other.get_mission(mission["id"])["status"] == "in_progress"
    finally:
        first.close()
        other.close()


def test_unrelated_writes_before_a_completion_commits_leave_it_decided_once(
    processes: tuple[Fleet, Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another mission's sortie reports progress and its worker beats between the
    completion's decision and its write: nothing the completion read, so it commits."""
    first, other = processes
    mission, _ = mission_with_a_finished_sortie(first)
    elsewhere = first.create_mission(title="Elsewhere")
    busy = first.create_sortie("busy", mission_id=elsewhere["id"])
    first.register_specialist("busy-worker", "B")
    first.update_sortie(busy["id"], status="assigned", assigned_to="busy-worker")
    first.update_sortie(busy["id"], status="in_progress")

    def traffic() -> None:
        other.update_sortie(busy["id"], progress=50, status_message="halfway")
        other.heartbeat("busy-worker", status="busy")

    written_meanwhile(first, monkeypatch, traffic)
    decided = completions_decided(first, monkeypatch)
    done = first.update_mission(mission["id"], status="completed")
    assert done["status"] == "completed" and len(decided) == 1
    completed = first.stream_events(mission["stream_id"])[-1]
    assert completed["event_type"] == "mission_completed"
    assert (completed["data"]["sorties_completed"], completed["data"]["sorties_failed"]) == (1, 0)
    assert other.get_sortie(busy["id"])["progress"] == 50


def test_a_sortie_created_in_another_mission_costs_the_completion_one_more_decision(
    processes: tuple[Fleet, Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index tells no sortie's mission: any new sortie may be the mission's, and the
    completion decides again (then commits, with the right counts)."""
    first, other = processes
    mission, _ = mission_with_a_finished_sortie(first)
    elsewhere = first.create_mission(title="Elsewhere")
    written_meanwhile(
        first, monkeypatch, lambda: other.create_sortie("other's", mission_id=elsewhere["id"])
    )
    decided = completions_decided(first, monkeypatch)
    done = first.update_mission(mission["id"], status="completed")
    assert done["status"] == "completed" and len(decided) == 2
    assert done["progress"]["total"] == 1


def test_a_sortie_created_while_its_mission_is_restored_is_cancelled_with_the_others(
    processes: tuple[Fleet, Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restoring a mission's checkpoint cancels its sorties created since, read from the
    work projection; another process adds one before the restore's write commits: the
    restore, decided again, cancels that one too."""
    first, other = processes
    mission = first.create_mission(title="Restored")
    kept = first.create_sortie("kept", mission_id=mission["id"])
    checkpoint = first.create_checkpoint(mission["id"], description="before the newcomers")
    newcomer = first.create_sortie("newcomer", mission_id=mission["id"])
    late = a_sortie_added_meanwhile(first, other, mission["id"], monkeypatch)
    first.restore_checkpoint(checkpoint["id"], confirm=True)
    for fleet in (first, other):
        statuses = {s: fleet.get_sortie(s)["status"] for s in (kept["id"], newcomer["id"])}
        assert statuses == {kept["id"]: "pending", newcomer["id"]: "cancelled"}
        assert fleet.get_sortie(late[0]["id"])["status"] == "cancelled"


def test_a_claim_refused_for_a_stale_dependency_is_decided_again(
    processes: tuple[Fleet, Fleet],
) -> None:
    first, other = processes
    first.register_specialist("worker", "W")
    dependency = first.create_sortie("first")  # cached here: pending
    sortie = first.create_sortie("then", dependencies=[dependency["id"]])
    other.update_sortie(dependency["id"], status="assigned", assigned_to="worker")
    other.update_sortie(dependency["id"], status="in_progress")
    other.update_sortie(dependency["id"], status="completed", result={"ok": True})
    claimed = first.claim_sortie("worker")
    assert claimed is not None
    assert (claimed["id"], claimed["assigned_to"]) == (sortie["id"], "worker")


def test_a_refusal_for_a_stale_copys_sake_is_decided_again(processes: tuple[Fleet, Fleet]) -> None:
    first, other = processes
    first.register_specialist("s-1", "S")  # cached at version 1
    other.heartbeat("s-1")  # version 2: the copy's version fails the precondition
    assert first.heartbeat("s-1", expected_version=2)["version"] == 3


@pytest.mark.parametrize(
    ("command", "optimistic", "reads"),
    [
        ("heartbeat", "1", 0),
        ("heartbeat", "0", 1),  # the events since the cached version
        ("register", "1", 0),
        ("register", "0", 2),  # a snapshot, then the events, of a stream not begun
    ],
)
def test_an_optimistic_command_reads_nothing_when_its_copy_is_current(
    sqlite_env: dict[str, str],
    command: str,
    optimistic: str,
    reads: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cached copy as it is, and a stream not cached taken as not begun: the write
    confirms both, so nothing is read before it."""
    fleet = Fleet(env={**sqlite_env, "FLEET_OPTIMISTIC_LOADS": optimistic})
    try:
        fleet.register_specialist("s-1", "S")
        calls: list[Any] = []
        for store in (fleet.app.events, fleet.app.snapshots):
            get = store.get

            def counted(*args: Any, get: Any = get, **kwargs: Any) -> Any:
                calls.append(args)
                return get(*args, **kwargs)

            monkeypatch.setattr(store, "get", counted)
        if command == "heartbeat":
            assert fleet.heartbeat("s-1")["version"] == 2
        else:
            answer = fleet.register_specialist("s-2", "T")
            assert (answer["version"], answer.created) == (1, True)
        assert len(calls) == reads
    finally:
        fleet.close()


def test_a_stream_another_process_began_is_found_when_not_cached(
    processes: tuple[Fleet, Fleet],
) -> None:
    first, other = processes
    other.register_specialist("s-1", "S")  # not in the first one's cache
    again = first.register_specialist("s-1", "Renamed")
    assert (again["version"], again["name"], again.created) == (2, "Renamed", False)
    other.register_specialist("s-2", "T")
    assert first.heartbeat("s-2", status="busy")["version"] == 2


def test_after_a_stale_copy_commands_read_the_log_first_for_a_while(
    backend: dict[str, str],
) -> None:
    """Where other processes write the same streams a stale copy is likely again soon, and
    each costs an attempt: the next ``BACK_OFF`` commands read first, then trust again."""
    first, other = Fleet(env=backend), Fleet(env=backend)
    try:
        optimism = first.foundation.optimism
        assert optimism.enabled  # the default on both backends
        first.register_specialist("s-1", "S")
        first.heartbeat("s-1")
        assert optimism.reading_first == 0  # its copy was current
        other.heartbeat("s-1")
        assert first.heartbeat("s-1")["version"] == 4
        assert optimism.reading_first == OptimisticLoads.BACK_OFF
        first.heartbeat("s-1")
        assert optimism.reading_first == OptimisticLoads.BACK_OFF - 1
        optimism.reading_first = 0
        first.complete_specialist("s-1", reason="success")
        with pytest.raises(Conflict):  # refused on a current copy: not a stale one
            first.heartbeat("s-1")
        assert optimism.reading_first == 0
    finally:
        first.close()
        other.close()


SPECIALISTS = ("s-1", "s-2")
STEPS = st.lists(
    st.tuples(
        st.sampled_from(("first", "other")),
        st.sampled_from(SPECIALISTS),
        st.sampled_from(("register", "heartbeat", "complete", "pinned heartbeat")),
        st.integers(min_value=0, max_value=3),
    ),
    min_size=1,
    max_size=14,
)


def run_step(fleet: Fleet, specialist: str, command: str, n: int) -> Any:
    """One command; its answer's lasting part, or the class of error it raised."""
    try:
        if command == "register":
            answer = fleet.register_specialist(specialist, f"Name {n}")
        elif command == "heartbeat":
            answer = fleet.heartbeat(specialist, status=("busy", "idle")[n % 2])
        elif command == "complete":
            answer = fleet.complete_specialist(specialist, reason="success")
        else:
            answer = fleet.heartbeat(specialist, expected_version=n + 1)
    except FleetError as exc:
        return type(exc).__name__
    return (answer["version"], answer["name"], answer["status"])


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_two_writers_answer_as_one_writer_would(tmp_path: Path, steps: list[Any]) -> None:
    """The same commands, sent through two processes' caches or through one: same answers."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    shared = {"SQLITE_DBNAME": str(folder / "shared.sqlite3"), "FLEET_OPTIMISTIC_LOADS": "1"}
    fleets = {"first": Fleet(env=shared), "other": Fleet(env=shared)}
    alone = Fleet(env={"SQLITE_DBNAME": str(folder / "alone.sqlite3")})
    try:
        for door, specialist, command, n in steps:
            assert run_step(fleets[door], specialist, command, n) == run_step(
                alone, specialist, command, n
            )
    finally:
        for fleet in (*fleets.values(), alone):
            fleet.close()
