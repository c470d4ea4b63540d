"""The envelope: correlation and causation come from the surrounding context."""

from __future__ import annotations

from domain.envelope import caused_by, current_context, event_context
from domain.specialist import Specialist


def test_an_event_without_context_starts_its_own_chain() -> None:
    first = Specialist.register("a", "A", [], {})
    second = Specialist.register("b", "B", [], {})
    one, two = first.pending_events[0], second.pending_events[0]
    assert one.causation_id is None and one.correlation_id != two.correlation_id
    assert one.event_id != two.event_id and one.event_metadata == {}


def test_a_context_gives_its_events_one_correlation_and_metadata() -> None:
    with event_context("corr-1", actor="planner", request_id="r-9", source="test", empty=None):
        specialist = Specialist.register("a", "A", [], {})
        specialist.heartbeat("busy")
    events = specialist.pending_events
    assert {e.correlation_id for e in events} == {"corr-1"}
    assert events[0].event_metadata == {"actor": "planner", "request_id": "r-9", "source": "test"}
    assert current_context() is None


def test_follow_up_events_name_their_cause_and_keep_its_correlation() -> None:
    with event_context(actor="planner"):
        cause = Specialist.register("a", "A", [], {})
        with caused_by(cause.pending_events[0]):  # type: ignore[arg-type]
            effect = Specialist.register("b", "B", [], {})
    root, follow = cause.pending_events[0], effect.pending_events[0]
    assert follow.causation_id == root.event_id
    assert follow.correlation_id == root.correlation_id
    assert follow.event_metadata == {"actor": "planner"}
