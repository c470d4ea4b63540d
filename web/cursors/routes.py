"""Cursor endpoints: advance (created on first use), reset, read."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from web.cursors.schemas import AdvanceSchema, CursorResponseSchema, ResetSchema
from web.extensions import ETAG_HEADER, WRITE_HEADERS, Blueprint
from web.request_cycle import Answer, command, fleet, found, if_match, written

blp = Blueprint(
    "cursors",
    __name__,
    url_prefix="/api/v1/cursors",
    description="Cursors: how far a consumer has got in a stream, one per consumer and stream.",
)


@blp.route("/advance")
class Advance(MethodView):
    @blp.doc(operationId="advance_cursor")
    @blp.arguments(AdvanceSchema)
    @blp.response(200, CursorResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(409, 422)
    @blp.conditional
    @blp.links((200,), get_cursor="cursor_id=/cursor/id")
    def post(self, args: dict[str, Any]) -> Answer:
        """Move a cursor forward (created on first use)

        Backwards is a 409 (use reset). Advancing to the current position records nothing
        and answers the cursor as it is. If-Match on a cursor not yet created is a 412.
        """
        with command():
            cursor = fleet().advance_cursor(expected_version=if_match(), **args)
        return written({"cursor": cursor}, cursor)


@blp.route("/reset")
class Reset(MethodView):
    @blp.doc(operationId="reset_cursor")
    @blp.arguments(ResetSchema)
    @blp.response(200, CursorResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(422)
    @blp.conditional
    def post(self, args: dict[str, Any]) -> Answer:
        """Move a cursor anywhere, default 0 (created on first use)"""
        with command():
            cursor = fleet().reset_cursor(expected_version=if_match(), **args)
        return written({"cursor": cursor}, cursor)


@blp.route("/<id(advance,reset):cursor_id>")
class CursorById(MethodView):
    @blp.doc(operationId="get_cursor")
    @blp.response(200, CursorResponseSchema, headers=ETAG_HEADER)
    @blp.problems(404)
    def get(self, cursor_id: str) -> Answer:
        """Get a cursor"""
        cursor = fleet().get_cursor(cursor_id)
        return found({"cursor": cursor}, cursor["version"])
