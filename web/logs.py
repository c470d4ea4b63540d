"""Request fields on every log line, and the one access line per request.

The format and level are ``application.logs``' (``FLEET_LOG_FORMAT``, ``FLEET_LOG_LEVEL``);
this module adds what only the web layer knows: the request and correlation ids (read by
``web.request_cycle``), the method, path and route.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Response, g, has_request_context, request

from application import logs

access_log = logging.getLogger("fleet.access")


class RequestFields(logging.Filter):
    """Adds ``request_id`` and ``correlation_id`` to records logged while serving a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            for key in ("request_id", "correlation_id"):
                if not hasattr(record, key) and key in g:
                    setattr(record, key, g.get(key))
        return True


def configure(env: Mapping[str, str] | None = None) -> None:
    """The server's logging (``wsgi.py``): stderr in the configured format, request fields."""
    logs.configure(env, filters=[RequestFields()])


def route() -> str:
    """The matched URL rule (``/api/v1/missions/<uuid:mission_id>``), not the raw path."""
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def log_access(response: Response, duration_ms: float) -> None:
    """One line per answered request; a 5xx is logged at ERROR, a 4xx at INFO too."""
    status = response.status_code
    access_log.log(
        logging.ERROR if status >= 500 else logging.INFO,
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        status,
        duration_ms,
        extra={
            "request_id": g.get("request_id"),
            "correlation_id": g.get("correlation_id"),
            "method": request.method,
            "path": request.path,
            "route": route(),
            "status": status,
            "duration_ms": round(duration_ms, 3),
            "remote_addr": request.remote_addr,
        },
    )
