"""Idempotent writes over HTTP: every write route replays a repeated ``Idempotency-Key``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import API, body, mission, problem, register, sortie
from web import get_fleet

Write = tuple[str, str, dict[str, Any] | None]


def total_events(client: FlaskClient) -> int:
    return int(body(client.get(f"{API}/events?limit=1"), 200)["total"])


def message(client: FlaskClient) -> str:
    data = body(
        client.post(
            f"{API}/mailboxes/box/messages", json={"message_type": "note", "content": {"a": 1}}
        ),
        201,
    )
    return str(data["message"]["id"])


def read_message(client: FlaskClient) -> str:
    message_id = message(client)
    body(client.post(f"{API}/messages/{message_id}/read", json={"reader_id": "r"}), 200)
    return message_id


def lock(client: FlaskClient) -> str:
    data = body(
        client.post(f"{API}/locks/acquire", json={"file": "a.py", "specialist_id": "ace"}), 201
    )
    return str(data["lock"]["id"])


def in_progress(client: FlaskClient) -> str:
    register(client, "s1")
    sortie_id = str(sortie(client)["id"])
    for change in ({"status": "assigned", "assigned_to": "s1"}, {"status": "in_progress"}):
        body(client.patch(f"{API}/sorties/{sortie_id}", json=change), 200)
    return sortie_id


def checkpoint(client: FlaskClient) -> str:
    mission_id = mission(client)["id"]
    data = body(client.post(f"{API}/checkpoints", json={"stream_id": mission_id}), 201)
    return str(data["checkpoint"]["id"])


def acked_message(client: FlaskClient) -> str:
    message_id = read_message(client)
    body(client.post(f"{API}/messages/{message_id}/ack", json={"acker_id": "r"}), 200)
    return message_id


# Each write route: prepare the state it needs, then name the request (method, path, body).
WRITES: dict[str, Callable[[FlaskClient], Write]] = {
    "register": lambda c: ("POST", "/specialists/register", {"specialist_id": "s9", "name": "N"}),
    "heartbeat-patch": lambda c: (
        "PATCH",
        f"/specialists/{register(c)['id']}/heartbeat",
        {"status": "busy"},
    ),
    "heartbeat-post": lambda c: ("POST", f"/specialists/{register(c)['id']}/heartbeat", None),
    "complete": lambda c: (
        "POST",
        f"/specialists/{register(c)['id']}/complete",
        {"reason": "success"},
    ),
    "fail": lambda c: ("POST", f"/specialists/{register(c)['id']}/fail", {"error": "boom"}),
    "deregister": lambda c: ("DELETE", f"/specialists/{register(c)['id']}", None),
    "create-mission": lambda c: ("POST", "/missions", {"title": "T", "goals": ["g"]}),
    "patch-mission": lambda c: (
        "PATCH",
        f"/missions/{mission(c)['id']}",
        {"status": "in_progress", "title": "New"},
    ),
    "create-sortie": lambda c: ("POST", "/sorties", {"description": "D", "priority": "high"}),
    "patch-sortie": lambda c: ("PATCH", f"/sorties/{in_progress(c)}", {"progress": 40}),
    "create-checkpoint": lambda c: ("POST", "/checkpoints", {"stream_id": mission(c)["id"]}),
    "restore-checkpoint": lambda c: (
        "POST",
        f"/checkpoints/{checkpoint(c)}/restore",
        {"confirm": True},
    ),
    "send": lambda c: (
        "POST",
        "/mailboxes/box/messages",
        {"message_type": "note", "content": {"x": [1, 2]}},
    ),
    "read": lambda c: ("POST", f"/messages/{message(c)}/read", {"reader_id": "r"}),
    "ack": lambda c: ("POST", f"/messages/{read_message(c)}/ack", {"acker_id": "r"}),
    "archive": lambda c: ("POST", f"/messages/{acked_message(c)}/archive", {"archived_by": "r"}),
    "requeue": lambda c: ("POST", f"/messages/{read_message(c)}/requeue", {"reason": "again"}),
    "advance": lambda c: (
        "POST",
        "/cursors/advance",
        {"consumer_id": "c", "stream_id": "s", "position": 3},
    ),
    "reset": lambda c: ("POST", "/cursors/reset", {"consumer_id": "c", "stream_id": "s"}),
    "acquire": lambda c: ("POST", "/locks/acquire", {"file": "b.py", "specialist_id": "ace"}),
    "release": lambda c: ("POST", f"/locks/{lock(c)}/release", {"specialist_id": "ace"}),
    "compact": lambda c: ("POST", "/compaction", {"stream_id": mission(c)["id"]}),
    "claim": lambda c: (
        "POST",
        "/sorties/claim",
        {"specialist_id": [register(c, "s7"), sortie(c), sortie(c)][0]["id"]},
    ),
}


def test_every_write_route_is_in_the_replay_table(app: Flask) -> None:
    """A new write route must join ``WRITES``, so its replay is tested too."""
    urls = app.url_map.bind("localhost")
    tested = set()
    for make in WRITES.values():
        with app.test_client() as fresh_client:
            method, path, _ = make(fresh_client)
        rule, _ = urls.match(f"{API}{path}", method=method, return_rule=True)
        tested.add((method, rule.rule))
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(API)
        for method in (rule.methods or set()) & {"POST", "PATCH", "DELETE"}
    }
    assert routes - tested == set()


def test_a_claim_that_finds_nothing_is_not_remembered(client: FlaskClient) -> None:
    """A 204 wrote nothing: the same key claims for real once a sortie is there."""
    register(client, "s8")
    empty = send(client, ("POST", "/sorties/claim", {"specialist_id": "s8"}), "claim-key")
    assert empty.status_code == 204
    sortie(client)
    claimed = send(client, ("POST", "/sorties/claim", {"specialist_id": "s8"}), "claim-key")
    assert body(claimed, 200)["sortie"]["assigned_to"] == "s8"
    assert "Idempotent-Replayed" not in claimed.headers


REPLAYED_HEADERS = ("ETag", "X-Fleet-Position")


def send(client: FlaskClient, write: Write, key: str | None, **headers: str) -> Any:
    method, path, json_body = write
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.open(f"{API}{path}", method=method, json=json_body, headers=headers)


@pytest.mark.parametrize("route", sorted(WRITES))
def test_a_repeat_replays_the_first_answer_and_writes_nothing(
    client: FlaskClient, route: str
) -> None:
    write = WRITES[route](client)
    first = send(client, write, "key-1")
    assert first.status_code in (200, 201), first.get_json()
    assert "Idempotent-Replayed" not in first.headers
    written = total_events(client)
    repeat = send(client, write, "key-1")
    assert repeat.status_code == first.status_code
    assert repeat.get_json() == first.get_json()
    for header in REPLAYED_HEADERS:
        assert repeat.headers.get(header) == first.headers.get(header), header
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert total_events(client) == written
    # The same request under another key runs again: a new write, or a refusal.
    fresh = send(client, write, "key-2")
    assert "Idempotent-Replayed" not in fresh.headers
    if fresh.status_code < 300 and route not in ("compact", "advance"):
        assert total_events(client) > written, route


@pytest.mark.parametrize("route", ["create-mission", "patch-sortie", "deregister"])
def test_the_same_key_for_another_request_is_a_422_that_writes_nothing(
    client: FlaskClient, route: str
) -> None:
    write = WRITES[route](client)
    body(send(client, write, "k"), 200 if write[0] != "POST" else 201)
    written = total_events(client)
    method, path, json_body = write
    others: list[Write] = [
        (method, path, {**(json_body or {}), "metadata": {"other": True}}),
        ("POST", "/sorties", {"description": "D"}),
    ]
    for other in others:
        data = problem(send(client, other, "k"), 422)
        assert data["type"] == "urn:fleet:problem:idempotency-key-reused"
        assert "'k'" in data["detail"]
    assert total_events(client) == written


def test_body_order_spacing_and_query_string_do_not_change_the_request(
    client: FlaskClient,
) -> None:
    headers = {"Idempotency-Key": "same", "Content-Type": "application/json"}
    first = client.post(
        f"{API}/missions", data='{"title": "T", "priority": "low"}', headers=headers
    )
    again = client.post(
        f"{API}/missions?trace=1", data='{ "priority":"low","title":"T" }', headers=headers
    )
    assert body(again, 201) == body(first, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    # An empty body is {}: the same request as an explicit {}.
    register(client, "s1")
    beat = client.post(f"{API}/specialists/s1/heartbeat", headers={"Idempotency-Key": "hb"})
    beat_again = client.post(
        f"{API}/specialists/s1/heartbeat", json={}, headers={"Idempotency-Key": "hb"}
    )
    assert body(beat_again, 200) == body(beat, 200)


def test_a_replay_is_the_resource_as_it_was_right_after_that_write(client: FlaskClient) -> None:
    sortie_id = in_progress(client)
    write: Write = ("PATCH", f"/sorties/{sortie_id}", {"progress": 10})
    first = body(send(client, write, "p10"), 200)
    body(client.patch(f"{API}/sorties/{sortie_id}", json={"progress": 90}), 200)
    repeat = send(client, write, "p10")
    assert body(repeat, 200) == first
    assert first["sortie"]["progress"] == 10
    assert body(client.get(f"{API}/sorties/{sortie_id}"), 200)["sortie"]["progress"] == 90


def test_a_registration_replays_its_201_after_later_registrations(client: FlaskClient) -> None:
    write: Write = ("POST", "/specialists/register", {"specialist_id": "s5", "name": "S"})
    first = send(client, write, "reg")
    register(client, "s5", name="Renamed")  # 200: known, updated
    repeat = send(client, write, "reg")
    assert (repeat.status_code, first.status_code) == (201, 201)
    assert body(repeat, 201) == body(first, 201)


@pytest.mark.parametrize(
    "key", ["a" * 256, "tab\there", "nul\x00", "bell\x07", "del\x7f", "é-not-ascii"]
)
def test_a_malformed_key_is_a_400_naming_the_header(pristine_client: FlaskClient, key: str) -> None:
    response = pristine_client.post(
        f"{API}/missions", json={"title": "T"}, headers=[("Idempotency-Key", key)]
    )
    data = problem(response, 400, "Idempotency-Key")
    assert "Idempotency-Key" in data["detail"]
    assert total_events(pristine_client) == 0


def test_the_longest_key_and_spaces_are_accepted(client: FlaskClient) -> None:
    for key in ("k" * 255, "a key with spaces ~!"):
        first = client.post(
            f"{API}/missions", json={"title": "T"}, headers={"Idempotency-Key": key}
        )
        again = client.post(
            f"{API}/missions", json={"title": "T"}, headers={"Idempotency-Key": key}
        )
        assert body(again, 201) == body(first, 201)
    assert total_events(client) == 2


def test_a_refused_write_is_not_remembered(client: FlaskClient) -> None:
    sortie_id = str(sortie(client)["id"])
    write: Write = ("PATCH", f"/sorties/{sortie_id}", {"progress": 10})
    problem(send(client, write, "retry-me"), 409)  # progress outside in_progress
    problem(send(client, ("POST", "/sorties", {}), "bad-body"), 422, "description")
    register(client, "s1")
    for change in ({"status": "assigned", "assigned_to": "s1"}, {"status": "in_progress"}):
        body(client.patch(f"{API}/sorties/{sortie_id}", json=change), 200)
    accepted = send(client, write, "retry-me")
    assert body(accepted, 200)["sortie"]["progress"] == 10
    assert "Idempotent-Replayed" not in accepted.headers
    created = send(client, ("POST", "/sorties", {"description": "now valid"}), "bad-body")
    assert body(created, 201)["sortie"]["description"] == "now valid"


def test_a_refused_lock_is_not_remembered(client: FlaskClient) -> None:
    lock(client)
    write: Write = ("POST", "/locks/acquire", {"file": "a.py", "specialist_id": "bee"})
    problem(send(client, write, "mine"), 409)
    again = send(client, write, "mine")
    problem(again, 409)  # run again (recording its lock_conflict), not replayed
    assert "Idempotent-Replayed" not in again.headers


def test_keys_are_forgotten_after_the_ttl_by_the_sweep(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory({"FLEET_IDEMPOTENCY_TTL": "3600"})
    client = app.test_client()
    fleet = get_fleet(app)
    first = body(send(client, ("POST", "/missions", {"title": "T"}), "old"), 201)
    fleet.sweep(now=datetime.now(UTC) + timedelta(seconds=1800))
    assert body(send(client, ("POST", "/missions", {"title": "T"}), "old"), 201) == first
    fleet.sweep(now=datetime.now(UTC) + timedelta(seconds=3601))
    other = send(client, ("POST", "/missions", {"title": "Other"}), "old")  # no 422: forgotten
    assert body(other, 201)["mission"]["title"] == "Other"
    assert "Idempotent-Replayed" not in other.headers


def test_an_expired_key_is_not_replayed_before_the_sweep(
    app_factory: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory({"FLEET_IDEMPOTENCY_TTL": "60"})
    client = app.test_client()
    first = body(send(client, ("POST", "/missions", {"title": "T"}), "brief"), 201)
    # A minute later (the clock moved, not the test: a real wait as long as the TTL made the
    # last replay below miss it on a busy machine).
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)
    again = body(send(client, ("POST", "/missions", {"title": "T"}), "brief"), 201)
    assert again["mission"]["id"] != first["mission"]["id"]
    replay = send(client, ("POST", "/missions", {"title": "T"}), "brief")
    assert body(replay, 201) == again  # the new write took the key over


def test_keys_are_scoped_per_token(app_factory: Callable[..., Flask]) -> None:
    alice = app_factory(FLEET_API_TOKEN="alice-token").test_client()  # noqa: S106
    bob = app_factory(FLEET_API_TOKEN="bob-token").test_client()  # noqa: S106
    write: Write = ("POST", "/missions", {"title": "T"})
    as_alice = {"Authorization": "Bearer alice-token"}
    first = body(send(alice, write, "shared", **as_alice), 201)
    replay = send(alice, write, "shared", **as_alice)
    assert body(replay, 201) == first
    bobs = send(bob, write, "shared", Authorization="Bearer bob-token")
    assert body(bobs, 201)["mission"]["id"] != first["mission"]["id"]
    assert "Idempotent-Replayed" not in bobs.headers
    problem(send(alice, write, "shared"), 401)  # no token: refused before the key is read


def assign_race(client: FlaskClient) -> tuple[Write, int]:
    register(client, "s1")
    sortie_id = str(sortie(client)["id"])
    return ("PATCH", f"/sorties/{sortie_id}", {"status": "assigned", "assigned_to": "s1"}), 200


def lock_race(client: FlaskClient) -> tuple[Write, int]:
    """A refused acquisition records lock_conflict: a racer must not, once the twin won."""
    return ("POST", "/locks/acquire", {"file": "hot.py", "specialist_id": "ace"}), 201


@pytest.mark.parametrize("prepare", [assign_race, lock_race], ids=["assign", "acquire"])
def test_sixteen_concurrent_identical_requests_record_one_write(
    app: Flask, prepare: Callable[[FlaskClient], tuple[Write, int]]
) -> None:
    """Threads of one server: one command's events, every other answer a replay or 409."""
    client = app.test_client()
    write, status = prepare(client)
    before = total_events(client)
    answers: list[Any] = []
    start = threading.Barrier(16)

    def one() -> None:
        own = app.test_client()
        start.wait()
        answers.append(send(own, write, "race"))

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert total_events(client) == before + 1
    ok = [a for a in answers if a.status_code == status]
    assert len(ok) + sum(a.status_code == 409 for a in answers) == 16, [
        (a.status_code, a.get_json()) for a in answers
    ]
    assert sum("Idempotent-Replayed" not in a.headers for a in ok) == 1
    assert len({a.get_data() for a in ok}) == 1
    for a in answers:
        if a.status_code == 409:
            assert a.get_json()["type"] == "urn:fleet:problem:idempotency-key-in-flight"
            assert a.headers["Retry-After"]


def test_the_openapi_document_declares_the_key_on_every_write(client: FlaskClient) -> None:
    spec = body(client.get(f"{API}/openapi.json"), 200)
    writes = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # the path's own parameters, not an operation
                continue
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if method not in ("post", "patch", "delete"):
                assert "Idempotency-Key" not in headers, (method, path)
                continue
            writes += 1
            assert "Idempotency-Key" in headers, (method, path)
            assert {"409", "422"} <= set(operation["responses"]), (method, path)
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    assert "Idempotent-Replayed" in response["headers"], (method, path, status)
    assert writes >= len(WRITES)
    described = next(
        p
        for p in spec["paths"]["/api/v1/missions"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    assert "idempotency-key-reused" in described["description"]
    assert "idempotency-key-in-flight" in described["description"]
