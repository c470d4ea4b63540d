"""Marshmallow schemas for every event type's data, keyed by public ``event_type``."""

from __future__ import annotations

from marshmallow import Schema

from application.schemas import fleet, specialist

EVENT_SCHEMAS: dict[str, type[Schema]] = {
    **specialist.SCHEMAS,
    **fleet.SCHEMAS,
}
