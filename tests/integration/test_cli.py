"""The ``fleet`` console script: replay, events, projections."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from application import Fleet
from application.cli import main


@pytest.fixture
def store(backend: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    for key, value in backend.items():
        monkeypatch.setenv(key, value)
    fleet = Fleet(env=backend)
    fleet.register_specialist(specialist_id="cli-1", name="First")
    fleet.heartbeat("cli-1", status="busy")
    fleet.register_specialist(specialist_id="cli-1", name="Renamed")
    yield fleet
    fleet.close()


def test_replay_prints_each_version(store: Fleet) -> None:
    stream = store.get_specialist("cli-1")["stream_id"]
    result = CliRunner().invoke(main, ["replay", stream])
    assert result.exit_code == 0, result.output
    assert (
        "v1 specialist_registered" in result.output and "v3 specialist_registered" in result.output
    )
    assert '"name": "Renamed"' in result.output
    partial = CliRunner().invoke(main, ["replay", stream, "--to-version", "2"])
    assert "v3" not in partial.output and '"status": "busy"' in partial.output


def test_replay_refuses_unknown_streams(store: Fleet) -> None:
    assert CliRunner().invoke(main, ["replay", "nope"]).exit_code == 2
    missing = CliRunner().invoke(main, ["replay", "00000000-0000-4000-8000-000000000000"])
    assert missing.exit_code == 1 and "no events" in missing.output


def test_events_lists_json_lines_with_filters(store: Fleet) -> None:
    result = CliRunner().invoke(main, ["events", "--type", "specialist_registered"])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["sequence_number"] for e in lines] == [1, 3]
    bad = CliRunner().invoke(main, ["events", "--type", "nonsense"])
    assert bad.exit_code == 1 and "valid types" in bad.output


def test_projections_status_and_rebuild(store: Fleet) -> None:
    status = CliRunner().invoke(main, ["projections", "status"])
    assert status.exit_code == 0 and "specialists" in status.output and "lag 0" in status.output
    rebuilt = CliRunner().invoke(main, ["projections", "rebuild", "specialists"])
    assert rebuilt.exit_code == 0 and "replayed 3 events" in rebuilt.output
    unknown = CliRunner().invoke(main, ["projections", "rebuild", "nope"])
    assert unknown.exit_code == 1 and "no projection named" in unknown.output


def test_replay_as_of_a_time_before_the_stream_finds_nothing(store: Fleet) -> None:
    stream = store.get_specialist("cli-1")["stream_id"]
    result = CliRunner().invoke(main, ["replay", stream, "--as-of", "2000-01-01T00:00:00+0000"])
    assert result.exit_code == 1 and "no events" in result.output


def test_the_long_runners_stop_on_sigint_and_sigterm() -> None:
    """``fleet projector`` and ``fleet sweep --every`` end their loops on either signal."""
    import os
    import signal

    from application.cli import _stop_on_signals

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in before:
            stop = _stop_on_signals()
            assert not stop.is_set()
            os.kill(os.getpid(), sig)
            assert stop.wait(5)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
