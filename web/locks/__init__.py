"""File locks: ``/api/v1/locks``."""

from web.locks.routes import blp

__all__ = ["blp"]
