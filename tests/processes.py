"""Processes for the tests that race several Fleets against one store.

Each such process imports Fleet before it can start (about 0.8 s of CPU), and a race test
starts up to sixteen. A forkserver imports it once per test process, then forks each
child from that ready state, so the children start at once and start together. Unlike a
plain fork, the forkserver holds no threads, connections or locks of the test process:
each child still opens its own Fleet, as with spawn.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import ForkServerContext

# What every child needs before it runs: Fleet, and the fixtures' module (which the test
# modules import); the child imports the small test module itself.
PRELOAD = ["application.fleet", "tests.conftest"]


def fleet_processes() -> ForkServerContext:
    """The multiprocessing context for processes that each open a Fleet."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context  # type: ignore[return-value]
