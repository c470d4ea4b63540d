"""Acquirers racing for one path: exactly one wins each round, on SQLite and PostgreSQL.

The path's stream id is derived from the path, so the store's optimistic concurrency
decides each race; every loser gets a 409 naming the winner and leaves exactly one
``lock_conflict``. Round 1 races to create the path's stream, later rounds to take a
released path. The figures are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections import Counter
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from application import Conflict, Fleet
from tests.processes import fleet_processes

ACQUIRERS = 16
ROUNDS = 5
PATH = "src/contested.py"
WAIT = 120  # seconds any barrier or result may take before the test fails
# A Fleet opens two PostgreSQL pools (store, projections) of POSTGRES_POOL_SIZE connections
# (library default 5, opened eagerly): 16 processes at the default would pass the server's
# max_connections (100) and wait forever for connections. One each is enough here.
SMALL_POOLS = {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"}

Outcome = tuple[int, str, str, str | None, str | None]  # round, who, kind, lock id, holder


def contend(fleet: Fleet, who: str, barrier: Any, results: Any) -> None:
    """One acquirer: each round, start with the others, try once, report, let the winner release."""
    for round_no in range(ROUNDS):
        barrier.wait(timeout=WAIT)
        won: str | None = None
        try:
            lock = fleet.acquire_lock(f"./{PATH}", who, timeout_ms=600_000)
            won = lock["id"]
            results.put((round_no, who, "won", won, who))
        except Conflict as exc:
            holder = exc.extra.get("lock") or {}
            results.put((round_no, who, "lost", holder.get("id"), holder.get("reserved_by")))
        except Exception as exc:  # noqa: BLE001 - reported; the test fails on it
            results.put((round_no, who, "error", repr(exc), traceback.format_exc()))
        barrier.wait(timeout=WAIT)  # every acquirer has answered
        if won is not None:
            fleet.release_lock(won, who)
        barrier.wait(timeout=WAIT)  # the path is free again


def process_acquirer(env: dict[str, str], who: str, barrier: Any, results: Any) -> None:
    """Runs in a spawned process, with a Fleet of its own on the shared store."""
    fleet = Fleet(env=env)
    try:
        contend(fleet, who, barrier, results)
    except BaseException:
        barrier.abort()
        raise
    finally:
        fleet.close()


def collect(results: Any, count: int) -> list[Outcome]:
    outcomes = []
    try:
        for _ in range(count):
            outcomes.append(results.get(timeout=WAIT))
    except queue.Empty:
        pytest.fail(f"acquirers did not report in time; got {len(outcomes)} of {count}")
    return outcomes


def check_rounds(fleet: Fleet, outcomes: list[Outcome], label: str) -> None:
    errors = [o for o in outcomes if o[2] == "error"]
    assert errors == [], errors
    conflicts = Counter(
        e["data"]["existing_lock_id"] for e in fleet.events(type="lock_conflict", limit=1000)[0]
    )
    winners = 0
    for round_no in range(ROUNDS):
        this = [o for o in outcomes if o[0] == round_no]
        assert len(this) == ACQUIRERS
        won = [o for o in this if o[2] == "won"]
        assert len(won) == 1, (round_no, this)  # exactly one winner, every round
        _, winner, _, lock_id, _ = won[0]
        losers = [o for o in this if o[2] == "lost"]
        assert {(o[3], o[4]) for o in losers} == {(lock_id, winner)}  # 409 names the winner
        assert conflicts[lock_id] == len(losers) == ACQUIRERS - 1
        winners += 1
    total_conflicts = sum(conflicts.values())
    attempts = len(outcomes)
    _, acquired = fleet.events(type="lock_acquired", limit=1)
    assert (winners, total_conflicts, acquired) == (ROUNDS, attempts - ROUNDS, ROUNDS)
    print(
        f"\nlock race [{fleet.backend}, {label}]: {ACQUIRERS} acquirers x {ROUNDS} rounds: "
        f"attempts={attempts} winners={winners} conflicts={attempts - winners} "
        f"lock_conflict events={total_conflicts}"
    )


@pytest.mark.slow
def test_threads_race_for_one_path(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    lost: list[int] = []
    save = fleet.app.save

    def counting_save(*aggregates: Any) -> Any:
        try:
            return save(*aggregates)
        except IntegrityError:  # a save that lost the race: _write re-reads and retries
            lost.append(1)
            raise

    monkeypatch.setattr(fleet.app, "save", counting_save)
    barrier = threading.Barrier(ACQUIRERS)
    results: queue.Queue[Outcome] = queue.Queue()
    threads = [
        threading.Thread(target=contend, args=(fleet, f"t{n:02d}", barrier, results))
        for n in range(ACQUIRERS)
    ]
    for thread in threads:
        thread.start()
    outcomes = collect(results, ACQUIRERS * ROUNDS)
    for thread in threads:
        thread.join(timeout=WAIT)
    assert not any(thread.is_alive() for thread in threads)
    check_rounds(fleet, outcomes, f"threads, one Fleet, {len(lost)} lost saves retried")
    # Commands of one process take turns: no save can lose to a sibling thread (the race
    # between processes is test_processes_race_for_one_path).
    assert not lost


@pytest.mark.slow
def test_processes_race_for_one_path(backend: dict[str, str]) -> None:
    Fleet(env=backend).close()  # migrate once, like a deploy step
    ctx = fleet_processes()
    barrier = ctx.Barrier(ACQUIRERS)
    results = ctx.Queue()
    env = {**backend, **SMALL_POOLS}
    procs = [
        ctx.Process(target=process_acquirer, args=(env, f"p{n:02d}", barrier, results))
        for n in range(ACQUIRERS)
    ]
    for proc in procs:
        proc.start()
    try:
        outcomes = collect(results, ACQUIRERS * ROUNDS)
    finally:
        for proc in procs:
            proc.join(timeout=WAIT)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        results.close()
        results.join_thread()
    assert [proc.exitcode for proc in procs] == [0] * ACQUIRERS
    fleet = Fleet(env=backend)
    try:
        check_rounds(fleet, outcomes, "processes, a Fleet each")
    finally:
        fleet.close()
