"""The agent work loop against real gunicorn servers with several worker processes, on both
backends: racing claimers spread over the workers (processes, each with its own pool)."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers import UNTRACED, clean_environ, gunicorn

pytestmark = [pytest.mark.slow, UNTRACED, pytest.mark.timeout(180)]
WORKERS = "4"


def post(base: str, path: str, status: int, **body: Any) -> Any:
    response = requests.post(f"{base}/api/v1{path}", json=body, timeout=30)
    assert response.status_code == status, (path, response.status_code, response.text)
    return response.json()


def test_sixteen_claimers_over_four_workers_win_ten_distinct_sorties(
    backend: dict[str, str], tmp_path: Path
) -> None:
    env = clean_environ(**backend)
    with gunicorn(env, tmp_path / "gunicorn.log", "--workers", WORKERS) as (base, _):
        for n in range(16):
            post(base, "/specialists/register", 201, specialist_id=f"claimer-{n}", name="C")
        sorties = {
            post(base, "/sorties", 201, description=f"s{n}")["sortie"]["id"] for n in range(10)
        }
        barrier = threading.Barrier(16)
        answers: list[tuple[int, Any]] = [(0, None)] * 16

        def claim(n: int) -> None:
            with requests.Session() as session:  # a connection of its own: any worker
                barrier.wait(timeout=30)
                response = session.post(
                    f"{base}/api/v1/sorties/claim",
                    json={"specialist_id": f"claimer-{n}"},
                    timeout=60,
                )
                answers[n] = (response.status_code, response.json() if response.content else None)

        threads = [threading.Thread(target=claim, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        statuses = Counter(status for status, _ in answers)
        assert statuses == {200: 10, 204: 6}, answers
        won = [(n, data["sortie"]) for n, (status, data) in enumerate(answers) if status == 200]
        assert {s["id"] for _, s in won} == sorties
        assert all(s["assigned_to"] == f"claimer-{n}" for n, s in won)
        events = requests.get(
            f"{base}/api/v1/events", params={"type": "sortie_assigned", "limit": 100}, timeout=10
        ).json()["events"]
        assert sorted(e["stream_id"] for e in events) == sorted(sorties)  # each assigned once
        print(
            f"\nclaim race [{backend['PERSISTENCE_MODULE']}, {WORKERS} workers]: {dict(statuses)}"
        )


def test_a_graceful_stop_ends_open_waits_and_streams_promptly(
    backend: dict[str, str], tmp_path: Path
) -> None:
    """SIGTERM: a 30 s long-poll answers (empty), a live feed ends, the worker exits, all in
    a few seconds, far inside gunicorn's 30 s graceful timeout."""
    env = clean_environ(**backend)
    with gunicorn(env, tmp_path / "gunicorn.log") as (base, process):
        ended: dict[str, tuple[float, Any]] = {}
        opened = threading.Event()

        def long_poll() -> None:
            response = requests.get(f"{base}/api/v1/mailboxes/idle/messages?wait=30", timeout=60)
            ended["poll"] = (time.monotonic(), (response.status_code, response.json()["total"]))

        def stream() -> None:
            with requests.get(f"{base}/api/v1/events/stream", stream=True, timeout=60) as response:
                lines = response.iter_lines()
                assert next(lines) == b": fleet event stream"
                opened.set()
                for _ in lines:
                    pass
            ended["stream"] = (time.monotonic(), response.status_code)

        threads = [threading.Thread(target=long_poll), threading.Thread(target=stream)]
        for thread in threads:
            thread.start()
        assert opened.wait(10)
        time.sleep(0.5)  # the long-poll is parked too
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        for thread in threads:
            thread.join(10)
        exited = time.monotonic() - stopped_at
        assert ended["poll"][1] == (200, 0)
        assert ended["stream"][1] == 200
        assert ended["poll"][0] - stopped_at < 3 and ended["stream"][0] - stopped_at < 3
        assert exited < 8, exited
        print(f"\ngraceful stop [{backend['PERSISTENCE_MODULE']}]: worker gone in {exited:.2f} s")
