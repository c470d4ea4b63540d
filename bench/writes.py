"""In-process write rates, one transaction per write, fresh SQLite files on the same disk.

From the storage ceiling up to Fleet's command, each step adding one layer:

1. raw ``sqlite3``: an event row plus its index row (what Fleet writes for one event);
2. the library's bare ``Application.save()`` of a one-event aggregate, and a registration
   command with the library alone (``bench.bare.library_register``: a lookup, then the save);
3. ``FleetApplication.save()`` of a one-event Specialist (index row and type counter too);
4. ``Fleet.register_specialist`` with an external projector (validation, load, save);
5. the same command with embedded projections, as ``make run`` serves it;
6. that command's own statements, recorded as it ran and replayed with bare ``sqlite3`` on a
   copy of the store: what its SQL and commit cost without Fleet's Python around them.

The writers take turns, in ``ROUNDS`` rounds, each on a fresh SQLite file of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eventsourcing import sqlite as library_sqlite
from eventsourcing.application import Application

from application.app import FleetApplication
from application.fleet import Fleet
from bench.bare import BareSpecialist, library_register
from bench.common import SCRATCH, Scale, log
from domain.specialist import Specialist

# Each writer's rows are written in this many rounds, the writers taking turns: the host's
# speed drifts by tens of percent within minutes, and interleaved, the drift falls on every
# writer alike instead of on whichever ran last.
ROUNDS = 5

Write = Callable[[int], Any]


@contextlib.contextmanager
def raw_sqlite(path: Path, state: bytes) -> Iterator[Write]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # as the library sets it; synchronous stays FULL
        conn.execute(
            "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
            "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
        )
        conn.execute(
            "CREATE TABLE fleet_event_index (position INTEGER PRIMARY KEY, "
            "event_type TEXT NOT NULL, stream_id TEXT NOT NULL, stream_type TEXT NOT NULL, "
            "correlation_id TEXT NOT NULL)"
        )
        for column in ("event_type", "stream_id", "correlation_id", "stream_type"):
            conn.execute(
                f"CREATE INDEX fleet_event_index_{column} ON fleet_event_index ({column}, position)"
            )

        def insert(i: int) -> None:
            stream = f"{i:032x}" if i >= 0 else f"w{-i:031x}"  # warm-up ids apart
            conn.execute("BEGIN")
            cursor = conn.execute(
                "INSERT INTO stored_events VALUES (?, 1, 'specialist_registered', ?)",
                (stream, state),
            )
            conn.execute(
                "INSERT INTO fleet_event_index "
                "VALUES (?, 'specialist_registered', ?, 'specialist', ?)",
                (cursor.lastrowid, stream, f"corr-{i}"),
            )
            conn.execute("COMMIT")

        yield insert
    finally:
        conn.close()


@contextlib.contextmanager
def library_app(path: Path) -> Iterator[Application[Any]]:
    app: Application[Any] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    try:
        yield app
    finally:
        app.close()


@contextlib.contextmanager
def library_save(path: Path) -> Iterator[Write]:
    with library_app(path) as app:
        yield lambda i: app.save(BareSpecialist(f"bare-{i}", f"Bare {i}", ["code", "review"]))


@contextlib.contextmanager
def library_command(path: Path) -> Iterator[Write]:
    with library_app(path) as app:
        yield lambda i: library_register(app, f"lib-{i}", f"Library {i}", ["code", "review"])


@contextlib.contextmanager
def fleet_save(path: Path) -> Iterator[Write]:
    app = FleetApplication({"SQLITE_DBNAME": str(path)})
    try:
        yield lambda i: app.save(
            Specialist.register(f"save-{i}", f"Save {i}", ["code", "review"], {})
        )
    finally:
        app.close()


def stored_state(path: Path) -> bytes:
    """One stored registration's state, as Fleet saves it: the raw insert writes rows that size."""
    app = FleetApplication({"SQLITE_DBNAME": str(path)})
    try:
        app.save(Specialist.register("state", "State", ["code", "review"], {}))
        return bytes(app.recorder.select_notifications(start=1, limit=1)[0].state)
    finally:
        app.close()


@contextlib.contextmanager
def command(path: Path, projector: str) -> Iterator[Write]:
    fleet = Fleet(env={"SQLITE_DBNAME": str(path), "FLEET_PROJECTOR": projector})
    try:
        yield lambda i: registration(fleet, i)
    finally:
        fleet.close()


# A statement as the library's cursor was given it: "x" execute, "m" executemany.
Statement = tuple[str, str, Any]


@contextlib.contextmanager
def recorded_statements() -> Iterator[list[Statement]]:
    """Every statement Fleet sends through the library's SQLite cursors and connections while
    the block runs, in order, with its parameters (a commit and a rollback as statements).
    The library's classes are wrapped for the block only: a benchmark's probe, not a seam."""
    cursor, connection = library_sqlite.SQLiteCursor, library_sqlite.SQLiteConnection
    wrapped = (cursor.execute, cursor.executemany, connection.commit, connection.rollback)
    statements: list[Statement] = []

    def execute(self: Any, sql: str, params: Any = (), **kwargs: Any) -> None:
        statements.append(("x", sql, params))
        wrapped[0](self, sql, params, **kwargs)

    def executemany(self: Any, sql: str, rows: Any, **kwargs: Any) -> None:
        rows = [list(row) for row in rows]
        statements.append(("m", sql, rows))
        wrapped[1](self, sql, rows, **kwargs)

    def commit(self: Any) -> None:
        statements.append(("x", "COMMIT", ()))
        wrapped[2](self)

    def rollback(self: Any) -> None:
        statements.append(("x", "ROLLBACK", ()))
        wrapped[3](self)

    cursor.execute, cursor.executemany = execute, executemany  # type: ignore[method-assign]
    connection.commit, connection.rollback = commit, rollback  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        cursor.execute, cursor.executemany = wrapped[0], wrapped[1]  # type: ignore[method-assign]
        connection.commit, connection.rollback = wrapped[2], wrapped[3]  # type: ignore[method-assign]


def registration(fleet: Fleet, i: int) -> Any:
    return fleet.register_specialist(f"cmd-{i}", f"Command {i}", ["code", "review"])


@contextlib.contextmanager
def replayed_statements(path: Path, ids: Sequence[int]) -> Iterator[Write]:
    """The embedded command's statements, replayed with bare ``sqlite3``.

    A ``Fleet`` registers each of ``ids`` on a store of its own, its statements recorded per
    registration; ``path`` is a copy of that store as it was before them. ``write(i)`` then
    sends registration ``i``'s statements to ``path`` as they were sent (the same text, so
    the same prepared statements; the same parameters; each answer read), from one
    connection opened as Fleet opens its own."""
    source = path.with_name(f"{path.stem}-recorded{path.suffix}")
    fleet = Fleet(env={"SQLITE_DBNAME": str(source), "FLEET_PROJECTOR": "embedded"})
    by_write: dict[int, list[Statement]] = {}
    try:
        with (
            contextlib.closing(sqlite3.connect(source)) as recorded,
            contextlib.closing(sqlite3.connect(path)) as copy,
        ):
            recorded.backup(copy)
        for i in ids:
            with recorded_statements() as statements:
                registration(fleet, i)
            by_write[i] = statements
    finally:
        fleet.close()
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=512)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        cursor = conn.cursor()

        def replay(i: int) -> None:
            for kind, sql, params in by_write[i]:
                if kind == "m":
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params).fetchall()

        yield replay
    finally:
        conn.close()


def write_ids(rows: int, rounds: int = ROUNDS) -> list[int]:
    """The ids ``rates`` writes, in its order: a warm-up's (negative), then the measured."""
    return [-1 - i for i in range(min(20, rows))] + list(range(max(1, rows // rounds) * rounds))


def rates(
    writers: dict[str, Write], rows: int, rounds: int = ROUNDS
) -> dict[str, dict[str, float]]:
    """Each writer's rate over ``rows`` writes, in ``rounds`` rounds taking turns (after a
    warm-up of each, with ids of their own: ``write_ids``)."""
    ids = write_ids(rows, rounds)
    warm_up = [i for i in ids if i < 0]
    for write in writers.values():
        for i in warm_up:
            write(i)
    seconds = dict.fromkeys(writers, 0.0)
    per_round = max(1, rows // rounds)
    for number in range(rounds):
        for name, write in writers.items():
            began = time.perf_counter()
            for i in range(number * per_round, (number + 1) * per_round):
                write(i)
            seconds[name] += time.perf_counter() - began
    done = per_round * rounds
    return {
        name: {
            "writes": done,
            "writes_per_s": round(done / took, 1),
            "us_per_write": round(took / done * 1e6, 1),
        }
        for name, took in seconds.items()
    }


def run(scale: Scale) -> dict[str, Any]:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="writes-", dir=SCRATCH))
    rows = scale.write_rows
    try:
        state = stored_state(work / "state.sqlite3")
        with contextlib.ExitStack() as stack:
            writers = {
                "raw_sqlite3_insert": stack.enter_context(raw_sqlite(work / "raw.sqlite3", state)),
                "library_application_save": stack.enter_context(
                    library_save(work / "library.sqlite3")
                ),
                "library_register_command": stack.enter_context(
                    library_command(work / "library-cmd.sqlite3")
                ),
                "fleet_application_save": stack.enter_context(fleet_save(work / "fleet.sqlite3")),
                "fleet_command_external_projector": stack.enter_context(
                    command(work / "ext.sqlite3", "external")
                ),
                "fleet_command_embedded_projections": stack.enter_context(
                    command(work / "emb.sqlite3", "embedded")
                ),
                "fleet_statements_replayed_bare": stack.enter_context(
                    replayed_statements(work / "replay.sqlite3", write_ids(rows))
                ),
            }
            measured = rates(writers, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw = measured["raw_sqlite3_insert"]["us_per_write"]
    for name, figures in measured.items():
        figures["time_vs_raw_insert"] = round(figures["us_per_write"] / raw, 2)
        log(f"  {name:36} {figures['writes_per_s']:>8,.0f} writes/s")
    return {"rows": rows, "rounds": ROUNDS, "state_bytes": len(state), "rates": measured}
