"""Load: client threads issuing a weighted mix of Fleet's commands and reads.

The invariants only mean something if the load exercises what can go wrong: concurrent
writers on the same sorties, locks and mailboxes, conditional writes (``If-Match``),
reads that must see a client's own last write (``min_position``). ``Traffic`` keeps a
shared picture of the world built from acknowledged answers (``World``), so that its
commands mostly make sense (patch a sortie that exists, to a status it can reach) while
still racing with each other.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.harness.journal import Client, Journal, Record


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
