"""Leases on both backends: a specialist that stops (inactive or failed) releases the sorties
it holds, once, in the same save as its own event."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from application import Fleet


def held_in_every_status(fleet: Fleet, holder: str) -> dict[str, dict[str, Any]]:
    """Sorties of ``holder`` in each status; only the first three are leases."""
    sorties = {}
    for status in ("assigned", "in_progress", "blocked", "review", "completed"):
        sortie = fleet.create_sortie(description=status, assigned_to=holder)
        steps = {
            "assigned": [],
            "in_progress": [{"status": "in_progress"}],
            "blocked": [{"status": "in_progress"}, {"status": "blocked", "reason": "waits"}],
            "review": [{"status": "in_progress"}, {"status": "review", "reviewer_id": "rev"}],
            "completed": [{"status": "in_progress"}, {"status": "completed"}],
        }[status]
        for step in steps:
            fleet.update_sortie(sortie["id"], **step)
        sorties[status] = fleet.get_sortie(sortie["id"])
        assert sorties[status]["status"] == status
    return sorties


def released(fleet: Fleet) -> list[dict[str, Any]]:
    return fleet.events(type="sortie_released", limit=1000)[0]


@pytest.mark.parametrize(
    ("end", "reason"),
    [("deregister", "deregistered"), ("fail", "specialist_failed"), ("sweep", "heartbeat_timeout")],
)
def test_a_stopped_specialist_releases_what_it_holds(fleet: Fleet, end: str, reason: str) -> None:
    fleet.register_specialist(specialist_id="ace", name="Ace", capabilities=["python"])
    fleet.register_specialist(specialist_id="bee", name="Bee")
    sorties = held_in_every_status(fleet, "ace")
    other = fleet.create_sortie(description="bee's", assigned_to="bee")
    if end == "deregister":
        fleet.deregister_specialist("ace")
    elif end == "fail":
        fleet.fail_specialist("ace", error="crashed")
    else:
        fleet.heartbeat("bee")  # bee stays alive
        silent_at = fleet.now() + timedelta(seconds=61)
        fleet.clock = lambda: silent_at
        bee_seen = fleet.get_specialist("bee")["last_seen"]
        assert fleet.sweep(now=silent_at)["specialists_inactive"] >= 1
        assert fleet.get_specialist("bee")["last_seen"] == bee_seen
    events = released(fleet)
    by_stream = {e["stream_id"]: e for e in events if e["stream_id"] != other["id"]}
    leased = {
        s["id"]: status
        for status, s in sorties.items()
        if status in ("assigned", "in_progress", "blocked")
    }
    assert set(by_stream) == set(leased)
    for stream, event in by_stream.items():
        assert event["data"] == {
            "reason": reason,
            "previous_assignee": "ace",
            "previous_status": leased[stream],
        }
        now = fleet.get_sortie(stream)
        assert (now["status"], now["assigned_to"], now["blocker"]) == ("pending", None, None)
        history = [e["event_type"] for e in fleet.stream_events(stream)]
        assert history[0] == "sortie_created" and history[-1] == "sortie_released"
    for status in ("review", "completed"):  # not leases: untouched
        assert fleet.get_sortie(sorties[status]["id"])["status"] == status
    # The specialist's event and the releases were one save: one correlation.
    stop_type = {
        "deregister": "specialist_inactive",
        "fail": "specialist_failed",
        "sweep": "specialist_inactive",
    }[end]
    [stopped] = [
        e
        for e in fleet.events(type=stop_type)[0]
        if e["stream_id"] != fleet.get_specialist("bee")["stream_id"]
    ]
    assert {e["correlation_id"] for e in events} == {stopped["correlation_id"]}
    # Back in the queue: a live specialist claims them (listing agrees).
    pending = {s["id"] for s in fleet.list_sorties(status="pending")[0]}
    assert set(leased) <= pending
    fleet.register_specialist(specialist_id="cat", name="Cat")
    claimed = {fleet.claim_sortie("cat")["id"] for _ in leased}  # type: ignore[index]
    assert claimed == set(leased)
    if end != "sweep":
        assert fleet.get_sortie(other["id"])["assigned_to"] == "bee"


def test_nothing_held_nothing_released(fleet: Fleet) -> None:
    fleet.register_specialist(specialist_id="ace", name="Ace")
    fleet.create_sortie(description="free")
    fleet.deregister_specialist("ace")
    assert released(fleet) == []


def test_racing_sweepers_release_each_sortie_once(backend: dict[str, str]) -> None:
    setup = Fleet(env=backend)
    sweepers = [Fleet(env=backend) for _ in range(3)]
    try:
        for n in range(5):
            setup.register_specialist(specialist_id=f"quiet-{n}", name="Quiet")
            for m in range(3):
                setup.create_sortie(description=f"{n}/{m}", assigned_to=f"quiet-{n}")
        now = setup.now() + timedelta(days=1)
        barrier = threading.Barrier(len(sweepers))
        errors: list[BaseException] = []

        def run(fleet: Fleet) -> None:
            try:
                barrier.wait(timeout=30)
                fleet.sweep(now=now)
            except BaseException as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(f,)) for f in sweepers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        setup.projector.catch_up()
        per_stream = Counter(e["stream_id"] for e in released(setup))
        assert len(per_stream) == 15 and set(per_stream.values()) == {1}
        assert len(setup.events(type="specialist_inactive")[0]) == 5
        assert setup.list_sorties(status="pending")[1] == 15
    finally:
        for fleet in (setup, *sweepers):
            fleet.close()
