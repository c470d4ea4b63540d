"""Checkpoint and FleetLog aggregates: creation, restores, fleet checkpoints, replay."""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.checkpoint import CHECKPOINT_TRIGGERS, FLEET_LOG_ID, Checkpoint, FleetLog
from domain.errors import DomainError, RuleError


def replay(events):
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def new_checkpoint(**kwargs) -> Checkpoint:
    data = {
        "target_stream_id": "mission-stream",
        "target_version": 3,
        "position": 17,
        "state": {"mission": {"status": "in_progress"}, "sorties": []},
        **kwargs,
    }
    return Checkpoint.create(**data)


def test_create_records_checkpoint_created():
    checkpoint = new_checkpoint(description="before the risky part")
    assert (checkpoint.target_stream_id, checkpoint.target_version, checkpoint.position) == (
        "mission-stream",
        3,
        17,
    )
    assert checkpoint.description == "before the risky part"
    assert checkpoint.state["mission"] == {"status": "in_progress"}
    assert checkpoint.restored_count == 0 and checkpoint.last_restored_at is None
    assert not checkpoint.is_fleet and new_checkpoint(target_stream_id="fleet").is_fleet
    [event] = checkpoint.collect_events()
    assert type(event).TOPIC == "checkpoint_created" and event.event_type == "checkpoint_created"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target_stream_id": ""}, "target stream"),
        ({"target_version": -1}, "target_version"),
        ({"position": -5}, "position"),
        ({"position": "5"}, "position"),
        ({"target_version": True}, "target_version"),
    ],
)
def test_create_refuses_bad_values(changes, message):
    with pytest.raises(RuleError, match=message):
        new_checkpoint(**changes)


def test_record_restore_counts_and_timestamps_each_restore():
    checkpoint = new_checkpoint()
    checkpoint.record_restore(["s1", "s2"], 40)
    checkpoint.record_restore(["s1"], 55)
    events = checkpoint.collect_events()
    assert [e.event_type for e in events] == [
        "checkpoint_created",
        "checkpoint_restored",
        "checkpoint_restored",
    ]
    assert checkpoint.restored_count == 2
    assert checkpoint.last_restored_at == events[-1].timestamp
    assert checkpoint.last_restored_streams == ["s1"] and checkpoint.last_restored_position == 55
    with pytest.raises(RuleError, match="position"):
        checkpoint.record_restore([], -1)


def test_checkpoint_replay_rebuilds_the_same_state():
    checkpoint = new_checkpoint()
    checkpoint.record_restore(["a"], 9)
    copy = replay(checkpoint.collect_events())
    assert isinstance(copy, Checkpoint)
    assert copy.state_dict() == checkpoint.state_dict() and copy.version == 2


def test_fleet_log_has_a_fixed_id_and_starts_with_fleet_checkpointed():
    assert uuid5(NAMESPACE_URL, "fleet:/fleet") == FLEET_LOG_ID == FleetLog.create_id()
    log = FleetLog.first("cp-1", "manual", 2, 30)
    assert log.id == FLEET_LOG_ID
    assert log.checkpoint_count == 1 and log.last_checkpoint_id == "cp-1"
    assert (log.last_trigger, log.last_streams, log.last_position) == ("manual", 2, 30)
    log.record_checkpoint("cp-2", "shutdown", 0, 31)
    events = log.collect_events()
    assert [type(e).TOPIC for e in events] == ["fleet_checkpointed", "fleet_checkpointed.again"]
    assert {e.event_type for e in events} == {"fleet_checkpointed"}
    assert log.checkpoint_count == 2 and log.last_checkpoint_at == events[-1].timestamp


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cp", "hourly", 1, 1), "trigger must be one of"),
        (("cp", "manual", -1, 1), "streams"),
        (("cp", "manual", 1, -1), "position"),
    ],
)
def test_fleet_log_refuses_bad_values(args, message):
    with pytest.raises(RuleError, match=message):
        FleetLog.first(*args)
    log = FleetLog.first("cp-0", "scheduled", 0, 0)
    with pytest.raises(RuleError, match=message):
        log.record_checkpoint(*args)
    assert log.version == 1


def test_fleet_log_replay_rebuilds_the_same_state():
    log = FleetLog.first("cp-1", "progress", 1, 5)
    log.record_checkpoint("cp-2", "manual", 3, 8)
    copy = replay(log.collect_events())
    assert isinstance(copy, FleetLog)
    assert copy.state_dict() == log.state_dict() and copy.version == 2


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(st.lists(st.text(min_size=1, max_size=5), max_size=3), st.integers(-3, 50)),
        max_size=8,
    )
)
def test_random_restores_only_ever_count_up(restores):
    checkpoint = new_checkpoint()
    done = 0
    for streams, position in restores:
        try:
            checkpoint.record_restore(streams, position)
        except DomainError:
            assert position < 0
            continue
        done += 1
        assert checkpoint.restored_count == done
        assert checkpoint.last_restored_position == position
    assert checkpoint.target_version == 3 and checkpoint.position == 17
    assert replay(checkpoint.collect_events()).state_dict() == checkpoint.state_dict()


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*CHECKPOINT_TRIGGERS, "bogus"]),
            st.integers(-2, 9),
            st.integers(-2, 99),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_random_fleet_checkpoints_keep_a_consistent_log(entries):
    log = None
    recorded = 0
    for n, (trigger, streams, position) in enumerate(entries):
        valid = trigger in CHECKPOINT_TRIGGERS and streams >= 0 and position >= 0
        try:
            if log is None:
                log = FleetLog.first(f"cp-{n}", trigger, streams, position)
            else:
                log.record_checkpoint(f"cp-{n}", trigger, streams, position)
        except DomainError:
            assert not valid
            continue
        assert valid
        recorded += 1
        assert log.checkpoint_count == recorded == log.version
        assert log.last_checkpoint_id == f"cp-{n}" and log.last_trigger in CHECKPOINT_TRIGGERS
    if log is not None:
        assert log.id == FLEET_LOG_ID
        assert replay(log.collect_events()).state_dict() == log.state_dict()
