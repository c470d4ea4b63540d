"""The OpenAPI document: served, complete, and faithful to what the API answers."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import API, body, mission, register, sortie
from web import get_fleet

CONTRACT = {
    ("post", "/specialists/register"),
    ("get", "/specialists/{specialist_id}"),
    ("get", "/specialists"),
    ("patch", "/specialists/{specialist_id}/heartbeat"),
    ("post", "/specialists/{specialist_id}/heartbeat"),
    ("post", "/specialists/{specialist_id}/complete"),
    ("post", "/specialists/{specialist_id}/fail"),
    ("delete", "/specialists/{specialist_id}"),
    ("post", "/missions"),
    ("get", "/missions/{mission_id}"),
    ("get", "/missions"),
    ("patch", "/missions/{mission_id}"),
    ("post", "/sorties"),
    ("get", "/sorties/{sortie_id}"),
    ("get", "/sorties"),
    ("patch", "/sorties/{sortie_id}"),
    ("post", "/checkpoints"),
    ("get", "/checkpoints/{checkpoint_id}"),
    ("get", "/checkpoints"),
    ("post", "/checkpoints/{checkpoint_id}/restore"),
    ("post", "/mailboxes/{mailbox_id}/messages"),
    ("get", "/mailboxes/{mailbox_id}/messages"),
    ("get", "/messages/{message_id}"),
    ("post", "/messages/{message_id}/read"),
    ("post", "/messages/{message_id}/ack"),
    ("post", "/messages/{message_id}/archive"),
    ("post", "/messages/{message_id}/requeue"),
    ("post", "/cursors/advance"),
    ("post", "/cursors/reset"),
    ("get", "/cursors/{cursor_id}"),
    ("post", "/locks/acquire"),
    ("post", "/locks/{lock_id}/release"),
    ("get", "/locks"),
    ("get", "/locks/{lock_id}"),
    ("get", "/events"),
    ("get", "/events/{position}"),
    ("get", "/streams/{stream_id}/events"),
    ("post", "/compaction"),
}
CONDITIONAL = {
    ("patch", "/specialists/{specialist_id}/heartbeat"),
    ("post", "/specialists/{specialist_id}/heartbeat"),
    ("post", "/specialists/{specialist_id}/complete"),
    ("post", "/specialists/{specialist_id}/fail"),
    ("delete", "/specialists/{specialist_id}"),
    ("patch", "/missions/{mission_id}"),
    ("patch", "/sorties/{sortie_id}"),
    ("post", "/mailboxes/{mailbox_id}/messages"),
    ("post", "/messages/{message_id}/read"),
    ("post", "/messages/{message_id}/ack"),
    ("post", "/messages/{message_id}/archive"),
    ("post", "/messages/{message_id}/requeue"),
    ("post", "/cursors/advance"),
    ("post", "/cursors/reset"),
    ("post", "/locks/{lock_id}/release"),
}


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get(f"{API}/openapi.json")
    assert response.mimetype == "application/json"
    return body(response, 200)  # type: ignore[no-any-return]


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path.removeprefix(API)): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def test_every_contract_operation_is_documented(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.0.3"
    assert set(operations(spec)) == CONTRACT


def test_every_operation_documents_its_answers(spec: dict[str, Any]) -> None:
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for response in spec["components"]["responses"].values():
        assert response["content"] == {"application/problem+json": {"schema": problem_ref}}
    for (method, path), operation in operations(spec).items():
        statuses = set(operation["responses"])
        assert {"400", "401"} <= statuses, (method, path)
        assert operation["summary"], (method, path)
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "X-Correlation-ID" in headers
        success = operation["responses"].get("201") or operation["responses"]["200"]
        if method != "get":
            assert {"413", "422"} & statuses or method == "delete", (method, path)
            assert "X-Fleet-Position" in success["headers"], (method, path)
        if (method, path) in CONDITIONAL:
            assert "If-Match" in headers and "412" in statuses, (method, path)
        elif method != "get":
            assert "If-Match" not in headers, (method, path)
        if method == "get" and path.endswith("}") and "events" not in path:  # one resource
            assert "ETag" in success["headers"], (method, path)


def test_request_schemas_refuse_unknown_fields(spec: dict[str, Any]) -> None:
    for (method, path), operation in operations(spec).items():
        if "requestBody" in operation:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
            assert schema["additionalProperties"] is False, (method, path)


def test_no_ui_that_needs_a_cdn(client: FlaskClient) -> None:
    for path in ("swagger-ui", "redoc", "rapidoc"):
        assert client.get(f"{API}/{path}").status_code == 404


def test_answers_carry_every_member_the_services_give(app: Flask, client: FlaskClient) -> None:
    """The response schemas dump the service dicts: none of their members may be lost."""
    fleet = get_fleet(app)
    register(client, "s1")
    m = mission(client)
    s = sortie(client, mission_id=m["id"])
    c = body(client.post(f"{API}/checkpoints", json={"stream_id": m["id"]}), 201)["checkpoint"]
    pairs = [
        (fleet.get_specialist("s1"), client.get(f"{API}/specialists/s1"), "specialist"),
        (fleet.get_mission(m["id"]), client.get(f"{API}/missions/{m['id']}"), "mission"),
        (fleet.get_sortie(s["id"]), client.get(f"{API}/sorties/{s['id']}"), "sortie"),
        (fleet.get_checkpoint(c["id"]), client.get(f"{API}/checkpoints/{c['id']}"), "checkpoint"),
        (fleet.get_event(1), client.get(f"{API}/events/1"), "event"),
    ]
    for given, response, key in pairs:
        assert body(response, 200)[key] == given, key
