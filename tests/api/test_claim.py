"""POST /sorties/claim over HTTP: 200 with the claimed sortie, 204, and its problems."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.api.support import API, body, etag, problem, register, sortie


def test_claim_answers_the_assigned_sortie_then_204(client: FlaskClient) -> None:
    register(client, "ace", capabilities=["python"])
    first = sortie(client, "first", priority="high", required_capabilities=["python"])
    assert first["required_capabilities"] == ["python"]
    sortie(client, "needs go", priority="critical", required_capabilities=["go"])
    response = client.post(f"{API}/sorties/claim", json={"specialist_id": "ace"})
    claimed = body(response, 200)["sortie"]
    assert (claimed["id"], claimed["status"], claimed["assigned_to"]) == (
        first["id"],
        "assigned",
        "ace",
    )
    assert etag(response) == claimed["version"] == 2
    assert int(response.headers["X-Fleet-Position"]) > 0
    again = client.post(f"{API}/sorties/claim", json={"specialist_id": "ace"})
    assert again.status_code == 204 and again.data == b""
    go = client.post(f"{API}/sorties/claim", json={"specialist_id": "ace", "capabilities": ["go"]})
    assert body(go, 200)["sortie"]["description"] == "needs go"


def test_claim_is_not_a_sortie_id(client: FlaskClient) -> None:
    """``/sorties/claim`` is the claim route alone: it takes POST, and says so to GET and PATCH."""
    for response in (
        client.get(f"{API}/sorties/claim"),
        client.patch(f"{API}/sorties/claim", json={"title": "x"}),
    ):
        problem(response, 405)
        assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "specialist_id"),
        ({"specialist_id": "nobody"}, "specialist_id"),
        (
            {"specialist_id": "ace", "mission_id": "00000000-0000-0000-0000-000000000000"},
            "mission_id",
        ),
        ({"specialist_id": "ace", "capabilities": "python"}, "capabilities"),
        ({"specialist_id": "ace", "surprise": 1}, "surprise"),
    ],
)
def test_bad_claims_are_422_naming_the_field(
    client: FlaskClient, payload: dict[str, object], field: str
) -> None:
    register(client, "ace")
    sortie(client)
    problem(client.post(f"{API}/sorties/claim", json=payload), 422, field)
    assert body(client.get(f"{API}/sorties"), 200)["sorties"][0]["status"] == "pending"


def test_a_claimer_that_is_not_live_is_409(client: FlaskClient) -> None:
    register(client, "ace")
    sortie(client)
    body(client.delete(f"{API}/specialists/ace"), 200)
    detail = problem(client.post(f"{API}/sorties/claim", json={"specialist_id": "ace"}), 409)
    assert "inactive" in detail["detail"]
