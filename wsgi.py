"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app`` (``make run``).

Logging is set up here, before the app exists, so start-up lines are in the configured
format too (``FLEET_LOG_FORMAT``, ``FLEET_LOG_LEVEL``; see ``web.logs``).
"""

from web import create_app, logs

logs.configure()
app = create_app()
