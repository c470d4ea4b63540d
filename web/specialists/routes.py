"""Specialist endpoints: register, read, list, heartbeat, complete, fail, deregister."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from domain.specialist import RESERVED_IDS
from web.extensions import ETAG_HEADER, WRITE_HEADERS, Blueprint
from web.request_cycle import Answer, command, fleet, found, if_match, listed, written
from web.schemas import TimeTravelQuerySchema
from web.specialists.schemas import (
    CompleteSchema,
    FailSchema,
    HeartbeatSchema,
    RegisterSchema,
    SpecialistPageSchema,
    SpecialistQuerySchema,
    SpecialistResponseSchema,
)

ID = f"<id({','.join(RESERVED_IDS)}):specialist_id>"  # never a reserved word: see IdConverter

blp = Blueprint(
    "specialists",
    __name__,
    url_prefix="/api/v1/specialists",
    description="The agents of a fleet: registration, heartbeats and their end.",
)


@blp.route("/register")
class Register(MethodView):
    @blp.doc(operationId="register_specialist")
    @blp.arguments(RegisterSchema)
    @blp.response(201, SpecialistResponseSchema, headers=WRITE_HEADERS)
    @blp.alt_response(
        200,
        schema=SpecialistResponseSchema,
        headers=WRITE_HEADERS,
        success=True,
        description="The specialist was known: registered again (updated).",
    )
    @blp.problems(422)
    @blp.conditional
    @blp.links(
        (200, 201),
        heartbeat="specialist_id=/specialist/id",
        get_specialist="specialist_id=/specialist/id",
        complete_specialist="specialist_id=/specialist/id",
    )
    def post(self, args: dict[str, Any]) -> Answer:
        """Register a specialist (201), or re-register a known one (200)

        With If-Match, only a known specialist at that version is re-registered.
        """
        expected = if_match()
        with command():
            specialist = fleet().register_specialist(**args, expected_version=expected)
        status = 201 if specialist.created else 200
        return written({"specialist": specialist}, specialist, status)


@blp.route("")
class Specialists(MethodView):
    @blp.doc(operationId="list_specialists")
    @blp.arguments(SpecialistQuerySchema, location="query")
    @blp.response(200, SpecialistPageSchema)
    @blp.problems(422, 503)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List specialists, ordered by id"""
        return listed("specialists", fleet().list_specialists(**args), args)


@blp.route(f"/{ID}")
class SpecialistById(MethodView):
    @blp.doc(operationId="get_specialist")
    @blp.arguments(TimeTravelQuerySchema, location="query")
    @blp.response(200, SpecialistResponseSchema, headers=ETAG_HEADER)
    @blp.problems(404, 422)
    def get(self, args: dict[str, Any], specialist_id: str) -> Answer:
        """Get a specialist (optionally as it was at a version or time)"""
        specialist = fleet().get_specialist(specialist_id, **args)
        return found({"specialist": specialist}, specialist["version"])

    @blp.doc(operationId="deregister_specialist")
    @blp.response(200, SpecialistResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409)
    @blp.conditional
    def delete(self, specialist_id: str) -> Answer:
        """Deregister a specialist (its status becomes inactive)"""
        with command():
            specialist = fleet().deregister_specialist(specialist_id, expected_version=if_match())
        return written({"specialist": specialist}, specialist)


@blp.route(f"/{ID}/heartbeat", methods=["PATCH", "POST"])
class Heartbeat(MethodView):
    @blp.doc(operationId="heartbeat")
    @blp.arguments(HeartbeatSchema, required=False)
    @blp.response(200, SpecialistResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422)
    @blp.conditional
    def patch(self, args: dict[str, Any], specialist_id: str) -> Answer:
        """Record a heartbeat (status, current sortie, metrics)"""
        return heartbeat(args, specialist_id)

    @blp.doc(operationId="heartbeat_by_post")
    @blp.arguments(HeartbeatSchema, required=False)
    @blp.response(200, SpecialistResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422)
    @blp.conditional
    def post(self, args: dict[str, Any], specialist_id: str) -> Answer:
        """Record a heartbeat (POST works like PATCH)"""
        return heartbeat(args, specialist_id)


def heartbeat(args: dict[str, Any], specialist_id: str) -> Answer:
    with command():
        specialist = fleet().heartbeat(specialist_id, expected_version=if_match(), **args)
    return written({"specialist": specialist}, specialist)


@blp.route(f"/{ID}/complete")
class Complete(MethodView):
    @blp.doc(operationId="complete_specialist")
    @blp.arguments(CompleteSchema)
    @blp.response(200, SpecialistResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422)
    @blp.conditional
    def post(self, args: dict[str, Any], specialist_id: str) -> Answer:
        """Mark a specialist completed"""
        with command():
            specialist = fleet().complete_specialist(
                specialist_id, expected_version=if_match(), **args
            )
        return written({"specialist": specialist}, specialist)


@blp.route(f"/{ID}/fail")
class Fail(MethodView):
    @blp.doc(operationId="fail_specialist")
    @blp.arguments(FailSchema)
    @blp.response(200, SpecialistResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422)
    @blp.conditional
    def post(self, args: dict[str, Any], specialist_id: str) -> Answer:
        """Mark a specialist failed"""
        with command():
            specialist = fleet().fail_specialist(specialist_id, expected_version=if_match(), **args)
        return written({"specialist": specialist}, specialist)
