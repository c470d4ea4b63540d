"""Sortie aggregate: lifecycle, dependencies, blocks, reviews, replay; find_cycle."""

from __future__ import annotations

import uuid
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError, RuleError, TransitionError
from domain.sortie import LIFECYCLE, Sortie, find_cycle, unfinished_dependencies

# The lifecycle as the catalogue and the PATCH table state it, independent of the code.
ALLOWED = {
    "pending": {"assigned", "cancelled"},
    "assigned": {"assigned", "in_progress", "failed", "cancelled"},
    "in_progress": {"blocked", "review", "completed", "failed", "cancelled"},
    "blocked": {"in_progress", "failed", "cancelled"},
    "review": {"in_progress", "completed", "failed", "cancelled"},
    "completed": set(),
    "failed": set(),
    "cancelled": set(),
}
FINAL = {"completed", "failed", "cancelled"}
TARGET = {
    "assign": "assigned",
    "start": "in_progress",
    "unblock": "in_progress",
    "request_changes": "in_progress",
    "block": "blocked",
    "submit_for_review": "review",
    "complete": "completed",
    "fail": "failed",
    "cancel": "cancelled",
}
# Commands that leave one status only (the lifecycle alone would allow more).
ONLY_FROM = {"start": "assigned", "unblock": "blocked", "request_changes": "review"}
PATHS = {
    "pending": [],
    "assigned": ["assign"],
    "in_progress": ["assign", "start"],
    "blocked": ["assign", "start", "block"],
    "review": ["assign", "start", "submit_for_review"],
    "completed": ["assign", "start", "complete"],
    "failed": ["assign", "start", "fail"],
    "cancelled": ["cancel"],
}


def replay(events):
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def run(sortie: Sortie, command: str) -> None:
    calls = {
        "assign": lambda: sortie.assign("spec-1"),
        "start": lambda: sortie.start(),
        "unblock": lambda: sortie.unblock("fixed"),
        "request_changes": lambda: sortie.request_changes("needs_changes", "more tests"),
        "block": lambda: sortie.block("waiting on API", "external"),
        "submit_for_review": lambda: sortie.submit_for_review("rev-1", "code"),
        "complete": lambda: sortie.complete({"ok": True}),
        "fail": lambda: sortie.fail("crashed"),
        "cancel": lambda: sortie.cancel("dropped"),
    }
    calls[command]()


def sortie_in(status: str) -> Sortie:
    sortie = Sortie.create("Write the parser", mission_id="m-1", title="Parser")
    for command in PATHS[status]:
        run(sortie, command)
    assert sortie.status == status
    sortie.collect_events()
    return sortie


def allowed_text(status: str) -> str:
    allowed = sorted(ALLOWED[status])
    return ", ".join(allowed) if allowed else "none (final status)"


def test_create_is_pending_without_a_specialist():
    sortie = Sortie.create("Do the thing")
    assert sortie.status == "pending" and sortie.assigned_to is None
    assert sortie.priority == "medium" and sortie.dependencies == [] and sortie.metadata == {}
    assert sortie.progress == 0 and sortie.blocker is None and sortie.review is None
    assert sortie.mission_id is None and sortie.title is None
    [event] = sortie.collect_events()
    assert type(event).TOPIC == "sortie_created" and event.event_type == "sortie_created"


def test_create_with_a_specialist_is_assigned_by_the_created_event_alone():
    sortie = Sortie.create("Do", mission_id="m", dependencies=("a", "b"), assigned_to="spec-9")
    assert sortie.status == "assigned" and sortie.assigned_to == "spec-9"
    assert sortie.dependencies == ["a", "b"]
    [event] = sortie.collect_events()
    assert event.assigned_to == "spec-9"


def test_create_refuses_an_unknown_priority():
    with pytest.raises(RuleError, match="priority"):
        Sortie.create("Do", priority="someday")


def test_code_lifecycle_matches_the_catalogue():
    assert set(LIFECYCLE.statuses) == set(ALLOWED)
    for status, allowed in ALLOWED.items():
        assert LIFECYCLE.allowed(status) == allowed


@pytest.mark.parametrize("status", sorted(ALLOWED))
@pytest.mark.parametrize("command", sorted(TARGET))
def test_every_command_in_every_status(status, command):
    sortie = sortie_in(status)
    version = sortie.version
    target = TARGET[command]
    if target not in ALLOWED[status]:
        with pytest.raises(TransitionError) as info:
            run(sortie, command)
        assert f"allowed next statuses: {allowed_text(status)}" in str(info.value)
        assert info.value.allowed == sorted(ALLOWED[status])
    elif command in ONLY_FROM and status != ONLY_FROM[command]:
        with pytest.raises(RuleError, match=f"sortie is {status}"):
            run(sortie, command)
    else:
        run(sortie, command)
        assert sortie.status == target
        return
    assert sortie.version == version and sortie.status == status


def test_start_refuses_unfinished_dependencies_and_names_them():
    sortie = sortie_in("assigned")
    with pytest.raises(RuleError, match="dep-1, dep-2"):
        sortie.start(unfinished_dependencies=["dep-1", "dep-2"])
    assert sortie.status == "assigned"


def test_start_defaults_to_the_assigned_specialist_and_records_start_time():
    sortie = sortie_in("assigned")
    sortie.start()
    [event] = sortie.collect_events()
    assert event.specialist_id == "spec-1" and sortie.started_at == event.timestamp
    other = sortie_in("assigned")
    other.start("spec-2")
    assert other.assigned_to == "spec-2"


@pytest.mark.parametrize(("status", "hint"), [("blocked", "unblock"), ("review", "verdict")])
def test_start_from_blocked_or_review_points_to_the_right_command(status, hint):
    with pytest.raises(RuleError, match=hint):
        sortie_in(status).start()


def test_reassign_while_assigned():
    sortie = sortie_in("assigned")
    sortie.assign("spec-2")
    assert sortie.status == "assigned" and sortie.assigned_to == "spec-2"


def test_progress_only_in_progress_and_within_range():
    sortie = sortie_in("in_progress")
    sortie.report_progress(40, "parsing")
    assert (sortie.progress, sortie.status_message) == (40, "parsing")
    for bad in (-1, 101, True, 2.5):
        with pytest.raises(RuleError, match="0 to 100"):
            sortie.report_progress(bad)
    assert [e.event_type for e in sortie.collect_events()] == ["sortie_progress"]


@pytest.mark.parametrize("status", sorted(set(ALLOWED) - {"in_progress"}))
def test_progress_refused_outside_in_progress(status):
    with pytest.raises(RuleError, match=f"only while in_progress; sortie is {status}"):
        sortie_in(status).report_progress(10)


def test_block_and_unblock():
    sortie = sortie_in("in_progress")
    sortie.block("needs a key")
    assert sortie.blocker == {
        "reason": "needs a key",
        "blocker_type": "external",
        "blocker_id": None,
    }
    with pytest.raises(RuleError, match="blocker_type"):
        sortie_in("in_progress").block("x", "weather")
    with pytest.raises(RuleError, match="reason"):
        sortie_in("in_progress").block("")
    sortie.unblock("key found")
    assert sortie.status == "in_progress" and sortie.blocker is None
    assert sortie.collect_events()[-1].resolution == "key found"


def test_review_ids_are_generated_unless_given():
    sortie = sortie_in("in_progress")
    sortie.submit_for_review("rev-1")
    review_id = sortie.review["review_id"]
    assert uuid.UUID(review_id) and sortie.review["review_type"] == "general"
    given_id = sortie_in("in_progress")
    given_id.submit_for_review("rev-2", "security", review_id="r-42")
    assert given_id.review["review_id"] == "r-42"
    with pytest.raises(RuleError, match="review_type"):
        sortie_in("in_progress").submit_for_review("rev", "vibes")


@pytest.mark.parametrize("verdict", ["rejected", "needs_changes"])
def test_a_negative_verdict_sends_the_sortie_back_to_work(verdict):
    sortie = sortie_in("review")
    review_id = sortie.review["review_id"]
    sortie.request_changes(verdict, "fix it")
    assert sortie.status == "in_progress"
    assert sortie.review["verdict"] == verdict and sortie.review["feedback"] == "fix it"
    [event] = sortie.collect_events()
    assert event.event_type == "review_completed" and event.review_id == review_id


@pytest.mark.parametrize("verdict", ["approved", "maybe"])
def test_request_changes_refuses_approval_and_unknown_verdicts(verdict):
    sortie = sortie_in("review")
    with pytest.raises(RuleError, match="verdict"):
        sortie.request_changes(verdict)
    assert sortie.status == "review"


def test_approve_ends_a_review_and_completes_the_sortie():
    sortie = sortie_in("review")
    sortie.approve({"merged": True}, "ship it")
    approval, completion = sortie.collect_events()
    assert (approval.event_type, approval.verdict, approval.feedback) == (
        "review_completed",
        "approved",
        "ship it",
    )
    assert completion.event_type == "sortie_completed" and completion.result == {"merged": True}
    with pytest.raises(RuleError, match="only a sortie in review is approved"):
        sortie_in("in_progress").approve()


@pytest.mark.parametrize(
    ("status", "kwargs", "recorded"),
    [
        ("assigned", {}, "sortie_started"),
        ("blocked", {"resolution": "found it"}, "sortie_unblocked"),
        ("review", {"verdict": "needs_changes", "feedback": "more"}, "review_completed"),
    ],
)
def test_resume_goes_back_to_work_from_where_the_sortie_is(status, kwargs, recorded):
    sortie = sortie_in(status)
    sortie.resume(**kwargs)
    assert sortie.status == "in_progress"
    assert sortie.collect_events()[-1].event_type == recorded


def test_resume_from_review_needs_a_verdict_and_from_assigned_finished_dependencies():
    with pytest.raises(RuleError, match="requires a verdict"):
        sortie_in("review").resume()
    with pytest.raises(RuleError, match="dependencies not completed: d-1"):
        sortie_in("assigned").resume(unfinished_dependencies=["d-1"])


def test_complete_from_in_progress_records_result_and_duration():
    sortie = sortie_in("in_progress")
    sortie.complete()
    [event] = sortie.collect_events()
    assert event.event_type == "sortie_completed" and event.result == {}
    expected = int((event.timestamp - sortie.started_at).total_seconds() * 1000)
    assert event.duration_ms == expected >= 0
    assert sortie.completed_at == event.timestamp and sortie.result == {}


def test_complete_from_review_records_an_approved_review_first():
    sortie = sortie_in("review")
    sortie.complete({"merged": True}, feedback="lgtm")
    events = sortie.collect_events()
    assert [e.event_type for e in events] == ["review_completed", "sortie_completed"]
    assert events[0].verdict == "approved" and events[0].feedback == "lgtm"
    assert sortie.status == "completed" and sortie.review["verdict"] == "approved"
    assert events[0].timestamp <= events[1].timestamp


def test_feedback_outside_review_is_refused():
    sortie = sortie_in("in_progress")
    with pytest.raises(RuleError, match="not in review"):
        sortie.complete(feedback="nice")
    assert sortie.status == "in_progress"


def test_fail_and_cancel_record_why():
    sortie = sortie_in("in_progress")
    sortie.fail("disk full", {"partial": True})
    assert (sortie.error, sortie.result) == ("disk full", {"partial": True})
    assert sortie.completed_at is not None
    with pytest.raises(RuleError, match="error"):
        sortie_in("assigned").fail("")
    cancelled = sortie_in("pending")
    cancelled.cancel()
    assert cancelled.status == "cancelled" and cancelled.cancel_reason is None


def test_update_changes_the_given_fields():
    sortie = sortie_in("pending")
    sortie.update({"title": "New", "priority": "high", "metadata": {"a": 1}})
    sortie.update({"dependencies": ["x", "y"]})
    assert (sortie.title, sortie.priority, sortie.metadata) == ("New", "high", {"a": 1})
    assert sortie.dependencies == ["x", "y"] and sortie.description == "Write the parser"


@pytest.mark.parametrize("status", sorted(FINAL))
def test_update_refuses_a_final_sortie(status):
    with pytest.raises(RuleError, match="final sortie"):
        sortie_in(status).update({"title": "late"})


@pytest.mark.parametrize("status", ["in_progress", "blocked", "review"])
def test_dependencies_change_only_while_pending_or_assigned(status):
    sortie = sortie_in(status)
    with pytest.raises(RuleError, match="only while pending or assigned"):
        sortie.update({"dependencies": ["x"]})
    sortie.update({"description": "still editable"})
    assert sortie.description == "still editable"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "no changes"),
        ({"status": "done"}, "cannot be changed: status"),
        ({"priority": "x"}, "priority"),
    ],
)
def test_update_refuses_bad_changes(changes, message):
    sortie = sortie_in("assigned")
    with pytest.raises(RuleError, match=message):
        sortie.update(changes)


def test_a_sortie_cannot_depend_on_itself():
    sortie = sortie_in("assigned")
    with pytest.raises(RuleError, match="itself"):
        sortie.update({"dependencies": ["other", str(sortie.id)]})


def test_replay_rebuilds_the_same_state():
    sortie = Sortie.create("Do", mission_id="m", dependencies=["d"], metadata={"k": "v"})
    for step in (
        lambda: sortie.update({"title": "T"}),
        lambda: sortie.assign("s"),
        lambda: sortie.start(),
        lambda: sortie.report_progress(50, "half"),
        lambda: sortie.block("wait", "sortie", "other"),
        lambda: sortie.unblock(),
        lambda: sortie.submit_for_review("r"),
        lambda: sortie.request_changes("rejected"),
        lambda: sortie.submit_for_review("r"),
        lambda: sortie.complete({"x": 1}, "ok"),
    ):
        step()
    copy = replay(sortie.collect_events())
    assert isinstance(copy, Sortie)
    assert copy.state_dict() == sortie.state_dict() and copy.version == sortie.version == 12


# find_cycle


def assert_is_cycle(graph, path):
    assert path[0] == path[-1] and len(path) >= 2
    for a, b in pairwise(path):
        assert b in graph.get(a, ())


@pytest.mark.parametrize(
    "graph",
    [
        {},
        {"a": []},
        {"a": ["b"], "b": ["c"]},
        {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []},  # a diamond is not a cycle
        {"a": ["unknown"]},
    ],
)
def test_find_cycle_none(graph):
    assert find_cycle(graph) is None


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ({"root": ["a"], "a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"x": ["y"], "y": [], "p": ["q"], "q": ["r"], "r": ["p"]}, ["p", "q", "r", "p"]),
    ],
)
def test_find_cycle_returns_the_cycle_path(graph, expected):
    path = find_cycle(graph)
    assert path == expected
    assert_is_cycle(graph, path)


def is_acyclic(graph):
    nodes = set(graph) | {d for deps in graph.values() for d in deps}
    indegree = dict.fromkeys(nodes, 0)
    for deps in graph.values():
        for d in deps:
            indegree[d] += 1
    ready = [n for n, k in indegree.items() if k == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for d in graph.get(node, ()):
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    return seen == len(nodes)


NODES = st.sampled_from("abcdefg")


@settings(max_examples=300, deadline=None, database=None)
@given(st.dictionaries(NODES, st.lists(NODES, max_size=3, unique=True), max_size=7))
def test_find_cycle_agrees_with_a_topological_sort(graph):
    path = find_cycle(graph)
    if path is None:
        assert is_acyclic(graph)
    else:
        assert not is_acyclic(graph)
        assert_is_cycle(graph, path)


# Random command sequences never escape the lifecycle.

COMMANDS = st.sampled_from(
    [*TARGET, "progress", "update", "update_dependencies", "start_blocked", "approve"]
)


def run_any(sortie: Sortie, command: str) -> None:
    if command == "progress":
        sortie.report_progress(50)
    elif command == "update":
        sortie.update({"title": "again"})
    elif command == "update_dependencies":
        sortie.update({"dependencies": ["z"]})
    elif command == "start_blocked":
        sortie.start(unfinished_dependencies=["z"])
    elif command == "approve":
        sortie.request_changes("approved")
    else:
        run(sortie, command)


@settings(max_examples=200, deadline=None, database=None)
@given(st.booleans(), st.lists(COMMANDS, max_size=15))
def test_random_commands_never_break_the_lifecycle(preassigned, commands):
    sortie = Sortie.create("Do", assigned_to="spec-0" if preassigned else None)
    for command in commands:
        before_status, before_version = sortie.status, sortie.version
        before_state = sortie.state_dict()
        try:
            run_any(sortie, command)
        except DomainError:
            assert sortie.state_dict() == before_state and sortie.version == before_version
            continue
        assert before_status not in FINAL, f"a final sortie changed: {command}"
        assert sortie.status in ALLOWED
        if sortie.status != before_status or command == "assign":
            assert sortie.status in ALLOWED[before_status]
        assert 0 <= sortie.progress <= 100
    events = sortie.collect_events()
    statuses = []
    copy = None
    for event in events:
        copy = event.mutate(copy)
        statuses.append(copy.status)
    for a, b in pairwise(statuses):
        assert a == b or b in ALLOWED[a]
    assert copy.state_dict() == sortie.state_dict()


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=4),
        st.sampled_from([*LIFECYCLE.statuses, None]),
        max_size=8,
    )
)
def test_a_dependency_blocks_until_it_is_completed(statuses: dict[str, str | None]) -> None:
    """``blocked_by``: every dependency not completed, a missing one (None) included, in
    the order the sortie lists them."""
    dependencies = list(statuses)
    blocked = unfinished_dependencies(dependencies, statuses.get)
    assert all(statuses[d] != "completed" for d in blocked)
    assert {d for d in dependencies if statuses[d] != "completed"} <= set(blocked)
    assert blocked == sorted(blocked, key=dependencies.index)
    assert unfinished_dependencies(dependencies, lambda _: "completed") == []
    assert unfinished_dependencies(dependencies, lambda _: None) == dependencies
