"""The event envelope: correlation, causation and request metadata.

Commands run inside an ``event_context``; every event created there carries its
correlation id, causation id and metadata. An event with no cause is the root of
its chain and gets a fresh correlation id. ``caused_by(event)`` makes the events
of a follow-up step carry the cause's ``event_id`` and inherit its correlation, unless
the caller gave a correlation id of its own (an HTTP request's ``X-Correlation-ID``):
that one wins, so every event a request records can be found by the id it sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class EventContext:
    correlation_id: str
    causation_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    given: bool = False  # the caller chose correlation_id: a cause's must not replace it


_current: ContextVar[EventContext | None] = ContextVar("fleet_event_context", default=None)


def new_id() -> str:
    return str(uuid.uuid4())


def current_context() -> EventContext | None:
    return _current.get()


@contextmanager
def event_context(
    correlation_id: str | None = None,
    causation_id: str | None = None,
    **metadata: Any,
) -> Iterator[EventContext]:
    """Run a command: its events share one correlation id (fresh unless given)."""
    ctx = EventContext(
        correlation_id=correlation_id or new_id(),
        causation_id=causation_id,
        metadata={k: v for k, v in metadata.items() if v is not None},
        given=correlation_id is not None,
    )
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


class _HasEnvelope(Protocol):
    event_id: str
    correlation_id: str


@contextmanager
def caused_by(event: _HasEnvelope) -> Iterator[EventContext]:
    """Events created inside are caused by ``event`` and continue its correlation, or the
    caller's when the caller gave one."""
    outer = _current.get()
    metadata = dict(outer.metadata) if outer else {}
    correlation_id = outer.correlation_id if outer and outer.given else event.correlation_id
    ctx = EventContext(correlation_id, event.event_id, metadata, given=bool(outer and outer.given))
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def correlation_from_context() -> str:
    ctx = _current.get()
    return ctx.correlation_id if ctx else new_id()


def causation_from_context() -> str | None:
    ctx = _current.get()
    return ctx.causation_id if ctx else None


def metadata_from_context() -> dict[str, Any]:
    ctx = _current.get()
    return dict(ctx.metadata) if ctx else {}
