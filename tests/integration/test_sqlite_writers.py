"""SQLite writers of several processes take turns through one lock file
(``application.store.sqlite.WriterLockAcrossProcesses``), not through SQLite's busy handler."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from application.fleet import Fleet
from application.store.sqlite import WriterLockAcrossProcesses, database_file
from tests.servers import ROOT

# Another process: takes the lock, says so, then holds it SECONDS (or exits holding it).
HOLDER = """
import os, sys, time
from application.store.sqlite import WriterLockAcrossProcesses
lock = WriterLockAcrossProcesses(sys.argv[1])
assert lock.acquire(timeout=5)
print("held", flush=True)
if sys.argv[2] == "exit":
    os._exit(0)  # no release: the kernel drops the lock with the process
time.sleep(float(sys.argv[2]))
lock.release()
"""

# Another process: registers COUNT specialists, as a second gunicorn worker would.
REGISTRAR = """
import sys
from application.fleet import Fleet
fleet = Fleet(env={"SQLITE_DBNAME": sys.argv[1], "FLEET_SWEEP_INTERVAL": "0"})
for number in range(int(sys.argv[3])):
    fleet.register_specialist(f"{sys.argv[2]}-{number}", "Agent", ["code"])
fleet.close()
"""


def holding(path: Path, hold: str) -> subprocess.Popen[str]:
    """A process that holds the lock at ``path`` once this returns."""
    process = subprocess.Popen(  # noqa: S603 - this interpreter and the script above
        [sys.executable, "-c", HOLDER, str(path), hold],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def exit_code(process: subprocess.Popen[str]) -> int:
    code = process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()
    return code


def test_a_writer_waits_for_another_process_and_goes_as_soon_as_it_is_done(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite3.writer-lock"
    lock = WriterLockAcrossProcesses(str(path))
    other = holding(path, "0.4")
    began = time.monotonic()
    assert lock.acquire(blocking=False) is False  # taken: no wait, no hold
    assert lock.acquire(timeout=10)
    waited = time.monotonic() - began
    lock.release()
    assert exit_code(other) == 0
    assert 0.2 < waited < 5, waited


def test_a_process_that_exits_holding_the_lock_leaves_it_free(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3.writer-lock"
    other = holding(path, "exit")
    assert exit_code(other) == 0
    lock = WriterLockAcrossProcesses(str(path))
    assert lock.acquire(blocking=False)
    lock.release()


def test_this_process_threads_queue_within_the_pools_timeout(tmp_path: Path) -> None:
    lock = WriterLockAcrossProcesses(str(tmp_path / "lock"))
    assert lock.acquire()
    answers: list[bool] = []
    waiting = threading.Thread(target=lambda: answers.append(lock.acquire(timeout=0.05)))
    waiting.start()
    waiting.join(timeout=5)
    assert answers == [False]
    lock.release()
    assert lock.acquire(timeout=1)  # a timed-out wait left nothing held
    lock.release()


def test_a_lock_not_yet_across_processes_is_this_process_lock_alone(tmp_path: Path) -> None:
    """As a ``Fleet``'s pools have it during start-up: SQLite's own lock decides then."""
    path = tmp_path / "store.sqlite3.writer-lock"
    other = holding(path, "5")
    try:
        lock = WriterLockAcrossProcesses(str(path), across_processes=False)
        assert lock.acquire(blocking=False)  # the other process's flock is not asked
        assert lock.acquire(blocking=False) is False  # this process's threads still queue
        lock.release()
        lock.start_across_processes()
        assert lock.acquire(blocking=False) is False  # now it is
    finally:
        other.kill()
        exit_code(other)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_the_lock_file_again(tmp_path: Path) -> None:
    """A flock belongs to an open file: a child sharing its parent's would share its lock."""
    path = tmp_path / "lock"
    lock = WriterLockAcrossProcesses(str(path))
    assert lock.acquire()  # held by this thread when the child is forked
    parents_file = lock._fd
    try:
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            # The child closed its copy of the parent's file (which would keep the
            # parent's flock held after the parent died) ...
            try:
                os.fstat(parents_file)
                closed = False
            except OSError:
                closed = True
            # ... and its lock starts unlocked, with a file of its own: the parent's flock
            # refuses it (a copy sharing the parent's file would be granted it).
            refused = lock._threads.acquire(blocking=False) and not lock._flocked
            lock._threads.release()
            refused = refused and lock.acquire(blocking=False) is False
            os._exit(0 if closed and refused and lock._fd is not None else 1)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        lock.release()


def test_a_fleet_on_a_file_locks_its_writers_across_processes(sqlite_env: dict[str, str]) -> None:
    fleet = Fleet(env=sqlite_env)
    try:
        fleet.register_specialist("w1", "Agent", ["code"])
        events = fleet.app.recorder.datastore.pool  # type: ignore[attr-defined]
        lock = events._writer_lock
        assert isinstance(lock, WriterLockAcrossProcesses)
        assert lock.across_processes  # from the end of its start
        assert lock.path == sqlite_env["SQLITE_DBNAME"] + ".writer-lock"
        assert Path(lock.path).exists()
        assert fleet.projector.datastore.pool._writer_lock is lock  # the projections' too
    finally:
        fleet.close()


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("/data/fleet.sqlite3", "/data/fleet.sqlite3"),
        ("file:/data/my%20fleet.sqlite3?mode=rwc", "/data/my fleet.sqlite3"),
        (":memory:", None),
        ("file:fleet?mode=memory&cache=shared", None),
        ("", None),
    ],
)
def test_the_lock_file_sits_beside_the_database_file(name: str, path: str | None) -> None:
    assert database_file(name) == path


def test_two_processes_registering_at_once_record_every_registration(tmp_path: Path) -> None:
    database = str(tmp_path / "store.sqlite3")
    Fleet(env={"SQLITE_DBNAME": database, "FLEET_SWEEP_INTERVAL": "0"}).close()  # schema first
    registrars = [
        subprocess.Popen(  # noqa: S603 - this interpreter and the script above
            [sys.executable, "-c", REGISTRAR, database, name, "150"], cwd=ROOT
        )
        for name in ("a", "b")
    ]
    assert [process.wait(timeout=60) for process in registrars] == [0, 0]
    fleet = Fleet(env={"SQLITE_DBNAME": database, "FLEET_SWEEP_INTERVAL": "0"})
    try:
        specialists, total = fleet.list_specialists(limit=500)
        assert total == 300
        assert {s["id"] for s in specialists} == {f"{n}-{i}" for n in "ab" for i in range(150)}
    finally:
        fleet.close()


@pytest.mark.parametrize("uri", [False, True], ids=["path", "file-uri"])
def test_both_lock_files_sit_beside_the_database_however_it_is_named(
    tmp_path: Path, uri: bool
) -> None:
    database = tmp_path / "my fleet.sqlite3"
    name = f"file:{str(database).replace(' ', '%20')}?mode=rwc" if uri else str(database)
    fleet = Fleet(env={"SQLITE_DBNAME": name, "FLEET_SWEEP_INTERVAL": "0"})
    try:
        fleet.register_specialist("w1", "Agent", ["code"])
    finally:
        fleet.close()
    assert database.exists()
    assert Path(f"{database}.startup-lock").exists()
    assert Path(f"{database}.writer-lock").exists()
