"""``Fleet.on_events_recorded``: told each committed write's event types, never in the way."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from application import Fleet, PreconditionFailed


def test_listeners_hear_each_committed_write_and_their_failure_is_only_logged(
    sqlite_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    fleet = Fleet(env=sqlite_env)
    heard: list[list[str]] = []

    def broken(event_types: Sequence[str]) -> None:
        raise RuntimeError("listener bug")

    fleet.on_events_recorded(broken)
    fleet.on_events_recorded(lambda event_types: heard.append(list(event_types)))
    try:
        with caplog.at_level(logging.ERROR):
            created = fleet.create_mission(title="m")
        assert heard == [["mission_created"]]  # the write stands, later listeners still hear
        assert fleet.get_mission(created["id"])["title"] == "m"
        assert "a listener of recorded events failed" in caplog.text
        with pytest.raises(PreconditionFailed):
            fleet.update_mission(created["id"], title="x", expected_version=7)
        assert heard == [["mission_created"]]  # a refused write is not announced
    finally:
        fleet.close()
