"""The command loop every service shares: load, check version, decide, save, retry."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.app import FleetApplication
from application.context import ensure_scope, note_position
from application.errors import Conflict, NotFound, PreconditionFailed, ValidationError
from domain.base import FleetAggregate
from domain.errors import DomainError

if TYPE_CHECKING:
    from application.projections import Projector
    from application.waits import LogWatcher

A = TypeVar("A", bound=FleetAggregate)
MAX_ATTEMPTS = 8


class Service:
    """Base of the services that make up ``Fleet``; holds the one application."""

    app: FleetApplication
    projector: Projector
    watcher: LogWatcher
    min_position_timeout: float = 5.0

    def _load(self, cls: type[A], aggregate_id: UUID, label: str, version: int | None = None) -> A:
        try:
            aggregate = self.app.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"{label} not found") from None
        if not isinstance(aggregate, cls):
            raise NotFound(f"{label} not found")
        if version is not None and aggregate.version != version:
            raise NotFound(f"{label} has no version {version}")
        return aggregate

    def _version_at(self, aggregate_id: UUID, as_of: datetime, label: str) -> int:
        """The version a stream had at ``as_of`` (a timezone-aware time)."""
        if as_of.tzinfo is None:
            raise ValidationError({"as_of": ["must include a timezone, e.g. 2026-01-01T00:00:00Z"]})
        version: int | None = None
        event: Any
        for event in self.app.events.get(aggregate_id):
            if event.timestamp > as_of:
                break
            version = event.originator_version
        if version is None:
            raise NotFound(f"{label} did not exist at {as_of.isoformat()}")
        return version

    def _change(
        self,
        cls: type[A],
        aggregate_id: UUID,
        label: str,
        command: Callable[[A], None],
        expected_version: int | None = None,
    ) -> A:
        """Load one aggregate, run ``command`` on it and save; returns the new state."""
        holder: list[A] = []

        def decide() -> list[FleetAggregate]:
            aggregate = self._load(cls, aggregate_id, label)
            self.check_version(aggregate, expected_version)
            command(aggregate)
            holder[:] = [aggregate]
            return [aggregate]

        self._write(decide, expected_version=expected_version)
        return holder[0]

    @staticmethod
    def check_version(aggregate: FleetAggregate, expected_version: int | None) -> None:
        if expected_version is not None and aggregate.version != expected_version:
            raise PreconditionFailed(expected_version, aggregate.version)

    def _write(
        self,
        decide: Callable[[], Sequence[FleetAggregate]],
        *,
        expected_version: int | None = None,
        attempts: int = MAX_ATTEMPTS,
    ) -> int:
        """Run ``decide`` (load + command) and save what it returns, atomically.

        A lost race re-runs ``decide`` on fresh state, unless the caller pinned a
        version: then the loser gets ``PreconditionFailed``. ``attempts`` bounds the
        retries (hot streams such as a contested lock need more). Returns the
        position of the last event written.
        """
        with ensure_scope():
            for attempt in range(attempts):
                try:
                    aggregates = decide()
                except DomainError as exc:
                    raise Conflict(str(exc)) from None
                try:
                    recordings = self.app.save(*aggregates)
                except IntegrityError:
                    if expected_version is not None:  # another writer got there first
                        current = self._stored_version(aggregates[0].id)
                        raise PreconditionFailed(expected_version, current) from None
                    time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter
                    continue
                position = recordings[-1].notification.id if recordings else self._head()
                note_position(position)
                self._after_write(position)
                return position
        raise Conflict("too many concurrent writers on this resource; try again")

    def _after_write(self, position: int) -> None:
        """Hook: the embedded projector applies the new events here."""

    def _head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def _stored_version(self, aggregate_id: UUID) -> int:
        """The version of a stream as stored now (0: no events yet)."""
        last = self.app.recorder.select_events(aggregate_id, desc=True, limit=1)
        return last[0].originator_version if last else 0

    def _existing_position(self, min_position: int | None) -> None:
        """A ``min_position`` no event has yet is the caller's error, answered at once.

        Every position a write reports is committed before it is reported, so waiting for
        one beyond the log's head would only hold a server thread until the timeout.
        """
        if min_position is not None and min_position > (head := self._head()):
            raise ValidationError(
                {"min_position": [f"no event has position {min_position} yet (the head is {head})"]}
            )


class FieldErrors:
    """Field errors gathered over several checks, so that one 422 names every bad field."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    @contextmanager
    def check(self) -> Iterator[None]:
        """Run a check that raises ``ValidationError``; keep its errors and go on.

        A field already named keeps its first messages (the more specific ones).
        """
        try:
            yield
        except ValidationError as exc:
            for name, messages in exc.errors.items():
                self.errors.setdefault(name, messages)

    def raise_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def given(**values: Any) -> dict[str, Any]:
    """The keyword arguments a caller actually passed (``None`` means not given)."""
    return {key: value for key, value in values.items() if value is not None}
