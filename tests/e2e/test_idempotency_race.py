"""Sixteen identical keyed requests at once, against gunicorn with several worker processes.

The workers share nothing but the store: one write with the key commits, and every other
request's transaction fails on the key as a whole (its events with it) and replays.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers import UNTRACED, clean_environ, gunicorn

pytestmark = [pytest.mark.slow, UNTRACED, pytest.mark.timeout(180)]
RACERS = 16


def race(base: str, method: str, path: str, json_body: dict[str, Any], key: str) -> list[Any]:
    start = threading.Barrier(RACERS)
    answers: list[Any] = []

    def one() -> None:
        with requests.Session() as session:
            start.wait()
            answers.append(
                session.request(
                    method,
                    f"{base}/api/v1{path}",
                    json=json_body,
                    headers={"Idempotency-Key": key},
                    timeout=60,
                )
            )

    threads = [threading.Thread(target=one) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def total(base: str) -> int:
    return int(requests.get(f"{base}/api/v1/events?limit=1", timeout=10).json()["total"])


def check(answers: list[Any], status: int) -> None:
    """Exactly one first answer; every other one replays it, or is a 409 'in flight'."""
    ok = [a for a in answers if a.status_code == status]
    in_flight = [a for a in answers if a.status_code == 409]
    assert len(ok) + len(in_flight) == RACERS, [(a.status_code, a.text) for a in answers]
    assert sum("Idempotent-Replayed" not in a.headers for a in ok) == 1
    assert len({a.content for a in ok}) == 1
    assert len({(a.headers["ETag"], a.headers["X-Fleet-Position"]) for a in ok}) == 1
    for a in in_flight:
        assert a.json()["type"] == "urn:fleet:problem:idempotency-key-in-flight"
        assert "Retry-After" in a.headers


def test_sixteen_racers_on_several_workers_record_one_command(
    backend: dict[str, str], tmp_path: Path
) -> None:
    env = clean_environ(**backend, WEB_CONCURRENCY="4", FLEET_SWEEP_INTERVAL="0")
    with gunicorn(env, tmp_path / "gunicorn.log", "--threads", "4", "--timeout", "60") as (
        base,
        _,
    ):
        before = total(base)
        check(race(base, "POST", "/sorties", {"description": "once"}, "create"), 201)
        assert total(base) == before + 1
        specialist = {"specialist_id": "s1", "name": "S"}
        requests.post(f"{base}/api/v1/specialists/register", json=specialist, timeout=10)
        sortie = requests.post(
            f"{base}/api/v1/sorties", json={"description": "D"}, timeout=10
        ).json()["sortie"]
        before = total(base)
        assign = {"status": "assigned", "assigned_to": "s1"}
        check(race(base, "PATCH", f"/sorties/{sortie['id']}", assign, "assign"), 200)
        assert total(base) == before + 1
