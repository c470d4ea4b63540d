"""Flask app factory: one Fleet (one eventsourcing application) per process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from application import Fleet


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_prefixed_env("FLEET")
    if config:
        app.config.update(config)
    env = app.config.get("FLEET_ENV")
    app.extensions["fleet"] = Fleet(env=env)

    from web.health import blueprint as health

    app.register_blueprint(health)
    return app


def get_fleet(app: Flask) -> Fleet:
    fleet: Fleet = app.extensions["fleet"]
    return fleet
