"""FileLock aggregate: path normalisation, one holder per path, expiry on real datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError, RuleError, TransitionError
from domain.lock import LOCK_LIFECYCLE, FileLock, NotLockOwner, lock_stream_id, normalize_path

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def replay(events):
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def new_lock(**kwargs) -> FileLock:
    data = {"lock_id": "l1", "file_path": "src/app.py", "specialist_id": "s1", "now": T0}
    return FileLock.acquire_new(**{**data, **kwargs})


# Path normalisation.


@pytest.mark.parametrize(
    ("given_path", "expected"),
    [
        ("a//b/./c/../d/", "a/b/d"),
        ("src/app.py", "src/app.py"),
        ("./src/app.py", "src/app.py"),
        ("src/../src/app.py", "src/app.py"),
        ("/abs/path/", "/abs/path"),
        ("//abs/./path", "/abs/path"),
        ("a\\b", "a\\b"),
        ("dir with space/file", "dir with space/file"),
        ("a/b/..", "a"),
    ],
)
def test_normalize_path(given_path, expected):
    assert normalize_path(given_path) == expected


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("../x", "climbs above its root"),
        ("a/../../x", "climbs above its root"),
        ("/../x", "climbs above its root"),
        (".", "names no file"),
        ("/", "names no file"),
        ("a/..", "names no file"),
        ("a\x00b", "NUL"),
    ],
)
def test_normalize_path_refuses(bad, match):
    with pytest.raises(RuleError, match=match):
        normalize_path(bad)


def test_one_stream_per_normalised_path():
    lock = new_lock(file_path="src//x/../app.py")
    assert lock.id == FileLock.create_id("src/app.py") == lock_stream_id("src/app.py")
    assert lock.normalized_path == "src/app.py"
    assert lock.file_path == "src//x/../app.py"


# Acquire.


def test_acquire_new_holds_until_expiry():
    lock = new_lock(timeout_ms=1000, purpose="read", checksum="abc")
    assert lock.status == "active"
    assert (lock.lock_id, lock.specialist_id, lock.purpose, lock.checksum) == (
        "l1",
        "s1",
        "read",
        "abc",
    )
    assert lock.reserved_at == T0 and lock.expires_at == at(1000)
    assert lock.holds(at(999)) and not lock.is_expired(at(999))
    assert not lock.holds(at(1000)) and lock.is_expired(at(1000))
    [event] = lock.collect_events()
    assert type(event).TOPIC == "lock_acquired" and event.event_type == "lock_acquired"


def test_defaults():
    lock = new_lock()
    assert lock.purpose == "edit" and lock.timeout_ms == 30_000 and lock.checksum is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"purpose": "write"}, "purpose must be one of edit, read, delete"),
        ({"timeout_ms": 0}, "timeout_ms must be an integer from 1 to 86400000"),
        ({"timeout_ms": 86_400_001}, "timeout_ms"),
        ({"timeout_ms": 1.5}, "timeout_ms"),
        ({"timeout_ms": True}, "timeout_ms"),
        ({"file_path": "../etc/passwd"}, "climbs above its root"),
    ],
)
def test_acquire_refuses_bad_input(kwargs, match):
    with pytest.raises(RuleError, match=match):
        new_lock(**kwargs)
    lock = new_lock()
    lock.release("l1", "s1")
    data = {"lock_id": "l2", "file_path": "src/app.py", "specialist_id": "s2", "now": T0}
    with pytest.raises(RuleError, match=match):
        lock.acquire(**{**data, **kwargs})
    assert lock.version == 2


def test_timeout_bounds_are_accepted():
    assert new_lock(timeout_ms=1).expires_at == at(1)
    assert new_lock(timeout_ms=86_400_000).expires_at == T0 + timedelta(days=1)


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        new_lock(now=datetime(2026, 3, 1))
    lock = new_lock()
    with pytest.raises(ValueError):
        lock.holds(datetime(2026, 3, 1))
    with pytest.raises(ValueError):
        lock.is_expired(datetime(2026, 3, 1))


def test_acquire_while_held_is_refused_even_for_the_holder():
    lock = new_lock(timeout_ms=1000)
    for specialist in ("s2", "s1"):
        with pytest.raises(RuleError, match=r"'src/app\.py' is locked by 's1' until"):
            lock.acquire("l2", "src/app.py", specialist, at(999))
    assert lock.version == 1


def test_acquire_for_another_path_is_refused():
    lock = new_lock()
    lock.release("l1", "s1")
    with pytest.raises(RuleError, match=r"is not 'src/app\.py', the path of this lock"):
        lock.acquire("l2", "src/other.py", "s2", T0)


def test_acquire_after_release_uses_the_again_class():
    lock = new_lock()
    lock.release("l1", "s1")
    lock.acquire("l2", "./src/app.py", "s2", at(5), timeout_ms=100)
    assert (lock.status, lock.lock_id, lock.specialist_id) == ("active", "l2", "s2")
    assert lock.reserved_at == at(5) and lock.expires_at == at(105)
    assert lock.released_at is None and lock.released_by is None
    events = lock.collect_events()
    assert [type(e).TOPIC for e in events] == [
        "lock_acquired",
        "lock_released",
        "lock_acquired.again",
    ]


def test_acquire_over_an_expired_lock_records_the_timeout_first():
    lock = new_lock(timeout_ms=1000)
    lock.acquire("l2", "src/app.py", "s2", at(1000))
    events = lock.collect_events()
    assert [e.event_type for e in events] == ["lock_acquired", "lock_timeout", "lock_acquired"]
    timeout = events[1]
    assert (timeout.lock_id, timeout.specialist_id, timeout.expired_at) == ("l1", "s1", at(1000))
    assert lock.specialist_id == "s2" and lock.status == "active"


# Conflicts.


def test_record_conflict_names_the_holder():
    lock = new_lock()
    lock.record_conflict("s2", at(10))
    [_, event] = lock.collect_events()
    assert event.event_type == "lock_conflict"
    assert (event.requesting_specialist, event.holding_specialist, event.existing_lock_id) == (
        "s2",
        "s1",
        "l1",
    )
    assert lock.conflicts == 1 and lock.status == "active"


def test_no_conflict_without_a_holder():
    lock = new_lock(timeout_ms=10)
    with pytest.raises(RuleError, match="is not held"):
        lock.record_conflict("s2", at(10))
    lock.release("l1", "s1")
    with pytest.raises(RuleError, match="is not held"):
        lock.record_conflict("s2", at(1))


# Release.


def test_owner_releases_explicitly():
    lock = new_lock()
    lock.release("l1", "s1")
    assert lock.status == "released" and lock.released_by == "s1"
    assert lock.released_at is not None
    assert lock.collect_events()[-1].reason == "explicit"


def test_owner_with_force_is_still_an_explicit_release():
    lock = new_lock()
    lock.release("l1", "s1", force=True)
    assert lock.status == "released"


def test_other_specialist_needs_force():
    lock = new_lock()
    with pytest.raises(NotLockOwner, match="held by 's1', not 's2'"):
        lock.release("l1", "s2")
    assert isinstance(NotLockOwner("x"), RuleError)
    assert lock.version == 1
    lock.release("l1", "s2", force=True)
    assert lock.status == "force_released" and lock.released_by == "s2"
    assert lock.collect_events()[-1].reason == "forced"


def test_release_of_another_lock_id_is_refused():
    lock = new_lock()
    with pytest.raises(RuleError, match=r"lock l9 is not the current lock of 'src/app\.py'"):
        lock.release("l9", "s1")


@pytest.mark.parametrize("end", ["release", "force", "expire"])
def test_release_after_the_lock_ended_is_a_transition_error(end):
    lock = new_lock(timeout_ms=10)
    if end == "release":
        lock.release("l1", "s1")
    elif end == "force":
        lock.release("l1", "s2", force=True)
    else:
        lock.expire(at(10))
    with pytest.raises(TransitionError):
        lock.release("l1", "s1")
    with pytest.raises(TransitionError):
        lock.release("l1", "s2", force=True)


# Expiry.


def test_expire_records_the_timeout_at_expires_at():
    lock = new_lock(timeout_ms=1000)
    lock.expire(at(5000))
    assert lock.status == "expired" and lock.released_at == at(1000)
    assert not lock.is_expired(at(5000)) and not lock.holds(at(5000))
    event = lock.collect_events()[-1]
    assert event.event_type == "lock_timeout" and event.expired_at == at(1000)


def test_expire_before_the_time_is_refused():
    lock = new_lock(timeout_ms=1000)
    with pytest.raises(RuleError, match="does not expire until"):
        lock.expire(at(999))
    assert lock.version == 1


def test_expire_compares_real_datetimes_across_timezones():
    lock = new_lock(timeout_ms=1000)
    plus_two = timezone(timedelta(hours=2))
    assert lock.holds(at(999).astimezone(plus_two))
    assert lock.is_expired(at(1000).astimezone(plus_two))


def test_expire_twice_or_after_release_is_a_transition_error():
    lock = new_lock(timeout_ms=10)
    lock.expire(at(10))
    with pytest.raises(TransitionError):
        lock.expire(at(20))
    lock.acquire("l2", "src/app.py", "s2", at(20), timeout_ms=10)
    lock.release("l2", "s2")
    with pytest.raises(TransitionError):
        lock.expire(at(100))


def test_replay_gives_the_same_state():
    lock = new_lock(timeout_ms=10)
    lock.record_conflict("s2", at(1))
    lock.acquire("l2", "src/app.py", "s2", at(20))
    lock.release("l2", "s3", force=True)
    lock.acquire("l3", "src/app.py", "s3", at(30), purpose="delete", checksum="c")
    events = lock.collect_events()
    again = replay(events)
    assert again.state_dict() == lock.state_dict()
    assert again.version == lock.version == len(events) == 6


def test_state_dict_restores_datetimes():
    lock = new_lock()
    restored = replay(lock.collect_events())
    restored._restore(lock.state_dict())
    assert restored.expires_at == lock.expires_at and isinstance(restored.reserved_at, datetime)


# Random command sequences never reach a forbidden state.

SPECIALISTS = ("s1", "s2", "s3")
step = st.tuples(
    st.sampled_from(("acquire", "release", "force", "expire", "conflict", "stale_release")),
    st.sampled_from(SPECIALISTS),
    st.integers(min_value=0, max_value=3000),
    st.integers(min_value=1, max_value=2000),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=40))
def test_random_command_sequences_keep_one_holder_at_a_time(steps):
    lock = new_lock(timeout_ms=1000)
    now, counter = T0, 1
    for command, specialist, delay_ms, timeout_ms in steps:
        now += timedelta(milliseconds=delay_ms)
        held_before = lock.holds(now)
        holder, status, before = lock.specialist_id, lock.status, lock.version
        try:
            if command == "acquire":
                counter += 1
                lock.acquire(f"l{counter}", "src/app.py", specialist, now, timeout_ms=timeout_ms)
                assert not held_before and lock.specialist_id == specialist
            elif command in ("release", "force"):
                lock.release(lock.lock_id, specialist, force=command == "force")
                assert status == "active"
                assert specialist == holder or command == "force"
            elif command == "stale_release":
                lock.release("l0", specialist, force=True)
            elif command == "expire":
                lock.expire(now)
            else:
                lock.record_conflict(specialist, now)
                assert held_before
        except DomainError:
            assert lock.version == before and lock.status == status
        assert lock.status in LOCK_LIFECYCLE.statuses
        assert lock.reserved_at < lock.expires_at
        if lock.status == "active":
            assert lock.released_at is None
        else:
            assert lock.released_at is not None
    events = lock.collect_events()
    # Between two acquisitions the earlier lock always ended (released or timed out).
    holding = False
    for event in events:
        if event.event_type == "lock_acquired":
            assert not holding
            holding = True
        elif event.event_type in ("lock_released", "lock_timeout"):
            assert holding
            holding = False
    assert replay(events).state_dict() == lock.state_dict()
