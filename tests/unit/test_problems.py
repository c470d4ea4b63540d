"""web.problems: every application error as an RFC 9457 answer, including the rare ones."""

from __future__ import annotations

import json

from flask import Flask

from application.errors import FleetError
from application.idempotency import KeyInFlight
from web.problems import INTERNAL_DETAIL, PROBLEM_JSON, fleet_error, title_for, without_locations


def answer(error: FleetError) -> tuple[int, dict[str, object], dict[str, str]]:
    with Flask(__name__).test_request_context():
        response = fleet_error(error)
    return response.status_code, json.loads(response.get_data()), dict(response.headers)


def test_a_status_without_a_name_is_titled_error() -> None:
    assert title_for(599) == "Error"
    assert title_for(418) == "I'm a Teapot"


def test_a_server_side_error_hides_its_message() -> None:
    error = FleetError("the disk said no: /var/secret/path")
    error.status = 500
    status, body, headers = answer(error)
    assert (status, body["detail"]) == (500, INTERNAL_DETAIL)
    assert "secret" not in json.dumps(body) and headers["Content-Type"] == PROBLEM_JSON


def test_a_key_in_flight_says_when_to_retry() -> None:
    status, body, headers = answer(KeyInFlight("the idempotency key 'k1' is in use"))
    assert status == 409 and headers["Retry-After"] == str(KeyInFlight.retry_after)
    assert body["type"] == "urn:fleet:problem:idempotency-key-in-flight"


def test_messages_without_locations_are_flattened_as_they_are() -> None:
    assert without_locations(["a body must be an object"]) == {
        "_schema": ["a body must be an object"]
    }
