"""Cursors: how far a consumer has got in a stream, created on first use.

The cursor is read from its own small aggregate (one per consumer and stream,
its id derived from the pair), so it needs no projection and never lags.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from application.errors import NotFound, PreconditionFailed, ValidationError
from application.idempotency import idempotent
from application.outcomes import Written
from application.registry import get_event_type
from application.resources import cursor_resource
from application.services.base import Service
from domain.base import FleetAggregate
from domain.cursor import Cursor, cursor_stream_id


class CursorService(Service):
    @idempotent
    def advance_cursor(
        self,
        consumer_id: str,
        stream_id: str,
        position: int,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        """Move a cursor forward (409 backwards). Advancing to where it already is
        records nothing and answers the cursor as it is, so a retried advance is harmless."""
        data = _validated("cursor_advanced", consumer_id, stream_id, position)
        return self._on_cursor(
            data,
            lambda: Cursor.open_advanced(**data),
            lambda cursor: cursor.advance(data["position"]),
            expected_version,
        )

    @idempotent
    def reset_cursor(
        self,
        consumer_id: str,
        stream_id: str,
        position: int = 0,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Written:
        """Move a cursor anywhere (default 0); always recorded."""
        data = _validated("cursor_reset", consumer_id, stream_id, position)
        return self._on_cursor(
            data,
            lambda: Cursor.open_reset(**data),
            lambda cursor: cursor.reset(data["position"]),
            expected_version,
        )

    def get_cursor(self, cursor_id: str) -> dict[str, Any]:
        try:
            stream = UUID(cursor_id)
        except ValueError:
            raise NotFound(f"cursor {cursor_id!r} not found") from None
        return cursor_resource(self._load(Cursor, stream, f"cursor {cursor_id!r}"))

    def _on_cursor(
        self,
        data: dict[str, Any],
        open_cursor: Callable[[], Cursor],
        move: Callable[[Cursor], Any],
        expected_version: int | None,
    ) -> Written:
        """Move the cursor, or open it on first use (then ``expected_version`` cannot match)."""
        stream = cursor_stream_id(data["consumer_id"], data["target_stream_id"])
        holder: list[Cursor] = []

        def decide() -> list[FleetAggregate]:
            try:
                cursor: Cursor = self.app.get(stream)
            except AggregateNotFoundError:
                if expected_version is not None:
                    raise PreconditionFailed(expected_version, 0) from None  # none yet
                cursor = open_cursor()
            else:
                self.check_version(cursor, expected_version)
                move(cursor)
            holder[:] = [cursor]
            return [cursor]

        result = self._command(
            decide, lambda: cursor_resource(holder[0]), expected_version=expected_version
        )
        return result


def _validated(event_type: str, consumer_id: str, stream_id: str, position: int) -> dict[str, Any]:
    """The event's fields; errors name ``stream_id`` as the caller called it."""
    try:
        return get_event_type(event_type).validate(
            {"consumer_id": consumer_id, "target_stream_id": stream_id, "position": position},
            partial=("previous_position",),
        )
    except ValidationError as exc:
        errors = {("stream_id" if k == "target_stream_id" else k): v for k, v in exc.errors.items()}
        raise ValidationError(errors) from None
