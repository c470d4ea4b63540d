"""``GET /metrics``: Prometheus metrics of the HTTP layer, the writes and the store.

Request and write metrics are counted in the process that serves them. Under gunicorn with
several workers, ``PROMETHEUS_MULTIPROC_DIR`` names a directory where every worker keeps its
values (prometheus-client's multiprocess mode); a scrape, answered by any one worker, sums them
all. Store figures (projection lag, head position, active locks) are read from the database at
scrape time, so they are right whichever process runs the projector.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from application import Fleet
from web import request_cycle

log = logging.getLogger(__name__)

blueprint = Blueprint("metrics", __name__)

# Any other method is counted as OTHER, so a client cannot mint label values.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_LABELS = ("method", "route", "status")
# Seconds; most API calls take a few milliseconds, a min_position wait up to its timeout.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class StoreCollector:
    """Figures read from the store at scrape time (custom collector)."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet

    def collect(self) -> Iterator[Metric]:
        try:
            report = self.fleet.health()
        except Exception:  # a scrape must answer even when the database does not
            log.exception("metrics: the store could not be read")
            report = {"status": "unavailable"}
        up = report["status"] == "ok"
        yield GaugeMetricFamily(
            "fleet_store_up", "1 when the store answered this scrape, else 0.", value=int(up)
        )
        if not up:
            return
        yield GaugeMetricFamily(
            "fleet_log_head_position",
            "Global position of the newest event in the log.",
            value=report["position"],
        )
        lag = GaugeMetricFamily(
            "fleet_projection_lag_events",
            "Events recorded but not yet applied to each projection (head minus its position).",
            labels=["projection"],
        )
        position = GaugeMetricFamily(
            "fleet_projection_position",
            "Global position each projection has applied up to.",
            labels=["projection"],
        )
        for name, row in report["projections"].items():
            lag.add_metric([name], row["lag"])
            position.add_metric([name], row["position"])
        yield lag
        yield position
        yield GaugeMetricFamily(
            "fleet_locks_active",
            "Locks recorded active (one past its expiry counts until a sweep times it out).",
            value=report["locks"]["active"],
        )


class Metrics:
    """One app's instruments, in a registry of its own (tests build many apps per process)."""

    def __init__(self, fleet: Fleet):
        self.directory = multiprocess_dir()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fleet_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            REQUEST_LABELS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "fleet_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status code.",
            REQUEST_LABELS,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "fleet_http_requests_in_progress",
            "HTTP requests being answered now (summed over live workers).",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.events = Counter(
            "fleet_events_appended",
            "Events appended to the log by this service, by event type.",
            ["event_type"],
            registry=self.registry,
        )
        self.store = StoreCollector(fleet)
        self.registry.register(self.store)
        if self.directory is None:  # process metrics make no sense summed over workers
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        fleet.on_events_recorded(self.count_events)

    def count_events(self, event_types: Sequence[str]) -> None:
        for event_type in event_types:
            self.events.labels(event_type).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method if method in METHODS else "OTHER", route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The body and its content type (text or OpenMetrics, as ``Accept`` asks).

        In multiprocess mode every worker's values are read from the directory and summed.
        """
        encode, content_type = choose_encoder(accept or "")
        if self.directory is None:
            return encode(self.registry), content_type
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.directory)
        registry.register(self.store)
        return encode(registry), content_type


def check_mode() -> None:
    """Refuse a half-configured multiprocess mode rather than serve per-worker numbers."""
    directory = multiprocess_dir()
    if directory is None:
        return
    if not os.path.isdir(directory):
        raise RuntimeError(f"PROMETHEUS_MULTIPROC_DIR={directory} is not a directory")
    if values.ValueClass is values.MutexValue:
        raise RuntimeError(
            "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported: set it "
            "before the server starts (gunicorn.conf.py does, in the master, before any import)"
        )


def init_app(app: Flask, fleet: Fleet) -> None:
    app.extensions["fleet_metrics"] = Metrics(fleet)
    app.register_blueprint(blueprint)


def get_metrics(app: Any) -> Metrics:
    metrics: Metrics = app.extensions["fleet_metrics"]
    return metrics


@blueprint.before_request
def guard() -> None:
    """Open like the API's reads: the bearer token is needed only with FLEET_AUTH_READS."""
    request_cycle.check_token()


@blueprint.get("/metrics")
def metrics() -> Response:
    body, content_type = get_metrics(current_app).exposition(request.headers.get("Accept"))
    return Response(body, content_type=content_type)
