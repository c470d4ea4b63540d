"""``bench.server``: how the benchmark waits for a server's workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.server import wait_workers

# A stand-in for gunicorn's master: one worker busy for a second and then gone (reaped, as
# the master reaps a worker that failed to boot), the other idle.
MASTER = """
import subprocess, sys
busy = "import time\\nend = time.time() + 1\\nwhile time.time() < end: pass"
failing = subprocess.Popen([sys.executable, "-c", busy])
idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
failing.wait()
idle.wait()
"""


def test_a_worker_that_exits_while_starting_is_reported_with_the_log(tmp_path: Path) -> None:
    master = subprocess.Popen([sys.executable, "-c", MASTER], start_new_session=True)  # noqa: S603
    log_path = tmp_path / "server.log"
    try:
        with pytest.raises(RuntimeError, match=re.escape(f"exited while starting; see {log_path}")):
            wait_workers(master, 2, log_path)
    finally:
        os.killpg(master.pid, signal.SIGKILL)
        master.wait()
