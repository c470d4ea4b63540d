"""Aggregate load time against history length, with and without snapshots, in one run.

One specialist stream per length (10, 1k, 10k, 100k events for ``make bench``): registration,
then heartbeats, saved through ``FleetApplication.save`` in batches, with the default snapshot
interval (200), so the library snapshots them as in production. Each is loaded ``repeat``
times (median):

- with snapshots: ``app.get`` (the latest snapshot plus the events after it), at the head, and
  at ``interval - 1`` events past the last snapshot below the head (the worst case);
- without: the same repository with no snapshot store, every event replayed with Fleet's
  projector function.
"""

from __future__ import annotations

import tempfile
from typing import Any

from eventsourcing.application import Repository

from application.app import FleetApplication, project_fast
from bench.common import SCRATCH, Scale, log, median_ms
from domain.specialist import Specialist

BATCH = 5_000
STATUSES = ("busy", "idle", "active")


def seed_stream(app: FleetApplication, name: str, events: int) -> Any:
    specialist = Specialist.register(name, "Long stream", ["code"], {})
    while specialist.version < events:
        for _ in range(min(BATCH, events - specialist.version)):
            specialist.heartbeat(
                STATUSES[specialist.version % 3], metrics={"n": specialist.version}
            )
        app.save(specialist)
    return specialist.id


def run(scale: Scale) -> dict[str, Any]:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="history-", dir=SCRATCH)
    app = FleetApplication({"SQLITE_DBNAME": f"{folder}/history.sqlite3"})
    if app.snapshots is None:
        raise SystemExit("snapshots are off: FLEET_SNAPSHOT_INTERVAL must be above 0")
    interval = int(app.env.get("FLEET_SNAPSHOT_INTERVAL", "200"))
    plain = Repository(event_store=app.events)  # the same store, without snapshots
    rows = []
    try:
        for events in scale.histories:
            stream = seed_stream(app, f"history-{events}", events)
            head = app.get(stream).version
            worst = (head // interval) * interval - 1 if head > interval else head
            repeat = scale.load_repeat if events < 50_000 else max(2, scale.load_repeat // 2)
            row = {
                "events": head,
                "snapshots": sum(1 for _ in app.snapshots.get(stream)),
                "with_snapshots_ms": median_ms(lambda s=stream: app.get(s), scale.load_repeat),
                "worst_version": worst,
                "worst_case_ms": median_ms(
                    lambda s=stream, v=worst: app.get(s, version=v), scale.load_repeat
                ),
                "without_snapshots_ms": median_ms(
                    lambda s=stream: plain.get(s, projector_func=project_fast), repeat
                ),
            }
            rows.append(row)
            log(
                f"  {events:>7,} events: {row['with_snapshots_ms']:.3f} ms with snapshots "
                f"({row['worst_case_ms']:.3f} ms at version {worst:,}), "
                f"{row['without_snapshots_ms']:.2f} ms without"
            )
    finally:
        app.close()
    return {"interval": interval, "lengths": rows}
