"""``fleet db``: upgrade, downgrade and status of Fleet's own tables, on both backends."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import migrations
from application.cli import main
from application.fleet import Fleet
from application.migrate import MigrationError, load_migrations

PACKAGE = Path(migrations.__file__).parent
FLEET_TABLES = {
    "fleet_schema_migrations",
    "fleet_event_index",
    "fleet_event_counts",
    "fleet_event_blocks",
    "fleet_projection_versions",
    "specialists_projection",
    "specialist_capabilities",
    "missions_projection",
    "sorties_projection",
    "sortie_dependencies",
    "checkpoints_projection",
}
PROJECTION_TABLES = FLEET_TABLES - {
    "fleet_schema_migrations",
    "fleet_event_index",
    "fleet_event_counts",
    "fleet_event_blocks",
}
IMMUTABILITY_TRIGGERS = {
    "postgres": {"fleet_events_immutable", "fleet_event_index_immutable"},
    "sqlite": {"stored_events_no_update", "stored_events_no_delete"},
}


def tables(raw_store: Any) -> set[str]:
    if raw_store.backend == "postgres":
        rows = raw_store.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    else:
        rows = raw_store.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in rows}


def triggers(raw_store: Any) -> set[str]:
    if raw_store.backend == "postgres":
        rows = raw_store.rows(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND NOT t.tgisinternal"
        )
    else:
        rows = raw_store.rows("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    return {row[0] for row in rows}


def applied(raw_store: Any) -> list[int]:
    if "fleet_schema_migrations" not in tables(raw_store):
        return []
    return [r[0] for r in raw_store.rows("SELECT version FROM fleet_schema_migrations ORDER BY 1")]


@pytest.fixture
def fleet_db(backend: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs ``fleet db ...`` against the test's store; returns the result."""
    for key, value in backend.items():
        monkeypatch.setenv(key, value)

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["db", *args])

    return run


def seed(backend: dict[str, str]) -> dict[str, Any]:
    fleet = Fleet(env=backend)
    try:
        fleet.register_specialist("mig-1", "Migrant", capabilities=["sql"])
        mission = fleet.create_mission(title="Round trip")
        sortie = fleet.create_sortie(description="down and up", mission_id=mission["id"])
        fleet.update_sortie(sortie["id"], status="assigned", assigned_to="mig-1")
        events, _ = fleet.events(limit=1000)
        return {"mission": mission["id"], "sortie": sortie["id"], "events": events}
    finally:
        fleet.close()


def test_round_trip_upgrade_downgrade_to_zero_upgrade(
    backend: dict[str, str], raw_store: Any, fleet_db: Any
) -> None:
    versions = [m.version for m in load_migrations(raw_store.backend)]
    before = seed(backend)
    events_before = raw_store.event_rows()
    blocks = "SELECT event_type, block, n FROM fleet_event_blocks ORDER BY event_type, block"
    blocks_before = raw_store.rows(blocks)
    assert sum(row[2] for row in blocks_before) == len(events_before)
    assert tables(raw_store) >= FLEET_TABLES
    assert applied(raw_store) == versions

    status = fleet_db("status")
    assert status.exit_code == 0, status.output
    assert status.stdout.count(" ok ") == len(versions) and "pending" not in status.stdout

    down = fleet_db("downgrade", "--to", "0")
    assert down.exit_code == 0, down.output
    assert [line.split()[-1] for line in down.stdout.splitlines()[:-1]] == [
        f"{v:04d}" for v in reversed(versions)
    ]
    assert "schema at version 0000" in down.stdout
    assert not (FLEET_TABLES - {"fleet_schema_migrations"}) & tables(raw_store)
    assert not IMMUTABILITY_TRIGGERS[raw_store.backend] & triggers(raw_store)
    assert applied(raw_store) == []
    assert raw_store.event_rows() == events_before  # the library's tables keep every event
    status = fleet_db("status")
    assert status.stdout.count(" pending ") == len(versions)

    again = fleet_db("downgrade", "--to", "0")
    assert again.exit_code == 0 and "nothing to do" in again.stdout

    up = fleet_db("upgrade")
    assert up.exit_code == 0, up.output
    assert tables(raw_store) >= FLEET_TABLES
    assert IMMUTABILITY_TRIGGERS[raw_store.backend] <= triggers(raw_store)
    assert applied(raw_store) == versions
    # The index is rebuilt from the log in migration 0001's transaction.
    assert len(raw_store.index_rows()) == len(events_before)
    # ... and the block counters from the index, as the writes had kept them.
    assert raw_store.rows(blocks) == blocks_before
    noop = fleet_db("upgrade")
    assert noop.exit_code == 0 and "nothing to do" in noop.stdout

    # The next start rebuilds the dropped projections; every read answers as before.
    fleet = Fleet(env=backend)
    try:
        events, _ = fleet.events(limit=1000)
        assert events == before["events"]
        assert fleet.list_sorties(mission_id=before["mission"])[0][0]["status"] == "assigned"
        assert fleet.list_specialists(capability="sql")[1] == 1
        assert fleet.get_mission(before["mission"])["progress"]["assigned"] == 1
        fleet.heartbeat("mig-1", status="busy")
    finally:
        fleet.close()


PROJECTIONS = ("checkpoints", "locks", "messages", "specialists", "work")


def test_0008_moves_every_projections_position_into_one_table_and_back(
    backend: dict[str, str], raw_store: Any, fleet_db: Any
) -> None:
    """On SQLite every projection's position is a row of one table from 0008 on (a write moves
    them all with one statement); its downgrade gives each projection its own table again,
    as the library's recorder made them. PostgreSQL keeps a table a projection."""
    seed(backend)
    head = raw_store.positions()[-1]
    if raw_store.backend == "postgres":
        assert {f"fleet_{name}_tracking" for name in PROJECTIONS} <= tables(raw_store)
        assert fleet_db("downgrade", "--to", "7").exit_code == 0
        assert fleet_db("upgrade").exit_code == 0
        assert {f"fleet_{name}_tracking" for name in PROJECTIONS} <= tables(raw_store)
        return
    positions = (
        "SELECT projection, application_name, notification_id FROM fleet_projection_tracking"
    )
    moved = sorted(raw_store.rows(positions))
    assert [row[0] for row in moved] == list(PROJECTIONS)
    assert {row[2] for row in moved} == {head}
    assert not {f"fleet_{name}_tracking" for name in PROJECTIONS} & tables(raw_store)

    assert fleet_db("downgrade", "--to", "7").exit_code == 0
    assert "fleet_projection_tracking" not in tables(raw_store)
    for projection, application, position in moved:
        table = f"fleet_{projection}_tracking"
        assert raw_store.rows(f"SELECT application_name, notification_id FROM {table}") == [  # noqa: S608
            (application, position)
        ]

    assert fleet_db("upgrade").exit_code == 0
    assert sorted(raw_store.rows(positions)) == moved
    fleet = Fleet(env=backend)  # nothing to catch up: every position came through
    try:
        assert fleet.projector.catch_up() == 0
        fleet.heartbeat("mig-1", status="busy")
        assert fleet.get_specialist("mig-1")["status"] == "busy"
    finally:
        fleet.close()
    assert {row[2] for row in raw_store.rows(positions)} == {head + 1}


def test_upgrade_and_downgrade_step_by_step(
    backend: dict[str, str], raw_store: Any, fleet_db: Any
) -> None:
    versions = [m.version for m in load_migrations(raw_store.backend)]
    seed(backend)
    result = fleet_db("downgrade", "--steps", "1")
    assert result.exit_code == 0 and f"reverted {versions[-1]:04d}" in result.stdout
    assert applied(raw_store) == versions[:-1]
    assert fleet_db("downgrade", "--to", "1").exit_code == 0
    assert applied(raw_store) == [1]
    assert "fleet_event_index" in tables(raw_store)
    assert not PROJECTION_TABLES & tables(raw_store)
    result = fleet_db("upgrade", "--to", "2")
    assert result.exit_code == 0 and "applied 0002" in result.stdout
    assert applied(raw_store) == [1, 2]
    assert fleet_db("downgrade").exit_code == 2  # one of --to / --steps is required
    assert fleet_db("downgrade", "--to", "1", "--steps", "1").exit_code == 2
    assert fleet_db("upgrade").exit_code == 0
    assert applied(raw_store) == versions


def test_projections_are_rebuilt_after_their_tables_were_dropped(
    backend: dict[str, str], fleet_db: Any
) -> None:
    before = seed(backend)
    assert fleet_db("downgrade", "--to", "1").exit_code == 0
    fleet = Fleet(env=backend)  # upgrades at start, then ensure_versions rebuilds
    try:
        sorties, total = fleet.list_sorties(mission_id=before["mission"])
        assert total == 1 and sorties[0]["id"] == before["sortie"]
        assert {row["name"]: row["stored_version"] for row in fleet.projector.status()} == {
            name: p.version for name, p in fleet.projector.projections.items()
        }
    finally:
        fleet.close()


def copy_migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(PACKAGE, folder, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return folder


def add_migration(folder: Path, backend: str, name: str, up: str, down: str) -> None:
    (folder / backend / f"{name}.up.sql").write_text(up)
    (folder / backend / f"{name}.down.sql").write_text(down)


def test_a_failing_migration_rolls_back_and_keeps_the_version(
    backend: dict[str, str],
    raw_store: Any,
    fleet_db: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    versions = [m.version for m in load_migrations(raw_store.backend)]
    seed(backend)
    folder = copy_migrations(tmp_path)
    add_migration(
        folder,
        raw_store.backend,
        "0099_broken",
        "CREATE TABLE fleet_probe (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n",
        "DROP TABLE fleet_probe;\n",
    )
    monkeypatch.setenv("FLEET_MIGRATIONS_DIR", str(folder))
    result = fleet_db("upgrade")
    assert result.exit_code == 1
    assert "migration 0099_broken failed" in result.output and "no_such_table" in result.output
    assert "fleet_probe" not in tables(raw_store)  # its first statement was rolled back too
    assert applied(raw_store) == versions
    assert "0099  broken                   pending" in fleet_db("status").stdout
    with pytest.raises(MigrationError, match="0099_broken failed"):
        Fleet(env={**backend, "FLEET_MIGRATIONS_DIR": str(folder)})

    # A failing downgrade is rolled back the same way.
    add_migration(
        folder,
        raw_store.backend,
        "0099_broken",
        "CREATE TABLE fleet_probe (x INTEGER);\n",
        "DROP TABLE fleet_probe;\nDROP TABLE no_such_table;\n",
    )
    assert fleet_db("upgrade").exit_code == 0
    assert applied(raw_store) == [*versions, 99]
    result = fleet_db("downgrade", "--steps", "1")
    assert result.exit_code == 1 and "downgrade of migration 0099_broken failed" in result.output
    assert "fleet_probe" in tables(raw_store)
    assert applied(raw_store) == [*versions, 99]


def test_a_changed_or_missing_applied_migration_is_detected(
    backend: dict[str, str],
    raw_store: Any,
    fleet_db: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    versions = [m.version for m in load_migrations(raw_store.backend)]
    seed(backend)
    folder = copy_migrations(tmp_path)
    monkeypatch.setenv("FLEET_MIGRATIONS_DIR", str(folder))
    second = sorted((folder / raw_store.backend).glob("0002_*.up.sql"))[0]
    second.write_text(second.read_text() + "\n-- edited after it was applied\n")

    status = fleet_db("status")
    assert status.exit_code == 1 and "differ from the files" in status.output
    assert "0002  projections              changed" in status.stdout
    upgrade = fleet_db("upgrade")
    assert upgrade.exit_code == 1 and "0002_projections changed after it was applied" in (
        upgrade.output
    )
    assert fleet_db("downgrade", "--to", "1").exit_code == 1
    assert applied(raw_store) == versions

    for path in (folder / raw_store.backend).glob(f"{versions[-1]:04d}_*"):
        path.unlink()
    second.write_text(second.read_text().replace("\n-- edited after it was applied\n", ""))
    status = fleet_db("status")
    assert status.exit_code == 1 and f"{versions[-1]:04d}" in status.stdout
    assert "missing" in status.stdout
    refused = fleet_db("downgrade", "--steps", "1")
    assert refused.exit_code == 1 and "files are missing" in refused.output


def test_auto_migrate_off_refuses_a_store_that_lags(
    backend: dict[str, str], raw_store: Any, fleet_db: Any
) -> None:
    off = {**backend, "FLEET_AUTO_MIGRATE": "0"}
    with pytest.raises(MigrationError, match="run `fleet db upgrade`"):
        Fleet(env=off)
    assert applied(raw_store) == []
    assert fleet_db("upgrade").exit_code == 0
    fleet = Fleet(env=off)
    try:
        fleet.register_specialist("manual-1", "Manual")
        assert fleet.list_specialists()[1] == 1
    finally:
        fleet.close()


def test_the_migration_files_pair_up() -> None:
    for backend in ("sqlite", "postgres"):
        found = load_migrations(backend)
        assert [m.version for m in found] == sorted({m.version for m in found})
        assert all(m.down.strip() for m in found)
    assert [m.version for m in load_migrations("sqlite")] == [
        m.version for m in load_migrations("postgres")
    ]


def test_a_migration_without_its_down_file_is_refused(tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path)
    (folder / "sqlite" / "0050_lonely.up.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=r"no matching \.down\.sql"):
        load_migrations("sqlite", folder)
