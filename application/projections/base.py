"""Row projections: each row holds an aggregate's state, so the read model is the
aggregate folded by its own ``apply`` methods, not a second copy of the rules.

A page of events is applied in one transaction together with the tracking
position (``View.track``), which is what makes each event count exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Tracking, Transcoder
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic

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


@dataclass
class Touched:
    table: RowTable
    aggregate: Any
    position: int
    dirty: bool = False


class RowProjection(Projection[Any]):
    """A projection of aggregate rows; subclasses list their tables and derived updates."""

    version: ClassVar[int] = 1
    tables: ClassVar[tuple[RowTable, ...]] = ()
    owned_tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, view: View, transcoder: Transcoder):
        super().__init__(view)
        self.transcoder = transcoder

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """The library's one-event entry point: a page of one."""
        with self.view.transaction() as tx:
            self.view.track(tx, tracking)
            self.apply_page(tx, [(tracking.notification_id, domain_event)])

    def apply_page(self, tx: ViewTx, events: Sequence[tuple[int, Any]]) -> None:
        """Fold a page into the rows. A row skips events it already holds, so two
        projectors racing over overlapping pages (their tracking inserts serialise
        them) still apply each event to each row once."""
        touched: dict[UUID, Touched | None] = {}
        for position, event in events:
            stream = event.originator_id
            if stream not in touched:
                touched[stream] = self._load(tx, event)
            current = touched[stream]
            if current is None:
                if (table := self._table_for_created(event)) is None:
                    continue
                current = touched[stream] = Touched(table, None, position)
            elif event.originator_version <= current.aggregate.version:
                continue
            current.aggregate = event.mutate(current.aggregate)
            current.position = position
            current.dirty = True
        changed = [t for t in touched.values() if t is not None and t.dirty]
        for item in changed:
            self._save(tx, item)
        self.after_page(tx, changed)

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

    def _save(self, tx: ViewTx, item: Touched) -> None:
        aggregate = item.aggregate
        state = self.transcoder.encode(Snapshot.take(aggregate).state)
        values = {
            "stream_id": str(aggregate.id),
            "id": item.table.public_id(aggregate),
            "version": aggregate.version,
            "position": item.position,
            "state": state,
            "resource": json.dumps(item.table.render(aggregate)),
            **item.table.columns(aggregate),
        }
        names = list(values)
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "stream_id")
        tx.execute(
            f"INSERT INTO {item.table.table} ({', '.join(names)}) "  # noqa: S608 - fixed names
            f"VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT (stream_id) DO UPDATE SET {updates}",
            list(values.values()),
        )
