"""Sortie endpoints: create, read, list, and the PATCH that drives a sortie's lifecycle."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from web.extensions import ETAG_HEADER, WRITE_HEADERS, Blueprint
from web.request_cycle import Answer, command, fleet, found, if_match, listed, written
from web.schemas import TimeTravelQuerySchema, WaitQuerySchema
from web.sorties.schemas import (
    ClaimSchema,
    SortieCreateSchema,
    SortiePageSchema,
    SortiePatchSchema,
    SortieQuerySchema,
    SortieResponseSchema,
)

blp = Blueprint(
    "sorties",
    __name__,
    url_prefix="/api/v1/sorties",
    description="Sorties: units of work, with dependencies, assignment, review and progress.",
)


@blp.route("")
class Sorties(MethodView):
    @blp.doc(operationId="list_sorties")
    @blp.arguments(SortieQuerySchema, location="query")
    @blp.response(200, SortiePageSchema)
    @blp.problems(422, 503)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List sorties, oldest first"""
        return listed("sorties", fleet().list_sorties(**args), args)

    @blp.doc(operationId="create_sortie")
    @blp.arguments(SortieCreateSchema)
    @blp.response(201, SortieResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(409, 422)
    @blp.links((201,), update_sortie="sortie_id=/sortie/id", get_sortie="sortie_id=/sortie/id")
    def post(self, args: dict[str, Any]) -> Answer:
        """Create a sortie (optionally in a mission, with dependencies, assigned)"""
        with command():
            sortie = fleet().create_sortie(**args)
        return written({"sortie": sortie}, sortie, 201)


@blp.route("/claim")
class Claim(MethodView):
    @blp.doc(operationId="claim_sortie")
    @blp.arguments(ClaimSchema)
    @blp.arguments(WaitQuerySchema, location="query")
    @blp.response(200, SortieResponseSchema, headers=WRITE_HEADERS)
    @blp.alt_response(
        204, success=True, description="No sortie is claimable by this claimer (after `wait`)."
    )
    @blp.problems(409, 422, 503)
    def post(self, args: dict[str, Any], query: dict[str, Any]) -> Answer | Response:
        """Claim the best claimable sortie: it is assigned to the claimer

        Claimable: pending, unassigned, every dependency completed, every required
        capability among the claimer's. Best: highest priority, then oldest. Racing
        claimers each get a different sortie; 204 when none is left.
        """
        with command():
            sortie = fleet().claim_sortie(**args, **query)
        if sortie is None:
            return Response(status=204)
        return written({"sortie": sortie}, sortie)


@blp.route("/<id(claim):sortie_id>")  # "claim" is a route word, never a sortie id
class SortieById(MethodView):
    @blp.doc(operationId="get_sortie")
    @blp.arguments(TimeTravelQuerySchema, location="query")
    @blp.response(200, SortieResponseSchema, headers=ETAG_HEADER)
    @blp.problems(404, 422)
    def get(self, args: dict[str, Any], sortie_id: str) -> Answer:
        """Get a sortie (optionally as it was at a version or time)"""
        sortie = fleet().get_sortie(sortie_id, **args)
        return found({"sortie": sortie}, sortie["version"])

    @blp.doc(operationId="update_sortie")
    @blp.arguments(SortiePatchSchema)
    @blp.response(200, SortieResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422)
    @blp.conditional
    def patch(self, args: dict[str, Any], sortie_id: str) -> Answer:
        """Change a sortie: at most one status change, fields, progress

        A status change the lifecycle forbids is a 409 whose detail names the
        allowed next statuses.
        """
        with command():
            sortie = fleet().update_sortie(sortie_id, expected_version=if_match(), **args)
        return written({"sortie": sortie}, sortie)
