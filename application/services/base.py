"""The command loop every service shares: load, check version, decide, save, retry."""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, Recording

from application.app import DecisionReads, FleetApplication, recording_reads
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
from application.outcomes import Written
from application.store.indexing import StaleReads
from application.store.query import LogRead
from domain.base import FleetAggregate
from domain.errors import DomainError

if TYPE_CHECKING:
    from application.projections import Projector
    from application.waits import LogWatcher

A = TypeVar("A", bound=FleetAggregate)
MAX_ATTEMPTS = 8
# Streams that many writers append to by nature (a lock everyone races for, a mailbox
# every sender writes to): each loser of a race retries on the same stream, so a write
# may need as many attempts as there are contenders.
HOT_STREAM_ATTEMPTS = 64
# After a lost race a writer pauses a random time up to a bound that doubles from the first
# to the most (1, 2, 4 ... 100 ms): writers crowding one stream spread out instead of
# colliding again in step. Before the eighth attempt the bounds add up to 127 ms.
RETRY_PAUSE_FIRST = 0.001
RETRY_PAUSE_MOST = 0.1
MAX_LIMIT = 1000  # rows a list page may ask for
View = Callable[[], dict[str, Any] | None]


def retry_pause(attempt: int) -> float:
    """Seconds to wait after losing race number ``attempt`` (from 0): full jitter."""
    bound = min(RETRY_PAUSE_MOST, RETRY_PAUSE_FIRST * 2**attempt)
    return random.uniform(0, bound)  # noqa: S311 - spreads retries, not a secret


class _KeyTaken(Exception):
    """A concurrent write with the same key committed first; this one wrote nothing."""


class OptimisticLoads:
    """Whether a command's first attempt decides on the cached aggregates as they are.

    Such an attempt reads nothing of the log: an aggregate is the cached one as it is, and
    one not cached is taken as not begun (a registration's new stream). Its write confirms
    them, as every command's write confirms what it read (``Service._decide``).
    Otherwise (a refusal, a failed insert, a stale copy) the command decides again on the
    log's state at once. It saves the read of newer events before every
    command (a round trip on PostgreSQL) wherever one process writes the streams it caches.
    Where several do (workers on one database), a stale copy is likely again soon, and each
    costs an attempt: after one, the next ``BACK_OFF`` commands read the log first.
    (``FLEET_OPTIMISTIC_LOADS=0`` turns it off.)
    """

    BACK_OFF = 64

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.reading_first = 0  # commands left that read the log first (approximate)

    def now(self) -> bool:
        """Whether this command's first attempt decides on the cached copies."""
        if not self.enabled:
            return False
        if self.reading_first > 0:
            self.reading_first -= 1
            return False
        return True

    def stale(self) -> None:
        """A cached copy was behind the log: read the log first for a while."""
        self.reading_first = self.BACK_OFF


@dataclass
class Foundation:
    """What every service of ``Fleet`` is built on, shared by all of them.

    ``after_write`` runs after each committed write (the embedded projector catches up
    there); ``clock`` is the time locks and leases are judged by (tests set one).
    """

    app: FleetApplication
    projector: Projector
    watcher: LogWatcher
    after_write: Callable[[int], None]
    min_position_timeout: float = 5.0
    embedded: bool = True
    clock: Callable[[], datetime] | None = None
    # Held by each attempt of a command (load, decide, save, project). ``Fleet`` makes it a
    # lock: the events take one writer at a time (SQLite's file, PostgreSQL's table lock)
    # and the interpreter runs one thread, so concurrent commands of a process gain nothing
    # from each other and lose to the hand-overs (``Fleet._command_turn``).
    command_turn: AbstractContextManager[Any] = field(default_factory=contextlib.nullcontext)
    # Whether a command's first attempt decides on the cached aggregates as they are.
    optimism: OptimisticLoads = field(default_factory=lambda: OptimisticLoads(enabled=False))


def utc_now() -> datetime:
    return datetime.now(UTC)


class Service:
    """Base of the services ``Fleet`` composes: the command loop and read-model helpers.

    Each service is built from a ``Foundation`` (and the other services it asks, passed to
    its constructor), so it can be built and tested alone.
    """

    def __init__(self, foundation: Foundation) -> None:
        self.foundation = foundation
        self.app = foundation.app
        self.projector = foundation.projector
        self.watcher = foundation.watcher

    @property
    def min_position_timeout(self) -> float:
        return self.foundation.min_position_timeout

    @property
    def embedded(self) -> bool:
        return self.foundation.embedded

    def now(self) -> datetime:
        return (self.foundation.clock or utc_now)()

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

    def _create(
        self,
        make: Callable[[], A],
        view: Callable[[A], dict[str, Any]],
        check: Callable[[], None] | None = None,
    ) -> Written:
        """Save a new aggregate that ``make`` builds; returns its ``view``.

        ``make`` runs in every attempt, after ``check`` (a rule on other aggregates, judged
        in the command's turn). A save takes the pending events of what it saves, so an
        attempt decided again (a read changed before the commit) needs a fresh aggregate:
        the first one's would save nothing and the command would answer for a write it
        never made.
        """
        holder: list[A] = []

        def decide() -> list[FleetAggregate]:
            if check is not None:
                check()
            holder[:] = [make()]
            return [holder[0]]

        return self._command(decide, lambda: view(holder[0]))

    def _change(
        self,
        cls: type[A],
        aggregate_id: UUID,
        label: str,
        command: Callable[[A], None],
        view: Callable[[A], dict[str, Any]],
        expected_version: int | None = None,
    ) -> Written:
        """Load one aggregate, run ``command`` on it and save; returns its ``view``."""
        holder: list[A] = []

        def decide() -> list[FleetAggregate]:
            aggregate = self._load(cls, aggregate_id, label)
            self.check_version(aggregate, expected_version)
            command(aggregate)
            holder[:] = [aggregate]
            return [aggregate]

        return self._command(decide, lambda: view(holder[0]), expected_version=expected_version)

    def _command(
        self,
        decide: Callable[[], Sequence[FleetAggregate]],
        view: Callable[[], dict[str, Any]],
        **options: Any,
    ) -> Written:
        """``_write``, then the command's result: ``view()`` of the state it wrote, with
        the write's position and whether it created its stream.

        Under an idempotency key the view is taken before the commit and remembered with
        the events; that same result is returned (see ``application.idempotency``).
        """
        return cast(Written, self._command_or_refusal(decide, view, **options))

    def _command_or_refusal(
        self, decide: Callable[[], Sequence[FleetAggregate]], view: View, **options: Any
    ) -> Written | None:
        """``_command`` for a command whose write may record a refusal (a lock taken by
        another): its ``view`` then gives None, never remembered under a key."""
        claim = active_claim()
        if claim is None:
            recorded = self._write(decide, **options)
            resource = view()
        else:
            recorded = self._write(decide, view=view, **options)
            resource = claim.result if claim.recorded else view()
        if resource is None:
            return None
        return Written(resource, recorded.position, created=recorded.created)

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
    ) -> Recorded:
        """Run ``decide`` (load + command) and save what it returns, atomically.

        A lost race re-runs ``decide`` on fresh state, unless the caller pinned a
        version: then the loser gets ``PreconditionFailed``. ``attempts`` bounds the
        retries (hot streams such as a contested lock need more). Returns the
        position of the last event written (the head when there was nothing to write)
        and whether the write began a stream.

        Under an idempotency key, a ``view`` that gives a result puts the key in the
        events' transaction; one that gives None (a refusal that records an event, like
        ``lock_conflict``) only probes it there, so the write fails if a twin holds it.
        """
        claim = active_claim()
        with ensure_scope():
            for attempt in range(attempts):
                with self.foundation.command_turn:
                    recorded = None
                    if attempt == 0 and self.foundation.optimism.now():
                        recorded = self._attempt(decide, claim, expected_version, view, True)
                    if recorded is None:
                        recorded = self._attempt(decide, claim, expected_version, view)
                if recorded is not None:
                    return recorded
                time.sleep(retry_pause(attempt))  # outside the turn: others go meanwhile
        raise Conflict("too many concurrent writers on this resource; try again")

    def _attempt(
        self,
        decide: Callable[[], Sequence[FleetAggregate]],
        claim: Claim | None,
        expected_version: int | None,
        view: View | None,
        optimistic: bool = False,
    ) -> Recorded | None:
        """One try of ``_write``: None when another writer got to a stream first.

        ``optimistic``: ``decide`` runs on the cached aggregates as they are (see
        ``OptimisticLoads``); None also when that may have decided on a stale copy, for the
        caller to decide again on the log's state.
        """
        decided = self._decide(decide, optimistic)
        if decided is None:
            return None
        aggregates, read, logged = decided
        options: dict[str, Any] = {"confirm": read} if read else {}
        if logged:
            options["confirm_log"] = logged
        result = view() if claim is not None and view is not None else None
        if claim is not None and view is not None:
            options["idempotency"] = key_record(
                claim, result, _creates(aggregates), self._key_ttl(), probe=result is None
            )
        try:
            recordings = self.app.save(*aggregates, **options)
        except StaleReads:  # another writer changed what the decision read: decide again
            if optimistic:
                self.foundation.optimism.stale()
            return None
        except IntegrityError:
            if claim is not None and self._remembered(claim) is not None:
                raise _KeyTaken from None
            if optimistic:  # a cached copy was stale, or a writer got there first
                self.foundation.optimism.stale()
                return None
            if expected_version is not None:  # another writer got there first
                current = self._stored_version(aggregates[0].id)
                raise PreconditionFailed(expected_version, current) from None
            return None
        if claim is not None and recordings:
            claim.wrote = True
            if result is not None:
                claim.recorded, claim.result = True, result
        elif claim is not None and self._remembered(claim) is not None:
            raise _KeyTaken  # a repeat that had nothing left to write
        position = recordings[-1].notification.id if recordings else self._head()
        note_position(position)
        self._after_write(position)
        return Recorded(position, created=bool(recordings) and _began(recordings[0]))

    def _decide(
        self, decide: Callable[[], Sequence[FleetAggregate]], optimistic: bool
    ) -> tuple[Sequence[FleetAggregate], list[tuple[UUID, int]], list[LogRead]] | None:
        """``decide()``, the aggregates it read but does not write, with the versions it
        read them at, and what it read of the projections' rows (``note_log_read``): the
        write confirms those (``StaleReads``), so that a rule judged on another aggregate,
        or on rows, still holds when the write commits, whatever other processes wrote
        meanwhile. ``optimistic``: on what the cache holds; None when that may have been
        stale."""
        with recording_reads(trust_cache=optimistic) as reads:
            try:
                aggregates = _decided(decide)
            except Exception:  # a refusal, or a stream taken as not begun
                if optimistic and reads:
                    return None  # perhaps for a stale copy's sake: decide again on the log
                raise
        read = _only_read(reads, aggregates)
        if read is None or (optimistic and not self._confirmed_now(read, aggregates)):
            if optimistic:
                self.foundation.optimism.stale()
            return None
        return aggregates, read, reads.log_reads

    def _confirmed_now(
        self, read: Sequence[tuple[UUID, int]], aggregates: Sequence[FleetAggregate]
    ) -> bool:
        """Whether the aggregates a decision took on trust and does not write are still at
        the versions it took, when it writes nothing: with events to write, their write
        confirms them in its own transaction instead (``StaleReads``)."""
        if any(aggregate.pending_events for aggregate in aggregates):
            return True
        return all(self._stored_version(stream) == version for stream, version in read)

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
            position = result.position if isinstance(result, Written) else self._head()
            with ensure_scope(), contextlib.suppress(IntegrityError):  # a twin's took it
                record = key_record(claim, result, False, self._key_ttl())
                self._keys().insert_key(record, position)
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

    def _replay(self, remembered: Remembered) -> Written | None:
        """The first call's answer again, marked as a replay."""
        note_position(remembered.position)
        if remembered.result is None:
            return None
        return Written(
            remembered.result,
            remembered.position,
            created=bool(remembered.created),
            replayed=True,
        )

    def _keys(self) -> KeyStore:
        return cast(KeyStore, self.app.recorder)

    def _key_ttl(self) -> float:
        return ttl_of(self.app.env)

    def purge_idempotency_keys(self, now: float | None = None) -> int:
        """Forget keys older than ``FLEET_IDEMPOTENCY_TTL`` (the sweep calls this)."""
        now = time.time() if now is None else now
        return self._keys().purge_keys(now - self._key_ttl())

    def _after_write(self, position: int) -> None:
        self.foundation.after_write(position)

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

    # Read-model helpers (projection tables)

    def _page(
        self,
        table: str,
        filters: Sequence[tuple[str, Any]],
        order: str,
        limit: int,
        offset: int,
        min_position: int | None,
        join: str = "",
        columns: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One filtered page of rows and the total; the SQL is built from fixed names only.

        ``columns``: what to select (default: what ``row_resource`` reads of ``table``)."""
        check_page(limit, offset)
        check_filters(**{column.split(".")[-1]: value for column, value in filters})
        if min_position is not None:
            self._existing_position(min_position)
            self.projector.wait_for(min_position, self.min_position_timeout)
        where = [f"{column} = ?" for column, value in filters if value is not None]
        params = [value for _, value in filters if value is not None]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self.projector.read() as tx:
            rows = tx.fetchall(
                f"SELECT {columns or resource_columns(table)} FROM {table} t{join}{clause} "  # noqa: S608
                f"ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
            count = f"SELECT COUNT(*) AS n FROM {table} t{join}{clause}"  # noqa: S608 - fixed names
            total = tx.fetchall(count, params)[0]["n"]
        return [row_resource(table, row) for row in rows], int(total)


@dataclass(frozen=True)
class Recorded:
    """What one ``_write`` did: the position of its last event, and whether it began a
    stream (a registration that created its specialist answers 201)."""

    position: int
    created: bool = False


def _decided(decide: Callable[[], Sequence[FleetAggregate]]) -> Sequence[FleetAggregate]:
    """``decide()``, a rule of the domain refusing it answered as a conflict."""
    try:
        return decide()
    except DomainError as exc:
        raise Conflict(str(exc)) from None


def _only_read(
    reads: DecisionReads, aggregates: Sequence[FleetAggregate]
) -> list[tuple[UUID, int]] | None:
    """The aggregates a decision read, each once with the version it read, less those its
    write inserts the next version of (that insert fails if another writer recorded it
    first). None when it read one aggregate at two versions (another writer came between)."""
    inserts = {
        aggregate.id: aggregate.pending_events[0].originator_version
        for aggregate in aggregates
        if aggregate.pending_events
    }
    versions: dict[UUID, int] = {}
    for stream, version in reads:
        if versions.setdefault(stream, version) != version:
            return None
    return [
        (stream, version)
        for stream, version in versions.items()
        if inserts.get(stream) != version + 1
    ]


def _began(recording: Recording[Any]) -> bool:
    return bool(recording.domain_event.originator_version == 1)


def _creates(aggregates: Sequence[FleetAggregate]) -> bool:
    """Whether saving ``aggregates`` begins the first one's stream (decided before the
    save, for the idempotency record that goes in with it)."""
    return bool(aggregates) and aggregates[0].version == len(aggregates[0].pending_events)


def check_page(limit: int, offset: int) -> None:
    errors: dict[str, list[str]] = {}
    if not 1 <= limit <= MAX_LIMIT:
        errors["limit"] = [f"must be between 1 and {MAX_LIMIT}"]
    if offset < 0:
        errors["offset"] = ["must be 0 or more"]
    if errors:
        raise ValidationError(errors)


def check_filters(**filters: object) -> None:
    """Filter values are matched against text columns: NUL can never match, so refuse it."""
    bad = sorted(k for k, v in filters.items() if isinstance(v, str) and "\x00" in v)
    if bad:
        raise ValidationError({name: ["must not contain NUL characters"] for name in bad})


# The columns ``row_resource`` reads beside the resource, by table. A page selects only
# these: a row's other columns (its aggregate's encoded state, above all) are several
# times the resource's size.
KEPT_BESIDE = {"missions_projection": "progress", "sorties_projection": "blocked_by"}


def resource_columns(table: str) -> str:
    kept = KEPT_BESIDE.get(table)
    return "t.resource" if kept is None else f"t.resource, t.{kept}"


def row_resource(table: str, row: Any) -> dict[str, Any]:
    """The resource a projection row holds, with the columns kept beside it."""
    resource: dict[str, Any] = json.loads(row["resource"])
    kept = KEPT_BESIDE.get(table)
    if kept is not None:
        resource[kept] = json.loads(row[kept])
    elif table == "messages_projection":
        resource["version"] = row["mailbox_version"]  # the mailbox's, now
    return resource


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
