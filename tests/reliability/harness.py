"""The reliability suite's machinery: a real multi-worker server, recorded HTTP clients,
and checks of what the event log and the projections hold afterwards.

A ``Cluster`` runs ``gunicorn wsgi:app`` (several gthread workers) and, with
``FLEET_PROJECTOR=external``, one ``fleet projector`` beside it, each in a process group
of its own so that ``kill()`` can SIGKILL a master with all its workers at once.

``Traffic`` drives N client threads for a bounded time with a mix of commands and reads.
Every request carries its own id as ``X-Request-ID`` (and ``X-Correlation-ID``), which each
event it causes keeps in ``metadata.request_id``; so after the run ``audit`` can match
every request with the events it wrote, whatever happened to its response.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from application.fleet import Fleet
from application.projections import PROJECTIONS
from tests.servers import (
    BIN,
    ROOT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    clean_environ,
    free_port,
    gunicorn_command,
    wait_until_up,
)

FIGURES_DIR = ROOT / "var" / "reliability"


# Connect quickly (a refused or dead server is seen at once); a slow answer may be legitimate.
REQUEST_TIMEOUT = (2.0, 30.0)
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Events a liveness sweep records under a correlation id of its own (no request caused them).
# sortie_released: the sorties a silenced specialist held, in the same save.
SWEEP_EVENTS = frozenset({"lock_timeout", "specialist_inactive", "sortie_released"})


# ---- sizing: bounded in `make test`, longer with `make soak` ----------------------------


def soak_seconds() -> float | None:
    raw = os.environ.get("FLEET_SOAK_SECONDS", "").strip()
    return float(raw) if raw else None


def scaled(default: float) -> float:
    """A load phase's duration: ``default`` seconds, or FLEET_SOAK_SECONDS under `make soak`."""
    soak = soak_seconds()
    return soak if soak is not None else default


def client_count(default: int) -> int:
    raw = os.environ.get("FLEET_SOAK_CLIENTS", "").strip()
    return int(raw) if raw else default


def crash_count(default: int) -> int:
    raw = os.environ.get("FLEET_SOAK_CRASHES", "").strip()
    return int(raw) if raw else default


# ---- processes ---------------------------------------------------------------------------


@dataclass
class Cluster:
    """gunicorn with several workers on one store, plus a projector when ``external``."""

    store: dict[str, str]
    workdir: Path
    external: bool = True
    workers: int = 3
    threads: int = 4
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    server: subprocess.Popen[bytes] | None = None
    projector: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = clean_environ(**self.store)
        env |= {
            "FLEET_PROJECTOR": "external" if self.external else "embedded",
            # Sweeps in every worker and in the projector: more concurrent writers.
            "FLEET_SWEEP_INTERVAL": "1",
            "FLEET_HEARTBEAT_TIMEOUT": "3",
            "FLEET_MIN_POSITION_TIMEOUT": "20",
            "POSTGRES_POOL_SIZE": "3",
        }
        return env | self.settings

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        try:
            return subprocess.Popen(  # noqa: S603 - fixed arguments
                args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes the workers too
            )
        finally:
            log.close()

    def start(self) -> None:
        self.starts += 1
        self.server = self._spawn(
            gunicorn_command(
                self.port,
                *("--workers", str(self.workers), "--threads", str(self.threads)),
                *("--timeout", "60"),
            ),
            "gunicorn",
        )
        if self.external:
            self.projector = self._spawn(
                [str(BIN / "fleet"), "projector", "--sweep-every", "1"], "projector"
            )
        self.wait_until_up()

    def wait_until_up(self) -> None:
        processes = {"gunicorn": self.server, "projector": self.projector}
        running = {name: p for name, p in processes.items() if p is not None}
        wait_until_up(self.base, running, self.workdir, START_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL the gunicorn master with its workers, and the projector: a crash."""
        for process in (self.server, self.projector):
            if process is not None and process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for process in (self.server, self.projector):
            if process is not None:
                process.wait(timeout=STOP_TIMEOUT)
        self.server = self.projector = None

    def kill_one_worker(self) -> int:
        """SIGKILL one gunicorn worker; the master boots a new one while the others serve."""
        assert self.server is not None
        workers = psutil.Process(self.server.pid).children()
        victim = workers[0].pid
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:  # until the master has replaced it
            alive = [p for p in psutil.Process(self.server.pid).children() if p.pid != victim]
            if len(alive) >= self.workers:
                return victim
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not replace worker {victim}:\n{self.logs()}")

    def stop(self) -> None:
        """A clean stop (SIGTERM, then SIGKILL if it lingers)."""
        for process in (self.server, self.projector):
            if process is not None and process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in (self.server, self.projector):
            if process is None:
                continue
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
        self.server = self.projector = None

    def logs(self) -> str:
        parts = []
        for name in ("gunicorn", "projector"):
            path = self.workdir / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name}.log (tail) ---\n{path.read_text()[-6000:]}")
        return "\n".join(parts)

    def server_errors(self) -> list[str]:
        """Tracebacks and error lines the processes logged (none is expected)."""
        lines = []
        for name in ("gunicorn", "projector"):
            path = self.workdir / f"{name}.log"
            if path.exists():
                for line in path.read_text().splitlines():
                    if "was sent SIGKILL" in line:  # kill_one_worker() did that
                        continue
                    if "Traceback" in line or "OperationalError" in line or "ERROR" in line:
                        lines.append(f"{name}: {line}")
        return lines

    def wait_for_projections(self, timeout: float = 60.0) -> None:
        """Until /health reports every projection at the head of the log."""
        deadline = time.monotonic() + timeout
        report: Any = None
        while time.monotonic() < deadline:
            report = requests.get(f"{self.base}/health", timeout=5).json()
            if all(p["lag"] == 0 for p in report["projections"].values()):
                return
            time.sleep(0.2)
        raise AssertionError(f"projections did not catch up within {timeout} s: {report}")


# ---- recorded HTTP ------------------------------------------------------------------------


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


# ---- the traffic: a mix of commands against a shared picture of the world ------------------


@dataclass
class World:
    """What the clients know exists (from acknowledged answers), shared by all threads."""

    specialists: list[str] = field(default_factory=list)
    missions: list[str] = field(default_factory=list)
    sorties: dict[str, dict[str, Any]] = field(default_factory=dict)
    locks: dict[str, str] = field(default_factory=dict)  # lock id -> holder
    messages: dict[str, str] = field(default_factory=dict)  # message id -> status
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self, rng: random.Random, items: Any) -> Any:
        with self.lock:
            pool = list(items)
        return rng.choice(pool) if pool else None


FILES = [f"src/module_{n}.py" for n in range(6)]
MAILBOXES = [f"mailbox-{n}" for n in range(4)]
NEXT_STATUS: dict[str, list[dict[str, Any]]] = {
    "assigned": [{"status": "in_progress"}],
    "in_progress": [
        {"progress": 40, "status_message": "halfway"},
        {"status": "completed", "result": {"ok": True}},
        {"status": "blocked", "reason": "waiting for input"},
        {"status": "review", "reviewer_id": "reviewer"},
    ],
    "blocked": [{"status": "in_progress", "resolution": "unblocked"}],
    "review": [
        {"status": "completed", "feedback": "fine"},
        {"status": "in_progress", "verdict": "needs_changes"},
    ],
}


class Traffic:
    """Client threads issuing a weighted mix of commands and reads until a deadline."""

    def __init__(self, base: str, journal: Journal, seed: int = 7):
        self.base = base
        self.journal = journal
        self.world = World()
        self.seed = seed
        self.cursor_positions: Counter[str] = Counter()
        self.ops: list[tuple[Callable[[Client, random.Random], None], int]] = [
            (self.register, 6),
            (self.heartbeat, 10),
            (self.create_mission, 4),
            (self.create_sortie, 10),
            (self.patch_sortie, 20),
            (self.send_message, 8),
            (self.handle_message, 6),
            (self.acquire_lock, 8),
            (self.release_lock, 5),
            (self.advance_cursor, 6),
            (self.checkpoint, 1),
            (self.read_list, 10),
            (self.read_one, 6),
        ]

    # one command each

    def register(self, client: Client, rng: random.Random) -> None:
        specialist = f"agent-{rng.randrange(12)}"
        body = {"specialist_id": specialist, "name": specialist, "capabilities": ["code"]}
        record = client.call("register", "POST", "/specialists/register", body)
        if record.acknowledged:
            with self.world.lock:
                if specialist not in self.world.specialists:
                    self.world.specialists.append(specialist)

    def heartbeat(self, client: Client, rng: random.Random) -> None:
        specialist = self.world.pick(rng, self.world.specialists)
        if specialist is None:
            return self.register(client, rng)
        body = {"status": rng.choice(["active", "busy", "idle"])}
        client.call("heartbeat", "PATCH", f"/specialists/{specialist}/heartbeat", body)

    def create_mission(self, client: Client, rng: random.Random) -> None:
        body = {
            "title": f"mission by client {client.number}",
            "priority": rng.choice(["low", "high"]),
        }
        record = client.call("create_mission", "POST", "/missions", body)
        if record.acknowledged:
            with self.world.lock:
                self.world.missions.append(record.answer["mission"]["id"])

    def create_sortie(self, client: Client, rng: random.Random) -> None:
        mission = self.world.pick(rng, self.world.missions)
        if mission is None:
            return self.create_mission(client, rng)
        body: dict[str, Any] = {"description": "a unit of work", "mission_id": mission}
        with self.world.lock:
            siblings = [k for k, s in self.world.sorties.items() if s["mission_id"] == mission]
        if siblings and rng.random() < 0.3:
            body["dependencies"] = [rng.choice(siblings)]
        record = client.call("create_sortie", "POST", "/sorties", body)
        if record.acknowledged:
            sortie = record.answer["sortie"]
            with self.world.lock:
                self.world.sorties[sortie["id"]] = {"mission_id": mission, "status": "pending"}

    def patch_sortie(self, client: Client, rng: random.Random) -> None:
        sortie_id = self.world.pick(rng, self.world.sorties)
        if sortie_id is None:
            return self.create_sortie(client, rng)
        with self.world.lock:
            status = self.world.sorties[sortie_id]["status"]
        if status in ("completed", "failed", "cancelled"):
            return None
        if status == "pending":
            specialist = self.world.pick(rng, self.world.specialists)
            if specialist is None:
                return self.register(client, rng)
            body = {"status": "assigned", "assigned_to": specialist}
        elif rng.random() < 0.03:
            body = {"status": "cancelled", "reason": "no longer needed"}
        else:
            body = dict(rng.choice(NEXT_STATUS[status]))
        headers = {}
        if rng.random() < 0.3 and "version" in self.world.sorties[sortie_id]:
            headers["If-Match"] = f'"{self.world.sorties[sortie_id]["version"]}"'
        record = client.call("patch_sortie", "PATCH", f"/sorties/{sortie_id}", body, headers)
        if record.acknowledged:
            sortie = record.answer["sortie"]
            with self.world.lock:
                self.world.sorties[sortie_id].update(
                    status=sortie["status"], version=sortie["version"]
                )

    def send_message(self, client: Client, rng: random.Random) -> None:
        mailbox = rng.choice(MAILBOXES)
        body = {
            "message_type": "note",
            "content": {"text": f"hello from {client.number}"},
            "sender_id": f"client-{client.number}",
        }
        record = client.call("send_message", "POST", f"/mailboxes/{mailbox}/messages", body)
        if record.acknowledged:
            with self.world.lock:
                self.world.messages[record.answer["message"]["id"]] = "pending"

    def handle_message(self, client: Client, rng: random.Random) -> None:
        """The next step of a message's life as this client last saw it: read, ack, archive."""
        message_id = self.world.pick(rng, self.world.messages)
        if message_id is None:
            return self.send_message(client, rng)
        with self.world.lock:
            status = self.world.messages[message_id]
        step = {"pending": ("read", "reader_id"), "read": ("ack", "acker_id")}
        action, field_name = step.get(status, ("archive", "archived_by"))
        body = {field_name: f"client-{client.number}"}
        record = client.call(f"message_{action}", "POST", f"/messages/{message_id}/{action}", body)
        if record.acknowledged:
            with self.world.lock:
                self.world.messages[message_id] = record.answer["message"]["status"]
        return None

    def acquire_lock(self, client: Client, rng: random.Random) -> None:
        holder = f"client-{client.number}"
        body = {
            "file": rng.choice(FILES),
            "specialist_id": holder,
            "timeout_ms": rng.choice([500, 2000, 30_000]),
        }
        record = client.call("acquire_lock", "POST", "/locks/acquire", body)
        if record.acknowledged:
            with self.world.lock:
                self.world.locks[record.answer["lock"]["id"]] = holder

    def release_lock(self, client: Client, rng: random.Random) -> None:
        lock_id = self.world.pick(rng, self.world.locks)
        if lock_id is None:
            return self.acquire_lock(client, rng)
        with self.world.lock:
            holder = self.world.locks.pop(lock_id, None)
        if holder is None:
            return None
        body = {"specialist_id": holder, "force": holder != f"client-{client.number}"}
        client.call("release_lock", "POST", f"/locks/{lock_id}/release", body)
        return None

    def advance_cursor(self, client: Client, rng: random.Random) -> None:
        consumer = f"consumer-{client.number}"
        stream = rng.choice(MAILBOXES)
        key = f"{consumer}/{stream}"
        with self.world.lock:
            self.cursor_positions[key] += rng.randrange(1, 5)
            position = self.cursor_positions[key]
        body = {"consumer_id": consumer, "stream_id": stream, "position": position}
        client.call("advance_cursor", "POST", "/cursors/advance", body)

    def checkpoint(self, client: Client, rng: random.Random) -> None:
        mission = self.world.pick(rng, self.world.missions)
        if mission is None:
            return None
        body = {"stream_id": mission, "description": "reliability"}
        client.call("checkpoint", "POST", "/checkpoints", body)
        return None

    def read_list(self, client: Client, rng: random.Random) -> None:
        """A list that must reflect at least the last write this client saw acknowledged."""
        path, params = rng.choice(
            [
                ("/sorties", {"status": "in_progress"}),
                ("/missions", {}),
                ("/specialists", {"status": "busy"}),
                ("/locks", {}),
                (f"/mailboxes/{rng.choice(MAILBOXES)}/messages", {}),
                ("/events", {"type": "sortie_completed", "limit": 5}),
            ]
        )
        if path != "/events" and (position := self._last_position(client)):
            params["min_position"] = position
        client.call("read_list", "GET", path, params=params)

    def read_one(self, client: Client, rng: random.Random) -> None:
        sortie_id = self.world.pick(rng, self.world.sorties)
        if sortie_id is None:
            return None
        client.call("read_one", "GET", f"/sorties/{sortie_id}")
        return None

    def _last_position(self, client: Client) -> int | None:
        # The journal is shared; a client's own last acknowledged write is enough here.
        for record in reversed(self.journal.records[-200:]):
            if record.client == client.number and record.acknowledged and record.position:
                return record.position
        return None

    # running

    def retry_unanswered(self) -> list[Record]:
        """Send every write that got no answer again (a client that retries until it has
        one); returns the retried records, now holding the retry's answer."""
        client = Client(self.base, self.journal, -2)
        try:
            unanswered = [r for r in self.journal.records if r.write and r.status is None]
            return [client.retry(record) for record in unanswered]
        finally:
            client.close()

    def run(self, clients: int, seconds: float, stop: threading.Event | None = None) -> None:
        """``clients`` threads issuing commands until ``seconds`` have passed or ``stop`` is set."""
        deadline = time.monotonic() + seconds
        stop = stop or threading.Event()
        ops = [op for op, _ in self.ops]
        weights = [weight for _, weight in self.ops]
        errors: list[BaseException] = []

        def loop(number: int) -> None:
            rng = random.Random(self.seed * 1000 + number + len(self.journal.records))  # noqa: S311
            client = Client(self.base, self.journal, number)
            try:
                while time.monotonic() < deadline and not stop.is_set():
                    rng.choices(ops, weights)[0](client, rng)
            except Exception as exc:  # noqa: BLE001 - a harness bug must fail the test
                errors.append(exc)
            finally:
                client.close()

        threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 120)
        if errors:
            raise errors[0]


# ---- reading the store afterwards --------------------------------------------------------


@dataclass(frozen=True)
class LoggedEvent:
    position: int
    event_type: str
    stream_id: str
    request_id: str | None  # the X-Request-ID of the request that wrote it
    source: str | None  # "http", "sweep", ...


@contextmanager
def raw_connection(store: dict[str, str]) -> Iterator[Any]:
    """A plain DB-API connection to the store (PostgreSQL: its schema on the search path)."""
    if store["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        import psycopg
        from psycopg.sql import SQL, Identifier

        conn = psycopg.connect(
            host=store["POSTGRES_HOST"],
            port=int(store["POSTGRES_PORT"]),
            user=store["POSTGRES_USER"],
            password=store["POSTGRES_PASSWORD"],
            dbname=store["POSTGRES_DBNAME"],
            autocommit=True,
        )
        conn.execute(SQL("SET search_path TO {}").format(Identifier(store["POSTGRES_SCHEMA"])))
    else:
        conn = sqlite3.connect(store["SQLITE_DBNAME"], timeout=30)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def store_write_lock(store: dict[str, str]) -> Iterator[None]:
    """Hold the lock every event writer needs, as a long maintenance transaction would.

    SQLite: the database's write lock (``BEGIN IMMEDIATE``); PostgreSQL: the events table
    in the EXCLUSIVE mode the library's writers take (plain reads still run).
    """
    with raw_connection(store) as conn:
        if store["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
            with conn.transaction():
                conn.execute("LOCK TABLE fleet_events IN EXCLUSIVE MODE")
                yield
        else:
            conn.isolation_level = None
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                conn.execute("COMMIT")


def logged_events(store: dict[str, str]) -> list[LoggedEvent]:
    """Every event of the log with the request that wrote it (``metadata.request_id``).

    Also checks that Fleet's event index has exactly one row per stored event.
    """
    postgres = store["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    table, position = (
        ("fleet_events", "notification_id") if postgres else ("stored_events", "rowid")
    )
    with raw_connection(store) as conn:
        stored = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
        indexed = conn.execute("SELECT COUNT(*) FROM fleet_event_index").fetchone()[0]
        unindexed = conn.execute(
            f"SELECT COUNT(*) FROM {table} e WHERE NOT EXISTS "  # noqa: S608
            f"(SELECT 1 FROM fleet_event_index i WHERE i.position = e.{position})"
        ).fetchone()[0]
    assert unindexed == 0 and stored == indexed, (stored, indexed, unindexed)
    fleet = Fleet(env={**store, "FLEET_PROJECTOR": "external"})
    events: list[LoggedEvent] = []
    try:
        while True:
            page, _ = fleet.events(after=events[-1].position if events else 0, limit=1000)
            if not page:
                break
            events.extend(
                LoggedEvent(
                    position=e["id"],
                    event_type=e["event_type"],
                    stream_id=e["stream_id"],
                    request_id=e["metadata"].get("request_id"),
                    source=e["metadata"].get("source"),
                )
                for e in page
            )
    finally:
        fleet.close()
    assert len(events) == stored
    return events


def sqlite_integrity(store: dict[str, str]) -> str | None:
    """``PRAGMA integrity_check`` of a SQLite store ("ok"), None on PostgreSQL."""
    if store["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        return None
    with raw_connection(store) as conn:
        return ", ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall())


# ---- the audit -----------------------------------------------------------------------------


@dataclass
class Audit:
    """Requests against the log: what was acknowledged, what landed, what must not have."""

    figures: dict[str, Any]
    problems: list[str]


def audit(
    journal: Journal, events: list[LoggedEvent], allowed_5xx: frozenset[int] = frozenset()
) -> Audit:
    """Match requests with events. A status in ``allowed_5xx`` (the 503 of a store busy past
    its timeout) counts as a refusal: such a write must have written nothing."""
    by_request: dict[str | None, list[LoggedEvent]] = defaultdict(list)
    for event in events:
        by_request[event.request_id].append(event)
    problems: list[str] = []
    statuses: Counter[str] = Counter()
    figures: Counter[str] = Counter()
    # Always reported, so a 0 reads as checked rather than missing.
    for key in (
        "requests_sent",
        "acknowledged_writes",
        "acknowledged_found",
        "acknowledged_lost",
        "duplicated_writes",
        "unacknowledged_in_log",
        "events_of_no_request",
        "http_5xx",
        "connection_refused",
        "no_response",
        "no_response_landed",
        "no_response_not_landed",
        "retried",
        "retried_replayed",
        "retried_ran",
        "retried_unanswered",
    ):
        figures[key] = 0
    known: set[str] = set()
    for record in journal.records:
        known.add(record.correlation_id)
        mine = by_request.get(record.correlation_id, [])
        figures["requests_sent"] += 1
        figures["writes_sent" if record.write else "reads_sent"] += 1
        statuses[str(record.status) if record.status is not None else "no_response"] += 1
        if record.status is not None and record.status >= 500 and record.status in allowed_5xx:
            figures[f"http_{record.status}_allowed"] += 1
        elif record.status is not None and record.status >= 500:
            figures["http_5xx"] += 1
            problems.append(
                f"5xx: {record.method} {record.path} -> {record.status} {record.answer}"
            )
        if record.retried:
            # The first attempt got no answer; the retry (same key) replays it if it landed,
            # else runs it now: either way the request must be in the log exactly once.
            figures["retried"] += 1
            if record.refused:
                figures["connection_refused"] += 1
                if record.replayed:
                    problems.append(f"a refused request had landed: {record.correlation_id}")
            else:
                figures["no_response"] += 1
                figures["no_response_landed" if record.replayed else "no_response_not_landed"] += 1
            if record.status is None:
                figures["retried_unanswered"] += 1
                problems.append(f"a retried write got no answer again: {record.correlation_id}")
                continue
            figures["retried_replayed" if record.replayed else "retried_ran"] += 1
        elif record.status is None:
            if record.refused:
                figures["connection_refused"] += 1
                if mine:
                    problems.append(f"a refused request wrote events: {record.correlation_id}")
            else:
                figures["no_response"] += 1
                figures["no_response_landed" if mine else "no_response_not_landed"] += 1
            continue
        if not record.write:
            if mine:
                problems.append(f"a read wrote events: {record.method} {record.path}")
            continue
        if record.acknowledged:
            figures["acknowledged_writes"] += 1
            if not mine:
                figures["acknowledged_lost"] += 1
                problems.append(
                    f"acknowledged but not in the log: {record.op} {record.path} "
                    f"{record.status} position={record.position}"
                )
                continue
            figures["acknowledged_found"] += 1
            if record.position != mine[-1].position:
                problems.append(
                    f"X-Fleet-Position {record.position} of {record.correlation_id} is not its "
                    f"last event ({mine[-1].position})"
                )
            pairs = Counter((e.stream_id, e.event_type) for e in mine)
            if duplicated := [pair for pair, n in pairs.items() if n > 1]:
                figures["duplicated_writes"] += 1
                problems.append(f"{record.correlation_id} wrote {duplicated} more than once")
            continue
        figures["rejected_writes"] += 1
        allowed = (
            {"lock_conflict"} if record.op == "acquire_lock" and record.status == 409 else set()
        )
        if stray := [e for e in mine if e.event_type not in allowed]:
            figures["unacknowledged_in_log"] += 1
            problems.append(
                f"{record.op} answered {record.status} but wrote "
                f"{[e.event_type for e in stray]}: {record.answer}"
            )
    for request_id, mine in by_request.items():
        if request_id in known:
            continue
        for event in mine:
            if event.source == "sweep" and event.event_type in SWEEP_EVENTS:
                figures["sweep_events"] += 1
            else:
                figures["events_of_no_request"] += 1
                problems.append(f"an event no request or sweep explains: {event}")
    figures["events_in_log"] = len(events)
    return Audit(
        figures={**{k: figures[k] for k in sorted(figures)}, "statuses": dict(statuses)},
        problems=problems,
    )


# ---- projections against a rebuild ---------------------------------------------------------


def projection_rows(fleet: Fleet) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projection table, in a stable order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with fleet.projector.read() as tx:
        for projection in PROJECTIONS:
            for table in projection.owned_tables:
                rows = tx.fetchall(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
                tables[table] = sorted((_row(row) for row in rows), key=repr)
    return tables


def _row(row: Any) -> tuple[Any, ...]:
    values = row.values() if isinstance(row, dict) else tuple(row)  # psycopg dict / sqlite3.Row
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in values)


def compare_with_rebuild(store: dict[str, str]) -> dict[str, Any]:
    """Rows as the servers left them, against the same projections replayed from scratch.

    Run with every server stopped: ``Fleet`` here only catches up with (nothing left, as the
    caller waited for lag 0), reads the rows, rebuilds each projection in one transaction
    and reads them again.
    """
    fleet = Fleet(env={**store, "FLEET_PROJECTOR": "external"})
    try:
        head = fleet.app.recorder.max_notification_id() or 0
        positions = {row["name"]: row["position"] for row in fleet.projector.status()}
        before = projection_rows(fleet)
        for projection in PROJECTIONS:
            fleet.projector.rebuild(projection.name)
        after = projection_rows(fleet)
    finally:
        fleet.close()
    differing = {
        table: {
            "served_only": len(set(before[table]) - set(after[table])),
            "rebuilt_only": len(set(after[table]) - set(before[table])),
        }
        for table in before
        if before[table] != after[table]
    }
    return {
        "head": head,
        "positions_behind_head": {n: head - p for n, p in positions.items() if p != head},
        "rows": sum(len(rows) for rows in before.values()),
        "tables_differing": differing,
    }


# ---- figures ------------------------------------------------------------------------------


def assert_nothing_lost(
    result: Audit, server_errors: list[str], rebuild: dict[str, Any], integrity: str | None
) -> None:
    """The invariants every run under load must keep, whatever it did to the server."""
    assert result.problems == []
    assert server_errors == []
    assert rebuild["tables_differing"] == {}
    assert rebuild["positions_behind_head"] == {}
    assert integrity in (None, "ok")


def publish(name: str, figures: dict[str, Any], journal: Journal | None, workdir: Path) -> Path:
    """Print the figures (``pytest -s``) and write them to var/reliability/<name>.json."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    if journal is not None:
        requests_log = workdir / "requests.jsonl"
        journal.dump(requests_log)
        figures = {**figures, "request_log": str(requests_log)}
    figures = {"test": name, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **figures}
    path = FIGURES_DIR / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"\n[reliability] {name}: {json.dumps(figures, default=str)}")
    return path


def new_run_id() -> str:
    return f"rel-{uuid.uuid4().hex[:8]}"
