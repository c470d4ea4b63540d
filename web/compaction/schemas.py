"""Request and response schemas of the compaction job."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from application.event_schemas.base import text
from web.schemas import AnswerSchema, BodySchema, timestamp


class CompactionSchema(BodySchema):
    stream_id = text(
        1,
        200,
        metadata={
            "description": "Compact only this stream (whenever it has events since its last "
            "snapshot); without it, every stream past FLEET_COMPACTION_THRESHOLD."
        },
    )


class CompactedStreamSchema(ma.Schema):
    stream_id = fields.String(required=True)
    stream_type = fields.String(required=True)
    from_sequence = fields.Integer(
        required=True, metadata={"description": "First event not in an earlier snapshot."}
    )
    to_sequence = fields.Integer(
        required=True, metadata={"description": "Last event before context_compacted."}
    )
    snapshot_version = fields.Integer(
        required=True,
        metadata={"description": "Version of context_compacted, and of the snapshot taken."},
    )


class CompactionPolicySchema(ma.Schema):
    threshold = fields.Integer(
        required=True,
        metadata={
            "description": "Events since the last snapshot that make a "
            "stream due (FLEET_COMPACTION_THRESHOLD)."
        },
    )
    keep_snapshots = fields.Integer(
        required=True, metadata={"description": "Snapshots kept per stream (FLEET_SNAPSHOT_KEEP)."}
    )
    keep_days = fields.Float(
        required=True,
        metadata={"description": "Younger snapshots are kept too (FLEET_SNAPSHOT_KEEP_DAYS)."},
    )
    archive_after_days = fields.Float(
        required=True, metadata={"description": "FLEET_ARCHIVE_AFTER_DAYS (archive only)."}
    )
    archive_batch = fields.Integer(
        required=True, metadata={"description": "FLEET_ARCHIVE_BATCH (archive only)."}
    )


class ArchivedStreamSchema(ma.Schema):
    stream_id = fields.String(required=True)
    to_version = fields.Integer(required=True)
    events = fields.Integer(required=True, metadata={"description": "Events moved."})


class CompactionReportSchema(AnswerSchema):
    streams_examined = fields.Integer(required=True)
    streams_compacted = fields.Integer(required=True)
    snapshots_pruned = fields.Integer(required=True)
    events_archived = fields.Integer(
        required=True,
        metadata={"description": "Always 0 here: archiving is `fleet compact --archive`."},
    )
    compression = fields.Boolean(
        required=True, metadata={"description": "New rows are stored compressed."}
    )
    policy = fields.Nested(CompactionPolicySchema, required=True)
    started_at = timestamp(required=True)
    duration_ms = fields.Float(required=True)
    streams = fields.List(fields.Nested(CompactedStreamSchema), required=True)
    archived = fields.List(
        fields.Nested(ArchivedStreamSchema),
        required=True,
        metadata={"description": "Always empty here: archiving is `fleet compact --archive`."},
    )
