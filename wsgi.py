"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app`` (``make run``).

Logging is set up here, before the app exists, so start-up lines are in the configured
format too (``FLEET_LOG_FORMAT``, ``FLEET_LOG_LEVEL``; see ``web.logs``).

The objects start-up leaves (modules, the OpenAPI document, schemas, the app) live as long
as the worker, and each full collection of the cyclic garbage collector walked all of them:
24-36 ms a time, frozen for every thread, which made the p99 of ``GET /events`` 17-23 ms
where its p50 was 3 ms. ``gc.freeze`` sets them aside for good, so a full collection only
walks what was allocated since (docs/operations.md, "Serving").
"""

import gc

from web import create_app, logs

logs.configure()
app = create_app()
gc.freeze()
