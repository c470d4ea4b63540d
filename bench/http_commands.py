"""HTTP commands under load, next to the Flask ceiling, on SQLite and on PostgreSQL.

For each backend, in one run, under the same worker count throughout: ``make run``'s on
SQLite (one per core, at most 4), one on PostgreSQL (as its target names):

1. the ceiling (``bench.ceiling``) under the same gunicorn command: ``POST /noop``,
   ``POST /insert`` (one raw event row + index row a request), the same insert taking turns,
   ``POST /library-save`` (the library's bare save) and ``POST /library-register`` (a
   registration with the library alone: lookup and save), at wrk's full speed;
2. Fleet (``wsgi:app``, embedded projections, a fresh store with ``preload`` specialists and
   in-progress sorties), for register, heartbeat, create sortie and sortie PATCH: the maximum
   rate (wrk), then the latency at half that rate (constant-rate client);
3. the workers' CPU share and their peak RSS over the whole session.

On PostgreSQL, also ``make run-postgres`` as it serves (``postgres_scaled``): the ceiling under
the same 4-worker gunicorn, then Fleet's 4 workers with ``FLEET_PROJECTOR=external`` beside
one ``fleet projector --sweep-every 5``; the maximum rate of each route, and the CPU share of
the workers together and of the projector.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.common import SCALED_KEY, SCALED_WORKERS, SCRATCH, Scale, log
from bench.loadgen import Request
from bench.server import (
    BARE_ROUTE_APP,
    CEILING_APP,
    FLEET_APP,
    Server,
    cpu_seconds,
    gunicorn,
    postgres_available,
    postgres_schema,
    projector,
)
from bench.workloads import CAPABILITIES, preload
from domain.base import PRIORITIES
from domain.specialist import LIVE

COMMANDS = ("register", "heartbeat", "create_sortie", "sortie_patch")


# Seeded request lists


def registrations(label: str, count: int, rng: random.Random, path: str) -> list[Request]:
    return [
        (
            "POST",
            path,
            {
                "specialist_id": f"{label}-{n:07d}",
                "name": f"Agent {n}",
                "capabilities": rng.sample(CAPABILITIES, rng.randint(1, 3)),
                "metadata": {"pool": f"pool-{n % 16}"},
            },
        )
        for n in range(count)
    ]


def heartbeats(ids: list[str], count: int, rng: random.Random) -> list[Request]:
    return [
        (
            "PATCH",
            f"/api/v1/specialists/{rng.choice(ids)}/heartbeat",
            {"status": rng.choice(LIVE), "metrics": {"tokens": rng.randint(0, 200_000)}},
        )
        for _ in range(count)
    ]


def new_sorties(count: int, rng: random.Random) -> list[Request]:
    return [
        (
            "POST",
            "/api/v1/sorties",
            {
                "description": f"Sortie {n}: change module {rng.randint(1, 500)}",
                "priority": rng.choice(PRIORITIES),
                "metadata": {"batch": n // 100},
            },
        )
        for n in range(count)
    ]


def sortie_patches(ids: list[str], count: int, rng: random.Random) -> list[Request]:
    return [
        ("PATCH", f"/api/v1/sorties/{rng.choice(ids)}", {"progress": rng.randint(1, 99)})
        for _ in range(count)
    ]


def requests_for(
    command: str, phase: str, count: int, ids: dict[str, list[str]], seed: int
) -> list[Request]:
    rng = random.Random(f"{seed}-{command}-{phase}")  # noqa: S311 - a reproducible workload
    makers: dict[str, Callable[[], list[Request]]] = {
        "register": lambda: registrations(f"{phase}", count, rng, "/api/v1/specialists/register"),
        "heartbeat": lambda: heartbeats(ids["specialists"], count, rng),
        "create_sortie": lambda: new_sorties(count, rng),
        "sortie_patch": lambda: sortie_patches(ids["sorties"], count, rng),
    }
    return makers[command]()


# Runs


def request_budget(scale: Scale) -> int:
    """Requests generated per run: more than the fastest server sends in the time."""
    return int(3_000 * scale.http_seconds)


def latency_seconds(rate: float, scale: Scale) -> float:
    """How long a constant-rate run lasts: long enough for ``scale.latency_requests``, so
    that its p99 rests on at least 50 requests slower than it (at 800 requests, the p99 was
    the 8th-slowest and moved two or three times between runs)."""
    return max(scale.http_seconds, scale.latency_requests / rate)


# bench.ceiling's routes by their results' names (``insert_queued`` is ``/insert-queued``):
# ``insert`` is the baseline of the targets; the queued insert, the library's bare save and
# its registration command are measured beside it.
CEILING_ROUTES = ("noop", "insert", "insert_queued", "library_save", "library_register")


def ceiling(
    env: dict[str, str],
    scale: Scale,
    folder: Path,
    workers: int | None = None,
    half_rate: bool = True,
) -> dict[str, Any]:
    """The ceiling's maximum rates, then (``half_rate``) the insert latency at half its rate."""
    count = request_budget(scale) * 2
    results: dict[str, Any] = {}
    with gunicorn(CEILING_APP, env, folder / "ceiling.log", workers) as server:
        for route in CEILING_ROUTES:
            rng = random.Random(f"{scale.seed}-ceiling-{route}")  # noqa: S311
            requests = registrations(route, count, rng, "/" + route.replace("_", "-"))
            loadgen.max_rate(server.url, requests[:500], 1, folder)  # warm-up
            run = loadgen.max_rate(server.url, requests, scale.http_seconds, folder)
            if run["errors"]:  # a ceiling that failed requests measured something else
                raise RuntimeError(f"ceiling {route}: {run['errors_by_kind']} (see {folder})")
            results[route] = run
            log(f"  ceiling {route:13} {describe(run)}")
        if not half_rate:
            return results
        # The same constant-rate client at half the insert ceiling: the latency floor here.
        half = results["insert"]["requests_per_s"] / 2
        seconds = latency_seconds(half, scale)
        requests = registrations("half", int(half * seconds) + 1, rng, "/insert")
        results["insert_half"] = loadgen.at_rate(server.url, requests, half, seconds)
        log(f"  ceiling insert at {half:,.0f}/s: {describe(results['insert_half'])}")
    return results


# The preloaded specialists are silent between the phases that reach them: with the usual
# heartbeat timeout, the server's sweep would release their sorties during a long run and
# the sortie PATCHes would meet 409s.
QUIET_FOR_TEN_YEARS = {"FLEET_HEARTBEAT_TIMEOUT": str(10 * 365 * 24 * 3600)}


def fleet_commands(
    env: dict[str, str], scale: Scale, folder: Path, workers: int | None = None
) -> dict[str, Any]:
    env = {**env, **QUIET_FOR_TEN_YEARS}
    log(f"  preloading {scale.preload:,} specialists and in-progress sorties")
    ids = preload(env, scale.preload)
    count = request_budget(scale)
    results: dict[str, Any] = {}
    with gunicorn(FLEET_APP, env, folder / "fleet.log", workers) as server:
        warm = requests_for("register", "warmup", 500, ids, scale.seed)
        loadgen.max_rate(server.url, warm, 1, folder)
        cpu_before, began = server.cpu_seconds(), time.perf_counter()
        for command in COMMANDS:
            maximum = command_max(server, command, count, ids, scale, folder)
            half = maximum["requests_per_s"] / 2
            seconds = latency_seconds(half, scale)
            steady = loadgen.at_rate(
                server.url,
                requests_for(command, "half", int(half * seconds) + 1, ids, scale.seed),
                half,
                seconds,
            )
            results[command] = {"max": maximum, "half": steady}
            log(f"  fleet {command:13} max {describe(maximum)}")
            log(f"  fleet {command:13} at {half:,.0f}/s: {describe(steady)}")
        results["worker"] = worker_figures(server, cpu_before, began)
        results["workers"] = len(server.workers)
    results["bare_route"] = bare_route(env, scale, folder, ids, workers)
    return results


# The commands measured behind bench.bare_route's bare Flask routes.
BARE_COMMANDS = ("register", "heartbeat")


def bare_route(
    env: dict[str, str],
    scale: Scale,
    folder: Path,
    ids: dict[str, list[str]],
    workers: int | None = None,
) -> dict[str, Any]:
    """Register and heartbeat behind bare Flask routes (``bench.bare_route``), on the same
    store after Fleet's own runs: their maximum rates, the command without Fleet's web
    layer. The store has grown by Fleet's runs, so this errs against the bare routes."""
    count = request_budget(scale)
    results: dict[str, Any] = {}
    with gunicorn(BARE_ROUTE_APP, env, folder / "bare_route.log", workers) as server:
        warm = requests_for("register", "bare-warmup", 500, ids, scale.seed)
        loadgen.max_rate(server.url, warm, 1, folder)
        for command in BARE_COMMANDS:
            requests = requests_for(command, "bare", count, ids, scale.seed)
            run = loadgen.max_rate(server.url, requests, scale.http_seconds, folder)
            if run["errors"]:  # a bare route that failed requests measured something else
                raise RuntimeError(f"bare route {command}: {run['errors_by_kind']} ({folder})")
            results[command] = run
            log(f"  bare route {command:8} max {describe(run)}")
    return results


def command_max(
    server: Server,
    command: str,
    count: int,
    ids: dict[str, list[str]],
    scale: Scale,
    folder: Path,
) -> dict[str, Any]:
    """wrk at full speed on one command, with the request list of its "max" phase."""
    requests = requests_for(command, "max", count, ids, scale.seed)
    return loadgen.max_rate(server.url, requests, scale.http_seconds, folder)


EXTERNAL_PROJECTOR = {"FLEET_PROJECTOR": "external", "FLEET_SWEEP_INTERVAL": "0"}


def fleet_with_projector(
    env: dict[str, str], scale: Scale, folder: Path, workers: int
) -> dict[str, Any]:
    """Fleet as ``make run-postgres`` serves it: the maximum rate of each command.

    The store is preloaded as for ``fleet_commands`` (which also upgrades it, as the target's
    ``fleet db upgrade`` does). The projector gets the store's env, the workers also the
    target's ``FLEET_PROJECTOR=external FLEET_SWEEP_INTERVAL=0``: writes answer without
    applying projections, and the projector alone sweeps. No half-rate runs: this shape is
    measured for what it can take, next to a ceiling on as many workers.
    """
    env = {**env, **QUIET_FOR_TEN_YEARS}  # the projector's sweep must spare them too
    log(f"  preloading {scale.preload:,} specialists and in-progress sorties")
    ids = preload(env, scale.preload)
    count = request_budget(scale)
    results: dict[str, Any] = {}
    served = {**env, **EXTERNAL_PROJECTOR}
    with (
        projector(env, folder / "projector.log") as projector_process,
        gunicorn(FLEET_APP, served, folder / "fleet.log", workers) as server,
    ):
        warm = requests_for("register", "warmup", 500, ids, scale.seed)
        loadgen.max_rate(server.url, warm, 1, folder)
        cpu_before, began = server.cpu_seconds(), time.perf_counter()
        projector_before = cpu_seconds(projector_process)
        for command in COMMANDS:
            maximum = command_max(server, command, count, ids, scale, folder)
            results[command] = {"max": maximum}
            log(f"  fleet {command:13} max {describe(maximum)}")
        results["worker"] = worker_figures(server, cpu_before, began)
        elapsed = time.perf_counter() - began
        results["projector"] = {
            "cpu_share": round((cpu_seconds(projector_process) - projector_before) / elapsed, 3)
        }
    log(
        f"  {workers} workers used {results['worker']['cpu_share']:.0%} of a core together, "
        f"the projector {results['projector']['cpu_share']:.0%}"
    )
    return results


def postgres_scaled(scale: Scale, folder: Path, workers: int = SCALED_WORKERS) -> dict[str, Any]:
    """``make run-postgres`` and its ceiling, each on a fresh schema.

    The single-worker runs say what one process makes of a request; this says what an
    operator gets from the PostgreSQL deployment the docs recommend, where the workers share
    the cores with each other, the projector and the database.
    """
    log(f"HTTP commands on postgres, {workers} workers: the Flask ceiling")
    with postgres_schema(f"ceiling{workers}") as env:
        ceiling_figures = ceiling(env, scale, folder, workers, half_rate=False)
    log(f"HTTP commands on postgres, {workers} workers: Fleet and its projector")
    with postgres_schema(f"fleet{workers}") as env:
        fleet_figures = fleet_with_projector(env, scale, folder, workers)
    log(f"HTTP commands on postgres, {workers} workers: the Flask insert again")
    with postgres_schema(f"ceiling{workers}") as env:
        ceiling_figures["insert_after"] = insert_again(env, scale, folder, workers)
    return {"ceiling": ceiling_figures, "fleet": fleet_figures, "workers": workers}


def worker_figures(server: Server, cpu_before: float, began: float) -> dict[str, Any]:
    return {
        "cpu_share": round((server.cpu_seconds() - cpu_before) / (time.perf_counter() - began), 3),
        "peak_rss_mb": server.peak_rss_mb(),
        "rss_mb_at_end": server.rss_mb(),
    }


def describe(run: dict[str, Any]) -> str:
    rate = run.get("requests_per_s", run.get("achieved_per_s"))
    lat = run["latency"]
    return (
        f"{rate:,.0f} req/s, p50 {lat['p50_ms']:.1f} / p95 {lat['p95_ms']:.1f} / "
        f"p99 {lat['p99_ms']:.1f} ms, {run['errors']} errors, "
        f"load generator {run['loadgen_cpu_share']:.0%} of a core"
    )


def insert_again(
    env: dict[str, str], scale: Scale, folder: Path, workers: int | None = None
) -> dict[str, Any]:
    """The ceiling's insert once more, after Fleet's routes: the targets' baseline is the mean
    of its two runs, since the host's speed drifts over the minutes between them."""
    count = request_budget(scale) * 2
    with gunicorn(CEILING_APP, env, folder / "ceiling.log", workers) as server:
        rng = random.Random(f"{scale.seed}-ceiling-insert-after")  # noqa: S311
        requests = registrations("after", count, rng, "/insert")
        loadgen.max_rate(server.url, requests[:500], 1, folder)  # warm-up
        run = loadgen.max_rate(server.url, requests, scale.http_seconds, folder)
    log(f"  ceiling insert again  {describe(run)}")
    return run


def backend_run(
    backend: str,
    ceiling_env: dict[str, str],
    fleet_env: dict[str, str],
    scale: Scale,
    folder: Path,
    workers: int | None = None,
) -> dict[str, Any]:
    """The ceiling, Fleet and the ceiling's insert again, all under ``workers`` workers
    (``make run``'s count when None)."""
    log(f"HTTP commands on {backend}: the Flask ceiling")
    ceiling_figures = ceiling(ceiling_env, scale, folder, workers)
    log(f"HTTP commands on {backend}: Fleet")
    fleet_figures = fleet_commands(fleet_env, scale, folder, workers)
    log(f"HTTP commands on {backend}: the Flask insert again")
    ceiling_figures["insert_after"] = insert_again(ceiling_env, scale, folder, workers)
    return {"ceiling": ceiling_figures, "fleet": fleet_figures}


def sqlite_env(path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}


def run(scale: Scale) -> dict[str, Any]:
    loadgen.require_wrk()
    folder = SCRATCH / "http" / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "preload": scale.preload,
        "seconds": scale.http_seconds,
        "latency_requests": scale.latency_requests,
    }
    results["sqlite"] = backend_run(
        "sqlite",
        sqlite_env(folder / "ceiling.sqlite3"),
        sqlite_env(folder / "fleet.sqlite3"),
        scale,
        folder / "sqlite",
    )
    unavailable = postgres_available()
    if unavailable:
        log(f"PostgreSQL unavailable, skipped: {unavailable}")
        results["postgres"] = {"skipped": unavailable}
        return results
    with postgres_schema("ceiling") as ceiling_env, postgres_schema("fleet") as fleet_env:
        # One worker, as the PostgreSQL target names; make run-postgres's four follow.
        results["postgres"] = backend_run(
            "postgres", ceiling_env, fleet_env, scale, folder / "postgres", workers=1
        )
    results[SCALED_KEY] = postgres_scaled(scale, folder / SCALED_KEY)
    return results
