"""Compaction: ``/api/v1/compaction``."""

from web.compaction.routes import blp

__all__ = ["blp"]
