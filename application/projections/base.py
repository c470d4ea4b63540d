"""Row projections: each row holds an aggregate's state, so the read model is the
aggregate folded by its own ``apply`` methods, not a second copy of the rules.

A page of events is applied in one transaction together with the tracking
position (``View.track``), which is what makes each event count exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Tracking, Transcoder
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic, resolve_topic

from application.projections.row_json import RowJson
from application.projections.view import View, ViewTx
from domain.base import SHARED_EVENTS, FleetAggregate


@dataclass(frozen=True)
class RowTable:
    """How one aggregate type is stored in one projection table."""

    table: str
    aggregate_type: type[FleetAggregate]
    public_id: Callable[[Any], str]
    columns: Callable[[Any], dict[str, Any]]
    render: Callable[[Any], dict[str, Any]]


# The streams a rebuild's fold holds before it writes their rows (see ``Fold``).
REBUILD_HELD_STREAMS = 5_000

# The columns a row keeps from its insert: the stream and its public id.
IMMUTABLE_COLUMNS = frozenset({"stream_id", "id"})

UNSEEN: Any = object()  # a stream not yet met in a fold (``None``: met, and has no row)


@dataclass
class Touched:
    table: RowTable
    aggregate: Any
    position: int
    dirty: bool = False
    # The classes of the events folded into it since its last write (not the events: a
    # rebuild holds thousands of rows, and the collector would walk every event they held).
    applied: set[type] = field(default_factory=set)


@dataclass
class Fold:
    """The aggregates a projection folds events into between two writes of their rows.

    A catch-up folds and writes one page at a time. A rebuild holds its fold across pages:
    in a real log each agent's heartbeats are spread over the whole log, so a page-by-page
    fold would read back and write again most of its rows on every page (a rebuild of such
    a log ran at a third of the rate of one whose streams are each in one page). It flushes
    when it holds ``REBUILD_HELD_STREAMS`` streams, which bounds its memory.
    """

    touched: dict[UUID, Touched | None] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return len(self.touched) >= REBUILD_HELD_STREAMS


class RowProjection(Projection[Any]):
    """A projection of aggregate rows; subclasses list their tables and derived updates."""

    version: ClassVar[int] = 1
    tables: ClassVar[tuple[RowTable, ...]] = ()
    owned_tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, view: View, transcoder: Transcoder):
        super().__init__(view)
        self.transcoder = transcoder
        self.json = RowJson(transcoder)
        self._wanted: dict[str, bool] = {}
        self._takes: dict[type, bool] = {}

    def wants(self, topic: str) -> bool:
        """Whether events of ``topic`` can change a row, known before the event is decoded:
        a rebuild decodes only those (the others would be decoded only to be skipped)."""
        wanted = self._wanted.get(topic)
        if wanted is None:
            wanted = self._wanted[topic] = self.takes(resolve_topic(topic))
        return wanted

    def takes(self, event_class: type) -> bool:
        """Whether events of this class can change a row (``wants``, by class)."""
        taken = self._takes.get(event_class)
        if taken is None:
            taken = self._takes[event_class] = issubclass(event_class, SHARED_EVENTS) or any(
                issubclass(event_class, table.aggregate_type.Event) for table in self.tables
            )
        return taken

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """The library's one-event entry point: a page of one."""
        with self.view.transaction() as tx:
            self.view.track(tx, tracking)
            self.apply_page(tx, [(tracking.notification_id, domain_event)])

    def apply_page(
        self,
        tx: ViewTx,
        events: Sequence[tuple[int, Any]],
        new_streams_have_no_rows: bool = False,
        written: Mapping[UUID, Any] | None = None,
    ) -> None:
        """Fold a page into the rows. A row skips events it already holds, so two
        projectors racing over overlapping pages (their tracking inserts serialise
        them) still apply each event to each row once. ``new_streams_have_no_rows``: the
        caller knows that no row exists for a stream whose first event is in this page (a
        rebuild, which emptied the table), so that row is not read. ``written``: the page
        is one write's events, applied inline by a projection that stands right before
        them, and these are the aggregates the write saved: each is its row's state after
        the page, so no row is read and no event folded."""
        if written is not None:
            changed = self._rows_written(events, written)
            self._save_all(tx, changed)
            self.after_page(tx, changed)
            return
        fold = Fold()
        self.fold(tx, fold, events, new_streams_have_no_rows)
        self.flush(tx, fold)

    def fold(
        self,
        tx: ViewTx,
        fold: Fold,
        events: Sequence[tuple[int, Any]],
        new_streams_have_no_rows: bool = False,
    ) -> None:
        """Apply ``events`` to the aggregates held by ``fold``, reading a row only for a
        stream it does not hold yet; nothing is written until ``flush``."""
        touched = fold.touched
        for position, event in events:
            stream = event.originator_id
            # One lookup per event: ids are UUIDs, whose hash and equality run in Python.
            current = touched.get(stream, UNSEEN)
            if current is UNSEEN:
                current = touched[stream] = (
                    None
                    if new_streams_have_no_rows and self._starts_stream(event)
                    else self._load(tx, event)
                )
            if current is None:
                if (table := self._table_for_created(event)) is None:
                    continue
                current = touched[stream] = Touched(table, None, position)
            elif event.originator_version <= current.aggregate.version:
                continue
            current.aggregate = event.mutate(current.aggregate)
            current.position = position
            current.dirty = True
            current.applied.add(event.__class__)

    def replay(self, tx: ViewTx, fold: Fold, events: Sequence[tuple[int, Any]]) -> None:
        """A rebuild's page, on emptied tables: folded into ``fold``, which is written when
        full (the rebuild flushes what is left at the end). A projection whose rows depend
        on where its pages end replays page by page (``apply_page``) instead."""
        self.fold(tx, fold, events, new_streams_have_no_rows=True)
        if fold.full:
            self.flush(tx, fold)

    def flush(self, tx: ViewTx, fold: Fold) -> None:
        """Write the rows ``fold`` changed, and forget what it held."""
        changed = [t for t in fold.touched.values() if t is not None and t.dirty]
        self._save_all(tx, changed)
        self.after_page(tx, changed)
        fold.touched.clear()

    def _rows_written(
        self, events: Sequence[tuple[int, Any]], written: Mapping[UUID, Any]
    ) -> list[Touched]:
        """The rows a write's events change, each holding the aggregate the write saved."""
        touched: dict[UUID, Touched | None] = {}
        for position, event in events:
            stream = event.originator_id
            if stream not in touched:
                aggregate = written[stream]
                table = next(
                    (t for t in self.tables if isinstance(aggregate, t.aggregate_type)), None
                )
                touched[stream] = None if table is None else Touched(table, aggregate, position)
            current = touched[stream]
            if current is not None:
                current.position = position
                current.applied.add(event.__class__)
        return [t for t in touched.values() if t is not None]

    def after_page(self, tx: ViewTx, changed: list[Touched]) -> None:
        """Derived updates that depend on several rows (counters, blocked_by...)."""

    def clear(self, tx: ViewTx) -> None:
        for table in self.owned_tables:
            tx.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names

    # Rows <-> aggregates

    def _table_for_created(self, event: Any) -> RowTable | None:
        for table in self.tables:
            if isinstance(event, table.aggregate_type.Created):
                return table
        return None

    def _starts_stream(self, event: Any) -> bool:
        table = self._table_for_created(event)
        return table is not None and (
            event.originator_version == table.aggregate_type.INITIAL_VERSION
        )

    def _load(self, tx: ViewTx, event: Any) -> Touched | None:
        for table in self._candidate_tables(event):
            rows = tx.fetchall(
                f"SELECT version, position, state FROM {table.table} WHERE stream_id = ?",  # noqa: S608
                [str(event.originator_id)],
            )
            if rows:
                row = rows[0]
                snapshot = Snapshot(
                    originator_id=event.originator_id,
                    originator_version=row["version"],
                    timestamp=event.timestamp,
                    topic=get_topic(table.aggregate_type),
                    state=self.transcoder.decode(bytes(row["state"])),
                )
                return Touched(table, snapshot.mutate(None), row["position"])
        return None

    def _candidate_tables(self, event: Any) -> Iterable[RowTable]:
        """An aggregate's own events go to its table; shared ones may belong to any."""
        if isinstance(event, SHARED_EVENTS):
            return self.tables
        return [t for t in self.tables if isinstance(event, t.aggregate_type.Event)]

    def _save_all(self, tx: ViewTx, changed: list[Touched]) -> None:
        """Upsert the changed rows, one statement per table.

        An update leaves the keys alone: a stream's public id never changes, and SQLite
        rewrites the entry of every index whose column an update assigns, equal or not (a
        page more in each commit's log)."""
        by_table: dict[str, list[dict[str, Any]]] = {}
        for item in changed:
            by_table.setdefault(item.table.table, []).append(self._row(item))
        for table, rows in by_table.items():
            names = list(rows[0])
            updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in IMMUTABLE_COLUMNS)
            tx.executemany(
                f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608 - fixed names
                f"VALUES ({', '.join('?' * len(names))}) "
                f"ON CONFLICT (stream_id) DO UPDATE SET {updates}",
                [list(row.values()) for row in rows],
            )

    def _row(self, item: Touched) -> dict[str, Any]:
        aggregate = item.aggregate
        return {
            "stream_id": str(aggregate.id),
            "id": item.table.public_id(aggregate),
            "version": aggregate.version,
            "position": item.position,
            "state": self.json.state(aggregate),
            "resource": self.json.resource(item.table.render(aggregate)),
            **item.table.columns(aggregate),
        }
