"""The request cycle of the API: id headers, auth and body-size guard, If-Match before a route,
and the answers routes build (ETag, write headers) after it."""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, Unauthorized

from application import Fleet
from application.idempotency import KEY, digest, keyed, token_scope
from application.outcomes import Written
from web import settings

ID_HEADER = re.compile(r"[!-~]{1,128}")  # visible ASCII, no spaces
IF_MATCH = re.compile(r'"([0-9]{1,19})"')  # no version of ours has more digits
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEYED_METHODS = frozenset({"POST", "PATCH", "DELETE"})
IDEMPOTENCY_KEY = "Idempotency-Key"
ECHOED = {"X-Correlation-ID": "correlation_id", "X-Request-ID": "request_id"}

Answer = tuple[dict[str, Any], int, dict[str, str]]


def fleet() -> Fleet:
    """The Fleet of the current app."""
    fleet: Fleet = current_app.extensions["fleet"]
    return fleet


def id_header(name: str) -> str | None:
    value = request.headers.get(name)
    if value is None:
        return None
    if not ID_HEADER.fullmatch(value):
        if request.routing_exception is not None:
            return None  # no such route or method: its 404/405 is the answer, not the header
        raise BadRequest(f"{name} must be 1-128 visible ASCII characters (no spaces).")
    return value


def read_ids() -> None:
    """``before_request``: take (or make) the correlation and request ids, and the actor.

    A fresh request id comes first, so a 400 for a malformed header is logged under one too.
    """
    g.request_id = str(uuid.uuid4())
    g.correlation_id = id_header("X-Correlation-ID") or str(uuid.uuid4())
    g.request_id = id_header("X-Request-ID") or g.request_id
    g.actor = id_header("X-Fleet-Actor")


def echo_ids(response: Response) -> Response:
    """``after_request``: every answer names its correlation and request ids."""
    for header, key in ECHOED.items():
        if key in g:
            response.headers[header] = g.get(key)
    return response


def init_app(app: Flask) -> None:
    app.before_request(read_ids)
    app.after_request(echo_ids)


def guard() -> None:
    """``before_request`` of every API blueprint: the token, the body size, the key."""
    check_token()
    check_size()
    read_idempotency_key()


def read_idempotency_key() -> None:
    """Take a write's ``Idempotency-Key`` and name the request it stands for.

    The fingerprint is the method, the path without its query string and the parsed
    JSON body (key order and spacing do not matter; an empty body is ``{}``); the scope
    is the caller's token when auth is on.
    """
    value = request.headers.get(IDEMPOTENCY_KEY)
    if value is None or request.method not in KEYED_METHODS:
        return
    if not KEY.fullmatch(value):
        error = BadRequest(f"{IDEMPOTENCY_KEY} must be 1-255 printable ASCII characters.")
        error.data = {  # type: ignore[attr-defined]  # read by web.problems.http_exception
            "messages": {
                "headers": {
                    IDEMPOTENCY_KEY: [
                        "must be 1-255 printable ASCII characters (no control characters)"
                    ]
                }
            }
        }
        raise error
    raw = request.get_data(cache=True)
    body: Any = request.get_json(silent=True) if raw.strip() else {}
    if body is None:  # not JSON: the parser refuses it; the bytes name it meanwhile
        body = raw.decode("latin-1")
    token = presented_token() if settings.token(current_app) is not None else None
    g.idempotency = (
        value,
        digest(["http", request.method, request.path, body]),
        token_scope(token),
    )


def check_size() -> None:
    """Read the body here, within the limit: over it is a 413, unreadable is a 400.

    A streamed (chunked) body has no length to check up front, and Werkzeug stops reading
    it at the limit without a word (the parser would get it cut short): a byte left after
    the limit means the body was larger. A body the server cannot de-chunk is the client's
    error, not the server's exception (gunicorn raises its own, which is no ``OSError``).
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    too_large = RequestEntityTooLarge(
        f"The request body is larger than the limit of {limit} bytes."
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        size = len(request.get_data(cache=True))  # the parser reads this cached copy
        streamed = request.content_length is None
        if streamed and size >= limit and request.environ["wsgi.input"].read(1):
            raise too_large
    except HTTPException:
        raise
    except Exception as exc:  # each WSGI server raises its own parse errors
        raise BadRequest("The request body could not be read (bad chunked encoding?).") from exc


def check_token() -> None:
    expected = settings.token(current_app)
    if expected is None:
        return
    if request.method in SAFE_METHODS and not settings.flag(current_app.config["FLEET_AUTH_READS"]):
        return
    given = presented_token()
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized(
            "This request needs the header 'Authorization: Bearer <token>'.",
            www_authenticate=WWWAuthenticate("bearer", {"realm": "fleet"}),
        )


def presented_token() -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def if_match() -> int | None:
    """The expected version from ``If-Match: "<version>"``; None when absent or ``*``."""
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    match = IF_MATCH.fullmatch(value.strip())
    if match is None:
        raise BadRequest(
            f'If-Match must be one strong ETag from this API, like "3", or *; got {value[:40]!r}.'
        )
    return int(match.group(1))


@contextmanager
def command() -> Iterator[None]:
    """Run service commands as this request: its correlation id, request id, actor and
    idempotency key (the first command of the request takes it)."""
    with fleet().context(
        correlation_id=g.correlation_id,
        actor=g.get("actor"),
        request_id=g.request_id,
        source="http",
    ):
        if "idempotency" not in g:
            yield
            return
        with keyed(*g.idempotency) as claim:
            yield
        if not claim.taken:  # a write route whose command ignores keys: a bug to fix
            raise RuntimeError(f"{request.endpoint} ran no command that honours {IDEMPOTENCY_KEY}")


def listed(
    key: str, result: tuple[list[dict[str, Any]], int], args: dict[str, Any]
) -> dict[str, Any]:
    """A list answer: ``{key: items, total, limit, offset}``."""
    items, total = result
    return {key: items, "total": total, "limit": args["limit"], "offset": args["offset"]}


def etag(version: int) -> str:
    return f'"{version}"'


def found(body: dict[str, Any], version: int) -> Answer:
    """A single-resource read: the body with its strong ETag."""
    return body, 200, {"ETag": etag(version)}


def written(body: dict[str, Any], outcome: Written, status: int = 200) -> Answer:
    """A write's answer: X-Fleet-Position of its last event, the ETag of the resource it
    wrote (when that has a version), and whether it is an idempotent replay."""
    headers = {"X-Fleet-Position": str(outcome.position)}
    version = outcome.get("version")
    if isinstance(version, int):
        headers["ETag"] = etag(version)
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return body, status, headers
