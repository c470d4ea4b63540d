"""End to end: gunicorn.conf.py with two workers (metrics summed over both, JSON logs) and
the ``fleet`` CLI's JSON logs. Servers and commands run as real processes, bounded in time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import BIN, UNTRACED, clean_environ, gunicorn, stop, wait_until_up
from tests.ui.conftest import CSRF

DEADLINE = 30.0  # seconds any one wait below may take before the test fails

pytestmark = [pytest.mark.slow, UNTRACED, pytest.mark.timeout(120)]


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """Every stderr line, each parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_environ(
        PERSISTENCE_MODULE="eventsourcing.sqlite",
        SQLITE_DBNAME=str(tmp_path / "fleet.sqlite3"),
        **extra,
    )


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Server]:
    """``gunicorn -c gunicorn.conf.py`` with WEB_CONCURRENCY=2, as ``make run`` starts it."""
    env = clean_env(tmp_path, WEB_CONCURRENCY="2", FLEET_SWEEP_INTERVAL="0")
    log_path = tmp_path / "stderr.log"
    with gunicorn(env, log_path, stderr_only=True) as (base, process):
        yield Server(base, process, log_path)


def eventually(check: Any, what: str) -> Any:
    """Poll ``check()`` until it returns something truthy (bounded by DEADLINE)."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = requests.get(f"{base}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def served_by(server: Server, route: str) -> set[int]:
    return {
        line["pid"]
        for line in server.lines()
        if line["logger"] == "fleet.access" and line.get("route") == route
    }


def test_two_workers_share_metrics_and_log_json(two_workers: Server) -> None:
    server = two_workers
    url = f"{server.base}/api/v1/missions"
    sent = 0

    def one(index: int) -> None:
        # A new connection each time, so either worker may accept it.
        response = requests.get(url, headers={"Connection": "close"}, timeout=10)
        assert response.status_code == 200

    with ThreadPoolExecutor(8) as pool:
        while len(served_by(server, "/api/v1/missions")) < 2:
            assert sent < 800, "one worker answered every request"
            list(pool.map(one, range(40)))
            sent += 40
            time.sleep(0.05)  # let the access lines reach the log

    ids = {"X-Request-ID": "e2e-req", "X-Correlation-ID": "e2e-corr"}
    created = requests.post(url, json={"title": "m"}, headers=ids, timeout=10)
    assert created.status_code == 201

    # Whichever worker answers the scrape, it reports the requests both served.
    samples = scrape(server.base)
    labels = frozenset({"method": "GET", "route": "/api/v1/missions", "status": "200"}.items())
    assert samples[("fleet_http_requests_total", labels)] == sent
    assert samples[("fleet_http_request_duration_seconds_count", labels)] == sent
    appended = frozenset({"event_type": "mission_created"}.items())
    assert samples[("fleet_events_appended_total", appended)] == 1
    for name in ("specialists", "work", "checkpoints", "messages", "locks"):
        key = ("fleet_projection_lag_events", frozenset({"projection": name}.items()))
        assert samples[key] == 0

    lines = server.lines()  # every stderr line is JSON: gunicorn's and the app's
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    (post,) = [line for line in lines if line.get("request_id") == "e2e-req"]
    assert post["correlation_id"] == "e2e-corr"
    assert (post["method"], post["path"], post["status"]) == ("POST", "/api/v1/missions", 201)
    assert post["duration_ms"] > 0


def test_a_dead_worker_is_marked_and_the_metrics_directory_removed(two_workers: Server) -> None:
    server = two_workers
    started = next(
        line["message"] for line in server.lines() if "multiprocess mode" in line["message"]
    )
    directory = Path(re.sub(r".* in ", "", started))
    assert directory.is_dir()
    victim = eventually(
        lambda: [
            int(m.group(1))
            for path in directory.glob("gauge_livesum_*.db")
            if (m := re.fullmatch(r"gauge_livesum_(\d+)\.db", path.name))
        ],
        "the workers' live gauges",
    )[0]
    os.kill(victim, signal.SIGKILL)
    # child_exit drops the dead worker's live gauge; gunicorn boots a replacement.
    eventually(lambda: not (directory / f"gauge_livesum_{victim}.db").exists(), "child_exit")
    wait_until_up(server.base, {"gunicorn": server.process}, server.log)
    stop(server.process)
    assert not directory.exists()  # on_exit removes the directory on_starting made


def test_the_cli_logs_json_on_stderr(tmp_path: Path) -> None:
    log_path = tmp_path / "stderr.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [str(BIN / "fleet"), "projector"],
            cwd=tmp_path,
            env=clean_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        eventually(lambda: "projector running" in log_path.read_text(), "the projector")
    finally:
        stop(process)
    assert process.returncode == 0
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [line["message"] for line in lines][-1] == "projector stopped"
    running = next(line for line in lines if line["message"].startswith("projector running"))
    assert running["logger"] == "fleet.cli" and running["backend"] == "sqlite"
    assert running["pid"] == process.pid


def test_a_console_form_from_one_worker_is_taken_by_the_other(two_workers: Server) -> None:
    """Without FLEET_SECRET_KEY or a token, the workers of one start sign sessions alike
    (``gunicorn.conf.py``'s ``on_starting``): a form's CSRF token from either is good."""
    server = two_workers
    browser = requests.Session()
    close = {"Connection": "close"}  # a new connection each time: either worker may take it
    page = browser.get(f"{server.base}/ui/", headers=close, timeout=10).text
    found = CSRF.search(page)
    assert found, "no CSRF token on the overview"
    route = "/ui/mailboxes/<mailbox_id>/send"
    sent = 0
    while len(served_by(server, route)) < 2:
        assert sent < 200, "one worker answered every post"
        answer = browser.post(
            f"{server.base}/ui/mailboxes/ops/send",
            data={"body": f"note {sent}", "thread_id": "t", "csrf_token": found[1], "next": "/ui/"},
            headers=close,
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 303, answer.text[:300]
        sent += 1
