"""SQL written once for both backends: ``?`` placeholders, swapped for ``%s`` on PostgreSQL.

Fleet's own SQL (projections, migrations, maintenance, the tests' raw store access) uses
sqlite3's ``?``; psycopg takes ``%s``. The statements use no other placeholder and no
literal ``?``, so swapping every one is enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def for_backend(sql: str, postgres: bool) -> str:
    """``sql`` with its ``?`` placeholders as the backend takes them."""
    return sql.replace("?", "%s") if postgres else sql


class PortableCursor:
    """A cursor that takes ``?`` placeholders on both backends.

    ``cursor`` is the library's transaction cursor (``datastore.transaction()``), or a
    sqlite3 or psycopg cursor; rows come back as that cursor gives them.
    """

    def __init__(self, cursor: Any, postgres: bool):
        self.cursor = cursor
        self.postgres = postgres

    def sql(self, sql: str) -> str:
        return for_backend(sql, self.postgres)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the cursor, to fetch its rows from."""
        self.cursor.execute(self.sql(sql), list(params))
        return self.cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement per row; nothing at all for no rows."""
        if rows:
            self.cursor.executemany(self.sql(sql), [list(r) for r in rows])

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.execute(sql, params).fetchall())
