"""``FleetClient``'s transport: idempotency keys, bounded retries, headers, problem mapping.

A scripted loopback HTTP server answers what each test needs (a 503, an in-flight 409, a
slow answer) and records every request it received.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from application import (
    Conflict,
    FleetClient,
    FleetError,
    Forbidden,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from tests.servers import free_port

SORTIE = {"sortie": {"id": "s1", "version": 2, "status": "pending"}}


class Script:
    """Answers, in order (the last one repeats), and the requests that got them."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, Any], float]] = []
        self.requests: list[dict[str, Any]] = []

    def then(self, status: int, body: dict[str, Any], delay: float = 0.0) -> Script:
        self.answers.append((status, body, delay))
        return self


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(body) if body else None,
                }
            )
            index = min(len(script.requests), len(script.answers)) - 1
            status, payload, delay = script.answers[index]
            time.sleep(delay)
            data = json.dumps(payload).encode()
            self.send_response(status)
            kind = "application/problem+json" if status >= 400 else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            if status == 503:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = answer

        def log_message(self, *args: Any) -> None:
            """Quiet: the test reads ``script.requests`` instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # serve_forever polls for shutdown every 0.5 s by default: half a second per teardown.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


def problem(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": "urn:fleet:problem:x", "title": "x", "status": status, "detail": detail} | extra


def test_a_retried_write_keeps_its_idempotency_key(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    script.then(503, problem(503, "busy")).then(503, problem(503, "busy")).then(200, SORTIE)
    client = FleetClient(base, backoff=0.01)
    assert client.update_sortie("s1", status="cancelled", expected_version=1) == SORTIE["sortie"]
    keys = {r["headers"]["Idempotency-Key"] for r in script.requests}
    assert len(script.requests) == 3 and len(keys) == 1
    assert all(r["headers"]["If-Match"] == '"1"' for r in script.requests)
    assert script.requests[0]["body"] == {"status": "cancelled"}

    client.update_sortie("s1", title="again")  # a new logical call: a new key
    assert script.requests[-1]["headers"]["Idempotency-Key"] not in keys


def test_an_in_flight_conflict_is_retried_but_a_real_conflict_is_not(
    scripted: tuple[str, Script],
) -> None:
    base, script = scripted
    in_flight = problem(409, "running", type="urn:fleet:problem:idempotency-key-in-flight")
    script.then(409, in_flight).then(201, SORTIE).then(409, problem(409, "no: illegal move"))
    client = FleetClient(base, backoff=0.01)
    assert client.create_sortie(description="d")["id"] == "s1"
    assert len(script.requests) == 2
    with pytest.raises(Conflict, match="illegal move"):
        client.create_sortie(description="d")
    assert len(script.requests) == 3


def test_timeouts_are_retried_and_retries_are_bounded(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    script.then(200, SORTIE, delay=1.0).then(200, SORTIE)
    client = FleetClient(base, timeout=0.3, backoff=0.01)
    assert client.get_sortie("s1")["id"] == "s1"
    assert len(script.requests) == 2
    assert "Idempotency-Key" not in script.requests[0]["headers"]  # reads need none

    script.answers[:] = [(503, problem(503, "down for good"), 0.0)]
    script.requests.clear()
    with pytest.raises(Unavailable, match="down for good"):
        FleetClient(base, retries=2, backoff=0.01).get_sortie("s1")
    assert len(script.requests) == 3


def test_an_unreachable_server_is_unavailable() -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable, match="did not answer"):
        FleetClient(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01).health()
    assert time.monotonic() - started < 5


def test_token_correlation_and_actor_headers(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    script.then(401, problem(401, "This request needs a token."))
    token = "s3cret"  # noqa: S105 - a test token
    client = FleetClient(base, token=token, correlation_id="run-7", actor="ace")
    with pytest.raises(Unauthorized, match="needs a token"):
        client.acquire_lock("a.py", "ace")
    headers = script.requests[0]["headers"]
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["X-Correlation-ID"] == "run-7" and headers["X-Fleet-Actor"] == "ace"
    assert script.requests[0]["path"] == "/api/v1/locks/acquire"


def test_ids_are_one_path_segment(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    script.then(200, {"messages": [], "total": 0, "limit": 100, "offset": 0})
    FleetClient(base).list_messages("team/a b", status="pending")
    assert script.requests[0]["path"].startswith("/api/v1/mailboxes/team%2Fa%20b/messages?")


def test_a_callers_key_is_sent_and_a_wait_lengthens_the_timeout(
    scripted: tuple[str, Script],
) -> None:
    base, script = scripted
    script.then(200, SORTIE, delay=0.8)
    client = FleetClient(base, timeout=0.5, retries=0)
    assert client.claim_sortie("ace", wait=1, idempotency_key="mine-1") == SORTIE["sortie"]
    assert script.requests[0]["headers"]["Idempotency-Key"] == "mine-1"
    assert script.requests[0]["path"] == "/api/v1/sorties/claim?wait=1"
    with pytest.raises(Unavailable):  # the same slow answer, without a wait to cover it
        client.claim_sortie("ace")


class Proxy:
    """A TCP relay in front of a real server that can drop its connections on demand:
    ``swallow`` answers (the server ran the request; the client never hears back), or
    every open connection at once (``drop``)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.swallow = 0
        self.answers: list[bytes] = []
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers:
                    self.answers.append(data)
                    with self.lock:
                        swallowed = self.swallow > 0
                        self.swallow -= swallowed
                    if swallowed:
                        break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # a close alone would not wake the other pump
            sock.close()

    def drop(self) -> None:
        with self.lock:
            for sock in self.sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.drop()


@pytest.fixture
def proxy(fleet_server: str) -> Iterator[Proxy]:
    relay = Proxy(fleet_server)
    try:
        yield relay
    finally:
        relay.close()


def test_a_write_whose_answer_is_lost_is_retried_replayed_and_recorded_once(
    proxy: Proxy, fleet_server: str
) -> None:
    client = FleetClient(proxy.url, backoff=0.01)
    direct = FleetClient(fleet_server)
    proxy.swallow = 1  # the server records the mission; its answer never arrives
    mission = client.create_mission(title="Once", idempotency_key="retried-create-1")
    assert proxy.swallow == 0 and len(proxy.answers) >= 2
    assert b"idempotent-replayed: true" not in proxy.answers[0].lower()
    assert b"idempotent-replayed: true" in b"".join(proxy.answers[1:]).lower()
    events, total = direct.events(stream_id=mission["stream_id"])
    assert total == 1 and events[0]["event_type"] == "mission_created"
    missions, _ = direct.list_missions(limit=1000)
    assert [m["id"] for m in missions if m["title"] == "Once"] == [mission["id"]]
    client.close()
    direct.close()


def test_subscribe_resumes_after_a_dropped_connection(proxy: Proxy, fleet_server: str) -> None:
    direct = FleetClient(fleet_server)
    start = direct.head_position()
    client = FleetClient(proxy.url, backoff=0.01)
    feed = client.subscribe(after=start, type="mission_created")
    try:
        first = direct.create_mission(title="Before the drop")
        assert next(feed)["stream_id"] == first["stream_id"]
        proxy.drop()
        missed = [direct.create_mission(title=f"During the drop {n}") for n in range(3)]
        resumed = [next(feed)["stream_id"] for _ in missed]
    finally:
        feed.close()  # type: ignore[attr-defined]
        client.close()
        direct.close()
    assert resumed == [m["stream_id"] for m in missed]  # none missed, none repeated


@pytest.mark.parametrize(
    ("status", "answer", "error", "expected"),
    [
        (400, problem(400, "bad header"), ValidationError, {"_request": ["bad header"]}),
        (
            422,
            problem(422, "bad", errors={"title": ["empty"]}),
            ValidationError,
            {"title": ["empty"]},
        ),
        (403, problem(403, "not yours"), Forbidden, None),
        (405, problem(405, "no such method"), NotFound, None),
        (418, problem(418, "a teapot"), FleetError, None),
    ],
    ids=["400-without-errors", "422", "403", "405", "other"],
)
def test_each_refusal_is_the_in_process_error(
    scripted: tuple[str, Script],
    status: int,
    answer: dict[str, Any],
    error: type[Exception],
    expected: dict[str, Any] | None,
) -> None:
    """The same exception classes as ``Fleet`` raises; a status the API never answers is a
    plain FleetError that keeps its status."""
    base, script = scripted
    script.then(status, answer)
    with pytest.raises(error) as raised:
        FleetClient(base, backoff=0.01).list_missions(status="active")
    if expected is not None:
        assert raised.value.errors == expected  # type: ignore[attr-defined]
    if error is FleetError:
        assert type(raised.value) is FleetError and raised.value.status == 418  # type: ignore[attr-defined]
        assert "HTTP 418: a teapot" in str(raised.value)
