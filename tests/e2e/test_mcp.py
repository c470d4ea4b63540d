"""``fleet mcp`` driven by the MCP SDK's own clients: stdio and streamable HTTP.

Each session is a real ``fleet mcp`` process, one agent each; the two-agent scenario runs
them against a live gunicorn (``--url``), the HTTP transport test against a local store in
the server's process (``--store``).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from application import FleetClient
from tests.servers import BIN, ROOT, UNTRACED, free_port, stop

pytestmark = UNTRACED

TOOLS = {
    "claim_sortie",
    "create_mission",
    "create_sortie",
    "get_mission",
    "update_sortie",
    "send_message",
    "check_inbox",
    "ack_message",
    "acquire_lock",
    "release_lock",
    "list_locks",
    "checkpoint_mission",
    "query_events",
}
# The session's agent is implied: no tool asks who sends, reads, acks or holds.
IMPLIED = {"sender_id", "reader_id", "acker_id", "archived_by"}
QUIET = {"FLEET_LOG_LEVEL": "WARNING", "FLEET_LOG_FORMAT": "text"}


class Agent:
    """One MCP session: call a tool, get its JSON result or its refusal text."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def __call__(self, tool: str, **arguments: Any) -> Any:
        result = await self.session.call_tool(tool, arguments)
        assert not result.is_error, f"{tool} refused: {result.content}"
        return result.structured_content

    async def refused(self, tool: str, **arguments: Any) -> str:
        result = await self.session.call_tool(tool, arguments)
        assert result.is_error, f"{tool} was not refused: {result.structured_content}"
        text = "\n".join(block.text for block in result.content if hasattr(block, "text"))
        prefix = f"Error executing tool {tool}: "  # the SDK's; the problem follows
        assert text.startswith(prefix), text
        return text.removeprefix(prefix)


def fleet_mcp(*args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=str(BIN / "fleet"), args=["mcp", *args], env=QUIET, cwd=str(ROOT)
    )


@asynccontextmanager
async def stdio_agent(*args: str) -> AsyncIterator[Agent]:
    async with AsyncExitStack() as stack:
        read, write = await stack.enter_async_context(stdio_client(fleet_mcp(*args)))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield Agent(session)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    anyio.run(scenario)


def test_tools_describe_their_arguments_and_refusals_are_tool_errors(tmp_path: Path) -> None:
    store = str(tmp_path / "fleet.sqlite3")

    async def scenario() -> None:
        async with stdio_agent("--store", store, "--specialist-id", "ace") as ace:
            tools = {tool.name: tool for tool in (await ace.session.list_tools()).tools}
            assert set(tools) == TOOLS
            for tool in tools.values():
                assert tool.description and len(tool.description) > 20, tool.name
                properties = set(tool.input_schema["properties"])
                assert not properties & IMPLIED, tool.name
                assert tool.name == "list_locks" or "specialist_id" not in properties
            schema = tools["update_sortie"].input_schema
            assert schema["required"] == ["sortie_id"]
            assert "completed" in json.dumps(schema["properties"]["status"])
            assert tools["send_message"].input_schema["required"] == [
                "mailbox_id",
                "message_type",
                "content",
            ]
            assert tools["acquire_lock"].input_schema["required"] == ["file"]
            assert tools["check_inbox"].input_schema.get("required", []) == []
            assert tools["claim_sortie"].input_schema.get("required", []) == []
            claim = tools["claim_sortie"].input_schema["properties"]
            assert set(claim) == {"mission_id", "capabilities", "wait"}
            assert "30" in json.dumps(claim["wait"])
            assert "wait" in tools["check_inbox"].input_schema["properties"]

            # Bad arguments get the input-schema error; a refused command its problem.
            wrong = await ace.refused("acquire_lock", file=3)
            assert "file" in wrong and "string" in wrong
            missing = await ace.refused("get_mission", mission_id="00000000-0000-4000-8000-0")
            assert missing.startswith("404 Not found: mission")
            unknown_dependency = await ace.refused(
                "create_sortie", description="x", dependencies=["nope"]
            )
            assert unknown_dependency.startswith("422") and "dependencies" in unknown_dependency
            # ...and the server lives on: its own registration is in the log.
            events = await ace("query_events", type="specialist_registered")
            assert [e["data"]["specialist_id"] for e in events["events"]] == ["ace"]

    run(scenario)


def test_two_agents_share_a_mission_through_mcp(fleet_server: str) -> None:
    """An orchestrator plans; ace and bee each claim a sortie, contend for a file, talk, finish."""
    correlation = {name: f"mcp-{name}-{time.monotonic_ns()}" for name in ("boss", "ace", "bee")}

    def agent(name: str, *extra: str) -> Any:
        return stdio_agent(
            "--url",
            fleet_server,
            "--specialist-id",
            f"{name}-{correlation[name][-6:]}",
            "--name",
            name.title(),
            "--correlation-id",
            correlation[name],
            "--heartbeat-every",
            "600",  # no heartbeat during the scenario: its events are counted exactly
            *extra,
        )

    counts: dict[str, Counter[str]] = {}

    async def scenario() -> None:
        async with (
            agent("boss") as boss,
            agent("ace", "--capabilities", "code") as ace,
            agent("bee", "--capabilities", "code,test") as bee,
        ):
            ace_id, bee_id = f"ace-{correlation['ace'][-6:]}", f"bee-{correlation['bee'][-6:]}"
            mission = await boss("create_mission", title="Parser", goals=["parse", "test"])
            parse = await boss(
                "create_sortie",
                description="write the parser",
                mission_id=mission["id"],
                required_capabilities=["code"],
            )
            test = await boss(
                "create_sortie",
                description="test the parser",
                mission_id=mission["id"],
                dependencies=[parse["id"]],
                required_capabilities=["test"],
            )
            assert test["blocked_by"] == [parse["id"]]

            # Ace claims the parser (assigned to itself); ace cannot do the tests, and bee
            # finds nothing claimable until the parser is done.
            taken = (await ace("claim_sortie", mission_id=mission["id"]))["sortie"]
            assert (taken["id"], taken["assigned_to"]) == (parse["id"], ace_id)
            assert await ace("claim_sortie", mission_id=mission["id"]) == {"sortie": None}
            await ace("update_sortie", sortie_id=parse["id"], status="in_progress")
            nothing = await bee("claim_sortie", mission_id=mission["id"], wait=0.5)
            assert nothing == {"sortie": None}

            # Both want the same file: bee is refused, and told who holds it.
            lock = await ace("acquire_lock", file="src/parser.py", purpose="edit")
            refusal = await bee.refused("acquire_lock", file="./src//parser.py")
            assert refusal.startswith("409 Conflict") and f"locked by '{ace_id}'" in refusal
            assert json.loads(refusal.split("\n", 1)[1])["lock"]["reserved_by"] == ace_id
            held = await bee("list_locks", specialist_id=ace_id)
            assert [entry["id"] for entry in held["locks"]] == [lock["id"]]

            # They talk: bee asks, ace answers with an ack.
            question = await bee(
                "send_message", mailbox_id=ace_id, message_type="question", content={"eta": "?"}
            )
            assert question["sender_id"] == bee_id
            inbox = await ace("check_inbox", status="pending", wait=5)
            assert [m["id"] for m in inbox["messages"]] == [question["id"]]
            acked = await ace("ack_message", message_id=question["id"], response={"eta": "now"})
            assert (acked["status"], acked["acker_id"]) == ("acked", ace_id)

            await ace("update_sortie", sortie_id=parse["id"], progress=90, status_message="tests")
            await ace("release_lock", lock_id=lock["id"])
            done = await ace(
                "update_sortie", sortie_id=parse["id"], status="completed", result={"loc": 120}
            )
            assert done["status"] == "completed"

            # Now bee can claim the tests, start, take the file and finish.
            claimed = (await bee("claim_sortie", mission_id=mission["id"], wait=5))["sortie"]
            assert (claimed["id"], claimed["assigned_to"]) == (test["id"], bee_id)
            await bee("update_sortie", sortie_id=test["id"], status="in_progress")
            bee_lock = await bee("acquire_lock", file="src/parser.py", timeout_ms=60_000)
            await bee("release_lock", lock_id=bee_lock["id"])
            await bee("update_sortie", sortie_id=test["id"], status="completed")

            view = await boss("get_mission", mission_id=mission["id"])
            assert view["mission"]["progress"]["percent"] == 100
            assert {s["assigned_to"] for s in view["sorties"]} == {ace_id, bee_id}
            checkpoint = await boss("checkpoint_mission", mission_id=mission["id"])
            assert checkpoint["target_stream_id"] == mission["stream_id"]

            for name, session in (("boss", boss), ("ace", ace), ("bee", bee)):
                events = await session("query_events", correlation_id=correlation[name])
                assert events["total"] == len(events["events"])
                counts[name] = Counter(e["event_type"] for e in events["events"])

    run(scenario)
    assert counts["boss"] == Counter(
        specialist_registered=1,
        mission_created=1,
        sortie_created=2,
        checkpoint_created=1,
        fleet_checkpointed=1,
    )
    assert counts["ace"] == Counter(
        specialist_registered=1,
        sortie_assigned=1,
        sortie_started=1,
        lock_acquired=1,
        squawk_read=1,
        squawk_acked=1,
        sortie_progress=1,
        lock_released=1,
        sortie_completed=1,
    )
    # A request's correlation id marks every event it records: ace's ack of bee's question
    # is ace's, like everything else ace's session does.
    assert counts["bee"] == Counter(
        specialist_registered=1,
        sortie_assigned=1,
        lock_conflict=1,
        squawk_sent=1,
        sortie_started=1,
        lock_acquired=1,
        lock_released=1,
        sortie_completed=1,
    )
    # Every event names the agent that caused it (X-Fleet-Actor): its session's agent.
    ids = {name: f"{name}-{correlation[name][-6:]}" for name in correlation}
    with FleetClient(fleet_server) as fleet:
        for name in counts:
            events, _ = fleet.events(correlation_id=correlation[name])
            assert {e["metadata"].get("actor") for e in events} == {ids[name]}
    print("two-agent scenario events:", {name: dict(c) for name, c in counts.items()})


def test_streamable_http_serves_one_heartbeating_agent(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "mcp.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [
            str(BIN / "fleet"),
            "mcp",
            "--store",
            str(tmp_path / "fleet.sqlite3"),
            "--specialist-id",
            "solo",
            "--capabilities",
            "ops",
            "--heartbeat-every",
            "0.2",
            "--correlation-id",
            "solo-session",
            "--http",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", **QUIET},
    )

    async def scenario() -> None:
        deadline = time.monotonic() + 30
        while True:  # until uvicorn listens
            try:
                async with (
                    streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write),
                    ClientSession(read, write) as session,
                ):
                    await session.initialize()
                    solo = Agent(session)
                    assert {t.name for t in (await session.list_tools()).tools} == TOOLS
                    mission = await solo("create_mission", title="Over HTTP")
                    assert (await solo("get_mission", mission_id=mission["id"]))["sorties"] == []
                    await anyio.sleep(1.0)
                    beats = await solo(
                        "query_events", type="specialist_active", correlation_id="solo-session"
                    )
                    assert beats["total"] >= 2
                    mine = await solo("query_events", correlation_id="solo-session", limit=2)
                    assert mine["events"][0]["event_type"] == "specialist_registered"
                    return
            except (OSError, ExceptionGroup) as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "mcp.log").read_text()) from exc
                await anyio.sleep(0.2)

    try:
        run(scenario)
    finally:
        stop(process)
        log.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--specialist-id", "x"], "not both"),
        (["--specialist-id", "x", "--url", "http://h", "--store", "f"], "not both"),
        (["--specialist-id", "x", "--store", "f", "--http", "nope"], "HOST:PORT"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [str(BIN / "fleet"), "mcp", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **QUIET},
        check=False,
    )
    assert result.returncode == 2 and message in result.stderr
