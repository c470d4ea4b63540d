"""Seeded, deterministic workloads: the large store and the data commands act on.

The large store (1M events for ``make bench``) is built once and cached under ``var/bench/``,
keyed by ``STORE_VERSION``, the seed and the size: bump ``STORE_VERSION`` whenever the
workload or the store's schema changes so that a stale file is never reused.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from application.app import FleetApplication
from application.fleet import Fleet
from bench.common import CACHE, log
from domain.envelope import event_context
from domain.mission import Mission
from domain.sortie import Sortie
from domain.specialist import LIVE, Specialist

STORE_VERSION = 1
CAPABILITIES = ("code", "review", "test", "docs", "ops", "research", "deploy")
BATCH = 1_000  # new aggregates per save() while building


def plan(rng: random.Random) -> list[tuple[str, ...]]:
    """One specialist's life; about 9.6 events on average, a few ending in failure."""
    steps: list[tuple[str, ...]] = [("register",)]
    if rng.random() < 0.2:
        steps.append(("spawn",))
    steps.extend(("heartbeat", rng.choice(LIVE)) for _ in range(rng.randint(2, 14)))
    ending = rng.random()
    if ending < 0.004:
        steps.append(("fail",))
    elif ending < 0.25:
        steps.append(("complete",))
    elif ending < 0.35:
        steps.append(("inactive",))
    return steps


def specialist_id(number: int) -> str:
    return f"bench-{number:08d}"


def build_specialist(number: int, steps: list[tuple[str, ...]], rng: random.Random) -> Specialist:
    """Run ``steps`` on a new Specialist; all its events share one correlation id."""
    with event_context(correlation_id=f"bench-corr-{number:08d}", source="bench"):
        specialist = Specialist.register(
            specialist_id(number),
            f"Specialist {number}",
            rng.sample(CAPABILITIES, rng.randint(1, 3)),
            {"pool": f"pool-{number % 16}"},
        )
        for step in steps[1:]:
            if step[0] == "spawn":
                specialist.record_spawn(specialist_id(max(number - 1, 0)), sortie_id=f"s-{number}")
            elif step[0] == "heartbeat":
                specialist.heartbeat(step[1], metrics={"tokens": rng.randint(0, 200_000)})
            elif step[0] == "fail":
                specialist.fail("tool crashed", {"exit_code": rng.randint(1, 255)})
            elif step[0] == "complete":
                specialist.complete("success", summary="done")
            else:
                specialist.mark_inactive("heartbeat_timeout")
    return specialist


def seed_specialists(app: FleetApplication, events: int, seed: int) -> dict[str, Any]:
    """Batched saves of specialists until ``events`` are stored (indexed as in production)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not security
    done = aggregates = 0
    began = last = time.perf_counter()
    while done < events:
        pending: list[Specialist] = []
        while len(pending) < BATCH and done < events:
            steps = plan(rng)[: events - done]
            pending.append(build_specialist(aggregates, steps, rng))
            aggregates += 1
            done += len(steps)
        app.save(*pending)
        now = time.perf_counter()
        if now - last >= 5 or done >= events:
            rate = done / (now - began)
            log(f"  seeded {done:>11,} / {events:,} events, {rate:,.0f} events/s")
            last = now
    elapsed = time.perf_counter() - began
    return {
        "events": done,
        "specialists": aggregates,
        "seconds": round(elapsed, 2),
        "events_per_s": round(done / elapsed, 1),
        "batch": BATCH,
        "seed": seed,
    }


@dataclass(frozen=True)
class LargeStore:
    """A cached SQLite store of ``events`` events with every projection caught up."""

    path: Path
    info: dict[str, Any]


def large_store(events: int, seed: int) -> LargeStore:
    """The cached store, built first if missing (and its build recorded next to it)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"store-v{STORE_VERSION}-seed{seed}-{events}.sqlite3"
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        log(f"reusing the cached store {path.relative_to(CACHE.parent.parent)}")
        return LargeStore(path, {**info, "cached": True})
    scratch = path.with_name(path.name + ".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{scratch}{suffix}").unlink(missing_ok=True)
    log(f"building a store of {events:,} events (cached for later runs)")
    env = {"SQLITE_DBNAME": str(scratch), "FLEET_PROJECTOR": "external"}
    fleet = Fleet(env=env)
    try:
        seeded = seed_specialists(fleet.app, events, seed)
        began = time.perf_counter()
        fleet.projector.catch_up()
        projected = time.perf_counter() - began
        log(f"  projections caught up in {projected:.1f} s")
    finally:
        fleet.close()
    checkpoint(scratch)
    shutil.move(scratch, path)
    info = {
        **seeded,
        "projection_seconds": round(projected, 2),
        "store_version": STORE_VERSION,
        "file_mb": round(path.stat().st_size / 1e6, 1),
    }
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    return LargeStore(path, {**info, "cached": False})


def checkpoint(path: Path) -> None:
    """Fold the WAL into the main file, so that the file alone is the whole store."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


# What commands act on


def preload(env: dict[str, str], count: int) -> dict[str, list[str]]:
    """``count`` registered specialists and in-progress sorties, saved in batches.

    Returns their ids: heartbeats go to the specialists, PATCHes to the sorties.
    """
    fleet = Fleet(env={**env, "FLEET_PROJECTOR": "external"})
    try:
        specialists = [
            Specialist.register(f"pre-{n:05d}", f"Preloaded {n}", ["code", "review"], {})
            for n in range(count)
        ]
        sorties = []
        for n in range(count):
            sortie = Sortie.create(description=f"Preloaded sortie {n}")
            sortie.assign(f"pre-{n:05d}")
            sortie.start()
            sorties.append(sortie)
        mission = Mission.create(title="Bench mission")
        for start in range(0, count, 500):
            fleet.app.save(*specialists[start : start + 500], *sorties[start : start + 500])
        fleet.app.save(mission)
        fleet.projector.catch_up()
    finally:
        fleet.close()
    return {
        "specialists": [s.specialist_id for s in specialists],
        "sorties": [str(s.id) for s in sorties],
        "missions": [str(mission.id)],
    }
