"""Checkpoint endpoints: capture a mission (or the fleet), read, list, restore."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from web.checkpoints.schemas import (
    CheckpointCreateSchema,
    CheckpointPageSchema,
    CheckpointQuerySchema,
    CheckpointResponseSchema,
    RestoreResponseSchema,
    RestoreSchema,
)
from web.extensions import ETAG_HEADER, WRITE_HEADERS, Blueprint
from web.request_cycle import Answer, command, fleet, found, if_match, listed, written

blp = Blueprint(
    "checkpoints",
    __name__,
    url_prefix="/api/v1/checkpoints",
    description="Checkpoints: capture streams, restore them later by appending events.",
)


@blp.route("")
class Checkpoints(MethodView):
    @blp.doc(operationId="list_checkpoints")
    @blp.arguments(CheckpointQuerySchema, location="query")
    @blp.response(200, CheckpointPageSchema)
    @blp.problems(422, 503)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List checkpoints, oldest first"""
        return listed("checkpoints", fleet().list_checkpoints(**args), args)

    @blp.doc(operationId="create_checkpoint")
    @blp.arguments(CheckpointCreateSchema)
    @blp.response(201, CheckpointResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(422)
    @blp.links(
        (201,),
        restore_checkpoint="checkpoint_id=/checkpoint/id",
        get_checkpoint="checkpoint_id=/checkpoint/id",
    )
    def post(self, args: dict[str, Any]) -> Answer:
        """Checkpoint a mission with its sorties, or the whole fleet"""
        with command():
            checkpoint = fleet().create_checkpoint(**args)
        return written({"checkpoint": checkpoint}, checkpoint, 201)


@blp.route("/<checkpoint_id>")
class CheckpointById(MethodView):
    @blp.doc(operationId="get_checkpoint")
    @blp.response(200, CheckpointResponseSchema, headers=ETAG_HEADER)
    @blp.problems(404)
    def get(self, checkpoint_id: str) -> Answer:
        """Get a checkpoint"""
        checkpoint = fleet().get_checkpoint(checkpoint_id)
        return found({"checkpoint": checkpoint}, checkpoint["version"])


@blp.route("/<checkpoint_id>/restore")
class Restore(MethodView):
    @blp.doc(operationId="restore_checkpoint")
    @blp.arguments(RestoreSchema)
    @blp.response(200, RestoreResponseSchema, headers=WRITE_HEADERS)
    @blp.problems(404, 409, 422)
    @blp.conditional
    def post(self, args: dict[str, Any], checkpoint_id: str) -> Answer:
        """Restore a checkpoint: every captured stream reads as it did then

        History is kept: each restored stream records fleet_recovered, and sorties
        created after the checkpoint are cancelled. If-Match names the checkpoint's version.
        """
        expected = if_match()
        with command():
            checkpoint = fleet().restore_checkpoint(
                checkpoint_id, confirm=args["confirm"], expected_version=expected
            )
        return written({"checkpoint": checkpoint, "restored": True}, checkpoint)
