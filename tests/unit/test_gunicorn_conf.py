"""gunicorn.conf.py: its worker count, the console key its workers share, and its worker
class (stop signals end the waits and never deadlock a worker)."""

from __future__ import annotations

import logging
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


class StoppableFleet:
    def __init__(self) -> None:
        self.stopped = 0
        self.sweeps_stopped: list[float] = []

    def stop_waits(self) -> None:
        self.stopped += 1

    def stop_sweeper(self, timeout: float = 10.0) -> None:
        self.sweeps_stopped.append(timeout)


def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.fixture
def worker() -> Any:
    """A ``FleetWorker`` as its signal handlers find it once the app is loaded (built
    without gunicorn's arbiter). Its stopper waits 0.05 s after a quick stop and notes the
    exit it would make (``ended``); the main loop's queue is a stand-in."""
    config = runpy.run_path(str(CONFIG))
    worker = config["FleetWorker"].__new__(config["FleetWorker"])
    worker.alive = True
    worker.wsgi = SimpleNamespace(extensions={"fleet": StoppableFleet()})
    worker.ended = []
    worker.stopper = config["WorkerStopper"](worker._stop_waits, 0.05, end=worker.ended.append)
    worker.woken = []
    worker.method_queue = SimpleNamespace(defer=worker.woken.append)
    return worker


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGQUIT])
def test_a_quick_stop_ends_the_waits_then_the_worker(worker: Any, number: int) -> None:
    worker.handle_quit(number, None)
    worker.handle_quit(number, None)  # a second signal too (Ctrl-C, then the master's)
    assert worker.alive is False  # the main loop leaves
    assert eventually(lambda: worker.ended == [0])  # whatever still holds the worker
    assert worker.wsgi.extensions["fleet"].stopped == 1
    assert worker.wsgi.extensions["fleet"].sweeps_stopped == [0]


def test_the_stop_handlers_take_no_lock(worker: Any) -> None:
    """A handler runs between two bytecodes and can interrupt another handler: one that
    took a lock (gthread's pool shutdown, ``Event.set``, the waits' own lock) deadlocked
    on a second signal. Here the pool and the waits are held busy: the handlers return."""
    busy = threading.Lock()
    worker.tpool = SimpleNamespace(shutdown=lambda **_: busy.acquire())
    fleet = worker.wsgi.extensions["fleet"]
    stop_waits = fleet.stop_waits

    def held_stop_waits() -> None:
        with busy:
            stop_waits()

    fleet.stop_waits = held_stop_waits
    with busy:
        worker.handle_exit(signal.SIGTERM, None)
        worker.handle_quit(signal.SIGINT, None)
        worker.handle_quit(signal.SIGQUIT, None)
        assert fleet.stopped == 0  # still waiting for the lock, in the stopper's thread
    assert eventually(lambda: worker.ended == [0])
    assert fleet.stopped == 1


def test_a_quick_stop_while_the_app_loads_ends_the_worker_later(worker: Any) -> None:
    del worker.wsgi  # gunicorn sets it once the app is loaded
    worker.handle_quit(signal.SIGINT, None)
    assert worker.alive is False  # the main loop will not start
    assert eventually(lambda: worker.ended == [0])


def test_a_graceful_stop_ends_the_waits_then_hands_over_to_gunicorn(worker: Any) -> None:
    worker.handle_exit(signal.SIGTERM, None)
    # gthread's own handler ran: alive cleared, the main loop woken
    assert worker.alive is False and len(worker.woken) == 1
    fleet = worker.wsgi.extensions["fleet"]
    assert eventually(lambda: fleet.stopped == 1)
    assert fleet.sweeps_stopped == [0]  # no other sweep pass, none waited for
    time.sleep(0.2)
    assert worker.ended == []  # gunicorn's graceful_timeout bounds the rest
    worker.handle_quit(signal.SIGQUIT, None)  # a quick stop after it still ends it
    assert eventually(lambda: worker.ended == [0])
    assert fleet.stopped == 1


# Run in a process of its own: holding signals back in this one would outlast the test.
HELD_BACK = """
import os, runpy, signal, sys
from types import SimpleNamespace
config = runpy.run_path(sys.argv[1])
stops = config["STOP_SIGNALS"]
config["pre_fork"](None, None)
pid = os.fork()
if pid == 0:  # the worker, before its handlers: a stop signal waits
    os.kill(os.getpid(), signal.SIGTERM)
    worker = config["FleetWorker"].__new__(config["FleetWorker"])
    worker.alive, worker.PIPE = True, os.pipe()
    worker.stopper = config["WorkerStopper"](lambda: None, 60, end=lambda code: None)
    os.set_blocking(worker.PIPE[1], False)  # as gunicorn makes it, for set_wakeup_fd
    worker.method_queue = SimpleNamespace(defer=lambda callback: None)
    worker.init_signals()  # registers its handlers, then takes the held signal
    os._exit(0 if worker.alive is False else 1)
_, status = os.waitpid(pid, 0)
held = stops & signal.pthread_sigmask(signal.SIG_BLOCK, [])
print(os.waitstatus_to_exitcode(status), sorted(held))
"""


def test_a_stop_signal_sent_to_a_worker_before_its_handlers_reaches_them() -> None:
    """The master holds the stop signals back across the fork and takes its own back
    after it; the worker's SIGTERM, sent before its handlers exist, reaches them."""
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", HELD_BACK, str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["0", "[]"], result.stderr


def test_the_config_serves_with_fleets_worker() -> None:
    config = runpy.run_path(str(CONFIG))
    assert config["worker_class"] is config["FleetWorker"]


def test_gunicorn_builds_no_access_line_the_app_writes_itself() -> None:
    from gunicorn.glogging import Logger

    config = runpy.run_path(str(CONFIG))
    cfg = SimpleNamespace(
        accesslog=None,
        logconfig=None,
        logconfig_dict=config["logconfig_dict"],
        logconfig_json=None,
        syslog=False,
        access_log_format="%(h)s",
    )
    built: list[type] = []

    def spy(cls: type) -> Any:
        class Spy(cls):  # type: ignore[misc, valid-type]
            def atoms(self, *args: Any) -> dict[str, Any]:
                built.append(cls)
                return {}

        logger = Spy.__new__(Spy)
        logger.cfg, logger.access_log = cfg, logging.getLogger("test.gunicorn.access")
        return logger

    spy(Logger).access(SimpleNamespace(), SimpleNamespace(), {}, 0.001)
    spy(config["logger_class"]).access(SimpleNamespace(), SimpleNamespace(), {}, 0.001)
    assert built == [Logger]  # gunicorn's builds one under our logconfig_dict; ours does not


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 2), (16, 4)])
def test_make_run_starts_a_worker_per_core_up_to_four(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int
) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert runpy.run_path(str(CONFIG))["workers"] == workers


def test_web_concurrency_sets_the_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert runpy.run_path(str(CONFIG))["workers"] == 3


def starting(monkeypatch: pytest.MonkeyPatch, **settings: str) -> str:
    """The console's key the workers of one start inherit, given these settings."""
    for name in ("FLEET_SECRET_KEY", "FLEET_API_TOKEN"):
        monkeypatch.setenv(name, settings.get(name, ""))  # restored after the test
    server = SimpleNamespace(cfg=SimpleNamespace(workers=1), log=logging.getLogger("test"))
    runpy.run_path(str(CONFIG))["on_starting"](server)
    return os.environ["FLEET_SECRET_KEY"]


def test_the_workers_of_one_start_share_one_random_console_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = starting(monkeypatch), starting(monkeypatch)
    assert len(first) == 64 and len(second) == 64 and first != second  # a new one each start


def test_a_configured_key_or_token_is_left_to_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    operators = {"FLEET_SECRET_KEY": "set by the operator"}
    assert starting(monkeypatch, **operators) == "set by the operator"
    assert starting(monkeypatch, **{"FLEET_API_TOKEN": "t0ken"}) == ""  # the app derives it
