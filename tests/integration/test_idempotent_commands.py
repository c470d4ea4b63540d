"""Idempotent commands in Python: ``idempotency_key=`` on every Fleet command."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from application.errors import ValidationError
from application.fleet import Fleet
from application.idempotency import KeyReused
from application.store.indexing import IndexingRecorder


def events(fleet: Fleet) -> int:
    return fleet.events(limit=1)[1]


def test_a_repeated_key_returns_the_first_result_and_records_nothing(fleet: Fleet) -> None:
    first = fleet.create_mission(title="T", goals=["g"], idempotency_key="m1")
    again = fleet.create_mission(title="T", goals=["g"], idempotency_key="m1")
    assert again == first
    assert events(fleet) == 1
    fleet.register_specialist("s1", "S")
    sortie = fleet.create_sortie(description="D", mission_id=first["id"])
    assigned = fleet.update_sortie(
        sortie["id"], status="assigned", assigned_to="s1", idempotency_key="a"
    )
    recorded = events(fleet)
    fleet.update_sortie(sortie["id"], status="in_progress")
    # The replay is the sortie as it was right after the keyed write, not as it is now.
    assert (
        fleet.update_sortie(sortie["id"], status="assigned", assigned_to="s1", idempotency_key="a")
        == assigned
    )
    assert events(fleet) == recorded + 1


def test_a_command_returns_its_position_creation_and_replay(fleet: Fleet) -> None:
    with fleet.context() as scope:
        first = fleet.register_specialist("s1", "S", idempotency_key="r")
    assert (first.position, first.created, first.replayed) == (scope.position, True, False)
    renamed = fleet.register_specialist("s1", "Renamed")
    assert (renamed.created, renamed.replayed) == (False, False)
    with fleet.context() as again:
        repeat = fleet.register_specialist("s1", "S", idempotency_key="r")
    assert (repeat.position, repeat.created, repeat.replayed) == (first.position, True, True)
    assert again.position == first.position  # a scope still learns the last position
    assert repeat == first


def test_other_arguments_under_a_used_key_are_refused(fleet: Fleet) -> None:
    fleet.create_mission(title="T", idempotency_key="k")
    with pytest.raises(KeyReused) as refused:
        fleet.create_mission(title="Other", idempotency_key="k")
    assert refused.value.status == 422
    with pytest.raises(KeyReused):
        fleet.create_sortie(description="D", idempotency_key="k")
    assert events(fleet) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "line\nbreak", "ünï"])
def test_a_malformed_key_is_a_validation_error(fleet: Fleet, key: str) -> None:
    with pytest.raises(ValidationError) as refused:
        fleet.create_mission(title="T", idempotency_key=key)
    assert "idempotency_key" in refused.value.errors
    assert events(fleet) == 0


def test_the_key_survives_the_process_that_wrote_it(backend: dict[str, str]) -> None:
    """Remembered in the write's own transaction: a new process (after a crash) replays it."""
    writer = Fleet(env=backend)
    first = writer.send_message("box", "note", {"n": 1}, idempotency_key="once")
    writer.close()  # the answer may never have reached the caller
    retry = Fleet(env=backend)
    try:
        assert retry.send_message("box", "note", {"n": 1}, idempotency_key="once") == first
        assert events(retry) == 1
    finally:
        retry.close()


def test_a_refused_command_is_not_remembered(fleet: Fleet) -> None:
    fleet.register_specialist("s1", "S")
    sortie = fleet.create_sortie(description="D")
    with pytest.raises(Exception, match="cannot go"):
        fleet.update_sortie(sortie["id"], status="completed", idempotency_key="c")
    fleet.update_sortie(sortie["id"], status="assigned", assigned_to="s1")
    fleet.update_sortie(sortie["id"], status="in_progress")
    done = fleet.update_sortie(sortie["id"], status="completed", idempotency_key="c")
    assert done["status"] == "completed"


def test_the_sweep_forgets_keys_past_the_ttl(backend: dict[str, str]) -> None:
    fleet = Fleet(env={**backend, "FLEET_IDEMPOTENCY_TTL": "60"})
    try:
        first = fleet.create_mission(title="T", idempotency_key="k")
        assert fleet.purge_idempotency_keys() == 0
        fleet.sweep(now=datetime.now(UTC) + timedelta(seconds=61))
        second = fleet.create_mission(title="T", idempotency_key="k")
        assert second["id"] != first["id"]
        assert fleet.purge_idempotency_keys(datetime.now(UTC).timestamp() + 61) == 1
    finally:
        fleet.close()


def test_a_bad_ttl_fails_the_start(sqlite_env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="FLEET_IDEMPOTENCY_TTL"):
        Fleet(env={**sqlite_env, "FLEET_IDEMPOTENCY_TTL": "0"})


def test_sixteen_threads_with_one_key_record_one_command(fleet: Fleet) -> None:
    """Each racer creates a new stream; the losers' transactions fail on the key, whole."""
    results: list[Any] = []
    start = threading.Barrier(16)

    def one() -> None:
        start.wait()
        try:
            results.append(fleet.create_sortie(description="D", idempotency_key="race"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, dict) for r in results), results
    assert len({r["id"] for r in results}) == 1
    assert events(fleet) == 1


class AnswerBeforeNext:
    """A recorder's cursor that lets each statement's answer reach the client before the
    next statement is sent: a failed statement is then read while sending the next one,
    not at the sync the library makes before its commit (on PostgreSQL, pipelined)."""

    def __init__(self, cursor: Any):
        self.cursor = cursor

    def execute(self, *args: Any) -> Any:
        result = self.cursor.execute(*args)
        time.sleep(0.05)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)


def test_a_repeat_refused_after_its_key_was_read_early_answers_the_first_result(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repeat of a keyed lock acquisition records a refusal (the lock is its own now)
    that probes the key: the key's insert fails, and its failure is read while the next
    statement goes out. It must still be the key's conflict (the remembered result), not
    a 503: on PostgreSQL the library's commit used to meet an aborted pipeline there."""
    fleet.register_specialist("s1", "S")
    first = fleet.acquire_lock("src/app.py", "s1", idempotency_key="take")
    claim = IndexingRecorder._claim_key
    monkeypatch.setattr(
        IndexingRecorder,
        "_claim_key",
        lambda self, cursor, key, position: claim(self, AnswerBeforeNext(cursor), key, position),
    )
    recorded = events(fleet)
    again = fleet.acquire_lock("src/app.py", "s1", idempotency_key="take")
    assert (again, again.replayed) == (first, True)
    assert events(fleet) == recorded


@pytest.mark.parametrize("inline", ["0", "1"])
def test_a_repeat_whose_key_is_read_early_by_the_projections_answers_the_first_result(
    backend: dict[str, str], inline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeat that writes new events again (a mission is created anew) meets its key in
    the insert. With the projections applied in the same transaction, their statements
    go before the key's, and the key's failure is read at the commit at the latest (here,
    early); what the projections wrote is rolled back with the events."""
    fleet = Fleet(env={**backend, "FLEET_INLINE_PROJECTIONS": inline})
    try:
        first = fleet.create_mission(title="T", idempotency_key="m")
        claim = IndexingRecorder._claim_key
        monkeypatch.setattr(
            IndexingRecorder,
            "_claim_key",
            lambda self, cursor, key, position: claim(
                self, AnswerBeforeNext(cursor), key, position
            ),
        )
        again = fleet.create_mission(title="T", idempotency_key="m")
        assert (again, again.replayed) == (first, True)
        assert events(fleet) == 1
    finally:
        fleet.close()
