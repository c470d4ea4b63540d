"""gunicorn settings for Fleet: ``gunicorn -c gunicorn.conf.py wsgi:app`` (``make run``).

- gthread workers (``FleetWorker``) with ``FLEET_WEB_THREADS`` threads each (default 256);
  ``WEB_CONCURRENCY`` workers (default: one per core, at most 4). One worker runs Python on
  one core at a time:
  on a 2-core machine a second served 30-50 % more SQLite writes (three alternating rounds of
  each command; the workers' writers take turns through a lock file,
  ``application.store.sqlite``).
  Long-polls (``?wait=``) and live feeds (``/events/stream``) hold a thread each while they
  wait, blocked on an event without using CPU; the store's connection pools, not the thread
  count, bound the work done at once. ``FLEET_MAX_WAITERS`` (default: threads - 16) caps the
  waits of a worker so that ordinary requests always find threads (docs/work-loop.md).
- A graceful stop (SIGTERM) ends the open waits and feeds at once and starts no other sweep
  pass (``FleetWorker``), so the worker exits well within ``graceful_timeout``. A quick
  stop (SIGINT, SIGQUIT) does the same and ends the worker ``QUICK_STOP_GRACE`` seconds
  later at most, whatever still holds it.
- Logs: gunicorn's own lines in Fleet's format (``FLEET_LOG_FORMAT``, ``FLEET_LOG_LEVEL``);
  each worker's app adds one access line per request with its ids (``web.logs``).
- Metrics: with more than one worker, prometheus-client's multiprocess mode needs a directory
  shared by the workers, empty at start, named by ``PROMETHEUS_MULTIPROC_DIR`` before any
  worker imports prometheus_client. ``on_starting`` (master, once per start) makes a fresh one
  when none is given, or empties the given one; ``child_exit`` drops a dead worker's live
  gauges. The app is loaded in each worker (no ``--preload``), after the variable is set.
- The console's session key: with neither ``FLEET_SECRET_KEY`` nor ``FLEET_API_TOKEN`` set,
  ``on_starting`` picks one random key for all the workers of this start (each would pick
  its own, and a login made in one would be refused by the others).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

from application import logs

bind = "127.0.0.1:8000"
threads = int(os.environ.get("FLEET_WEB_THREADS", "256"))
os.environ.setdefault("FLEET_MAX_WAITERS", str(max(threads - 16, 0)))  # read by each worker
workers = int(os.environ.get("WEB_CONCURRENCY") or min(os.cpu_count() or 1, 4))
preload_app = False  # see the docstring: workers must import prometheus_client themselves
# gunicorn 27's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), which
# every server on the machine would fight over; Fleet does not use it.
control_socket_disable = True
logconfig_dict = logs.gunicorn_config()


class AppWritesAccessLines(Logger):
    """gunicorn's logger without its access lines: the app writes one per request, with its
    ids (``web.logs``), and gunicorn's own are silenced in ``logconfig_dict``. gunicorn
    still built every one (atoms, format) before the logger dropped it: 3-4 % of a
    command's worker CPU under load (py-spy)."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


logger_class = AppWritesAccessLines

MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server: Any) -> None:
    """Prepare the metrics directory and the console's session key before the first
    worker is forked."""
    if not (os.environ.get("FLEET_SECRET_KEY") or os.environ.get("FLEET_API_TOKEN")):
        os.environ["FLEET_SECRET_KEY"] = secrets.token_hex(32)  # this start's workers share it
    directory = os.environ.get(MULTIPROC)
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # values of an earlier run would be summed in
            stale.unlink()
    elif server.cfg.workers > 1:
        directory = tempfile.mkdtemp(prefix="fleet-metrics-")
        os.environ[MULTIPROC] = directory
        server.fleet_metrics_dir = directory  # ours: removed on exit
    if directory:
        server.log.info("metrics: multiprocess mode, values in %s", directory)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: its live gauges (requests in progress) must stop counting."""
    if os.environ.get(MULTIPROC):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    directory = getattr(server, "fleet_metrics_dir", None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


# Seconds a worker told to stop quickly (SIGINT, SIGQUIT) has left before it ends, whatever
# its threads are still doing (``WorkerStopper``).
QUICK_STOP_GRACE = 2.0
# What stops a worker: held back from the fork until the worker has its own handlers.
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGQUIT, signal.SIGTERM})
_unblock_in_parent_registered = False


def pre_fork(server: Any, worker: Any) -> None:
    """The master holds the stop signals back across each fork of a worker.

    Until the worker registers its handlers (``FleetWorker.init_signals``) it runs the
    master's, inherited with the fork, which only queue a signal for a master loop the
    worker never runs: Ctrl-C (SIGINT to every process), then the master's SIGQUIT, both
    landing in that window (milliseconds, longer on a loaded host) were lost, and the
    worker served on until the master's SIGKILL after ``graceful_timeout``. Held back, they
    wait for the worker's own handlers. The master takes its own back right after the fork.
    """
    global _unblock_in_parent_registered
    if not _unblock_in_parent_registered:
        os.register_at_fork(
            after_in_parent=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        )
        _unblock_in_parent_registered = True
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


class WorkerStopper:
    """Does what a stop signal asks of a worker, in a thread of its own, told through a pipe.

    A signal handler runs between two bytecodes of the main thread and can interrupt
    another handler: anything in it that takes a lock (``Event.set``, ``Fleet.stop_waits``,
    gthread's pool shutdown) deadlocks when a second signal arrives while the first holds
    it, and Ctrl-C sends SIGINT to every process, then the master sends its workers SIGQUIT.
    ``graceful()`` and ``quick()`` only write a byte to a pipe, which is safe there.

    The thread ends the worker's open waits and feeds (``stop_waits``) at the first stop.
    After a quick one it ends the process ``grace`` seconds later with ``end(0)``
    (``os._exit``), whatever holds it: after its main loop a gthread worker waits up to
    ``graceful_timeout`` (30 s) for its open connections, then, as the interpreter exits,
    for every thread of its pool, and a thread reading a request its client never finishes
    sending has no timeout. A quick stop answers what is in flight (milliseconds, the waits
    being ended) and owes no one more. Nothing acknowledged is lost: an unanswered
    request's transaction is rolled back with its connection.
    """

    GRACEFUL, QUICK = b"g", b"q"

    def __init__(self, stop_waits: Callable[[], None], grace: float, end: Callable[[int], object]):
        self.stop_waits = stop_waits
        self.grace = grace
        self.end = end
        self._read, self._write = os.pipe()
        threading.Thread(target=self._run, name="fleet-stopper", daemon=True).start()

    def graceful(self) -> None:
        os.write(self._write, self.GRACEFUL)

    def quick(self) -> None:
        os.write(self._write, self.QUICK)

    def _run(self) -> None:
        stopped = False
        while True:
            kind = os.read(self._read, 1)
            if not stopped:
                stopped = True
                self.stop_waits()
            if kind == self.QUICK:
                time.sleep(self.grace)
                self.end(0)
                return


class FleetWorker(ThreadWorker):
    """gthread's worker, whose stop signals end Fleet's open waits and feeds first and never
    deadlock it. gunicorn registers these handlers itself (``init_signals``) before the
    app loads, so they hold during a worker's boot too.

    SIGTERM (graceful): gthread's own handler only stops accepting; a long-poll would
    otherwise hold the worker for up to 30 s and a live feed until ``graceful_timeout``
    kills it. The waits end first, and the sweeper starts no other pass.

    SIGINT and SIGQUIT (Ctrl-C, the master's quick stop): gthread's ``handle_quit`` shuts
    its thread pool down inside the signal handler, which deadlocks when the main loop is
    handing a request to that pool (``ThreadPoolExecutor.submit`` holds the lock
    ``shutdown`` takes) or a first signal's shutdown is under way. Here a quick stop only
    clears ``alive``; the main loop notices within a second and leaves the way a graceful
    stop does, its in-flight requests answered, and the ``WorkerStopper`` ends the waits
    and then the worker ``QUICK_STOP_GRACE`` seconds later if anything still holds it (a
    boot under way, a client that never finishes its request).

    Both handlers only set flags and write to the stopper's pipe (``WorkerStopper``).
    """

    stopper: WorkerStopper

    def init_process(self) -> None:
        # In the worker's own process (it is built in the master): its thread starts here.
        self.stopper = WorkerStopper(self._stop_waits, QUICK_STOP_GRACE, end=os._exit)
        super().init_process()

    def init_signals(self) -> None:
        super().init_signals()
        # Held back since the fork (``pre_fork``): one sent meanwhile reaches its handler now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.stopper.graceful()
        super().handle_exit(sig, frame)  # gthread's: clears alive, wakes the main loop

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.alive = False
        self.stopper.quick()

    def _stop_waits(self) -> None:
        fleet = getattr(getattr(self, "wsgi", None), "extensions", {}).get("fleet")
        if fleet is not None:  # None while the app loads
            fleet.stop_waits()
            fleet.stop_sweeper(timeout=0)  # a stopping worker starts no other sweep pass


worker_class = FleetWorker
