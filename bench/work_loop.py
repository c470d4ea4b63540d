"""Capacity of the agent work loop on one ``make run`` server (one gthread worker).

1. Baseline: ``WRITERS`` client threads create missions for ``seconds`` (a new stream each,
   so every write costs the same however long the run) while one more thread times
   ``GET /health``: the write rate, the worker's CPU per write and the health latency.
2. ``WAITERS`` idle waiters are opened and held: half long-polls
   (``GET /mailboxes/idle-N/messages?wait=30``, re-sent as each expires), half live feeds
   (``GET /events/stream?type=mission_cancelled``); nothing the load writes matches them.
3. The same load again beside them: the write rate as a ratio of the baseline, and the
   health latency (target: p99 < 50 ms, writes >= 0.8 x baseline).
4. Wake-up latency, with the waiters still held: rounds of long-polls on fresh mailboxes,
   each then sent one message, from the moment the message is sent until its waiter has
   its answer (so it includes the write's own round trip, also given apart, with the wake
   measured from the write's answer). Written once through the same
   server (the waiter's own process) and once by a ``Fleet`` in this process writing to the
   store directly: another process, which the server learns of by reading the log head.

``python -m bench.work_loop [--quick]`` runs this piece alone and prints its figures;
``python -m bench --only work_loop`` adds them to the suite's results.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from application.fleet import Fleet
from bench.common import FULL, QUICK, SCRATCH, Scale, log, percentiles
from bench.server import FLEET_APP, gunicorn, postgres_available, postgres_schema

WAITERS = 200
WRITERS = 8
WAKE_ROUNDS = 5
WAKE_PER_ROUND = 25  # at once, beside the held waiters: 225 of the server's 240


def run(scale: Scale) -> dict[str, Any]:
    seconds = 3.0 if scale.name == "quick" else 8.0
    results: dict[str, Any] = {"waiters": WAITERS, "writers": WRITERS, "seconds": seconds}
    with tempfile.TemporaryDirectory(dir=_scratch()) as folder:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": f"{folder}/w.db"}
        results["sqlite"] = run_backend("sqlite", env, seconds)
    reason = postgres_available()
    if reason is None:
        with postgres_schema("workloop") as env:
            results["postgres"] = run_backend("postgres", env, seconds)
    else:
        log(f"  work loop on PostgreSQL skipped: {reason}")
    return results


def _scratch() -> Path:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    return SCRATCH


def run_backend(backend: str, env: dict[str, str], seconds: float) -> dict[str, Any]:
    log(f"  work loop, {backend}: server up")
    settings = {**env, "FLEET_SWEEP_INTERVAL": "0"}
    # One worker: "the same process" and "the other process" below are the server's one
    # worker and the benchmark's own Fleet.
    with gunicorn(FLEET_APP, settings, SCRATCH / "work_loop.log", workers=1) as server:
        url = f"{server.url}/api/v1"
        cpu = server.cpu_seconds
        load(url, 1.0, cpu)  # warm-up
        baseline = load(url, seconds, cpu)
        log(f"  {backend} baseline: {summary(baseline)}")
        with held_waiters(url, WAITERS) as held:
            loaded = load(url, seconds, cpu)
            log(f"  {backend} beside {held()}: {summary(loaded)}")
            same = wake_latency(url, lambda box: send(requests.Session(), url, box))
            log(f"  {backend} wake, written through the server: {same}")
            fleet = Fleet(env=env)
            try:
                other = wake_latency(url, lambda box: fleet.send_message(box, "wake", {}))
            finally:
                fleet.close()
            log(f"  {backend} wake, written by another process: {other}")
            open_at_end = held()
        peak_rss = server.peak_rss_mb()
    return {
        "baseline": baseline,
        "with_waiters": loaded,
        "write_ratio": round(loaded["writes_per_s"] / baseline["writes_per_s"], 3),
        "waiters_held": open_at_end,
        "wake_same_process": same,
        "wake_other_process": other,
        "worker_peak_rss_mb": peak_rss,
    }


def summary(phase: dict[str, Any]) -> str:
    return (
        f"{phase['writes_per_s']:.0f} writes/s, {phase['worker_cpu_ms_per_write']} ms CPU "
        f"a write, /health p99 {phase['health']['p99_ms']:.1f} ms"
    )


def send(session: requests.Session, url: str, box: str) -> None:
    response = session.post(
        f"{url}/mailboxes/{box}/messages", json={"message_type": "t", "content": {}}, timeout=30
    )
    response.raise_for_status()


def create_mission(session: requests.Session, url: str) -> None:
    response = session.post(f"{url}/missions", json={"title": "load"}, timeout=30)
    response.raise_for_status()


def load(url: str, seconds: float, cpu: Callable[[], float]) -> dict[str, Any]:
    """``WRITERS`` threads write for ``seconds``; one more times /health meanwhile."""
    stop = threading.Event()
    counts = [0] * WRITERS
    latencies: list[float] = []
    health: list[float] = []
    errors: list[str] = []

    def writer(n: int) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    create_mission(session, url)
                except requests.RequestException as exc:
                    errors.append(repr(exc))
                    continue
                latencies.append(time.perf_counter() - began)
                counts[n] += 1

    def prober() -> None:
        base = url.removesuffix("/api/v1")
        with requests.Session() as session:
            while not stop.is_set():
                began = time.perf_counter()
                session.get(f"{base}/health", timeout=30).raise_for_status()
                health.append(time.perf_counter() - began)
                stop.wait(0.01)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    threads.append(threading.Thread(target=prober))
    cpu_before = cpu()
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - began
    writes = sum(counts)
    return {
        "writes_per_s": round(writes / elapsed, 1),
        "worker_cpu_ms_per_write": round((cpu() - cpu_before) * 1000 / max(writes, 1), 3),
        "write_latency": percentiles(latencies),
        "health": percentiles(health),
        "health_samples": len(health),
        "errors": len(errors),
    }


@contextmanager
def held_waiters(url: str, count: int) -> Iterator[Callable[[], dict[str, int]]]:
    """Hold ``count`` idle waiters (half long-polls, half feeds) open for the block."""
    stop = threading.Event()
    state = {"polls_waiting": 0, "streams_open": 0, "failures": 0}
    lock = threading.Lock()
    responses: list[requests.Response] = []

    def bump(key: str, by: int) -> None:
        with lock:
            state[key] += by

    def poll(n: int) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                bump("polls_waiting", 1)
                try:
                    answer = session.get(f"{url}/mailboxes/idle-{n}/messages?wait=30", timeout=40)
                    if answer.status_code != 200:
                        bump("failures", 1)
                        stop.wait(0.5)
                except requests.RequestException:
                    bump("failures", 1)
                finally:
                    bump("polls_waiting", -1)

    def feed() -> None:
        counted = False
        try:
            response = requests.get(
                f"{url}/events/stream?type=mission_cancelled", stream=True, timeout=60
            )
            if response.status_code != 200:
                bump("failures", 1)
                return
            responses.append(response)
            lines = response.iter_lines()
            next(lines)
            bump("streams_open", 1)
            counted = True
            for _ in lines:
                if stop.is_set():
                    break
        except (requests.RequestException, StopIteration, AttributeError, ValueError):
            if not stop.is_set():
                bump("failures", 1)
        finally:
            if counted:
                bump("streams_open", -1)

    threads = [threading.Thread(target=poll, args=(n,), daemon=True) for n in range(count // 2)]
    threads += [threading.Thread(target=feed, daemon=True) for _ in range(count - count // 2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if state["polls_waiting"] + state["streams_open"] >= count:
                break
        time.sleep(0.05)
    time.sleep(0.5)  # the last long-polls reach the server and park

    def snapshot() -> dict[str, int]:
        with lock:
            return dict(state)

    log(f"  holding {snapshot()}")
    try:
        yield snapshot
    finally:
        stop.set()
        for response in responses:
            response.close()


def wake_latency(url: str, write: Callable[[str], None]) -> dict[str, Any]:
    """From sending a message until the long-poll waiting for it has its answer."""
    samples: list[float] = []
    after_write: list[float] = []
    writes: list[float] = []
    missed = 0
    for round_ in range(WAKE_ROUNDS):
        boxes = [f"wake-{time.time_ns()}-{round_}-{i}" for i in range(WAKE_PER_ROUND)]
        answered: dict[str, float] = {}

        def wait_for(box: str, answered: dict[str, float] = answered) -> None:
            response = requests.get(f"{url}/mailboxes/{box}/messages?wait=10", timeout=30)
            if response.status_code == 200 and response.json()["total"] == 1:
                answered[box] = time.perf_counter()

        threads = [threading.Thread(target=wait_for, args=(box,)) for box in boxes]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # every long-poll is parked
        sent: dict[str, float] = {}
        done: dict[str, float] = {}
        for box in boxes:
            sent[box] = time.perf_counter()
            write(box)
            done[box] = time.perf_counter()
            time.sleep(0.02)
        for thread in threads:
            thread.join(30)
        for box in boxes:
            writes.append(done[box] - sent[box])
            if box in answered:
                samples.append(answered[box] - sent[box])
                after_write.append(max(answered[box] - done[box], 0.0))
            else:
                missed += 1
    return {
        **percentiles(samples),
        "samples": len(samples),
        "missed": missed,
        "after_the_write_answered": percentiles(after_write),
        "write_round_trip": percentiles(writes),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.work_loop", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s load phases instead of 8 s")
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    results = run(QUICK if options.quick else FULL)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
