"""Helpers of the hostile-input and auth suites: routes found in the app, the whole store's
state (to prove a refused request changed nothing), problem checks, and a real gunicorn.

Routes are discovered from the app's ``url_map`` (and its OpenAPI document), never listed
by hand, so a route added later is covered without editing these tests.
"""

from __future__ import annotations

import re
import socket
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter, Rule

from tests import servers
from tests.conftest import pg_conninfo
from tests.servers import clean_environ

API = "/api/v1"
PROBLEM_JSON = "application/problem+json"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The reads that stay open with FLEET_AUTH_READS (docs/http-api.md, "Authentication").
OPEN_READS = frozenset({"/health", f"{API}/openapi.json"})
# The operator console (/ui/) answers people with pages, redirects and a session login, not
# problem+json and bearer tokens: tests/ui/test_console.py sweeps its routes the same way.
CONSOLE = "ui."

PARAMETER = re.compile(r"<(?:[^<>:]+:)?([A-Za-z_][A-Za-z0-9_]*)>")  # <name>, <int(max=9):name>


# ---- routes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    rule: Rule

    @property
    def label(self) -> str:
        rule = PARAMETER.sub(r"<\1>", self.rule.rule)  # without converters: <specialist_id>
        return f"{self.method} {rule}"


def routes(app: Flask, methods: frozenset[str]) -> list[Route]:
    """Every (method, rule) of the app whose method is in ``methods``, in a stable order."""
    found = [
        Route(method, rule)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) & methods)
        if not rule.endpoint.startswith(CONSOLE)
    ]
    return sorted(found, key=lambda r: (r.rule.rule, r.method))


def write_routes(app: Flask) -> list[Route]:
    return routes(app, WRITE_METHODS)


def read_routes(app: Flask) -> list[Route]:
    return routes(app, frozenset({"GET"}))


def path_for(app: Flask, route: Route, values: Mapping[str, Any] | None = None) -> str:
    """The URL of ``route`` with each path parameter filled in, verbatim (not escaped).

    A parameter takes ``values[name]`` when given; otherwise a value its converter accepts
    (``1`` for integers, ``no-such-id`` for strings), so a new rule needs nothing here.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if values is not None and name in values:
            return str(values[name])
        if isinstance(route.rule._converters[name], IntegerConverter):
            return "1"
        return "no-such-id"

    return PARAMETER.sub(fill, route.rule.rule)


def operation(app: Flask, route: Route) -> dict[str, Any]:
    """The OpenAPI operation of ``route`` (``{}`` for routes outside the document)."""
    document = app.test_client().get(f"{API}/openapi.json").get_json()
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", route.rule.rule)  # without converters
    result: dict[str, Any] = document["paths"].get(path, {}).get(route.method.lower(), {})
    return result


def seed(client: FlaskClient, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One resource of each kind; the path parameters that name them, by parameter name."""
    headers = dict(headers or {})

    def post(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = client.post(f"{API}{path}", json=payload, headers=headers)
        assert response.status_code in (200, 201), (path, response.get_json())
        data: dict[str, Any] = response.get_json()
        return data

    post("/specialists/register", {"specialist_id": "s1", "name": "S"})
    mission = post("/missions", {"title": "M"})["mission"]
    sortie = post("/sorties", {"description": "d", "mission_id": mission["id"]})["sortie"]
    checkpoint = post("/checkpoints", {"stream_id": mission["id"]})["checkpoint"]
    message = post("/mailboxes/mb/messages", {"message_type": "t", "content": {}})["message"]
    lock = post("/locks/acquire", {"file": "src/a.py", "specialist_id": "s1"})["lock"]
    cursor = post("/cursors/advance", {"consumer_id": "c", "stream_id": "st", "position": 1})
    return {
        "specialist_id": "s1",
        "mission_id": mission["id"],
        "sortie_id": sortie["id"],
        "checkpoint_id": checkpoint["id"],
        "mailbox_id": "mb",
        "message_id": message["id"],
        "lock_id": lock["id"],
        "cursor_id": cursor["cursor"]["id"],
        "stream_id": mission["stream_id"],
        "position": 1,
    }


# ---- answers ------------------------------------------------------------------------------


def problem_failure(status: int, content_type: str, data: Any) -> str | None:
    """Why an answer breaks the error contract, or None: never a 5xx; a 4xx is problem+json
    with type/title/status/detail, and a 422 names each field in a flat ``errors``."""
    if status >= 500:
        return f"server error {status}: {data!r:.300}"
    if status < 400:
        return None
    if content_type.split(";")[0].strip() != PROBLEM_JSON:
        return f"{status} answered as {content_type!r}, not {PROBLEM_JSON}"
    if not isinstance(data, dict) or not {"type", "title", "status", "detail"} <= set(data):
        return f"{status} problem lacks members: {data!r:.300}"
    if data["status"] != status or not str(data["type"]).startswith("urn:fleet:problem:"):
        return f"{status} problem has status {data['status']!r}, type {data['type']!r}"
    if status == 422:
        errors = data.get("errors")
        if not errors or not all(
            isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)
            for messages in errors.values()
        ):
            return f"422 without flat field errors: {data!r:.300}"
    return None


# ---- the store's whole state --------------------------------------------------------------


def store_state(env: Mapping[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the store (log, index, projections, tracking), sorted.

    Equal states before and after a request prove the request wrote nothing anywhere.
    """
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        import psycopg

        with psycopg.connect(**pg_conninfo(), autocommit=True) as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (env["POSTGRES_SCHEMA"],),
                )
            ]
            return {
                name: sorted(
                    (tuple(row) for row in conn.execute(_select_all(env["POSTGRES_SCHEMA"], name))),
                    key=repr,
                )
                for name in names
            }
    conn = sqlite3.connect(f"file:{env['SQLITE_DBNAME']}?mode=ro", uri=True, timeout=15)
    try:
        names = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not row[0].startswith("sqlite_")
        ]
        return {
            name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)  # noqa: S608 - names from sqlite_master
            for name in names
        }
    finally:
        conn.close()


def _select_all(schema: str, table: str) -> Any:
    from psycopg.sql import SQL, Identifier

    return SQL("SELECT * FROM {}").format(Identifier(schema, table))


def state_diff(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> list[str]:
    """The tables whose rows differ (with row counts), for a readable failure."""
    return [
        f"{name}: {len(before.get(name, []))} -> {len(after.get(name, []))} rows"
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


# ---- a real gunicorn ----------------------------------------------------------------------


@contextmanager
def gunicorn(workdir: Path, **settings: str) -> Iterator[str]:
    """``gunicorn wsgi:app`` on a loopback port with a SQLite store in ``workdir``; yields
    its base URL and stops it afterwards. ``settings`` are extra environment variables."""
    env = clean_environ(
        PERSISTENCE_MODULE="eventsourcing.sqlite",
        SQLITE_DBNAME=str(workdir / "fleet.sqlite3"),
        FLEET_SWEEP_INTERVAL="0",
        **settings,
    )
    with servers.gunicorn(env, workdir / "gunicorn.log", "--threads", "4") as (base, _):
        yield base


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def raw_request(base: str, request: bytes, timeout: float = 15) -> RawAnswer:
    """Send bytes exactly as given (no client library fixes them up) and read the answer.

    The request should say ``Connection: close``: the answer is read until the server
    closes the connection.
    """
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawAnswer(int(status_line.split()[1]), headers, body)


def chunked(body: bytes, size: int = 65536) -> bytes:
    """``body`` in the chunked transfer coding."""
    out = b""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"
