"""The cost of an ``Idempotency-Key``: a keyed write against the same write without one.

A keyed write does not look its key up first: its transaction inserts one more row
(``fleet_idempotency``) beside the events. Both variants run in one process on one
store, alternating write by write (so drift in the machine's load hits both alike), as the
Python command (``Fleet.create_mission``) and as the HTTP request through the Flask app
(``POST /api/v1/missions``, in-process test client: no network in the figure). Target:
keyed ≤ 1.15 x unkeyed (medians).

A keyed write adds, in its transaction, the delete of an expired row of its key (if any)
and the insert of the key's row: no round trip of its own on PostgreSQL, where the
library pipelines the transaction's statements.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any

from bench.common import SCRATCH, Scale, log
from bench.server import postgres_available, postgres_schema
from web import create_app, get_fleet


def compare(
    plain: Callable[[int], Any], keyed: Callable[[int], Any], writes: int
) -> dict[str, float]:
    """Median µs per write of each variant, the two alternating write by write.

    The machine's load drifts (other processes, the disk's flushes): alternating single
    writes meets both variants with the same drift, and the median ignores the stalls.
    """
    ids = count()
    for _ in range(20):  # warm-up
        plain(next(ids))
        keyed(next(ids))
    times: dict[str, list[float]] = {"unkeyed": [], "keyed": []}
    for n in range(writes):
        pair = [("unkeyed", plain), ("keyed", keyed)]
        for name, call in pair if n % 2 == 0 else pair[::-1]:
            began = time.perf_counter()
            call(next(ids))
            times[name].append((time.perf_counter() - began) * 1e6)
    unkeyed, keyed_us = statistics.median(times["unkeyed"]), statistics.median(times["keyed"])
    return {
        "writes_each": writes,
        "unkeyed_us_per_write": round(unkeyed, 1),
        "keyed_us_per_write": round(keyed_us, 1),
        "keyed_vs_unkeyed": round(keyed_us / unkeyed, 3),
        "unkeyed_mean_us": round(statistics.fmean(times["unkeyed"]), 1),
        "keyed_mean_us": round(statistics.fmean(times["keyed"]), 1),
    }


def measure(env: dict[str, str], writes: int) -> dict[str, Any]:
    app = create_app({"FLEET_ENV": env, "FLEET_SWEEP_INTERVAL": 0})
    fleet = get_fleet(app)
    client = app.test_client()
    try:

        def http(i: int, key: bool) -> None:
            headers = {"Idempotency-Key": f"bench-http-{i}"} if key else {}
            response = client.post("/api/v1/missions", json={"title": f"M {i}"}, headers=headers)
            assert response.status_code == 201, response.get_json()  # noqa: S101 - a bench check

        return {
            "python_create_mission": compare(
                lambda i: fleet.create_mission(title=f"M {i}"),
                lambda i: fleet.create_mission(title=f"M {i}", idempotency_key=f"bench-py-{i}"),
                writes,
            ),
            "http_post_missions": compare(
                lambda i: http(i, False), lambda i: http(i, True), writes
            ),
        }
    finally:
        fleet.close()


@contextmanager
def sqlite_store() -> Iterator[dict[str, str]]:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="idempotency-", dir=SCRATCH))
    try:
        yield {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(work / "f.db")}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(scale: Scale) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with sqlite_store() as env:
        results["sqlite"] = measure(env, scale.write_rows)
    unavailable = postgres_available()
    if unavailable:
        results["postgres"] = {"skipped": unavailable}
    else:
        with postgres_schema("idempotency") as env:
            results["postgres"] = measure(env, scale.write_rows)
    for backend, figures in results.items():
        for name, row in figures.items():
            if isinstance(row, dict):
                log(
                    f"  {backend:8} {name:24} unkeyed {row['unkeyed_us_per_write']:>8.1f} µs"
                    f"  keyed {row['keyed_us_per_write']:>8.1f} µs"
                    f"  ({row['keyed_vs_unkeyed']:.3f} x)"
                )
    return results
