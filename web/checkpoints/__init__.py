"""Checkpoints: ``/api/v1/checkpoints``."""

from web.checkpoints.routes import blp

__all__ = ["blp"]
