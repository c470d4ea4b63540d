"""The event log: ``/api/v1/events`` and ``/api/v1/streams/{stream_id}/events``."""

from web.events.routes import blp

__all__ = ["blp"]
