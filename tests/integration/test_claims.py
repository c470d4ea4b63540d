"""The claim on both backends: which sortie is claimable, which is best, who may claim, and
exactly one winner per sortie when claimers race (threads here; processes behind a real
multi-worker gunicorn in tests/e2e/test_work_loop_servers.py)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from application import Fleet
from application.errors import Conflict, ValidationError


def specialist(fleet: Fleet, name: str, *capabilities: str) -> str:
    fleet.register_specialist(
        specialist_id=name, name=name.title(), capabilities=list(capabilities)
    )
    return name


def test_claims_the_highest_priority_then_the_oldest(fleet: Fleet) -> None:
    ace = specialist(fleet, "ace")
    low = fleet.create_sortie(description="low", priority="low")
    old_high = fleet.create_sortie(description="old high", priority="high")
    critical = fleet.create_sortie(description="critical", priority="critical")
    new_high = fleet.create_sortie(description="new high", priority="high")
    medium = fleet.create_sortie(description="medium")
    order = [fleet.claim_sortie(ace) for _ in range(5)]
    assert [s["id"] for s in order if s] == [
        critical["id"], old_high["id"], new_high["id"], medium["id"], low["id"],
    ]  # fmt: skip
    assert all(s and s["status"] == "assigned" and s["assigned_to"] == ace for s in order)
    assert fleet.claim_sortie(ace) is None
    assigned = fleet.events(type="sortie_assigned")[0]
    assert [e["data"]["specialist_id"] for e in assigned] == [ace] * 5


def test_only_pending_unheld_ready_sorties_are_claimable(fleet: Fleet) -> None:
    ace, bee = specialist(fleet, "ace"), specialist(fleet, "bee")
    held = fleet.create_sortie(description="held", assigned_to=bee, priority="critical")
    cancelled = fleet.create_sortie(description="cancelled", priority="critical")
    fleet.update_sortie(cancelled["id"], status="cancelled")
    first = fleet.create_sortie(description="first", priority="low")
    waiting = fleet.create_sortie(
        description="waits for first", priority="critical", dependencies=[first["id"]]
    )
    assert fleet.claim_sortie(ace)["id"] == first["id"]  # type: ignore[index]
    assert fleet.claim_sortie(ace) is None  # its dependent waits until it is completed
    fleet.update_sortie(first["id"], status="in_progress")
    assert fleet.claim_sortie(ace) is None
    fleet.update_sortie(first["id"], status="completed")
    assert fleet.claim_sortie(ace)["id"] == waiting["id"]  # type: ignore[index]
    assert fleet.get_sortie(held["id"])["assigned_to"] == bee


def test_required_capabilities_must_all_be_the_claimers(fleet: Fleet) -> None:
    py = specialist(fleet, "py", "python")
    both = specialist(fleet, "both", "python", "sql")
    needs_both = fleet.create_sortie(
        description="both", priority="critical", required_capabilities=["python", "sql"]
    )
    needs_py = fleet.create_sortie(description="py", required_capabilities=["python"])
    assert needs_both["required_capabilities"] == ["python", "sql"]
    assert fleet.get_sortie(needs_both["id"])["required_capabilities"] == ["python", "sql"]
    listed = {s["id"]: s["required_capabilities"] for s in fleet.list_sorties()[0]}
    assert listed == {needs_both["id"]: ["python", "sql"], needs_py["id"]: ["python"]}
    [created, _] = fleet.events(type="sortie_created")[0]
    assert created["data"]["required_capabilities"] == ["python", "sql"]

    assert fleet.claim_sortie(py)["id"] == needs_py["id"]  # type: ignore[index]
    assert fleet.claim_sortie(py) is None  # lacks sql
    # The request's capabilities replace the registered ones.
    assert fleet.claim_sortie(both, capabilities=["python"]) is None
    assert fleet.claim_sortie(both)["id"] == needs_both["id"]  # type: ignore[index]
    plain = fleet.create_sortie(description="anyone")
    assert plain["required_capabilities"] == []
    assert fleet.claim_sortie(py, capabilities=[])["id"] == plain["id"]  # type: ignore[index]


def test_a_mission_narrows_the_claim(fleet: Fleet) -> None:
    ace = specialist(fleet, "ace")
    mission = fleet.create_mission(title="m")
    fleet.create_sortie(description="outside", priority="critical")
    inside = fleet.create_sortie(description="inside", mission_id=mission["id"])
    assert fleet.claim_sortie(ace, mission_id=mission["id"])["id"] == inside["id"]  # type: ignore[index]
    assert fleet.claim_sortie(ace, mission_id=mission["id"]) is None


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"specialist_id": "nobody"}, "specialist_id"),
        ({"specialist_id": "bad id!"}, "specialist_id"),
        (
            {"specialist_id": "ace", "mission_id": "00000000-0000-0000-0000-000000000000"},
            "mission_id",
        ),
        ({"specialist_id": "ace", "mission_id": "no-such-mission"}, "mission_id"),
        ({"specialist_id": "ace", "capabilities": [""]}, "capabilities.0"),
    ],
)
def test_bad_claims_name_the_field_and_write_nothing(
    fleet: Fleet, call: dict[str, Any], field: str
) -> None:
    specialist(fleet, "ace")
    fleet.create_sortie(description="s")
    head = fleet.head_position()
    with pytest.raises(ValidationError) as error:
        fleet.claim_sortie(**call)
    assert field in error.value.errors, error.value.errors
    assert fleet.head_position() == head


@pytest.mark.parametrize("end", ["deregister", "fail", "complete"])
def test_a_specialist_that_is_not_live_may_not_claim(fleet: Fleet, end: str) -> None:
    ace = specialist(fleet, "ace")
    fleet.create_sortie(description="s")
    if end == "deregister":
        fleet.deregister_specialist(ace)
    elif end == "fail":
        fleet.fail_specialist(ace, error="crashed")
    else:
        fleet.complete_specialist(ace, reason="success")
    head = fleet.head_position()
    with pytest.raises(Conflict, match="only a specialist that is active, busy, idle"):
        fleet.claim_sortie(ace)
    assert fleet.head_position() == head
    for status in ("busy", "idle"):  # live statuses do claim
        fleet.register_specialist(specialist_id=f"{status}-one", name="x")
        fleet.heartbeat(f"{status}-one", status=status)
    assert fleet.claim_sortie("busy-one") is not None


def race(fleets: list[Fleet], claimers: int) -> list[dict[str, Any] | None]:
    """``claimers`` threads, spread over ``fleets`` (one pool each, like processes), claim once."""
    barrier = threading.Barrier(claimers)
    results: list[dict[str, Any] | None] = [None] * claimers
    errors: list[BaseException] = []

    def claim(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[n] = fleets[n % len(fleets)].claim_sortie(f"claimer-{n}")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def test_sixteen_claimers_racing_for_ten_sorties_win_ten_distinct_ones(
    backend: dict[str, str],
) -> None:
    setup = Fleet(env=backend)
    fleets = [Fleet(env=backend) for _ in range(4)]
    try:
        for n in range(16):
            specialist(setup, f"claimer-{n}")
        sorties = {setup.create_sortie(description=f"s{n}")["id"] for n in range(10)}
        results = race(fleets, 16)
        won = [r for r in results if r is not None]
        assert len(won) == 10
        assert {r["id"] for r in won} == sorties  # every sortie once, none twice
        assert all(r["assigned_to"] == f"claimer-{n}" for n, r in enumerate(results) if r)
        assigned = Counter(e["stream_id"] for e in setup.events(type="sortie_assigned")[0])
        assert set(assigned.values()) == {1} and set(assigned) == sorties
        print(f"\nclaim race [{setup.backend}, threads]: 16 claimers, 10 sorties, 10 won, 6 none")
    finally:
        for fleet in (setup, *fleets):
            fleet.close()
