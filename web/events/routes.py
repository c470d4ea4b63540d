"""Event log endpoints: the whole log filtered, one event, one stream's history."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from web.context import fleet, listed
from web.events.schemas import (
    EventPageSchema,
    EventQuerySchema,
    EventResponseSchema,
    StreamEventsSchema,
    StreamQuerySchema,
)
from web.extensions import Blueprint
from web.schemas import MAX_INT

blp = Blueprint(
    "events",
    __name__,
    url_prefix="/api/v1",
    description="The event log, oldest first; every event with its envelope.",
)


@blp.route("/events")
class Events(MethodView):
    @blp.doc(operationId="events")
    @blp.arguments(EventQuerySchema, location="query")
    @blp.response(200, EventPageSchema)
    @blp.problems(422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List events, oldest first (by type, stream, correlation, position)

        The log is read directly, never behind: ``min_position`` is accepted as on the
        other lists, and answers at once.
        """
        return listed("events", fleet().events(**args), args)


@blp.route(f"/events/<int(max={MAX_INT}):position>")
class EventByPosition(MethodView):
    @blp.doc(operationId="get_event")
    @blp.response(200, EventResponseSchema)
    @blp.problems(404)
    def get(self, position: int) -> dict[str, Any]:
        """Get one event by its global position"""
        return {"event": fleet().get_event(position)}


@blp.route("/streams/<stream_id>/events")
class StreamEvents(MethodView):
    @blp.doc(operationId="stream_events")
    @blp.arguments(StreamQuerySchema, location="query")
    @blp.response(200, StreamEventsSchema)
    @blp.problems(404, 422)
    def get(self, args: dict[str, Any], stream_id: str) -> dict[str, Any]:
        """A stream's events in sequence order (from/to inclusive)"""
        return {"events": fleet().stream_events(stream_id, **args), "stream_id": stream_id}
