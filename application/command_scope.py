"""Command scopes: the correlation shared by a command's events, and the position of its last
write (what ``Fleet.context()`` yields)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from domain.envelope import EventContext, current_context, event_context


@dataclass
class CommandScope:
    """What the caller learns about the writes made inside ``Fleet.context()``."""

    events: EventContext
    position: int | None = None  # of the last write inside (each command also returns it)


_scope: ContextVar[CommandScope | None] = ContextVar("fleet_command_scope", default=None)


@contextmanager
def command_scope(
    correlation_id: str | None = None,
    causation_id: str | None = None,
    **metadata: Any,
) -> Iterator[CommandScope]:
    """Commands run here share one correlation id; ``position`` tracks the last write."""
    with event_context(correlation_id, causation_id, **metadata) as events:
        scope = CommandScope(events)
        token = _scope.set(scope)
        try:
            yield scope
        finally:
            _scope.reset(token)


@contextmanager
def ensure_scope() -> Iterator[CommandScope]:
    """Use the caller's scope, or open one so a command's events share a correlation id."""
    scope = _scope.get()
    if scope is not None and current_context() is scope.events:
        yield scope
        return
    with command_scope() as fresh:
        yield fresh


def note_position(position: int) -> None:
    scope = _scope.get()
    if scope is not None:
        scope.position = position
