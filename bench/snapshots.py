"""Aggregate load time of one long stream, with and without snapshots, in the same run.

    python -m bench snapshots [--events 100000] [--interval 200] [--repeat 5]

1. Seeds one specialist stream with ``--events`` events (registration, then heartbeats)
   through ``FleetApplication.save`` in batches of 5,000, with snapshots every
   ``--interval`` events (the library's automatic snapshotting, as in production).
2. Loads the aggregate ``--repeat`` times each way and reports the median:
   - with snapshots: ``app.get`` (latest snapshot + the events after it), at the head and
     at the worst case, one event before the next snapshot (``interval - 1`` events replayed);
   - without: the same repository read with no snapshot store (every event replayed, with
     Fleet's fast projector), and the library's default projector for reference.

Results: a markdown table on stdout, JSON in ``bench/out/snapshots.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventsourcing.application import Repository, project_aggregate

from application.app import FleetApplication, project_fast
from domain.specialist import Specialist

OUT_DIR = Path(__file__).resolve().parent / "out"
BATCH = 5_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=100_000, help="events in the stream")
    parser.add_argument("--interval", type=int, default=200, help="snapshot interval")
    parser.add_argument("--repeat", type=int, default=5, help="loads per measure (median)")


def seed(app: FleetApplication, events: int) -> Any:
    specialist = Specialist.register("bench-long", "Long stream", ["code"], {})
    statuses = ("busy", "idle", "active")
    while specialist.version < events:
        for _ in range(min(BATCH, events - specialist.version)):
            specialist.heartbeat(
                statuses[specialist.version % 3], metrics={"n": specialist.version}
            )
        app.save(specialist)
        if specialist.version % 20_000 < BATCH:
            print(f"  seeded {specialist.version:,} events", flush=True)
    return specialist.id


def median_ms(load: Callable[[], Any], repeat: int) -> tuple[float, int]:
    times, version = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        version = load().version
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), version


def run(options: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="fleet-bench-snapshots-"))
    env = {
        "SQLITE_DBNAME": str(folder / "bench.sqlite3"),
        "FLEET_SNAPSHOT_INTERVAL": str(options.interval),
    }
    app = FleetApplication(env)
    print(f"seeding one stream of {options.events:,} events into {folder}", flush=True)
    began = time.perf_counter()
    stream = seed(app, options.events)
    seeded_s = time.perf_counter() - began
    if app.snapshots is None:
        raise SystemExit("snapshots are off: FLEET_SNAPSHOT_INTERVAL must be above 0")
    snapshots = sum(1 for _ in app.snapshots.get(stream))
    plain = Repository(event_store=app.events)  # the same store, no snapshots
    worst = options.events - 1 if options.events % options.interval == 0 else options.events
    measures: dict[str, tuple[float, int]] = {
        "snapshot at head": median_ms(lambda: app.get(stream), options.repeat),
        f"snapshot + {options.interval - 1} events": median_ms(
            lambda: app.get(stream, version=worst), options.repeat
        ),
        "no snapshot, Fleet's fast projector": median_ms(
            lambda: plain.get(stream, projector_func=project_fast), options.repeat
        ),
        "no snapshot, library default projector": median_ms(
            lambda: plain.get(stream, projector_func=project_aggregate), max(1, options.repeat // 2)
        ),
    }
    app.close()
    baseline = measures["no snapshot, Fleet's fast projector"][0]
    result = {
        "events": options.events,
        "interval": options.interval,
        "snapshots": snapshots,
        "seed_seconds": round(seeded_s, 1),
        "load_ms_median": {k: round(v[0], 3) for k, v in measures.items()},
        "loaded_version": {k: v[1] for k, v in measures.items()},
    }
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "snapshots.json").write_text(json.dumps(result, indent=2))
    print(
        f"\n{options.events:,} events, {snapshots} snapshots (every {options.interval}), "
        f"seeded in {seeded_s:.1f} s"
    )
    print("\n| load of one aggregate | version | median ms | vs full replay |")
    print("|---|---:|---:|---:|")
    for name, (ms, version) in measures.items():
        print(f"| {name} | {version:,} | {ms:,.2f} | {ms / baseline:.4f} |")
    return 0
