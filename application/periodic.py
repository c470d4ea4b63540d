"""Background jobs that repeat every so many seconds (the sweeper, the compactor).

``repeat`` is the loop: a pass, then a wait, until asked to stop. ``PeriodicThread`` runs
such a loop in a daemon thread and stops it: the stop event ends the current wait at
once, and the stopper waits for the pass under way to finish (for ``timeout`` at most).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def repeat(
    stop: threading.Event, every: float, task: Callable[[], object], *, wait_first: bool = False
) -> None:
    """Call ``task`` every ``every`` seconds until ``stop`` is set.

    The first call comes at once, or after one wait with ``wait_first``. ``task`` handles
    its own errors: one it raises ends the loop.
    """
    if wait_first and stop.wait(every):
        return
    while not stop.is_set():
        task()
        stop.wait(every)


class PeriodicThread:
    """One daemon thread running ``loop(stop)``; ``stop()`` sets ``stop`` and joins it."""

    def __init__(self, name: str, loop: Callable[[threading.Event], object]):
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=loop, args=(self.stop_event,), name=name, daemon=True)

    def start(self) -> threading.Thread:
        self.thread.start()
        return self.thread

    def stop(self, timeout: float) -> None:
        """Stop the loop; wait up to ``timeout`` for it, unless called from the loop itself."""
        self.stop_event.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout)
