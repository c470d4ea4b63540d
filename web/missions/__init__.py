"""Missions: ``/api/v1/missions``."""

from web.missions.routes import blp

__all__ = ["blp"]
