"""The console tests' scenario, built through the HTTP API (a test client or a live server).

A mission with five dependent sorties in several states, three specialists, a lock and a
message thread:

    design (completed) -> build (in_progress, 60%) -> test (assigned, blocked by build)
    design -> docs (review)
    test, docs -> release (pending, blocked by both)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

API = "/api/v1"
# call(method, path, json) -> (status, body)
Call = Callable[[str, str, dict[str, Any] | None], tuple[int, Any]]


@dataclass
class Scenario:
    mission_id: str = ""
    sorties: dict[str, str] = field(default_factory=dict)
    lock_id: str = ""
    thread_id: str = "release-thread"


def ok(call: Call, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    status, data = call(method, API + path, body)
    assert 200 <= status < 300, (method, path, status, data)
    return data


def move(call: Call, sortie_id: str, **body: Any) -> None:
    ok(call, "PATCH", f"/sorties/{sortie_id}", body)


def build(call: Call) -> Scenario:
    scenario = Scenario()
    for specialist in ("alice", "bob", "carol"):
        ok(
            call,
            "POST",
            "/specialists/register",
            {"specialist_id": specialist, "name": specialist.title(), "capabilities": ["python"]},
        )
    mission = ok(call, "POST", "/missions", {"title": "Ship the release", "description": "v2"})
    scenario.mission_id = mission_id = mission["mission"]["id"]
    ok(call, "PATCH", f"/missions/{mission_id}", {"status": "in_progress"})

    def sortie(title: str, *needs: str) -> str:
        created = ok(
            call,
            "POST",
            "/sorties",
            {
                "mission_id": mission_id,
                "title": title,
                "description": f"{title} work",
                "dependencies": [scenario.sorties[n] for n in needs],
            },
        )
        scenario.sorties[title] = created["sortie"]["id"]
        return str(created["sortie"]["id"])

    design = sortie("design")
    build_ = sortie("build", "design")
    test = sortie("test", "build")
    docs = sortie("docs", "design")
    sortie("release", "test", "docs")

    move(call, design, status="assigned", assigned_to="alice")
    move(call, design, status="in_progress")
    move(call, design, status="review", reviewer_id="bob")
    move(call, design, status="completed", result={"doc": "design.md"})
    move(call, build_, status="assigned", assigned_to="bob")
    move(call, build_, status="in_progress")
    move(call, build_, progress=60, status_message="compiling")
    move(call, test, status="assigned", assigned_to="carol")
    move(call, docs, status="assigned", assigned_to="alice")
    move(call, docs, status="in_progress")
    move(call, docs, status="review", reviewer_id="carol")

    lock = ok(
        call,
        "POST",
        "/locks/acquire",
        {"file": "src/app.py", "specialist_id": "bob", "timeout_ms": 3_600_000},
    )
    scenario.lock_id = lock["lock"]["id"]
    for sender, mailbox, text in (
        ("bob", "alice", "Design looks good; starting the build."),
        ("alice", "bob", "Thanks! Ping me when tests run."),
        ("bob", "alice", "Build at 60%."),
    ):
        ok(
            call,
            "POST",
            f"/mailboxes/{mailbox}/messages",
            {
                "message_type": "chat",
                "content": {"text": text},
                "sender_id": sender,
                "thread_id": scenario.thread_id,
            },
        )
    return scenario
