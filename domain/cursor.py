"""Cursors: how far a consumer has got in a stream (its own counter, opaque to Fleet).

One small stream per (consumer, target stream), so cursor moves never grow
the target's stream or contend with its writers. A new cursor is at 0.

Either command may come first, so each event type has a stream-starting class
and a ``.again`` class with the same public type: ``Created`` /
``Advanced`` for ``cursor_advanced``, ``CreatedByReset`` / ``Reset`` for
``cursor_reset``.

``advance`` never moves backwards (RuleError). Advancing to the current
position records nothing, so a retried advance is harmless and the stream
only grows when the cursor moves; first use always records (it creates the
stream). ``reset`` may go anywhere and always records: it is a deliberate,
audited operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import FleetAggregate
from domain.errors import RuleError

START = 0


def cursor_stream_id(consumer_id: str, target_stream_id: str) -> UUID:
    # Quoting keeps the pair unambiguous whatever characters the ids hold.
    return uuid5(
        NAMESPACE_URL,
        f"fleet:/cursors/{quote(consumer_id, safe='')}/{quote(target_stream_id, safe='')}",
    )


def _check_position(position: Any) -> None:
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise RuleError(f"position must be an integer >= 0, not {position!r}")


@dataclass(frozen=True, kw_only=True)
class CursorMoved:
    """The data of cursor_advanced and cursor_reset, shared by each type's two classes."""

    consumer_id: str
    target_stream_id: str
    position: int
    previous_position: int


class Cursor(FleetAggregate):
    TOPIC = "cursor"
    STREAM_TYPE = "cursor"
    DATETIME_FIELDS = frozenset()

    @staticmethod
    def create_id(consumer_id: str, target_stream_id: str) -> UUID:
        return cursor_stream_id(consumer_id, target_stream_id)

    class Created(CursorMoved, FleetAggregate.Created):
        """The cursor's first use was an advance."""

        TOPIC = "cursor_advanced"
        event_type = "cursor_advanced"

        def apply(self, aggregate: Cursor) -> None:
            aggregate._start(self)

    class Advanced(CursorMoved, FleetAggregate.Event):
        TOPIC = "cursor_advanced.again"
        event_type = "cursor_advanced"

        def apply(self, aggregate: Cursor) -> None:
            aggregate._move(self)

    class CreatedByReset(CursorMoved, FleetAggregate.Created):
        """The cursor's first use was a reset."""

        TOPIC = "cursor_reset"
        event_type = "cursor_reset"

        def apply(self, aggregate: Cursor) -> None:
            aggregate._start(self)
            aggregate.reset_count = 1

    class Reset(CursorMoved, FleetAggregate.Event):
        TOPIC = "cursor_reset.again"
        event_type = "cursor_reset"

        def apply(self, aggregate: Cursor) -> None:
            aggregate._move(self)
            aggregate.reset_count += 1

    def _start(self, event: CursorMoved) -> None:
        self.consumer_id = event.consumer_id
        self.target_stream_id = event.target_stream_id
        self.reset_count = 0
        self._move(event)

    def _move(self, event: CursorMoved) -> None:
        self.position = event.position
        self.previous_position = event.previous_position

    # Commands: check the rule, then record the event.

    @classmethod
    def open_advanced(cls, consumer_id: str, target_stream_id: str, position: int) -> Cursor:
        """First use by an advance: the cursor goes from 0 to ``position``."""
        _check_position(position)
        return cls._create(
            cls.Created,
            consumer_id=consumer_id,
            target_stream_id=target_stream_id,
            position=position,
            previous_position=START,
        )

    @classmethod
    def open_reset(cls, consumer_id: str, target_stream_id: str, position: int = START) -> Cursor:
        """First use by a reset: the cursor goes from 0 to ``position``."""
        _check_position(position)
        return cls._create(
            cls.CreatedByReset,
            consumer_id=consumer_id,
            target_stream_id=target_stream_id,
            position=position,
            previous_position=START,
        )

    def advance(self, position: int) -> bool:
        """Move forward to ``position``; True when an event was recorded."""
        _check_position(position)
        if position < self.position:
            raise RuleError(
                f"cursor of {self.consumer_id!r} on {self.target_stream_id!r} cannot move "
                f"backwards from {self.position} to {position}; use reset"
            )
        if position == self.position:
            return False
        self.trigger_event(
            self.Advanced,
            consumer_id=self.consumer_id,
            target_stream_id=self.target_stream_id,
            position=position,
            previous_position=self.position,
        )
        return True

    def reset(self, position: int = START) -> None:
        """Move to any ``position`` (default 0)."""
        _check_position(position)
        self.trigger_event(
            self.Reset,
            consumer_id=self.consumer_id,
            target_stream_id=self.target_stream_id,
            position=position,
            previous_position=self.position,
        )
