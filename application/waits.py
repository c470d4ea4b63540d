"""Waiting for the log: long-polls and live feeds park here until an event they care about.

One ``LogWatcher`` per ``Fleet`` (so one per process) learns of new events and wakes only
the waiters whose filter matches one of them; a woken waiter then runs its own read again.
It learns of this process's writes at once, from the write itself (``notify``: no query),
and of other processes' (other gunicorn workers, other hosts on PostgreSQL, the CLI) by
reading the event index past the last position it saw every ``poll`` seconds, only while
someone waits: one indexed query, whatever the number of waiters and writes, answering
only the new rows (type, stream, correlation), which are matched in memory. Rows this
process already announced are not announced again.

A waiter registers before its first read: an event committed after that read is past the
watcher's position at registration, so it is matched and wakes the waiter. Closing the
watcher (a stopping server, ``Fleet.close``) wakes every waiter, which then answers what
it has.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from application.errors import Unavailable, ValidationError

log = logging.getLogger(__name__)

MAX_WAIT = 30.0  # seconds: the longest wait a request may ask for
POLL = 0.05  # seconds between reads of the index while someone waits
BATCH = 500  # new events read per query


@dataclass(frozen=True)
class Seen:
    """What a waiter's filter can look at: an event's index row."""

    position: int
    event_type: str
    stream_id: str
    correlation_id: str


T = TypeVar("T")


@dataclass(frozen=True)
class Interest:
    """Which events wake a waiter: each given criterion narrows (none given: every event)."""

    types: frozenset[str] = frozenset()
    stream_id: str | None = None
    correlation_id: str | None = None

    def matches(self, seen: Seen) -> bool:
        return (
            (not self.types or seen.event_type in self.types)
            and (self.stream_id is None or seen.stream_id == self.stream_id)
            and (self.correlation_id is None or seen.correlation_id == self.correlation_id)
        )

    def index_keys(self) -> list[tuple[str, str]]:
        """Where the registry files this waiter: by its most selective criterion."""
        if self.stream_id is not None:
            return [("stream", self.stream_id)]
        if self.correlation_id is not None:
            return [("correlation", self.correlation_id)]
        return [("type", t) for t in sorted(self.types)] or [("any", "")]


def event_keys(seen: Seen) -> list[tuple[str, str]]:
    return [
        ("stream", seen.stream_id),
        ("correlation", seen.correlation_id),
        ("type", seen.event_type),
        ("any", ""),
    ]


def check_wait(wait: float | None) -> float:
    """Seconds to wait: a number from 0 to 30 (decimals allowed); None means 0."""
    if wait is None:
        return 0.0
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not math.isfinite(wait):
        raise ValidationError({"wait": ["must be a number of seconds from 0 to 30"]})
    if not 0 <= wait <= MAX_WAIT:
        raise ValidationError({"wait": [f"must be from 0 to {MAX_WAIT:g} seconds"]})
    return float(wait)


class Waiter:
    def __init__(self, interest: Interest):
        self.interest = interest
        self.position = 0  # the last matching event's position
        self._woken = threading.Event()

    def wake(self, position: int | None = None) -> None:
        if position is not None:
            self.position = max(self.position, position)
        self._woken.set()

    def wait(self, timeout: float) -> bool:
        """True when woken (a matching event, or the watcher closing) within ``timeout``."""
        woken = self._woken.wait(max(timeout, 0))
        self._woken.clear()
        return woken


class LogWatcher:
    def __init__(
        self,
        head: Callable[[], int],
        read_after: Callable[[int, int], list[Seen]],
        poll: float = POLL,
        max_waiters: int = 240,
    ):
        self._head = head
        self._read_after = read_after
        self.poll = poll
        self.max_waiters = max_waiters
        self._lock = threading.Lock()
        self._waiters: set[Waiter] = set()
        # Waiters filed by ``Interest.index_keys``: an event looks up its own few keys, so waking
        # costs per matching waiter, not per waiter.
        self._index: dict[tuple[str, str], set[Waiter]] = {}
        self._position: int | None = None  # events up to here were dispatched
        self._announced: set[int] = set()  # positions ``notify`` dispatched, not yet polled
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once ``close`` ran: every wait ends, new ones end at once."""
        return self._closed

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def notify(self, rows: list[tuple[int, str, str, str]]) -> None:
        """This process committed these events: wake their waiters now, without a query."""
        with self._lock:
            if not self._waiters:
                return
            self._announced.update(row[0] for row in rows)
        self._wake([Seen(*row) for row in rows])

    def _wake(self, seen: list[Seen]) -> None:
        """Wake each waiter that one of ``seen`` interests, with the last such position."""
        woken: dict[Waiter, int] = {}
        with self._lock:
            for event in seen:
                for key in event_keys(event):
                    for waiter in self._index.get(key, ()):
                        if waiter.interest.matches(event):
                            woken[waiter] = event.position
        for waiter, position in woken.items():
            waiter.wake(position)

    @contextmanager
    def watching(self, interest: Interest) -> Iterator[Waiter]:
        """Register a waiter for the events of ``interest``, for the ``with`` block."""
        waiter = Waiter(interest)
        with self._lock:
            if len(self._waiters) >= self.max_waiters:
                raise Unavailable(
                    f"this server holds its maximum of {self.max_waiters} open waits "
                    "(FLEET_MAX_WAITERS); retry shortly"
                )
            if self._position is None:  # first waiter: start from the head of the log
                self._position = self._head()
            self._waiters.add(waiter)
            for key in interest.index_keys():
                self._index.setdefault(key, set()).add(waiter)
            if self.closed:
                waiter.wake()
            self._start()
        try:
            yield waiter
        finally:
            with self._lock:
                self._waiters.discard(waiter)
                for key in interest.index_keys():
                    filed = self._index.get(key)
                    if filed is not None:
                        filed.discard(waiter)
                        if not filed:
                            del self._index[key]
                if not self._waiters:
                    self._position = None
                    self._announced.clear()

    def first(
        self,
        wait: float,
        interest: Interest,
        attempt: Callable[[int], T],
        found: Callable[[T], bool],
    ) -> T:
        """``attempt`` until ``found`` accepts its answer or ``wait`` seconds pass.

        ``attempt`` gets the position of the last matching event seen (0 at first), so a
        read of the projections can wait until they applied it.
        """
        if wait <= 0:
            return attempt(0)
        deadline = time.monotonic() + wait
        with self.watching(interest) as waiter:
            while True:
                result = attempt(waiter.position)
                remaining = deadline - time.monotonic()
                if found(result) or remaining <= 0 or self.closed:
                    return result
                waiter.wait(remaining)
                if self._closed:  # stopping: answer what there is, read nothing more
                    return result

    def close(self) -> None:
        """End every wait now (they answer what they have) and stop the thread."""
        with self._lock:
            self._closed = True
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.wake()
        self._closing.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    # The watching thread

    def _start(self) -> None:
        if self._thread is None and not self.closed:
            self._thread = threading.Thread(target=self._run, name="fleet-log-watcher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        failures = 0
        while not self.closed:
            self._closing.wait(self.poll)
            self._closing.clear()
            try:
                self._dispatch()
                failures = 0
            except Exception:  # a store hiccup: log once in a while, keep watching
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.exception("log watcher: reading new events failed (%s times)", failures)
                time.sleep(min(0.05 * failures, 1.0))

    def _dispatch(self) -> None:
        with self._lock:
            position = self._position
        if position is None or self.closed:
            return
        while True:
            seen = self._read_after(position, BATCH)
            if not seen:
                return
            with self._lock:
                if self._position is None:  # everyone left meanwhile
                    return
                self._position = seen[-1].position
                fresh = [s for s in seen if s.position not in self._announced]
                self._announced = {p for p in self._announced if p > seen[-1].position}
            self._wake(fresh)
            position = seen[-1].position
            if len(seen) < BATCH:
                return
