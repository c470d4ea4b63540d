"""Lock endpoints: acquire, release, read, list."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from web.extensions import ETAG_HEADER, WRITE_HEADERS, Blueprint
from web.locks.schemas import (
    AcquireSchema,
    LockConflictSchema,
    LockPageSchema,
    LockQuerySchema,
    LockResponseSchema,
    ReleaseSchema,
)
from web.problems import PROBLEM_JSON
from web.request_cycle import Answer, command, fleet, found, if_match, listed, written

blp = Blueprint(
    "locks",
    __name__,
    url_prefix="/api/v1/locks",
    description="File locks: at most one active lock per normalised path.",
)


@blp.route("")
class Locks(MethodView):
    @blp.doc(operationId="list_locks")
    @blp.arguments(LockQuerySchema, location="query")
    @blp.response(200, LockPageSchema)
    @blp.problems(422, 503)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List locks, oldest first (active ones unless status says otherwise)"""
        return listed("locks", fleet().list_locks(**args), args)


@blp.route("/acquire")
class Acquire(MethodView):
    @blp.doc(operationId="acquire_lock")
    @blp.arguments(AcquireSchema)
    @blp.response(201, LockResponseSchema, headers=WRITE_HEADERS)
    @blp.alt_response(
        409,
        schema=LockConflictSchema,
        content_type=PROBLEM_JSON,
        description="The path is locked: lock names the holder; lock_conflict is recorded.",
    )
    @blp.problems(422)
    @blp.links((201,), release_lock="lock_id=/lock/id", get_lock="lock_id=/lock/id")
    def post(self, args: dict[str, Any]) -> Answer:
        """Acquire the lock of a file (201), or learn who holds it (409)

        The path is normalised first (a//b/./c/../d/ is a/b/d). A lock past its
        expires_at no longer holds: acquiring its path records lock_timeout first.
        """
        with command():
            lock = fleet().acquire_lock(**args)
        return written({"lock": lock}, lock, 201)


@blp.route("/<id(acquire):lock_id>")
class LockById(MethodView):
    @blp.doc(operationId="get_lock")
    @blp.response(200, LockResponseSchema, headers=ETAG_HEADER)
    @blp.problems(404)
    def get(self, lock_id: str) -> Answer:
        """Get a lock (a current one, or one that ended)"""
        lock = fleet().get_lock(lock_id)
        return found({"lock": lock}, lock["version"])


@blp.route("/<id(acquire):lock_id>/release")
class Release(MethodView):
    @blp.doc(operationId="release_lock")
    @blp.arguments(ReleaseSchema)
    @blp.response(200, LockResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(403, 404, 409, 422)
    @blp.conditional
    def post(self, args: dict[str, Any], lock_id: str) -> Answer:
        """Release a lock: its holder, or anyone with force (403 otherwise)

        A lock that already ended, or is no longer its path's current lock, is a 409.
        """
        with command():
            lock = fleet().release_lock(lock_id, expected_version=if_match(), **args)
        return written({"lock": lock}, lock)
