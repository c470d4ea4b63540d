"""Many clients writing one sortie at once through a multi-worker server.

For the first half of the time every client sends ``If-Match`` with the version it just
read: exactly one of the writers holding a given version wins it, the others get 412 (or
409), never a 5xx. Then they all write blind: the service retries their lost races on
fresh state, so each either succeeds or gets a 409 after too many attempts. Afterwards
the sortie's history holds exactly one event per acknowledged write, in the order of the
versions the winners were told, and nothing from a loser: no lost update, no duplicate.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.harness.cluster import Cluster
from tests.reliability.harness.invariants import compare_with_rebuild
from tests.reliability.harness.journal import Client, Journal, Record, new_run_id
from tests.reliability.harness.report import publish
from tests.reliability.harness.sizing import client_count, scaled
from tests.servers import UNTRACED

pytestmark = [pytest.mark.slow, UNTRACED, pytest.mark.timeout(0 if scaled(0) else 240)]


def expect(record: Record, status: int) -> dict:
    assert record.status == status, (record.op, record.path, record.status, record.answer)
    return record.answer


def test_one_winner_per_version_and_no_lost_update(
    backend: dict[str, str],
    backend_name: str,
    cluster_factory: Callable[..., Cluster],
    tmp_path: Path,
) -> None:
    # Embedded: every worker also projects its own writes, racing on the tracking rows.
    cluster = cluster_factory(external=False, settings={"FLEET_SWEEP_INTERVAL": "0"})
    cluster.start()
    journal = Journal(new_run_id())
    setup = Client(cluster.base, journal, -1)
    expect(
        setup.call(
            "setup", "POST", "/specialists/register", {"specialist_id": "racer", "name": "R"}
        ),
        201,
    )
    mission = expect(setup.call("setup", "POST", "/missions", {"title": "race"}), 201)["mission"]
    body = {"description": "contested", "mission_id": mission["id"]}
    sortie = expect(setup.call("setup", "POST", "/sorties", body), 201)["sortie"]
    path = f"/sorties/{sortie['id']}"
    expect(setup.call("setup", "PATCH", path, {"status": "assigned", "assigned_to": "racer"}), 200)
    start = expect(setup.call("setup", "PATCH", path, {"status": "in_progress"}), 200)["sortie"]
    first_version = start["version"]

    clients = client_count(8)
    seconds = scaled(2.0)
    blind_from = time.monotonic() + seconds / 2
    deadline = time.monotonic() + seconds

    def race(number: int) -> None:
        client = Client(cluster.base, journal, number)
        try:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                change = {"progress": (number * 7 + n) % 101, "status_message": f"{number}/{n}"}
                if time.monotonic() < blind_from:
                    seen = client.call("read", "GET", path)
                    headers = {"If-Match": seen.etag or '"0"'}
                    client.call("if_match", "PATCH", path, change, headers)
                else:
                    client.call("blind", "PATCH", path, change)
        finally:
            client.close()

    threads = [threading.Thread(target=race, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    final = expect(setup.call("final", "GET", path), 200)["sortie"]
    history = expect(
        setup.call(
            "history",
            "GET",
            f"/streams/{sortie['stream_id']}/events",
            params={"from_sequence": first_version + 1},
        ),
        200,
    )["events"]
    listed = expect(
        setup.call("listed", "GET", "/sorties", params={"mission_id": mission["id"]}), 200
    )["sorties"]
    server_errors = cluster.server_errors()
    cluster.stop()
    rebuild = compare_with_rebuild(backend)

    writes = [r for r in journal.records if r.op in ("if_match", "blind")]
    winners = sorted((r for r in writes if r.status == 200), key=lambda r: int(r.etag.strip('"')))
    outcomes = Counter(f"{r.op}:{r.status}" for r in writes)
    by_version = {e["sequence_number"]: e for e in history}
    publish(
        f"conflicts-{backend_name}",
        {
            "backend": backend_name,
            "workers": cluster.workers,
            "clients": clients,
            "writes_sent": len(writes),
            "acknowledged": len(winners),
            "outcomes": dict(outcomes),
            "http_5xx": sum(1 for r in journal.records if (r.status or 0) >= 500),
            "no_response": sum(1 for r in journal.records if r.status is None),
            "first_version": first_version,
            "final_version": final["version"],
            "events_after_start": len(history),
            "server_error_lines": len(server_errors),
            "projections": rebuild,
        },
        journal,
        tmp_path,
    )

    assert server_errors == []
    # The embedded projectors of three workers raced; their rows equal a rebuild, and the
    # list (read right after the last write) shows the final version.
    assert rebuild["tables_differing"] == {}
    assert rebuild["positions_behind_head"] == {}
    assert [s["version"] for s in listed] == [final["version"]]
    assert all(r.status is not None and r.status < 500 for r in journal.records)
    assert {r.status for r in writes if r.op == "if_match"} <= {200, 409, 412}
    assert {r.status for r in writes if r.op == "blind"} <= {200, 409}
    # Real contention: several If-Match writers lost a version to another writer.
    assert outcomes["if_match:412"] + outcomes["if_match:409"] > 0
    # One event per acknowledged write, versions without gaps, each the winner's own.
    versions = [int(r.etag.strip('"')) for r in winners]
    assert versions == list(range(first_version + 1, first_version + 1 + len(winners)))
    assert final["version"] == first_version + len(winners) == history[-1]["sequence_number"]
    assert len(history) == len(winners)
    for record, version in zip(winners, versions, strict=True):
        event = by_version[version]
        assert event["metadata"]["request_id"] == record.correlation_id
        assert event["data"]["status_message"] == record.body["status_message"]
        assert str(record.position) == str(event["id"])
    for record in writes:
        if record.op == "if_match" and record.status == 200:
            assert int(record.etag.strip('"')) == int(record.headers["If-Match"].strip('"')) + 1
    last = winners[-1]
    assert (final["progress"], final["status_message"]) == (
        last.body["progress"],
        last.body["status_message"],
    )
