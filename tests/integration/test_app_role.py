"""A PostgreSQL role granted by ``fleet db grant`` runs Fleet but cannot rewrite history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.sql import SQL, Identifier

from application import Fleet
from application.cli import main
from tests.conftest import pg_conninfo

pytestmark = pytest.mark.postgres


@pytest.fixture
def app_role(postgres_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh login role, granted on the test's schema by the CLI as the owner would."""
    role = f"fleet_app_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(**pg_conninfo(), autocommit=True) as conn:
        conn.execute(SQL("CREATE ROLE {} LOGIN").format(Identifier(role)))
    try:
        for key, value in postgres_env.items():
            monkeypatch.setenv(key, value)
        result = CliRunner().invoke(main, ["db", "grant", role])
        assert result.exit_code == 0, result.output
        assert f"granted {role}" in result.output
        yield role
    finally:
        with psycopg.connect(**pg_conninfo(), autocommit=True) as conn:
            conn.execute(SQL("DROP OWNED BY {}").format(Identifier(role)))
            conn.execute(SQL("DROP ROLE {}").format(Identifier(role)))


def as_role(env: dict[str, str], role: str) -> dict[str, str]:
    return {
        **env,
        "POSTGRES_USER": role,
        "FLEET_AUTO_MIGRATE": "0",
        "CREATE_TABLE": "no",
    }


def role_connection(env: dict[str, str], role: str) -> Any:
    conn = psycopg.connect(**{**pg_conninfo(), "user": role}, autocommit=True)
    conn.execute(SQL("SET search_path TO {}").format(Identifier(env["POSTGRES_SCHEMA"])))
    return conn


def test_the_role_runs_every_kind_of_command(postgres_env: dict[str, str], app_role: str) -> None:
    fleet = Fleet(env=as_role(postgres_env, app_role))
    try:
        fleet.register_specialist(specialist_id="ace", name="Ace", capabilities=["code"])
        fleet.heartbeat("ace", status="busy")
        mission = fleet.create_mission(title="Roles")
        sortie = fleet.create_sortie(description="Grant", mission_id=mission["id"])
        fleet.update_sortie(sortie["id"], status="assigned", assigned_to="ace")
        fleet.acquire_lock("src/app.py", "ace", timeout_ms=60_000)
        fleet.send_message("bee", "note", {"text": "x"}, sender_id="ace")
        fleet.create_checkpoint(mission["id"], description="before restore")
        assert fleet.list_specialists()[1] == 1
        assert fleet.projector.rebuild("work") > 0  # a rebuild is rows, not DDL
        assert fleet.compact()["streams_examined"] >= 1
        assert fleet.health()["status"] == "ok"
    finally:
        fleet.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE fleet_events SET originator_version = originator_version + 100",
        "DELETE FROM fleet_events",
        "TRUNCATE fleet_events",
        "UPDATE fleet_event_index SET event_type = 'forged'",
        "DELETE FROM fleet_event_index",
        "ALTER TABLE fleet_events DISABLE TRIGGER ALL",
        "DROP TRIGGER fleet_events_immutable ON fleet_events",
        "DELETE FROM fleet_schema_migrations",
        "CREATE TABLE intruder (id int)",
    ],
)
def test_the_role_cannot_change_history_or_schema(
    postgres_env: dict[str, str], app_role: str, statement: str
) -> None:
    fleet = Fleet(env=as_role(postgres_env, app_role))
    try:
        fleet.register_specialist(specialist_id="ace", name="Ace")
    finally:
        fleet.close()
    with role_connection(postgres_env, app_role) as conn:
        before = conn.execute("SELECT count(*) FROM fleet_events").fetchone()
        with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException)):
            conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM fleet_events").fetchone() == before


def test_granting_a_missing_role_is_a_clean_error(
    postgres_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in postgres_env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["db", "grant", "no_such_role_here"])
    assert result.exit_code == 1
    assert "no PostgreSQL role named 'no_such_role_here'" in result.output


def test_grant_refuses_sqlite(sqlite_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in sqlite_env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["db", "grant", "anyone"])
    assert result.exit_code == 1
    assert "PostgreSQL feature" in result.output


def test_upgrade_creates_a_missing_schema(
    postgres_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = f"{postgres_env['POSTGRES_SCHEMA']}_new"
    for key, value in {**postgres_env, "POSTGRES_SCHEMA": schema}.items():
        monkeypatch.setenv(key, value)
    try:
        result = CliRunner().invoke(main, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        with psycopg.connect(**pg_conninfo(), autocommit=True) as conn:
            found = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchone()
        assert found is not None and found[0] > 5
    finally:
        with psycopg.connect(**pg_conninfo(), autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))
