"""Flask app factory: one Fleet (one eventsourcing application) per app, built here."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from flask import Flask

from application import Fleet
from web.json_provider import OrjsonProvider

# API resources in the order the OpenAPI document lists them; each module has ``blp``.
MODULES = (
    "web.specialists",
    "web.missions",
    "web.sorties",
    "web.checkpoints",
    "web.messages",
    "web.cursors",
    "web.locks",
    "web.events",
    "web.compaction",
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; ``config`` overrides defaults and ``FLEET_*`` environment variables."""
    from web import instrument, metrics, request_cycle, settings
    from web.extensions import Api, IdConverter, RouteRule
    from web.health import blueprint as health
    from web.ui import init_app as init_console

    app = Flask(__name__, static_folder=None)  # no /static route: the API serves no files
    app.json = OrjsonProvider(app)
    app.url_rule_class = RouteRule
    app.json.sort_keys = False  # keep the schemas' field order
    settings.load(app, config)
    metrics.check_mode()  # before anything is opened or started
    app.extensions["fleet"] = fleet = Fleet(env=app.config["FLEET_ENV"])
    every = float(app.config["FLEET_SWEEP_INTERVAL"] or 0)
    if every > 0:  # liveness sweeps in this process; Fleet.close() stops them
        fleet.start_sweeper(every)
    compact_every = float(app.config["FLEET_COMPACTION_INTERVAL"] or 0)
    if compact_every > 0:  # scheduled compaction in this process; Fleet.close() stops it
        fleet.start_compactor(compact_every)
    metrics.init_app(app, fleet)  # GET /metrics
    instrument.init_app(app)  # first request hooks: the clock starts before any can fail
    request_cycle.init_app(app)
    app.register_blueprint(health)
    app.url_map.converters["id"] = IdConverter
    init_console(app)  # the operator console under /ui/ (docs/console.md)
    Api(app, [import_module(name).blp for name in MODULES])
    return app


def get_fleet(app: Flask) -> Fleet:
    fleet: Fleet = app.extensions["fleet"]
    return fleet
