"""The command loop every service shares: load, check version, decide, save, retry."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
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
                    if expected_version is not None:
                        raise PreconditionFailed(expected_version, None) from None
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


def given(**values: Any) -> dict[str, Any]:
    """The keyword arguments a caller actually passed (``None`` means not given)."""
    return {key: value for key, value in values.items() if value is not None}
