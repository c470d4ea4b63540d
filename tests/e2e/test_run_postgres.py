"""``make run-postgres``: several gunicorn workers and one projector on a PostgreSQL schema.

Started exactly as docs/operations.md says, on a loopback port and a schema of its own; a write
through one worker is listed (via ``min_position``) once the separate projector applied
it, and stopping the server stops the projector too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import PG_DBNAME, PG_HOST, PG_PASSWORD, PG_PORT, PG_USER
from tests.servers import ROOT, UNTRACED, clean_environ, free_port, tail, wait_until_up

pytestmark = [pytest.mark.slow, UNTRACED, pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.fixture
def served(
    postgres_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[str, psutil.Process, Path]]:
    port = free_port()
    env = clean_environ()
    args = [
        "make",
        "--no-print-directory",
        "run-postgres",
        f"PORT={port}",
        "WORKERS=2",
        f"POSTGRES_HOST={PG_HOST}",
        f"POSTGRES_PORT={PG_PORT}",
        f"POSTGRES_DBNAME={PG_DBNAME}",
        f"POSTGRES_USER={PG_USER}",
        f"POSTGRES_PASSWORD={PG_PASSWORD}",
        f"POSTGRES_SCHEMA={postgres_env['POSTGRES_SCHEMA']}",
    ]
    log_path = tmp_path / "run-postgres.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, {"make run-postgres": process}, log_path)
            yield base, psutil.Process(process.pid), log_path
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


def command_lines(root: psutil.Process) -> list[str]:
    """The Python processes under ``make`` (not the shell that started them)."""
    return [
        " ".join(p.cmdline())
        for p in root.children(recursive=True)
        if p.is_running() and p.name().startswith(("python", "gunicorn", "fleet"))
    ]


def test_workers_and_one_projector_serve_the_schema(
    served: tuple[str, psutil.Process, Path],
) -> None:
    base, make, log_path = served
    running = command_lines(make)
    assert sum("fleet projector" in line for line in running) == 1, running
    assert sum("gunicorn" in line for line in running) == 3, running  # master + 2 workers

    written = requests.post(
        f"{base}/api/v1/specialists/register",
        json={"specialist_id": "pg-1", "name": "On PostgreSQL"},
        timeout=10,
    )
    assert written.status_code == 201, written.text
    position = written.headers["X-Fleet-Position"]
    listed = requests.get(
        f"{base}/api/v1/specialists", params={"min_position": position}, timeout=10
    )
    assert listed.status_code == 200, listed.text
    assert [s["id"] for s in listed.json()["specialists"]] == ["pg-1"]
    health = requests.get(f"{base}/health", timeout=10).json()
    assert health["database"]["backend"] == "postgres"

    children = make.children(recursive=True)
    os.killpg(make.pid, signal.SIGINT)
    _gone, alive = psutil.wait_procs(children, timeout=20)
    # What each process still running was doing is in the server's log (gunicorn logs a
    # worker's stop, and the master the workers it had to kill).
    assert not alive, ([" ".join(p.cmdline()) for p in alive], tail(log_path))
    deadline = time.monotonic() + 10
    while make.is_running() and make.status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.1)
