"""The least privileges a PostgreSQL role needs to run Fleet's web workers and projector.

The schema's owner (who runs ``fleet db upgrade``) keeps DDL and archiving; the granted
role writes events but cannot change them. Its UPDATE and DELETE on the event log and
its index are refused by privilege ("permission denied"), and as it does not own the
tables it cannot drop or disable the triggers that refuse them too.

One grant is wider than it looks: the library serialises inserts with ``LOCK TABLE
... IN EXCLUSIVE MODE``, which PostgreSQL allows only to roles with UPDATE, DELETE or
TRUNCATE on the table. TRUNCATE is the one given, because the table's BEFORE TRUNCATE
trigger refuses it anyway.
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from application.store.query import EVENT_INDEX_TABLE

# Tables the role may read and append to, never change.
APPEND_ONLY = (EVENT_INDEX_TABLE,)
# Fleet's own bookkeeping, changed only by the owner's migrations and archive runs.
READ_ONLY = ("fleet_schema_migrations", "fleet_archive_permit")


def grant_app_role(
    datastore: PostgresDatastore, events_table: str, role: str, archive_schema: str | None
) -> None:
    """Grant ``role`` what Fleet's processes need on the store's schema (idempotent).

    Run it again after ``fleet db upgrade``: ``ALL TABLES`` means the tables of today.
    """
    schema = datastore.schema
    who = Identifier(role)

    def table(name: str) -> Identifier:
        return Identifier(schema, name)

    statements = [
        SQL("GRANT USAGE ON SCHEMA {} TO {}").format(Identifier(schema), who),
        SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
            Identifier(schema), who
        ),
        SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
            Identifier(schema), who
        ),
        SQL("REVOKE UPDATE, DELETE ON {} FROM {}").format(table(events_table), who),
        SQL("GRANT TRUNCATE ON {} TO {}").format(table(events_table), who),
    ]
    for name in APPEND_ONLY:
        statements.append(
            SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(table(name), who)
        )
    for name in READ_ONLY:
        statements.append(
            SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(table(name), who)
        )
    with datastore.transaction(commit=True) as curs:
        curs.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if curs.fetchone() is None:
            raise ValueError(f"no PostgreSQL role named {role!r}: CREATE ROLE it first")
        for statement in statements:
            curs.execute(statement)
        if archive_schema is not None:
            curs.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (archive_schema,))
            if curs.fetchone() is not None:  # archived history stays readable
                curs.execute(
                    SQL("GRANT USAGE ON SCHEMA {} TO {}").format(Identifier(archive_schema), who)
                )
                curs.execute(
                    SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                        Identifier(archive_schema), who
                    )
                )
