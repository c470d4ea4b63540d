"""Mission endpoints: create, read (with its sorties), list, update."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from web.extensions import ETAG_HEADER, WRITE_HEADERS, Blueprint
from web.missions.schemas import (
    MissionCreateSchema,
    MissionDetailSchema,
    MissionPageSchema,
    MissionPatchSchema,
    MissionQuerySchema,
    MissionResponseSchema,
)
from web.request_cycle import Answer, command, fleet, found, if_match, listed, written
from web.schemas import TimeTravelQuerySchema

blp = Blueprint(
    "missions",
    __name__,
    url_prefix="/api/v1/missions",
    description="Missions: goals a fleet works on, split into sorties.",
)


@blp.route("")
class Missions(MethodView):
    @blp.doc(operationId="list_missions")
    @blp.arguments(MissionQuerySchema, location="query")
    @blp.response(200, MissionPageSchema)
    @blp.problems(422, 503)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List missions, oldest first"""
        return listed("missions", fleet().list_missions(**args), args)

    @blp.doc(operationId="create_mission")
    @blp.arguments(MissionCreateSchema)
    @blp.response(201, MissionResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(422)
    @blp.links(
        (201,), update_mission="mission_id=/mission/id", get_mission="mission_id=/mission/id"
    )
    def post(self, args: dict[str, Any]) -> Answer:
        """Create a mission"""
        with command():
            mission = fleet().create_mission(**args)
        return written({"mission": mission}, mission, 201)


@blp.route("/<mission_id>")
class MissionById(MethodView):
    @blp.doc(operationId="get_mission")
    @blp.arguments(TimeTravelQuerySchema, location="query")
    @blp.response(200, MissionDetailSchema, headers=ETAG_HEADER)
    @blp.problems(404, 422, 503)
    def get(self, args: dict[str, Any], mission_id: str) -> Answer:
        """Get a mission and its sorties (the mission optionally as it was then)

        With ``version`` or ``as_of`` the mission, its ``progress`` and its ``sorties``
        are answered as they were then.
        """
        mission = fleet().get_mission(mission_id, **args)
        sorties = fleet().mission_sorties(mission_id, **args)
        return found({"mission": mission, "sorties": sorties}, mission["version"])

    @blp.doc(operationId="update_mission")
    @blp.arguments(MissionPatchSchema)
    @blp.response(200, MissionResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422)
    @blp.conditional
    def patch(self, args: dict[str, Any], mission_id: str) -> Answer:
        """Update a mission's fields and/or move it to a new status"""
        with command():
            mission = fleet().update_mission(mission_id, expected_version=if_match(), **args)
        return written({"mission": mission}, mission)
