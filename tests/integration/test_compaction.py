"""Compaction: snapshots of grown streams, ``context_compacted``, snapshot retention,
compression of new rows, and writers that keep going while it runs."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from application.app import project_fast
from application.cli import main
from application.errors import ValidationError
from application.fleet import Fleet
from domain.specialist import specialist_stream_id

# Snapshots only when compaction takes them, and a small threshold.
QUIET = {"FLEET_SNAPSHOT_INTERVAL": "0", "FLEET_COMPACTION_THRESHOLD": "10"}


@pytest.fixture
def quiet(backend: dict[str, str]) -> Any:
    fleet = Fleet(env={**backend, **QUIET})
    try:
        yield fleet
    finally:
        fleet.close()


def beats(fleet: Fleet, who: str, n: int) -> None:
    for i in range(n):
        fleet.heartbeat(who, status=("busy", "idle")[i % 2])


def snapshot_versions(fleet: Fleet, who: str) -> list[int]:
    assert fleet.app.snapshots is not None
    return [s.originator_version for s in fleet.app.snapshots.get(specialist_stream_id(who))]


def test_streams_past_the_threshold_are_snapshotted_and_marked(quiet: Fleet) -> None:
    quiet.register_specialist("long", "Long")
    beats(quiet, "long", 14)  # 15 events: due
    quiet.register_specialist("short", "Short")
    beats(quiet, "short", 3)  # 4 events: not due
    report = quiet.compact()
    assert report["streams_examined"] == 2 and report["streams_compacted"] == 1
    stream = str(specialist_stream_id("long"))
    assert report["streams"] == [
        {
            "stream_id": stream,
            "stream_type": "specialist",
            "from_sequence": 1,
            "to_sequence": 15,
            "snapshot_version": 16,
        }
    ]
    assert report["policy"] == {
        "threshold": 10,
        "keep_snapshots": 3,
        "keep_days": 7.0,
        "archive_after_days": 30.0,
        "archive_batch": 5000,
    }
    assert report["compression"] is False
    assert report["events_archived"] == 0 and report["archived"] == []
    assert snapshot_versions(quiet, "long") == [16] and snapshot_versions(quiet, "short") == []

    [marker], _ = quiet.events(type="context_compacted")
    assert marker["stream_id"] == stream and marker["sequence_number"] == 16
    assert marker["data"] == {"from_sequence": 1, "to_sequence": 15, "snapshot_version": 16}
    assert marker["metadata"]["source"] == "compaction"
    # Reads: the snapshot plus nothing, equal to a full replay; history unchanged.
    specialist = quiet.get_specialist("long")
    assert specialist["version"] == 16 and specialist["status"] == "idle"
    full = project_fast(None, quiet.app.events.get(specialist_stream_id("long")))
    assert vars(quiet.app.get(specialist_stream_id("long"))) == vars(full)
    assert quiet.get_specialist("long", version=2)["status"] == "busy"
    assert quiet.list_specialists(status="idle")[0][0]["version"] == 16  # projected

    again = quiet.compact()
    assert again["streams_compacted"] == 0 and again["streams"] == []
    beats(quiet, "long", 10)
    third = quiet.compact()["streams"]
    assert [(s["from_sequence"], s["to_sequence"], s["snapshot_version"]) for s in third] == [
        (17, 26, 27)
    ]


def test_one_stream_on_request(quiet: Fleet) -> None:
    quiet.register_specialist("one", "One")
    quiet.heartbeat("one", status="busy")
    report = quiet.compact(stream_id=str(specialist_stream_id("one")))
    assert report["streams_examined"] == 1
    assert [s["snapshot_version"] for s in report["streams"]] == [3]
    assert quiet.compact(stream_id=str(specialist_stream_id("one")))["streams"] == []
    for bad in ("nope", "00000000-0000-4000-8000-000000000000"):
        with pytest.raises(ValidationError) as error:
            quiet.compact(stream_id=bad)
        assert "stream_id" in error.value.errors


def test_old_snapshots_are_pruned_by_count_and_age(backend: dict[str, str]) -> None:
    fleet = Fleet(
        env={**backend, "FLEET_SNAPSHOT_INTERVAL_SPECIALIST": "5", "FLEET_SNAPSHOT_KEEP": "2"}
    )
    try:
        fleet.register_specialist("snappy", "Snappy")
        beats(fleet, "snappy", 29)  # snapshots at 5, 10, ... 30
        fleet.register_specialist("few", "Few")
        beats(fleet, "few", 9)  # snapshots at 5, 10
        assert snapshot_versions(fleet, "snappy") == [5, 10, 15, 20, 25, 30]
        young = fleet.compact()  # all younger than 7 days: kept
        assert young["snapshots_pruned"] == 0 and young["streams_compacted"] == 0
        later = datetime.now(UTC) + timedelta(days=8)
        report = fleet.compact(now=later)
        assert report["snapshots_pruned"] == 4
        assert snapshot_versions(fleet, "snappy") == [25, 30]
        assert snapshot_versions(fleet, "few") == [5, 10]
        for version in (3, 12, 26, 30):  # historical reads still replay correctly
            loaded = fleet.app.get(specialist_stream_id("snappy"), version=version)
            full = project_fast(
                None, fleet.app.events.get(specialist_stream_id("snappy"), lte=version)
            )
            assert vars(loaded) == vars(full)
    finally:
        fleet.close()


def test_retention_settings_are_checked(sqlite_env: dict[str, str]) -> None:
    for key, bad in (
        ("FLEET_SNAPSHOT_KEEP", "0"),
        ("FLEET_COMPACTION_THRESHOLD", "x"),
        ("FLEET_SNAPSHOT_KEEP_DAYS", "-1"),
    ):
        fleet = Fleet(env={**sqlite_env, key: bad})
        try:
            with pytest.raises(ValueError, match=key):
                fleet.compact()
        finally:
            fleet.close()


def test_compression_of_new_rows(backend: dict[str, str], raw_store: Any) -> None:
    plain = Fleet(env=backend)
    plain.register_specialist("zip", "Zip", capabilities=["gzip"])
    plain.close()
    zipped = Fleet(env={**backend, "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"})
    try:
        beats(zipped, "zip", 12)
        zipped.create_mission(title="compressed mission")
        report = zipped.compact(stream_id=str(specialist_stream_id("zip")))
        assert report["compression"] is True
        states = [bytes(row[4]) for row in raw_store.event_rows()]
        assert states[0].startswith(b"{") and all(not s.startswith(b"{") for s in states[1:])
        # The index, the projections and reads all see every row, plain or compressed.
        events, total = zipped.events(limit=1000)
        assert total == len(states) == 15
        assert (
            events[0]["data"]["name"] == "Zip" and events[-1]["event_type"] == "context_compacted"
        )
        assert zipped.list_specialists(capability="gzip")[0][0]["version"] == 14
        assert zipped.list_missions()[1] == 1
        assert zipped.get_specialist("zip", version=1)["status"] == "active"
        for name in zipped.projector.projections:
            zipped.projector.rebuild(name)
        assert zipped.list_specialists(capability="gzip")[1] == 1
    finally:
        zipped.close()
    plain_again = Fleet(env=backend)  # compression off again: compressed rows still read
    try:
        assert plain_again.get_specialist("zip")["version"] == 14
        assert plain_again.events(limit=1000)[1] == 15
    finally:
        plain_again.close()


def test_the_cli_prints_the_report(
    backend: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {**backend, **QUIET}.items():
        monkeypatch.setenv(key, value)
    fleet = Fleet(env={**backend, **QUIET})
    fleet.register_specialist("cli", "Cli")
    beats(fleet, "cli", 10)
    fleet.close()
    result = CliRunner().invoke(main, ["compact"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["streams_compacted"] == 1 and report["streams"][0]["snapshot_version"] == 12
    assert "1 of 1 streams compacted" in result.stderr
    bad = CliRunner().invoke(main, ["compact", "--stream-id", "nope"])
    assert bad.exit_code == 1 and "does not exist" in bad.output


def test_writers_keep_going_while_compaction_runs(backend: dict[str, str]) -> None:
    """10,000 events in 50 streams of 200; compaction snapshots all of them while a writer
    keeps writing: no write fails, none waits more than a short transaction or two."""
    env = {**backend, **QUIET, "FLEET_COMPACTION_THRESHOLD": "100", "FLEET_PROJECTOR": "external"}
    seeder = Fleet(env=env)
    from domain.specialist import Specialist

    batch: list[Any] = []
    for n in range(50):
        specialist = Specialist.register(f"bulk-{n}", "Bulk", [], {})
        for i in range(199):
            specialist.heartbeat(("busy", "idle")[i % 2])
        batch.append(specialist)
        if len(batch) == 10:
            seeder.app.save(*batch)
            batch = []
    seeder.register_specialist("writer", "Writer")
    seeder.close()

    compactor, writer = Fleet(env=env), Fleet(env=env)
    latencies: list[float] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        i = 0
        while not done.is_set():
            began = time.perf_counter()
            try:
                writer.heartbeat("writer", status=("busy", "idle")[i % 2])
            except BaseException as exc:  # noqa: BLE001 - every failure counts
                failures.append(exc)
            latencies.append(time.perf_counter() - began)
            i += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        report = compactor.compact()
    finally:
        done.set()
        thread.join(30)
        compactor.close()
        writer.close()
    assert report["streams_compacted"] == 50
    assert failures == []
    assert len(latencies) >= 10
    assert max(latencies) < 3.0, sorted(latencies)[-5:]


def test_the_schedule_survives_a_failed_pass(
    sqlite_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = Fleet(env={**sqlite_env, **QUIET})
    try:
        fleet.register_specialist("sched", "Sched")
        beats(fleet, "sched", 10)
        real = fleet.compaction.compact
        calls: list[int] = []

        def flaky(**kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("database went away")
            return real(**kwargs)

        monkeypatch.setattr(fleet.compaction, "compact", flaky)
        reports: list[dict[str, Any]] = []
        stop = threading.Event()

        def report(result: dict[str, Any]) -> None:
            reports.append(result)
            stop.set()

        with caplog.at_level("INFO", logger="application.services.compaction"):
            fleet.compact_forever(stop, 0.01, report=report)
        assert len(calls) == 2 and reports[0]["streams_compacted"] == 1
        assert "compaction failed" in caplog.text and "compaction: 1 streams" in caplog.text
        thread = fleet.start_compactor(60)
        assert thread.is_alive()
    finally:
        fleet.close()  # stops the compactor
    assert not thread.is_alive()
