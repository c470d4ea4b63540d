"""File locks: one active lock per normalised path, decided by the store.

The lock aggregate's id is derived from the normalised path, so two acquirers of
a free path both write the same version of the same stream: the store's
optimistic concurrency lets exactly one save succeed, and the loser's retry
(``_write`` re-runs ``decide`` on fresh state) finds the winner holding the path.
A refused acquisition is saved too (``lock_conflict``) before the 409 is raised,
so the log shows every contest. Each acquisition gets its own lock id; the
``locks_projection`` maps lock ids to path streams.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from application.errors import Conflict, Forbidden, NotFound, ValidationError
from application.idempotency import idempotent
from application.outcomes import Written
from application.registry import get_event_type
from application.resources import iso, lock_resource
from application.services.base import HOT_STREAM_ATTEMPTS, Service, given
from domain.base import FleetAggregate
from domain.errors import RuleError
from domain.lock import LOCK_STATUSES, FileLock, NotLockOwner, lock_stream_id, normalize_path

# A list of locks shows one status, or every status with ``all``.
ALL_STATUSES = "all"
LOCK_STATUS_FILTERS = (*LOCK_STATUSES, ALL_STATUSES)
MAX_ID = 128


class LockService(Service):
    @idempotent
    def acquire_lock(
        self,
        file: str,
        specialist_id: str,
        timeout_ms: int | None = None,
        purpose: str | None = None,
        checksum: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        """Take the lock of ``file``'s normalised path, or raise ``Conflict`` naming the
        holder (``.extra["lock"]``) after recording ``lock_conflict``."""
        data, path = self._acquisition(file, specialist_id, timeout_ms, purpose, checksum)
        stream = lock_stream_id(path)
        lock_id = str(uuid4())
        outcome: dict[str, Any] = {}

        def decide() -> list[FleetAggregate]:
            now = self.now()
            outcome.clear()
            try:
                lock: FileLock = self.app.get(stream)
            except AggregateNotFoundError:
                lock = FileLock.acquire_new(lock_id=lock_id, now=now, **data)
            else:
                if lock.holds(now):
                    lock.record_conflict(data["specialist_id"], now)
                    outcome["holder"] = {
                        "id": lock.lock_id,
                        "reserved_by": lock.specialist_id,
                        "expires_at": iso(lock.expires_at),
                    }
                else:
                    lock.acquire(lock_id=lock_id, now=now, **data)
            outcome["lock"] = lock
            return [lock]

        def view() -> dict[str, Any] | None:
            """The lock taken; None when refused (a refusal is never remembered)."""
            return None if "holder" in outcome else lock_resource(outcome["lock"])

        result = self._command_or_refusal(decide, view, attempts=HOT_STREAM_ATTEMPTS)
        holder = outcome.get("holder")
        if holder is not None:
            raise Conflict(
                f"{path!r} is locked by {holder['reserved_by']!r} until {holder['expires_at']}",
                lock=holder,
            )
        assert result is not None  # noqa: S101 - the view gives the lock when it was taken
        return result

    @idempotent
    def release_lock(
        self,
        lock_id: str,
        specialist_id: str,
        force: bool = False,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        """The holder releases; anyone else only with ``force`` (else ``Forbidden``)."""
        _check_actor(specialist_id)
        if not isinstance(force, bool):
            raise ValidationError({"force": ["must be true or false"]})
        stream = self._lock_stream(lock_id)
        holder: list[FileLock] = []

        def decide() -> list[FleetAggregate]:
            lock = self._load(FileLock, stream, f"lock {lock_id!r}")
            self.check_version(lock, expected_version)
            try:
                lock.release(lock_id, specialist_id, force)
            except NotLockOwner as exc:
                raise Forbidden(str(exc)) from None
            holder[:] = [lock]
            return [lock]

        result = self._command(
            decide,
            lambda: lock_resource(holder[0]),
            expected_version=expected_version,
            attempts=HOT_STREAM_ATTEMPTS,
        )
        return result

    def get_lock(self, lock_id: str) -> dict[str, Any]:
        """A path's current lock is read from its aggregate; an ended one from its row."""
        row = self._lock_row(lock_id)
        lock = self._load(FileLock, UUID(row["stream_id"]), f"lock {lock_id!r}")
        if lock.lock_id == lock_id:
            return lock_resource(lock)
        resource: dict[str, Any] = json.loads(row["resource"])
        return resource

    def list_locks(
        self,
        status: str | None = "active",
        specialist_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Locks oldest first; active ones by default, every status with ``None`` or ``all``."""
        if status == ALL_STATUSES:
            status = None
        if status is not None and status not in LOCK_STATUSES:
            choices = ", ".join(LOCK_STATUS_FILTERS)
            raise ValidationError({"status": [f"must be one of: {choices}"]})
        return self._page(
            "locks_projection",
            [("t.status", status), ("t.reserved_by", specialist_id)],
            "t.reserved_at, t.id",
            limit,
            offset,
            min_position,
        )

    # Helpers

    def _acquisition(
        self,
        file: str,
        specialist_id: str,
        timeout_ms: int | None,
        purpose: str | None,
        checksum: str | None,
    ) -> tuple[dict[str, Any], str]:
        """The checked ``acquire`` arguments and the normalised path; errors name ``file``."""
        raw = given(
            file_path=file,
            specialist_id=specialist_id,
            timeout_ms=timeout_ms,
            purpose=purpose,
            checksum=checksum,
        )
        try:
            data = get_event_type("lock_acquired").validate(
                raw, partial=("lock_id", "normalized_path", "expires_at")
            )
            path = normalize_path(data["file_path"])
        except ValidationError as exc:
            raise ValidationError(
                {
                    "file" if name == "file_path" else name: texts
                    for name, texts in exc.errors.items()
                }
            ) from None
        except RuleError as exc:
            raise ValidationError({"file": [str(exc)]}) from None
        return data, path

    def _lock_row(self, lock_id: str) -> Any:
        """The lock's row; when absent, after the projections caught up with the log."""
        if not isinstance(lock_id, str) or not 0 < len(lock_id) <= MAX_ID or "\x00" in lock_id:
            raise NotFound(f"lock {lock_id!r} not found")
        for attempt in range(2):
            if attempt:
                self._catch_up()
            with self.projector.read() as tx:
                rows = tx.fetchall(
                    "SELECT stream_id, resource FROM locks_projection WHERE id = ?", [lock_id]
                )
            if rows:
                return rows[0]
        raise NotFound(f"lock {lock_id!r} not found")

    def _lock_stream(self, lock_id: str) -> UUID:
        return UUID(self._lock_row(lock_id)["stream_id"])

    def _catch_up(self) -> None:
        if self.embedded:
            self.projector.catch_up()
        else:
            self.projector.wait_for(self._head(), self.min_position_timeout)


def _check_actor(specialist_id: str) -> None:
    """A lock's ``specialist_id`` is a free-form id: 1-128 characters."""
    get_event_type("lock_released").validate(
        {"specialist_id": specialist_id}, partial=("lock_id", "reason")
    )
