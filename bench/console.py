"""The operator console's overview page (``GET /ui/``), rendered server-side.

1. Seeds a SQLite store with ``console_specialists`` specialists (heartbeats), missions of
   100 sorties each up to ``console_sorties`` sorties in every state, 50 active locks and
   500 messages in 50 mailboxes; saves are batched, then the projections catch up.
2. Renders the overview through Flask's test client (routing, the Fleet queries and the
   Jinja templates; no network): the first render (cold: the write-rate chart bisects the
   log for each minute), then ``query_runs`` renders whose median and p95 are the figures.

Run alone with ``python -m bench.console [--quick]``; ``make bench`` runs it as ``console``.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from typing import Any

from application.app import FleetApplication
from bench.common import FULL, QUICK, SCRATCH, Scale, log, percentiles
from domain.mission import Mission
from domain.sortie import Sortie
from domain.specialist import LIVE, Specialist

LIMIT_MS = 100.0
SORTIES_PER_MISSION = 100


def sizes(scale: Scale) -> tuple[int, int]:
    """Specialists and sorties: the issue's 1,000 and 10,000 at full scale."""
    return (1_000, 10_000) if scale.name == "full" else (200, 2_000)


def seed(app: FleetApplication, specialists: int, sorties: int, rng: random.Random) -> int:
    ids = [f"agent-{n:04d}" for n in range(specialists)]
    batch: list[Any] = []
    for specialist_id in ids:
        specialist = Specialist.register(specialist_id, specialist_id.title(), ["code"], {})
        for _ in range(rng.randint(0, 3)):
            specialist.heartbeat(rng.choice(LIVE))
        batch.append(specialist)
    app.save(*batch)
    made = 0
    while made < sorties:
        mission = Mission.create(title=f"mission {made // SORTIES_PER_MISSION}")
        mission.start()
        batch = [mission]
        for _ in range(min(SORTIES_PER_MISSION, sorties - made)):
            sortie = Sortie.create(description="bench work", mission_id=str(mission.id))
            roll = rng.random()
            if roll > 0.2:
                sortie.assign(rng.choice(ids))
            if roll > 0.4:
                sortie.start()
                sortie.report_progress(rng.randint(1, 99))
            if roll > 0.7:
                sortie.complete(result={"ok": True})
            batch.append(sortie)
            made += 1
        app.save(*batch)
    return app.recorder.max_notification_id() or 0


def run(scale: Scale) -> dict[str, Any]:
    from web import create_app, get_fleet  # the bench measures the web layer's page

    specialists, sorties = sizes(scale)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="console-", dir=SCRATCH)
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": f"{folder}/c.sqlite3"}
    rng = random.Random(scale.seed)  # noqa: S311 - reproducible data, not secrets
    app = FleetApplication(env)
    try:
        log(f"  seeding {specialists:,} specialists and {sorties:,} sorties")
        events = seed(app, specialists, sorties, rng)
    finally:
        app.close()
    web = create_app({"TESTING": True, "FLEET_ENV": env, "FLEET_SWEEP_INTERVAL": 0})
    fleet = get_fleet(web)
    try:
        for n in range(50):
            fleet.acquire_lock(f"src/module_{n}.py", f"agent-{n:04d}", timeout_ms=3_600_000)
        for n in range(500):
            fleet.send_message(f"agent-{n % 50:04d}", "note", {"text": f"message {n}"}, "bench")
        events = fleet.head_position()
        client = web.test_client()

        def render() -> float:
            began = time.perf_counter()
            response = client.get("/ui/")
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                raise SystemExit(f"GET /ui/ answered {response.status_code}")
            return elapsed

        first_ms = render() * 1000
        timings = [render() for _ in range(scale.query_runs)]
        size = len(client.get("/ui/").data)
    finally:
        fleet.close()
    figures = percentiles(timings)
    log(
        f"  overview: first {first_ms:.1f} ms, p50 {figures['p50_ms']:.1f} ms, "
        f"p95 {figures['p95_ms']:.1f} ms ({events:,} events, {size:,} bytes)"
    )
    return {
        "specialists": specialists,
        "sorties": sorties,
        "events": events,
        "first_render_ms": round(first_ms, 2),
        "render": figures,
        "runs": scale.query_runs,
        "page_bytes": size,
        "limit_ms": LIMIT_MS,
    }


if __name__ == "__main__":
    print(json.dumps(run(QUICK if "--quick" in sys.argv[1:] else FULL), indent=2))
