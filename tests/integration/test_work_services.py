"""Missions, sorties and checkpoints through the Python services, on both backends."""

from __future__ import annotations

import pytest

from application import Conflict, Fleet, NotFound, PreconditionFailed, ValidationError
from application.services.sorties import SortieService


@pytest.fixture
def crew(fleet: Fleet) -> Fleet:
    fleet.register_specialist(specialist_id="ace", name="Ace", capabilities=["code"])
    fleet.register_specialist(specialist_id="bee", name="Bee", capabilities=["review"])
    return fleet


def start(fleet: Fleet, sortie_id: str, who: str = "ace") -> dict:
    fleet.update_sortie(sortie_id, status="assigned", assigned_to=who)
    return fleet.update_sortie(sortie_id, status="in_progress")


def test_a_mission_runs_from_creation_to_completion(crew: Fleet) -> None:
    # Create a mission with two sorties, the second depending on the first.
    mission = crew.create_mission(title="Ship it", goals=["green CI"], priority="high")
    assert mission["status"] == "pending" and mission["progress"]["total"] == 0
    first = crew.create_sortie(description="write code", mission_id=mission["id"])
    second = crew.create_sortie(
        description="review", mission_id=mission["id"], dependencies=[first["id"]]
    )
    assert second["blocked_by"] == [first["id"]]

    # The dependant cannot start before its dependency completes.
    crew.update_mission(mission["id"], status="in_progress")
    crew.update_sortie(second["id"], status="assigned", assigned_to="bee")
    with pytest.raises(Conflict, match="dependencies not completed"):
        crew.update_sortie(second["id"], status="in_progress")

    # Work the first sortie through progress, a block and a review.
    start(crew, first["id"])
    assert crew.update_sortie(first["id"], progress=40, status_message="halfway")["progress"] == 40
    blocked = crew.update_sortie(first["id"], status="blocked", reason="waiting on API key")
    assert blocked["status"] == "blocked" and blocked["blocker"]["blocker_type"] == "external"
    crew.update_sortie(first["id"], status="in_progress", resolution="key arrived")
    crew.update_sortie(first["id"], status="review", reviewer_id="bee", review_type="code")
    with pytest.raises(Conflict, match="requires a verdict"):
        crew.update_sortie(first["id"], status="in_progress")
    crew.update_sortie(first["id"], status="in_progress", verdict="needs_changes", feedback="tests")
    crew.update_sortie(first["id"], status="review", reviewer_id="bee")
    done = crew.update_sortie(first["id"], status="completed", result={"pr": 7}, feedback="ok")
    assert done["status"] == "completed" and done["review"]["verdict"] == "approved"

    # Now the second sortie is unblocked and can finish; the mission can complete.
    assert crew.get_sortie(second["id"])["blocked_by"] == []
    with pytest.raises(Conflict, match="not completed or cancelled"):
        crew.update_mission(mission["id"], status="completed")
    crew.update_sortie(second["id"], status="in_progress")
    crew.update_sortie(second["id"], status="completed")
    finished = crew.update_mission(mission["id"], status="completed", result={"ok": True})
    assert finished["status"] == "completed"
    assert finished["progress"]["completed"] == 2 and finished["progress"]["percent"] == 100
    types = [e["event_type"] for e in crew.stream_events(first["stream_id"])]
    assert types[:3] == ["sortie_created", "sortie_assigned", "sortie_started"]
    assert {"review_started", "review_completed", "sortie_blocked", "sortie_unblocked"} <= set(
        types
    )


def test_sortie_rules_answer_with_conflicts_and_field_errors(crew: Fleet) -> None:
    sortie = crew.create_sortie(description="task")
    with pytest.raises(ValidationError) as missing:
        crew.update_sortie(sortie["id"], status="assigned")
    assert "assigned_to" in missing.value.errors
    with pytest.raises(ValidationError) as unknown:
        crew.update_sortie(sortie["id"], status="assigned", assigned_to="nobody")
    assert "assigned_to" in unknown.value.errors
    with pytest.raises(Conflict, match="allowed next statuses: assigned, cancelled"):
        crew.update_sortie(sortie["id"], status="completed")
    with pytest.raises(Conflict, match="in_progress"):
        crew.update_sortie(sortie["id"], progress=10)
    with pytest.raises(ValidationError) as bad_progress:
        crew.update_sortie(sortie["id"], progress=101)
    assert "progress" in bad_progress.value.errors
    with pytest.raises(ValidationError):
        crew.update_sortie(sortie["id"])
    with pytest.raises(ValidationError) as extra:
        crew.update_sortie(sortie["id"], status="cancelled", error="x")
    assert "error" in extra.value.errors
    cancelled = crew.update_sortie(sortie["id"], status="cancelled", reason="dropped")
    with pytest.raises(Conflict, match="final"):
        crew.update_sortie(cancelled["id"], title="renamed")
    with pytest.raises(NotFound):
        crew.get_sortie("not-a-sortie")


def test_dependencies_must_exist_and_never_form_a_cycle(crew: Fleet) -> None:
    a = crew.create_sortie(description="a")
    b = crew.create_sortie(description="b", dependencies=[a["id"]])
    with pytest.raises(ValidationError) as missing:
        crew.create_sortie(description="c", dependencies=["9f1c0b1e-0000-4000-8000-000000000000"])
    assert "dependencies" in missing.value.errors
    with pytest.raises(ValidationError) as cycle:
        crew.update_sortie(a["id"], dependencies=[b["id"]])
    assert "cycle" in cycle.value.errors["dependencies"][0]
    with pytest.raises(ValidationError) as mission:
        crew.create_sortie(description="d", mission_id="no-such-mission")
    assert "mission_id" in mission.value.errors


def test_two_racing_patches_cannot_close_a_cycle(
    crew: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B gains A as a dependency while a PATCH giving A the dependency B is between its
    field checks and its write: the write checks again and refuses the cycle."""
    a = crew.create_sortie(description="a")
    b = crew.create_sortie(description="b")
    check = SortieService._check_no_cycle
    raced: list[bool] = []

    def check_then_race(self: SortieService, sortie_id: str, dependencies: list[str]) -> None:
        check(self, sortie_id, dependencies)
        if not raced:
            raced.append(True)
            crew.update_sortie(b["id"], dependencies=[a["id"]])

    monkeypatch.setattr(SortieService, "_check_no_cycle", check_then_race)
    with pytest.raises(ValidationError) as cycle:
        crew.update_sortie(a["id"], dependencies=[b["id"]])
    assert "cycle" in cycle.value.errors["dependencies"][0]
    assert raced
    assert crew.get_sortie(a["id"])["dependencies"] == []
    assert crew.get_sortie(b["id"])["dependencies"] == [a["id"]]


def test_a_mission_cancelled_during_a_sortie_creation_takes_no_sortie(
    crew: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mission is cancelled after the new sortie's fields are checked and before it
    is written: the write finds the mission closed."""
    mission = crew.create_mission(title="Closing")
    existing = SortieService._existing_sorties

    def check_then_cancel(self: SortieService, ids: list[str]) -> None:
        existing(self, ids)
        crew.update_mission(mission["id"], status="cancelled", reason="scrapped")

    monkeypatch.setattr(SortieService, "_existing_sorties", check_then_cancel)
    with pytest.raises(Conflict, match="takes no new sorties"):
        crew.create_sortie(description="late", mission_id=mission["id"])
    assert crew.get_mission(mission["id"])["progress"]["total"] == 0


def test_writes_with_a_stale_expected_version_change_nothing(crew: Fleet) -> None:
    mission = crew.create_mission(title="Pinned")
    crew.update_mission(mission["id"], title="Renamed", expected_version=1)
    with pytest.raises(PreconditionFailed):
        crew.update_mission(mission["id"], title="Lost", expected_version=1)
    assert crew.get_mission(mission["id"])["title"] == "Renamed"
    assert crew.get_mission(mission["id"], version=1)["title"] == "Pinned"


def test_mission_status_rules(crew: Fleet) -> None:
    mission = crew.create_mission(title="Rules")
    with pytest.raises(Conflict, match="allowed next statuses: cancelled, in_progress"):
        crew.update_mission(mission["id"], status="completed")
    with pytest.raises(ValidationError) as no_reason:
        crew.update_mission(mission["id"], status="failed")
    assert "reason" in no_reason.value.errors
    with pytest.raises(ValidationError):
        crew.update_mission(mission["id"], colour="red")
    crew.update_mission(mission["id"], status="in_progress")
    failed = crew.update_mission(mission["id"], status="failed", reason="budget")
    assert failed["status"] == "failed" and failed["reason"] == "budget"
    with pytest.raises(Conflict):
        crew.create_sortie(description="late", mission_id=mission["id"])


def test_restoring_a_checkpoint_appends_history_and_cancels_newcomers(crew: Fleet) -> None:
    mission = crew.create_mission(title="Restore me")
    kept = crew.create_sortie(description="kept", mission_id=mission["id"])
    checkpoint = crew.create_checkpoint(mission["id"], description="before work")
    assert checkpoint["target_version"] == 1 and len(checkpoint["state"]["streams"]) == 2

    # Work happens after the checkpoint: a sortie starts and a new one appears.
    crew.update_mission(mission["id"], status="in_progress")
    start(crew, kept["id"])
    newcomer = crew.create_sortie(description="new", mission_id=mission["id"])
    with pytest.raises(ValidationError):
        crew.restore_checkpoint(checkpoint["id"])

    restored = crew.restore_checkpoint(checkpoint["id"], confirm=True)
    assert restored["restored_count"] == 1
    assert crew.get_mission(mission["id"])["status"] == "pending"
    sortie = crew.get_sortie(kept["id"])
    assert sortie["status"] == "pending" and sortie["version"] == 4
    assert crew.get_sortie(newcomer["id"])["status"] == "cancelled"
    assert crew.get_mission(mission["id"])["progress"]["cancelled"] == 1

    # History only grows; every follow-up event names the restore as its cause.
    types = [e["event_type"] for e in crew.stream_events(kept["stream_id"])]
    assert types == ["sortie_created", "sortie_assigned", "sortie_started", "fleet_recovered"]
    cause = crew.events(type="checkpoint_restored")[0][0]
    recovered, total = crew.events(type="fleet_recovered")
    assert total == 2
    assert {e["causation_id"] for e in recovered} == {cause["event_id"]}
    assert {e["correlation_id"] for e in recovered} == {cause["correlation_id"]}
    fleet_events, _ = crew.events(type="fleet_checkpointed")
    assert fleet_events[0]["stream_type"] == "fleet"


def test_a_fleet_checkpoint_holds_every_open_mission(crew: Fleet) -> None:
    open_mission = crew.create_mission(title="Open")
    crew.create_sortie(description="s", mission_id=open_mission["id"])
    closed = crew.create_mission(title="Closed")
    crew.update_mission(closed["id"], status="cancelled")
    checkpoint = crew.create_checkpoint("fleet")
    captured = {s["stream_id"] for s in checkpoint["state"]["streams"]}
    assert open_mission["id"] in captured and closed["id"] not in captured
    second = crew.create_checkpoint("fleet", description="again")
    assert second["target_version"] == 1
    assert crew.list_checkpoints(stream_id="fleet")[1] == 2
    with pytest.raises(ValidationError) as unknown:
        crew.create_checkpoint("no-such-stream")
    assert "stream_id" in unknown.value.errors
    with pytest.raises(NotFound):
        crew.get_checkpoint("nope")


def test_time_travel_by_version_and_time(crew: Fleet) -> None:
    mission = crew.create_mission(title="v1")
    crew.update_mission(mission["id"], title="v2")
    first_event = crew.stream_events(mission["stream_id"])[0]
    from datetime import datetime

    at = datetime.fromisoformat(first_event["created_at"])
    assert crew.get_mission(mission["id"], as_of=at)["title"] == "v1"
    with pytest.raises(NotFound):
        crew.get_mission(mission["id"], version=9)
    with pytest.raises(NotFound):
        crew.get_mission(mission["id"], as_of=datetime.fromisoformat("2000-01-01T00:00:00+00:00"))
    with pytest.raises(ValidationError):
        crew.get_mission(mission["id"], as_of=datetime(2030, 1, 1))


def test_a_mission_read_in_the_past_shows_its_sorties_as_they_were(crew: Fleet) -> None:
    mission = crew.create_mission(title="Then and now")
    early = crew.create_sortie(description="early", mission_id=mission["id"])
    crew.update_mission(mission["id"], title="Renamed")  # version 2, before the late sortie
    start(crew, early["id"])
    crew.update_sortie(early["id"], status="completed")
    crew.create_sortie(description="late", mission_id=mission["id"])

    then = crew.get_mission(mission["id"], version=2)
    assert then["progress"]["total"] == 1 and then["progress"]["pending"] == 1
    assert [s["status"] for s in crew.mission_sorties(mission["id"], version=2)] == ["pending"]
    now = crew.get_mission(mission["id"])
    assert now["progress"]["total"] == 2 and now["progress"]["completed"] == 1
    with pytest.raises(ValidationError):
        crew.register_specialist(specialist_id="nul", name="bad\x00name")
