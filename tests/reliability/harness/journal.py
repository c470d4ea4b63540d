"""What the clients sent and what came back, request by request.

The suite's claims ("nothing acknowledged is lost", "nothing refused is written") compare
what the server told its clients with what the log holds afterwards, so the client side
must be known exactly, including the requests that got no answer. Every request goes
through a ``Client``, which records it in the run's ``Journal`` before it is sent and
fills in its outcome after.

Every request carries its own id as ``X-Request-ID`` (and ``X-Correlation-ID``), which
each event it causes keeps in ``metadata.request_id``: after the run, the audit
(``invariants.audit``) can match every request with the events it wrote, whatever
happened to its response. Every write also carries that id as its ``Idempotency-Key``,
so ``Client.retry`` sends the same logical request again.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

# Connect quickly (a refused or dead server is seen at once); a slow answer may be legitimate.
REQUEST_TIMEOUT = (2.0, 30.0)
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def new_run_id() -> str:
    """A run's name, the prefix of every request id it sends (``Journal(new_run_id())``)."""
    return f"rel-{uuid.uuid4().hex[:8]}"


@dataclass
class Record:
    """One request and what came back (``status`` None: no response at all)."""

    seq: int
    client: int
    op: str
    method: str
    path: str
    body: Any
    correlation_id: str
    headers: dict[str, str] = field(default_factory=dict)  # extra ones, e.g. If-Match
    status: int | None = None
    position: int | None = None
    etag: str | None = None
    answer: Any = None
    error: str | None = None
    refused: bool = False  # the connection was refused: the request never reached a server
    params: dict[str, Any] | None = None
    retried: bool = False  # sent again (same Idempotency-Key) after it got no answer
    replayed: bool = False  # the retry's answer was the first attempt's (it had landed)
    epoch: int = 0  # how many crashes had happened when it was sent
    started: float = 0.0  # time.monotonic() when sent and when answered (or failed)
    ended: float = 0.0

    @property
    def write(self) -> bool:
        return self.method in WRITE_METHODS

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "NewConnectionError" in repr(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Connection refused" in str(exc)


class Journal:
    """Every request of a run, in the order they were sent (thread-safe)."""

    def __init__(self, run: str):
        self.run = run
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self.epoch = 0

    def new(self, client: int, op: str, method: str, path: str, body: Any) -> Record:
        with self._lock:
            record = Record(
                seq=len(self.records),
                client=client,
                op=op,
                method=method,
                path=path,
                body=body,
                correlation_id=f"{self.run}-{len(self.records)}",
                epoch=self.epoch,
            )
            self.records.append(record)
        return record

    def dump(self, path: Path) -> None:
        with path.open("w") as out:
            for record in self.records:
                out.write(json.dumps(asdict(record), default=str) + "\n")


class Client:
    """One client thread's HTTP session; every call is journalled."""

    def __init__(self, base: str, journal: Journal, number: int):
        self.api = f"{base}/api/v1"
        self.journal = journal
        self.number = number
        self.session = requests.Session()

    def call(
        self,
        op: str,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Record:
        record = self.journal.new(self.number, op, method, path, body)
        record.headers = dict(headers or {})
        record.params = params
        return self._send(record)

    def retry(self, record: Record) -> Record:
        """Send a write that got no answer again, as the same logical request: the same
        ``Idempotency-Key`` (and ids), so a first attempt that landed is replayed."""
        record.retried = True  # ``error`` and ``refused`` keep the first attempt's outcome
        return self._send(record)

    def _send(self, record: Record) -> Record:
        # The id names the request in its events: metadata.request_id (and, since the
        # request gives it, correlation_id too). Every write carries its id as its
        # Idempotency-Key: a retry of it is the same request.
        ids = {"X-Correlation-ID": record.correlation_id, "X-Request-ID": record.correlation_id}
        if record.write:
            ids["Idempotency-Key"] = record.correlation_id
        sent = {**ids, **record.headers}
        record.started = time.monotonic()
        try:
            response = self.session.request(
                record.method,
                f"{self.api}{record.path}",
                json=record.body,
                params=record.params,
                headers=sent,
                timeout=REQUEST_TIMEOUT,
            )
        except requests.RequestException as exc:
            record.ended = time.monotonic()
            record.error = f"{type(exc).__name__}: {exc}"[:300]
            record.refused = _refused(exc)
            if record.refused:
                time.sleep(0.05)  # the server is down: do not spin while it restarts
            # A dead keep-alive connection must not poison the next call.
            self.session.close()
            self.session = requests.Session()
            return record
        record.ended = time.monotonic()
        record.status = response.status_code
        record.replayed = response.headers.get("Idempotent-Replayed") == "true"
        position = response.headers.get("X-Fleet-Position")
        record.position = int(position) if position else None
        record.etag = response.headers.get("ETag")
        try:
            record.answer = response.json()
        except ValueError:
            record.answer = response.text[:300]
        return record

    def close(self) -> None:
        self.session.close()
