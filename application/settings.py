"""Persistence settings: the library's own environment variables, with Fleet's defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from application.store.compression import compressor_topic

SQLITE = "eventsourcing.sqlite"
POSTGRES = "eventsourcing.postgres"
DEFAULT_SQLITE_DBNAME = "var/fleet.sqlite3"

RECORDER_TOPICS = {
    SQLITE: "application.store.sqlite:FleetSQLiteRecorder",
    POSTGRES: "application.store.postgres:FleetPostgresRecorder",
}

DEFAULTS = {
    "PERSISTENCE_MODULE": SQLITE,
    "SQLITE_LOCK_TIMEOUT": "15",
    # Each process has two PostgreSQL pools (the event store's and the projections'). The
    # library opens POSTGRES_POOL_SIZE connections per pool eagerly (default 5): with several
    # workers plus a projector that soon passes the server's max_connections (100 by
    # default). Keep one open per pool and grow on demand to 1 + POSTGRES_MAX_OVERFLOW.
    "POSTGRES_POOL_SIZE": "1",
    "POSTGRES_MAX_OVERFLOW": "9",
    # The library's aggregate cache: a command loads its aggregate from memory and reads
    # only the events recorded since (fast-forward, on by default, so several processes
    # stay exact), instead of a snapshot and every event after it; its first attempt reads
    # nothing and lets the write confirm it (``OptimisticLoads``). Commands get a copy.
    "AGGREGATE_CACHE_MAXSIZE": "4096",
}


def build_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge defaults < os.environ < ``env`` and fill in what Fleet needs.

    Keys are the library's own (``PERSISTENCE_MODULE``, ``SQLITE_DBNAME``,
    ``POSTGRES_*``, ...), so its documentation applies unchanged.
    """
    merged = {**DEFAULTS, **os.environ, **(env or {})}
    module = merged["PERSISTENCE_MODULE"]
    if module not in RECORDER_TOPICS:
        choices = ", ".join(RECORDER_TOPICS)
        raise ValueError(f"PERSISTENCE_MODULE must be one of {choices}, not {module!r}")
    merged.setdefault("APPLICATION_RECORDER_TOPIC", RECORDER_TOPICS[module])
    # Compression of new rows only: both of Fleet's compressors read plain and zlib rows.
    for key in ("COMPRESSOR_TOPIC", "FLEET_COMPRESSOR_TOPIC"):
        if key in merged or key == "COMPRESSOR_TOPIC":
            merged[key] = compressor_topic(merged.get(key))
    if module == POSTGRES:
        for key in ("POSTGRES_ENABLE_DB_FUNCTIONS", "FLEET_POSTGRES_ENABLE_DB_FUNCTIONS"):
            if merged.get(key, "").strip().lower() in ("y", "yes", "t", "true", "on", "1"):
                # The library's DB-function insert path skips the recorder hooks that
                # write fleet_event_index, so events would go unindexed (and unlisted).
                raise ValueError(
                    f"{key} must be off: Fleet indexes events in the insert transaction"
                )
    if module == SQLITE:
        dbname = merged.setdefault("SQLITE_DBNAME", DEFAULT_SQLITE_DBNAME)
        if "memory" not in dbname and not dbname.startswith("file:"):
            Path(dbname).parent.mkdir(parents=True, exist_ok=True)
    return merged


def backend_name(env: Mapping[str, str]) -> str:
    return "postgres" if env.get("PERSISTENCE_MODULE") == POSTGRES else "sqlite"


YES_WORDS = frozenset({"1", "y", "yes", "t", "true", "on"})


def flag(value: object, default: bool = False) -> bool:
    """A yes/no setting, from the environment or from a Flask config.

    A string is yes when it is one of ``YES_WORDS`` (any case, spaces around ignored), and
    ``default`` when empty or blank; any other string is no. ``None`` is ``default``; any
    other value (a JSON ``true``, a number in a config) is its truth value.
    """
    if value is None:
        return default
    if not isinstance(value, str):
        return bool(value)
    word = value.strip().lower()
    if not word:
        return default
    return word in YES_WORDS
