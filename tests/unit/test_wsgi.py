"""wsgi.py, the served entry point: its app, and its start-up heap out of the collector's way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc, json
before = gc.get_freeze_count()
import wsgi
print(json.dumps({"before": before, "after": gc.get_freeze_count(), "name": wsgi.app.name}))
"""


def test_serving_freezes_what_start_up_leaves(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "fleet.sqlite3"),
        "FLEET_SWEEP_INTERVAL": "0",
        "FLEET_LOG_LEVEL": "WARNING",
    }
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, check=True
    )
    seen = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert seen["before"] == 0
    # Everything start-up made, the app among it: tens of thousands of objects.
    assert seen["after"] > 10_000
    assert seen["name"] == "web"
