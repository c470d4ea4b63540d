"""``GET /metrics``: request latency and counts by route, events appended, projection lag.

One process here (no ``PROMETHEUS_MULTIPROC_DIR``): each app has its own registry, so every
test starts from zero. The multiprocess mode is tested with a real gunicorn in tests/e2e.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.support import API, body, mission, position, register
from web import get_fleet

Labels = dict[str, str]
TOKEN = "metrics-token"  # noqa: S105 - a test token


def scrape(client: FlaskClient, **headers: str) -> dict[str, list[tuple[Labels, float]]]:
    """Every sample of ``/metrics`` by sample name (``fleet_http_requests_total``, ...)."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    samples: dict[str, list[tuple[Labels, float]]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict[str, list[tuple[Labels, float]]], name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels`` (0 if there is none)."""
    found = [v for have, v in samples.get(name, []) if labels.items() <= have.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


def total(samples: dict[str, list[tuple[Labels, float]]], name: str) -> float:
    return sum(v for _, v in samples.get(name, []))


def test_requests_are_timed_by_method_route_template_and_status(client: FlaskClient) -> None:
    created = mission(client)
    body(client.get(f"{API}/missions/{created['id']}"), 200)
    body(client.get(f"{API}/missions/00000000-0000-4000-8000-000000000000"), 404)
    body(client.get("/nothing-here"), 404)
    body(client.open(f"{API}/missions", method="BREW"), 405)

    samples = scrape(client)
    one = "/api/v1/missions/<mission_id>"  # the rule, not the raw path: bounded cardinality
    assert value(samples, "fleet_http_requests_total", method="GET", route=one, status="200") == 1
    assert value(samples, "fleet_http_requests_total", method="GET", route=one, status="404") == 1
    assert value(samples, "fleet_http_requests_total", route="unmatched", status="404") == 1
    assert value(samples, "fleet_http_requests_total", method="OTHER", status="405") == 1
    assert not [
        labels
        for labels, _ in samples["fleet_http_requests_total"]
        if created["id"] in labels["route"]
    ]
    post = {"method": "POST", "route": "/api/v1/missions", "status": "201"}
    assert value(samples, "fleet_http_request_duration_seconds_count", **post) == 1
    assert value(samples, "fleet_http_request_duration_seconds_sum", **post) > 0
    buckets = [
        (labels["le"], v)
        for labels, v in samples["fleet_http_request_duration_seconds_bucket"]
        if post.items() <= labels.items()
    ]
    assert buckets[-1] == ("+Inf", 1)
    assert value(samples, "fleet_http_requests_in_progress") == 1  # the scrape itself


def test_the_scrape_is_text_or_openmetrics_as_asked(client: FlaskClient) -> None:
    assert client.get("/metrics").content_type.startswith("text/plain")
    negotiated = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert negotiated.content_type.startswith("application/openmetrics-text")
    assert negotiated.get_data(as_text=True).rstrip().endswith("# EOF")


def test_events_appended_count_every_event_each_write_records(client: FlaskClient) -> None:
    before = scrape(client)
    register(client, "s1")
    created = mission(client)
    sortie = body(
        client.post(f"{API}/sorties", json={"description": "d", "mission_id": created["id"]}), 201
    )["sortie"]
    checkpoint = body(client.post(f"{API}/checkpoints", json={"stream_id": created["id"]}), 201)
    restored = client.post(
        f"{API}/checkpoints/{checkpoint['checkpoint']['id']}/restore", json={"confirm": True}
    )
    body(restored, 200)
    after = scrape(client)

    appended = total(after, "fleet_events_appended_total") - total(
        before, "fleet_events_appended_total"
    )
    assert appended == position(restored)  # a fresh store: every event in the log, once
    assert value(after, "fleet_events_appended_total", event_type="mission_created") == 1
    assert value(after, "fleet_events_appended_total", event_type="sortie_created") == 1
    # the restore wrote one event per captured stream (mission, sortie) in one request
    assert value(after, "fleet_events_appended_total", event_type="fleet_recovered") == 2
    assert sortie["mission_id"] == created["id"]
    assert value(after, "fleet_log_head_position") == position(restored)


def test_a_refused_write_appends_nothing(client: FlaskClient) -> None:
    created = mission(client)
    before = total(scrape(client), "fleet_events_appended_total")
    stale = client.patch(
        f"{API}/missions/{created['id']}", json={"title": "x"}, headers={"If-Match": '"9"'}
    )
    body(stale, 412)
    assert total(scrape(client), "fleet_events_appended_total") == before


@pytest.mark.parametrize("projector", ["embedded", "external"])
def test_projection_lag_is_read_from_the_store(
    backend: dict[str, str],
    app_factory: Callable[..., Flask],
    projector: str,
) -> None:
    app = app_factory({**backend, "FLEET_PROJECTOR": projector})
    client = app.test_client()
    register(client, "s1")
    written = position(client.post(f"{API}/missions", json={"title": "m"}))

    samples = scrape(client)
    projections = {labels["projection"] for labels, _ in samples["fleet_projection_lag_events"]}
    assert projections >= {"specialists", "work", "checkpoints", "messages", "locks"}
    expected = 0 if projector == "embedded" else written  # nothing runs the projector
    for name in projections:
        assert value(samples, "fleet_projection_lag_events", projection=name) == expected
        assert value(samples, "fleet_projection_position", projection=name) == written - expected

    get_fleet(app).projector.catch_up()  # what `fleet projector` does, from any process
    caught_up = scrape(client)
    assert total(caught_up, "fleet_projection_lag_events") == 0
    assert value(caught_up, "fleet_store_up") == 1


def test_a_store_that_cannot_be_read_still_answers_the_scrape(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> dict[str, Any]:
        raise OSError("database is gone")

    monkeypatch.setattr(get_fleet(app), "health", down)
    samples = scrape(app.test_client())
    assert value(samples, "fleet_store_up") == 0
    assert "fleet_projection_lag_events" not in samples
    assert value(samples, "fleet_http_requests_in_progress") == 1  # the rest is still served


def test_metrics_are_open_unless_reads_need_the_token(app_factory: Callable[..., Flask]) -> None:
    writes_only = app_factory(FLEET_API_TOKEN=TOKEN).test_client()
    assert writes_only.get("/metrics").status_code == 200
    reads_too = app_factory(FLEET_API_TOKEN=TOKEN, FLEET_AUTH_READS=True).test_client()
    assert reads_too.get("/metrics").status_code == 401
    assert (
        reads_too.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    )


def test_metrics_are_not_part_of_the_api_document(client: FlaskClient) -> None:
    paths = body(client.get(f"{API}/openapi.json"), 200)["paths"]
    assert not [path for path in paths if "metrics" in path]


def test_a_multiprocess_directory_set_too_late_is_refused(
    app_factory: Callable[..., Flask], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # prometheus_client was imported (single-process mode) before the variable was set.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="set after prometheus_client was imported"):
        app_factory()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match="not a directory"):
        app_factory()
