"""Cursors: ``/api/v1/cursors``."""

from web.cursors.routes import blp

__all__ = ["blp"]
