"""How long and how hard a reliability test runs: bounded in `make test`, longer with
`make soak`.

The same tests serve as the quick check every change runs and as the soak: each reads its
durations and client and crash counts through here, so that `make soak` can stretch them
all from the environment (``FLEET_SOAK_SECONDS``, ``FLEET_SOAK_CLIENTS``,
``FLEET_SOAK_CRASHES``) without a test knowing which mode it runs in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _setting(name: str, parse: Callable[[str], T]) -> T | None:
    raw = os.environ.get(name, "").strip()
    return parse(raw) if raw else None


def soak_seconds() -> float | None:
    return _setting("FLEET_SOAK_SECONDS", float)


def scaled(default: float) -> float:
    """A load phase's duration: ``default`` seconds, or FLEET_SOAK_SECONDS under `make soak`."""
    soak = soak_seconds()
    return soak if soak is not None else default


def client_count(default: int) -> int:
    count = _setting("FLEET_SOAK_CLIENTS", int)
    return count if count is not None else default


def crash_count(default: int) -> int:
    count = _setting("FLEET_SOAK_CRASHES", int)
    return count if count is not None else default
