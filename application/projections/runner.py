"""The pull loop that feeds projections from the notification log.

The library's SQLite recorder offers no subscription to new events, so a ``Projector`` pulls
pages with ``select_notifications`` (archive and live log together,
``FleetApplication.select_history``: a rebuild replays archived events too) and hands each page
to each projection, which writes its rows and tracking position in one transaction. It runs
embedded (after each write, in the serving process) or alone (``fleet projector``).
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    PersistenceError,
    Tracking,
)
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.utils import Environment

from application.app import FleetApplication
from application.errors import NotFound, Unavailable
from application.projections.base import Fold, RowProjection
from application.projections.view import View, ViewTx, track_together
from application.seams import (
    forget_prepared_statements,
    in_pipeline,
    sync_pipeline,
    unread_pipeline_results,
)
from application.store.postgres import connect_in_schema, open_pool_at_once, same_database
from application.store.sqlite import (
    keep_prepared_statements,
    queue_writers_together,
    wait_in_pool_as_long_as_for_the_lock,
)

log = logging.getLogger(__name__)
# Driver errors that say the database, not a projection, failed.
STORE_FAILURES = (sqlite3.OperationalError, psycopg.OperationalError)
PAGE_SIZE = 500

# PostgreSQL: the transaction lock every transaction that writes projections in a schema
# takes first (a catch-up page, a write applied inline). A page moves the tracking rows of
# the projections it has nothing for first, then the others', and a write applied inline
# has its own set of each: without it two such transactions in different processes could
# each hold a row the other waits for, a deadlock PostgreSQL ends after a second by failing
# one. They conflict on those rows anyway; this makes them queue at the start instead.
PROJECTING_LOCK = "pg_advisory_xact_lock(hashtext(?)) IS NULL AS locked"
# SQLite's counterpart: a write that changes nothing, run first in a page's transaction, takes
# the file's write lock (waiting up to the lock timeout) before anything is read. The library
# begins with a deferred BEGIN, so the page's first read took a snapshot; once another
# connection committed after it, SQLite refused the upgrade to a writer at once ("database is
# locked", no wait), and the projector paused and retried: 13-29 such failures in ten seconds
# of a projector following 200 writes/s from another connection (bench/findings.md).
SQLITE_WRITE_LOCK = "UPDATE {table} SET notification_id = notification_id WHERE 0"


class ProjectionVersionError(RuntimeError):
    """The stored projection version differs and automatic rebuilds are off."""


class Projector:
    def __init__(
        self,
        app: FleetApplication,
        projection_types: Sequence[type[RowProjection]],
        page_size: int = PAGE_SIZE,
    ):
        self.app = app
        self.page_size = page_size
        factory = InfrastructureFactory.construct(Environment(app.name, app.env))
        self.datastore = factory.datastore  # type: ignore[attr-defined]
        keep_prepared_statements(self.datastore)
        connect_in_schema(self.datastore)
        open_pool_at_once(self.datastore)
        wait_in_pool_as_long_as_for_the_lock(self.datastore, app.env)
        queue_writers_together(self.datastore, app.recorder.datastore)  # type: ignore[attr-defined]
        transcoder = app.mapper.transcoder
        create = factory.env_create_table()  # type: ignore[attr-defined]
        self.projections = {
            cls.name: cls(View(cls.name, self.datastore, create), transcoder)
            for cls in projection_types
        }
        self._lock = threading.Lock()
        # The position of the last write whose events every projection applied inline
        # (``apply_inline``): that write's catch-up has nothing to do.
        self.applied_inline = 0

    # Running

    def can_apply_inline(self) -> bool:
        """Whether the projections can be written in the events' own transaction: their
        tables are in the events' database (SQLite: the same file, so the same writer;
        PostgreSQL: the same database and schema)."""
        leader = self.app.recorder.datastore  # type: ignore[attr-defined]
        if isinstance(self.datastore, PostgresDatastore):
            return (
                isinstance(leader, PostgresDatastore)
                and leader.schema == self.datastore.schema
                and same_database(leader, self.datastore)
            )
        return (
            isinstance(self.datastore, SQLiteDatastore)
            and isinstance(leader, SQLiteDatastore)
            and self.datastore.pool.db_name == leader.pool.db_name
            and not leader.pool.is_sqlite_memory_mode
        )

    def apply_inline(
        self,
        domain_events: Sequence[Any],
        aggregates: Mapping[UUID, Any],
        cursor: Any,
        positions: Sequence[int],
    ) -> None:
        """Apply a write's own events in its transaction, from the events in hand.

        No read of the log and no decoding, and one commit for events and projections. The
        rows are the saved ``aggregates`` themselves: a ready projection's rows stand right
        before the write, so its events leave them exactly as the command left the
        aggregates, and nothing is read back or folded again. A
        projection applies them only when it is at the position right before them (else it
        lags, and catches up from the log after the commit). They all run in one savepoint;
        if that fails, they run again one at a time, each in its own, so a failing
        projection rolls back alone and never fails the write. Called by the
        recorder with the events' write lock held (SQLite's writer, PostgreSQL's table
        lock), so no other write's events can come between.

        On PostgreSQL the positions are not waited for: their statement goes out with the
        rows, which presume every projection ready, and its answer is read with theirs (one
        round trip less a write). A projection found lagging then rolls them all back, and
        the ready ones apply one at a time.
        """
        self.applied_inline = 0  # until this write is known to be complete
        if len(positions) != len(domain_events):
            return  # the catch-up after the commit applies it
        tx = ViewTx(cursor, postgres=isinstance(self.datastore, PostgresDatastore))
        events = list(zip(positions, domain_events, strict=True))
        ready = self._ready_for(tx, positions[0] - 1)
        presumed = list(self.projections.values()) if ready.later else ready()
        if not presumed:  # all lag behind another process's write: the catch-up has them
            return
        write = InlineWrite(tx, events, aggregates, Tracking(self.app.name, positions[-1]))
        try:
            self._apply_inline_together(write, presumed, ready)
        except Exception as error:  # noqa: BLE001 - undone; one at a time logs what fails
            survive_or_fail_the_write(tx, error)
            if not ready():
                return
            applied = self._apply_inline_one_by_one(write, ready())
        else:
            applied = True
        if applied and len(ready()) == len(self.projections):
            self.applied_inline = positions[-1]

    def _ready_for(self, tx: ViewTx, before: int) -> ReadyProjections:
        """The projections standing at ``before``, read under the lock every projecting
        transaction takes (``_positions_in``): on PostgreSQL in the insert's pipeline,
        queued now and read when asked (``ReadyProjections.later``), elsewhere now."""
        if tx.postgres and in_pipeline(tx.cursor.connection):
            queued = ViewTx(tx.cursor.connection.cursor(), postgres=True)
            answer = queued.execute(*self._positions_query(queued, serialise=True))
            return ReadyProjections(
                self.projections, before, lambda: self._positions_of(answer.fetchone()), True
            )
        at = self._positions_in(tx, serialise=True)
        return ReadyProjections(self.projections, before, lambda: at, False)

    @staticmethod
    def _apply_inline_together(
        write: InlineWrite, presumed: Sequence[RowProjection], ready: ReadyProjections
    ) -> None:
        """The ``presumed`` ready projections' rows and positions under one savepoint, one a
        write rather than one a projection. Raises, rolled back to the savepoint, if any
        part fails or if not all of them were ready."""
        tx = write.tx
        with savepoint(tx, "inline_projections"):
            for projection in presumed:
                if write.taken_by(projection):
                    projection.apply_page(tx, write.events, written=write.aggregates)
            # The positions last: reading whether they moved also shows, in PostgreSQL's
            # pipeline, whether any row above failed (see ``_pipelined_savepoint``), and
            # which projections were ready.
            moved = track_together([p.view for p in presumed], tx, write.tracking)
            if len(ready()) != len(presumed):
                raise NotReady("a projection lags behind this write")
            if not all(moved):
                raise NotAdvanced("a projection was already past this write")

    @staticmethod
    def _apply_inline_one_by_one(write: InlineWrite, ready: Sequence[RowProjection]) -> bool:
        """After a failure of them all together: each projection on its own, so only the
        failing ones lag (and catch up from the log after the commit). True if all applied."""
        tx, tracking = write.tx, write.tracking
        complete = True
        # Those that take nothing of the write for their rows (a heartbeat, for the work
        # projection): only their positions move, all with one statement.
        idle = [p for p in ready if not write.taken_by(p)]
        if idle:
            # A savepoint on PostgreSQL, where a failed statement fails the transaction; a
            # failed SQLite statement is undone alone.
            contained = savepoint(tx, "inline_positions") if tx.postgres else nullcontext()
            try:
                with contained:
                    moved = track_together([p.view for p in idle], tx, tracking)
            except Exception as error:  # the write goes on; they catch up from the log
                survive_or_fail_the_write(tx, error)
                log.exception(
                    "projections %s could not track a write inline", [p.name for p in idle]
                )
                moved = [False]
            complete = all(moved)
        for number, projection in enumerate(ready):
            if projection in idle:
                continue
            try:
                with savepoint(tx, f"inline_projection_{number}"):
                    projection.view.track(tx, tracking)
                    projection.apply_page(tx, write.events, written=write.aggregates)
            except Exception as error:  # the write goes on; the projection catches up
                survive_or_fail_the_write(tx, error)
                log.exception("projection %s could not apply a write inline", projection.name)
                complete = False
        return complete

    def catch_up(self, stop: threading.Event | None = None) -> int:
        """Apply every event recorded so far; returns how many pages were read.

        Each page is read and decoded once for all projections; each projection
        then takes the events past its own position (see ``_apply``). A set ``stop``
        ends it after the page under way: a projector told to stop with a long backlog
        before it (a restart after downtime) must not make its supervisor wait for the
        whole of it, and the next run resumes from the positions committed with the page.
        """
        with self._lock:
            pages = 0
            while True:
                positions = self._positions()
                start = min(positions.values(), default=0)
                notes = self.app.select_history(start, self.page_size)
                if not notes:
                    return pages
                events = [(n.id, self.app.mapper.to_domain_event(n)) for n in notes]
                pending = [
                    (projection, todo)
                    for name, projection in self.projections.items()
                    if (todo := [(i, e) for i, e in events if i > positions[name]])
                ]
                self._apply(pending)
                pages += 1
                if len(notes) < self.page_size:  # the head: the next read would find nothing
                    return pages
                if stop is not None and stop.is_set():
                    return pages

    def _positions_in(self, tx: ViewTx, serialise: bool = False) -> dict[str, int]:
        """Every projection's position, read with one statement in ``tx``.

        ``serialise``: on PostgreSQL, the same statement first waits for the transaction
        lock every projection-writing transaction of this schema takes (see
        ``PROJECTING_LOCK``). Its snapshot may predate the wait, so the positions can be
        behind: a projection then meets its tracking row already moved, and a row skips
        the events it holds, as with two projectors racing.
        """
        if not self.projections:
            return {}
        return self._positions_of(tx.execute(*self._positions_query(tx, serialise)).fetchone())

    def _positions_query(self, tx: ViewTx, serialise: bool) -> tuple[str, list[Any]]:
        """``_positions_in``'s statement and its parameters."""
        views = [p.view for p in self.projections.values()]
        # One named column a projection: rows are dicts on PostgreSQL.
        columns = [view.position_column(f"p{number}") for number, view in enumerate(views)]
        params: list[Any] = [self.app.name] * len(views)
        if serialise and tx.postgres:
            columns.insert(0, PROJECTING_LOCK)
            params.insert(0, f"fleet projections {self.datastore.schema}")
        return f"SELECT {', '.join(columns)}", params

    def _positions_of(self, row: Any) -> dict[str, int]:
        """The positions in a row of ``_positions_query``."""
        return {name: int(row[f"p{number}"] or 0) for number, name in enumerate(self.projections)}

    def _positions(self) -> dict[str, int]:
        """Every projection's position, read with one statement (they share a datastore).

        On PostgreSQL as one round trip, on the pool's autocommit connection (its
        connections start in the schema, ``connect_in_schema``): a read transaction was
        four (BEGIN, ``SET LOCAL search_path``, the read, the rollback). Every catch-up
        and every wait for a position starts here.
        """
        views = [p.view for p in self.projections.values()]
        if not views:
            return {}
        if isinstance(self.datastore, PostgresDatastore):
            with self.datastore.get_connection() as connection:
                return self._positions_in(ViewTx(connection.cursor(), postgres=True))
        with views[0].transaction(commit=False) as tx:
            return self._positions_in(tx)

    def _apply(self, pending: list[tuple[RowProjection, list[tuple[int, Any]]]]) -> None:
        """Every projection's rows and position for one page, in one transaction.

        One commit a page, not one a projection: embedded, each write is followed by a
        catch-up, and each commit is a disk flush. The projections that take nothing of the
        page for their rows only move their positions, first and together. Each of the
        others runs in its own savepoint, so they stay independent: a page another projector
        already applied is skipped for that projection alone, and a failing projection is
        rolled back alone while those before it commit (and those after it wait for the
        next catch-up).
        """
        if not pending:
            return
        failure: Exception | None = None
        with pending[0][0].view.transaction() as tx:
            if not tx.postgres:
                tx.execute(SQLITE_WRITE_LOCK.format(table=pending[0][0].view.table))
            # Read again under the write lock: a write may have applied some of this page
            # inline since the positions were read (``apply_inline``).
            at = self._positions_in(tx, serialise=True)
            todo = [
                (number, projection, events)
                for number, (projection, page) in enumerate(pending)
                if (events := [(i, e) for i, e in page if i > at[projection.name]])
            ]
            # Those that take nothing of the page for their rows: only their positions move,
            # all with one statement (each page ends at the same event). A projector that
            # moved one first leaves it unmoved by a statement that failed nothing, so
            # there is nothing to roll back.
            idle = [
                projection
                for _, projection, events in todo
                if not any(projection.takes(type(event)) for _, event in events)
            ]
            if idle:
                page_end = todo[-1][2][-1][0]  # where every projection's part of it ends
                tracking = Tracking(self.app.name, page_end)
                moved = track_together([p.view for p in idle], tx, tracking)
                for name in [p.name for p, done in zip(idle, moved, strict=True) if not done]:
                    log.info("projection %s: another projector applied this page", name)
            for number, projection, events in todo:
                if projection in idle:
                    continue
                try:
                    with savepoint(tx, f"projection_{number}"):
                        projection.view.track(tx, Tracking(self.app.name, events[-1][0]))
                        projection.apply_page(tx, events)
                except IntegrityError:
                    log.info("projection %s: another projector applied this page", projection.name)
                except STORE_FAILURES:
                    # The store itself fails (locked past its timeout, connection lost):
                    # the whole page rolls back, and raised inside the transaction the
                    # error reaches the caller as the library's OperationalError.
                    raise
                except Exception as error:  # noqa: BLE001 - re-raised below, after the others commit
                    failure = error
                    break
        if failure is not None:
            raise failure

    def run_forever(
        self,
        stop: threading.Event,
        idle: float = 0.05,
        max_idle: float = 0.5,
        max_backoff: float = 5.0,
    ) -> None:
        """Follow the log until ``stop`` is set, backing off while nothing happens.

        A store error (SQLite locked past its timeout, a lost PostgreSQL connection) must
        not end the projector: each page is applied in one transaction, so a failed one
        left nothing half-done; it is logged and retried with a growing pause.
        """
        delay = idle
        failures = 0
        while not stop.is_set():
            try:
                delay = idle if self.catch_up(stop) else min(delay * 2, max_idle)
                failures = 0
            except PersistenceError as exc:
                failures += 1
                delay = min(idle * 2**failures, max_backoff)
                log.warning("projector: store error (%s); retrying in %.2f s", exc, delay)
            stop.wait(delay)

    def wait_for(self, position: int, timeout: float) -> None:
        """Block until every projection has applied ``position``, else ``Unavailable``."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while self.min_position() < position:
            if time.monotonic() >= deadline:
                raise Unavailable(
                    f"projections have not reached position {position} within {timeout:g} s"
                )
            time.sleep(delay)
            # Short steps: a woken long-poll usually waits here only for the writer's own
            # catch-up, a few milliseconds (docs/work-loop.md, wake-up latency).
            delay = min(delay * 2, 0.05)

    # Status, versions, rebuild

    def min_position(self) -> int:
        return min(self._positions().values(), default=0)

    def status(self) -> list[dict[str, Any]]:
        head = self.app.recorder.max_notification_id() or 0
        stored = self._stored_versions()
        report = []
        for name, projection in self.projections.items():
            position = projection.view.position(self.app.name)
            report.append(
                {
                    "name": name,
                    "version": projection.version,
                    "stored_version": stored.get(name),
                    "position": position,
                    "lag": max(head - position, 0),
                }
            )
        return report

    def ensure_versions(self, auto_rebuild: bool = True) -> list[str]:
        """Rebuild projections whose stored version differs from the code's."""
        stored = self._stored_versions()
        stale = [n for n, p in self.projections.items() if stored.get(n) != p.version]
        if stale and not auto_rebuild:
            raise ProjectionVersionError(
                f"projections {', '.join(stale)} need a rebuild: run `fleet projections rebuild`"
            )
        for name in stale:
            self.rebuild(name)
        return stale

    def rebuild(self, name: str, progress: Callable[[int], object] | None = None) -> int:
        """Drop the rows and position, replay the log, all in one transaction."""
        try:
            projection = self.projections[name]
        except KeyError:
            raise NotFound(f"no projection named {name!r}") from None
        applied = 0
        with self._lock, cyclic_collector_paused(), projection.view.transaction() as tx:
            projection.view.forget(tx, self.app.name)
            projection.clear(tx)
            start = 0
            fold = Fold()  # held across pages (see ``Fold``)
            while notes := self.app.select_history(start, self.page_size, fresh=True):
                projection.replay(
                    tx,
                    fold,
                    [
                        (n.id, self.app.mapper.to_domain_event(n))
                        for n in notes
                        if projection.wants(n.topic)
                    ],
                )
                start = notes[-1].id
                applied += len(notes)
                if progress:
                    progress(len(notes))
            projection.flush(tx, fold)
            if start:
                projection.view.track(tx, Tracking(self.app.name, start))
            tx.execute("DELETE FROM fleet_projection_versions WHERE name = ?", [name])
            tx.execute(
                "INSERT INTO fleet_projection_versions (name, version, rebuilt_at) "
                "VALUES (?, ?, ?)",
                [name, projection.version, datetime.now(UTC).isoformat()],
            )
        return applied

    def _stored_versions(self) -> dict[str, int]:
        view = next(iter(self.projections.values())).view
        with view.transaction(commit=False) as tx:
            rows = tx.fetchall("SELECT name, version FROM fleet_projection_versions")
        return {row["name"]: row["version"] for row in rows}

    def read(self) -> Any:
        """A read-only transaction over the projection tables."""
        return next(iter(self.projections.values())).view.transaction(commit=False)

    def close(self) -> None:
        self.datastore.close()


@contextmanager
def cyclic_collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a rebuild runs.

    A rebuild holds thousands of folded aggregates across pages (``Fold``), so they outlive
    the young collections, and their promotion sets off full collections that walk the
    whole heap: 11 in a rebuild of 100,000 events, and with the young ones 13 % of its time
    (more in a larger process). A rebuild makes no cyclic garbage (``gc.collect()`` after
    one of each projection found none), and reference counting still frees what it drops.
    The collector runs again as soon as the rebuild ends, however it ends.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def survive_or_fail_the_write(tx: ViewTx, error: Exception) -> None:
    """Called with a failure caught inside a write's transaction: raise it again unless
    the transaction can still commit the write.

    A failure inside a savepoint is rolled back to it, and the write goes on. One that
    left the transaction itself failed must fail the write: on PostgreSQL the commit of
    a failed transaction rolls it back without an error, so the write would be answered
    as recorded and be lost; on SQLite, an I/O or full-disk error rolls the transaction
    back, and the statements after it would commit on their own.
    """
    if tx.postgres:
        status = tx.cursor.connection.info.transaction_status
        usable = status == psycopg.pq.TransactionStatus.INTRANS
    else:
        usable = bool(tx.cursor.sqlite_cursor.connection.in_transaction)
    if not usable:
        raise error


@dataclass(frozen=True)
class InlineWrite:
    """One write as its inline projections see it: its transaction, its events at their
    positions, the aggregates it saved, and the position the projections move to."""

    tx: ViewTx
    events: Sequence[tuple[int, Any]]
    aggregates: Mapping[UUID, Any]
    tracking: Tracking

    def taken_by(self, projection: RowProjection) -> bool:
        """Whether the projection takes any of the events for its rows."""
        return any(projection.takes(type(event)) for _, event in self.events)


class NotAdvanced(Exception):
    """A projection's position did not move to a write's: it was already past it."""


class NotReady(Exception):
    """A projection presumed ready for a write's events lags behind them."""


class ReadyProjections:
    """The projections standing right before a write (``Projector._ready_for``). Called,
    it gives them, from ``positions`` read once; ``later``: read in PostgreSQL's pipeline,
    with the answers of the statements queued after it."""

    def __init__(
        self,
        projections: Mapping[str, RowProjection],
        before: int,
        positions: Callable[[], Mapping[str, int]],
        later: bool,
    ):
        self.later = later
        self._projections, self._before, self._positions = projections, before, positions
        self._ready: list[RowProjection] | None = None

    def __call__(self) -> list[RowProjection]:
        if self._ready is None:
            at = self._positions()
            self._ready = [p for name, p in self._projections.items() if at[name] == self._before]
        return self._ready


@contextmanager
def savepoint(tx: ViewTx, name: str) -> Iterator[None]:
    """A savepoint around projections' writes: a failure rolls back to it and is raised.

    On PostgreSQL inside the insert's pipeline (``seams.PostgresInsertSeam``, where a write
    projects inline) see ``_pipelined_savepoint``; elsewhere on PostgreSQL it is psycopg's
    nested transaction.
    """
    if tx.postgres:
        connection = tx.cursor.connection
        if in_pipeline(connection):
            with _pipelined_savepoint(tx, name):
                yield
            return
        with connection.transaction(savepoint_name=name):
            yield
        return
    tx.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        tx.execute(f"ROLLBACK TO SAVEPOINT {name}")
        tx.execute(f"RELEASE SAVEPOINT {name}")
        raise
    tx.execute(f"RELEASE SAVEPOINT {name}")


@contextmanager
def _pipelined_savepoint(tx: ViewTx, name: str) -> Iterator[None]:
    """A savepoint whose statements ride in the insert's pipeline, with no sync of its own.

    psycopg's nested transaction syncs the pipeline going in and out: three of a
    heartbeat's eleven round trips (bench/findings.md). Here SAVEPOINT and RELEASE are
    queued like the other statements. A statement that fails in a pipeline shows only when
    a later result is read, so a failure must be known before the write commits: a body
    that reads a result last (``_apply_inline_together`` reads the positions it moved) has
    shown every failure by then; otherwise one sync reads what is left. On a failure the
    pipeline is synced out of its aborted state and the transaction rolled back to the
    savepoint, so the write's own statements stand and the failure is raised.
    """
    connection = tx.cursor.connection
    tx.execute(f"SAVEPOINT {name}")
    try:
        yield
        if unread_pipeline_results(connection):
            sync_pipeline(connection)
    except BaseException:
        # The failure being undone again, or the statements it made the server skip.
        with suppress(psycopg.Error):
            sync_pipeline(connection)
        tx.execute(f"ROLLBACK TO SAVEPOINT {name}")
        sync_pipeline(connection)  # the transaction is usable again, or this says why not
        forget_prepared_statements(connection)  # as after the insert's own rollback
        tx.execute(f"RELEASE SAVEPOINT {name}")
        sync_pipeline(connection)
        raise
    tx.execute(f"RELEASE SAVEPOINT {name}")
