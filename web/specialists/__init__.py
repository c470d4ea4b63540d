"""Specialists: ``/api/v1/specialists``."""

from web.specialists.routes import blp

__all__ = ["blp"]
