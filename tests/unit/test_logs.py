"""Fleet's log formats (``application.logs``): JSON fields, text lines, settings, set-up."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterator

import pytest

from application import logs


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("fleet.test").makeRecord(
        "fleet.test", logging.WARNING, __file__, 1, message, args or ("world",), None
    )
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_the_standard_fields_and_the_extras() -> None:
    line = logs.json_formatter().format(record(request_id="r-1", duration_ms=1.5))
    data = json.loads(line)
    assert "\n" not in line
    assert data["message"] == "hello world"
    assert data["level"] == "WARNING"
    assert data["logger"] == "fleet.test"
    assert isinstance(data["pid"], int)
    assert data["time"].endswith("+00:00")  # ISO 8601, UTC
    assert data["request_id"] == "r-1"
    assert data["duration_ms"] == 1.5


def test_an_exception_is_logged_with_its_traceback_inside_the_json() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = record()
        failed.exc_info = sys.exc_info()
    line = logs.json_formatter().format(failed)
    data = json.loads(line)
    assert "\n" not in line  # one record, one line
    assert "Traceback" in data["exc_info"] and "RuntimeError: boom" in data["exc_info"]


def test_what_orjson_refuses_is_still_one_json_line() -> None:
    line = logs.json_formatter().format(record(position=10**30, counts={1: "one"}))
    data = json.loads(line)
    assert "\n" not in line
    assert data["position"] == 10**30 and data["counts"] == {"1": "one"}


def test_a_text_line_shows_the_request_id_or_a_dash() -> None:
    assert "[r-1] hello world" in logs.text_formatter().format(record(request_id="r-1"))
    assert "[-] hello world" in logs.text_formatter().format(record())


def test_settings_are_read_and_checked() -> None:
    assert logs.log_format({}) == "json"
    assert logs.log_format({"FLEET_LOG_FORMAT": " Text "}) == "text"
    assert logs.log_level({}) == "INFO"
    assert logs.log_level({"FLEET_LOG_LEVEL": "debug"}) == "DEBUG"
    with pytest.raises(ValueError, match="FLEET_LOG_FORMAT"):
        logs.log_format({"FLEET_LOG_FORMAT": "xml"})
    with pytest.raises(ValueError, match="FLEET_LOG_LEVEL"):
        logs.log_level({"FLEET_LOG_LEVEL": "loud"})


@pytest.fixture
def clean_root() -> Iterator[logging.Logger]:
    """The root logger, with whatever handlers and level these tests add taken back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_leaves_a_root_logger_someone_else_set_up(clean_root: logging.Logger) -> None:
    clean_root.addHandler(logging.NullHandler())  # pytest's own capture handlers count too
    assert logs.configure({}, stream=io.StringIO()) is None


def test_configure_installs_one_handler_and_replaces_it_when_run_again(
    clean_root: logging.Logger,
) -> None:
    clean_root.handlers[:] = []
    first = io.StringIO()
    assert logs.configure({"FLEET_LOG_LEVEL": "WARNING"}, stream=first) is not None
    assert logs.configure({"FLEET_LOG_LEVEL": "WARNING"}, stream=first) is not None
    assert len(clean_root.handlers) == 1 and clean_root.level == logging.WARNING
    logging.getLogger("fleet.test").info("too quiet")
    logging.getLogger("fleet.test").warning("shown", extra={"correlation_id": "c-9"})
    lines = [json.loads(line) for line in first.getvalue().splitlines()]
    assert [(line["message"], line["correlation_id"]) for line in lines] == [("shown", "c-9")]

    second = io.StringIO()
    logs.configure({"FLEET_LOG_FORMAT": "text"}, stream=second)
    logging.getLogger("fleet.test").info("plain")
    assert len(clean_root.handlers) == 1
    assert second.getvalue().rstrip().endswith(f"INFO fleet.test [{os.getpid()}] [-] plain")


def test_the_gunicorn_config_uses_the_same_formatter() -> None:
    config = logs.gunicorn_config({"FLEET_LOG_LEVEL": "debug"})
    assert config["formatters"]["fleet"]["()"] == "application.logs.json_formatter"
    assert config["loggers"]["gunicorn.error"]["level"] == "DEBUG"
    text = logs.gunicorn_config({"FLEET_LOG_FORMAT": "text"})
    assert text["formatters"]["fleet"]["()"] == "application.logs.text_formatter"
    # The app writes the access lines; gunicorn's own would be a second line per request.
    assert config["loggers"]["gunicorn.access"]["level"] == "WARNING"
    assert config["root"]["handlers"] == []
