"""Liveness sweeps on both backends: overdue locks, silent specialists; the clock is injected."""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from application import Fleet
from tests.processes import fleet_processes

LATER = timedelta(days=1)  # far past any default lock timeout and heartbeat timeout


def later(fleet: Fleet, delta: timedelta = LATER) -> datetime:
    return fleet.now() + delta


def types(fleet: Fleet, *names: str) -> list[str]:
    events, _ = fleet.events(type=",".join(names), limit=1000)
    return [e["event_type"] for e in events]


def test_overdue_locks_get_lock_timeout(fleet: Fleet) -> None:
    short = fleet.acquire_lock("short.txt", "ace", timeout_ms=1000)
    long = fleet.acquire_lock("long.txt", "bee", timeout_ms=60_000)
    released = fleet.acquire_lock("gone.txt", "cat", timeout_ms=1000)
    fleet.release_lock(released["id"], "cat")
    expiry = datetime.fromisoformat(short["expires_at"])
    assert fleet.sweep(now=expiry - timedelta(microseconds=1))["locks_expired"] == 0
    assert fleet.sweep(now=expiry) == {"locks_expired": 1, "specialists_inactive": 0}
    assert fleet.get_lock(short["id"])["status"] == "expired"
    assert fleet.get_lock(long["id"])["status"] == "active"
    assert fleet.sweep(now=expiry)["locks_expired"] == 0  # nothing twice
    [event] = fleet.events(type="lock_timeout")[0]
    assert event["data"]["lock_id"] == short["id"]
    assert event["metadata"]["source"] == "sweep"
    assert [lock["id"] for lock in fleet.list_locks()[0]] == [long["id"]]
    assert fleet.health()["locks"] == {"active": 1}


def test_silent_specialists_become_inactive(fleet: Fleet) -> None:
    for name in ("ace", "bee", "cat", "dog", "eel"):
        fleet.register_specialist(specialist_id=name, name=name.title())
    fleet.heartbeat("bee", status="busy")
    fleet.heartbeat("cat", status="idle")
    fleet.complete_specialist("dog", reason="success")
    fleet.deregister_specialist("eel")
    heard = datetime.fromisoformat(fleet.get_specialist("cat")["last_seen"])
    # 60 s (the default) after the last heartbeat: not yet; a moment later: yes.
    assert fleet.sweep(now=heard + timedelta(seconds=60))["specialists_inactive"] == 2
    assert fleet.sweep(now=heard + timedelta(seconds=60, microseconds=1)) == {
        "locks_expired": 0,
        "specialists_inactive": 1,
    }
    statuses = {s["id"]: s["status"] for s in fleet.list_specialists()[0]}
    assert statuses == {
        "ace": "inactive",
        "bee": "inactive",
        "cat": "inactive",
        "dog": "completed",
        "eel": "inactive",
    }
    events = fleet.events(type="specialist_inactive")[0]
    reasons = {e["data"]["reason"] for e in events if e["metadata"].get("source") == "sweep"}
    assert reasons == {"heartbeat_timeout"} and len(events) == 4  # eel was deregistered
    assert datetime.fromisoformat(events[-1]["data"]["last_seen"]) == heard
    assert fleet.sweep(now=later(fleet))["specialists_inactive"] == 0
    # A heartbeat brings one back; its silence counts again from then.
    fleet.heartbeat("ace")
    assert fleet.sweep(now=fleet.now())["specialists_inactive"] == 0


def test_the_heartbeat_timeout_is_a_setting(backend: dict[str, str]) -> None:
    fleet = Fleet(env={**backend, "FLEET_HEARTBEAT_TIMEOUT": "5"})
    try:
        fleet.register_specialist(specialist_id="ace", name="Ace")
        seen = datetime.fromisoformat(fleet.get_specialist("ace")["last_seen"])
        assert fleet.sweep(now=seen + timedelta(seconds=5))["specialists_inactive"] == 0
        assert fleet.sweep(now=seen + timedelta(seconds=5.5))["specialists_inactive"] == 1
        fleet.app.env["FLEET_HEARTBEAT_TIMEOUT"] = "soon"
        with pytest.raises(ValueError, match="FLEET_HEARTBEAT_TIMEOUT"):
            fleet.sweep()
    finally:
        fleet.close()


def test_the_clock_is_injected_and_must_be_aware(fleet: Fleet) -> None:
    lock = fleet.acquire_lock("clock.txt", "ace", timeout_ms=1000)
    fleet.clock = lambda: datetime.fromisoformat(lock["expires_at"])
    assert fleet.sweep()["locks_expired"] == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        fleet.sweep(now=datetime(2026, 1, 1))  # naive: the point of the test


def seed(fleet: Fleet, locks: int, specialists: int) -> None:
    for n in range(locks):
        fleet.acquire_lock(f"seed/{n}.txt", f"holder-{n}", timeout_ms=1000)
    for n in range(specialists):
        fleet.register_specialist(specialist_id=f"quiet-{n}", name="Quiet")


def check_no_duplicates(fleet: Fleet, counts: list[dict[str, int]], locks: int, quiet: int) -> None:
    assert sum(c["locks_expired"] for c in counts) == locks
    assert sum(c["specialists_inactive"] for c in counts) == quiet
    assert len(types(fleet, "lock_timeout")) == locks
    assert len(types(fleet, "specialist_inactive")) == quiet
    assert fleet.list_locks()[1] == 0
    assert fleet.list_specialists(status="inactive")[1] == quiet


def test_two_sweepers_at_once_record_each_event_once(backend: dict[str, str]) -> None:
    """Two Fleets (two connection pools, as two processes would have) sweep the same store."""
    setup = Fleet(env=backend)
    seed(setup, locks=20, specialists=10)
    now = later(setup)
    sweepers = [Fleet(env=backend), Fleet(env=backend)]
    barrier = threading.Barrier(len(sweepers))
    counts: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def run(fleet: Fleet) -> None:
        try:
            barrier.wait(timeout=30)
            counts.append(fleet.sweep(now=now))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        setup.projector.catch_up()
        check_no_duplicates(setup, counts, locks=20, quiet=10)
        print(f"\ntwo sweepers [{setup.backend}, threads]: {counts}")
    finally:
        for fleet in (setup, *sweepers):
            fleet.close()


def process_sweeper(env: dict[str, str], now: datetime, barrier: Any, results: Any) -> None:
    fleet = Fleet(env=env)
    try:
        barrier.wait(timeout=60)
        results.put(fleet.sweep(now=now))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        barrier.abort()
        results.put({"error": repr(exc)})
    finally:
        fleet.close()


@pytest.mark.slow
def test_two_sweeper_processes_record_each_event_once(backend: dict[str, str]) -> None:
    setup = Fleet(env=backend)
    try:
        seed(setup, locks=20, specialists=10)
        now = later(setup)
        ctx = fleet_processes()
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(target=process_sweeper, args=(backend, now, barrier, results))
            for _ in range(2)
        ]
        for proc in procs:
            proc.start()
        try:
            counts = [results.get(timeout=90) for _ in procs]
        except queue.Empty:
            pytest.fail("sweeper processes did not report in time")
        finally:
            for proc in procs:
                proc.join(timeout=30)
        assert all("error" not in c for c in counts), counts
        setup.projector.catch_up()
        check_no_duplicates(setup, counts, locks=20, quiet=10)
        print(f"\ntwo sweepers [{setup.backend}, processes]: {counts}")
    finally:
        setup.close()


def test_the_background_sweeper_runs_until_close(backend: dict[str, str]) -> None:
    fleet = Fleet(env=backend)
    lock = fleet.acquire_lock("bg.txt", "ace", timeout_ms=1000)
    fleet.clock = lambda: datetime.fromisoformat(lock["expires_at"])
    reports: list[dict[str, int]] = []
    thread = fleet.start_sweeper(0.01)
    deadline = time.monotonic() + 10
    while not types(fleet, "lock_timeout") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert types(fleet, "lock_timeout") == ["lock_timeout"]
    fleet.start_sweeper(0.01, report=reports.append)  # replaces the first one
    assert not thread.is_alive()
    fleet.close()
    assert fleet.sweeps._sweeper is None


def test_a_failing_pass_is_logged_and_the_loop_goes_on(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    calls: list[int] = []

    def clock() -> datetime:
        calls.append(1)
        if len(calls) == 1:
            return datetime(2026, 1, 1)  # naive: this pass fails
        stop.set()
        return datetime.now(UTC)

    fleet.clock = clock
    reports: list[dict[str, int]] = []
    with caplog.at_level(logging.ERROR):
        fleet.sweep_forever(stop, 0.001, report=reports.append)
    assert "sweep failed" in caplog.text
    assert reports == [{"locks_expired": 0, "specialists_inactive": 0}]
