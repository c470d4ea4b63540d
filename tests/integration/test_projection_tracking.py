"""Projections' positions moved together (``track_together``): one statement a write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from application.projections.view import View, ViewTx, track_together
from tests.conftest import pg_conninfo


class Counted:
    """A cursor that counts the statements it is given."""

    def __init__(self, cursor: Any) -> None:
        self.cursor, self.statements = cursor, 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.statements += 1
        return self.cursor.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)


def check_together(views: list[View]) -> None:
    with views[0].transaction() as tx:
        views[1].track(tx, Tracking("upstream", 7))  # ahead of the write below
    with views[0].transaction() as tx:
        counted = Counted(tx.cursor)
        moved = track_together(views, ViewTx(counted, tx.postgres), Tracking("upstream", 5))
        assert moved == [True, False, True]
        assert counted.statements == 1
    assert [view.position("upstream") for view in views] == [5, 7, 5]
    assert [view.position("elsewhere") for view in views] == [0, 0, 0]
    with pytest.raises(RuntimeError), views[0].transaction() as tx:  # rolled back with it
        track_together(views, tx, Tracking("upstream", 9))
        raise RuntimeError
    assert [view.position("upstream") for view in views] == [5, 7, 5]
    with views[0].transaction() as tx:
        assert track_together(views, tx, Tracking("upstream", 9)) == [True, True, True]
        assert track_together([], tx, Tracking("upstream", 10)) == []
    assert [view.position("upstream") for view in views] == [9, 9, 9]


def test_positions_move_together_with_one_sqlite_statement(tmp_path: Path) -> None:
    """Every projection's position is a row of one table on SQLite, so one upsert moves them."""
    datastore = SQLiteDatastore(str(tmp_path / "tracking.sqlite3"))
    try:
        check_together([View(name, datastore) for name in ("specialists", "work", "locks")])
    finally:
        datastore.close()


@pytest.fixture
def postgres_datastore(postgres_env: dict[str, str]) -> Iterator[PostgresDatastore]:
    info = pg_conninfo()
    datastore = PostgresDatastore(
        info["dbname"], info["host"], info["port"], info["user"], info["password"],
        schema=postgres_env["POSTGRES_SCHEMA"], pool_size=2,
    )  # fmt: skip
    try:
        yield datastore
    finally:
        datastore.close()


@pytest.mark.postgres
def test_positions_move_together_on_postgres(postgres_datastore: PostgresDatastore) -> None:
    """A table a projection, as the library's recorder makes them; one statement over them."""
    check_together([View(name, postgres_datastore) for name in ("specialists", "work", "locks")])
