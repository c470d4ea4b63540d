"""Event log queries: by position, type, stream, correlation, and a stream's history."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID

from application.errors import NotFound, ValidationError
from application.registry import event_types
from application.resources import event_resource
from application.services.base import MAX_LIMIT, Service, check_filters, check_page
from application.store.query import EventFilter
from application.waits import Interest, check_wait

FEED_PAGE = 200  # events a live feed reads at a time
DEFAULT_IDLE = 15.0  # seconds of quiet after which a feed yields None (a keep-alive)


def parse_types(types: str | Sequence[str] | None) -> tuple[str, ...]:
    if types is None:
        return ()
    names = [t.strip() for t in types.split(",")] if isinstance(types, str) else list(types)
    names = [n for n in names if n]
    valid = event_types()
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValidationError(
            {
                "type": [
                    f"unknown event type(s): {', '.join(unknown)}; valid types: {', '.join(valid)}"
                ]
            }
        )
    return tuple(names)


def interest(flt: EventFilter) -> Interest:
    """The watcher's filter for events ``flt`` would list (positions aside)."""
    return Interest(frozenset(flt.types), flt.stream_id, flt.correlation_id)


class EventFeed:
    """The iterator of ``EventService.follow``; registered with the watcher until closed.

    Not a generator: a generator that was never started runs no ``finally`` when closed,
    and the WSGI server may close a response before reading any of it.
    """

    def __init__(self, service: EventService, flt: EventFilter, after: int, idle: float):
        self.service = service
        self.flt = flt
        self.position = after
        self.idle = idle
        self.buffer: list[dict[str, Any]] = []
        self._watching = service.watcher.watching(interest(flt))
        self.waiter = self._watching.__enter__()  # raises when the server holds too many
        self.closed = False

    def __iter__(self) -> EventFeed:
        return self

    def __next__(self) -> dict[str, Any] | None:
        while not self.buffer:
            if self.closed or self.service.watcher.closed:
                self.close()
                raise StopIteration
            self._read()
            if not self.buffer and not self.waiter.wait(self.idle):
                return None  # idle: the caller may send a keep-alive
        event = self.buffer.pop(0)
        self.position = event["id"]
        return event

    def _read(self) -> None:
        page = self.service.app.index.select_event_page(
            replace(self.flt, after=self.position), FEED_PAGE
        )
        self.buffer = [event_resource(self.service.app.mapper, e) for e in page.events]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._watching.__exit__(None, None, None)


class EventService(Service):
    def events(
        self,
        type: str | Sequence[str] | None = None,  # noqa: A002 - the contract's name
        stream_id: str | None = None,
        correlation_id: str | None = None,
        after: int | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
        wait: float | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Events oldest first, with the total that match the filters.

        The index is written with the events, so every existing position is already in it:
        ``min_position`` (as the other lists take it) is only checked to exist. With
        ``wait`` (seconds, 0-30), an empty answer waits until a matching event past ``after``
        (0 when not given) exists, or the time is up.
        """
        check_page(limit, offset)
        self._existing_position(min_position)
        check_filters(type=type, stream_id=stream_id, correlation_id=correlation_id)
        seconds = check_wait(wait)
        if seconds > 0 and after is None:
            after = 0
        flt = EventFilter(
            types=parse_types(type), stream_id=stream_id, correlation_id=correlation_id, after=after
        )

        def attempt(_: int) -> tuple[list[dict[str, Any]], int]:
            page = self.app.index.select_event_page(flt, limit, offset)
            return [event_resource(self.app.mapper, e) for e in page.events], page.total

        return self.watcher.first(seconds, interest(flt), attempt, lambda found: bool(found[0]))

    def follow(
        self,
        after: int = 0,
        type: str | Sequence[str] | None = None,  # noqa: A002 - the contract's name
        stream_id: str | None = None,
        correlation_id: str | None = None,
        idle: float | None = None,
    ) -> EventFeed:
        """The events past ``after`` matching the filters, then each new one as it comes.

        An iterator of event dicts in position order, with None whenever ``idle``
        seconds (default ``FLEET_STREAM_IDLE_SECONDS``, 15) pass without one; it ends
        when the Fleet stops its waits. Close it to stop following. Bad filters raise
        here, before anything is read.
        """
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValidationError({"after": ["must be a position, 0 or more"]})
        check_filters(type=type, stream_id=stream_id, correlation_id=correlation_id)
        flt = EventFilter(
            types=parse_types(type), stream_id=stream_id, correlation_id=correlation_id
        )
        if idle is None:
            idle = float(self.app.env.get("FLEET_STREAM_IDLE_SECONDS") or DEFAULT_IDLE)
        return EventFeed(self, flt, after, idle)

    def subscribe(
        self,
        after: int = 0,
        type: str | Sequence[str] | None = None,  # noqa: A002 - the contract's name
        stream_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every event past ``after`` matching the filters, following the log until the
        Fleet stops its waits (or the caller stops iterating)."""
        feed = self.follow(after, type, stream_id, correlation_id)
        try:
            for event in feed:
                if event is not None:
                    yield event
        finally:
            feed.close()

    def get_event(self, position: int) -> dict[str, Any]:
        page = self.app.index.select_event_page(EventFilter(position=position), 1)
        if not page.events:
            raise NotFound(f"event {position} not found")
        return event_resource(self.app.mapper, page.events[0])

    def stream_events(
        self,
        stream_id: str,
        from_sequence: int | None = None,
        to_sequence: int | None = None,
    ) -> list[dict[str, Any]]:
        """A stream's events in sequence order, ``from``/``to`` inclusive."""
        check_filters(stream_id=stream_id)
        if not self._stream_exists(stream_id):
            raise NotFound(f"stream {stream_id!r} not found")
        # Sequence bounds are matched in SQL against the live log; with archived events,
        # against every event of the stream here.
        archive = self.app.archive
        archived = archive is not None and archive.exists() and archive.has_stream(UUID(stream_id))
        if archived:
            flt = EventFilter(stream_id=stream_id)
        else:
            flt = EventFilter(
                stream_id=stream_id, from_sequence=from_sequence, to_sequence=to_sequence
            )
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.app.index.select_event_page(flt, MAX_LIMIT, offset)
            found.extend(event_resource(self.app.mapper, e) for e in page.events)
            offset += len(page.events)
            if offset >= page.total or not page.events:
                break
        low, high = from_sequence or 1, to_sequence
        return [
            e
            for e in found
            if e["sequence_number"] >= low and (high is None or e["sequence_number"] <= high)
        ]

    def _stream_exists(self, stream_id: str) -> bool:
        try:
            stream = UUID(stream_id)
        except ValueError:
            return False
        return bool(self.app.recorder.select_events(stream, limit=1))

    def head_position(self) -> int:
        return self._head()
