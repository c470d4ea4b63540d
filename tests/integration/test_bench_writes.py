"""``bench.writes``' replay of a command's statements: a probe that misses one would
understate what Fleet's SQL costs, so the replayed copy must end as the recorded store did."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from eventsourcing import sqlite as library_sqlite

from bench.writes import recorded_statements, replayed_statements, write_ids


def tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, in a stable order."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)  # noqa: S608
            for name in names
        }


def test_the_replayed_copy_ends_as_the_recorded_store(tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite3"
    ids = write_ids(10, rounds=2)
    with replayed_statements(path, ids) as replay:
        for i in ids:
            replay(i)
    recorded = tables(path.with_name("replay-recorded.sqlite3"))
    replayed = tables(path)
    assert recorded["specialists_projection"]  # the registrations are there
    assert len(recorded["stored_events"]) == len(ids)
    assert replayed == recorded


def test_the_recording_ends_with_its_block(tmp_path: Path) -> None:
    conn = library_sqlite.SQLiteConnection(sqlite3.connect(tmp_path / "x.sqlite3"), max_age=None)
    with recorded_statements() as statements, conn.transaction(commit=True) as cursor:
        cursor.execute("CREATE TABLE t (n INTEGER)")
        cursor.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    with conn.transaction(commit=True) as cursor:
        cursor.execute("INSERT INTO t VALUES (3)")
    conn.close()
    assert statements == [
        ("x", "BEGIN", ()),
        ("x", "CREATE TABLE t (n INTEGER)", ()),
        ("m", "INSERT INTO t VALUES (?)", [[1], [2]]),
        ("x", "COMMIT", ()),
    ]
