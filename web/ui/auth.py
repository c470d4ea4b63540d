"""Console login and CSRF: a signed session cookie holds the operator and a CSRF token.

With ``FLEET_API_TOKEN`` set, actions need a login with that token (reads too when
``FLEET_AUTH_READS`` is on). The session is signed with ``FLEET_SECRET_KEY``; without
one the key is derived from the API token, so every worker of a server signs alike
and changing the token ends every session. With neither, a random key per process
serves (one worker only: each worker would refuse the others' cookies).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import Flask, current_app, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import BadRequest

from web import settings

DEFAULT_OPERATOR = "operator"


class ConsoleSessions(SecureCookieSessionInterface):
    """Sessions are the console's alone: a request outside it gets Flask's null session.

    Flask opens the session cookie of every request, and opening it builds the signing
    serializer (which serialises a probe value to learn its kind): 2 % of an API
    command's CPU, for a cookie the API never reads.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def open_session(self, app: Flask, request: Any) -> SecureCookieSession | None:
        if not request.path.startswith(self.prefix):
            return self.make_null_session(app)
        return super().open_session(app, request)


def secret_key(app: Flask) -> str:
    explicit = app.config.get("FLEET_SECRET_KEY")
    if explicit not in (None, ""):
        return str(explicit)
    token = settings.token(app)
    if token is not None:
        return hashlib.sha256(b"fleet-console-session\x00" + token.encode()).hexdigest()
    return secrets.token_hex(32)


def _token_mark(token: str) -> str:
    """What the session keeps of the token: a digest, so the cookie never carries it."""
    return hmac.new(current_app.secret_key.encode(), token.encode(), "sha256").hexdigest()  # type: ignore[union-attr]


def login_required() -> bool:
    return settings.token(current_app) is not None


def logged_in() -> bool:
    token = settings.token(current_app)
    if token is None:
        return True
    mark = session.get("token_mark")
    return isinstance(mark, str) and hmac.compare_digest(mark, _token_mark(token))


def may_read() -> bool:
    if not settings.flag(current_app.config["FLEET_AUTH_READS"]):
        return True
    return logged_in()


def log_in(operator: str, token: str) -> bool:
    expected = settings.token(current_app)
    if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
        return False
    session.clear()
    session["operator"] = operator or DEFAULT_OPERATOR
    if expected is not None:
        session["token_mark"] = _token_mark(expected)
    session["csrf"] = secrets.token_urlsafe(32)
    return True


def log_out() -> None:
    session.clear()


def operator() -> str:
    name = session.get("operator")
    return name if isinstance(name, str) and name else DEFAULT_OPERATOR


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Every console POST carries the session's CSRF token in its form."""
    given = request.form.get("csrf_token", "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        raise BadRequest("The form's CSRF token is missing or stale: reload the page and retry.")


def template_globals() -> dict[str, Any]:
    return {
        "csrf_token": csrf_token,
        "operator": operator,
        "logged_in": logged_in,
        "login_required": login_required,
    }
