"""``GET /health``: is the database reachable, and in which mode."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from web import get_fleet

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
def health() -> tuple[dict[str, Any], int]:
    fleet = get_fleet(current_app)
    report = fleet.health()
    return report, 200 if report["status"] == "ok" else 503
