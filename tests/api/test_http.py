"""What every endpoint shares: problem+json errors, body rules, sizes, id headers."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import API, body, events, mission, problem, register
from web import get_fleet


class TestProblems:
    def test_unknown_route_is_a_404_problem(self, pristine_client: FlaskClient) -> None:
        problem(pristine_client.get(f"{API}/nothing-here"), 404)
        problem(pristine_client.get("/nothing-here"), 404)

    def test_wrong_method_is_a_405_problem_with_allow(self, pristine_client: FlaskClient) -> None:
        response = pristine_client.put(f"{API}/missions")
        problem(response, 405)
        assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}

    def test_an_unexpected_error_is_a_500_problem_without_details(
        self,
        app_factory: Callable[..., Flask],
        caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        app = app_factory(TESTING=False)

        def explode(**kwargs: object) -> None:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(get_fleet(app), "list_missions", explode)
        with caplog.at_level(logging.ERROR):
            response = app.test_client().get(f"{API}/missions")
        data = problem(response, 500)
        assert "secret" not in response.get_data(as_text=True)
        assert "Traceback" not in response.get_data(as_text=True)
        assert "logged" in data["detail"]
        assert "secret internals" in caplog.text


class TestBodies:
    @pytest.mark.parametrize(
        ("raw", "detail"),
        [
            (b"{not json", "not valid JSON"),
            (b'{"title": NaN}', "not valid JSON"),
            (b'{"title": "\\ud800"}', "not valid JSON"),
            (b"\xff\xfe", "not valid JSON"),
            (b"[" * 100_000 + b"]" * 100_000, "deeper than 64 levels"),
            (b'["a list"]', "JSON object"),
            (b'"a string"', "JSON object"),
            (b"42", "JSON object"),
            (b"null", "JSON object"),
        ],
    )
    def test_not_a_json_object_is_400(self, client: FlaskClient, raw: bytes, detail: str) -> None:
        response = client.post(f"{API}/missions", data=raw, content_type="application/json")
        assert detail in problem(response, 400)["detail"]

    def test_any_content_type_is_read_as_json(self, client: FlaskClient) -> None:
        """``curl -d '{...}'`` sends form encoding; the body is JSON all the same."""
        response = client.post(
            f"{API}/missions",
            data='{"title": "curl"}',
            content_type="application/x-www-form-urlencoded",
        )
        assert body(response, 201)["mission"]["title"] == "curl"

    def test_an_empty_body_counts_as_an_empty_object(self, client: FlaskClient) -> None:
        problem(client.post(f"{API}/missions", data=b" "), 422, "title")

    def test_validation_errors_are_flat_and_name_each_field(self, client: FlaskClient) -> None:
        response = client.post(
            f"{API}/specialists/register",
            json={
                "specialist_id": "ok",
                "name": "n",
                "capabilities": ["", "x"],
                "metadata": {"k": 1},
                "extra": True,
            },
        )
        assert problem(response, 422)["errors"] == {
            "capabilities.0": ["Length must be between 1 and 200."],
            "extra": ["Unknown field."],
        }

    def test_nul_characters_are_refused(self, client: FlaskClient) -> None:
        response = client.post(
            f"{API}/missions", json={"title": "a\x00b", "metadata": {"k": ["\x00"]}}
        )
        problem(response, 422, "title", "metadata.k.0")
        problem(client.get(f"{API}/missions", query_string={"status": "\x00"}), 422, "status")
        body(client.get(f"{API}/missions", query_string={"ignored": "\x00"}), 200)

    def test_a_body_over_the_limit_is_413(self, app_factory: Callable[..., Flask]) -> None:
        client = app_factory(FLEET_MAX_BODY_BYTES=200).test_client()
        response = client.post(f"{API}/missions", json={"title": "t", "description": "x" * 300})
        assert "200 bytes" in problem(response, 413)["detail"]
        assert body(client.get(f"{API}/missions"), 200)["total"] == 0
        body(client.post(f"{API}/missions", json={"title": "small"}), 201)

    def test_the_default_limit_is_one_mebibyte(self, client: FlaskClient) -> None:
        big = {"title": "t", "metadata": {"blob": "x" * (1024 * 1024)}}
        problem(client.post(f"{API}/missions", json=big), 413)

    def test_the_limit_comes_from_the_environment(
        self, app_factory: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FLEET_MAX_BODY_BYTES", "50")
        client = app_factory().test_client()
        problem(client.post(f"{API}/missions", json={"title": "x" * 60}), 413)


class TestIdHeaders:
    def test_a_given_correlation_id_reaches_the_events_and_comes_back(
        self, client: FlaskClient
    ) -> None:
        response = client.post(
            f"{API}/missions",
            json={"title": "t"},
            headers={
                "X-Correlation-ID": "flow-42",
                "X-Request-ID": "req-7",
                "X-Fleet-Actor": "bob",
            },
        )
        body(response, 201)
        assert response.headers["X-Correlation-ID"] == "flow-42"
        assert response.headers["X-Request-ID"] == "req-7"
        event = events(client, correlation_id="flow-42")[0]
        assert event["metadata"] == {"actor": "bob", "request_id": "req-7", "source": "http"}

    def test_without_one_a_fresh_id_is_made_and_used(self, client: FlaskClient) -> None:
        response = client.post(f"{API}/missions", json={"title": "t"})
        made = response.headers["X-Correlation-ID"]
        assert uuid.UUID(made)
        assert events(client)[-1]["correlation_id"] == made
        assert events(client)[-1]["metadata"]["request_id"] == response.headers["X-Request-ID"]
        other = client.post(f"{API}/missions", json={"title": "u"}).headers["X-Correlation-ID"]
        assert other != made

    def test_reads_and_errors_echo_it_too(self, client: FlaskClient) -> None:
        for response in (
            client.get(f"{API}/missions", headers={"X-Correlation-ID": "c1"}),
            client.get(f"{API}/missions/nope", headers={"X-Correlation-ID": "c1"}),
            client.post(f"{API}/missions", json={}, headers={"X-Correlation-ID": "c1"}),
        ):
            assert response.headers["X-Correlation-ID"] == "c1"

    def test_every_event_of_one_request_shares_it(self, client: FlaskClient) -> None:
        register(client, "s1", spawned_by="boss")
        client.post(
            f"{API}/specialists/register",
            headers={"X-Correlation-ID": "again"},
            json={"specialist_id": "s2", "name": "S", "spawned_by": "boss"},
        )
        assert [e["event_type"] for e in events(client, correlation_id="again")] == [
            "specialist_registered",
            "specialist_spawned",
        ]

    @pytest.mark.parametrize("header", ["X-Correlation-ID", "X-Request-ID", "X-Fleet-Actor"])
    @pytest.mark.parametrize("value", ["has space", "x" * 129, "é"])
    def test_a_malformed_id_header_is_400(
        self, pristine_client: FlaskClient, header: str, value: str
    ) -> None:
        response = pristine_client.post(
            f"{API}/missions", json={"title": "t"}, headers={header: value}
        )
        assert header in problem(response, 400)["detail"]
        assert body(pristine_client.get(f"{API}/missions"), 200)["total"] == 0


def test_health_stays_at_the_root(client: FlaskClient, backend: dict[str, str]) -> None:
    data = body(client.get("/health"), 200)
    assert data["status"] == "ok"
    expected = "postgres" if backend["PERSISTENCE_MODULE"] == "eventsourcing.postgres" else "sqlite"
    assert data["database"]["backend"] == expected


def test_json_answers_keep_the_documented_field_order(client: FlaskClient) -> None:
    mission(client)
    raw = client.get(f"{API}/missions").get_data(as_text=True)
    assert list(json.loads(raw)) == ["missions", "total", "limit", "offset"]


def test_an_answer_its_schema_would_reshape_fails_the_tests(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers pass through unchanged (``contract_shaped``); under TESTING each is checked
    against the documented schema's dump, so an undocumented key cannot slip out."""
    client = app.test_client()
    body(client.post(f"{API}/specialists/register", json={"specialist_id": "x", "name": "X"}), 201)
    fleet = get_fleet(app)
    real = fleet.list_specialists

    def leaky(*args: Any, **kwargs: Any) -> Any:
        items, total = real(*args, **kwargs)
        return [{**item, "internal": "not in the contract"} for item in items], total

    monkeypatch.setattr(fleet, "list_specialists", leaky)
    with pytest.raises(AssertionError, match="SpecialistPage reshapes this answer"):
        client.get(f"{API}/specialists")


def test_every_route_allows_exactly_its_own_methods(app: Flask, client: FlaskClient) -> None:
    """``OPTIONS`` (and a 405's ``Allow``) name the methods of the route the URL means, and
    no other: ``/specialists/register`` is no ``/specialists/{specialist_id}``."""
    checked = 0
    methods_of: dict[str, set[str]] = {}  # a path may be several rules, one per method
    for rule in app.url_map.iter_rules():
        methods_of.setdefault(rule.rule, {"OPTIONS"}).update(rule.methods or ())
    for path, own in methods_of.items():
        url = re.sub(r"<int[^>]*>", "1", path)
        url = re.sub(r"<[^>]+>", "x1", url)
        response = client.open(url, method="OPTIONS")
        allowed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert allowed == own, (path, allowed)
        for method in {"GET", "POST", "PATCH", "DELETE", "PUT"} - own:
            refused = client.open(url, method=method)
            assert refused.status_code == 405, (path, method)
            assert {m.strip() for m in refused.headers["Allow"].split(",")} == own
        checked += 1
    assert checked >= 30


@pytest.mark.parametrize(
    ("url", "reserved"),
    [
        ("specialists", "register"),
        ("locks", "acquire"),
        ("cursors", "advance"),
        ("cursors", "reset"),
    ],
)
def test_a_route_word_is_never_an_id(client: FlaskClient, url: str, reserved: str) -> None:
    problem(client.get(f"{API}/{url}/{reserved}"), 405)
    problem(client.delete(f"{API}/{url}/{reserved}"), 405)


def test_a_specialist_cannot_be_called_register(client: FlaskClient) -> None:
    payload = {"specialist_id": "register", "name": "R", "capabilities": "x"}
    data = problem(client.post(f"{API}/specialists/register", json=payload), 422, "specialist_id")
    assert set(data["errors"]) == {"specialist_id", "capabilities"}
    assert body(client.get(f"{API}/specialists"), 200)["total"] == 0
    register(client, "registered")  # only the word itself is reserved
