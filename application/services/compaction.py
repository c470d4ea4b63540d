"""Compaction: snapshot the streams that have grown since their last snapshot, record
``context_compacted`` on each, and prune old snapshots under the retention policy.

It works stream by stream. Reads take no lock; each write (one ``context_compacted``
save, one snapshot insert, one snapshot delete) is a short transaction of its own, so
writers never wait behind the job for longer than one of them. The log itself is never
changed: snapshots make reads cheap, they do not replace events.

Settings (``Fleet`` env): ``FLEET_COMPACTION_THRESHOLD`` (events since the last
snapshot that make a stream due, default 100), ``FLEET_SNAPSHOT_KEEP`` (snapshots kept
per stream however old, default 3) and ``FLEET_SNAPSHOT_KEEP_DAYS`` (snapshots younger
than this are kept too, default 7).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from application.app import project_fast
from application.command_scope import command_scope
from application.errors import ValidationError
from application.idempotency import idempotent_across_writes
from application.outcomes import Written
from application.periodic import PeriodicThread, repeat
from application.projections.runner import Projector
from application.resources import iso
from application.services.base import Service
from application.store.archive import DEFAULT_BATCH
from application.store.maintenance import StoreMaintenance
from domain.base import FleetAggregate
from domain.envelope import current_context

log = logging.getLogger(__name__)

Report = dict[str, Any]


@dataclass(frozen=True)
class CompactionPolicy:
    threshold: int = 100
    keep_snapshots: int = 3
    keep_days: float = 7.0
    archive_after_days: float = 30.0
    archive_batch: int = DEFAULT_BATCH

    @classmethod
    def from_env(cls, env: Any) -> CompactionPolicy:
        def number(key: str, default: float, minimum: float) -> float:
            raw = env.get(key) or str(default)
            try:
                value = float(raw)
            except ValueError:
                value = minimum - 1
            if value < minimum:
                raise ValueError(f"{key} must be a number of at least {minimum:g}, not {raw!r}")
            return value

        return cls(
            threshold=int(number("FLEET_COMPACTION_THRESHOLD", cls.threshold, 1)),
            keep_snapshots=int(number("FLEET_SNAPSHOT_KEEP", cls.keep_snapshots, 1)),
            keep_days=number("FLEET_SNAPSHOT_KEEP_DAYS", cls.keep_days, 0),
            archive_after_days=number("FLEET_ARCHIVE_AFTER_DAYS", cls.archive_after_days, 0),
            archive_batch=int(number("FLEET_ARCHIVE_BATCH", cls.archive_batch, 1)),
        )


class CompactionService(Service):
    projector: Projector
    _compactor: PeriodicThread | None = None
    _maintenance: StoreMaintenance | None = None

    @property
    def maintenance(self) -> StoreMaintenance:
        if self._maintenance is None:
            self._maintenance = StoreMaintenance(self.app)
        return self._maintenance

    def compaction_policy(self) -> CompactionPolicy:
        return CompactionPolicy.from_env(self.app.env)

    @idempotent_across_writes
    def compact(
        self,
        stream_id: str | None = None,
        archive: bool = False,
        now: datetime | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        """Run the job once, over every stream past the threshold or over ``stream_id``
        (compacted whenever it has events since its last snapshot); returns the report.

        ``archive`` then moves events behind each stream's latest snapshot that are older
        than ``FLEET_ARCHIVE_AFTER_DAYS`` to the archive (``application.store.archive``).
        """
        policy = self.compaction_policy()
        now = datetime.now(UTC) if now is None else now
        began = time.perf_counter()
        only = self._stream_of(stream_id) if stream_id is not None else None
        heads = self.maintenance.event_heads(only)
        snapshots = self.maintenance.snapshot_heads(only)
        due = sorted(
            stream
            for stream, head in heads.items()
            if head - snapshots.get(stream, 0) >= (1 if only else policy.threshold)
        )
        compacted: list[Report] = []
        # A caller's scope (an HTTP request) keeps its correlation id; else one of our own.
        scope = nullcontext() if current_context() else command_scope(source="compaction")
        with scope:
            for stream in due:
                entry = self._compact_stream(stream, snapshots.get(stream, 0))
                if entry is not None:
                    compacted.append(entry)
        pruned = self._prune_snapshots(policy, now, only)
        archived = self._archive(policy, now, only) if archive else []
        report = {
            "streams_examined": len(heads),
            "streams_compacted": len(compacted),
            "snapshots_pruned": pruned,
            "events_archived": sum(a["events"] for a in archived),
            "compression": self._compressing(),
            "policy": asdict(policy),
            "started_at": iso(now),
            "duration_ms": round((time.perf_counter() - began) * 1000, 1),
            "streams": compacted,
            "archived": archived,
        }
        # The position a read must reach to see the compaction (its own writes or later).
        return Written(report, self._head())

    def _compressing(self) -> bool:
        compressor = self.app.mapper.compressor
        return compressor is not None and compressor.compress(b"{}") != b"{}"

    def _stream_of(self, stream_id: str) -> UUID:
        try:
            stream = UUID(stream_id)
        except (ValueError, TypeError, AttributeError):
            stream = None
        if stream is None or not self.app.recorder.select_events(stream, limit=1):
            raise ValidationError({"stream_id": [f"stream {stream_id!r} does not exist"]})
        return stream

    def _compact_stream(self, stream: UUID, last_snapshot: int) -> Report | None:
        """Record ``context_compacted``, then snapshot the version it got."""
        found: list[Report] = []

        def decide() -> list[FleetAggregate]:
            found.clear()
            aggregate: FleetAggregate = self.app.get(stream)
            latest = self.maintenance.snapshot_heads(stream).get(stream, last_snapshot)
            if aggregate.version <= latest:
                return []  # another compactor (or the save's own snapshot) got here first
            aggregate.record_compaction(from_sequence=latest + 1, to_sequence=aggregate.version)
            found.append(
                {
                    "stream_id": str(stream),
                    "stream_type": type(aggregate).STREAM_TYPE,
                    "from_sequence": latest + 1,
                    "to_sequence": aggregate.version - 1,
                    "snapshot_version": aggregate.version,
                }
            )
            return [aggregate]

        self._write(decide)
        if not found:
            return None
        version = found[0]["snapshot_version"]
        if version not in self._snapshot_versions(stream, version):
            # IntegrityError: taken meanwhile, by the save's interval or another compactor
            with contextlib.suppress(IntegrityError):
                self.app.take_snapshot(stream, version, projector_func=project_fast)
        return found[0]

    def _snapshot_versions(self, stream: UUID, version: int) -> list[int]:
        assert self.app.snapshots is not None  # noqa: S101 - FleetApplication always has one
        return [s.originator_version for s in self.app.snapshots.get(stream, gt=version - 1)]

    def _prune_snapshots(self, policy: CompactionPolicy, now: datetime, only: UUID | None) -> int:
        """Per stream, keep the newest ``keep_snapshots`` and any younger than ``keep_days``."""
        if self.app.snapshots is None:
            return 0
        cutoff = now - timedelta(days=policy.keep_days)
        pruned = 0
        for stream in self.maintenance.crowded_streams(policy.keep_snapshots, only):
            rows = self.app.snapshots.recorder.select_events(stream, desc=True)
            newest = [s.originator_version for s in rows]
            older = newest[policy.keep_snapshots :]
            if not older:
                continue
            snapshots: Any = self.app.snapshots.get(stream, lte=older[0], desc=True)
            expired = [s.originator_version for s in snapshots if s.timestamp < cutoff]
            pruned += self.maintenance.delete_snapshots(stream, expired)
        return pruned

    # Archive

    def _archive(self, policy: CompactionPolicy, now: datetime, only: UUID | None) -> list[Report]:
        """Move each stream's old events behind its latest snapshot to the archive.

        The archive enforces the rest of the rules (never version 1, never the stream's
        newest event nor the table's newest row); here: only up to the latest snapshot,
        only events older than the retention age, only positions every projection has.
        """
        archive = self.app.archive
        if archive is None:
            raise ValidationError({"archive": ["an in-memory SQLite store has no archive"]})
        horizon = self.projector.min_position()  # a stale value is only more careful
        cutoff = now - timedelta(days=policy.archive_after_days)
        moved: list[Report] = []
        for stream, snapshot in sorted(self.maintenance.snapshot_heads(only).items()):
            last_old = self._last_version_before(stream, cutoff, snapshot)
            if last_old < 2:
                continue
            count = archive.move(stream, last_old, horizon, policy.archive_batch)
            if count:
                moved.append({"stream_id": str(stream), "to_version": last_old, "events": count})
        return moved

    def _last_version_before(self, stream: UUID, cutoff: datetime, highest: int) -> int:
        """The highest version up to ``highest`` recorded before ``cutoff`` (0 if none).

        A stream's event times grow with its versions, so a binary search reads a few
        events only.
        """

        def recorded(version: int) -> datetime:
            event: Any = next(iter(self.app.events.get(stream, gt=version - 1, lte=version)))
            return cast(datetime, event.timestamp)

        low, high = 0, highest  # recorded(low) < cutoff (or low == 0); find the last such
        while low < high:
            middle = (low + high + 1) // 2
            if recorded(middle) < cutoff:
                low = middle
            else:
                high = middle - 1
        return low

    # Schedule

    def compact_forever(
        self, stop: threading.Event, every: float, report: Callable[[Report], Any] | None = None
    ) -> None:
        """Compact every ``every`` seconds until ``stop`` is set; a failed pass is logged."""

        def compact_once() -> None:
            try:
                result = self.compact()
            except Exception:
                log.exception("compaction failed; the next pass retries")
                return
            if result["streams_compacted"] or result["snapshots_pruned"]:
                log.info(
                    "compaction: %s streams, %s snapshots pruned",
                    result["streams_compacted"],
                    result["snapshots_pruned"],
                )
            if report is not None:
                report(result)

        repeat(stop, every, compact_once, wait_first=True)

    def start_compactor(
        self, every: float, report: Callable[[Report], Any] | None = None
    ) -> threading.Thread:
        """Compact in a daemon thread until ``stop_compactor`` (``close`` calls it)."""
        self.stop_compactor()
        self._compactor = PeriodicThread(
            "fleet-compactor", lambda stop: self.compact_forever(stop, every, report)
        )
        return self._compactor.start()

    def stop_compactor(self, timeout: float = 30.0) -> None:
        if self._compactor is not None:
            compactor, self._compactor = self._compactor, None
            compactor.stop(timeout)
