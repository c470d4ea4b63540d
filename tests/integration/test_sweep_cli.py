"""``fleet sweep`` (one pass, or --every) and ``fleet projector --sweep-every``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from application import Fleet
from application.cli import main


class OnePass(threading.Event):
    """A stop event that lets a loop run exactly once."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks > 1


@pytest.fixture
def overdue(backend: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    """A store with one lock that expired an hour ago and one silent specialist."""
    for key, value in backend.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FLEET_HEARTBEAT_TIMEOUT", "0.000001")
    fleet = Fleet(env=backend)
    fleet.clock = lambda: datetime.now(UTC) - timedelta(hours=1)
    fleet.acquire_lock("old.txt", "ace", timeout_ms=1000)
    fleet.register_specialist(specialist_id="quiet", name="Quiet")
    yield fleet
    fleet.close()


def test_one_pass_prints_its_counts(overdue: Fleet) -> None:
    result = CliRunner().invoke(main, ["sweep"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"locks_expired": 1, "specialists_inactive": 1}
    again = CliRunner().invoke(main, ["sweep"])
    assert json.loads(again.stdout) == {"locks_expired": 0, "specialists_inactive": 0}


def test_every_repeats_and_prints_passes_that_did_something(
    overdue: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("application.cli._stop_on_signals", OnePass)
    result = CliRunner().invoke(main, ["sweep", "--every", "0.01"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"locks_expired": 1, "specialists_inactive": 1}
    assert CliRunner().invoke(main, ["sweep", "--every", "0"]).exit_code == 2


def test_a_bad_setting_is_a_clean_error(overdue: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_HEARTBEAT_TIMEOUT", "-1")
    result = CliRunner().invoke(main, ["sweep"])
    assert result.exit_code == 1 and "FLEET_HEARTBEAT_TIMEOUT" in result.output


def test_the_projector_can_sweep_too(overdue: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[float] = []
    start = Fleet.start_sweeper

    def spy(self: Fleet, every: float, report: object = None) -> threading.Thread:
        started.append(every)
        return start(self, every, report)  # type: ignore[arg-type]

    monkeypatch.setattr(Fleet, "start_sweeper", spy)
    monkeypatch.setattr("application.cli._stop_on_signals", OnePass)
    result = CliRunner().invoke(main, ["projector", "--sweep-every", "0.5"])
    assert result.exit_code == 0, result.output
    assert started == [0.5]


def test_a_stopped_projector_leaves_the_projections_at_the_head(
    overdue: Fleet, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stop that comes mid-sweep lets the pass finish on caught-up projections, then
    applies its last write too.

    The pass expires the lock, then looks up the silent specialist's sorties in the
    projections, which only this process moves: were they no longer followed once the loop
    ends, the pass would wait out its timeout and release from a lagging projection.
    """
    head = overdue.head_position()

    class StopMidSweep(OnePass):
        """Lets the loop run once, then stops it once the sweep has written its first event."""

        def is_set(self) -> bool:
            if not super().is_set():
                return False
            deadline = time.monotonic() + 10
            while overdue.head_position() < head + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            return True

    monkeypatch.setattr("application.cli._stop_on_signals", StopMidSweep)
    result = CliRunner().invoke(main, ["projector", "--sweep-every", "0.01"])
    assert result.exit_code == 0, result.output
    assert overdue.head_position() >= head + 2  # the lock expired, then the specialist
    assert overdue.projector.min_position() == overdue.head_position()
    assert "lagging projection" not in caplog.text
