"""Event log endpoints: the whole log filtered, one event, one stream's history."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from flask import Response, request
from flask.views import MethodView
from werkzeug.exceptions import BadRequest

from application.services.events import EventFeed
from web.events.schemas import (
    EventPageSchema,
    EventQuerySchema,
    EventResponseSchema,
    FeedQuerySchema,
    StreamEventsSchema,
    StreamQuerySchema,
)
from web.extensions import Blueprint
from web.request_cycle import fleet, listed
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


LAST_EVENT_ID = re.compile(r"[0-9]{1,19}")
SSE = {
    "description": "Server-Sent Events: per event `id: <position>`, `event: <event_type>`, "
    "`data: <the event as /events gives it>`; a `:` comment line whenever 15 s pass without "
    "an event (and one at the start).",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


LAST_EVENT_ID_HEADER = {
    "in": "header",
    "name": "Last-Event-ID",
    "required": False,
    "description": "Resume after this position (the last `id:` received); anything but a "
    "position is a 400.",
    "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
}


@blp.route("/events/stream", parameters=[LAST_EVENT_ID_HEADER])
class EventStream(MethodView):
    @blp.doc(operationId="subscribe")
    @blp.arguments(FeedQuerySchema, location="query")
    @blp.doc(responses={200: SSE})
    @blp.problems(422, 503)
    def get(self, args: dict[str, Any]) -> Response:
        """Follow the event log live (Server-Sent Events), in position order

        Starts after Last-Event-ID, else after `after`, else from the first event;
        reconnecting with the last id received misses and repeats nothing.
        """
        header = request.headers.get("Last-Event-ID")
        if header is not None:
            if not LAST_EVENT_ID.fullmatch(header.strip()):
                raise BadRequest(f"Last-Event-ID must be an event position; got {header[:40]!r}.")
            args["after"] = int(header.strip())
            if args["after"] > MAX_INT:
                raise BadRequest("Last-Event-ID is past any position.")
        feed = fleet().follow(**args)
        response = Response(server_sent(feed), mimetype="text/event-stream")
        response.call_on_close(feed.close)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"  # proxies: pass each event on at once
        return response


def server_sent(feed: EventFeed) -> Iterator[str]:
    yield ": fleet event stream\n\n"  # the headers go out now, not with the first event
    for event in feed:
        if event is None:
            yield ": keep-alive\n\n"
        else:
            data = json.dumps(event, separators=(",", ":"))
            yield f"id: {event['id']}\nevent: {event['event_type']}\ndata: {data}\n\n"


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
