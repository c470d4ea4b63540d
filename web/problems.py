"""The one place that turns errors into RFC 9457 ``application/problem+json`` responses.

Service errors (``application.errors``), webargs' validation errors and werkzeug's
HTTP errors (404, 405, 413, 400, ...) all end here. An unexpected exception reaches
``http_exception`` as Flask's ``InternalServerError`` after Flask has logged it; its
answer is a plain 500 problem that never carries the exception text or a trace.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Response
from werkzeug.exceptions import HTTPException

from application.errors import (
    Conflict,
    FleetError,
    NotFound,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from application.event_schemas.base import flatten_errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
CORE_MEMBERS = frozenset({"type", "title", "status", "detail", "errors"})

# One title per status, so a 422 from webargs and one from a service read the same.
TITLES: dict[int, str] = {
    cls.status: cls.title
    for cls in (FleetError, NotFound, ValidationError, Conflict, PreconditionFailed, Unavailable)
}
INTERNAL_DETAIL = "An unexpected error occurred. It has been logged; please report it."
RETRY_AFTER_SECONDS = "1"


def title_for(status: int) -> str:
    try:
        return TITLES.get(status) or HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def type_for(status: int) -> str:
    """A stable URN per kind of problem, e.g. ``urn:fleet:problem:validation-failed``."""
    return "urn:fleet:problem:" + re.sub(r"[^a-z0-9]+", "-", title_for(status).lower()).strip("-")


def problem(
    status: int,
    detail: str,
    *,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    kind: tuple[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response; ``extra`` adds extension members (never core ones).

    ``kind`` (type, title) names a problem more precisely than its status does.
    """
    problem_type, title = kind or (type_for(status), title_for(status))
    body: dict[str, Any] = {
        "type": problem_type,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = {name: list(messages) for name, messages in errors.items()}
    body.update({k: v for k, v in extra.items() if k not in CORE_MEMBERS})
    # default=str: an extension member may carry a datetime (e.g. a lock's expires_at).
    response = Response(json.dumps(body, default=str), status=status, mimetype=PROBLEM_JSON)
    response.headers.extend(dict(headers or {}))
    return response


def fleet_error(error: FleetError) -> Response:
    """Map an ``application.errors`` exception by its own ``status``."""
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    errors = None
    if isinstance(error, ValidationError):
        errors = error.errors
    elif isinstance(error, Conflict):
        extra = dict(error.extra)
        if getattr(error, "retry_after", None):  # e.g. an idempotency key in flight
            headers["Retry-After"] = str(error.retry_after)  # type: ignore[attr-defined]
    elif isinstance(error, PreconditionFailed):
        extra = {"current_version": error.actual}
    elif isinstance(error, Unavailable):
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    if error.status >= 500 and not isinstance(error, Unavailable):
        log.error("service error %s: %s", type(error).__name__, error, exc_info=error)
        return problem(error.status, INTERNAL_DETAIL)
    problem_type = getattr(error, "problem_type", None)
    kind = (problem_type, error.title) if problem_type else None
    return problem(error.status, str(error), errors=errors, headers=headers, kind=kind, **extra)


def store_unavailable(error: Exception) -> Response:
    """The store was busy or unreachable for longer than its timeouts: 503, try again.

    Logged as a warning without a trace: it is a condition of the deployment (a long
    maintenance transaction, a lost connection), not a bug.
    """
    log.warning("store unavailable: %s: %s", type(error).__name__, error)
    return problem(
        503,
        "The event store is busy or unreachable; please retry.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def http_exception(error: HTTPException) -> Response:
    """Map werkzeug/webargs HTTP errors; ``data["messages"]`` is webargs' validation report."""
    status = error.code or 500
    if status >= 500 and status != 503:
        return problem(status, INTERNAL_DETAIL)
    data = getattr(error, "data", None) or {}
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    if "messages" in data:
        errors = without_locations(data["messages"])
        # The services' own wording, so every 422 reads alike.
        return problem(status, str(ValidationError(errors)), errors=errors, headers=headers)
    return problem(status, error.description or title_for(status), headers=headers)


def without_locations(messages: Any) -> dict[str, list[str]]:
    """webargs nests messages by location (``{"json": {"name": [...]}}``): flatten to fields."""
    if not isinstance(messages, Mapping):
        return flatten_errors(messages)
    flat: dict[str, list[str]] = {}
    for nested in messages.values():
        for name, texts in flatten_errors(nested).items():
            flat.setdefault(name, []).extend(texts)
    return flat
