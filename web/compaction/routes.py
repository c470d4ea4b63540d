"""``POST /api/v1/compaction``: run the compaction job now and answer its report."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from web.compaction.schemas import CompactionReportSchema, CompactionSchema
from web.extensions import WRITE_HEADERS, Blueprint
from web.request_cycle import Answer, command, fleet, written

POSITION_HEADER = {"X-Fleet-Position": WRITE_HEADERS["X-Fleet-Position"]}

blp = Blueprint(
    "compaction",
    __name__,
    url_prefix="/api/v1/compaction",
    description="Operations: snapshot grown streams, record context_compacted, prune snapshots.",
)


@blp.route("")
class Compaction(MethodView):
    @blp.doc(operationId="compact")
    @blp.arguments(CompactionSchema, required=False)  # no body (or {}) compacts every stream
    @blp.response(200, CompactionReportSchema, headers=POSITION_HEADER)
    @blp.problems(422)
    def post(self, args: dict[str, Any]) -> Answer:
        """Run the compaction job now

        Every stream with FLEET_COMPACTION_THRESHOLD or more events since its last snapshot
        (or the one stream given) records context_compacted and is snapshotted at that
        version; then old snapshots are pruned (the newest FLEET_SNAPSHOT_KEEP per stream,
        and any younger than FLEET_SNAPSHOT_KEEP_DAYS, are kept). Events are never changed.
        """
        with command():
            report = fleet().compact(**args)
        return written(report, report)
