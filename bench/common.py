"""What every benchmark shares: the run's scale, progress output, percentiles and timers."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CACHE = ROOT / "var" / "bench"  # built stores kept between runs (make clean removes var/)
SCRATCH = BENCH / "out"  # per-run files and the results of quick runs (git-ignored)


@dataclass(frozen=True)
class Scale:
    """Sizes of one run; ``QUICK`` keeps the same suite under two minutes."""

    name: str
    store_events: int  # events in the store the HTTP reads and type queries run against
    write_rows: int  # writes per in-process write-rate baseline
    http_seconds: float  # each wrk run, and the shortest constant-rate run
    latency_requests: int  # the fewest requests a latency (constant-rate) run may rest on
    read_seconds: float  # each HTTP read run
    query_runs: int  # timed runs per in-process type query
    histories: tuple[int, ...]  # aggregate lengths of the load-time benchmark
    load_repeat: int  # loads per measure (median)
    projection_events: int
    live_seconds: float
    live_writes_per_second: int
    compaction_events: int
    compaction_streams: int
    preload: int  # specialists and sorties created before heartbeats and sortie PATCHes
    seed: int = 20_260_101
    extra: dict[str, Any] = field(default_factory=dict)


FULL = Scale(
    name="full",
    store_events=1_000_000,
    write_rows=2_000,
    http_seconds=8,
    latency_requests=5_000,
    read_seconds=5,
    query_runs=200,
    histories=(10, 1_000, 10_000, 100_000),
    load_repeat=5,
    projection_events=100_000,
    live_seconds=10,
    live_writes_per_second=200,
    compaction_events=50_000,
    compaction_streams=250,
    preload=1_000,
)

QUICK = Scale(
    name="quick",
    store_events=20_000,
    write_rows=300,
    http_seconds=2,
    latency_requests=400,
    read_seconds=1.5,
    query_runs=40,
    histories=(10, 1_000, 10_000),
    load_repeat=3,
    projection_events=10_000,
    live_seconds=2,
    live_writes_per_second=100,
    compaction_events=5_000,
    compaction_streams=50,
    preload=200,
)


def scale_dict(scale: Scale) -> dict[str, Any]:
    return asdict(scale)


# Progress


_STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr, stamped with the seconds since the suite started."""
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def step(title: str) -> Iterator[None]:
    log(f"{title} ...")
    began = time.perf_counter()
    yield
    log(f"{title}: done in {time.perf_counter() - began:.1f} s")


# Statistics


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max in milliseconds of a list of durations in seconds."""
    ms = sorted(s * 1000 for s in seconds)
    if not ms:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0, "max_ms": 0.0}
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {
        "p50_ms": round(cuts[49], 3),
        "p95_ms": round(cuts[94], 3),
        "p99_ms": round(cuts[98], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "max_ms": round(ms[-1], 3),
    }


def timed(call: Callable[[], Any], runs: int, warmup: int = 5) -> dict[str, float]:
    """Percentiles of ``runs`` sequential calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return percentiles(samples)


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 4)


# Where and what ran


def git(*args: str) -> str:
    try:
        return subprocess.run(  # noqa: S603 - fixed git arguments
            ["git", *args],  # noqa: S607 - git from PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def interpreter_probe(steps: int = 10_000_000) -> float:
    """Seconds this interpreter takes for ``steps`` additions in a loop: how fast the host
    runs Python right now. On these shared machines it took 0.21-0.46 s in quiet phases
    and 0.6-1.2 s in slow ones (bench/findings.md), when Fleet's ratios fell and reads
    whose code had not changed missed their targets."""
    began = time.perf_counter()
    total = 0
    for step in range(steps):
        total += step
    return round(time.perf_counter() - began, 2)


def environment() -> dict[str, Any]:
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)  # noqa: S607
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "eventsourcing": metadata.version("eventsourcing"),
        "gunicorn": metadata.version("gunicorn"),
        "flask": metadata.version("flask"),
        "wrk": (wrk.stdout or wrk.stderr).split(" [")[0].strip(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# ``make run-postgres``'s shape (the Makefile's WORKERS): its workers beside one projector.
# The results key is shared by bench.http_commands, which writes it, and bench.report.
SCALED_WORKERS = 4
SCALED_KEY = f"postgres_{SCALED_WORKERS}_workers"
