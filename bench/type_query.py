"""Events-by-type query latency on a large SQLite store, plus write-rate baselines.

    python -m bench type-query [--events 1000000] [--runs 200] [--db PATH] [--reuse]

1. Seeds a Fleet SQLite store with ``--events`` events, fast: batches of ``--batch``
   new Specialist aggregates (registration, spawns, heartbeats, endings) go through
   ``FleetApplication.save(*aggregates)`` in one transaction per batch, so the event
   index is written exactly as in production. The mix is drawn from a seeded RNG.
2. Times ``fleet.events(type=X, limit=100)`` (decoded API records) and the
   recorder's ``select_event_page`` (SQL only), ``--runs`` times each, for a rare and
   a common type, with and without an offset; reports p50/p95/p99.
3. Measures, in the same run and on the same disk, what one write costs:
   a raw ``sqlite3`` insert of an equivalent event row plus its index row (one
   transaction per row), the library's bare ``Application.save()`` of a one-event
   aggregate, ``FleetApplication.save()`` of a one-event Specialist, and the
   ``Fleet.register_specialist`` command; reports the ratios between them.

Results: a markdown table on stdout, JSON in ``bench/out/type_query.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from application.app import FleetApplication
from application.fleet import Fleet
from application.store.query import EventFilter
from domain.envelope import event_context
from domain.specialist import LIVE, Specialist

DEFAULT_EVENTS = 1_000_000
OUT_DIR = Path(__file__).resolve().parent / "out"
RARE = "specialist_failed"
COMMON = "specialist_active"
CAPABILITIES = ("code", "review", "test", "docs", "ops", "research", "deploy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="events to seed")
    parser.add_argument("--batch", type=int, default=1000, help="new aggregates per save()")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per query")
    parser.add_argument("--limit", type=int, default=100, help="page size of the timed queries")
    parser.add_argument("--seed", type=int, default=20_260_101, help="RNG seed of the event mix")
    parser.add_argument(
        "--baseline-rows", type=int, default=2000, help="writes per write-rate baseline"
    )
    parser.add_argument("--db", type=Path, default=None, help="store file (default: bench/out/)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep an existing store that already has the events"
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR / "type_query.json")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# 1. Seeding


def plan(rng: random.Random) -> list[tuple[str, ...]]:
    """One specialist's commands; about 9.6 events on average."""
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


def build(number: int, steps: list[tuple[str, ...]], rng: random.Random) -> Specialist:
    """Run ``steps`` on a new Specialist; all its events share one correlation id."""
    specialist_id = f"bench-{number:08d}"
    with event_context(correlation_id=f"bench-corr-{number:08d}", source="bench"):
        specialist = Specialist.register(
            specialist_id,
            f"Specialist {number}",
            rng.sample(CAPABILITIES, rng.randint(1, 3)),
            {"pool": f"pool-{number % 16}"},
        )
        for step in steps[1:]:
            if step[0] == "spawn":
                specialist.record_spawn(f"bench-{max(number - 1, 0):08d}", sortie_id=f"s-{number}")
            elif step[0] == "heartbeat":
                specialist.heartbeat(step[1], metrics={"tokens": rng.randint(0, 200_000)})
            elif step[0] == "fail":
                specialist.fail("tool crashed", {"exit_code": rng.randint(1, 255)})
            elif step[0] == "complete":
                specialist.complete("success", summary="done")
            else:
                specialist.mark_inactive("heartbeat_timeout")
    return specialist


def seed(fleet: Fleet, events: int, batch: int, seed_value: int) -> dict[str, Any]:
    rng = random.Random(seed_value)  # noqa: S311 - a benchmark mix, not security
    done = aggregates = 0
    began = last = time.perf_counter()
    while done < events:
        pending: list[Specialist] = []
        while len(pending) < batch and done < events:
            steps = plan(rng)[: events - done]
            pending.append(build(aggregates, steps, rng))
            aggregates += 1
            done += len(steps)
        fleet.app.save(*pending)
        now = time.perf_counter()
        if now - last >= 5 or done >= events:
            rate = done / (now - began)
            eta = (events - done) / rate if rate else 0
            log(f"  seeded {done:>11,} / {events:,} events  {rate:,.0f} events/s  eta {eta:.0f} s")
            last = now
    elapsed = time.perf_counter() - began
    return {
        "events": done,
        "aggregates": aggregates,
        "seconds": round(elapsed, 2),
        "events_per_s": round(done / elapsed, 1),
        "batch": batch,
        "seed": seed_value,
    }


# 2. Query timing


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {
        "p50_ms": round(cuts[49], 3),
        "p95_ms": round(cuts[94], 3),
        "p99_ms": round(cuts[98], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "min_ms": round(ms[0], 3),
        "max_ms": round(ms[-1], 3),
    }


def timed(call: Callable[[], Any], runs: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return percentiles(samples)


def query_plan(fleet: Fleet, event_type: str, limit: int, offset: int) -> list[str]:
    """EXPLAIN QUERY PLAN of the page query and the count, as SQLite runs them."""
    flt = EventFilter(types=(event_type,))
    where, params = flt.where("?")
    # Fixed fragments (as in FleetSQLiteRecorder.select_event_page); values are bound.
    join = "fleet_event_index i JOIN stored_events e ON e.rowid = i.position"
    page = f"SELECT i.position FROM {join}{where} ORDER BY i.position LIMIT ? OFFSET ?"  # noqa: S608
    count = f"SELECT COUNT(*) FROM fleet_event_index i{where}"  # noqa: S608
    steps = []
    with fleet.app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        for label, sql, args in (
            ("page", page, [*params, limit, offset]),
            ("count", count, params),
        ):
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", args)
            steps.extend(f"{label}: {row[3]}" for row in cursor.fetchall())
    return steps


def run_queries(fleet: Fleet, runs: int, limit: int) -> list[dict[str, Any]]:
    recorder = fleet.app.recorder
    totals = {t: fleet.events(type=t, limit=1)[1] for t in (RARE, COMMON)}
    cases: list[tuple[str, str, int]] = [("rare", RARE, 0)]
    if totals[RARE] > 1:
        cases.append(("rare", RARE, totals[RARE] // 2))
    cases.append(("common", COMMON, 0))
    for offset in sorted({min(10_000, totals[COMMON] // 4), totals[COMMON] // 2}):
        if offset > 0:
            cases.append(("common", COMMON, offset))
    results = []
    for label, event_type, offset in cases:
        flt = EventFilter(types=(event_type,))
        events, total = fleet.events(type=event_type, limit=limit, offset=offset)
        if not events or any(e["event_type"] != event_type for e in events):
            raise RuntimeError(f"unexpected page for type={event_type} offset={offset}")
        api = timed(
            lambda t=event_type, o=offset: fleet.events(type=t, limit=limit, offset=o), runs
        )
        sql = timed(
            lambda f=flt, o=offset: recorder.select_event_page(f, limit, o),  # type: ignore[attr-defined]
            runs,
        )
        results.append(
            {
                "case": label,
                "type": event_type,
                "total": total,
                "share": round(total / max(fleet.head_position(), 1), 5),
                "limit": limit,
                "offset": offset,
                "runs": runs,
                "fleet_events": api,
                "select_event_page": sql,
                "plan": query_plan(fleet, event_type, limit, offset),
            }
        )
        log(
            f"  {label:6} {event_type:22} offset {offset:>8,}: "
            f"p50 {api['p50_ms']:.2f} ms, p95 {api['p95_ms']:.2f} ms, p99 {api['p99_ms']:.2f} ms"
        )
    return results


# 3. Write-rate baselines


class BareSpecialist(Aggregate):
    """The library's own aggregate style, with a payload like Fleet's registration."""

    @event("Registered")
    def __init__(self, specialist_id: str, name: str, capabilities: list[str]) -> None:
        self.specialist_id = specialist_id
        self.name = name
        self.capabilities = capabilities


@dataclass
class Rate:
    writes: int
    seconds: float

    def as_dict(self) -> dict[str, float]:
        return {
            "writes": self.writes,
            "seconds": round(self.seconds, 3),
            "writes_per_s": round(self.writes / self.seconds, 1),
            "us_per_write": round(self.seconds / self.writes * 1e6, 1),
        }


def _rate(call: Callable[[int], Any], rows: int) -> Rate:
    began = time.perf_counter()
    for i in range(rows):
        call(i)
    return Rate(rows, time.perf_counter() - began)


def raw_sqlite_rate(path: Path, rows: int, state: bytes) -> Rate:
    """What Fleet writes per one-event save (event row + index row), in plain sqlite3."""
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

        return _rate(insert, rows)
    finally:
        conn.close()


def library_save_rate(path: Path, rows: int) -> Rate:
    app: Application[Any] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    try:
        return _rate(
            lambda i: app.save(BareSpecialist(f"bare-{i}", f"Bare {i}", ["code", "review"])), rows
        )
    finally:
        app.close()


def fleet_save_rate(path: Path, rows: int) -> Rate:
    app = FleetApplication(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    )
    try:
        return _rate(
            lambda i: app.save(
                Specialist.register(f"save-{i}", f"Save {i}", ["code", "review"], {})
            ),
            rows,
        )
    finally:
        app.close()


def fleet_command_rate(path: Path, rows: int) -> Rate:
    fleet = Fleet(env=store_env(path))
    try:
        return _rate(
            lambda i: fleet.register_specialist(f"cmd-{i}", f"Command {i}", ["code", "review"]),
            rows,
        )
    finally:
        fleet.close()


def baselines(rows: int, state: bytes, scratch: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="baseline-", dir=scratch))
    try:
        rates = {
            "raw_sqlite3_insert": raw_sqlite_rate(work / "raw.sqlite3", rows, state),
            "library_application_save": library_save_rate(work / "library.sqlite3", rows),
            "fleet_application_save": fleet_save_rate(work / "fleet.sqlite3", rows),
            "fleet_register_specialist": fleet_command_rate(work / "command.sqlite3", rows),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw = rates["raw_sqlite3_insert"].seconds
    library = rates["library_application_save"].seconds
    fleet_save = rates["fleet_application_save"].seconds
    command = rates["fleet_register_specialist"].seconds
    for name, rate in rates.items():
        log(f"  {name:26} {rate.as_dict()['writes_per_s']:>9,.0f} writes/s")
    return {
        "rates": {name: rate.as_dict() for name, rate in rates.items()},
        "state_bytes": len(state),
        "ratios": {
            "library_save_vs_raw_insert": round(library / raw, 2),
            "fleet_save_vs_raw_insert": round(fleet_save / raw, 2),
            "fleet_save_vs_library_save": round(fleet_save / library, 2),
            "fleet_command_vs_fleet_save": round(command / fleet_save, 2),
            "fleet_command_vs_library_save": round(command / library, 2),
        },
    }


# Running


def store_env(path: Path) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "FLEET_PROJECTOR": "external",  # time the event log alone, not projections
    }


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "eventsourcing": metadata.version("eventsourcing"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def markdown(report: dict[str, Any]) -> str:
    seeded = report["seed"]
    lines = [
        f"## type-query: {seeded['events']:,} events in SQLite",
        "",
        f"Seeded {seeded['events']:,} events ({seeded['aggregates']:,} specialists) in "
        f"{seeded['seconds']:,.1f} s: **{seeded['events_per_s']:,.0f} events/s** "
        f"(batches of {seeded['batch']:,} new aggregates per save). "
        f"Store file: {report['store_mb']:,.0f} MB.",
        "",
        "| query | matching | offset | `fleet.events` p50 / p95 / p99 (ms) "
        "| `select_event_page` p50 / p95 / p99 (ms) |",
        "|---|---:|---:|---|---|",
    ]
    for q in report["queries"]:
        api, sql = q["fleet_events"], q["select_event_page"]
        lines.append(
            f"| `type={q['type']}` limit {q['limit']} ({q['case']}, {q['share']:.2%}) "
            f"| {q['total']:,} | {q['offset']:,} "
            f"| {api['p50_ms']:.2f} / {api['p95_ms']:.2f} / {api['p99_ms']:.2f} "
            f"| {sql['p50_ms']:.2f} / {sql['p95_ms']:.2f} / {sql['p99_ms']:.2f} |"
        )
    base = report["baselines"]
    lines += [
        "",
        f"Write rates, {report['baseline_rows']:,} writes each, one transaction per write, "
        "fresh files on the same disk (WAL, synchronous=FULL):",
        "",
        "| writer | writes/s | µs/write |",
        "|---|---:|---:|",
    ]
    for name, rate in base["rates"].items():
        lines.append(f"| {name} | {rate['writes_per_s']:,.0f} | {rate['us_per_write']:,.0f} |")
    lines += ["", "| ratio (time per write) | times |", "|---|---:|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in base["ratios"].items()]
    return "\n".join(lines)


def run(options: argparse.Namespace) -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    db: Path = options.db or OUT_DIR / f"type_query_{options.events}.sqlite3"
    fleet: Fleet | None = None
    if options.reuse and db.exists():
        fleet = Fleet(env=store_env(db))
        if fleet.head_position() < options.events:
            fleet.close()
            fleet = None
            log(f"{db} has fewer than {options.events:,} events: seeding afresh")
    if fleet is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        log(f"seeding {options.events:,} events into {db}")
        fleet = Fleet(env=store_env(db))
        seeded = seed(fleet, options.events, options.batch, options.seed)
    else:
        log(f"reusing {db} ({fleet.head_position():,} events)")
        seeded = {"events": fleet.head_position(), "reused": True}
    try:
        types = Counter(dict(_type_counts(fleet)))
        seeded.setdefault("aggregates", types.get("specialist_registered", 0))
        seeded.setdefault("seconds", 0.0)
        seeded.setdefault("events_per_s", 0.0)
        seeded.setdefault("batch", options.batch)
        log(f"timing queries ({options.runs} runs each)")
        queries = run_queries(fleet, options.runs, options.limit)
        sample_state = fleet.app.recorder.select_notifications(start=1, limit=1)[0].state
    finally:
        fleet.close()
    log(f"write-rate baselines ({options.baseline_rows:,} writes each)")
    base = baselines(options.baseline_rows, sample_state, OUT_DIR)
    report = {
        "benchmark": "type-query",
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "environment": environment(),
        "store": str(db),
        "store_mb": round(sum(f.stat().st_size for f in db.parent.glob(db.name + "*")) / 1e6, 1),
        "seed": seeded,
        "event_types": dict(types.most_common()),
        "queries": queries,
        "baseline_rows": options.baseline_rows,
        "baselines": base,
    }
    options.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report), flush=True)
    log(f"wrote {options.out}")
    return 0


def _type_counts(fleet: Fleet) -> list[tuple[str, int]]:
    with fleet.app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        cursor.execute("SELECT event_type, COUNT(*) FROM fleet_event_index GROUP BY event_type")
        return [(row[0], row[1]) for row in cursor.fetchall()]
