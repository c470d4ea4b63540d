"""``?wait=`` over HTTP: on mailbox messages, on /events and on the claim."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import API, body, problem, register, shared_app, untouched_client

WAITING = [
    ("GET", "/mailboxes/inbox/messages"),
    ("GET", "/events"),
    ("POST", "/sorties/claim"),
]


@pytest.fixture(scope="module")
def ace_app(seeded_module_backend: dict[str, str]) -> Iterator[Flask]:
    """Specialist ace registered, shared by the module's tests of refused waits."""
    with shared_app(seeded_module_backend) as app:
        register(app.test_client(), "ace")
        yield app


@pytest.fixture
def ace_client(ace_app: Flask) -> Iterator[FlaskClient]:
    yield from untouched_client(ace_app)


@pytest.mark.parametrize(("method", "path"), WAITING)
@pytest.mark.parametrize("bad", ["-1", "30.01", "nan", "inf", "soon"])
def test_wait_outside_zero_to_thirty_is_422_naming_it(
    ace_client: FlaskClient, method: str, path: str, bad: str
) -> None:
    response = ace_client.open(
        f"{API}{path}?wait={bad}",
        method=method,
        json={"specialist_id": "ace"} if method == "POST" else None,
    )
    problem(response, 422, "wait")


def test_waits_answer_when_something_arrives(app: Flask, client: FlaskClient) -> None:
    register(client, "ace")

    def later() -> None:
        time.sleep(0.3)
        writer = app.test_client()
        body(
            writer.post(
                f"{API}/mailboxes/inbox/messages", json={"message_type": "t", "content": {}}
            ),
            201,
        )
        body(writer.post(f"{API}/sorties", json={"description": "work"}), 201)

    thread = threading.Thread(target=later)
    thread.start()
    started = time.monotonic()
    messages = body(client.get(f"{API}/mailboxes/inbox/messages?wait=10"), 200)
    assert messages["total"] == 1 and time.monotonic() - started < 3
    claimed = client.post(f"{API}/sorties/claim?wait=10", json={"specialist_id": "ace"})
    assert body(claimed, 200)["sortie"]["description"] == "work"
    thread.join()
    events = body(client.get(f"{API}/events?type=sortie_created&wait=0.5"), 200)
    assert events["total"] == 1  # wait without after: after=0


def test_an_expired_wait_answers_as_without_one(client: FlaskClient) -> None:
    register(client, "ace")
    assert (
        client.post(f"{API}/sorties/claim?wait=0.2", json={"specialist_id": "ace"}).status_code
        == 204
    )
    page = body(client.get(f"{API}/events?after=1000&wait=0.2"), 200)
    assert page["events"] == [] and page["total"] == 0
    assert body(client.get(f"{API}/mailboxes/x/messages?wait=0.2"), 200)["messages"] == []
