"""The library's aggregate cache (fast-forward on): what a save leaves there.

A save puts a copy of each saved aggregate in the cache, so the next command on the stream
starts from the version it wrote instead of reading and applying its own events again. The
copy must be the committed state only, and a cache left behind by another writer must still
be brought up to date from the log.
"""

from __future__ import annotations

from typing import Any

import pytest

from application import Fleet
from application.app import FleetApplication
from domain.specialist import Specialist, specialist_stream_id


def cached(app: FleetApplication, aggregate_id: Any) -> Any:
    cache = app.repository.cache
    assert cache is not None and app.repository.fastforward
    return cache.get(aggregate_id)


def test_a_save_caches_a_copy_at_the_saved_version(backend: dict[str, str]) -> None:
    app = FleetApplication(backend)
    try:
        specialist = Specialist.register("s-1", "S", ["code"], {})
        specialist.heartbeat("busy")
        app.save(specialist)
        copy = cached(app, specialist.id)
        assert copy is not specialist
        assert (copy.version, copy.status) == (2, "busy")
        specialist.heartbeat("idle")  # the caller's object, changed and not saved
        after = cached(app, specialist.id)
        assert (after.version, after.status) == (2, "busy")
        assert app.get(specialist.id).status == "busy"
    finally:
        app.close()


def test_a_command_leaves_the_version_it_wrote_in_the_cache(backend: dict[str, str]) -> None:
    fleet = Fleet(env=backend)
    try:
        fleet.register_specialist("s-1", "S")
        written = fleet.heartbeat("s-1", status="busy")
        assert cached(fleet.app, specialist_stream_id("s-1")).version == written["version"] == 2
    finally:
        fleet.close()


@pytest.mark.parametrize("writes_elsewhere", [1, 3])
def test_another_writers_events_still_reach_a_cached_aggregate(
    backend: dict[str, str], writes_elsewhere: int
) -> None:
    first, other = Fleet(env=backend), Fleet(env=backend)
    try:
        first.register_specialist("s-1", "S")
        first.heartbeat("s-1", status="busy")  # cached at version 2 in this process
        for _ in range(writes_elsewhere):
            other.heartbeat("s-1", status="idle")
        version = 2 + writes_elsewhere
        answer = first.heartbeat("s-1", status="busy", expected_version=version)
        assert answer["version"] == version + 1
        assert cached(first.app, specialist_stream_id("s-1")).version == version + 1
    finally:
        first.close()
        other.close()
