"""Reads on the large store (1M events for ``make bench``): over HTTP, and the queries in-process.

HTTP: gunicorn as ``make run`` starts it, on the cached store, one wrk connection (a single
client, so the figures are service times, not queueing) for each of: GET one specialist, a
filtered list page, ``GET /events?type=X&limit=100`` for a rare and a common type, and one
stream's events. The server's sweeper runs as usual; ``FLEET_HEARTBEAT_TIMEOUT`` is set to ten
years so that its sweeps find nothing to write and the cached store stays as built.

In-process: ``fleet.events(type=..., limit=100, offset=...)`` (decoded records) and the
recorder's ``select_event_page`` (SQL only), at growing offsets; and keyset paging,
``fleet.events(type=..., after=..., limit=100)``, at growing depths of the log.
"""

from __future__ import annotations

import random
from typing import Any

from bench import loadgen
from bench.common import SCRATCH, Scale, log, timed
from bench.loadgen import Request
from bench.server import CEILING_APP, FLEET_APP, gunicorn
from bench.workloads import LargeStore, large_store, specialist_id
from domain.specialist import Specialist

RARE = "specialist_failed"
COMMON = "specialist_active"
TEN_YEARS = str(10 * 365 * 24 * 3600)


def read_requests(store: LargeStore, count: int, seed: int) -> dict[str, list[Request]]:
    rng = random.Random(f"{seed}-reads")  # noqa: S311 - a reproducible workload
    specialists = store.info["specialists"]

    def some_id() -> str:
        return specialist_id(rng.randrange(specialists))

    return {
        "get_specialist": [("GET", f"/api/v1/specialists/{some_id()}", None) for _ in range(count)],
        "list_specialists_filtered": [
            (
                "GET",
                f"/api/v1/specialists?status=busy&limit=50&offset={rng.randrange(0, 2_000, 50)}",
                None,
            )
            for _ in range(count)
        ],
        "events_by_type_rare": [("GET", f"/api/v1/events?type={RARE}&limit=100", None)] * 10,
        "events_by_type_common": [("GET", f"/api/v1/events?type={COMMON}&limit=100", None)] * 10,
        "stream_events": [
            ("GET", f"/api/v1/streams/{Specialist.create_id(some_id())}/events", None)
            for _ in range(count)
        ],
    }


def http_reads(store: LargeStore, scale: Scale) -> dict[str, Any]:
    folder = SCRATCH / "reads"
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(store.path),
        "FLEET_HEARTBEAT_TIMEOUT": TEN_YEARS,
    }
    results: dict[str, Any] = {}
    with gunicorn(FLEET_APP, env, folder / "fleet.log") as server:
        for name, requests in read_requests(store, 5_000, scale.seed).items():
            loadgen.max_rate(server.url, requests[:200], 1, folder, connections=1)  # warm-up
            run = loadgen.max_rate(server.url, requests, scale.read_seconds, folder, connections=1)
            results[name] = run
            lat = run["latency"]
            log(
                f"  {name:26} p50 {lat['p50_ms']:.2f} / p95 {lat['p95_ms']:.2f} / "
                f"p99 {lat['p99_ms']:.2f} ms, {run['requests_per_s']:,.0f} req/s, "
                f"{run['errors']} errors"
            )
        results["worker"] = {"peak_rss_mb": server.peak_rss_mb(), "rss_mb_at_end": server.rss_mb()}
    # The floor on this machine now: a bare Flask route, same server, same client.
    ceiling_env = {"SQLITE_DBNAME": str(folder / "ceiling.sqlite3")}
    with gunicorn(CEILING_APP, ceiling_env, folder / "ceiling.log") as server:
        requests: list[Request] = [("GET", "/health", None)] * 10
        loadgen.max_rate(server.url, requests, 1, folder, connections=1)
        run = loadgen.max_rate(server.url, requests, scale.read_seconds, folder, connections=1)
        results["ceiling_noop"] = run
        log(f"  ceiling: bare Flask GET    p99 {run['latency']['p99_ms']:.2f} ms")
    return results


def queries(fleet: Any, scale: Scale) -> list[dict[str, Any]]:
    """``fleet.events(type=…, limit=100, offset=…)`` and its SQL alone, at growing offsets."""
    from application.store.query import EventFilter

    recorder: Any = fleet.app.recorder
    totals = {t: fleet.events(type=t, limit=1)[1] for t in (RARE, COMMON)}
    cases = [(RARE, 0), (RARE, totals[RARE] // 2), (COMMON, 0)]
    cases += [(COMMON, min(10_000, totals[COMMON] // 4)), (COMMON, totals[COMMON] // 2)]
    results = []
    for event_type, offset in cases:
        flt = EventFilter(types=(event_type,))
        api = timed(
            lambda t=event_type, o=offset: fleet.events(type=t, limit=100, offset=o),
            scale.query_runs,
        )
        sql = timed(lambda f=flt, o=offset: recorder.select_event_page(f, 100, o), scale.query_runs)
        results.append(
            {
                "type": event_type,
                "matching": totals[event_type],
                "offset": offset,
                "fleet_events": api,
                "select_event_page": sql,
            }
        )
        log(
            f"  fleet.events type={event_type} offset {offset:,}: p50 {api['p50_ms']:.2f}, "
            f"p99 {api['p99_ms']:.2f} ms (SQL p50 {sql['p50_ms']:.2f} ms)"
        )
    return results


KEYSET_DEPTHS = (0.0, 0.25, 0.5, 0.75, 0.99)


def keyset_pages(fleet: Any, scale: Scale) -> list[dict[str, Any]]:
    """``fleet.events(type=COMMON, after=…, limit=100)`` at growing depths of the log: the
    page is an index range read, and its total must not grow with what lies past ``after``."""
    head = fleet.head_position()
    results = []
    for depth in KEYSET_DEPTHS:
        after = int(head * depth)
        total = fleet.events(type=COMMON, after=after, limit=1)[1]
        api = timed(lambda a=after: fleet.events(type=COMMON, after=a, limit=100), scale.query_runs)
        results.append({"type": COMMON, "after": after, "matching": total, "fleet_events": api})
        log(
            f"  fleet.events type={COMMON} after {after:,}: p50 {api['p50_ms']:.2f}, "
            f"p99 {api['p99_ms']:.2f} ms ({total:,} past it)"
        )
    return results


def run(scale: Scale) -> dict[str, Any]:
    from application.fleet import Fleet

    store = large_store(scale.store_events, scale.seed)
    log(f"HTTP reads on {store.info['events']:,} events, one connection")
    http = http_reads(store, scale)
    log(f"in-process event queries, {scale.query_runs} runs each")
    fleet = Fleet(env={"SQLITE_DBNAME": str(store.path), "FLEET_PROJECTOR": "external"})
    try:
        return {
            "store": store.info,
            "http": http,
            "queries": queries(fleet, scale),
            "keyset": keyset_pages(fleet, scale),
        }
    finally:
        fleet.close()
