"""Liveness sweeps: overdue locks get ``lock_timeout``, silent specialists ``specialist_inactive``
(and the sorties they held ``sortie_released``, see ``application.services.leases``).

Each pass also forgets idempotency keys older than ``FLEET_IDEMPOTENCY_TTL``.

Candidates come from the projections (cheap; they may lag). Each one is then decided
again on the aggregate's fresh state inside ``_write``: one no longer due is skipped,
and when two sweepers race for one stream the loser's retry re-reads it and finds
nothing left to do, so no event is ever recorded twice. Time is passed in (``now``),
so tests need no sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from application.command_scope import command_scope
from application.errors import STORE_UNAVAILABLE, NotFound
from application.idempotency import idempotent_across_writes
from application.periodic import PeriodicThread, repeat
from application.resources import utc_text
from application.services.base import HOT_STREAM_ATTEMPTS, Service
from application.services.leases import release_held
from domain.base import FleetAggregate
from domain.lock import FileLock
from domain.specialist import LIVE, Specialist, specialist_stream_id

log = logging.getLogger(__name__)
DEFAULT_HEARTBEAT_TIMEOUT = 60.0
BATCH = 1000  # candidates of each kind per pass; the next pass takes the rest

Counts = dict[str, int]


class _NotDue(Exception):
    """On fresh state the candidate needs nothing (another sweeper, a heartbeat...)."""


class SweepService(Service):
    _sweeper: PeriodicThread | None = None

    def heartbeat_timeout(self) -> float:
        """Silence (seconds) that makes a live specialist inactive: FLEET_HEARTBEAT_TIMEOUT."""
        raw = self.app.env.get("FLEET_HEARTBEAT_TIMEOUT") or str(DEFAULT_HEARTBEAT_TIMEOUT)
        try:
            seconds = float(raw)
        except ValueError:
            seconds = 0.0
        if not seconds > 0:
            raise ValueError(f"FLEET_HEARTBEAT_TIMEOUT must be a positive number, not {raw!r}")
        return seconds

    @idempotent_across_writes
    def sweep(self, now: datetime | None = None, *, idempotency_key: str | None = None) -> Counts:
        """One pass at ``now`` (default: the clock); how many of each event it recorded."""
        now = self.now() if now is None else now
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime")
        cutoff = now - timedelta(seconds=self.heartbeat_timeout())
        if self.embedded:
            self.projector.catch_up()
        counts = {"locks_expired": 0, "specialists_inactive": 0}
        with command_scope(source="sweep"):
            for stream in self._overdue_locks(now):
                counts["locks_expired"] += self._once(partial(self._expire, stream, now))
            for specialist_id in self._silent_specialists(cutoff):
                counts["specialists_inactive"] += self._once(
                    partial(self._silence, specialist_id, cutoff)
                )
        purged = self.purge_idempotency_keys(now.timestamp())
        if purged:
            log.info("sweep: forgot %d idempotency keys older than FLEET_IDEMPOTENCY_TTL", purged)
        return counts

    def sweep_forever(
        self,
        stop: threading.Event,
        every: float,
        report: Callable[[Counts], Any] | None = None,
    ) -> None:
        """Sweep every ``every`` seconds until ``stop`` is set; a failed pass is logged."""

        def sweep_once() -> None:
            try:
                counts = self.sweep()
            except STORE_UNAVAILABLE as exc:  # busy or unreachable store: not a bug
                log.warning(
                    "sweep skipped, the store is unavailable (%s); the next pass retries", exc
                )
            except Exception:
                log.exception("sweep failed; the next pass retries")
            else:
                if any(counts.values()):
                    log.info("sweep: %s", counts)
                if report is not None:
                    report(counts)

        repeat(stop, every, sweep_once)

    def start_sweeper(
        self, every: float, report: Callable[[Counts], Any] | None = None
    ) -> threading.Thread:
        """Sweep in a daemon thread until ``stop_sweeper`` (``close`` calls it)."""
        self.stop_sweeper()
        self._sweeper = PeriodicThread(
            "fleet-sweeper", lambda stop: self.sweep_forever(stop, every, report)
        )
        return self._sweeper.start()

    def stop_sweeper(self, timeout: float = 10.0) -> None:
        if self._sweeper is not None:
            sweeper, self._sweeper = self._sweeper, None
            sweeper.stop(timeout)

    # One candidate

    def _once(self, decide: Callable[[], list[FleetAggregate]]) -> int:
        try:
            self._write(decide, attempts=HOT_STREAM_ATTEMPTS)
        except (_NotDue, NotFound):
            return 0
        return 1

    def _expire(self, stream: UUID, now: datetime) -> list[FleetAggregate]:
        lock = self._load(FileLock, stream, f"lock stream {stream}")
        if not lock.is_expired(now):
            raise _NotDue
        lock.expire(now)
        return [lock]

    def _silence(self, specialist_id: str, cutoff: datetime) -> list[FleetAggregate]:
        stream = specialist_stream_id(specialist_id)
        specialist = self._load(Specialist, stream, f"specialist {specialist_id!r}")
        if not specialist.is_silent_since(cutoff):
            raise _NotDue
        specialist.mark_inactive("heartbeat_timeout")
        released = release_held(
            self.app, self.projector, specialist_id, "heartbeat_timeout", self.min_position_timeout
        )
        return [specialist, *released]

    # Candidates, from the projections

    def _overdue_locks(self, now: datetime) -> list[UUID]:
        with self.projector.read() as tx:
            rows = tx.fetchall(
                "SELECT stream_id FROM locks_projection WHERE status = 'active' "
                "AND expires_at <= ? ORDER BY expires_at LIMIT ?",
                [utc_text(now), BATCH],
            )
        return list(dict.fromkeys(UUID(row["stream_id"]) for row in rows))

    def _silent_specialists(self, cutoff: datetime) -> list[str]:
        marks = ", ".join("?" * len(LIVE))
        with self.projector.read() as tx:
            rows = tx.fetchall(
                f"SELECT id FROM specialists_projection WHERE status IN ({marks}) "  # noqa: S608 - placeholders only
                "AND last_seen < ? ORDER BY last_seen LIMIT ?",
                [*LIVE, utc_text(cutoff), BATCH],
            )
        return [row["id"] for row in rows]
