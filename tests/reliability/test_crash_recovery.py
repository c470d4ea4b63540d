"""SIGKILL of the whole server (gunicorn master, its workers) and the projector in the
middle of the load, then a restart and more load: nothing acknowledged is lost, nothing
refused is written, a request cut off may have landed or not (counted), the projections
equal a rebuild and the SQLite file passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import (
    Cluster,
    Journal,
    Traffic,
    audit,
    client_count,
    compare_with_rebuild,
    crash_count,
    logged_events,
    new_run_id,
    publish,
    scaled,
    sqlite_integrity,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(0 if scaled(0) else 240)]


def test_kill_and_restart_under_load_loses_nothing_acknowledged(
    backend: dict[str, str],
    backend_name: str,
    cluster_factory: Callable[..., Cluster],
    tmp_path: Path,
) -> None:
    cluster = cluster_factory(external=True)
    cluster.start()
    journal = Journal(new_run_id())
    crashes = crash_count(1)
    seconds = scaled(7.0)
    between = seconds / (crashes + 1)
    traffic = Traffic(cluster.base, journal)
    failure: list[BaseException] = []

    def drive() -> None:
        try:
            traffic.run(client_count(8), seconds + crashes * 2)
        except Exception as exc:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(exc)

    load = threading.Thread(target=drive)
    load.start()
    downtimes: list[dict[str, Any]] = []
    for _ in range(crashes):
        time.sleep(between)
        sent_before = len(journal.records)
        journal.epoch += 1
        killed = time.monotonic()
        cluster.kill()
        time.sleep(0.3)  # clients meet a dead port meanwhile: refused, never sent
        cluster.start()
        downtimes.append(
            {
                "requests_before_kill": sent_before,
                "seconds_down": round(time.monotonic() - killed, 2),
            }
        )
    load.join()
    if failure:
        raise failure[0]
    cluster.wait_for_projections()
    server_errors = cluster.server_errors()
    cluster.stop()

    result = audit(journal, logged_events(backend))
    rebuild = compare_with_rebuild(backend)
    integrity = sqlite_integrity(backend)
    after_crash = [r for r in journal.records if r.epoch > 0 and r.write and r.acknowledged]
    publish(
        f"crash-{backend_name}",
        {
            "backend": backend_name,
            "workers": cluster.workers,
            "clients": client_count(8),
            "seconds": seconds,
            "crashes": crashes,
            "downtimes": downtimes,
            "acknowledged_writes_after_restart": len(after_crash),
            **result.figures,
            "projections": rebuild,
            "sqlite_integrity": integrity,
            "server_error_lines": len(server_errors),
        },
        journal,
        tmp_path,
    )

    assert result.problems == []
    assert server_errors == []
    assert rebuild["tables_differing"] == {}
    assert rebuild["positions_behind_head"] == {}
    assert integrity in (None, "ok")
    # The crash really happened under load, and the restarted server took writes again.
    assert result.figures.get("connection_refused", 0) + result.figures.get("no_response", 0) > 0
    assert after_crash
