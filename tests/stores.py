"""Migrated stores without a migration per test: one template per pytest process.

A test that builds a Fleet or an app at setup (the ``fleet`` and ``app_factory`` fixtures)
would migrate its fresh store before its first line runs. Migrating is most of the cost
of such a test on PostgreSQL (DDL for some 20 tables, their indexes and triggers, under a
database-wide advisory lock), so these tests get a store already in that state instead:

- SQLite: a file migrated once per process is copied into the test's ``tmp_path``.
- PostgreSQL: a schema migrated once is lent to the test. When the test ends, if the
  schema's definition (tables, columns, indexes, constraints, triggers, functions,
  sequences, privileges) is exactly as migration left it, its rows are put back to that
  state (every table emptied with the triggers off, the rows migration wrote restored,
  the sequences reset) and the schema is lent to the next test; otherwise it is dropped.

Tests that ask for the bare store (``backend``, ``sqlite_env``, ``postgres_env``) without
one of those fixtures still get an empty one: the migration tests need it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.sql import SQL, Composable, Composed, Identifier, Literal

from application.fleet import Fleet

# Fixtures that open a Fleet on the test's store during setup: with one of them the
# store may as well arrive migrated (an empty store's first Fleet migrates it: about
# 130 ms on PostgreSQL, against 25 ms on a migrated one).
MIGRATED_AT_SETUP = frozenset({"fleet", "app_factory", "processes", "quiet", "other", "overdue"})


def wants_migrated_store(fixturenames: list[str]) -> bool:
    return not MIGRATED_AT_SETUP.isdisjoint(fixturenames)


class SQLiteTemplate:
    """One migrated SQLite file; ``copy_to`` gives a test its own copy."""

    def __init__(self, folder: Path, env_for: Callable[[Path], dict[str, str]]):
        self.path = folder / "template.sqlite3"
        Fleet(env=env_for(self.path)).close()
        # Closing the last connection checkpoints the WAL into the file and removes it:
        # the file alone is the whole store.
        leftovers = [p for p in folder.iterdir() if p.name.endswith(("-wal", "-shm"))]
        assert not leftovers, f"the template store left {leftovers} behind"

    def copy_to(self, path: Path) -> None:
        shutil.copyfile(self.path, path)


# Where a schema's definition lives, as one digest: each catalog row of its relations
# (tables, indexes, sequences, composite types), columns, defaults, constraints and triggers
# by its xmin, which any DDL on it changes (VACUUM and ANALYZE update in place and do not);
# functions by their source, since the library re-creates its own at every start. Found
# through pg_depend and the catalogs' oid indexes: with autovacuum off, a namespace scan of
# pg_class reads every dead row of every schema the test runs ever dropped.
FINGERPRINT = """
WITH rels AS (
  SELECT objid AS oid FROM pg_depend
  WHERE refclassid = 'pg_namespace'::regclass AND refobjid = %(ns)s
    AND classid = 'pg_class'::regclass
), indexes AS (
  SELECT indexrelid AS oid, xmin FROM pg_index WHERE indrelid IN (SELECT oid FROM rels)
), relations AS (
  SELECT oid FROM rels UNION SELECT oid FROM indexes
)
SELECT md5(string_agg(line, ',' ORDER BY line)) FROM (
  SELECT 'n ' || xmin::text AS line FROM pg_namespace WHERE oid = %(ns)s
  UNION ALL SELECT 'r ' || oid::text || ' ' || xmin::text FROM pg_class
    WHERE oid IN (SELECT oid FROM relations)
  UNION ALL SELECT 'i ' || oid::text || ' ' || xmin::text FROM indexes
  UNION ALL SELECT 'a ' || attrelid::text || '.' || attnum::text || ' ' || xmin::text
    FROM pg_attribute WHERE attrelid IN (SELECT oid FROM relations)
  UNION ALL SELECT 'd ' || oid::text || ' ' || xmin::text FROM pg_attrdef
    WHERE adrelid IN (SELECT oid FROM rels)
  UNION ALL SELECT 'c ' || oid::text || ' ' || xmin::text FROM pg_constraint
    WHERE conrelid IN (SELECT oid FROM rels)
  UNION ALL SELECT 't ' || oid::text || ' ' || xmin::text FROM pg_trigger
    WHERE tgrelid IN (SELECT oid FROM rels)
  UNION ALL SELECT 's ' || seqrelid::text || ' ' || xmin::text FROM pg_sequence
    WHERE seqrelid IN (SELECT oid FROM rels)
  UNION ALL SELECT 'f ' || oid::regprocedure::text || ' ' || md5(prosrc) || ' '
      || prosecdef::text || ' ' || coalesce(proconfig::text, '')
    FROM pg_proc WHERE pronamespace = %(ns)s
  UNION ALL SELECT 'y ' || objid::text FROM pg_depend
    WHERE refclassid = 'pg_namespace'::regclass AND refobjid = %(ns)s
      AND classid = 'pg_type'::regclass
) definition
"""


@dataclass
class MigratedSchema:
    """A schema as migration left it: its definition's digest, its rows, its sequences."""

    name: str
    oid: int = 0
    fingerprint: str = ""
    tables: list[str] = field(default_factory=list)
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = field(default_factory=dict)
    sequences: dict[str, tuple[int, bool]] = field(default_factory=dict)
    reset: str = ""  # the script that puts it back (``PostgresSchemas._reset_script``)


class PostgresSchemas:
    """Migrated schemas of this process, lent to one test at a time and reset after it."""

    def __init__(self, conninfo: Mapping[str, Any], env_for: Callable[[str], dict[str, str]]):
        self.env_for = env_for
        self.conn = psycopg.connect(**conninfo, autocommit=True)
        self.idle: list[MigratedSchema] = []
        self.lent: dict[str, MigratedSchema] = {}

    def lend(self) -> str:
        while self.idle:
            schema = self.idle.pop()
            if self._untouched(schema):
                self.lent[schema.name] = schema
                return schema.name
            self._drop(schema.name)  # written to after it came back: not trusted
        schema = self._migrate_new()
        self.lent[schema.name] = schema
        return schema.name

    @contextmanager
    def lending(self) -> Iterator[str]:
        """A migrated schema for the ``with`` block, given back (reset) after it."""
        name = self.lend()
        try:
            yield name
        finally:
            self.give_back(name)

    def give_back(self, name: str) -> None:
        """Reset the schema and keep it for the next test, or drop it if it changed."""
        schema = self.lent.pop(name)
        try:
            with self.conn.transaction():
                self._reset(schema)
        except psycopg.Error:  # among them, the script's refusal of a changed definition
            self._drop(name)
        else:
            self.idle.append(schema)

    def close(self) -> None:
        for schema in [*self.idle, *self.lent.values()]:
            self._drop(schema.name)
        self.idle.clear()
        self.lent.clear()
        self.conn.close()

    def _migrate_new(self) -> MigratedSchema:
        schema = MigratedSchema(f"fleet_test_{uuid.uuid4().hex[:12]}")
        self.conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema.name)))
        Fleet(env=self.env_for(schema.name)).close()
        row = self.conn.execute("SELECT %s::regnamespace::oid", (schema.name,)).fetchone()
        assert row is not None
        schema.oid = int(row[0])
        schema.fingerprint = self._fingerprint(schema)
        relations = self.conn.execute(
            "SELECT c.relname, c.relkind::text FROM pg_depend d JOIN pg_class c ON c.oid = d.objid"
            " WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = %s"
            " AND d.classid = 'pg_class'::regclass ORDER BY c.relname",
            (schema.oid,),
        ).fetchall()
        for name, kind in relations:
            if kind in ("r", "p"):
                schema.tables.append(name)
                cursor = self.conn.execute(SQL("SELECT * FROM {}").format(self._at(schema, name)))
                rows = cursor.fetchall()
                if rows:
                    schema.rows[name] = ([c.name for c in cursor.description or ()], rows)
            elif kind == "S":
                query = SQL("SELECT last_value, is_called FROM {}").format(self._at(schema, name))
                value = self.conn.execute(query).fetchone()
                assert value is not None
                schema.sequences[name] = (int(value[0]), bool(value[1]))
        return schema

    def _untouched(self, schema: MigratedSchema) -> bool:
        """Nothing was written since the reset (a Fleet a test forgot to close could)."""
        query = SQL("SELECT NOT EXISTS (SELECT FROM {})").format(self._at(schema, "fleet_events"))
        try:
            row = self.conn.execute(query).fetchone()
        except psycopg.Error:
            return False
        return row is not None and bool(row[0])

    def _reset(self, schema: MigratedSchema) -> None:
        if not schema.reset:
            schema.reset = self._reset_script(schema)
        self.conn.execute(schema.reset)

    def _reset_script(self, schema: MigratedSchema) -> str:
        """The whole reset as one script, sent in one round trip (simple query protocol).

        It refuses (raises) when the definition changed, before touching a row.
        """
        fingerprint = (
            SQL(FINGERPRINT.replace("%(ns)s", "{ns}"))
            .format(ns=Literal(schema.oid))
            .as_string(self.conn)
        )
        statements: list[Composable] = [
            # Lock waits end quickly: a lock still held means a connection the test left open.
            SQL("SET LOCAL lock_timeout = '2s'"),
            SQL(
                "DO $reset$ BEGIN IF ({}) IS DISTINCT FROM {} THEN "
                "RAISE EXCEPTION 'schema % changed', {}; END IF; END $reset$"
            ).format(SQL(fingerprint), Literal(schema.fingerprint), Literal(schema.name)),
            # Triggers off for this transaction: the event log's append-only guard refuses
            # DELETE, which is right for Fleet and beside the point for a reset.
            SQL("SET LOCAL session_replication_role = replica"),
        ]
        statements += [SQL("DELETE FROM {}").format(self._at(schema, t)) for t in schema.tables]
        for table, (columns, rows) in schema.rows.items():
            statements.append(
                SQL("INSERT INTO {} ({}) VALUES {}").format(
                    self._at(schema, table),
                    SQL(", ").join(map(Identifier, columns)),
                    SQL(", ").join(
                        SQL("({})").format(SQL(", ").join(map(Literal, row))) for row in rows
                    ),
                )
            )
        statements += [
            SQL("SELECT setval({}::regclass, {}, {})").format(
                Literal(self._at(schema, sequence).as_string(self.conn)),
                Literal(value),
                Literal(called),
            )
            for sequence, (value, called) in schema.sequences.items()
        ]
        # Made by `compact --archive`; never in a template.
        archive = Identifier(f"{schema.name}_archive")
        statements.append(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(archive))
        return SQL("; ").join(statements).as_string(self.conn)

    def _fingerprint(self, schema: MigratedSchema) -> str:
        row = self.conn.execute(FINGERPRINT, {"ns": schema.oid}).fetchone()
        assert row is not None
        return str(row[0])

    def _drop(self, name: str) -> None:
        for schema in (name, f"{name}_archive"):
            self.conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))

    @staticmethod
    def _at(schema: MigratedSchema, name: str) -> Composed:
        return SQL("{}.{}").format(Identifier(schema.name), Identifier(name))
