"""Marshmallow schemas for every event type's data, keyed by public ``event_type``."""

from __future__ import annotations

from marshmallow import Schema

from application.event_schemas import (
    checkpoint,
    cursor,
    fleet,
    lock,
    mailbox,
    mission,
    sortie,
    specialist,
)

EVENT_SCHEMAS: dict[str, type[Schema]] = {
    **specialist.SCHEMAS,
    **fleet.SCHEMAS,
    **mission.SCHEMAS,
    **sortie.SCHEMAS,
    **checkpoint.SCHEMAS,
    **mailbox.SCHEMAS,
    **cursor.SCHEMAS,
    **lock.SCHEMAS,
}
