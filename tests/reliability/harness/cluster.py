"""The servers under test, as real processes that a test can start, stop and crash.

A ``Cluster`` runs ``gunicorn wsgi:app`` (several gthread workers) and, with
``FLEET_PROJECTOR=external``, one ``fleet projector`` beside it, on one store. The
reliability claims are about processes, not about an app object: a worker killed
mid-request, a master and its workers gone at once, a restart on the same store. So each
process gets a process group of its own, and ``kill()`` can SIGKILL a master with all its
workers, as a crash would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from tests.servers import (
    BIN,
    ROOT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    clean_environ,
    free_port,
    gunicorn_command,
    tail,
    wait_until_up,
)

# Each process logs to <workdir>/<name>.log.
GUNICORN, PROJECTOR = "gunicorn", "projector"


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


@dataclass
class Cluster:
    """gunicorn with several workers on one store, plus a projector when ``external``."""

    store: dict[str, str]
    workdir: Path
    external: bool = True
    workers: int = 3
    threads: int = 4
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    server: subprocess.Popen[bytes] | None = None
    projector: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = clean_environ(**self.store)
        env |= {
            "FLEET_PROJECTOR": "external" if self.external else "embedded",
            # Sweeps in every worker and in the projector: more concurrent writers.
            "FLEET_SWEEP_INTERVAL": "1",
            "FLEET_HEARTBEAT_TIMEOUT": "3",
            "FLEET_MIN_POSITION_TIMEOUT": "20",
            "POSTGRES_POOL_SIZE": "3",
        }
        return env | self.settings

    @property
    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        """The processes started and not yet stopped or killed, by name."""
        named = {GUNICORN: self.server, PROJECTOR: self.projector}
        return {name: process for name, process in named.items() if process is not None}

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        try:
            return subprocess.Popen(  # noqa: S603 - fixed arguments
                args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes the workers too
            )
        finally:
            log.close()

    def start(self) -> None:
        self.starts += 1
        self.server = self._spawn(
            gunicorn_command(
                self.port,
                *("--workers", str(self.workers), "--threads", str(self.threads)),
                *("--timeout", "60"),
            ),
            GUNICORN,
        )
        if self.external:
            self.projector = self._spawn(
                [str(BIN / "fleet"), "projector", "--sweep-every", "1"], PROJECTOR
            )
        self.wait_until_up()

    def wait_until_up(self) -> None:
        wait_until_up(self.base, self.processes, self.workdir, START_TIMEOUT)

    def _signal_running(self, sig: signal.Signals) -> None:
        """``sig`` to the process group of every process still running, all at once."""
        for process in self.processes.values():
            if process.poll() is None:
                _signal_group(process, sig)

    def kill(self) -> None:
        """SIGKILL the gunicorn master with its workers, and the projector: a crash."""
        self._signal_running(signal.SIGKILL)
        for process in self.processes.values():
            process.wait(timeout=STOP_TIMEOUT)
        self.server = self.projector = None

    def kill_one_worker(self) -> int:
        """SIGKILL one gunicorn worker; the master boots a new one while the others serve."""
        assert self.server is not None
        workers = psutil.Process(self.server.pid).children()
        victim = workers[0].pid
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:  # until the master has replaced it
            alive = [p for p in psutil.Process(self.server.pid).children() if p.pid != victim]
            if len(alive) >= self.workers:
                return victim
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not replace worker {victim}:\n{tail(self.workdir)}")

    def stop(self) -> None:
        """A clean stop (SIGTERM, then SIGKILL if it lingers): the server first, then the
        projector, as ``make run-postgres`` stops them. The workers sweep too, and a pass
        under way when both were signalled at once could write after the projector had
        applied its last page, leaving the projections behind a rebuild."""
        for process in self.processes.values():  # gunicorn, then the projector
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
        self.server = self.projector = None

    def server_errors(self) -> list[str]:
        """Tracebacks and error lines the processes logged (none is expected)."""
        lines = []
        for name in (GUNICORN, PROJECTOR):
            path = self.workdir / f"{name}.log"
            if path.exists():
                for line in path.read_text().splitlines():
                    if "was sent SIGKILL" in line:  # kill_one_worker() did that
                        continue
                    if "Traceback" in line or "OperationalError" in line or "ERROR" in line:
                        lines.append(f"{name}: {line}")
        return lines

    def wait_for_projections(self, timeout: float = 60.0) -> None:
        """Until /health reports every projection at the head of the log."""
        deadline = time.monotonic() + timeout
        report: Any = None
        while time.monotonic() < deadline:
            report = requests.get(f"{self.base}/health", timeout=5).json()
            if all(p["lag"] == 0 for p in report["projections"].values()):
                return
            time.sleep(0.2)
        raise AssertionError(f"projections did not catch up within {timeout} s: {report}")
