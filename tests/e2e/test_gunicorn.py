"""End to end: the real WSGI server (``gunicorn wsgi:app``) on a loopback port.

The server is started as ``make run`` starts it (``tests/servers.py``), with a fresh
SQLite store in a temporary directory and a bearer token in its environment, walked
through a whole mission over HTTP, then stopped. Everything is bounded in time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
import requests

from tests.servers import (
    ROOT,
    UNTRACED,
    as_make_run,
    clean_environ,
    free_port,
    gunicorn,
    gunicorn_command,
)

TOKEN = "e2e-token"  # noqa: S105 - a test token
AUTH = {"Authorization": f"Bearer {TOKEN}"}

pytestmark = [pytest.mark.slow, UNTRACED, pytest.mark.timeout(120)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """gunicorn as ``make run`` starts it, on a fresh SQLite store with a bearer token."""
    env = as_make_run(
        clean_environ(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=str(tmp_path / "fleet.sqlite3"),
            FLEET_API_TOKEN=TOKEN,
        )
    )
    with gunicorn(env, tmp_path / "gunicorn.log", "--threads", "4", "--timeout", "30") as (base, _):
        yield base


class Api:
    """A few lines of HTTP: each call checks its status and returns the JSON body."""

    def __init__(self, base: str):
        self.base = f"{base}/api/v1"
        self.session = requests.Session()
        self.session.headers.update(AUTH)

    def call(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}{path}", timeout=10, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()

    def response(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base}{path}", timeout=10, **kwargs)


def test_a_mission_end_to_end(server: str) -> None:
    api = Api(server)
    # Writes need the token; the document and reads do not.
    anonymous = requests.post(f"{api.base}/missions", json={"title": "x"}, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"] == "application/problem+json"
    assert requests.get(f"{api.base}/openapi.json", timeout=10).json()["openapi"] == "3.0.3"

    api.call("POST", "/specialists/register", 201, json={"specialist_id": "coder", "name": "C"})
    mission = api.call("POST", "/missions", 201, json={"title": "Release"})["mission"]
    build = api.call(
        "POST", "/sorties", 201, json={"description": "build", "mission_id": mission["id"]}
    )["sortie"]
    ship = api.call(
        "POST",
        "/sorties",
        201,
        json={"description": "ship", "mission_id": mission["id"], "dependencies": [build["id"]]},
    )["sortie"]
    for sortie_id in (build["id"], ship["id"]):
        api.call(
            "PATCH",
            f"/sorties/{sortie_id}",
            200,
            json={"status": "assigned", "assigned_to": "coder"},
        )
    api.call("PATCH", f"/sorties/{ship['id']}", 409, json={"status": "in_progress"})
    api.call("PATCH", f"/sorties/{build['id']}", 200, json={"status": "in_progress"})
    done = api.response(
        "PATCH",
        f"/sorties/{build['id']}",
        json={"status": "completed"},
        headers={"X-Correlation-ID": "e2e-build", "If-Match": '"3"'},
    )
    assert done.status_code == 200, done.text
    assert done.headers["ETag"] == '"4"'
    assert done.headers["X-Correlation-ID"] == "e2e-build"
    api.call("PATCH", f"/sorties/{ship['id']}", 200, json={"status": "in_progress"})

    checkpoint = api.call("POST", "/checkpoints", 201, json={"stream_id": mission["id"]})[
        "checkpoint"
    ]
    api.call("PATCH", f"/sorties/{ship['id']}", 200, json={"status": "completed"})
    restored = api.call(
        "POST", f"/checkpoints/{checkpoint['id']}/restore", 200, json={"confirm": True}
    )
    assert restored["restored"] is True
    after = api.call("GET", f"/missions/{mission['id']}", 200)
    assert {s["id"]: s["status"] for s in after["sorties"]} == {
        build["id"]: "completed",
        ship["id"]: "in_progress",
    }

    by_type = api.call(
        "GET", "/events", 200, params={"type": "sortie_completed,fleet_recovered", "limit": 1000}
    )
    assert [e["event_type"] for e in by_type["events"]].count("fleet_recovered") == 3
    assert api.call("GET", "/events", 200, params={"correlation_id": "e2e-build"})["total"] == 1
    stream = api.call("GET", f"/streams/{ship['stream_id']}/events", 200)
    assert [e["event_type"] for e in stream["events"]][-1] == "fleet_recovered"
    lists = api.call(
        "GET",
        "/sorties",
        200,
        params={"mission_id": mission["id"], "min_position": int(done.headers["X-Fleet-Position"])},
    )
    assert lists["total"] == 2


def test_ctrl_c_does_not_wait_for_a_client_that_never_finishes_its_request(
    tmp_path: Path,
) -> None:
    """A client holding half a request keeps a worker's thread reading it, without a
    timeout: Ctrl-C waited for the master's SIGKILL after ``graceful_timeout`` (30 s)."""
    env = clean_environ(
        PERSISTENCE_MODULE="eventsourcing.sqlite", SQLITE_DBNAME=str(tmp_path / "fleet.sqlite3")
    )
    with gunicorn(env, tmp_path / "gunicorn.log") as (base, process):
        address = urlsplit(base)
        with socket.create_connection((address.hostname, address.port)) as client:
            client.sendall(b"GET /health HTTP/1.1\r\nHost")  # and nothing more
            time.sleep(0.5)  # the worker has taken it and waits for the rest
            began = time.monotonic()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=25)
            assert time.monotonic() - began < 10, (tmp_path / "gunicorn.log").read_text()


def test_ctrl_c_while_a_worker_loads_the_app_stops_the_server(tmp_path: Path) -> None:
    """Ctrl-C reaches every process, then the master sends its workers SIGQUIT: a worker
    still loading the app ran gthread's own handler for both, and the second could deadlock
    inside the first's thread-pool shutdown until the master's SIGKILL (30 s)."""
    env = clean_environ(
        PERSISTENCE_MODULE="eventsourcing.sqlite",
        SQLITE_DBNAME=str(tmp_path / "fleet.sqlite3"),
        WEB_CONCURRENCY="2",
    )
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            gunicorn_command(free_port()),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        master = psutil.Process(process.pid)
        deadline = time.monotonic() + 30
        while not master.children() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert master.children(), log.read_text()
        began = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C
        process.wait(timeout=25)
        assert time.monotonic() - began < 10, log.read_text()
        assert "SIGKILL" not in log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
