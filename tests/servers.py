"""Real server processes for the end-to-end and reliability tests, started one way.

Every test that needs a live ``gunicorn wsgi:app`` starts it from ``gunicorn.conf.py``
(as ``make run`` does) on a free loopback port, with an environment cleared of the
caller's own store and Fleet settings, and waits for ``/health`` the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import requests

# For a module whose code under test runs only in server processes: coverage measures this
# process alone, so tracing it would only slow the load its threads generate (pytest-cov's
# own marker pauses the tracer while each test runs).
UNTRACED = pytest.mark.no_cover

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
# Settings a test's server must not inherit from the environment pytest runs in.
OWN_SETTINGS = (
    "FLEET_",
    "SQLITE_",
    "POSTGRES_",
    "PERSISTENCE_",
    "COMPRESSOR_",
    "PROMETHEUS_",
    "WEB_CONCURRENCY",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environ(**settings: str) -> dict[str, str]:
    """This process's environment without store or Fleet settings, plus ``settings``.

    A server started with it has one worker unless ``settings`` say otherwise: every
    worker costs a second of CPU to start, and most tests need one. ``as_make_run``
    leaves the count to ``gunicorn.conf.py``, as ``make run`` does.
    """
    own = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
    return own | {"WEB_CONCURRENCY": "1"} | settings


def as_make_run(env: dict[str, str]) -> dict[str, str]:
    """``env`` without a worker count: the server starts as many workers as ``make run``."""
    return {k: v for k, v in env.items() if k != "WEB_CONCURRENCY"}


def gunicorn_command(port: int, *options: str) -> list[str]:
    """``gunicorn -c gunicorn.conf.py`` on ``port``; ``options`` override the config file."""
    return [
        str(BIN / "gunicorn"),
        "-c",
        "gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        *options,
        "wsgi:app",
    ]


def wait_until_up(
    base: str,
    processes: Mapping[str, subprocess.Popen[bytes]],
    logs: Path,
    timeout: float = START_TIMEOUT,
) -> None:
    """Until ``base/health`` answers 200; fails at once if one of ``processes`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail(logs)}")
        with suppress(requests.RequestException):  # not listening, or not booted yet
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{base} did not answer within {timeout} s:\n{tail(logs)}")


def tail(logs: Path) -> str:
    """The end of a log file, or of every ``*.log`` in a folder."""
    paths = sorted(logs.glob("*.log")) if logs.is_dir() else [logs]
    return "\n".join(f"--- {p.name} ---\n{p.read_text()[-6000:]}" for p in paths if p.exists())


def stop(process: subprocess.Popen[bytes], group: bool = False) -> None:
    """SIGTERM (to its process group with ``group``), then SIGKILL if it lingers."""

    def send(sig: signal.Signals) -> None:
        with suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)

    if process.poll() is None:
        send(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def gunicorn(
    env: Mapping[str, str], log: Path, *options: str, stderr_only: bool = False
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A gunicorn serving ``env``'s store; yields its base URL and process, then stops it.

    Its output goes to ``log`` (stderr only with ``stderr_only``: the JSON log lines).
    """
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            gunicorn_command(port, *options),
            cwd=ROOT,
            env=dict(env),
            stdout=subprocess.DEVNULL if stderr_only else out,
            stderr=out if stderr_only else subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, {"gunicorn": process}, log)
        yield base, process
    finally:
        stop(process)
