"""Log set-up shared by every entry point (server, gunicorn, ``fleet`` CLI): one place.

``FLEET_LOG_FORMAT``: ``json`` (the default: one JSON object per line on stderr, via
python-json-logger's orjson formatter, so log shippers need no parsing rules) or ``text``
(for a terminal).
``FLEET_LOG_LEVEL``: a level name, ``INFO`` by default. Fields a caller passes in
``extra=`` (``request_id``, ``duration_ms``, ...) become top-level JSON keys; a logged
exception's traceback is the record's ``exc_info`` string.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter
from pythonjsonlogger.orjson import OrjsonFormatter

FORMATS = ("json", "text")
DEFAULT_LEVEL = "INFO"
# The standard record attributes a JSON line starts with, and their names in it.
JSON_FIELDS = ["levelname", "name", "message", "process", "threadName"]
RENAMED = {"levelname": "level", "name": "logger", "process": "pid", "threadName": "thread"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] [%(request_id)s] %(message)s"
MARK = "_fleet_handler"  # set on the handler ``configure`` installs, so a re-run replaces it


def log_format(env: Mapping[str, str] | None = None) -> str:
    """``json`` or ``text`` from ``FLEET_LOG_FORMAT`` (an unknown value is an error)."""
    value = (env if env is not None else os.environ).get("FLEET_LOG_FORMAT", "json")
    value = value.strip().lower() or "json"
    if value not in FORMATS:
        raise ValueError(f"FLEET_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {value!r}")
    return value


def log_level(env: Mapping[str, str] | None = None) -> str:
    """The level name from ``FLEET_LOG_LEVEL`` (``DEBUG``, ``INFO``, ``WARNING``, ...)."""
    value = (env if env is not None else os.environ).get("FLEET_LOG_LEVEL", DEFAULT_LEVEL)
    name = value.strip().upper() or DEFAULT_LEVEL
    if not isinstance(logging.getLevelNamesMapping().get(name), int):
        raise ValueError(f"FLEET_LOG_LEVEL must be a logging level name, not {value!r}")
    return name


class JsonLines(OrjsonFormatter):
    """python-json-logger's orjson formatter: a server writes an access line per request, and
    the standard encoder took twice as long over one (45 against 24 µs). What orjson refuses
    (an integer past 64 bits in an extra) goes to the standard one, so no line is lost."""

    def __init__(self) -> None:
        super().__init__(JSON_FIELDS, rename_fields=RENAMED, timestamp="time")
        self.standard = JsonFormatter(JSON_FIELDS, rename_fields=RENAMED, timestamp="time")

    def jsonify_log_record(self, log_data: Any) -> str:
        try:
            return super().jsonify_log_record(log_data)
        except TypeError:
            return self.standard.jsonify_log_record(log_data)


def json_formatter() -> logging.Formatter:
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, pid, extras."""
    return JsonLines()


def text_formatter() -> logging.Formatter:
    """A line for people; ``-`` where a record has no request id."""
    return logging.Formatter(TEXT_FORMAT, defaults={"request_id": "-"})


def formatter(env: Mapping[str, str] | None = None) -> logging.Formatter:
    return json_formatter() if log_format(env) == "json" else text_formatter()


def configure(
    env: Mapping[str, str] | None = None,
    *,
    stream: IO[str] | None = None,
    filters: Iterable[logging.Filter] = (),
    force: bool = False,
) -> logging.Handler | None:
    """Give the root logger one stderr handler in the configured format and level.

    A process whose root logger already has someone else's handlers (pytest's capture, an
    embedding program) is left alone unless ``force``: logging is the entry point's call.
    Re-running replaces the handler this function installed. Returns it (None if skipped).
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, MARK, False)]
    if not force and len(ours) < len(root.handlers):
        return None
    for handler in ours:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(env))
    for each in filters:
        handler.addFilter(each)
    setattr(handler, MARK, True)
    root.addHandler(handler)
    root.setLevel(log_level(env))
    return handler


def gunicorn_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error log (master and workers) in Fleet's format.

    Its access log is silenced: the app writes one access line per request itself, with the
    request and correlation ids and the route (``web.logs``). The root logger gets no handler
    here, so each worker's ``configure`` (``wsgi.py``) installs the one with the request fields.
    """
    level = log_level(env)
    factory = json_formatter if log_format(env) == "json" else text_formatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": level, "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "fleet",
                "stream": "ext://sys.stderr",
            },
        },
        "formatters": {"fleet": {"()": f"{__name__}.{factory.__name__}"}},
    }
