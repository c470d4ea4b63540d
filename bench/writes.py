"""In-process write rates, one transaction per write, fresh SQLite files on the same disk.

From the storage ceiling up to Fleet's command, each step adding one layer:

1. raw ``sqlite3``: an event row plus its index row (what Fleet writes for one event);
2. the library's bare ``Application.save()`` of a one-event aggregate, and a registration
   command with the library alone (``bench.bare.library_register``: a lookup, then the save);
3. ``FleetApplication.save()`` of a one-event Specialist (index row and type counter too);
4. ``Fleet.register_specialist`` with an external projector (validation, load, save);
5. the same command with embedded projections, as ``make run`` serves it.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventsourcing.application import Application

from application.app import FleetApplication
from application.fleet import Fleet
from bench.bare import BareSpecialist, library_register
from bench.common import SCRATCH, Scale, log
from domain.specialist import Specialist


def rate(call: Callable[[int], Any], rows: int) -> dict[str, float]:
    for i in range(min(20, rows)):  # warm-up, with ids of their own
        call(-1 - i)
    began = time.perf_counter()
    for i in range(rows):
        call(i)
    seconds = time.perf_counter() - began
    return {
        "writes": rows,
        "writes_per_s": round(rows / seconds, 1),
        "us_per_write": round(seconds / rows * 1e6, 1),
    }


def raw_sqlite(path: Path, rows: int, state: bytes) -> dict[str, float]:
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
            stream = f"{i:032x}"
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

        return rate(insert, rows)
    finally:
        conn.close()


def library_save(path: Path, rows: int) -> dict[str, float]:
    app: Application[Any] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    try:
        return rate(
            lambda i: app.save(BareSpecialist(f"bare-{i}", f"Bare {i}", ["code", "review"])), rows
        )
    finally:
        app.close()


def library_command(path: Path, rows: int) -> dict[str, float]:
    app: Application[Any] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    try:
        return rate(
            lambda i: library_register(app, f"lib-{i}", f"Library {i}", ["code", "review"]),
            rows,
        )
    finally:
        app.close()


def fleet_save(path: Path, rows: int) -> tuple[dict[str, float], bytes]:
    """The rate, and one stored event's state (the raw insert writes rows that size)."""
    app = FleetApplication({"SQLITE_DBNAME": str(path)})
    try:
        figures = rate(
            lambda i: app.save(
                Specialist.register(f"save-{i}", f"Save {i}", ["code", "review"], {})
            ),
            rows,
        )
        state = app.recorder.select_notifications(start=1, limit=1)[0].state
        return figures, state
    finally:
        app.close()


def command(path: Path, rows: int, projector: str) -> dict[str, float]:
    fleet = Fleet(env={"SQLITE_DBNAME": str(path), "FLEET_PROJECTOR": projector})
    try:
        return rate(
            lambda i: fleet.register_specialist(f"cmd-{i}", f"Command {i}", ["code", "review"]),
            rows,
        )
    finally:
        fleet.close()


def run(scale: Scale) -> dict[str, Any]:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="writes-", dir=SCRATCH))
    rows = scale.write_rows
    try:
        saved, state = fleet_save(work / "fleet.sqlite3", rows)
        rates = {
            "raw_sqlite3_insert": raw_sqlite(work / "raw.sqlite3", rows, state),
            "library_application_save": library_save(work / "library.sqlite3", rows),
            "library_register_command": library_command(work / "library-cmd.sqlite3", rows),
            "fleet_application_save": saved,
            "fleet_command_external_projector": command(work / "ext.sqlite3", rows, "external"),
            "fleet_command_embedded_projections": command(work / "emb.sqlite3", rows, "embedded"),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw = rates["raw_sqlite3_insert"]["us_per_write"]
    for name, figures in rates.items():
        figures["time_vs_raw_insert"] = round(figures["us_per_write"] / raw, 2)
        log(f"  {name:36} {figures['writes_per_s']:>8,.0f} writes/s")
    return {"rows": rows, "state_bytes": len(state), "rates": rates}
