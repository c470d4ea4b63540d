"""File locks through the Python services, on both backends (time is injected, never slept)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from application import (
    Conflict,
    Fleet,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock for ``fleet.clock``."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(fleet: Fleet) -> Clock:
    clock = Clock()
    fleet.clock = clock
    return clock


def lock_events(fleet: Fleet, *types: str) -> list[dict[str, Any]]:
    events, _ = fleet.events(type=",".join(types) or None, limit=1000)
    return [e for e in events if e["stream_type"] == "lock"]


def conflict(fleet: Fleet, file: str, who: str) -> Conflict:
    with pytest.raises(Conflict) as caught:
        fleet.acquire_lock(file, who)
    return caught.value


def test_acquire_answers_the_lock(fleet: Fleet, clock: Clock) -> None:
    lock = fleet.acquire_lock(
        "src//app/./x/../main.py/", "ace", timeout_ms=5000, purpose="delete", checksum="abc"
    )
    assert lock["file"] == "src//app/./x/../main.py/"
    assert lock["normalized_path"] == "src/app/main.py"
    assert (lock["reserved_by"], lock["purpose"], lock["checksum"]) == ("ace", "delete", "abc")
    assert (lock["status"], lock["version"], lock["timeout_ms"]) == ("active", 1, 5000)
    assert lock["reserved_at"] == T0.isoformat(timespec="microseconds")
    assert lock["expires_at"] == (T0 + timedelta(seconds=5)).isoformat(timespec="microseconds")
    assert lock["created_at"] == lock["reserved_at"]
    assert lock["released_at"] is None and lock["released_by"] is None
    [event] = lock_events(fleet)
    assert event["event_type"] == "lock_acquired" and event["stream_id"] == lock["stream_id"]
    assert event["data"]["lock_id"] == lock["id"]
    assert event["data"]["normalized_path"] == "src/app/main.py"
    assert fleet.get_lock(lock["id"]) == lock


def test_a_held_path_is_a_conflict_that_is_recorded(fleet: Fleet, clock: Clock) -> None:
    held = fleet.acquire_lock("docs/readme.md", "ace", timeout_ms=60_000)
    for file in ("docs/readme.md", "./docs//readme.md", "docs/x/../readme.md/"):
        error = conflict(fleet, file, "bee")
        assert error.extra == {
            "lock": {"id": held["id"], "reserved_by": "ace", "expires_at": held["expires_at"]}
        }
        assert "locked by 'ace'" in str(error)
    assert conflict(fleet, "docs/readme.md", "ace").extra["lock"]["id"] == held["id"]
    conflicts = lock_events(fleet, "lock_conflict")
    assert len(conflicts) == 4
    assert conflicts[0]["data"] == {
        "requesting_specialist": "bee",
        "holding_specialist": "ace",
        "existing_lock_id": held["id"],
    }
    # Conflicts are recorded on the path's stream: the lock's version counts them.
    assert fleet.get_lock(held["id"])["version"] == 5
    # Another path is free.
    assert fleet.acquire_lock("docs/other.md", "bee")["status"] == "active"


def test_an_expired_lock_gives_way_with_lock_timeout(fleet: Fleet, clock: Clock) -> None:
    old = fleet.acquire_lock("a.txt", "ace", timeout_ms=1000)
    clock.advance(milliseconds=999)
    conflict(fleet, "a.txt", "bee")
    clock.advance(milliseconds=1)  # now == expires_at: no longer held
    new = fleet.acquire_lock("a.txt", "bee")
    assert new["id"] != old["id"] and new["stream_id"] == old["stream_id"]
    assert [e["event_type"] for e in lock_events(fleet)] == [
        "lock_acquired",
        "lock_conflict",
        "lock_timeout",
        "lock_acquired",
    ]
    timeout = lock_events(fleet, "lock_timeout")[0]["data"]
    assert (timeout["lock_id"], timeout["specialist_id"]) == (old["id"], "ace")
    assert datetime.fromisoformat(timeout["expired_at"]) == T0 + timedelta(seconds=1)
    ended = fleet.get_lock(old["id"])
    assert (ended["status"], ended["released_at"]) == ("expired", old["expires_at"])
    assert fleet.get_lock(new["id"])["version"] == 4


def test_release_by_the_holder_or_by_force(fleet: Fleet, clock: Clock) -> None:
    lock = fleet.acquire_lock("b.txt", "ace")
    with pytest.raises(Forbidden, match="only the holder"):
        fleet.release_lock(lock["id"], "bee")
    assert lock_events(fleet, "lock_released") == []
    released = fleet.release_lock(lock["id"], "ace")
    assert (released["status"], released["released_by"], released["version"]) == (
        "released",
        "ace",
        2,
    )
    with pytest.raises(Conflict, match="cannot go from 'released'"):
        fleet.release_lock(lock["id"], "ace")

    second = fleet.acquire_lock("b.txt", "ace")
    with pytest.raises(PreconditionFailed):
        fleet.release_lock(second["id"], "bee", force=True, expected_version=1)
    forced = fleet.release_lock(second["id"], "bee", force=True, expected_version=3)
    assert (forced["status"], forced["released_by"]) == ("force_released", "bee")
    reasons = [e["data"]["reason"] for e in lock_events(fleet, "lock_released")]
    assert reasons == ["explicit", "forced"]
    # An ended lock that is no longer its path's current one: 409, and it reads as it ended.
    with pytest.raises(Conflict, match="not the current lock"):
        fleet.release_lock(lock["id"], "ace")
    assert fleet.get_lock(lock["id"]) == released


@pytest.mark.parametrize("lock_id", ["nope", "", "x" * 129, "a\x00b"])
def test_unknown_locks_are_not_found(fleet: Fleet, lock_id: str) -> None:
    with pytest.raises(NotFound):
        fleet.get_lock(lock_id)
    with pytest.raises(NotFound):
        fleet.release_lock(lock_id, "ace")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"file": "../x"}, "file"),
        ({"file": "a/../.."}, "file"),
        ({"file": "."}, "file"),
        ({"file": ""}, "file"),
        ({"file": "a\x00b"}, "file"),
        ({"timeout_ms": 0}, "timeout_ms"),
        ({"timeout_ms": 86_400_001}, "timeout_ms"),
        ({"purpose": "write"}, "purpose"),
        ({"specialist_id": ""}, "specialist_id"),
        ({"checksum": ""}, "checksum"),
    ],
)
def test_invalid_acquisitions(fleet: Fleet, kwargs: dict[str, Any], field: str) -> None:
    args = {"file": "ok.txt", "specialist_id": "ace", **kwargs}
    with pytest.raises(ValidationError) as caught:
        fleet.acquire_lock(**args)
    assert field in caught.value.errors
    assert lock_events(fleet) == []


def test_invalid_releases(fleet: Fleet) -> None:
    lock = fleet.acquire_lock("c.txt", "ace")
    with pytest.raises(ValidationError) as caught:
        fleet.release_lock(lock["id"], "")
    assert "specialist_id" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        fleet.release_lock(lock["id"], "ace", force="yes")  # type: ignore[arg-type]
    assert "force" in caught.value.errors


def test_list_locks_filters_and_pages(fleet: Fleet, clock: Clock) -> None:
    a = fleet.acquire_lock("1.txt", "ace")
    clock.advance(seconds=1)
    b = fleet.acquire_lock("2.txt", "bee")
    clock.advance(seconds=1)
    c = fleet.acquire_lock("3.txt", "ace")
    fleet.release_lock(b["id"], "bee")

    def ids(**query: Any) -> list[str]:
        return [lock["id"] for lock in fleet.list_locks(**query)[0]]

    assert ids() == [a["id"], c["id"]]
    assert ids(status="released") == [b["id"]]
    assert ids(status="all") == ids(status=None) == [a["id"], b["id"], c["id"]]
    assert ids(specialist_id="ace") == [a["id"], c["id"]]
    assert ids(specialist_id="bee") == []
    page, total = fleet.list_locks(status="all", limit=1, offset=1)
    assert [lock["id"] for lock in page] == [b["id"]] and total == 3
    with pytest.raises(ValidationError) as caught:
        fleet.list_locks(status="held")
    assert "status" in caught.value.errors
    assert fleet.health()["locks"] == {"active": 2}


def test_rows_survive_a_rebuild_of_one_page(fleet: Fleet, clock: Clock) -> None:
    """A rebuild folds the whole log in one page: each replaced lock keeps its final row."""
    first = fleet.acquire_lock("p.txt", "ace", timeout_ms=10)
    clock.advance(seconds=1)
    second = fleet.acquire_lock("p.txt", "bee")  # records lock_timeout of the first
    fleet.release_lock(second["id"], "bee")
    clock.advance(seconds=1)
    third = fleet.acquire_lock("p.txt", "cat")
    conflict(fleet, "p.txt", "dog")
    fleet.release_lock(third["id"], "dog", force=True)
    clock.advance(seconds=1)
    fleet.acquire_lock("p.txt", "eel")
    before = fleet.list_locks(status="all")
    fleet.projector.rebuild("locks")
    assert fleet.list_locks(status="all") == before
    statuses = [lock["status"] for lock in before[0]]
    assert statuses == ["expired", "released", "force_released", "active"]
    assert [lock["version"] for lock in before[0]] == [2, 4, 7, 8]
    assert fleet.get_lock(first["id"])["status"] == "expired"


def test_a_lock_written_by_another_process_is_found(backend: dict[str, str]) -> None:
    """A lock id this process has not projected yet: found after catching up with the log."""
    writer, reader = Fleet(env=backend), Fleet(env=backend)
    try:
        lock = writer.acquire_lock("shared.txt", "ace")
        assert reader.get_lock(lock["id"]) == lock
        assert reader.release_lock(lock["id"], "ace")["status"] == "released"
    finally:
        writer.close()
        reader.close()


def test_with_an_external_projector_a_lookup_waits_for_it(backend: dict[str, str]) -> None:
    env = {**backend, "FLEET_PROJECTOR": "external", "FLEET_MIN_POSITION_TIMEOUT": "0.2"}
    fleet = Fleet(env=env)
    try:
        lock = fleet.acquire_lock("external.txt", "ace")
        with pytest.raises(Unavailable):  # no projector ran: the id cannot be looked up yet
            fleet.get_lock(lock["id"])
        fleet.projector.catch_up()  # what `fleet projector` does
        assert fleet.get_lock(lock["id"]) == lock
        with pytest.raises(NotFound):
            fleet.get_lock("never-issued")
    finally:
        fleet.close()
