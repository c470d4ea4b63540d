"""Inline projections (embedded, both backends): a write's own events are projected in its
transaction.

The rows must be exactly what the pull loop makes (a rebuild), a failing projection must
never fail the write and must catch up from the log, and a writer in another process (a
gap before this write's events) must leave the log to the catch-up, applied once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from application import Fleet
from application.projections import PROJECTIONS, runner
from application.projections.base import RowProjection
from application.projections.view import ViewTx
from tests.conftest import pg_conninfo
from tests.integration.test_lock_services import Clock
from tests.integration.test_projections import TABLES, some_work, table_contents


def inline(env: dict[str, str]) -> dict[str, str]:
    """Inline asked for by name (the default on both backends too)."""
    return {**env, "FLEET_INLINE_PROJECTIONS": "1"}


# Every table the projections own.
EVERY_TABLE = tuple(table for cls in PROJECTIONS for table in cls.owned_tables)


def rebuilt(fleet: Fleet, tables: Sequence[str] = TABLES) -> dict[str, list[tuple[Any, ...]]]:
    for name in fleet.projector.projections:
        fleet.projector.rebuild(name)
    return table_contents(fleet, tables)


def test_a_write_is_projected_in_its_own_transaction(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(env=inline(backend))
    try:
        assert fleet.projector.can_apply_inline()
        pulls: list[int] = []
        real = fleet.projector.catch_up
        monkeypatch.setattr(fleet.projector, "catch_up", lambda: pulls.append(1) or real())
        some_work(fleet)
        assert pulls == []  # no write needed the pull loop
        assert fleet.projector.min_position() == fleet.head_position()
        incremental = table_contents(fleet)
        assert rebuilt(fleet) == incremental
    finally:
        fleet.close()


def test_a_write_applies_all_its_projections_under_one_savepoint(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One savepoint a write, whatever the projections it moves, and on PostgreSQL one that
    costs the insert's pipeline no sync (psycopg's nested transaction took three round
    trips): reading the moved positions last shows any failure."""
    fleet = Fleet(env=inline(backend))
    try:
        names: list[str] = []
        syncs: list[int] = []
        real, real_sync = runner.savepoint, runner.sync_pipeline

        def counted(tx: Any, name: str) -> Any:
            names.append(name)
            return real(tx, name)

        monkeypatch.setattr(runner, "savepoint", counted)
        monkeypatch.setattr(runner, "sync_pipeline", lambda c: syncs.append(1) or real_sync(c))
        fleet.register_specialist("s-1", "S", capabilities=["code"])  # rows and positions
        fleet.heartbeat("s-1", status="busy")
        assert names == ["inline_projections", "inline_projections"]
        assert syncs == []
        assert fleet.projector.min_position() == fleet.head_position()
        assert fleet.get_specialist("s-1")["status"] == "busy"
    finally:
        fleet.close()


def test_a_position_that_did_not_move_together_is_moved_one_projection_at_a_time(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """All together, a position that did not advance undoes them all; one at a time, each
    projection then applies the write on its own (here all of them can)."""
    fleet = Fleet(env=inline(backend))
    try:
        fleet.register_specialist("s-1", "S")
        real = runner.track_together
        calls: list[int] = []

        def first_not_moved(views: Any, tx: Any, tracking: Any) -> list[bool]:
            moved = real(views, tx, tracking)
            calls.append(len(views))
            return [False, *moved[1:]] if len(calls) == 1 else moved

        monkeypatch.setattr(runner, "track_together", first_not_moved)
        answered = fleet.heartbeat("s-1", status="busy")
        assert calls == [len(fleet.projector.projections), len(fleet.projector.projections) - 1]
        assert answered.position == fleet.head_position()
        assert fleet.projector.applied_inline == answered.position  # nothing left to catch up
        assert fleet.get_specialist("s-1")["status"] == "busy"
        monkeypatch.undo()
        assert rebuilt(fleet) == table_contents(fleet)
    finally:
        fleet.close()


def test_rows_taken_from_the_saved_aggregates_equal_a_rebuild(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inline, a row is the aggregate the write saved, not the stored row with the events
    folded in again. Every kind of row, and the writes that need more than the last state:
    a lock whose expired holder is timed out by the next acquisition (two lock rows from
    one write), a restore that drops a mailbox's later messages."""
    fleet = Fleet(env=inline(backend))
    clock = Clock()
    fleet.clock = clock
    written: list[bool] = []
    real = RowProjection.apply_page

    def noting(self: RowProjection, tx: Any, events: Any, *args: Any, **kwargs: Any) -> None:
        written.append(kwargs.get("written") is not None)
        real(self, tx, events, *args, **kwargs)

    monkeypatch.setattr(RowProjection, "apply_page", noting)
    try:
        made = some_work(fleet)
        kept = fleet.send_message("inbox", "task", {"n": 1})
        checkpoint = fleet.create_checkpoint(kept["stream_id"])
        later = fleet.send_message("inbox", "task", {"n": 2})
        fleet.read_message(later["id"], "sp-0")
        fleet.ack_message(later["id"], "sp-0")
        fleet.restore_checkpoint(checkpoint["id"], confirm=True)
        first = fleet.acquire_lock("src/a.py", "sp-0", timeout_ms=1_000)
        clock.advance(seconds=5)
        taken = fleet.acquire_lock("src/a.py", "sp-1")  # times out the first, then takes it
        fleet.release_lock(taken["id"], "sp-1")
        second = made["second"]["id"]
        fleet.update_sortie(second, status="assigned", assigned_to="sp-2")
        # Three events on one stream in one write: a change, a status, progress.
        fleet.update_sortie(second, status="in_progress", description="renamed", progress=10)
        assert len(fleet.stream_events(made["second"]["stream_id"])) >= 5
        assert fleet.get_lock(first["id"])["status"] != fleet.get_lock(taken["id"])["status"]
        assert written.count(True) > len(written) // 2  # most rows came from the aggregates
        assert fleet.projector.min_position() == fleet.head_position()
        incremental = table_contents(fleet, EVERY_TABLE)
        assert rebuilt(fleet, EVERY_TABLE) == incremental
    finally:
        fleet.close()


def test_a_failing_projection_lags_and_never_fails_the_write(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = Fleet(env=inline(backend))
    try:
        work = fleet.projector.projections["work"]
        real = work.apply_page

        def broken(tx: Any, events: Any, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("projection bug")

        monkeypatch.setattr(work, "apply_page", broken)
        fleet.register_specialist("s-1", "S")
        mission = fleet.create_mission(title="Still recorded")  # the write succeeds
        assert fleet.get_mission(mission["id"])["title"] == "Still recorded"
        assert "could not apply a write inline" in caplog.text
        assert fleet.list_specialists()[1] == 1  # the others applied it
        assert fleet.list_missions()[1] == 0  # work lags
        monkeypatch.setattr(work, "apply_page", real)
        fleet.create_sortie(description="next", mission_id=mission["id"])  # catches up first
        assert fleet.list_missions()[1] == 1 and fleet.list_sorties()[1] == 1
        assert fleet.projector.min_position() == fleet.head_position()
        incremental = table_contents(fleet)
        assert rebuilt(fleet) == incremental
    finally:
        fleet.close()


def test_a_lagging_projection_leaves_the_write_to_the_ready_ones(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the rows go out presuming every projection ready, before their
    positions are read: one found lagging undoes them, and the ready ones apply alone."""
    fleet = Fleet(env=inline(backend))
    try:
        fleet.register_specialist("s-1", "S")
        work = fleet.projector.projections["work"]
        real_apply, real_catch_up = work.apply_page, fleet.projector.catch_up

        def broken(tx: Any, events: Any, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("projection bug")

        monkeypatch.setattr(fleet.projector, "catch_up", lambda *a, **k: 0)  # lags on
        monkeypatch.setattr(work, "apply_page", broken)
        fleet.create_mission(title="Lags in work")
        monkeypatch.setattr(work, "apply_page", real_apply)
        lagging = fleet.projector.min_position()
        fleet.heartbeat("s-1", status="busy")
        assert fleet.list_specialists(status="busy")[1] == 1  # applied by the ready ones
        assert fleet.projector.min_position() == lagging  # work still stands where it was
        assert fleet.projector.applied_inline == 0  # not complete: the catch-up has work
        assert fleet.list_missions()[1] == 0
        monkeypatch.setattr(fleet.projector, "catch_up", real_catch_up)
        fleet.projector.catch_up()
        assert fleet.list_missions()[1] == 1
        assert fleet.projector.min_position() == fleet.head_position()
        assert rebuilt(fleet) == table_contents(fleet)
    finally:
        fleet.close()


def test_a_row_the_database_refuses_lags_its_projection_and_keeps_the_write(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A projection's row statement fails on the server. In PostgreSQL's pipeline that shows
    only when a later result is read: it must be known and rolled back before the commit, or
    the commit of the aborted transaction would drop the write after it was answered."""
    fleet = Fleet(env=inline(backend))
    try:
        fleet.register_specialist("s-1", "S")
        specialists = fleet.projector.projections["specialists"]
        real = specialists._save_all

        def refused(tx: Any, changed: Any) -> None:
            real(tx, changed)
            tx.execute("INSERT INTO no_such_table VALUES (1)")  # queued, not read

        monkeypatch.setattr(specialists, "_save_all", refused)
        head = fleet.head_position()
        answered = fleet.heartbeat("s-1", status="busy")
        assert answered.position == head + 1 == fleet.head_position()
        assert fleet.get_specialist("s-1")["status"] == "busy"  # read from the aggregate
        assert "could not apply a write inline" in caplog.text
        assert fleet.list_specialists(status="busy")[1] == 0  # the row lags
        monkeypatch.setattr(specialists, "_save_all", real)
        fleet.heartbeat("s-1", status="busy")  # catches up first
        assert fleet.list_specialists(status="busy")[1] == 1
        assert fleet.projector.min_position() == fleet.head_position()
        assert rebuilt(fleet) == table_contents(fleet)
    finally:
        fleet.close()


@pytest.mark.postgres
def test_a_pipelined_savepoint_shows_a_failure_nothing_read_and_undoes_it_alone() -> None:
    """The savepoint in the insert's pipeline: a failing statement whose result nobody read
    is raised at the savepoint's end and rolled back to it; what came before stands, and
    the transaction goes on."""
    with psycopg.connect(**pg_conninfo(), autocommit=True) as connection:
        connection.execute("CREATE TEMPORARY TABLE kept (n int PRIMARY KEY)")
        with connection.pipeline(), connection.transaction():
            tx = ViewTx(connection.cursor(), postgres=True)
            tx.execute("INSERT INTO kept VALUES (1)")  # the write's own statement
            with pytest.raises(psycopg.errors.UndefinedTable), runner.savepoint(tx, "first"):
                tx.execute("INSERT INTO kept VALUES (2)")
                tx.execute("INSERT INTO no_such_table VALUES (1)")
            with runner.savepoint(tx, "second"):
                tx.execute("INSERT INTO kept VALUES (3)")
        rows = connection.execute("SELECT n FROM kept ORDER BY n").fetchall()
    assert rows == [(1,), (3,)]


def test_a_database_error_moving_the_idle_positions_lags_them_and_keeps_the_write(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database refuses the statement that moves the positions of the projections a
    write does not touch. It is rolled back alone: the write is recorded and answered, those
    projections catch up from the log. (On PostgreSQL the failure used to abort the whole
    transaction unseen, and its commit then rolled the write back after it was answered.)"""
    fleet = Fleet(env=inline(backend))
    try:
        fleet.register_specialist("s-1", "S")
        real = runner.track_together

        def refused(views: Any, tx: Any, tracking: Any) -> list[bool]:
            tx.execute("INSERT INTO no_such_table VALUES (1)")
            return real(views, tx, tracking)

        monkeypatch.setattr(runner, "track_together", refused)
        head = fleet.head_position()
        answered = fleet.heartbeat("s-1")  # only the specialists projection takes it
        assert answered.position == head + 1 == fleet.head_position()
        assert "could not track a write inline" in caplog.text
        monkeypatch.setattr(runner, "track_together", real)
        fleet.heartbeat("s-1")
        assert fleet.projector.min_position() == fleet.head_position()
    finally:
        fleet.close()


def test_a_failure_that_ends_the_writes_transaction_fails_the_write(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure caught outside any savepoint that left the transaction unable to commit
    (PostgreSQL: aborted by an error; SQLite: rolled back, as an I/O or full-disk error
    does) must fail the write, not be answered as recorded."""
    fleet = Fleet(env=inline(backend))
    try:
        fleet.register_specialist("s-1", "S")
        postgres = fleet.app.backend == "postgres"

        @contextmanager
        def broken(tx: Any, name: str) -> Iterator[None]:
            tx.cursor.execute("SELECT * FROM no_such_table" if postgres else "ROLLBACK")
            if postgres:  # inside the library's pipelined insert: the failure comes at a sync
                with tx.cursor.connection.pipeline() as pipeline:
                    pipeline.sync()
            raise RuntimeError("the transaction ended under the projection")
            yield  # pragma: no cover - never reached

        monkeypatch.setattr(runner, "savepoint", broken)
        head = fleet.head_position()
        with pytest.raises(Exception):  # noqa: B017 - the backend's own error, or ours
            fleet.heartbeat("s-1")
        assert fleet.head_position() == head  # nothing recorded, nothing answered
    finally:
        fleet.close()


def test_a_gap_left_by_another_writer_is_caught_up_once(backend: dict[str, str]) -> None:
    fleet = Fleet(env=inline(backend))
    other = Fleet(env={**backend, "FLEET_PROJECTOR": "external"})  # another process's writes
    try:
        some_work(fleet)
        other.register_specialist("elsewhere", "E", capabilities=["x"])
        other.heartbeat("sp-1", status="idle")
        fleet.heartbeat("sp-2", status="busy")  # after a gap: the pull loop applies all three
        assert fleet.projector.min_position() == fleet.head_position()
        assert fleet.list_specialists(capability="x")[1] == 4
        assert fleet.list_specialists(status="idle")[1] == 1
        incremental = table_contents(fleet)
        assert rebuilt(fleet) == incremental
    finally:
        other.close()
        fleet.close()


@pytest.mark.parametrize("setting", [None, "1"])
def test_every_write_projects_inline_while_others_wait_their_turn(
    backend: dict[str, str], setting: str | None
) -> None:
    """The default and ``1`` project each write inline on both backends. A
    command that comes while another holds the process's turn waits for it (it does not
    run beside it), then projects its own write inline as well."""
    env = dict(backend) if setting is None else {**backend, "FLEET_INLINE_PROJECTIONS": setting}
    fleet = Fleet(env=env)
    try:
        registered = fleet.register_specialist("s-1", "S")
        assert fleet.projector.applied_inline == registered.position
        beats: list[Any] = []
        with fleet.foundation.command_turn:  # as if another request were writing now
            waiting = threading.Thread(target=lambda: beats.append(fleet.heartbeat("s-1")))
            waiting.start()
            waiting.join(timeout=0.3)
            assert waiting.is_alive() and not beats  # its turn has not come
        waiting.join(timeout=10)
        assert fleet.projector.applied_inline == beats[0].position
        assert fleet.get_specialist("s-1")["status"] == "active"
        assert rebuilt(fleet) == table_contents(fleet)
    finally:
        fleet.close()


def test_inline_projections_can_be_turned_off(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(env={**backend, "FLEET_INLINE_PROJECTIONS": "0"})
    try:
        pulls: list[int] = []
        real = fleet.projector.catch_up
        monkeypatch.setattr(fleet.projector, "catch_up", lambda: pulls.append(1) or real())
        fleet.register_specialist("s-1", "S")
        assert pulls == [1]  # projected by the pull loop after the commit, as before
        assert fleet.list_specialists()[1] == 1
    finally:
        fleet.close()


def test_a_projection_that_takes_none_of_a_writes_events_only_moves_its_position(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = Fleet(env=inline(backend))
    try:
        fleet.register_specialist("s-1", "S", capabilities=["code"])
        work = fleet.projector.projections["work"]
        pages: list[Any] = []
        monkeypatch.setattr(work, "apply_page", lambda tx, events: pages.append(events))
        fleet.heartbeat("s-1", status="busy")  # nothing for the work projection's rows
        assert pages == []
        assert work.view.position(fleet.app.name) == fleet.head_position()

        def refused(*args: Any) -> None:
            raise RuntimeError("tracking refused")

        real_track = work.view.track
        monkeypatch.setattr(work.view, "track", refused)
        # ... and in the catch-up after the commit, which moves such positions together
        monkeypatch.setattr("application.projections.runner.track_together", refused)
        fleet.heartbeat("s-1", status="idle")  # the write succeeds; work lags
        assert "could not track a write inline" in caplog.text
        assert work.view.position(fleet.app.name) < fleet.head_position()
        assert fleet.get_specialist("s-1")["status"] == "idle"
        monkeypatch.setattr(work.view, "track", real_track)
        monkeypatch.undo()
        fleet.heartbeat("s-1", status="busy")  # catches up first
        assert fleet.projector.min_position() == fleet.head_position()
    finally:
        fleet.close()


def test_capability_rows_follow_registrations_not_heartbeats(backend: dict[str, str]) -> None:
    fleet = Fleet(env=inline(backend))
    try:
        fleet.register_specialist("s-1", "S", capabilities=["code", "review"])
        fleet.heartbeat("s-1", status="busy")
        assert [s["id"] for s in fleet.list_specialists(capability="review")[0]] == ["s-1"]
        fleet.register_specialist("s-1", "S", capabilities=["deploy"])  # registers again
        fleet.heartbeat("s-1", status="idle")
        assert fleet.list_specialists(capability="review")[1] == 0
        assert fleet.list_specialists(capability="deploy")[1] == 1
        incremental = table_contents(fleet)
        assert rebuilt(fleet) == incremental
    finally:
        fleet.close()


@pytest.mark.parametrize("inline_setting", ["1", "0"])
def test_transactions_that_write_projections_queue_on_one_lock(
    postgres_env: dict[str, str], inline_setting: str
) -> None:
    """PostgreSQL: a write applied inline and a catch-up page each take the schema's
    projecting lock before any tracking row, so two of them never deadlock on those rows."""
    import psycopg

    from tests.conftest import pg_conninfo

    fleet = Fleet(env={**postgres_env, "FLEET_INLINE_PROJECTIONS": inline_setting})
    try:
        assert fleet.projector.can_apply_inline()
        key = f"fleet projections {postgres_env['POSTGRES_SCHEMA']}"
        with psycopg.connect(**pg_conninfo()) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])
            writer = threading.Thread(target=fleet.register_specialist, args=("q-1", "Q"))
            writer.start()
            writer.join(0.5)
            assert writer.is_alive()  # its projections wait for the lock
            holder.rollback()  # lets go of it
            writer.join(10)
        assert not writer.is_alive()
        assert fleet.list_specialists()[1] == 1
        assert fleet.projector.min_position() == fleet.head_position()
    finally:
        fleet.close()
