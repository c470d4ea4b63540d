"""Database size before and after compaction, with and without compression of stored state.

Seeds the same workload twice, into two SQLite stores: one plain, one with
``COMPRESSOR_TOPIC=eventsourcing.compressor:ZlibCompressor`` (zlib for every row written).
The workload is ``compaction_streams`` specialists sharing ``compaction_events`` events
(registration, then heartbeats with a small metrics dict), with the default snapshot interval (200).

Then, on each store: ``compact()`` (snapshots, ``context_compacted``, snapshot pruning),
then ``compact(archive=True)`` as if 31 days had passed (every event behind a snapshot
moves to the archive file), then ``VACUUM`` of the live file. Sizes are the files on disk
after a WAL checkpoint.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from application.fleet import Fleet
from bench.common import SCRATCH, Scale, log
from domain.specialist import LIVE, Specialist

ZLIB = "eventsourcing.compressor:ZlibCompressor"


def seed(fleet: Fleet, events: int, streams: int, rng: random.Random) -> int:
    per_stream = max(1, events // streams)
    stored = 0
    batch: list[Any] = []
    for n in range(streams):
        specialist = Specialist.register(f"bench-{n}", f"Bench {n}", ["code", "review"], {})
        for _ in range(per_stream - 1):
            specialist.heartbeat(
                rng.choice(LIVE),
                metrics={"cpu": round(rng.random(), 3), "queue": rng.randint(0, 50)},
            )
        batch.append(specialist)
        stored += specialist.version
        if len(batch) == 20:
            fleet.app.save(*batch)
            batch = []
    if batch:
        fleet.app.save(*batch)
    return stored


def file_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def state_bytes(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(
            conn.execute("SELECT COALESCE(SUM(LENGTH(state)), 0) FROM stored_events").fetchone()[0]
        )


def vacuum(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def measure(folder: Path, name: str, scale: Scale) -> dict[str, Any]:
    live = folder / f"{name}.sqlite3"
    env = {"SQLITE_DBNAME": str(live), "FLEET_PROJECTOR": "external"}
    if name == "zlib":
        env["COMPRESSOR_TOPIC"] = ZLIB
    rng = random.Random(scale.seed)  # noqa: S311 - a reproducible workload, not security
    fleet = Fleet(env=env)
    began = time.perf_counter()
    events = seed(fleet, scale.compaction_events, scale.compaction_streams, rng)
    seeded_s = time.perf_counter() - began
    fleet.projector.catch_up()
    fleet.close()
    before = file_size(live)
    states = state_bytes(live)

    fleet = Fleet(env=env)
    began = time.perf_counter()
    compacted = fleet.compact()
    compact_s = time.perf_counter() - began
    began = time.perf_counter()
    archived = fleet.compact(archive=True, now=datetime.now(UTC) + timedelta(days=31))
    archive_s = time.perf_counter() - began
    archive_path = Path(fleet.app.archive.path)  # type: ignore[union-attr]
    fleet.close()
    after_compact = file_size(live)
    vacuum(live)
    after = file_size(live)
    archive = file_size(archive_path)
    return {
        "store": name,
        "events": events,
        "seed_seconds": round(seeded_s, 1),
        "live_bytes_before": before,
        "event_state_bytes_before": states,
        "streams_compacted": compacted["streams_compacted"],
        "snapshots_pruned": compacted["snapshots_pruned"] + archived["snapshots_pruned"],
        "compact_seconds": round(compact_s, 2),
        "events_archived": archived["events_archived"],
        "archive_seconds": round(archive_s, 2),
        "live_bytes_after_archive": after_compact,
        "live_bytes_after_vacuum": after,
        "archive_bytes": archive,
    }


def run(scale: Scale) -> dict[str, Any]:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="compaction-", dir=SCRATCH))
    results = {}
    for name in ("plain", "zlib"):
        results[name] = measure(folder, name, scale)
        r = results[name]
        log(
            f"  {name}: live {r['live_bytes_before'] / 2**20:.1f} MiB, after archive + VACUUM "
            f"{r['live_bytes_after_vacuum'] / 2**20:.1f} MiB, "
            f"archive {r['archive_bytes'] / 2**20:.1f} MiB"
        )
    return {"events": scale.compaction_events, "streams": scale.compaction_streams, **results}
