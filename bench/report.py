"""Targets judged from ``results.json``, and ``BENCHMARKS.md`` rendered from it.

Every target is a ratio to a figure of the same run, or a latency measured in it; the
markdown is a pure function of the JSON (plus ``bench/findings.md``, the hand-written
profiling notes), so ``python -m bench --render`` redraws it without rerunning anything.
"""

from __future__ import annotations

from typing import Any

from bench.common import BENCH, SCALED_KEY
from bench.projections import INTERLEAVED_AGENTS

COMMAND_LABELS = {
    "register": "register (`POST /specialists/register`)",
    "heartbeat": "heartbeat (`PATCH /specialists/{id}/heartbeat`)",
    "create_sortie": "create sortie (`POST /sorties`)",
    "sortie_patch": "sortie PATCH (`PATCH /sorties/{id}`, progress)",
}
CEILING_LABELS = {
    "noop": "Flask noop",
    "insert": "Flask insert",
    "insert_after": "Flask insert, again after Fleet's routes",
    "insert_queued": "Flask insert, threads taking turns",
    "library_save": "Flask + the library's bare save",
    "library_register": "Flask + a registration with the library alone (lookup, save)",
}
READ_LABELS = {
    "ceiling_noop": "ceiling: bare Flask `GET /health`, same server",
    "get_specialist": "GET one specialist",
    "list_specialists_filtered": "filtered list page (`?status=busy&limit=50&offset=…`)",
    "events_by_type_rare": "`GET /events?type=specialist_failed&limit=100` (rare)",
    "events_by_type_common": "`GET /events?type=specialist_active&limit=100` (common)",
    "stream_events": "one stream's events (`GET /streams/{id}/events`)",
}
READ_LIMITS_MS = {
    "get_specialist": 5.0,
    "list_specialists_filtered": 5.0,
    "events_by_type_rare": 10.0,
    "events_by_type_common": 10.0,
}


def insert_ceiling(ceiling: dict[str, Any]) -> float:
    """The baseline of the throughput targets: the insert ceiling, as the mean of its runs
    before and after Fleet's routes when both were measured (the host's speed drifts over
    the minutes between them; a run from before the second measure has only the first)."""
    runs = [ceiling[r]["requests_per_s"] for r in ("insert", "insert_after") if r in ceiling]
    return sum(runs) / len(runs)


def ceiling_words(ceiling: dict[str, Any]) -> str:
    """The baseline as a figure says it: with its two runs when there were two."""
    words = f"ceiling {insert_ceiling(ceiling):,.0f} req/s"
    if "insert_after" in ceiling:
        before = ceiling["insert"]["requests_per_s"]
        after = ceiling["insert_after"]["requests_per_s"]
        words += f" (before {before:,.0f}, after {after:,.0f})"
    return words


def target(name: str, figure: str, ratio: float, met: bool, limit: str) -> dict[str, Any]:
    return {"target": name, "figure": figure, "ratio": round(ratio, 3), "limit": limit, "met": met}


# The share of the ceiling each backend's commands must reach: SQLite as `make run` serves
# it, PostgreSQL under one worker, and `make run-postgres`'s workers with their projector.
THROUGHPUT_SHARE = {"sqlite": 0.5, "postgres": 0.35, SCALED_KEY: 0.5}


def judge(sections: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target and measured case."""
    rows: list[dict[str, Any]] = []
    http = sections.get("http_commands", {})
    for backend in ("sqlite", "postgres"):
        figures = http.get(backend, {})
        if "fleet" not in figures:
            continue
        ceiling = insert_ceiling(figures["ceiling"])
        share = THROUGHPUT_SHARE[backend]
        for command in COMMAND_LABELS:
            run = figures["fleet"][command]
            rate = run["max"]["requests_per_s"]
            rows.append(
                target(
                    f"command throughput, {command}, {backend}",
                    f"{rate:,.0f} req/s vs {ceiling_words(figures['ceiling'])}",
                    rate / ceiling,
                    rate >= share * ceiling,
                    f"≥ {share} x Flask + raw insert",
                )
            )
        for command in COMMAND_LABELS:
            half = figures["fleet"][command]["half"]
            p99 = half["latency"]["p99_ms"]
            floor = figures["ceiling"].get("insert_half", {}).get("latency", {}).get("p99_ms")
            rows.append(
                target(
                    f"p99 at half the maximum rate, {command}, {backend}",
                    f"p99 {p99:.1f} ms at {half['achieved_per_s']:,.0f} req/s "
                    f"over {half['requests']:,} requests"
                    + (f" (ceiling at half its rate: {floor:.1f} ms)" if floor else ""),
                    p99 / 10,
                    p99 <= 10,
                    "p99 ≤ 10 ms (ratio: p99 / 10 ms)",
                )
            )
    rows += scaled_targets(http.get(SCALED_KEY, {}))
    rates = sections.get("writes", {}).get("rates", {})
    if {"fleet_command_embedded_projections", "library_application_save"} <= rates.keys():
        command = rates["fleet_command_embedded_projections"]["us_per_write"]
        save = rates["library_application_save"]["us_per_write"]
        lookup = rates.get("library_register_command", {}).get("us_per_write")
        replayed = rates.get("fleet_statements_replayed_bare", {}).get("us_per_write")
        rows.append(
            target(
                "embedded command in process, sqlite",
                f"{command:,.0f} µs vs the library's bare save {save:,.0f} µs per write"
                + (
                    f" (the library's own lookup and save: {lookup:,.0f} µs, {lookup / save:.2f} x)"
                    if lookup
                    else ""
                )
                + (
                    f"; the command's own statements replayed with bare sqlite3: "
                    f"{replayed:,.0f} µs, {replayed / save:.2f} x"
                    if replayed
                    else ""
                ),
                command / save,
                command <= 2 * save,
                "≤ 2 x the library's `save()` (ratio: command / save)",
            )
        )
    reads = sections.get("reads", {})
    events = reads.get("store", {}).get("events", 0)
    for name, limit in READ_LIMITS_MS.items():
        if name not in reads.get("http", {}):
            continue
        p99 = reads["http"][name]["latency"]["p99_ms"]
        floor = reads["http"].get("ceiling_noop", {}).get("latency", {}).get("p99_ms")
        rows.append(
            target(
                f"read p99, {READ_LABELS[name]}",
                f"p99 {p99:.2f} ms with {events:,} events"
                + (f" (bare Flask GET: {floor:.2f} ms)" if floor else ""),
                p99 / limit,
                p99 <= limit,
                f"p99 ≤ {limit:g} ms (ratio: p99 / limit)",
            )
        )
    keyset = reads.get("keyset", [])
    if keyset:
        deepest = max(keyset, key=lambda q: q["fleet_events"]["p99_ms"])
        p99 = deepest["fleet_events"]["p99_ms"]
        rows.append(
            target(
                "keyset paging, `fleet.events(type=…, after=…)`, slowest depth",
                f"p99 {p99:.2f} ms after {deepest['after']:,} of {events:,} events "
                f"({len(keyset)} depths)",
                p99 / 10,
                p99 <= 10,
                "p99 ≤ 10 ms at any depth (ratio: p99 / 10 ms)",
            )
        )
    for backend, figures in sections.get("idempotency", {}).items():
        if not isinstance(figures, dict):  # the section's own "elapsed_seconds"
            continue
        for name, row in figures.items():
            if not isinstance(row, dict):
                continue
            ratio = row["keyed_vs_unkeyed"]
            rows.append(
                target(
                    f"Idempotency-Key cost, {name}, {backend}",
                    f"keyed {row['keyed_us_per_write']:,.0f} µs vs unkeyed "
                    f"{row['unkeyed_us_per_write']:,.0f} µs per write",
                    ratio,
                    ratio <= 1.15,
                    "keyed ≤ 1.15 x unkeyed",
                )
            )
    lengths = sections.get("history", {}).get("lengths", [])
    if len(lengths) > 1:
        short, long = lengths[0], lengths[-1]
        ratio = long["with_snapshots_ms"] / short["with_snapshots_ms"]
        rows.append(
            target(
                "aggregate load with snapshots, flat in history length",
                f"{long['events']:,} events {long['with_snapshots_ms']:.3f} ms vs "
                f"{short['events']:,} events {short['with_snapshots_ms']:.3f} ms",
                ratio,
                ratio <= 2,
                "longest ≤ 2 x shortest",
            )
        )
    projections = sections.get("projections", {})
    paired = projections.get("rebuild_baseline_events_per_s", {})
    for name, value in projections.get("rebuild_events_per_s", {}).items():
        base = paired.get(name, projections.get("baseline_decoded_read_events_per_s"))
        rows.append(
            target(
                f"projection rebuild, {name}",
                f"{value:,} events/s vs {base:,} events/s",
                value / base,
                value >= 0.4 * base,
                "≥ 0.4 x the library's decoded read",
            )
        )
    rows += work_loop_targets(sections.get("work_loop", {}))
    console = sections.get("console", {})
    if "render" in console:
        p50 = console["render"]["p50_ms"]
        rows.append(
            target(
                "console overview render (server-side)",
                f"p50 {p50:.1f} ms, p95 {console['render']['p95_ms']:.1f} ms with "
                f"{console['specialists']:,} specialists and {console['sorties']:,} sorties",
                p50 / console["limit_ms"],
                p50 <= console["limit_ms"],
                f"≤ {console['limit_ms']:g} ms (ratio: p50 / limit)",
            )
        )
    peaks = worker_peaks(sections)
    if peaks:
        where, peak = max(peaks.items(), key=lambda item: item[1])
        rows.append(
            target(
                "worker peak RSS under load",
                f"{peak:.0f} MB ({where})",
                peak / 150,
                peak <= 150,
                "≤ 150 MB (ratio: peak / 150 MB)",
            )
        )
    return rows


def scaled_targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """`make run-postgres` against the ceiling under as many workers: the same 0.5 target as
    one worker, now that the workers, the projector and PostgreSQL share the cores."""
    if "fleet" not in figures:  # results from before this run existed, or no PostgreSQL
        return []
    workers = figures["workers"]
    ceiling = insert_ceiling(figures["ceiling"])
    rows = []
    for command in COMMAND_LABELS:
        rate = figures["fleet"][command]["max"]["requests_per_s"]
        rows.append(
            target(
                f"command throughput, {command}, postgres, {workers} workers + projector",
                f"{rate:,.0f} req/s vs {ceiling_words(figures['ceiling'])}",
                rate / ceiling,
                rate >= THROUGHPUT_SHARE[SCALED_KEY] * ceiling,
                f"≥ {THROUGHPUT_SHARE[SCALED_KEY]} x Flask + raw insert, {workers} workers",
            )
        )
    return rows


def work_loop_targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One server holding idle waiters: /health, the write rate, and wake-up latency."""
    rows = []
    for backend in ("sqlite", "postgres"):
        if backend not in data:
            continue
        run = data[backend]
        waiters = data["waiters"]
        p99 = run["with_waiters"]["health"]["p99_ms"]
        rows.append(
            target(
                f"/health p99 beside {waiters} waiters, {backend}",
                f"p99 {p99:.1f} ms (without waiters: {run['baseline']['health']['p99_ms']:.1f} ms)",
                p99 / 50,
                p99 < 50,
                "p99 < 50 ms (ratio: p99 / 50 ms)",
            )
        )
        rows.append(
            target(
                f"write rate beside {waiters} waiters, {backend}",
                f"{run['with_waiters']['writes_per_s']:,.0f} writes/s vs "
                f"{run['baseline']['writes_per_s']:,.0f} writes/s without",
                run["write_ratio"],
                run["write_ratio"] >= 0.8,
                "≥ 0.8 x without waiters",
            )
        )
        for where in ("same_process", "other_process"):
            wake = run[f"wake_{where}"]
            rows.append(
                target(
                    f"wake-up p99, written by the {where.replace('_', ' ')}, {backend}",
                    f"p99 {wake['p99_ms']:.1f} ms from the write sent "
                    f"({wake['after_the_write_answered']['p99_ms']:.1f} ms from its answer)",
                    wake["p99_ms"] / 100,
                    wake["p99_ms"] <= 100 and wake["missed"] == 0,
                    "p99 ≤ 100 ms (ratio: p99 / 100 ms)",
                )
            )
    return rows


def worker_peaks(sections: dict[str, Any]) -> dict[str, float]:
    peaks = {}
    for backend in ("sqlite", "postgres", SCALED_KEY):
        worker = sections.get("http_commands", {}).get(backend, {}).get("fleet", {}).get("worker")
        if worker:  # with several workers, the largest one's peak
            peaks[f"commands on {backend.replace('_', ' ')}"] = worker["peak_rss_mb"]
    worker = sections.get("reads", {}).get("http", {}).get("worker")
    if worker:
        peaks["reads on the large store"] = worker["peak_rss_mb"]
    return peaks


# Markdown


def table(header: list[str], rows: list[list[Any]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def lat(run: dict[str, Any]) -> str:
    figures = run["latency"]
    return f"{figures['p50_ms']:.1f} / {figures['p95_ms']:.1f} / {figures['p99_ms']:.1f}"


def measured_at_lines(meta: dict[str, Any]) -> list[str]:
    """A paragraph naming each commit's sections, when a run kept earlier sections."""
    by_commit: dict[str, list[str]] = {}
    for name, commit in (meta.get("measured_at") or {}).items():
        by_commit.setdefault(commit, []).append(name)
    if len(by_commit) < 2:
        return []
    parts = [f"`{commit}` ({', '.join(names)})" for commit, names in by_commit.items()]
    return [
        f"This run (`{meta['argv']}`) measured only some sections; they were measured at "
        + " and at ".join(parts)
        + ".",
        "",
    ]


def probe_sentence(meta: dict[str, Any]) -> str:
    """How fast the host ran Python at the run's start and end (``interpreter_probe``)."""
    probe = meta.get("interpreter_probe_s")
    if not probe:
        return ""
    return (
        f" A 10M-step Python loop took {' s at the start, '.join(str(p) for p in probe)} s "
        "at the end (0.21-0.46 s in this host's quiet phases, 0.6-1.2 s in its slow ones, "
        "when even the ratios fall)."
    )


def render(results: dict[str, Any], plots: str = "bench/plots") -> str:
    meta, sections = results["meta"], results["sections"]
    env = meta["environment"]
    out = [
        "# Benchmarks",
        "",
        f"Produced by `{meta['command']}` at commit `{meta['commit']}`"
        + (" (with uncommitted changes)" if meta.get("dirty") else "")
        + f", {meta['finished_at']}, in {meta['seconds'] / 60:.1f} minutes ({meta['scale']['name']}"
        " scale). Regenerate with `make bench` (or `make bench-quick`, small sizes, written to "
        "`bench/out/quick/`); `bench/results.json` holds every figure below.",
        "",
        *measured_at_lines(meta),
        f"Machine: {env['cpus']} CPUs, {env['platform']}, Python {env['python']}, SQLite "
        f"{env['sqlite']}, eventsourcing {env['eventsourcing']}, gunicorn {env['gunicorn']}, "
        f"Flask {env['flask']}, {env['wrk']}; load average at the start "
        f"{', '.join(str(x) for x in env['load_average_at_start'])}. Absolute times on these "
        "shared machines drift by tens of percent between runs, so each figure stands next to a "
        "baseline measured in the same run, and the targets are ratios." + probe_sentence(meta),
        "",
        "## Targets",
        "",
    ]
    rows = results["targets"]
    out += table(
        ["target", "figure", "ratio", "limit", "met"],
        [[r["target"], r["figure"], f"{r['ratio']:.2f}", r["limit"], yes(r["met"])] for r in rows],
        "llrll",
    )
    met = sum(r["met"] for r in rows)
    out += [f"{met} of {len(rows)} met.", ""]
    images = {
        "http_commands": ("command latency at half the maximum rate", "http_latency.png"),
        "reads": ("read latency", "read_latency.png"),
        "history": ("load time against history length", "history.png"),
    }
    out += [f"![{alt}]({plots}/{file})" for name, (alt, file) in images.items() if name in sections]
    out += [""]
    renderers = {
        "http_commands": http_section,
        "writes": writes_section,
        "reads": reads_section,
        "history": history_section,
        "projections": projections_section,
        "compaction": compaction_section,
        "work_loop": work_loop_section,
        "console": console_section,
    }
    for name, renderer in renderers.items():
        if name in sections:
            out += renderer(sections[name])
    findings = BENCH / "findings.md"
    if findings.exists():
        out += [findings.read_text().rstrip(), ""]
    return "\n".join(out).rstrip() + "\n"


def yes(flag: bool) -> str:
    return "**met**" if flag else "**not met**"


def http_section(data: dict[str, Any]) -> list[str]:
    out = [
        "## HTTP commands",
        "",
        "gunicorn exactly as `make run` starts it (`gunicorn -c gunicorn.conf.py`: gthread "
        "workers of 256 threads; on SQLite `make run`'s worker count, one per core up to 4, for "
        "the ceiling and Fleet alike; on PostgreSQL one worker), Fleet in its default embedded "
        "mode (each write's projections are applied before the response). Maximum rate: "
        "Debian's wrk, one thread, 8 keep-alive "
        "connections, "
        f"{data['seconds']:g} s, replaying seeded request files (unique ids per request). Latency "
        "at half the maximum: a constant-rate client that sends request *i* at *start + i/rate* "
        "and times it from that scheduled moment (no coordinated omission; Debian's wrk cannot "
        "hold a rate), for as long as it takes to send at least "
        f"{data.get('latency_requests', 0):,} requests. Each Fleet store starts fresh with "
        f"{data['preload']:,} specialists and in-progress sorties for the heartbeats and "
        "PATCHes. Ceiling: a bare Flask app under the same gunicorn command, `POST /noop` "
        "(parse JSON, answer), `POST /insert` (also one raw event row + index row in one "
        "transaction), the same insert with the threads taking turns, `POST /library-save` "
        "(a one-event aggregate saved with the library's bare `Application.save()`, taking "
        "turns on SQLite as Fleet's commands do) and `POST /library-register` (a whole "
        "registration with the library alone: the stream looked up, then one event saved, "
        "taking turns on both backends as Fleet's commands do; the least the library lets a "
        "command cost). Fleet's command behind a bare Flask route (`bench.bare_route`: the "
        "same `Fleet` on the same store after Fleet's runs, without Fleet's web layer of "
        "flask-smorest, webargs, request ids, guards, metrics and access lines) splits the "
        "gap into the command and the web layer. The insert runs again after Fleet's routes, "
        'and the targets\' baseline (the "vs Flask + insert" column) is the mean of its two '
        "runs: the host's speed drifts over the minutes between them. Latencies p50 / p95 / "
        "p99 in ms.",
        "",
    ]
    for backend in ("sqlite", "postgres"):
        figures = data.get(backend)
        if not figures:
            continue
        if "skipped" in figures:
            out += [f"{backend}: skipped ({figures['skipped']}).", ""]
            continue
        ceiling = figures["ceiling"]
        insert = insert_ceiling(ceiling)
        rows = []
        for route, run in ceiling.items():
            if route == "insert_half":
                continue
            half = ceiling.get("insert_half") if route == "insert" else None
            rows.append(
                [
                    f"ceiling: {CEILING_LABELS.get(route, route)}",
                    f"{run['requests_per_s']:,.0f}",
                    lat(run),
                    f"{run['requests_per_s'] / insert:.2f}",
                    f"{half['achieved_per_s']:,.0f}" if half else "",
                    lat(half) if half else "",
                    f"{run['loadgen_cpu_share']:.0%}",
                ]
            )
        for command, label in COMMAND_LABELS.items():
            run = figures["fleet"][command]
            rows.append(
                [
                    f"Fleet: {label}",
                    f"{run['max']['requests_per_s']:,.0f}",
                    lat(run["max"]),
                    f"{run['max']['requests_per_s'] / insert:.2f}",
                    f"{run['half']['achieved_per_s']:,.0f}",
                    lat(run["half"]),
                    f"{run['max']['loadgen_cpu_share']:.0%}",
                ]
            )
        for command, run in figures["fleet"].get("bare_route", {}).items():
            rows.append(
                [
                    f"Fleet's command behind a bare Flask route: {COMMAND_LABELS[command]}",
                    f"{run['requests_per_s']:,.0f}",
                    lat(run),
                    f"{run['requests_per_s'] / insert:.2f}",
                    "",
                    "",
                    f"{run['loadgen_cpu_share']:.0%}",
                ]
            )
        worker = figures["fleet"]["worker"]
        out += [f"### {backend.capitalize()}", ""]
        out += table(
            [
                "route",
                "max req/s",
                "latency at max",
                "vs Flask + insert",
                "half rate req/s",
                "latency at half rate",
                "wrk CPU",
            ],
            rows,
        )
        errors = sum(
            figures["fleet"][c][phase]["errors"]
            for c in COMMAND_LABELS
            for phase in ("max", "half")
        )
        workers = figures["fleet"].get("workers", 1)
        whose = "Fleet's worker" if workers == 1 else f"Fleet's {workers} workers together"
        largest = "its" if workers == 1 else "the largest one's"
        out += [
            f"{whose} used {worker['cpu_share']:.0%} of a core over the command runs; {largest} "
            f"peak RSS was {worker['peak_rss_mb']:.0f} MB. Error responses: {errors}."
            + beside_sentence(figures),
            "",
        ]
    out += scaled_section(data.get(SCALED_KEY, {}))
    return out


def scaled_section(figures: dict[str, Any]) -> list[str]:
    """The `make run-postgres` run: maximum rates only, next to the ceiling on as many
    workers; the CPU shares say how the two cores were split."""
    if "fleet" not in figures:
        return []
    workers = figures["workers"]
    ceiling = figures["ceiling"]
    insert = insert_ceiling(ceiling)
    runs = [(f"ceiling: {CEILING_LABELS.get(route, route)}", run) for route, run in ceiling.items()]
    runs += [(f"Fleet: {label}", figures["fleet"][c]["max"]) for c, label in COMMAND_LABELS.items()]
    rows = [
        [
            name,
            f"{run['requests_per_s']:,.0f}",
            lat(run),
            f"{run['requests_per_s'] / insert:.2f}",
            f"{run['loadgen_cpu_share']:.0%}",
        ]
        for name, run in runs
    ]
    fleet = figures["fleet"]
    errors = sum(fleet[c]["max"]["errors"] for c in COMMAND_LABELS)
    projector = fleet.get("projector", {}).get("cpu_share")
    out = [
        f"### Postgres, {workers} workers and the projector (`make run-postgres`)",
        "",
        f"The same gunicorn command with `WEB_CONCURRENCY={workers}`, on fresh schemas: the "
        "ceiling, then Fleet with `FLEET_PROJECTOR=external FLEET_SWEEP_INTERVAL=0` beside one "
        "`fleet projector --sweep-every 5` (writes answer before their projections are applied;"
        " the projector applies them and sweeps). Maximum rate only, wrk as above.",
        "",
    ]
    out += table(["route", "max req/s", "latency at max", "vs Flask + insert", "wrk CPU"], rows)
    out += [
        f"Fleet's {workers} workers used {fleet['worker']['cpu_share']:.0%} of a core together "
        "over the command runs"
        + (f", the projector {projector:.0%}" if projector is not None else "")
        + f"; the largest worker's peak RSS was {fleet['worker']['peak_rss_mb']:.0f} MB. "
        f"Error responses: {errors}." + beside_sentence(figures),
        "",
    ]
    return out


# The ceilings measured beside the targets' baseline, for choosing one (bench/ceiling.py).
BESIDE = {
    "insert_queued": "the insert whose threads take turns",
    "library_save": "Flask with the library's bare save",
    "library_register": "a registration with the library alone, lookup and save",
}


def beside_sentence(figures: dict[str, Any]) -> str:
    """Fleet's commands against each ceiling measured beside the insert."""
    out = ""
    for route, label in BESIDE.items():
        run = figures["ceiling"].get(route)
        if not run:
            continue
        rate = run["requests_per_s"]
        ratios = [figures["fleet"][c]["max"]["requests_per_s"] / rate for c in COMMAND_LABELS]
        out += (
            f" Against {label} ({rate:,.0f} req/s, p99 {run['latency']['p99_ms']:.1f} ms at "
            f"full rate), the commands are at {min(ratios):.2f}-{max(ratios):.2f}."
        )
    return out


def writes_section(data: dict[str, Any]) -> list[str]:
    out = [
        "## Write cost in-process",
        "",
        f"{data['rows']:,} writes each, one transaction per write, fresh SQLite files on the same "
        "disk (WAL, `synchronous=FULL`)"
        + (
            f", the writers taking turns in {data['rounds']} rounds (the host's drift falls on "
            "all of them alike)."
            if data.get("rounds")
            else "."
        ),
        "",
    ]
    out += table(
        ["writer", "writes/s", "µs/write", "time vs raw insert"],
        [
            [
                name,
                f"{r['writes_per_s']:,.0f}",
                f"{r['us_per_write']:,.0f}",
                r["time_vs_raw_insert"],
            ]
            for name, r in data["rates"].items()
        ],
    )
    return out


def reads_section(data: dict[str, Any]) -> list[str]:
    store = data["store"]
    built = "reused from `var/bench/`" if store.get("cached") else "built in this run"
    out = [
        f"## Reads with {store['events']:,} events",
        "",
        f"Store: {store['events']:,} events ({store['specialists']:,} specialists with "
        f"heartbeats and endings), seeded at {store['events_per_s']:,.0f} events/s in batched "
        f"saves, projections caught up in {store['projection_seconds']:,.1f} s, {built}. HTTP: "
        "gunicorn as `make run`, one wrk connection (service time, no queueing).",
        "",
    ]
    http = data["http"]
    out += table(
        ["read", "p50 / p95 / p99 ms", "req/s (1 connection)"],
        [
            [label, lat(http[name]), f"{http[name]['requests_per_s']:,.0f}"]
            for name, label in READ_LABELS.items()
            if name in http
        ],
    )
    out += ["In-process, `fleet.events(type=…, limit=100, offset=…)` and the SQL alone:", ""]
    out += table(
        [
            "type",
            "matching",
            "offset",
            "`fleet.events` p50 / p95 / p99 ms",
            "SQL p50 / p95 / p99 ms",
        ],
        [
            [
                f"`{q['type']}`",
                f"{q['matching']:,}",
                f"{q['offset']:,}",
                lat({"latency": q["fleet_events"]}),
                lat({"latency": q["select_event_page"]}),
            ]
            for q in data["queries"]
        ],
    )
    if data.get("keyset"):
        out += [
            "",
            "Keyset paging, `fleet.events(type=…, after=…, limit=100)` (the way to page deep: the"
            " total is block counters plus part of one block, whatever the depth):",
            "",
        ]
        out += table(
            ["type", "after", "past it", "`fleet.events` p50 / p95 / p99 ms"],
            [
                [
                    f"`{q['type']}`",
                    f"{q['after']:,}",
                    f"{q['matching']:,}",
                    lat({"latency": q["fleet_events"]}),
                ]
                for q in data["keyset"]
            ],
        )
    return out


def history_section(data: dict[str, Any]) -> list[str]:
    out = [
        "## Aggregate load time against history length",
        "",
        f"One specialist stream per length, snapshots every {data['interval']} events (the "
        "default); median of several loads. *Worst case*: the version just below the next "
        f"snapshot ({data['interval'] - 1} events replayed after one).",
        "",
    ]
    out += table(
        ["events", "snapshots", "with snapshots ms", "worst case ms", "without snapshots ms"],
        [
            [
                f"{r['events']:,}",
                f"{r['snapshots']:,}",
                f"{r['with_snapshots_ms']:.3f}",
                f"{r['worst_case_ms']:.3f} (v{r['worst_version']:,})",
                f"{r['without_snapshots_ms']:,.2f}",
            ]
            for r in data["lengths"]
        ],
    )
    return out


def projections_section(data: dict[str, Any]) -> list[str]:
    base = data["baseline_decoded_read_events_per_s"]
    paired = data.get("rebuild_baseline_events_per_s", {})
    live = data["live"]
    out = [
        "## Projections",
        "",
        f"{data['events']:,} events (specialists with heartbeats, missions with sorties, each "
        "aggregate's events saved together), and for `specialists (interleaved log)` as many "
        f"of {INTERLEAVED_AGENTS:,} specialists heartbeating in turn, as a live fleet writes "
        "them. "
        "Baseline: the library's `select_notifications` in pages of 500 plus "
        f"`mapper.to_domain_event` for each event, {base:,} events/s (median) in the same run. "
        "Each projection is rebuilt three times, each time right after a baseline read; the "
        "round with the median ratio is shown.",
        "",
    ]
    out += table(
        ["projection", "rebuild events/s", "baseline events/s", "vs baseline"],
        [
            [
                name,
                f"{value:,}",
                f"{paired.get(name, base):,}",
                f"{data['rebuild_ratio_to_baseline'][name]:.2f}",
            ]
            for name, value in data["rebuild_events_per_s"].items()
        ],
    )
    out += [
        f"Live: {live['writes_per_second']} commands/s for the whole phase through `Fleet`, a "
        f"`Projector` following in another thread: lag p50 {live['lag_events_p50']}, p95 "
        f"{live['lag_events_p95']}, max {live['lag_events_max']} events; drained "
        f"{live['drain_ms_after_last_write']} ms after the last write.",
        "",
    ]
    return out


def compaction_section(data: dict[str, Any]) -> list[str]:
    mib = 2**20
    out = [
        "## Compaction and compression",
        "",
        f"{data['streams']:,} specialists sharing {data['events']:,} events, seeded into a plain "
        "store and a zlib one; then `compact()`, `compact(archive=True)` as if 31 days had "
        "passed, and `VACUUM`. Sizes after a WAL checkpoint.",
        "",
    ]
    rows = []
    for name in ("plain", "zlib"):
        r = data[name]
        rows.append(
            [
                name,
                f"{r['event_state_bytes_before'] / mib:.1f} MiB",
                f"{r['live_bytes_before'] / mib:.1f} MiB",
                f"{r['live_bytes_after_vacuum'] / mib:.1f} MiB",
                f"{r['archive_bytes'] / mib:.1f} MiB",
                f"{r['events_archived']:,}",
                f"{r['archive_seconds']:.1f} s",
            ]
        )
    out += table(
        [
            "store",
            "event state",
            "live file",
            "live after archive + VACUUM",
            "archive file",
            "archived",
            "archive run",
        ],
        rows,
    )
    return out


def work_loop_section(data: dict[str, Any]) -> list[str]:
    out = [
        "## The agent work loop: waiters, writes and wake-ups",
        "",
        f"One `make run` server; {data['writers']} client threads create missions for "
        f"{data['seconds']:g} s without waiters, then beside {data['waiters']} idle ones "
        "(half long-polls, half live feeds); then long-polls woken by a message written "
        "through the server or by another process (see docs/work-loop.md).",
        "",
    ]
    rows = []
    for backend in ("sqlite", "postgres"):
        if backend not in data:
            continue
        run = data[backend]
        rows.append(
            [
                backend,
                f"{run['baseline']['writes_per_s']:,.0f} / "
                f"{run['with_waiters']['writes_per_s']:,.0f}",
                f"{run['baseline']['health']['p99_ms']:.1f} / "
                f"{run['with_waiters']['health']['p99_ms']:.1f} ms",
                f"{run['wake_same_process']['p99_ms']:.1f} ms",
                f"{run['wake_other_process']['p99_ms']:.1f} ms",
            ]
        )
    out += table(
        [
            "backend",
            "writes/s without / with waiters",
            "/health p99 without / with",
            "wake p99, same process",
            "wake p99, other process",
        ],
        rows,
    )
    return out


def console_section(data: dict[str, Any]) -> list[str]:
    render = data["render"]
    return [
        "## Console overview",
        "",
        f"`GET /ui/` through Flask's test client (the Fleet queries and the templates, no "
        f"network) on a store of {data['events']:,} events: {data['specialists']:,} specialists, "
        f"{data['sorties']:,} sorties, 50 active locks, 500 messages. First render "
        f"{data['first_render_ms']:.1f} ms (templates compiled, write-rate chart bisected); then "
        f"{data['runs']} renders: p50 {render['p50_ms']:.1f} ms, p95 {render['p95_ms']:.1f} ms, "
        f"max {render['max_ms']:.1f} ms ({data['page_bytes']:,} bytes).",
        "",
    ]
