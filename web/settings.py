"""Flask settings: defaults, then ``FLEET_*`` environment variables, then the caller's config."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from flask import Config, Flask

# One definition of a yes/no setting for both layers (``settings.flag`` in web/).
from application.settings import flag as flag

MIB = 1024 * 1024

DEFAULTS: dict[str, Any] = {
    # Passed to ``Fleet(env=...)``; None lets eventsourcing read os.environ (SQLITE_DBNAME, ...).
    "FLEET_ENV": None,
    "FLEET_MAX_BODY_BYTES": MIB,
    # When set, writes need ``Authorization: Bearer <token>``; reads too with FLEET_AUTH_READS.
    "FLEET_API_TOKEN": None,
    "FLEET_AUTH_READS": False,
    # Signs the console's session cookie (docs/console.md); unset: derived from the token.
    "FLEET_SECRET_KEY": None,
    "SESSION_COOKIE_SAMESITE": "Lax",  # the console's cookie goes on no cross-site POST
    # Seconds between liveness sweeps (expired locks, silent specialists); 0 turns them off.
    "FLEET_SWEEP_INTERVAL": 5,
    # Seconds between compaction passes in this process; 0 (the default) turns them off.
    "FLEET_COMPACTION_INTERVAL": 0,
    "API_TITLE": "Fleet",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Event-sourced coordination service for fleets of AI agents. "
            "Errors are RFC 9457 application/problem+json. When the server has "
            "FLEET_API_TOKEN set, writes (and with FLEET_AUTH_READS reads) need "
            "'Authorization: Bearer <token>' (the bearerAuth scheme)."
        },
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    },
    # flask-smorest's UIs load their scripts from a CDN: leave them off.
    "OPENAPI_SWAGGER_UI_PATH": None,
    "OPENAPI_REDOC_PATH": None,
    "OPENAPI_RAPIDOC_PATH": None,
}


def load(app: Flask, config: Mapping[str, Any] | None) -> None:
    """Fill ``app.config``: defaults < ``FLEET_*`` env vars < ``config``.

    ``from_prefixed_env`` drops the prefix (``FLEET_API_TOKEN`` -> ``API_TOKEN``) and
    JSON-decodes values, so the keys get their ``FLEET_`` prefix back here.
    """
    app.config.from_mapping(copy.deepcopy(DEFAULTS))
    from_env = Config(app.root_path)
    from_env.from_prefixed_env("FLEET")
    app.config.update({f"FLEET_{key}": value for key, value in from_env.items()})
    for verbatim in ("FLEET_API_TOKEN", "FLEET_SECRET_KEY"):  # JSON would turn "1e3" into 1000.0
        if verbatim in os.environ:
            app.config[verbatim] = os.environ[verbatim]
    if config:
        app.config.update(config)
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["FLEET_MAX_BODY_BYTES"])


def token(app: Flask) -> str | None:
    value = app.config.get("FLEET_API_TOKEN")
    return None if value in (None, "") else str(value)
