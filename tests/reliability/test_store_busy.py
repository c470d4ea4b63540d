"""A store whose write lock is held past SQLITE_LOCK_TIMEOUT (a long maintenance
transaction): a write gets 503 with Retry-After and writes nothing, never a 500; the
projector waits it out and carries on. (A lock held for less than the timeout, under
load, is one of the faults of test_faults_under_load.py.)
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from application.fleet import Fleet
from tests.api.support import make_app, problem
from tests.reliability.harness.sizing import scaled
from tests.reliability.harness.store import logged_events, store_write_lock

pytestmark = [pytest.mark.slow, pytest.mark.timeout(0 if scaled(0) else 240)]


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
