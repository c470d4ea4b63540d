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


@pytest.fixture
def worker() -> Any:
    """A ``FleetWorker`` as its signal handlers find it once the app is loaded (built
    without gunicorn's arbiter). Its quick-stop deadline only notes the exit it would make;
    the thread pool and the main loop's queue are stand-ins."""
    config = runpy.run_path(str(CONFIG))
    worker = config["FleetWorker"].__new__(config["FleetWorker"])
    worker.alive = True
    worker.wsgi = SimpleNamespace(extensions={"fleet": StoppableFleet()})
    worker.ended = []
    worker.quick_stop_deadline = config["QuickStopDeadline"](60, end=worker.ended.append)
    worker.woken = []
    worker.method_queue = SimpleNamespace(defer=worker.woken.append)
    return worker


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGQUIT])
def test_a_quick_stop_clears_alive_without_touching_the_thread_pool(
    worker: Any, number: int
) -> None:
    # gthread's handler would call ThreadPoolExecutor.shutdown here, which blocks forever
    # when the main loop, or a first signal's shutdown, holds the pool's lock: a held lock
    # stands for that.
    busy = threading.Lock()
    worker.tpool = SimpleNamespace(shutdown=lambda **_: busy.acquire())
    with busy:
        worker.handle_quit(number, None)  # returns: no SystemExit, no wait on the pool
        worker.handle_quit(number, None)  # a second signal too (Ctrl-C, then the master's)
    assert worker.alive is False
    assert worker.wsgi.extensions["fleet"].stopped == 2
    # ... and whatever still holds the worker, it ends a few seconds later
    assert worker.quick_stop_deadline.started.is_set()


def test_a_quick_stop_while_the_app_loads_ends_the_worker_later(worker: Any) -> None:
    del worker.wsgi  # gunicorn sets it once the app is loaded
    worker.handle_quit(signal.SIGINT, None)
    assert worker.alive is False  # the main loop will not start
    assert worker.quick_stop_deadline.started.is_set()


def test_a_quick_stop_deadline_ends_the_worker_only_once_started() -> None:
    deadline_class = runpy.run_path(str(CONFIG))["QuickStopDeadline"]
    ended: list[int] = []
    deadline = deadline_class(0.05, end=ended.append)
    time.sleep(0.2)
    assert ended == []
    deadline.start()
    for _ in range(100):
        if ended:
            break
        time.sleep(0.02)
    assert ended == [0]


def test_a_graceful_stop_ends_the_waits_then_hands_over_to_gunicorn(worker: Any) -> None:
    worker.handle_exit(signal.SIGTERM, None)
    assert not worker.quick_stop_deadline.started.is_set()  # gunicorn's graceful_timeout holds
    assert worker.wsgi.extensions["fleet"].stopped == 1
    # ... and starts no other sweep pass, without waiting for one under way
    assert worker.wsgi.extensions["fleet"].sweeps_stopped == [0]
    # gthread's own handler ran: alive cleared, the main loop woken
    assert worker.alive is False and len(worker.woken) == 1


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
