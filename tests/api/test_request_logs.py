"""Request logs: one JSON access line per request, and the request's ids on every line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application import logs as app_logs
from tests.api.support import API, body, problem
from web import get_fleet
from web.logs import RequestFields


@pytest.fixture
def lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Logs in the server's JSON format (with the request fields) for this test only."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = app_logs.configure({}, stream=stream, filters=[RequestFields()], force=True)
    assert handler is not None
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def access(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in found if line["logger"] == "fleet.access"]


def test_each_request_has_one_access_line_with_its_ids(
    client: FlaskClient, lines: Callable[[], list[dict[str, Any]]]
) -> None:
    ids = {"X-Request-ID": "req-1", "X-Correlation-ID": "corr-1"}
    created = client.post(f"{API}/missions", json={"title": "m"}, headers=ids)
    mission_id = body(created, 201)["mission"]["id"]
    body(client.get(f"{API}/missions/{mission_id}"), 200)

    first, second = access(lines())
    assert first["request_id"] == "req-1" and first["correlation_id"] == "corr-1"
    assert first["method"] == "POST" and first["path"] == f"{API}/missions"
    assert first["route"] == f"{API}/missions"
    assert first["status"] == 201 and first["level"] == "INFO"
    assert first["duration_ms"] > 0
    assert first["message"].startswith("POST /api/v1/missions 201 ")
    # Without headers the ids are made, logged and echoed alike.
    assert second["path"] == f"{API}/missions/{mission_id}"
    assert second["route"] == f"{API}/missions/<mission_id>"
    assert second["request_id"] not in (None, "req-1")
    assert second["correlation_id"] not in (None, "corr-1")


def test_the_logged_ids_are_the_echoed_ones(
    client: FlaskClient, lines: Callable[[], list[dict[str, Any]]]
) -> None:
    response = client.get("/health")
    (line,) = access(lines())
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["correlation_id"] == response.headers["X-Correlation-ID"]


def test_a_malformed_request_id_is_a_400_still_logged_under_an_id(
    client: FlaskClient, lines: Callable[[], list[dict[str, Any]]]
) -> None:
    response = client.get(f"{API}/missions", headers={"X-Request-ID": "has spaces"})
    problem(response, 400)
    (line,) = access(lines())
    assert line["status"] == 400
    assert line["request_id"] == response.headers["X-Request-ID"] != "has spaces"


def test_a_500_logs_its_traceback_in_json_with_the_request_ids(
    app_factory: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    lines: Callable[[], list[dict[str, Any]]],
) -> None:
    app = app_factory(TESTING=False)

    def explode(**kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(get_fleet(app), "list_missions", explode)
    response = app.test_client().get(f"{API}/missions", headers={"X-Correlation-ID": "c-500"})
    problem(response, 500)
    found = lines()
    (error,) = [line for line in found if "exc_info" in line]
    assert "RuntimeError: secret internals" in error["exc_info"]
    assert error["level"] == "ERROR"
    assert error["correlation_id"] == "c-500"
    assert error["request_id"] == response.headers["X-Request-ID"]
    (line,) = access(found)
    assert line["status"] == 500 and line["level"] == "ERROR"
    assert line["request_id"] == error["request_id"]
