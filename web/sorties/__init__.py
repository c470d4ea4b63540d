"""Sorties: ``/api/v1/sorties``."""

from web.sorties.routes import blp

__all__ = ["blp"]
