"""``fleet mcp`` in process: its arguments, its registration, and the transport it serves.

The served protocol itself is tested through the SDK's own client in tests/e2e/test_mcp.py
(a real subprocess); here the server's ``run`` is replaced, to see what the command asks
of it without serving forever.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import application.mcp_server
from application import Fleet
from application.mcp_cli import mcp_command
from tests.servers import free_port


class Served:
    """Stands in for the MCP server: records how it was asked to run."""

    def __init__(self) -> None:
        self.runs: list[tuple[Any, ...]] = []

    def run(self, transport: str, **kwargs: Any) -> None:
        self.runs.append((transport, kwargs))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Served:
    fake = Served()
    monkeypatch.setattr(application.mcp_server, "build_server", lambda session: fake)
    return fake


def run(*args: str) -> Any:
    return CliRunner().invoke(mcp_command, list(args))


@pytest.mark.parametrize(
    ("http", "expected"),
    [
        (None, ("stdio", {})),
        ("127.0.0.1:8123", ("streamable-http", {"host": "127.0.0.1", "port": 8123})),
        ("[::1]:9", ("streamable-http", {"host": "::1", "port": 9})),
    ],
    ids=["stdio", "http", "ipv6"],
)
def test_it_registers_its_agent_then_serves(
    tmp_path: Path, served: Served, http: str | None, expected: tuple[Any, ...]
) -> None:
    store = tmp_path / "fleet.sqlite3"
    extra = ["--http", http] if http else []
    result = run(
        "--store", str(store), "--specialist-id", "ace", "--capabilities", "code, ,review", *extra
    )
    assert result.exit_code == 0, result.output
    assert served.runs == [expected]
    fleet = Fleet(env={"SQLITE_DBNAME": str(store)})
    try:
        ace = fleet.get_specialist("ace")
        assert (ace["name"], ace["capabilities"]) == ("ace", ["code", "review"])
    finally:
        fleet.close()


@pytest.mark.parametrize("bind", ["8123", "host:", ":80", "host:port"])
def test_a_bad_http_bind_is_a_usage_error(tmp_path: Path, served: Served, bind: str) -> None:
    result = run("--store", str(tmp_path / "f.sqlite3"), "--specialist-id", "a", "--http", bind)
    assert result.exit_code == 2 and "HOST:PORT" in result.output
    assert served.runs == []


def test_one_door_only(tmp_path: Path, served: Served) -> None:
    both = run(
        "--url", "http://127.0.0.1:1", "--store", str(tmp_path / "f"), "--specialist-id", "a"
    )
    neither = run("--specialist-id", "a")
    assert both.exit_code == neither.exit_code == 2
    assert "not both" in both.output and served.runs == []


def test_a_failed_registration_is_a_clean_error(served: Served) -> None:
    result = run("--url", f"http://127.0.0.1:{free_port()}", "--specialist-id", "ace")
    assert result.exit_code == 1 and "could not register 'ace'" in result.output
    assert served.runs == []
