"""The suite's migrated stores (tests/stores.py) are as fresh as a migrated empty store.

A schema lent to one test and given back must reach the next one with only what
migration wrote, its positions starting at 1 again; one whose definition a test changed
must never be lent again. A test that asks only for the bare store still gets it empty.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from application.fleet import Fleet
from tests.conftest import RawStore, pg_conninfo, postgres_env_for
from tests.stores import PostgresSchemas


def tables_of(schema: str) -> set[str]:
    with psycopg.connect(**pg_conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {name for (name,) in rows}


@pytest.mark.postgres
def test_a_schema_comes_back_as_migration_left_it(postgres_schemas: PostgresSchemas) -> None:
    name = postgres_schemas.lend()
    fleet = Fleet(env=postgres_env_for(name))
    try:
        first = fleet.register_specialist(specialist_id="s1", name="One")
        fleet.create_mission(title="M")
    finally:
        fleet.close()
    store = RawStore(postgres_env_for(name))
    try:
        migrated = store.rows("SELECT version, checksum FROM fleet_schema_migrations")
        assert len(store.positions()) == 2
    finally:
        store.close()
    postgres_schemas.give_back(name)

    again = postgres_schemas.lend()
    assert again == name  # the same schema, lent again
    store = RawStore(postgres_env_for(again))
    try:
        assert store.positions() == []
        assert store.index_rows() == []
        assert store.rows("SELECT * FROM specialists_projection") == []
        assert store.rows("SELECT version, checksum FROM fleet_schema_migrations") == migrated
        fleet = Fleet(env=postgres_env_for(again))
        try:
            assert fleet.list_specialists() == ([], 0)
            fleet.register_specialist(specialist_id="s1", name="One")
        finally:
            fleet.close()
        assert store.positions() == [1]  # the sequence starts over
    finally:
        store.close()
    postgres_schemas.give_back(again)
    assert first["id"] == "s1"


@pytest.mark.postgres
@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE fleet_events DISABLE TRIGGER fleet_events_immutable",
        "ALTER TABLE missions_projection ADD COLUMN extra INTEGER",
        "CREATE TABLE intruder (id INTEGER)",
        "CREATE INDEX extra_index ON sorties_projection (status, id)",
        "DROP TABLE fleet_event_counts",
        "GRANT SELECT ON fleet_events TO PUBLIC",
    ],
)
def test_a_schema_whose_definition_changed_is_dropped(
    postgres_schemas: PostgresSchemas, change: str
) -> None:
    name = postgres_schemas.lend()
    with psycopg.connect(**pg_conninfo(), autocommit=True) as conn:
        conn.execute(SQL("SET search_path TO {}").format(Identifier(name)))
        conn.execute(change)
    postgres_schemas.give_back(name)
    assert name not in {schema.name for schema in postgres_schemas.idle}
    assert tables_of(name) == set()  # dropped
    assert postgres_schemas.lend() != name


def test_a_bare_store_is_empty(backend: dict[str, str]) -> None:
    if backend["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        assert tables_of(backend["POSTGRES_SCHEMA"]) == set()
    else:
        assert not Path(backend["SQLITE_DBNAME"]).exists()


def test_a_store_for_a_fleet_is_migrated(fleet: Fleet, raw_store: RawStore) -> None:
    """What the Fleet would have made of an empty store: every migration, no event."""
    assert fleet.app.migrator().pending() == []
    assert raw_store.positions() == []
