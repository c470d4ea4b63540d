"""Hostile input against every route: never a 5xx, always problem+json, nothing written.

Every write route (found in the app's ``url_map``) gets a catalogue of bodies no route may
accept: not JSON, invalid UTF-8, not an object, NaN/Infinity literals, nesting 100k deep,
numbers no reader can hold (1e400, 5000 digits), NUL bytes, unknown fields (SQL and path
traversal as names), oversized. Every path parameter and query parameter gets injection,
traversal, NUL, invalid UTF-8 and overlong values; every write, malformed If-Match and id
headers. Each answer must be a 4xx problem+json
(422s name their fields), and the whole store, log and projections alike, must be
unchanged afterwards, on a SQLite file and on PostgreSQL.

The Werkzeug test client never streams a body, so chunked bodies, bad chunking and raw
bytes in the request line go through a real gunicorn at the end of this module.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.support import make_app
from tests.reliability.hostile_support import (
    API,
    Route,
    chunked,
    gunicorn,
    operation,
    path_for,
    problem_failure,
    raw_request,
    read_routes,
    seed,
    state_diff,
    store_state,
    write_routes,
)
from web import get_fleet
from web.parser import MAX_DEPTH

MIB = 1024 * 1024
SQL_INJECTION = "'; DROP TABLE stored_events; --"
TRAVERSAL = "../../../etc/passwd"


def nested(levels: int, leaf: bytes = b"1") -> bytes:
    """``levels`` objects, one inside the other (the outermost counts as one)."""
    return b'{"k":' * levels + leaf + b"}" * levels


# (name, body, status, field the 422 must name); no route may accept any of them.
REFUSED: list[tuple[str, bytes, int, str | None]] = [
    ("broken JSON", b'{"title": ', 400, None),
    ("invalid UTF-8", b'{"k": "\xff\xfe"}', 400, None),
    ("UTF-8-encoded surrogate", b'{"k": "\xed\xa0\x80"}', 400, None),
    ("escaped lone surrogate", b'{"k": "\\ud800"}', 400, None),
    ("byte order mark", b'\xef\xbb\xbf{"k": 1}', 400, None),
    ("NaN literal", b'{"k": NaN}', 400, None),
    ("Infinity literal", b'{"k": Infinity}', 400, None),
    ("-Infinity literal", b'{"k": -Infinity}', 400, None),
    ("array", b"[]", 400, None),
    ("string", b'"text"', 400, None),
    ("number", b"42", 400, None),
    ("null", b"null", 400, None),
    ("true", b"true", 400, None),
    ("100k nested arrays", b"[" * 100_000 + b"]" * 100_000, 400, None),
    ("100k unclosed objects", b'{"k":' * 100_000, 400, None),
    ("one level too deep", nested(MAX_DEPTH + 1), 400, None),
    ("500 levels deep", nested(500), 400, None),
    ("unknown field", b'{"hostile_unknown": 1}', 422, "hostile_unknown"),
    ("SQL injection as a field", json.dumps({SQL_INJECTION: 1}).encode(), 422, SQL_INJECTION),
    ("traversal as a field", json.dumps({TRAVERSAL: TRAVERSAL}).encode(), 422, TRAVERSAL),
    ("1e400", b'{"hostile_unknown": 1e400}', 422, "hostile_unknown"),
    ("-1e400 in a list", b'{"hostile_unknown": [0, -1e400]}', 422, "hostile_unknown.1"),
    ("5000-digit integer", b'{"hostile_unknown": 1' + b"0" * 5000 + b"}", 422, "hostile_unknown"),
    ("NUL in a value", b'{"hostile_unknown": "a\\u0000b"}', 422, "hostile_unknown"),
    ("NUL in a key", b'{"k\\u0000": 1}', 422, "k\x00"),
    ("long string", b'{"hostile_unknown": "' + b"x" * 300_000 + b'"}', 422, "hostile_unknown"),
    ("over the limit", b'{"hostile_unknown": "' + b"x" * MIB + b'"}', 413, None),
]
# The body is read as JSON whatever its type (``curl -d`` sends form encoding).
CONTENT_TYPES = [
    "application/json",
    None,
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
]
# Path parameter values: injection, traversal (encoded slashes too), NUL, bad UTF-8, ...
HOSTILE_IDS = [
    SQL_INJECTION,
    "1 OR 1=1",
    TRAVERSAL,
    "..",
    "%2e%2e%2f%2e%2e%2fetc",
    "\x00",
    "%00",
    "%ff%fe",
    "%ed%a0%80",
    "\u202e\U0001f600",
    "x" * 5000,
    "fleet",
    "-1",
    "0",
    "9" * 40,
]
# Query values: the same, plus numbers out of every range.
HOSTILE_QUERY = [
    *HOSTILE_IDS,
    "",
    "-1",
    "1e400",
    "NaN",
    "inf",
    "1.5",
    "9" * 5000,
    "2020-01-01T00:00:00",
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00-14:00",
    "," * 500,
]


Hostile = tuple[Flask, FlaskClient, dict[str, str], dict[str, Any]]


def seeded(env: dict[str, str]) -> Iterator[Hostile]:
    """A seeded app on ``env``; unexpected errors answer 500 rather than raise."""
    app = make_app(env)
    app.config["TESTING"] = False
    client = app.test_client()
    ids = seed(client)
    try:
        yield app, client, env, ids
    finally:
        get_fleet(app).close()


@pytest.fixture
def hostile(backend: dict[str, str]) -> Iterator[Hostile]:
    """On each backend: PostgreSQL refuses NUL in text, where SQLite would not tell."""
    yield from seeded(backend)


@pytest.fixture
def hostile_sqlite(sqlite_env: dict[str, str]) -> Iterator[Hostile]:
    """For what only the web layer decides (the backend changes nothing there)."""
    yield from seeded(sqlite_env)


def answer(response: Any) -> tuple[int, str, Any]:
    return response.status_code, response.content_type or "", response.get_json(silent=True)


def body_routes(app: Flask) -> tuple[list[Route], list[Route]]:
    """Write routes that take a JSON body, and those that take none (their body is ignored)."""
    with_body, without = [], []
    for route in write_routes(app):
        (with_body if "requestBody" in operation(app, route) else without).append(route)
    return with_body, without


def test_no_write_route_accepts_a_hostile_body(
    hostile: Hostile,
) -> None:
    app, client, env, ids = hostile
    with_body, without = body_routes(app)
    assert len(with_body) >= 20, [r.label for r in with_body]
    before = store_state(env)
    failures: list[str] = []
    for route in with_body:
        url = path_for(app, route, ids)
        for name, raw, status, field in REFUSED:
            # Every content type for the small bodies; the big ones once.
            types = CONTENT_TYPES if len(raw) < 1000 else CONTENT_TYPES[:1]
            for content_type in types:
                response = client.open(
                    url, method=route.method, data=raw, content_type=content_type
                )
                got = answer(response)
                why = problem_failure(*got)
                if got[0] != status:
                    why = f"expected {status}, got {got[0]}: {got[2]!r:.200}"
                elif field is not None and field not in got[2].get("errors", {}):
                    why = f"422 does not name {field!r}: {got[2]['errors']!r:.200}"
                if why:
                    failures.append(f"{route.label} [{name}, {content_type}]: {why}")
    # A route without a body ignores it (but for its size): with an unknown id it must 404.
    for route in without:
        url = path_for(app, route)
        for name, raw, status, _ in REFUSED:
            expected = 413 if status == 413 else 404
            got = answer(client.open(url, method=route.method, data=raw))
            why = problem_failure(*got) or (None if got[0] == expected else f"got {got[0]}")
            if why:
                failures.append(f"{route.label} [{name}, no body]: {why}")
    assert not failures, "\n".join(failures[:50])
    assert not state_diff(before, store_state(env))


def test_hostile_path_and_query_parameters(
    hostile: Hostile,
) -> None:
    """Every path parameter of every route, and every documented query parameter of every
    read, with hostile values: refused or not found, never an error of the server."""
    app, client, env, ids = hostile
    before = store_state(env)
    failures: list[str] = []
    for route in write_routes(app) + read_routes(app):
        for name in route.rule.arguments:
            for value in HOSTILE_IDS:
                # Verbatim, so that %-escapes and ".." reach the app as they are.
                url = path_for(app, route, {**ids, name: value})
                got = answer(client.open(url, method=route.method, data=b"{}"))
                why = problem_failure(*got)
                if why is None and got[0] < 400 and route.method != "GET":
                    why = f"a write with {name}={value!r:.40} succeeded: {got[2]!r:.200}"
                if why:
                    failures.append(f"{route.label} [{name}={value!r:.40}]: {why}")
    for route in read_routes(app):
        url = path_for(app, route, ids)
        parameters = operation(app, route).get("parameters", [])
        for name in (p["name"] for p in parameters if p["in"] == "query"):
            for value in HOSTILE_QUERY:
                got = answer(client.get(url, query_string={name: value}))
                why = problem_failure(*got)
                if why:
                    failures.append(f"{route.label} [?{name}={value!r:.40}]: {why}")
    assert not failures, "\n".join(failures[:50])
    assert not state_diff(before, store_state(env))


# Each must be refused (400; 412 for a well-formed version that cannot match; 422 when the
# body ``{}`` is refused before If-Match is read).
REFUSED_HEADERS: list[dict[str, str]] = [
    {"X-Correlation-ID": "x" * 10_000},
    {"X-Request-ID": SQL_INJECTION},
    {"X-Fleet-Actor": "\u00ff\u00fe"},
    {"X-Correlation-ID": ""},
]
REFUSED_IF_MATCH = [
    '"' + "9" * 5000 + '"',
    '"99999999999999999999"',
    '"9223372036854775807"',
    'W/"1"',
    '"1", "2"',
    '"-1"',
    "\u00ff",
    '"' + SQL_INJECTION + '"',
]
# Not the app's business when no token is set, or read as JSON anyway: only no 5xx.
IGNORED_HEADERS: list[dict[str, str]] = [
    {"Authorization": "Bearer " + "x" * 10_000},
    {"Authorization": "\u00ff"},
    {"Content-Type": "application/json; charset=\u00ff"},
]


def test_hostile_headers_on_every_write(hostile: Hostile) -> None:
    """Malformed id headers, and malformed If-Match where a route takes it, are refused and
    write nothing; a 5000-digit If-Match was a 500 (Python will not read such an int)."""
    app, client, env, ids = hostile
    before = store_state(env)
    failures = []

    def send(route: Route, headers: dict[str, str], expected: set[int] | None) -> None:
        url = path_for(app, route, ids)
        got = answer(client.open(url, method=route.method, data=b"{}", headers=headers))
        why = problem_failure(*got)
        if why is None and expected is not None and got[0] not in expected:
            why = f"expected {sorted(expected)}, got {got[0]}: {got[2]!r:.200}"
        if why:
            failures.append(f"{route.label} {str(headers)[:60]}: {why}")

    conditional = 0
    for route in write_routes(app):
        for headers in REFUSED_HEADERS:
            send(route, headers, {400})
        parameters = operation(app, route).get("parameters", [])
        if any(p["name"] == "If-Match" for p in parameters):
            conditional += 1
            for value in REFUSED_IF_MATCH:
                send(route, {"If-Match": value}, {400, 412, 422})  # 422: the body ``{}``
    assert conditional >= 15
    assert not failures, "\n".join(failures[:50])
    assert not state_diff(before, store_state(env))
    for route in write_routes(app):
        for headers in IGNORED_HEADERS:
            send(route, headers, None)
    assert not failures, "\n".join(failures[:50])


def test_injection_and_traversal_strings_are_stored_verbatim(hostile: Hostile) -> None:
    """Free-form text may hold anything but NUL: SQL and paths are data, kept as given,
    and found again by the filters that take them. A lock path may not climb above its
    root."""
    _, client, env, _ = hostile
    mission = client.post(
        f"{API}/missions",
        json={"title": SQL_INJECTION, "description": TRAVERSAL, "metadata": {SQL_INJECTION: 1}},
        headers={"X-Correlation-ID": "'--"},
    ).get_json()["mission"]
    assert (mission["title"], mission["description"]) == (SQL_INJECTION, TRAVERSAL)
    assert mission["metadata"] == {SQL_INJECTION: 1}
    climbing = {"file": TRAVERSAL, "specialist_id": "s1"}
    got = answer(client.post(f"{API}/locks/acquire", json=climbing))
    assert got[0] == 422 and "climbs above its root" in got[2]["errors"]["file"][0], got
    lock = client.post(
        f"{API}/locks/acquire", json={"file": "a/../b", "specialist_id": SQL_INJECTION}
    ).get_json()["lock"]
    assert (lock["file"], lock["normalized_path"], lock["reserved_by"]) == (
        "a/../b",
        "b",
        SQL_INJECTION,
    )
    query = {"specialist_id": SQL_INJECTION, "min_position": 1}
    listed = client.get(f"{API}/locks", query_string=query).get_json()["locks"]
    assert [x["id"] for x in listed] == [lock["id"]]
    found = client.get(f"{API}/events", query_string={"correlation_id": "'--"}).get_json()
    assert [e["data"]["title"] for e in found["events"]] == [SQL_INJECTION]
    tables = set(store_state(env))
    assert {"missions_projection", "locks_projection"} <= tables
    assert tables & {"stored_events", "fleet_events"}  # the log of SQLite or PostgreSQL


def test_limits_out_of_range_are_422_naming_limit(hostile_sqlite: Hostile) -> None:
    app, client, _, ids = hostile_sqlite
    lists = [r for r in read_routes(app) if "limit" in str(operation(app, r).get("parameters"))]
    assert len(lists) >= 7, [r.label for r in lists]
    for route in lists:
        url = path_for(app, route, ids)
        for name, value in [("limit", v) for v in ("0", "-1", "1001", "abc", "1e400", "")] + [
            ("offset", "-1"),
            ("offset", "9" * 40),
        ]:
            got = answer(client.get(url, query_string={name: value}))
            assert problem_failure(*got) is None, (route.label, got)
            assert got[0] == 422 and name in got[2]["errors"], (route.label, name, value, got)


def test_empty_bodies_never_fail_the_server(hostile_sqlite: Hostile) -> None:
    """An empty body counts as ``{}``: some writes take that (a requeue), most refuse it;
    a refusal writes nothing."""
    app, client, env, ids = hostile_sqlite
    state = store_state(env)
    for route in write_routes(app):
        for raw in (b"", b"  \r\n\t "):
            got = answer(client.open(path_for(app, route, ids), method=route.method, data=raw))
            assert problem_failure(*got) is None, (route.label, got)
            now = store_state(env)
            if got[0] >= 400:
                assert not state_diff(state, now), (route.label, got)
            state = now


# ---- regressions of the bugs this suite found -----------------------------------------------


@pytest.fixture
def app_factory(sqlite_env: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Apps on this test's SQLite file, with extra config; unexpected errors answer 500."""
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        apps.append(make_app(sqlite_env, TESTING=False, **config))
        return apps[-1]

    yield factory
    for app in apps:
        get_fleet(app).close()


@pytest.fixture
def sqlite_client(app_factory: Callable[..., Flask]) -> FlaskClient:
    return app_factory().test_client()


def deep_metadata(levels: int) -> bytes:
    """A mission whose body nests ``levels`` deep in all (body, metadata, ...)."""
    return b'{"title": "deep", "metadata": ' + nested(levels - 1) + b"}"


def test_nesting_is_limited_and_the_limit_itself_is_accepted(sqlite_client: FlaskClient) -> None:
    """Was a 500: metadata nested ~400 deep passed the JSON decoder, then overflowed the
    stack of the recursive NUL check in the services."""
    created = sqlite_client.post(f"{API}/missions", data=deep_metadata(MAX_DEPTH))
    assert created.status_code == 201, created.get_json()
    mission_id = created.get_json()["mission"]["id"]
    for levels in (MAX_DEPTH + 1, 400, 900):
        response = sqlite_client.post(f"{API}/missions", data=deep_metadata(levels))
        got = answer(response)
        assert got[0] == 400 and "deeper than" in got[2]["detail"], got
        patch = sqlite_client.patch(f"{API}/missions/{mission_id}", data=deep_metadata(levels))
        assert answer(patch)[0] == 400
    assert sqlite_client.get(f"{API}/missions").get_json()["total"] == 1


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (b"1e400", "metadata.x"),
        (b"-1e400", "metadata.x"),
        (b'[1, {"y": 1E999}]', "metadata.x.1.y"),
        (b"1" + b"0" * 5000, "metadata.x"),
    ],
)
def test_numbers_no_reader_can_hold_are_422(
    sqlite_client: FlaskClient, value: bytes, field: str
) -> None:
    """Was stored: 1e400 decoded to infinity, went into the log, and every later answer that
    held it (the mission, lists, the event log) carried ``Infinity``, which is not JSON."""
    response = sqlite_client.post(
        f"{API}/missions", data=b'{"title": "t", "metadata": {"x": %s}}' % value
    )
    got = answer(response)
    assert got[0] == 422 and field in got[2]["errors"], got
    assert "out of range" in got[2]["errors"][field][0]
    assert sqlite_client.get(f"{API}/events").get_json()["total"] == 0


def test_big_but_representable_numbers_round_trip(sqlite_client: FlaskClient) -> None:
    big = 10**1000
    raw = b'{"title": "t", "metadata": {"big": %d, "max": 1.7976931348623157e308}}' % big
    created = sqlite_client.post(f"{API}/missions", data=raw)
    assert created.status_code == 201, created.get_json()
    text = sqlite_client.get(f"{API}/events").get_data(as_text=True)
    strict = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in answer"))
    data = strict["events"][0]["data"]["metadata"]
    assert data == {"big": big, "max": 1.7976931348623157e308}


def streamed(client: FlaskClient, body: bytes | io.RawIOBase, **kwargs: Any) -> Any:
    """POST a body with no Content-Length, as a server that de-chunks it hands it on."""
    stream = io.BytesIO(body) if isinstance(body, bytes) else body
    return client.post(
        f"{API}/missions",
        input_stream=stream,
        headers={"Transfer-Encoding": "chunked"},  # so no Content-Length reaches the app
        environ_overrides={"wsgi.input_terminated": True},
        **kwargs,
    )


def test_a_streamed_body_over_the_limit_is_413(app_factory: Callable[..., Flask]) -> None:
    """Was cut short silently: Werkzeug stops a chunked body at the limit, so a big body
    was a misleading 400 (or, with whitespace after the limit, accepted)."""
    client = app_factory(FLEET_MAX_BODY_BYTES=100).test_client()
    small = b'{"title": "streamed"}'
    assert streamed(client, small).status_code == 201
    exact = small + b" " * (100 - len(small))
    assert streamed(client, exact).status_code == 201
    for too_big in (exact + b" ", small + b" " * 10_000, b'{"title": "' + b"x" * 500 + b'"}'):
        got = answer(streamed(client, too_big))
        assert got[0] == 413 and "100 bytes" in got[2]["detail"], got
    assert client.get(f"{API}/missions").get_json()["total"] == 2


class Broken(io.RawIOBase):
    """A body stream that fails as a server's de-chunking does on bad chunk sizes."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # the test client asks where the stream starts
        return True

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def readinto(self, buffer: Any) -> int:
        raise RuntimeError("Invalid chunk size: b'zz'")


def test_a_body_the_server_cannot_read_is_400(sqlite_client: FlaskClient) -> None:
    """Was a 500: gunicorn raises its own (non-OSError) exception on bad chunk sizes."""
    got = answer(streamed(sqlite_client, Broken()))
    assert got[0] == 400 and "could not be read" in got[2]["detail"], got
    assert problem_failure(*got) is None


def test_a_mailbox_id_off_its_pattern_is_422_on_reads_too(sqlite_client: FlaskClient) -> None:
    """Was a 200 with an empty list, though the document gives mailbox_id a pattern and a
    send to the same id is a 422 (found by schemathesis' coverage phase)."""
    for bad in ("has space", "x" * 129, "semi;colon", "%00"):
        got = answer(sqlite_client.get(f"{API}/mailboxes/{bad}/messages"))
        assert got[0] == 422 and "mailbox_id" in got[2]["errors"], (bad, got)
    assert answer(sqlite_client.get(f"{API}/mailboxes/ok-id_1.2:3/messages"))[0] == 200


def test_compaction_needs_no_body(sqlite_client: FlaskClient) -> None:
    """Its body was documented as required, though an empty one compacts every stream."""
    assert sqlite_client.post(f"{API}/compaction").status_code == 200
    document = sqlite_client.get(f"{API}/openapi.json").get_json()
    assert document["paths"]["/api/v1/compaction"]["post"]["requestBody"]["required"] is False


def test_an_unknown_method_is_405_whatever_its_headers(sqlite_client: FlaskClient) -> None:
    """Was a 400 for the malformed id header: the header was read before the routing."""
    got = answer(sqlite_client.put(f"{API}/missions", headers={"X-Correlation-ID": ""}))
    assert got[0] == 405 and problem_failure(*got) is None, got
    got = answer(sqlite_client.get(f"{API}/nowhere", headers={"X-Request-ID": "a b"}))
    assert got[0] == 404, got
    got = answer(sqlite_client.post(f"{API}/missions", headers={"X-Correlation-ID": ""}))
    assert got[0] == 400, got


# ---- through a real gunicorn ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("hostile-gunicorn")
    with gunicorn(workdir) as base:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite"}
        env["SQLITE_DBNAME"] = str(workdir / "fleet.sqlite3")
        yield base, env


HEAD = b"Host: fleet\r\nConnection: close\r\n"


def post(path: bytes, extra: bytes, body: bytes) -> bytes:
    return b"POST " + path + b" HTTP/1.1\r\n" + HEAD + extra + b"\r\n" + body


def sized(path: bytes, body: bytes, method: bytes = b"POST") -> bytes:
    length = b"Content-Length: %d\r\n" % len(body)
    return method + b" " + path + b" HTTP/1.1\r\n" + HEAD + length + b"\r\n" + body


CHUNKED = b"Transfer-Encoding: chunked\r\n"
MISSIONS = b"/api/v1/missions"
# (name, raw request, status); each one is refused by the app itself, as problem+json.
GUNICORN_REFUSED = [
    ("chunked over the limit", post(MISSIONS, CHUNKED, chunked(b" " * (MIB + 1))), 413),
    (
        "chunked, valid JSON cut at the limit",
        post(MISSIONS, CHUNKED, chunked(b'{"title": "t"}' + b" " * MIB)),
        413,
    ),
    ("chunked broken JSON", post(MISSIONS, CHUNKED, chunked(b'{"title": ')), 400),
    ("chunked deep", post(MISSIONS, CHUNKED, chunked(b"[" * 100_000 + b"]" * 100_000)), 400),
    ("bad chunk size", post(MISSIONS, CHUNKED, b"zz\r\nabc\r\n0\r\n\r\n"), 400),
    ("chunk without terminator", post(MISSIONS, CHUNKED, b"5\r\nabcdeXX0\r\n\r\n"), 400),
    ("Content-Length over the limit", post(MISSIONS, b"Content-Length: 5000000\r\n", b"{}"), 413),
    ("invalid UTF-8 body", sized(MISSIONS, b'{"title": "\xff"}'), 400),
    ("1e400", sized(MISSIONS, b'{"title": "t", "metadata": {"x": 1e400}}'), 422),
    (
        "%-encoded invalid UTF-8 in a path",
        sized(b"/api/v1/missions/%ff%fe", b'{"title": "t"}', b"PATCH"),
        404,
    ),
    (
        "%-encoded surrogate in a path",
        b"GET /api/v1/streams/%ed%a0%80/events HTTP/1.1\r\n" + HEAD + b"\r\n",
        404,
    ),
    ("NUL in a path", sized(b"/api/v1/mailboxes/%00/messages", b"{}"), 422),
    (
        "%-encoded invalid UTF-8 in a query",
        b"GET /api/v1/missions?limit=%ff&status=%fe HTTP/1.1\r\n" + HEAD + b"\r\n",
        422,
    ),
    ("encoded traversal", sized(b"/api/v1/specialists/..%2f..%2fmissions/heartbeat", b"{}"), 404),
]


@pytest.mark.slow
def test_hostile_requests_through_gunicorn(server: tuple[str, dict[str, str]]) -> None:
    base, env = server
    before = store_state(env)
    failures = []
    for name, request, status in GUNICORN_REFUSED:
        got = raw_request(base, request)
        data = got.json() if got.body else None
        why = problem_failure(got.status, got.content_type, data)
        if got.status != status:
            why = f"expected {status}, got {got.status}: {got.body[:200]!r}"
        if why:
            failures.append(f"{name}: {why}")
    assert not failures, "\n".join(failures)
    assert not state_diff(before, store_state(env))
    # The server still works, and takes a well-formed chunked body.
    got = raw_request(base, post(MISSIONS, CHUNKED, chunked(b'{"title": "chunky"}', 5)))
    assert got.status == 201 and got.json()["mission"]["title"] == "chunky"


@pytest.mark.slow
@pytest.mark.parametrize(
    "request_line",
    [
        b"POST /api/v1/missions/\xff\xfe HTTP/1.1",
        b"GET /api/v1/missions?status=\xff HTTP/1.1",
        b"GET /api/v1/missions/" + b"x" * 8000 + b" HTTP/1.1",
    ],
    ids=["raw bytes in the path", "raw bytes in the query", "request line over 4 KiB"],
)
def test_requests_gunicorn_refuses_itself(
    server: tuple[str, dict[str, str]], request_line: bytes
) -> None:
    """Raw non-ASCII bytes and overlong request lines never reach the app: gunicorn answers
    400/414 itself (as text/html; that page is gunicorn's, outside the app's contract)."""
    base, env = server
    before = store_state(env)
    got = raw_request(base, request_line + b"\r\n" + HEAD + b"Content-Length: 2\r\n\r\n{}")
    assert got.status in (400, 414)
    assert not state_diff(before, store_state(env))
