"""The servers under load: gunicorn started as ``make run`` starts it, and PostgreSQL schemas.

``GUNICORN`` is the one place the benchmark's server command is defined; it must stay the
``make run`` command (same worker class, workers and threads), so that the figures are the
ones an operator gets: a server started without a worker count gets ``make run``'s
(``make_run_workers``). Fleet runs in its default, embedded projector mode: every write
applies its events to the projections before the response is sent; except beside
``projector()``, which starts the separate projector ``make run-postgres`` runs next to its
workers (``gunicorn(..., workers=4)``, as its ``WEB_CONCURRENCY``).
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.common import ROOT, log

HOST = "127.0.0.1"
# As in the Makefile's `run` target: `gunicorn <GUNICORN> --bind $(HOST):$(PORT) wsgi:app`
# (gunicorn.conf.py: gthread workers with FLEET_WEB_THREADS threads, 256 by default; as many
# workers as WEB_CONCURRENCY says, or its default).
GUNICORN = ["-c", "gunicorn.conf.py"]
FLEET_APP = "wsgi:app"
CEILING_APP = "bench.ceiling:app"
# Fleet's commands behind bare Flask routes, none of Fleet's web layer (bench.bare_route).
BARE_ROUTE_APP = "bench.bare_route:app"

# The PostgreSQL server the tests use (tests/conftest.py), trust authentication.
POSTGRES = {
    "POSTGRES_DBNAME": os.environ.get("FLEET_TEST_POSTGRES_DBNAME", "test"),
    "POSTGRES_HOST": os.environ.get("FLEET_TEST_POSTGRES_HOST", "127.0.0.1"),
    "POSTGRES_PORT": os.environ.get("FLEET_TEST_POSTGRES_PORT", "5432"),
    "POSTGRES_USER": os.environ.get("FLEET_TEST_POSTGRES_USER", "postgres"),
    "POSTGRES_PASSWORD": os.environ.get("FLEET_TEST_POSTGRES_PASSWORD", ""),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running gunicorn: its URL and its worker processes (one unless asked for more)."""

    url: str
    master: subprocess.Popen[bytes]
    workers: list[psutil.Process]

    def cpu_seconds(self) -> float:
        """CPU time of the workers so far; with several, their sum (the load they put on the
        machine together, which may exceed one core)."""
        return sum(cpu_seconds(worker) for worker in self.workers)

    def peak_rss_mb(self) -> float:
        """The largest worker's peak resident set size so far (VmHWM), in MB: what one worker
        needs, whatever their number."""
        return max(peak_rss_mb(worker) for worker in self.workers)

    def rss_mb(self) -> float:
        """The largest worker's resident set size now, in MB."""
        return max(round(float(worker.memory_info().rss) / 2**20, 1) for worker in self.workers)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def peak_rss_mb(process: psutil.Process) -> float:
    status = Path(f"/proc/{process.pid}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(float(process.memory_info().rss) / 1e6, 1)


@functools.cache
def make_run_workers() -> int:
    """The worker count ``gunicorn.conf.py`` gives ``make run`` on this machine, where no
    ``WEB_CONCURRENCY`` is set: read from the file itself, so the rule stays written once."""
    environ = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy; print(runpy.run_path('gunicorn.conf.py')['workers'])",
        ],
        cwd=ROOT,
        env=environ,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(found.stdout.split()[-1])


@contextmanager
def gunicorn(
    app: str, env: dict[str, str], log_path: Path, workers: int | None = None
) -> Iterator[Server]:
    """Start gunicorn on a free port with ``workers`` workers (``make run``'s count when
    None), wait until they all serve, stop it afterwards.

    The worker count goes through ``WEB_CONCURRENCY``, as ``make run-postgres`` sets it (and
    gunicorn.conf.py reads it), and overrides any in the caller's environment: a figure is
    only worth the worker count it was measured with.
    """
    workers = make_run_workers() if workers is None else workers
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--bind",
        f"{HOST}:{port}",
        *GUNICORN,
        app,
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as output:
        master = subprocess.Popen(  # noqa: S603 - our own command line
            command,
            cwd=ROOT,
            env={**os.environ, **env, "WEB_CONCURRENCY": str(workers)},
            stdout=output,
            stderr=output,
        )
    url = f"http://{HOST}:{port}"
    try:
        wait_ready(url, master, log_path)
        processes = wait_workers(master, workers, log_path)
        yield Server(url, master, processes)
    finally:
        stop(master)


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it has not exited within ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_workers(
    master: subprocess.Popen[bytes], workers: int, log_path: Path
) -> list[psutil.Process]:
    """The master's ``workers`` worker processes, once every one of them has booted.

    One worker answering ``/health`` says the others exist or soon will, not that they serve:
    each loads the app itself (gunicorn.conf.py: no ``preload_app``), and a run begun while
    some still import would measure fewer workers than it names. A booted gthread worker
    waits on the socket without using CPU, so the workers are taken as ready once they have
    used almost none (under 4 % of a core together) for a second.
    """
    deadline = time.monotonic() + 120
    found: list[psutil.Process] = psutil.Process(master.pid).children()
    while len(found) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
        found = psutil.Process(master.pid).children()
    if len(found) != workers:
        raise RuntimeError(f"expected {workers} gunicorn workers, found {len(found)}")
    if workers == 1:
        return found  # it answered /health: it has booted
    try:
        quiet, last = 0, sum(cpu_seconds(worker) for worker in found)
        while quiet < 4:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn's workers were still busy after 120 s; see {log_path}"
                )
            time.sleep(0.25)
            used = sum(cpu_seconds(worker) for worker in found)
            quiet = quiet + 1 if used - last < 0.01 else 0
            last = used
    except psutil.NoSuchProcess as gone:  # one failed to boot, and the master stops them all
        raise RuntimeError(f"a gunicorn worker exited while starting; see {log_path}") from gone
    return found


@contextmanager
def projector(
    env: dict[str, str], log_path: Path, sweep_every: float = 5
) -> Iterator[psutil.Process]:
    """``fleet projector --sweep-every 5`` beside the server, as ``make run-postgres`` runs it
    (with its env: the store, not the server's ``FLEET_PROJECTOR``), stopped afterwards.

    Stopped the way the Makefile's trap stops it (SIGTERM: it finishes the page under way
    and its sweep pass), killed only if that takes too long. A projector that exits during
    the run fails it: its figures would describe a server whose projections stand still.
    """
    command = [
        str(Path(sys.executable).with_name("fleet")),
        "projector",
        "--sweep-every",
        f"{sweep_every:g}",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=output
        )
    try:
        yield psutil.Process(process.pid)
        if process.poll() is not None:
            raise RuntimeError(f"the projector exited during the run; see {log_path}")
    finally:
        stop(process)


def wait_ready(url: str, master: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 120  # a start-up may catch projections up first
    while time.monotonic() < deadline:
        if master.poll() is not None:
            raise RuntimeError(f"gunicorn exited at start-up; see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within 120 s; see {log_path}")


# PostgreSQL


def postgres_available() -> str | None:
    """None when the server answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(**conninfo(), connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error).strip() or type(error).__name__


def conninfo() -> dict[str, Any]:
    return {
        "dbname": POSTGRES["POSTGRES_DBNAME"],
        "host": POSTGRES["POSTGRES_HOST"],
        "port": POSTGRES["POSTGRES_PORT"],
        "user": POSTGRES["POSTGRES_USER"],
        "password": POSTGRES["POSTGRES_PASSWORD"],
    }


@contextmanager
def postgres_schema(label: str) -> Iterator[dict[str, str]]:
    """Env of a fresh schema (and its archive's), dropped afterwards."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    schema = f"fleet_bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**conninfo(), autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
    try:
        yield {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            **POSTGRES,
            "POSTGRES_SCHEMA": schema,
        }
    finally:
        with psycopg.connect(**conninfo(), autocommit=True) as conn:
            for name in (schema, f"{schema}_archive"):
                conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(name)))
        log(f"  dropped schema {schema}")
