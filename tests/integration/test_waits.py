"""Long-polls on both backends: ``wait`` on events, mailbox messages and the claim.

A wait ends as soon as something matching is written, by this Fleet or by another one on
the same store (another pool, as another process or host would be), and not for writes
that do not match; an expired wait answers as it would have without one.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from application import Fleet
from application.errors import Unavailable, ValidationError


@pytest.fixture
def other(backend: dict[str, str]) -> Iterator[Fleet]:
    """A second Fleet on the same store: its writes reach ``fleet`` only through the log."""
    fleet = Fleet(env=backend)
    yield fleet
    fleet.close()


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def after(seconds: float, action: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_expired_waits_answer_as_without_one(fleet: Fleet) -> None:
    fleet.register_specialist(specialist_id="ace", name="Ace")
    head = fleet.head_position()
    (events, seconds) = timed(lambda: fleet.events(after=head, wait=0.4))
    assert events == ([], 0) and 0.35 <= seconds < 3
    (messages, seconds) = timed(lambda: fleet.list_messages("inbox", wait=0.4))
    assert messages == ([], 0) and 0.35 <= seconds < 3
    (claimed, seconds) = timed(lambda: fleet.claim_sortie("ace", wait=0.4))
    assert claimed is None and 0.35 <= seconds < 3
    assert fleet.wait_for_messages("inbox", wait=0.1) == []


@pytest.mark.parametrize("writer", ["same", "other"])
def test_a_matching_write_ends_the_wait_at_once(fleet: Fleet, other: Fleet, writer: str) -> None:
    source = fleet if writer == "same" else other
    fleet.send_message("inbox", "note", {"n": 0})
    fleet.read_message(fleet.list_messages("inbox")[0][0]["id"], reader_id="me")
    # Not pending, another mailbox: nothing that matches "pending in inbox".
    after(0.1, lambda: source.send_message("elsewhere", "note", {"n": 1}))
    thread = after(0.3, lambda: source.send_message("inbox", "note", {"n": 2}))
    (found, seconds) = timed(lambda: fleet.wait_for_messages("inbox", status="pending", wait=20))
    thread.join()
    assert [m["content"] for m in found] == [{"n": 2}]
    assert 0.25 <= seconds < 2.5, seconds

    head = fleet.head_position()
    thread = after(0.3, lambda: source.create_mission(title="m"))
    after(0.1, lambda: source.send_message("inbox", "note", {"n": 3}))  # not a mission event
    (events, seconds) = timed(lambda: fleet.events(type="mission_created", after=head, wait=20))
    thread.join()
    assert [e["event_type"] for e in events[0]] == ["mission_created"]
    assert 0.25 <= seconds < 2.5, seconds


def test_events_wait_without_after_starts_at_zero(fleet: Fleet) -> None:
    fleet.create_mission(title="old")
    (events, seconds) = timed(lambda: fleet.events(type="mission_created", wait=10))
    assert events[1] == 1 and seconds < 2  # the old event matches: no waiting


@pytest.mark.parametrize("writer", ["same", "other"])
def test_a_waiting_claim_takes_a_sortie_as_it_appears(
    fleet: Fleet, other: Fleet, writer: str
) -> None:
    source = fleet if writer == "same" else other
    fleet.register_specialist(specialist_id="ace", name="Ace", capabilities=["go"])
    after(
        0.1, lambda: source.create_sortie(description="needs rust", required_capabilities=["rust"])
    )
    thread = after(0.3, lambda: source.create_sortie(description="go"))
    (claimed, seconds) = timed(lambda: fleet.claim_sortie("ace", wait=20))
    thread.join()
    assert claimed is not None and claimed["description"] == "go"
    assert 0.25 <= seconds < 2.5, seconds


def test_a_released_sortie_wakes_a_waiting_claimer(fleet: Fleet, other: Fleet) -> None:
    fleet.register_specialist(specialist_id="dead", name="Dead")
    fleet.register_specialist(specialist_id="next", name="Next")
    held = fleet.create_sortie(description="held", assigned_to="dead")
    thread = after(0.3, lambda: other.fail_specialist("dead", error="gone"))
    (claimed, seconds) = timed(lambda: fleet.claim_sortie("next", wait=20))
    thread.join()
    assert claimed is not None and claimed["id"] == held["id"] and seconds < 2.5


@pytest.mark.parametrize("bad", [-0.1, 30.5, math.nan, math.inf, True, "5"])
def test_wait_is_zero_to_thirty_seconds(fleet: Fleet, bad: Any) -> None:
    fleet.register_specialist(specialist_id="ace", name="Ace")
    calls = [
        lambda: fleet.events(after=0, wait=bad),
        lambda: fleet.list_messages("inbox", wait=bad),
        lambda: fleet.claim_sortie("ace", wait=bad),
    ]
    for call in calls:
        with pytest.raises(ValidationError) as error:
            call()
        assert "wait" in error.value.errors
    assert fleet.events(after=0, wait=30.0 - 29.95)[1] >= 1  # decimals are fine


def test_stopping_ends_open_waits_promptly(fleet: Fleet) -> None:
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(fleet.list_messages("inbox", wait=30))),
        threading.Thread(target=lambda: results.append(fleet.events(after=10**6, wait=30))),
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while fleet.watcher.waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    fleet.stop_waits()
    for thread in threads:
        thread.join(5)
    assert time.monotonic() - started < 1.5
    assert results == [([], 0), ([], 0)]
    (answer, seconds) = timed(lambda: fleet.events(after=10**6, wait=30))  # no new waits
    assert answer == ([], 0) and seconds < 1


def test_a_server_holds_at_most_its_maximum_of_waits(backend: dict[str, str]) -> None:
    fleet = Fleet(env={**backend, "FLEET_MAX_WAITERS": "1"})
    try:
        thread = threading.Thread(target=lambda: fleet.events(after=10**6, wait=2))
        thread.start()
        deadline = time.monotonic() + 5
        while fleet.watcher.waiting < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(Unavailable, match="FLEET_MAX_WAITERS"):
            fleet.events(after=10**6, wait=1)
        assert fleet.events(after=10**6) == ([], 0)  # a read without wait is not a waiter
        thread.join(5)
    finally:
        fleet.close()
