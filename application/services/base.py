"""The command loop every service shares: load, check version, decide, save, retry."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.app import FleetApplication
from application.command_scope import ensure_scope, note_position
from application.errors import Conflict, FleetError, NotFound, PreconditionFailed, ValidationError
from application.idempotency import (
    Claim,
    KeyInFlight,
    KeyReused,
    KeyStore,
    Remembered,
    active_claim,
    key_record,
    running,
    ttl_of,
)
from domain.base import FleetAggregate
from domain.errors import DomainError

if TYPE_CHECKING:
    from application.projections import Projector
    from application.waits import LogWatcher

A = TypeVar("A", bound=FleetAggregate)
MAX_ATTEMPTS = 8
View = Callable[[], Any]


class _KeyTaken(Exception):
    """A concurrent write with the same key committed first; this one wrote nothing."""


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
        view: Callable[[A], dict[str, Any]],
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """Load one aggregate, run ``command`` on it and save; returns its ``view``."""
        holder: list[A] = []

        def decide() -> list[FleetAggregate]:
            aggregate = self._load(cls, aggregate_id, label)
            self.check_version(aggregate, expected_version)
            command(aggregate)
            holder[:] = [aggregate]
            return [aggregate]

        result: dict[str, Any] = self._command(
            decide, lambda: view(holder[0]), expected_version=expected_version
        )
        return result

    def _command(
        self, decide: Callable[[], Sequence[FleetAggregate]], view: View, **options: Any
    ) -> Any:
        """``_write``, then the command's result: ``view()`` of the state it wrote.

        Under an idempotency key the view is taken before the commit and remembered with
        the events; that same result is returned (see ``application.idempotency``).
        """
        claim = active_claim()
        if claim is None:
            self._write(decide, **options)
            return view()
        self._write(decide, view=view, **options)
        return claim.result if claim.recorded else view()

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
        view: View | None = None,
    ) -> int:
        """Run ``decide`` (load + command) and save what it returns, atomically.

        A lost race re-runs ``decide`` on fresh state, unless the caller pinned a
        version: then the loser gets ``PreconditionFailed``. ``attempts`` bounds the
        retries (hot streams such as a contested lock need more). Returns the
        position of the last event written.

        Under an idempotency key, a ``view`` that gives a result puts the key in the
        events' transaction; one that gives None (a refusal that records an event, like
        ``lock_conflict``) only probes it there, so the write fails if a twin holds it.
        """
        claim = active_claim()
        with ensure_scope() as scope:
            for attempt in range(attempts):
                try:
                    aggregates = decide()
                except DomainError as exc:
                    raise Conflict(str(exc)) from None
                options: dict[str, Any] = {}
                result = view() if claim is not None and view is not None else None
                if claim is not None and view is not None:
                    options["idempotency"] = key_record(
                        claim, result, scope.created, self._key_ttl(), probe=result is None
                    )
                try:
                    recordings = self.app.save(*aggregates, **options)
                except IntegrityError:
                    if claim is not None and self._remembered(claim) is not None:
                        raise _KeyTaken from None
                    if expected_version is not None:  # another writer got there first
                        current = self._stored_version(aggregates[0].id)
                        raise PreconditionFailed(expected_version, current) from None
                    time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter
                    continue
                if claim is not None and recordings:
                    claim.wrote = True
                    if result is not None:
                        claim.recorded, claim.result = True, result
                elif claim is not None and self._remembered(claim) is not None:
                    raise _KeyTaken  # a repeat that had nothing left to write
                position = recordings[-1].notification.id if recordings else self._head()
                note_position(position)
                self._after_write(position)
                return position
        raise Conflict("too many concurrent writers on this resource; try again")

    # Idempotency keys (``application.idempotency``)

    def _idempotently(self, claim: Claim, run: Callable[[], Any], look_first: bool) -> Any:
        """Run a keyed command once: a repeat of its key gets the remembered result.

        The key is met in the write's own transaction (one statement more, no look-up
        before it): a repeat, or a concurrent twin that lost, fails its write there and
        answers the remembered result; so does one refused because the first had
        already changed the state. ``look_first``: commands of several transactions
        look their key up before they run.
        """
        claim.taken = True
        remembered = self._remembered(claim) if look_first else None
        if remembered is not None:
            return self._replay(remembered)
        try:
            with running(claim):
                result = run()
        except (_KeyTaken, FleetError) as exc:
            remembered = self._remembered(claim)
            if remembered is None:
                if isinstance(exc, _KeyTaken):  # taken, and purged before it could be read
                    raise KeyInFlight(f"the idempotency key {claim.key!r} is in use") from None
                raise
            return self._replay(remembered)
        if claim.wrote and not claim.recorded:
            # A command of several writes (compaction): remembered after them, in a
            # transaction of its own (documented in docs/idempotency.md).
            with ensure_scope() as scope, contextlib.suppress(IntegrityError):  # a twin's
                record = key_record(claim, result, scope.created, self._key_ttl())
                self._keys().insert_key(record, scope.position or self._head())
        return result

    def _remembered(self, claim: Claim) -> Remembered | None:
        """The live record of the claim's key, or None; another request's is a 422."""
        since = time.time() - self._key_ttl()
        remembered = self._keys().select_key(claim.scope, claim.key, since)
        if remembered is not None and remembered.fingerprint != claim.fingerprint:
            raise KeyReused(
                f"the idempotency key {claim.key!r} was used for another request "
                "(method, path or body differ); use a new key for a new request"
            )
        return remembered

    def _replay(self, remembered: Remembered) -> Any:
        with ensure_scope() as scope:
            scope.position = remembered.position
            scope.created = remembered.created
            scope.replayed = True
        return remembered.result

    def _keys(self) -> KeyStore:
        return cast(KeyStore, self.app.recorder)

    def _key_ttl(self) -> float:
        return ttl_of(self.app.env)

    def purge_idempotency_keys(self, now: float | None = None) -> int:
        """Forget keys older than ``FLEET_IDEMPOTENCY_TTL`` (the sweep calls this)."""
        now = time.time() if now is None else now
        return self._keys().purge_keys(now - self._key_ttl())

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
