"""Per-request instrumentation: time each request, then count it and log its access line.

``init_app`` must run before any other ``before_request`` hook is registered, so the clock
starts even when a later hook (a malformed id header, a missing token) ends the request.
Flask runs ``after_request`` for every answer, a 500 from an unexpected exception included.
"""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, g, request

from web import logs
from web.metrics import get_metrics


def start() -> None:
    g.started = time.perf_counter()
    get_metrics(current_app).in_progress.inc()
    g.in_progress = True


def finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    get_metrics(current_app).observe(request.method, logs.route(), response.status_code, seconds)
    logs.log_access(response, seconds * 1000)
    return response


def done(_error: BaseException | None) -> None:
    """``teardown_request``: runs whatever happened, so the in-progress gauge never leaks."""
    if g.pop("in_progress", False):
        get_metrics(current_app).in_progress.dec()


def init_app(app: Flask) -> None:
    app.before_request(start)
    app.after_request(finish)
    app.teardown_request(done)
