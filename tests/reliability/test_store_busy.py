"""A store whose write lock is held for a while (a long maintenance transaction, a slow
disk): writers wait instead of failing; past the lock timeout they get 503 with
Retry-After and write nothing, never a 500; the projector waits it out and carries on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from application.fleet import Fleet
from tests.api.support import make_app, problem
from tests.reliability.harness import (
    Cluster,
    Journal,
    Traffic,
    audit,
    client_count,
    compare_with_rebuild,
    logged_events,
    new_run_id,
    publish,
    scaled,
    store_write_lock,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(0 if scaled(0) else 240)]

# Longer than the library's fixed 5 s connection-pool wait, shorter than SQLITE_LOCK_TIMEOUT
# (15 s): before the pool waited as long as the lock, this failed queued requests with 500.
SQLITE_HOLD = 5.5
POSTGRES_HOLD = 3.0  # writers wait for the table lock without limit (POSTGRES_LOCK_TIMEOUT=0)


def test_writers_wait_out_a_long_lock_under_load(
    backend: dict[str, str],
    backend_name: str,
    cluster_factory: Callable[..., Cluster],
    tmp_path: Path,
) -> None:
    cluster = cluster_factory(external=True)
    cluster.start()
    journal = Journal(new_run_id())
    hold = SQLITE_HOLD if backend_name == "sqlite" else POSTGRES_HOLD
    load = threading.Thread(
        target=Traffic(cluster.base, journal).run, args=(client_count(8), hold + 2.0)
    )
    load.start()
    time.sleep(1.0)
    with store_write_lock(backend):
        locked = time.monotonic()
        time.sleep(hold)
    released = time.monotonic()
    load.join()
    cluster.wait_for_projections()
    server_errors = cluster.server_errors()
    cluster.stop()

    waited = [r for r in journal.records if r.started < released and r.ended > locked]
    result = audit(journal, logged_events(backend))
    rebuild = compare_with_rebuild(backend)
    publish(
        f"store-busy-{backend_name}",
        {
            "backend": backend_name,
            "lock_held_seconds": hold,
            "requests_in_flight_while_held": len(waited),
            "slowest_request_seconds": round(max(r.ended - r.started for r in journal.records), 2),
            **result.figures,
            "projections": rebuild,
            "server_error_lines": len(server_errors),
        },
        journal,
        tmp_path,
    )
    assert result.problems == []
    assert server_errors == []
    assert rebuild["tables_differing"] == {}
    assert rebuild["positions_behind_head"] == {}
    # Writers really met the lock, waited, and were answered (acknowledged or refused).
    assert any(r.write and r.acknowledged for r in waited)


@pytest.fixture
def busy_sqlite(tmp_path: Path) -> dict[str, str]:
    """A SQLite store whose writers give up after 1 s."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "fleet.sqlite3"),
        "SQLITE_LOCK_TIMEOUT": "1",
    }


def test_a_lock_held_past_the_timeout_is_a_503_that_wrote_nothing(
    busy_sqlite: dict[str, str],
) -> None:
    app = make_app(busy_sqlite)
    client = app.test_client()
    before = len(logged_events(busy_sqlite))
    with store_write_lock(busy_sqlite):
        answer = client.post("/api/v1/missions", json={"title": "while locked"})
    data = problem(answer, 503)
    assert answer.headers["Retry-After"] == "1"
    assert "locked" not in data["detail"]  # no store internals in the answer
    assert len(logged_events(busy_sqlite)) == before
    # The retry the 503 asks for succeeds once the lock is gone.
    assert client.post("/api/v1/missions", json={"title": "again"}).status_code == 201
    app.extensions["fleet"].close()


def test_the_projector_survives_a_lock_held_past_the_timeout(
    busy_sqlite: dict[str, str],
) -> None:
    writer = Fleet(env={**busy_sqlite, "FLEET_PROJECTOR": "external"})
    follower = Fleet(env={**busy_sqlite, "FLEET_PROJECTOR": "external"})
    stop = threading.Event()
    failures: list[BaseException] = []

    def follow() -> None:
        try:
            follower.projector.run_forever(stop, max_backoff=0.5)
        except Exception as exc:  # noqa: BLE001 - the projector must not die: recorded
            failures.append(exc)

    try:
        mission = writer.create_mission(title="written before the lock")
        with store_write_lock(busy_sqlite):
            thread = threading.Thread(target=follow, daemon=True)
            thread.start()
            # Long enough for several catch-ups to time out on the lock (1 s each).
            thread.join(2.5)
        assert failures == []
        assert thread.is_alive()
        follower.projector.wait_for(writer.head_position(), timeout=30)
        assert follower.get_mission(mission["id"])["title"] == "written before the lock"
        assert follower.list_missions()[1] == 1
    finally:
        stop.set()
        writer.close()
        follower.close()
