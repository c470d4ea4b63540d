"""The agent work loop against real gunicorn servers with several worker processes, on both
backends: racing claimers spread over the workers (processes, each with its own pool)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers import clean_environ, gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
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
        sorties = {post(base, "/sorties", 201, description=f"s{n}")["sortie"]["id"] for n in range(10)}
        barrier = threading.Barrier(16)
        answers: list[tuple[int, Any]] = [(0, None)] * 16

        def claim(n: int) -> None:
            with requests.Session() as session:  # a connection of its own: any worker
                barrier.wait(timeout=30)
                response = session.post(
                    f"{base}/api/v1/sorties/claim", json={"specialist_id": f"claimer-{n}"}, timeout=60
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
        print(f"\nclaim race [{backend['PERSISTENCE_MODULE']}, {WORKERS} workers]: {dict(statuses)}")
