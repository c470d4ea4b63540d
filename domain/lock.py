"""File locks: at most one active lock per normalised path.

One stream per normalised path, so two agents racing for a file both write
version n+1 of the same stream and the store's optimistic concurrency lets
exactly one win. The stream holds the path's current lock; each acquisition
has its own ``lock_id``. The first acquisition opens the stream (``Created``,
topic ``lock_acquired``); later ones are ``Acquired`` (``lock_acquired.again``).

Time is passed in (``now``, timezone-aware) so expiry is decided on real
datetimes and tests need no sleeping. A lock expires at ``expires_at``
exactly (``now >= expires_at``); until ``lock_timeout`` is recorded its status
stays ``active``, and ``holds(now)`` tells whether it still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import FleetAggregate, Lifecycle
from domain.errors import RuleError

LOCK_PURPOSES = ("edit", "read", "delete")
DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 86_400_000
# ``lock_released``'s reason: the holder released it, or someone else did with ``force``.
LOCK_RELEASE_REASONS = ("explicit", "forced")

LOCK_LIFECYCLE = Lifecycle(
    "lock",
    {
        "active": {"released", "force_released", "expired"},
        "released": {"active"},
        "expired": {"active"},
        "force_released": {"active"},
    },
)
LOCK_STATUSES = LOCK_LIFECYCLE.statuses


class NotLockOwner(RuleError):
    """Someone other than the holder asked to release without ``force``."""


def normalize_path(file: str) -> str:
    """POSIX-normalise ``file``: ``a//b/./c/../d/`` → ``a/b/d``.

    Absolute paths stay absolute (``/a`` and ``a`` are different files), and
    a leading ``//`` counts as ``/``. Backslashes are ordinary characters.
    Refused with RuleError: an empty path, a NUL character, a ``..`` that
    climbs above the start (``../x``, ``a/../../x``, ``/../x``), and a path
    naming no file (``.``, ``/``, ``a/..``).
    """
    if not isinstance(file, str) or not file.strip():
        raise RuleError("file path must not be empty")
    if "\x00" in file:
        raise RuleError("file path must not contain a NUL character")
    parts: list[str] = []
    for part in file.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise RuleError(f"file path {file!r} climbs above its root")
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise RuleError(f"file path {file!r} names no file")
    root = "/" if file.startswith("/") else ""
    return root + "/".join(parts)


def lock_stream_id(normalized_path: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"fleet:/locks/{normalized_path}")


def _aware(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now


@dataclass(frozen=True, kw_only=True)
class LockTaken:
    """The data of lock_acquired, shared by its stream-starting and later classes."""

    lock_id: str
    file_path: str
    normalized_path: str
    specialist_id: str
    purpose: str
    timeout_ms: int
    expires_at: datetime
    checksum: str | None = None


class FileLock(FleetAggregate):
    TOPIC = "lock"
    STREAM_TYPE = "lock"
    DATETIME_FIELDS = frozenset({"reserved_at", "expires_at", "released_at"})
    LIFECYCLE = LOCK_LIFECYCLE

    @staticmethod
    def create_id(normalized_path: str) -> UUID:
        return lock_stream_id(normalized_path)

    class Created(LockTaken, FleetAggregate.Created):
        """The path's first lock opens the stream."""

        TOPIC = "lock_acquired"
        event_type = "lock_acquired"

        def apply(self, aggregate: FileLock) -> None:
            aggregate._open(self)

    class Acquired(LockTaken, FleetAggregate.Event):
        """A later lock on the same path: same public type, not a stream start."""

        TOPIC = "lock_acquired.again"
        event_type = "lock_acquired"

        def apply(self, aggregate: FileLock) -> None:
            aggregate._hold(self)

    class Conflicted(FleetAggregate.Event):
        TOPIC = "lock_conflict"
        event_type = "lock_conflict"
        requesting_specialist: str
        holding_specialist: str
        existing_lock_id: str

        def apply(self, aggregate: FileLock) -> None:
            aggregate.conflicts += 1

    class Released(FleetAggregate.Event):
        TOPIC = "lock_released"
        event_type = "lock_released"
        lock_id: str
        specialist_id: str
        reason: str

        def apply(self, aggregate: FileLock) -> None:
            aggregate.status = "force_released" if self.reason == "forced" else "released"
            aggregate.released_by = self.specialist_id
            aggregate.released_at = self.timestamp

    class Timeout(FleetAggregate.Event):
        TOPIC = "lock_timeout"
        event_type = "lock_timeout"
        lock_id: str
        specialist_id: str
        expired_at: datetime

        def apply(self, aggregate: FileLock) -> None:
            aggregate.status = "expired"
            aggregate.released_by = None
            aggregate.released_at = self.expired_at

    def _open(self, event: Created) -> None:
        self.normalized_path: str = event.normalized_path
        self.conflicts = 0
        self._hold(event)

    def _hold(self, event: LockTaken) -> None:
        self.lock_id = event.lock_id
        self.file_path = event.file_path
        self.specialist_id = event.specialist_id
        self.purpose = event.purpose
        self.timeout_ms = event.timeout_ms
        self.checksum = event.checksum
        self.expires_at = event.expires_at
        self.reserved_at = event.expires_at - timedelta(milliseconds=event.timeout_ms)
        self.status = "active"
        self.released_by: str | None = None
        self.released_at: datetime | None = None

    # Queries.

    def is_expired(self, now: datetime) -> bool:
        """True when the lock is still recorded active but its time ran out at ``now``."""
        now = _aware(now)
        return self.status == "active" and now >= self.expires_at

    def holds(self, now: datetime) -> bool:
        """True when the current lock is active and unexpired at ``now``."""
        now = _aware(now)
        return self.status == "active" and now < self.expires_at

    # Commands: check the rule, then record the event.

    @classmethod
    def acquire_new(
        cls,
        lock_id: str,
        file_path: str,
        specialist_id: str,
        now: datetime,
        purpose: str = "edit",
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        checksum: str | None = None,
    ) -> FileLock:
        """The first lock ever taken on this path (opens its stream)."""
        data = _acquisition(lock_id, file_path, specialist_id, now, purpose, timeout_ms, checksum)
        return cls._create(cls.Created, **data)

    def acquire(
        self,
        lock_id: str,
        file_path: str,
        specialist_id: str,
        now: datetime,
        purpose: str = "edit",
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        checksum: str | None = None,
    ) -> None:
        """Take the path; an expired holder gets ``lock_timeout`` first."""
        data = _acquisition(lock_id, file_path, specialist_id, now, purpose, timeout_ms, checksum)
        if data["normalized_path"] != self.normalized_path:
            raise RuleError(
                f"file {file_path!r} is not {self.normalized_path!r}, the path of this lock"
            )
        if self.holds(now):
            raise RuleError(
                f"{self.normalized_path!r} is locked by {self.specialist_id!r} "
                f"until {self.expires_at.isoformat()}"
            )
        if self.is_expired(now):
            self.expire(now)
        self.trigger_event(self.Acquired, **data)

    def record_conflict(self, requesting_specialist: str, now: datetime) -> None:
        """Note that ``requesting_specialist`` asked for the path while it was held."""
        if not self.holds(now):
            raise RuleError(f"{self.normalized_path!r} is not held; there is no conflict")
        self.trigger_event(
            self.Conflicted,
            requesting_specialist=requesting_specialist,
            holding_specialist=self.specialist_id,
            existing_lock_id=self.lock_id,
        )

    def release(self, lock_id: str, specialist_id: str, force: bool = False) -> None:
        """The holder releases (``explicit``); anyone else only with ``force`` (``forced``)."""
        self._check_current(lock_id)
        owner = specialist_id == self.specialist_id
        target = "released" if owner else "force_released"
        self.LIFECYCLE.check(self.status, target)
        if not owner and not force:
            raise NotLockOwner(
                f"lock {lock_id} is held by {self.specialist_id!r}, not {specialist_id!r}; "
                "only the holder may release it without force"
            )
        self.trigger_event(
            self.Released,
            lock_id=lock_id,
            specialist_id=specialist_id,
            reason="explicit" if owner else "forced",
        )

    def expire(self, now: datetime) -> None:
        """Record ``lock_timeout`` for an active lock whose time has run out at ``now``."""
        self.LIFECYCLE.check(self.status, "expired")
        if not self.is_expired(now):
            raise RuleError(
                f"lock {self.lock_id} does not expire until {self.expires_at.isoformat()}"
            )
        self.trigger_event(
            self.Timeout,
            lock_id=self.lock_id,
            specialist_id=self.specialist_id,
            expired_at=self.expires_at,
        )

    def _check_current(self, lock_id: str) -> None:
        if lock_id != self.lock_id:
            raise RuleError(f"lock {lock_id} is not the current lock of {self.normalized_path!r}")


def _acquisition(
    lock_id: str,
    file_path: str,
    specialist_id: str,
    now: datetime,
    purpose: str,
    timeout_ms: int,
    checksum: str | None,
) -> dict[str, Any]:
    """Check an acquisition's inputs; the ``lock_acquired`` data they give."""
    if purpose not in LOCK_PURPOSES:
        raise RuleError(f"purpose must be one of {', '.join(LOCK_PURPOSES)}, not {purpose!r}")
    if (
        isinstance(timeout_ms, bool)
        or not isinstance(timeout_ms, int)
        or not 1 <= timeout_ms <= MAX_TIMEOUT_MS
    ):
        raise RuleError(f"timeout_ms must be an integer from 1 to {MAX_TIMEOUT_MS}")
    return {
        "lock_id": lock_id,
        "file_path": file_path,
        "normalized_path": normalize_path(file_path),
        "specialist_id": specialist_id,
        "purpose": purpose,
        "timeout_ms": timeout_ms,
        "expires_at": _aware(now) + timedelta(milliseconds=timeout_ms),
        "checksum": checksum,
    }
