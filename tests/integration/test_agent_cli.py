"""``fleet agent``: an agent's commands against a live server, with JSON and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from typing import Any

import pytest
from click.testing import CliRunner, Result

from application.cli import main
from application.client import FleetClient
from tests.servers import free_port


@pytest.fixture
def fleet_cli(fleet_server: str) -> Any:
    def run(*args: str, specialist: str | None = None) -> Result:
        env = {"FLEET_URL": fleet_server}
        if specialist is not None:
            env["FLEET_SPECIALIST_ID"] = specialist
        return CliRunner().invoke(main, ["agent", *args], env=env)

    return run


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_an_agent_works_a_sortie_from_the_shell(fleet_cli: Any, fleet_server: str) -> None:
    ace, bee = f"ace-{uuid.uuid4().hex[:6]}", f"bee-{uuid.uuid4().hex[:6]}"
    me = as_json(
        fleet_cli("register", ace, "--name", "Ace", "--capabilities", "code, review", "--json")
    )
    assert me["capabilities"] == ["code", "review"] and me["status"] == "active"
    as_json(fleet_cli("register", "--name", "Bee", "--json", specialist=bee))
    beat = as_json(fleet_cli("heartbeat", "--status", "busy", "--json", specialist=ace))
    assert beat["status"] == "busy"

    # An orchestrator creates the sortie; the agent claims it and works it from the shell.
    with FleetClient(fleet_server) as orchestrator:
        mission = orchestrator.create_mission(title="CLI")
        empty = fleet_cli("claim", "--mission-id", mission["id"], "--wait", "0.2", specialist=ace)
        assert empty.exit_code == 0 and empty.stdout.strip() == "(none)"
        sortie = orchestrator.create_sortie(
            description="ship the CLI", mission_id=mission["id"], required_capabilities=["code"]
        )
    sid = sortie["id"]
    lacking = fleet_cli("claim", bee, "--mission-id", mission["id"], "--json")
    assert as_json(lacking) is None  # bee registered no capabilities
    assigned = as_json(fleet_cli("claim", "--mission-id", mission["id"], "--json", specialist=ace))
    assert (assigned["id"], assigned["assigned_to"]) == (sid, ace)
    too_long = fleet_cli("claim", ace, "--wait", "31")
    assert too_long.exit_code == 2 and "--wait" in too_long.output
    as_json(fleet_cli("update-sortie", sid, "--status", "in_progress", "--json"))
    halfway = fleet_cli("update-sortie", sid, "--progress", "50", "--field", 'priority="high"')
    assert halfway.exit_code == 0 and f"{sid} status=in_progress" in halfway.stdout
    done = as_json(
        fleet_cli(
            "update-sortie", sid, "--status", "completed", "--result", '{"ok": true}', "--json"
        )
    )
    assert done["status"] == "completed" and done["result"] == {"ok": True}

    sent = as_json(
        fleet_cli(
            "send",
            bee,
            "--type",
            "handoff",
            "--content",
            json.dumps({"sortie": sid}),
            "--json",
            specialist=ace,
        )
    )
    assert sent["sender_id"] == ace and sent["mailbox_id"] == bee
    inbox = as_json(fleet_cli("inbox", "--status", "pending", "--json", specialist=bee))
    assert [m["id"] for m in inbox] == [sent["id"]]
    with FleetClient(fleet_server) as other:
        later = threading.Timer(0.3, other.send_message, (ace, "note", {"n": 1}))
        later.start()
        waited = as_json(fleet_cli("inbox", "--wait", "10", "--json", specialist=ace))
        later.join()
    assert [m["content"] for m in waited] == [{"n": 1}]
    acked = as_json(
        fleet_cli("ack", sent["id"], "--response", '{"thanks": 1}', "--json", specialist=bee)
    )
    assert acked["status"] == "acked" and acked["acker_id"] == bee

    path = f"src/{uuid.uuid4().hex[:6]}.py"
    lock = as_json(
        fleet_cli("lock", "acquire", path, "--purpose", "edit", "--json", specialist=ace)
    )
    refused = fleet_cli("lock", "acquire", path, "--json", specialist=bee)
    assert refused.exit_code == 4
    problem = json.loads(refused.stderr)
    assert problem["status"] == 409 and problem["lock"]["reserved_by"] == ace
    released = as_json(fleet_cli("lock", "release", lock["id"], "--json", specialist=ace))
    assert released["status"] == "released"

    checkpoint = as_json(
        fleet_cli("checkpoint", sortie["stream_id"], "--description", "done", "--json")
    )
    assert checkpoint["target_stream_id"] == sortie["stream_id"]


def test_exit_codes_tell_what_went_wrong(fleet_cli: Any, fleet_server: str) -> None:
    missing = fleet_cli("heartbeat", f"nobody-{uuid.uuid4().hex[:6]}")
    assert missing.exit_code == 3 and "error (404 Not found)" in missing.stderr
    nothing = fleet_cli("update-sortie", str(uuid.uuid4()), "--json")
    assert nothing.exit_code == 6 and "nothing to change" in json.loads(nothing.stderr)["detail"]
    unknown = fleet_cli("update-sortie", str(uuid.uuid4()), "--status", "cancelled")
    assert unknown.exit_code == 3
    bad = fleet_cli("send", "box", "--type", "", "--content", "{}", "--json", specialist="ace")
    assert bad.exit_code == 6 and "message_type" in json.loads(bad.stderr)["errors"]
    with FleetClient(fleet_server) as orchestrator:
        sortie = orchestrator.create_sortie(description="contested")
    stale = fleet_cli("update-sortie", sortie["id"], "--field", 'title="x"', "--if-match", "9")
    assert stale.exit_code == 4 and "412" in stale.stderr
    usage = fleet_cli("send", "box", "--type", "t", "--content", "not json", specialist="ace")
    assert usage.exit_code == 2 and "not valid JSON" in usage.output


def test_an_unreachable_server_is_exit_5() -> None:
    result = CliRunner().invoke(
        main,
        ["agent", "inbox", "box", "--url", f"http://127.0.0.1:{free_port()}"],
    )
    assert result.exit_code == 5 and "did not answer" in result.stderr


def test_the_agent_commands_start_without_the_store() -> None:
    """`fleet agent` talks HTTP: loading the CLI must not load the store or the library's
    application layer (half of `fleet`'s start-up); `application.Fleet` still resolves."""
    code = (
        "import sys, application.cli, application.agent_cli;"
        "heavy = [m for m in ('application.fleet', 'eventsourcing.application', 'flask')"
        " if m in sys.modules];"
        "import application; application.Fleet; application.FleetClient;"
        "print(heavy, 'application.fleet' in sys.modules)"
    )
    result = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["[]", "True"], result.stdout + result.stderr


def test_the_summary_lines_read_any_answer() -> None:
    """``--json`` aside, each command prints one line per resource for people reading."""
    from application.agent_cli import JSON, _summary

    assert _summary(None) == _summary([]) == "(none)"
    assert _summary("plain") == "plain"
    assert _summary([{"id": "a", "status": "pending", "version": 2}, {"id": "b"}]) == (
        "a status=pending v2\nb"
    )
    assert JSON.convert({"already": "parsed"}, None, None) == {"already": "parsed"}
