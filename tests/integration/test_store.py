"""The event store on both backends: reads, envelopes, immutability, concurrency, migrations."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

import application.migrate as migrate
from application.errors import NotFound, PreconditionFailed, ValidationError
from application.fleet import Fleet
from application.store import query
from domain.envelope import caused_by, event_context
from domain.specialist import Specialist, specialist_stream_id

# (specialist, command, event_type) in the order seed() writes them: positions 1..9.
SEED = [
    ("alpha", "register", "specialist_registered"),
    ("alpha", "busy", "specialist_active"),
    ("bravo", "register", "specialist_registered"),
    ("alpha", "idle", "specialist_active"),
    ("bravo", "busy", "specialist_active"),
    ("bravo", "complete", "specialist_completed"),
    ("alpha", "busy", "specialist_active"),
    ("charlie", "register", "specialist_registered"),
    ("charlie", "fail", "specialist_failed"),
]


def seed(fleet: Fleet) -> None:
    for who, command, _ in SEED:
        if command == "register":
            fleet.register_specialist(who, who.title(), capabilities=["code"])
        elif command == "complete":
            fleet.complete_specialist(who, reason="success", summary="done")
        elif command == "fail":
            fleet.fail_specialist(who, error="boom")
        else:
            fleet.heartbeat(who, status=command)


def stream(who: str) -> str:
    return str(specialist_stream_id(who))


def positions(events: list[dict[str, Any]]) -> list[int]:
    return [e["id"] for e in events]


def seed_positions(*, who: str | None = None, types: tuple[str, ...] = ()) -> list[int]:
    return [
        i
        for i, (name, _, event_type) in enumerate(SEED, start=1)
        if (who is None or name == who) and (not types or event_type in types)
    ]


# Reading back


def test_get_event_by_global_position(fleet: Fleet) -> None:
    seed(fleet)
    for position, (who, _, event_type) in enumerate(SEED, start=1):
        event = fleet.get_event(position)
        assert event["id"] == position
        assert event["event_type"] == event_type
        assert event["stream_id"] == stream(who)
        assert event["stream_type"] == "specialist"
    first = fleet.get_event(1)
    assert first["sequence_number"] == 1
    assert first["data"] == {
        "specialist_id": "alpha",
        "name": "Alpha",
        "capabilities": ["code"],
        "metadata": {},
    }
    assert first["causation_id"] is None
    assert first["event_id"] and first["correlation_id"] and first["created_at"]
    assert fleet.get_event(2)["data"]["status"] == "busy"
    with pytest.raises(NotFound):
        fleet.get_event(len(SEED) + 1)
    with pytest.raises(NotFound):
        fleet.get_event(0)


def test_events_round_trip_in_global_order(fleet: Fleet) -> None:
    seed(fleet)
    events, total = fleet.events(limit=1000)
    assert total == len(SEED)
    assert positions(events) == list(range(1, len(SEED) + 1))
    assert [e["event_type"] for e in events] == [t for _, _, t in SEED]
    assert [fleet.get_event(p) for p in positions(events)] == events


def test_stream_events_by_sequence_range(fleet: Fleet) -> None:
    seed(fleet)
    alpha = stream("alpha")
    whole = fleet.stream_events(alpha)
    assert [e["sequence_number"] for e in whole] == [1, 2, 3, 4]
    assert positions(whole) == seed_positions(who="alpha")
    assert {e["stream_id"] for e in whole} == {alpha}

    assert [e["sequence_number"] for e in fleet.stream_events(alpha, 2, 3)] == [2, 3]
    assert [e["sequence_number"] for e in fleet.stream_events(alpha, from_sequence=3)] == [3, 4]
    assert [e["sequence_number"] for e in fleet.stream_events(alpha, to_sequence=2)] == [1, 2]
    assert [e["sequence_number"] for e in fleet.stream_events(alpha, 4, 4)] == [4]
    assert fleet.stream_events(alpha, 5, 9) == []
    assert fleet.stream_events(alpha, 3, 2) == []
    assert [e["sequence_number"] for e in fleet.stream_events(stream("bravo"))] == [1, 2, 3]

    with pytest.raises(NotFound):
        fleet.stream_events(str(specialist_stream_id("nobody")))
    with pytest.raises(NotFound):
        fleet.stream_events("not-a-uuid")


def test_events_by_one_type(fleet: Fleet) -> None:
    seed(fleet)
    events, total = fleet.events(type="specialist_active")
    expected = seed_positions(types=("specialist_active",))
    assert positions(events) == expected
    assert total == len(expected) == 4
    assert {e["event_type"] for e in events} == {"specialist_active"}

    rare, rare_total = fleet.events(type="specialist_failed")
    assert positions(rare) == [9]
    assert rare_total == 1
    assert fleet.events(type="specialist_inactive") == ([], 0)


def test_events_by_several_types(fleet: Fleet) -> None:
    seed(fleet)
    wanted = ("specialist_completed", "specialist_failed", "specialist_registered")
    expected = seed_positions(types=wanted)
    as_list, total = fleet.events(type=list(wanted))
    assert positions(as_list) == expected
    assert total == len(expected) == 5
    as_csv, csv_total = fleet.events(
        type="specialist_failed, specialist_completed,specialist_registered"
    )
    assert as_csv == as_list
    assert csv_total == total


def test_type_query_limit_offset_and_total(fleet: Fleet) -> None:
    seed(fleet)
    expected = seed_positions(types=("specialist_active", "specialist_registered"))
    types = ["specialist_active", "specialist_registered"]
    pages = []
    for offset in range(0, len(expected) + 2, 3):
        page, total = fleet.events(type=types, limit=3, offset=offset)
        assert total == len(expected) == 7  # the total ignores limit and offset
        assert len(page) <= 3
        pages.extend(positions(page))
    assert pages == expected
    page, total = fleet.events(type=types, limit=2, offset=5)
    assert positions(page) == expected[5:7]
    assert fleet.events(type=types, limit=5, offset=100) == ([], 7)


def test_invalid_type_and_page_are_refused(fleet: Fleet) -> None:
    with pytest.raises(ValidationError) as raised:
        fleet.events(type="specialist_exploded")
    assert "type" in raised.value.errors
    with pytest.raises(ValidationError):
        fleet.events(limit=0)
    with pytest.raises(ValidationError):
        fleet.events(limit=1001)
    with pytest.raises(ValidationError):
        fleet.events(offset=-1)


def test_events_by_stream_id_and_after_position(fleet: Fleet) -> None:
    seed(fleet)
    bravo, total = fleet.events(stream_id=stream("bravo"))
    assert positions(bravo) == seed_positions(who="bravo")
    assert total == 3

    after, after_total = fleet.events(after=4)
    assert positions(after) == list(range(5, len(SEED) + 1))
    assert after_total == len(SEED) - 4
    assert fleet.events(after=len(SEED)) == ([], 0)

    combined, combined_total = fleet.events(type="specialist_active", after=4)
    assert positions(combined) == [5, 7]
    assert combined_total == 2
    alpha_after, _ = fleet.events(stream_id=stream("alpha"), after=2, limit=1)
    assert positions(alpha_after) == [4]


@pytest.mark.parametrize(
    "types", [(), ("specialist_active",), ("specialist_registered", "specialist_failed")]
)
def test_totals_past_after_at_every_depth(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch, types: tuple[str, ...]
) -> None:
    """Past ``after``, a type filter's total is whole blocks plus part of one: with blocks of
    two positions, every ``after`` lands on a block's start, inside one, or past the head."""
    monkeypatch.setattr(query, "BLOCK", 2)
    fleet = Fleet(env=backend)
    try:
        seed(fleet)
        for after in range(len(SEED) + 2):
            expected = [p for p in seed_positions(types=types) if p > after]
            page, total = fleet.events(type=list(types) or None, after=after, limit=1000)
            assert (positions(page), total) == (expected, len(expected)), after
    finally:
        fleet.close()


def test_the_migration_counts_blocks_as_the_writes_do() -> None:
    """Migration 0007 backfills the block counters with its own literal block size."""
    for backend in ("sqlite", "postgres"):
        (blocks,) = [m for m in migrate.load_migrations(backend) if m.name == "event_blocks"]
        assert blocks.up.count(f"position / {query.BLOCK}") == 2


def test_index_rows_match_the_stored_events(fleet: Fleet, raw_store: Any) -> None:
    seed(fleet)
    events = raw_store.event_rows()
    index = raw_store.index_rows()
    assert (
        [int(r[0]) for r in index] == [int(r[0]) for r in events] == list(range(1, len(SEED) + 1))
    )
    for (position, event_type, stream_id, stream_type, _), (_, originator_id, *_rest) in zip(
        index, events, strict=True
    ):
        assert event_type == SEED[int(position) - 1][2]
        assert stream_id == str(UUID(str(originator_id)))  # SQLite stores the hex form
        assert stream_type == "specialist"


# Correlation and causation


def test_context_gives_commands_one_correlation_id(fleet: Fleet) -> None:
    fleet.register_specialist("loner", "Loner")  # outside any context: a correlation of its own
    with fleet.context(correlation_id="corr-mission-1", actor="alice") as scope:
        fleet.register_specialist("delta", "Delta")
        fleet.heartbeat("delta", status="busy")
        fleet.register_specialist("echo", "Echo")
    assert scope.position == 4
    fleet.heartbeat("delta", status="idle")

    events, total = fleet.events(correlation_id="corr-mission-1")
    assert total == 3
    assert positions(events) == [2, 3, 4]
    assert {e["correlation_id"] for e in events} == {"corr-mission-1"}
    assert all(e["metadata"].get("actor") == "alice" for e in events)
    assert all(e["causation_id"] is None for e in events)

    everything, _ = fleet.events()
    others = [e["correlation_id"] for e in everything if e["id"] in (1, 5)]
    assert "corr-mission-1" not in others
    assert others[0] != others[1]  # each command outside a context starts its own chain
    assert fleet.events(correlation_id="corr-unknown") == ([], 0)


def test_context_passes_an_explicit_causation_id(fleet: Fleet) -> None:
    with fleet.context(correlation_id="corr-2", causation_id="cause-xyz"):
        fleet.register_specialist("foxtrot", "Foxtrot")
    (event,), _ = fleet.events(correlation_id="corr-2")
    assert event["causation_id"] == "cause-xyz"


def test_causation_chain_through_caused_by(fleet: Fleet) -> None:
    app = fleet.app
    with event_context(correlation_id="corr-root", actor="planner"):
        root = Specialist.register("root", "Root", [], {})
        app.save(root)
    root_event = next(iter(app.events.get(root.id)))
    assert root_event.causation_id is None
    assert root_event.correlation_id == "corr-root"

    with caused_by(root_event):
        child = Specialist.register("child", "Child", ["spawned"], {})
        child.heartbeat("busy")
        app.save(child)
    child_events = list(app.events.get(child.id))
    assert len(child_events) == 2
    for event in child_events:
        assert event.causation_id == root_event.event_id
        assert event.correlation_id == "corr-root"

    with caused_by(child_events[-1]):
        again = app.get(root.id)
        again.heartbeat("idle")
        app.save(again)
    grandchild = list(app.events.get(root.id))[-1]
    assert grandchild.causation_id == child_events[-1].event_id
    assert grandchild.correlation_id == "corr-root"

    unrelated = Specialist.register("stranger", "Stranger", [], {})
    app.save(unrelated)
    stranger_event = next(iter(app.events.get(unrelated.id)))
    assert stranger_event.causation_id is None
    assert stranger_event.correlation_id != "corr-root"

    # The same chain, as the stored and indexed API records.
    chain, total = fleet.events(correlation_id="corr-root")
    assert total == 4
    assert positions(chain) == [1, 2, 3, 4]
    by_event_id = {e["event_id"]: e for e in chain}
    walk = [chain[-1]]
    while walk[-1]["causation_id"] is not None:
        walk.append(by_event_id[walk[-1]["causation_id"]])
    assert [e["id"] for e in walk] == [4, 3, 1]
    assert walk[-1]["event_id"] == root_event.event_id


# The database refuses changes to stored events


def _tamper_statements(raw_store: Any) -> list[str]:
    events, pos = raw_store.events_table, raw_store.position_column
    # Fixed table names from the fixture, no input: not an injection vector.
    statements = [
        f"UPDATE {events} SET topic = 'tampered' WHERE {pos} = 1",  # noqa: S608
        f"UPDATE {events} SET originator_version = originator_version + 100",  # noqa: S608
        f"DELETE FROM {events} WHERE {pos} = 2",  # noqa: S608
        f"DELETE FROM {events}",  # noqa: S608
        "UPDATE fleet_event_index SET event_type = 'tampered' WHERE position = 1",
        "UPDATE fleet_event_index SET correlation_id = 'x'",
        "DELETE FROM fleet_event_index WHERE position = 2",
        "DELETE FROM fleet_event_index",
    ]
    if raw_store.backend == "postgres":
        statements += [f"TRUNCATE {events}", "TRUNCATE fleet_event_index"]
    return statements


def test_update_and_delete_of_stored_events_are_refused(fleet: Fleet, raw_store: Any) -> None:
    seed(fleet)
    events_before, index_before = raw_store.event_rows(), raw_store.index_rows()
    api_before = fleet.events(limit=1000)

    for statement in _tamper_statements(raw_store):
        with pytest.raises(raw_store.errors) as refused:
            raw_store.execute(statement)
        assert "immutable" in str(refused.value), statement

    assert raw_store.event_rows() == events_before
    assert raw_store.index_rows() == index_before
    assert fleet.events(limit=1000) == api_before

    # Appending still works after the refusals.
    fleet.heartbeat("alpha", status="idle")
    assert raw_store.positions()[-1] == len(SEED) + 1
    assert len(raw_store.index_rows()) == len(SEED) + 1


# Optimistic concurrency


def test_second_save_of_a_stale_copy_raises_integrity_error(fleet: Fleet, raw_store: Any) -> None:
    fleet.register_specialist("golf", "Golf")
    stream_id = specialist_stream_id("golf")
    first = fleet.app.get(stream_id)
    second = fleet.app.get(stream_id)
    assert first is not second and first.version == second.version == 1

    first.heartbeat("busy")
    fleet.app.save(first)
    second.heartbeat("idle")
    with pytest.raises(IntegrityError):
        fleet.app.save(second)

    current = fleet.app.get(stream_id)
    assert current.version == 2
    assert current.status == "busy"
    events, total = fleet.events(stream_id=str(stream_id))
    assert total == 2
    assert [e["data"].get("status") for e in events] == [None, "busy"]
    # The whole failed save rolled back: no index row without its event.
    assert [int(r[0]) for r in raw_store.index_rows()] == raw_store.positions()


def test_one_save_of_two_aggregates_is_atomic(fleet: Fleet, raw_store: Any) -> None:
    fleet.register_specialist("hotel", "Hotel")
    stale = fleet.app.get(specialist_stream_id("hotel"))
    fleet.heartbeat("hotel", status="busy")
    before = raw_store.positions()

    newcomer = Specialist.register("india", "India", [], {})
    stale.heartbeat("idle")
    with pytest.raises(IntegrityError):
        fleet.app.save(newcomer, stale)
    assert raw_store.positions() == before
    assert [int(r[0]) for r in raw_store.index_rows()] == before
    assert fleet.events(stream_id=stream("india")) == ([], 0)


def test_heartbeat_with_a_stale_expected_version_fails(fleet: Fleet) -> None:
    registered = fleet.register_specialist("juliet", "Juliet")
    assert registered["version"] == 1
    assert fleet.heartbeat("juliet", status="busy", expected_version=1)["version"] == 2

    with pytest.raises(PreconditionFailed) as failed:
        fleet.heartbeat("juliet", status="idle", expected_version=1)
    assert failed.value.expected == 1
    assert failed.value.actual == 2
    assert failed.value.status == 412
    assert fleet.get_specialist("juliet")["status"] == "busy"
    assert fleet.events(stream_id=stream("juliet"))[1] == 2

    with pytest.raises(PreconditionFailed):
        fleet.heartbeat("juliet", status="idle", expected_version=3)
    assert fleet.heartbeat("juliet", status="idle", expected_version=2)["version"] == 3


def test_expected_version_race_lost_at_save_is_a_precondition_failure(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version check passes, but another writer commits first: still 412, no retry."""
    fleet.register_specialist("kilo", "Kilo")
    rival = fleet.app.get(specialist_stream_id("kilo"))
    real_save = fleet.app.save

    def save_after_rival(*objs: Any, **kwargs: Any) -> Any:
        if rival.pending_events == [] and rival.version == 1:
            rival.heartbeat("idle")
            real_save(rival)
        return real_save(*objs, **kwargs)

    monkeypatch.setattr(fleet.app, "save", save_after_rival)
    with pytest.raises(PreconditionFailed):
        fleet.heartbeat("kilo", status="busy", expected_version=1)
    monkeypatch.undo()
    assert fleet.get_specialist("kilo")["status"] == "idle"
    assert fleet.get_specialist("kilo")["version"] == 2


# Migrations


IMMUTABILITY_TRIGGERS = {
    "postgres": {
        "fleet_events_immutable",
        "fleet_events_no_truncate",
        "fleet_event_index_immutable",
        "fleet_event_index_no_truncate",
    },
    "sqlite": {
        "stored_events_no_update",
        "stored_events_no_delete",
        "fleet_event_index_no_update",
        "fleet_event_index_no_delete",
    },
}


def _triggers(raw_store: Any) -> list[str]:
    if raw_store.backend == "postgres":
        rows = raw_store.rows(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND NOT t.tgisinternal ORDER BY t.tgname"
        )
    else:
        rows = raw_store.rows("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
    return [row[0] for row in rows]


def test_migrations_rerun_are_a_noop(fleet: Fleet, backend: dict[str, str], raw_store: Any) -> None:
    seed(fleet)
    applied = raw_store.rows(
        "SELECT version, name, checksum FROM fleet_schema_migrations ORDER BY version"
    )
    assert [row[0] for row in applied] == [
        m.version for m in migrate.load_migrations(fleet.backend)
    ]
    triggers = _triggers(raw_store)
    assert IMMUTABILITY_TRIGGERS[raw_store.backend] <= set(triggers)
    events_before, index_before = raw_store.event_rows(), raw_store.index_rows()

    assert fleet.app.migrate() == []
    assert fleet.app.migrate() == []
    second = Fleet(env=backend)  # a second process starting on the same store
    try:
        assert second.app.migrate() == []
        second.heartbeat("alpha", status="idle")
    finally:
        second.close()

    assert (
        raw_store.rows(
            "SELECT version, name, checksum FROM fleet_schema_migrations ORDER BY version"
        )
        == applied
    )
    assert _triggers(raw_store) == triggers
    assert raw_store.event_rows()[: len(SEED)] == events_before
    assert raw_store.index_rows()[: len(SEED)] == index_before
    assert len(raw_store.index_rows()) == len(raw_store.event_rows()) == len(SEED) + 1


def test_an_edited_applied_migration_is_refused(
    fleet: Fleet, backend: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(Path(migrate.__file__).parent.parent / "migrations", folder)
    first = sorted((folder / fleet.backend).glob("0001_*.up.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(migrate.MigrationError, match="changed after it was applied"):
        Fleet(env={**backend, "FLEET_MIGRATIONS_DIR": str(folder)})
    # Without upgrades at start-up too (the operator migrates; the start still checks).
    manual = {**backend, "FLEET_MIGRATIONS_DIR": str(folder), "FLEET_AUTO_MIGRATE": "0"}
    with pytest.raises(migrate.MigrationError, match="changed after it was applied"):
        Fleet(env=manual)


def test_store_layout(fleet: Fleet, raw_store: Any) -> None:
    if raw_store.backend == "postgres":
        tables = {
            row[0]
            for row in raw_store.rows(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                [fleet.app.env["POSTGRES_SCHEMA"]],
            )
        }
        assert {"fleet_events", "fleet_event_index", "fleet_schema_migrations"} <= tables
    else:
        tables = {
            row[0] for row in raw_store.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        assert {"stored_events", "fleet_event_index", "fleet_schema_migrations"} <= tables


@pytest.mark.postgres
def test_postgres_db_function_inserts_are_refused(postgres_env: dict[str, str]) -> None:
    """That library path skips the recorder hook that writes the event index."""
    with pytest.raises(ValueError, match="POSTGRES_ENABLE_DB_FUNCTIONS must be off"):
        Fleet(env={**postgres_env, "POSTGRES_ENABLE_DB_FUNCTIONS": "y"})


def test_a_postgres_fleet_starts_with_one_connection_per_pool(postgres_env: dict[str, str]) -> None:
    """On a migrated store its two pools (events, projections) each open one connection;
    the library alone opened a second at once in each, which every worker start paid for."""
    Fleet(env=postgres_env).close()  # migrates the empty schema
    fleet = Fleet(env=postgres_env)
    try:
        pools = [fleet.app.recorder.datastore.pool, fleet.projector.datastore.pool]  # type: ignore[attr-defined]
        assert [pool.get_stats()["pool_size"] for pool in pools] == [1, 1]
        fleet.register_specialist(specialist_id="s1", name="S")  # and they still serve
        assert fleet.list_specialists()[1] == 1
    finally:
        fleet.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "schema",
    ["fleet_plain", "Mixed Case", 'quote"d', "back\\slash"],
    ids=["plain", "space", "quote", "backslash"],
)
def test_a_connection_can_start_in_any_schema(schema: str) -> None:
    """The projections' pool starts its connections in their schema (no SET LOCAL per
    transaction): the option must name the schema as it is spelled."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    from application.store.postgres import search_path_option
    from tests.conftest import pg_conninfo, require_postgres

    require_postgres()
    with psycopg.connect(**pg_conninfo(), autocommit=True) as admin:
        admin.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
        try:
            options = search_path_option(schema)
            with psycopg.connect(**pg_conninfo(), options=options) as conn:
                row = conn.execute("SELECT current_schema()").fetchone()
            assert row is not None and row[0] == schema
        finally:
            admin.execute(SQL("DROP SCHEMA {} CASCADE").format(Identifier(schema)))


def test_health_says_unavailable_when_the_store_cannot_be_reached(fleet: Fleet) -> None:
    assert fleet.health()["status"] == "ok"
    fleet.app.recorder.datastore.close()  # type: ignore[attr-defined]  # as a lost server
    report = fleet.health()
    assert report == {
        "status": "unavailable",
        "database": {"backend": fleet.backend, "status": "unavailable", "wal_mode": None},
        "projections": {},
    }


def test_the_settings_a_fleet_runs_with_are_readable(backend: dict[str, str]) -> None:
    embedded, external = Fleet(env=backend), Fleet(env={**backend, "FLEET_PROJECTOR": "external"})
    try:
        assert (embedded.embedded, external.embedded) == (True, False)
        assert embedded.min_position_timeout == 5.0  # FLEET_MIN_POSITION_TIMEOUT's default
        embedded.min_position_timeout = 0.5
        assert embedded.foundation.min_position_timeout == 0.5
    finally:
        embedded.close()
        external.close()
