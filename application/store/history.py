"""Reading the whole log, archive and live together (see ``application.store.archive``).

Archived rows keep their versions and positions, so a stream's history is its live
events plus its archived ones. The live log alone shows when that matters: version 1 and
a stream's newest event never move, so any archived range is a gap between live versions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import EventStore, Notification, Recording

from application.store.archive import Archive
from application.store.query import IndexRow


class HistoryEventStore(EventStore[UUID]):
    """The application's event store; reads fill gaps of the live log from the archive."""

    def __init__(self, mapper: Any, recorder: Any, archive: Callable[[], Archive | None]):
        super().__init__(mapper, recorder)
        self._archive = archive

    def get(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[DomainEventProtocol[UUID]]:
        live = list(super().get(originator_id, gt=gt, lte=lte, desc=desc, limit=limit))
        archive = self._archive()
        if archive is None or not _maybe_incomplete(live, gt, lte, desc, limit):
            return iter(live)
        if not archive.exists():
            return iter(live)
        found: dict[int, Any] = {
            s.originator_version: self.mapper.to_domain_event(s)
            for s in archive.select_events(originator_id, gt=gt, lte=lte)
        }
        if not found:
            return iter(live)
        found.update((e.originator_version, e) for e in live)
        events = [found[v] for v in sorted(found, reverse=desc)]
        return iter(events if limit is None else events[:limit])


# (events in hand, the aggregates saved with them by id, the transaction's cursor, their
# positions) -> None
InlineApplier = Callable[
    [Sequence[DomainEventProtocol[UUID]], Mapping[UUID, Any], Any, Sequence[int]], None
]


class IndexingEventStore(HistoryEventStore):
    """The application's event store: it also writes each event's index row with it.

    ``FleetApplication.save`` passes the saved aggregates by id (``aggregates=``); ``put``
    turns them into the index rows the recorder writes in the events' transaction
    (``event_index=``), then tells ``committed`` the rows and the recordings. A put
    without ``aggregates`` is the library's.
    """

    def __init__(
        self,
        mapper: Any,
        recorder: Any,
        archive: Callable[[], Archive | None],
        committed: Callable[[Sequence[IndexRow], list[Recording[UUID]]], object],
    ):
        super().__init__(mapper, recorder, archive)
        self._committed = committed
        # Set by an embedded projector that can write in the events' transaction
        # (``Projector.apply_inline``): called there with the events, the saved aggregates
        # and the events' positions.
        self.inline: InlineApplier | None = None

    def put(
        self, domain_events: Sequence[DomainEventProtocol[UUID]], **kwargs: Any
    ) -> list[Recording[UUID]]:
        aggregates = kwargs.pop("aggregates", None)
        if aggregates is None:
            return super().put(domain_events, **kwargs)
        rows = [
            IndexRow(
                event_type=type(event).event_type,  # type: ignore[attr-defined]
                stream_type=type(aggregates[event.originator_id]).STREAM_TYPE,
                correlation_id=event.correlation_id,  # type: ignore[attr-defined]
            )
            for event in domain_events
        ]
        if self.inline is not None:
            kwargs["inline"] = partial(self.inline, domain_events, aggregates)
        recordings = super().put(domain_events, event_index=rows, **kwargs)
        self._committed(rows, recordings)
        return recordings


def _maybe_incomplete(
    live: list[Any], gt: int | None, lte: int | None, desc: bool, limit: int | None
) -> bool:
    """Could archived events belong in this read? Cheap: it looks at the versions only."""
    if desc or limit is not None:
        return True
    if not live:
        # Version 1 and a stream's newest event are always live: nothing after ``gt`` in the
        # live log means nothing after it at all, unless the read stops at ``lte``.
        return gt is not None and lte is not None
    first, last = live[0].originator_version, live[-1].originator_version
    if first != (gt or 0) + 1 or last - first + 1 != len(live):
        return True  # a gap at the start or inside
    return lte is not None and last < lte  # the range may go on in the archive


def merge_notifications(
    live: list[Notification], archived: list[Notification], limit: int
) -> list[Notification]:
    """The first ``limit`` of both, by position; a row in both (a crash mid-move) once."""
    if not archived:
        return live
    by_id = {n.id: n for n in archived}
    by_id.update((n.id, n) for n in live)
    return [by_id[i] for i in sorted(by_id)][:limit]
