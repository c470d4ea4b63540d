"""Load generators: ``wrk`` for the maximum rate, a constant-rate client for latency at a rate.

Both replay the same seeded request lists (``Request``: method, path, JSON body), so every id in
every request is fixed before the run.

- ``max_rate``: wrk (Debian's, closed loop) on one thread, ``connections`` keep-alive
  connections, for ``seconds``; its own CPU time (from the kernel's rusage of the child) gives the
  load generator's share of the machine.
- ``at_rate``: Debian's wrk cannot hold a constant rate (that is wrk2), so this client sends
  request *i* at ``start + i / rate`` from a few keep-alive connections and measures each latency
  from that *scheduled* time, not from when a connection got free: a stalled server shows up as
  latency (no coordinated omission), as in wrk2.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import BENCH, percentiles

Request = tuple[str, str, dict[str, Any] | None]
REPLAY = BENCH / "lua" / "replay.lua"
HEADERS = {"Content-Type": "application/json"}


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "wrk is not installed: `apt-get install wrk` (make bench installs it when run as root)"
        )
    return path


def write_requests(requests: list[Request], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="requests-", suffix=".tsv", dir=folder)
    with os.fdopen(handle, "w") as out:
        for method, path, body in requests:
            text = "" if body is None else json.dumps(body, separators=(",", ":"))
            out.write(f"{method}\t{path}\t{text}\n")
    return Path(name)


def max_rate(
    url: str,
    requests: list[Request],
    seconds: float,
    scratch: Path,
    connections: int = 8,
    threads: int = 1,
) -> dict[str, Any]:
    """wrk at full speed; requests/s, latency percentiles, errors and wrk's CPU share."""
    script_input = write_requests(requests, scratch)
    command = [
        require_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(REPLAY),
        url,
        "--",
        str(script_input),
        str(threads),
    ]
    began = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - began
        output.seek(0)
        text = output.read().decode()
    script_input.unlink()
    found = [line for line in text.splitlines() if line.startswith("BENCH_JSON ")]
    if child.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({child.returncode}):\n{text}")
    raw = json.loads(found[0].removeprefix("BENCH_JSON "))
    duration = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in raw if k.startswith("errors_"))
    return {
        "tool": f"wrk -t{threads} -c{connections}",
        "connections": connections,
        "seconds": round(duration, 2),
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / duration, 1),
        "errors": errors,
        "errors_by_kind": {
            k.removeprefix("errors_"): raw[k] for k in raw if k.startswith("errors_")
        },
        "latency": {
            "p50_ms": raw["p50_us"] / 1000,
            "p95_ms": raw["p95_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000,
            "mean_ms": round(raw["mean_us"] / 1000, 3),
            "max_ms": raw["max_us"] / 1000,
        },
        "loadgen_cpu_share": round((usage.ru_utime + usage.ru_stime) / wall, 3),
    }


def at_rate(
    url: str, requests: list[Request], rate: float, seconds: float, connections: int = 8
) -> dict[str, Any]:
    """Send ``rate`` requests/s for ``seconds``; latency from each request's scheduled time."""
    parts = urlsplit(url)
    total = max(1, int(rate * seconds))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    taken = 0
    start = time.perf_counter() + 0.1

    def connection() -> None:
        nonlocal taken
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            while True:
                with lock:
                    index, taken = taken, taken + 1
                if index >= total:
                    return
                scheduled = start + index / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                method, path, body = requests[index % len(requests)]
                payload = None if body is None else json.dumps(body)
                conn.request(method, path, body=payload, headers=HEADERS)
                answer = conn.getresponse()
                answer.read()
                latencies.append(time.perf_counter() - scheduled)
                statuses[answer.status] += 1
        finally:
            conn.close()

    cpu = time.process_time()
    workers = [threading.Thread(target=connection) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    errors = sum(n for status, n in statuses.items() if status >= 400)
    return {
        "tool": f"constant-rate client, {connections} connections",
        "target_per_s": round(rate, 1),
        "achieved_per_s": round(total / wall, 1),
        "requests": total,
        "errors": errors,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "latency": percentiles(latencies),
        "loadgen_cpu_share": round((time.process_time() - cpu) / wall, 3),
    }
