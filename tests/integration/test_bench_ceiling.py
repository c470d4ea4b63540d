"""``bench.ceiling``: the bare Flask app that every HTTP figure is compared with.

Each gunicorn worker builds the ceiling's store when it imports the app, and the workers of
one server do so at the same moment. On a fresh SQLite file one of them failed with
"database is locked" now and then, and the whole benchmark stopped with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.servers import ROOT, clean_environ

PROCESSES = 4
FILES = 20  # each fresh; with the race, 4 processes failed on about one file in four
SPACING = 0.05  # seconds between the files' agreed start times

BUILD_STORES = """
import json, os, sys, time
paths = sys.argv[1:]
os.environ["SQLITE_DBNAME"] = paths[0] + ".import"  # the module builds its own app at import
from bench.ceiling import SQLiteStore
print("imported", flush=True)
start = float(sys.stdin.readline())
failures = []
for number, path in enumerate(paths):
    time.sleep(max(0.0, start + number * {spacing} - time.time()))
    os.environ["SQLITE_DBNAME"] = path
    try:
        SQLiteStore()
    except Exception as error:
        failures.append(repr(error))
print(json.dumps(failures))
"""


def test_workers_that_start_together_all_build_the_sqlite_store(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"ceiling-{number}.sqlite3") for number in range(FILES)]
    env = {k: v for k, v in clean_environ().items() if k != "PERSISTENCE_MODULE"}
    processes = [
        subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
            [sys.executable, "-c", BUILD_STORES.format(spacing=SPACING), *paths],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for process in processes:  # every one has imported the app: none starts late
        assert process.stdout is not None
        assert process.stdout.readline() == "imported\n"
    start = time.time() + 0.2
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{start}\n")
        process.stdin.flush()
    failures = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        failures += json.loads(out.splitlines()[-1])
    assert failures == []
