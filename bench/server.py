"""The servers under load: gunicorn started as ``make run`` starts it, and PostgreSQL schemas.

``GUNICORN`` is the one place the benchmark's server command is defined; it must stay the
``make run`` command (same worker class, workers and threads), so that the figures are the
ones an operator gets. Fleet runs in its default, embedded projector mode: every write
applies its events to the projections before the response is sent.
"""

from __future__ import annotations

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
# (gunicorn.conf.py: one gthread worker with FLEET_WEB_THREADS threads, 256 by default, unless
# WEB_CONCURRENCY says more workers).
GUNICORN = ["-c", "gunicorn.conf.py"]
FLEET_APP = "wsgi:app"
CEILING_APP = "bench.ceiling:app"

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
    """A running gunicorn: its URL and its single worker process."""

    url: str
    master: subprocess.Popen[bytes]
    worker: psutil.Process

    def cpu_seconds(self) -> float:
        times = self.worker.cpu_times()
        return float(times.user + times.system)

    def peak_rss_mb(self) -> float:
        """The worker's peak resident set size so far (VmHWM), in MB."""
        status = Path(f"/proc/{self.worker.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return round(self.worker.memory_info().rss / 1e6, 1)

    def rss_mb(self) -> float:
        return round(self.worker.memory_info().rss / 2**20, 1)


@contextmanager
def gunicorn(app: str, env: dict[str, str], log_path: Path) -> Iterator[Server]:
    """Start gunicorn on a free port, wait until it answers, stop it afterwards."""
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
            command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=output
        )
    url = f"http://{HOST}:{port}"
    try:
        wait_ready(url, master, log_path)
        workers = psutil.Process(master.pid).children()
        if len(workers) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {len(workers)}")
        yield Server(url, master, workers[0])
    finally:
        master.terminate()
        try:
            master.wait(15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()


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
