"""Snapshots: per-type intervals from settings, and snapshot + later events == full replay."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.app import DEFAULT_SNAPSHOT_INTERVAL, FleetApplication, project_fast
from domain.aggregates import AGGREGATE_TYPES
from domain.sortie import Sortie
from domain.specialist import Specialist

# Commands each status allows, final ones apart: a history ends rarely (3 % a step).
SORTIE_COMMANDS = {
    "pending": ("update", "assign"),
    "assigned": ("update", "assign", "start"),
    "in_progress": ("progress", "block", "review", "update"),
    "blocked": ("unblock",),
    "review": ("reject",),
}
SORTIE_FINAL = {
    "pending": ("cancel",),
    "assigned": ("fail", "cancel"),
    "blocked": ("fail", "cancel"),
}
SPECIALIST_COMMANDS = ("heartbeat", "reregister", "spawn")
SPECIALIST_FINAL = ("complete", "fail")


def intervals(app: FleetApplication) -> dict[str, int]:
    return {cls.STREAM_TYPE: n for cls, n in app.snapshotting_intervals.items()}  # type: ignore[attr-defined]


def test_intervals_come_from_settings(sqlite_env: dict[str, str]) -> None:
    app = FleetApplication(sqlite_env)
    try:
        assert DEFAULT_SNAPSHOT_INTERVAL <= 500
        assert intervals(app) == {cls.STREAM_TYPE: 200 for cls in AGGREGATE_TYPES}
        assert app.snapshots is not None
    finally:
        app.close()
    app = FleetApplication(
        {
            **sqlite_env,
            "FLEET_SNAPSHOT_INTERVAL": "300",
            "FLEET_SNAPSHOT_INTERVAL_SORTIE": "50",
            "FLEET_SNAPSHOT_INTERVAL_CURSOR": "0",
        }
    )
    try:
        found = intervals(app)
        assert found["sortie"] == 50 and found["specialist"] == 300 and "cursor" not in found
        assert FleetApplication.snapshotting_intervals[Sortie] == DEFAULT_SNAPSHOT_INTERVAL
    finally:
        app.close()
    for bad in ("-1", "often"):
        with pytest.raises(ValueError, match="FLEET_SNAPSHOT_INTERVAL_SORTIE"):
            FleetApplication({**sqlite_env, "FLEET_SNAPSHOT_INTERVAL_SORTIE": bad})


def test_snapshots_are_taken_at_the_interval(backend: dict[str, str]) -> None:
    app = FleetApplication({**backend, "FLEET_SNAPSHOT_INTERVAL_SPECIALIST": "5"})
    try:
        specialist = Specialist.register("snap-1", "Snap", [], {})
        for n in range(11):
            specialist.heartbeat("busy" if n % 2 else "idle")
        app.save(specialist)  # one save of 12 events: snapshots at 5 and 10
        assert app.snapshots is not None
        assert [s.originator_version for s in app.snapshots.get(specialist.id)] == [5, 10]
        assert app.get(specialist.id).version == 12
    finally:
        app.close()


def command_sortie(sortie: Sortie, name: str, n: int) -> None:
    if name == "update":
        sortie.update({"title": f"t{n}", "metadata": {"n": n}, "priority": "high"})
    elif name == "assign":
        sortie.assign(f"spec-{n % 3}")
    elif name == "start":
        sortie.start()
    elif name == "progress":
        sortie.report_progress(n % 101, f"at {n}")
    elif name == "block":
        sortie.block(f"blocked {n}", "resource", f"r{n}")
    elif name == "unblock":
        sortie.unblock(f"resolved {n}")
    elif name == "review":
        sortie.submit_for_review(f"rev-{n}", "code")
    elif name == "reject":
        sortie.request_changes("needs_changes", f"again {n}")
    elif name == "complete":
        sortie.complete({"n": n})
    elif name == "fail":
        sortie.fail(f"error {n}", {"n": n})
    else:
        sortie.cancel(f"reason {n}")


def command_specialist(specialist: Specialist, name: str, n: int) -> None:
    if name == "heartbeat":
        statuses = ("active", "busy", "idle")
        specialist.heartbeat(statuses[n % 3], f"s{n}", {"cpu": n / 100}, {"n": n})
    elif name == "reregister":
        specialist.reregister(f"name {n}", [f"c{n}", "x"], {"n": n})
    elif name == "spawn":
        specialist.record_spawn(f"parent-{n}", config={"n": n})
    elif name == "complete":
        specialist.complete("success", f"summary {n}")
    else:
        specialist.fail(f"error {n}", {"n": n})


# (command, argument, save after it?)
histories = st.lists(
    st.tuples(st.integers(0, 99), st.integers(0, 1000), st.booleans()), min_size=10, max_size=120
)


def state(aggregate: Any) -> dict[str, Any]:
    found = dict(vars(aggregate))
    found.pop("_pending_events", None)
    return found


def check_every_version(app: FleetApplication, stream: UUID) -> int:
    head = app.get(stream).version
    for version in range(1, head + 1):
        with_snapshot = app.get(stream, version=version)
        full_replay = project_fast(None, app.events.get(stream, lte=version))
        assert state(with_snapshot) == state(full_replay), version
    return head


@pytest.mark.parametrize("kind", ["sortie", "specialist"])
def test_snapshot_plus_later_events_equals_a_full_replay_at_every_version(
    backend: dict[str, str], kind: str
) -> None:
    interval = 4
    app = FleetApplication(
        {
            **backend,
            "FLEET_SNAPSHOT_INTERVAL_SORTIE": str(interval),
            "FLEET_SNAPSHOT_INTERVAL_SPECIALIST": str(interval),
        }
    )
    counter = iter(range(1_000_000))

    @settings(
        max_examples=25 if backend["PERSISTENCE_MODULE"].endswith("sqlite") else 10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(history=histories)
    def check(history: list[tuple[int, int, bool]]) -> None:
        aggregate: Any
        if kind == "sortie":
            aggregate = Sortie.create(f"snapshot {next(counter)}", dependencies=["d1"])
        else:
            aggregate = Specialist.register(f"snap-{next(counter)}", "Snap", ["a"], {"k": 1})
        for choice, argument, save in history:
            if kind == "sortie":
                status = aggregate.status
                final = SORTIE_FINAL.get(status, ("complete", "fail", "cancel"))
                commands = final if choice >= 97 else SORTIE_COMMANDS[status]
                command_sortie(aggregate, commands[choice % len(commands)], argument)
            else:
                commands = SPECIALIST_FINAL if choice >= 97 else SPECIALIST_COMMANDS
                command_specialist(aggregate, commands[choice % len(commands)], argument)
            if save:
                app.save(aggregate)
            if aggregate.status in ("completed", "failed", "cancelled"):
                break
        app.save(aggregate)
        head = check_every_version(app, aggregate.id)
        assert app.snapshots is not None
        taken = [s.originator_version for s in app.snapshots.get(aggregate.id)]
        assert taken == list(range(interval, head + 1, interval))

    try:
        check()
    finally:
        app.close()
