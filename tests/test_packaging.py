"""The built distribution works on its own: build, install into a fresh venv, run it.

Catches packaging mistakes the editable dev install hides: a package or a data file
(``migrations/*/*.sql``) left out of the wheel, a broken console script, a dependency
missing from ``[project] dependencies``. The wheel is built from the sdist (``python -m
build``'s default), so the sdist is checked too; it is built from a copy of the tree without
local state (.venv, build/, *.egg-info, ...). Nothing here imports the source tree: every
command runs from a temp dir with the fresh venv's own interpreter.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGES = ("domain", "application", "web", "migrations")
LOCK = ROOT / "requirements.lock"
STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Installed:
    wheel: Path
    sdist: Path
    sources: frozenset[str]
    venv: Path
    workdir: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus whatever would let the source tree or the dev venv leak in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PERSISTENCE_MODULE"}
        and not key.startswith(("COV_", "COVERAGE_", "SQLITE_", "POSTGRES_", "FLEET_"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        args, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


# Left out of the copy that is built: local state that could paper over a packaging mistake
# (a stale *.egg-info/SOURCES.txt puts files into the sdist that the config would not).
LOCAL_STATE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*cache",
    ".hypothesis",
    ".coverage*",
    "htmlcov",
    "var",
)


def source_files(tree: Path) -> frozenset[str]:
    """The modules and data files the wheel must hold, as paths inside it."""
    found = {"wsgi.py"}
    for package in SOURCE_PACKAGES:
        for path in (tree / package).rglob("*"):
            if path.suffix in {".py", ".sql"} and "__pycache__" not in path.parts:
                found.add(path.relative_to(tree).as_posix())
    return frozenset(found)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("packaging")
    source, dist, venv, workdir = base / "source", base / "dist", base / "venv", base / "work"
    workdir.mkdir()
    shutil.copytree(ROOT, source, ignore=LOCAL_STATE)
    sources = source_files(source)
    # Without build isolation: the build backend is the dev venv's, which `build` checks
    # against [build-system] requires (a fresh isolated one per step took twice as long).
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)]
    run(build, cwd=workdir)
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1, wheels
    assert len(sdists) == 1, sdists

    # A bare venv, filled by this interpreter's pip (`--python`) without byte-compiling
    # every dependency: seeding pip and compiling were two thirds of this fixture.
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=workdir)
    constraints = ["--constraint", str(LOCK)] if LOCK.exists() else []
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    run([*pip, "--quiet", "--no-compile", *constraints, str(wheels[0])], cwd=workdir)
    return Installed(wheels[0], sdists[0], sources, venv, workdir)


def test_wheel_holds_every_module_and_migration(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    assert any(name.startswith("migrations/sqlite/") and name.endswith(".sql") for name in names)
    assert any(name.startswith("migrations/postgres/") and name.endswith(".sql") for name in names)
    assert sorted(installed.sources - names) == []
    assert not any(name.startswith("tests/") for name in names)
    # The console's templates and static files (docs/console.md) ship with it.
    assert {"web/ui/templates/ui/overview.html", "web/ui/static/console.css"} <= names


def test_console_script_runs(installed: Installed) -> None:
    result = run([installed.bin("fleet"), "--help"], cwd=installed.workdir)
    assert "Usage:" in result.stdout
    # The agent doors need their runtime dependencies (httpx, the mcp SDK) from the wheel.
    for command in ("agent", "mcp"):
        result = run([installed.bin("fleet"), command, "--help"], cwd=installed.workdir)
        assert "Usage:" in result.stdout


def test_imports_from_the_installed_wheel(installed: Installed) -> None:
    code = "import application; from application import Fleet; print(application.__file__)"
    result = run([installed.bin("python"), "-c", code], cwd=installed.workdir)
    location = Path(result.stdout.strip())
    assert location.is_relative_to(installed.venv), location


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_health(port: int) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture
def server(installed: Installed, tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = clean_env(
        PERSISTENCE_MODULE="eventsourcing.sqlite", SQLITE_DBNAME=str(tmp_path / "fleet.sqlite3")
    )
    log = (tmp_path / "gunicorn.log").open("w")
    proc = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
        [installed.bin("gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "wsgi:app"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()


def test_gunicorn_serves_health(
    server: tuple[int, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    port, proc = server
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            status, body = get_health(port)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (tmp_path / "gunicorn.log").read_text()
                pytest.fail(f"gunicorn exited or /health did not answer:\n{log[-4000:]}")
            time.sleep(0.25)
    assert status == 200, body
    assert body["status"] == "ok"
    assert (tmp_path / "fleet.sqlite3").exists()
