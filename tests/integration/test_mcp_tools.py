"""The MCP tools in process (the SDK's in-memory client), on both backends.

``tests/e2e/test_mcp.py`` drives real ``fleet mcp`` processes; here the same server object
runs over an in-process ``Fleet``, so each tool's mapping to the services is checked on
SQLite and PostgreSQL, together with the session's identity, correlation and heartbeats.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from mcp import Client

from application.agent import AgentSession
from application.fleet import Fleet
from application.mcp_server import build_server


class Tools:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def __call__(self, tool: str, **arguments: Any) -> Any:
        result = await self.client.call_tool(tool, arguments)
        assert not result.is_error, result.content
        return result.structured_content

    async def refused(self, tool: str, **arguments: Any) -> str:
        result = await self.client.call_tool(tool, arguments)
        assert result.is_error
        return "\n".join(getattr(block, "text", "") for block in result.content)


def test_every_tool_acts_as_the_sessions_agent(backend: dict[str, str]) -> None:
    fleet = Fleet(env=backend)
    session = AgentSession(fleet, "ace", "ace-session")
    other = AgentSession(Fleet(env=backend), "bee", "bee-session")
    try:
        assert session.register("Ace", ["code"])["capabilities"] == ["code"]
        other.register("Bee", None)

        async def scenario() -> None:
            async with Client(build_server(session)) as client, Client(build_server(other)) as b:
                ace, bee = Tools(client), Tools(b)
                mission = await ace("create_mission", title="Tools", priority="high")
                first = await ace("create_sortie", description="one", mission_id=mission["id"])
                second = await ace(
                    "create_sortie",
                    description="two",
                    mission_id=mission["id"],
                    assigned_to="bee",
                    dependencies=[first["id"]],
                )
                assert second["assigned_to"] == "bee" and second["blocked_by"] == [first["id"]]
                mine = await ace("update_sortie", sortie_id=first["id"], status="assigned")
                assert mine["assigned_to"] == "ace"
                await ace("update_sortie", sortie_id=first["id"], status="in_progress")
                stale = await ace.refused(
                    "update_sortie", sortie_id=first["id"], progress=5, expected_version=1
                )
                assert "412 Precondition failed" in stale and '"current_version": 3' in stale

                lock = await ace("acquire_lock", file="docs/x.md", purpose="edit")
                held = await bee.refused("acquire_lock", file="docs/x.md")
                assert "locked by 'ace'" in held and json.loads(held.split("\n", 1)[1])["lock"]
                assert (await bee("list_locks"))["total"] == 1
                forced = await bee("release_lock", lock_id=lock["id"], force=True)
                assert forced["status"] == "force_released"
                assert (await bee("list_locks", status="all", specialist_id="ace"))["total"] == 1

                note = await bee("send_message", mailbox_id="ace", message_type="note", content={})
                assert note["sender_id"] == "bee"
                assert (await bee("check_inbox", mailbox_id="ace"))["total"] == 1
                assert (await bee("check_inbox"))["total"] == 0
                acked = await ace("ack_message", message_id=note["id"])
                assert acked["reader_id"] == "ace" and acked["acker_id"] == "ace"
                again = await ace.refused("ack_message", message_id=note["id"])
                assert "409 Conflict" in again

                await ace("update_sortie", sortie_id=first["id"], status="completed")
                view = await ace("get_mission", mission_id=mission["id"])
                assert view["mission"]["progress"]["completed"] == 1
                assert [s["blocked_by"] for s in view["sorties"]] == [[], []]
                checkpoint = await ace("checkpoint_mission", mission_id=mission["id"])
                assert checkpoint["target_stream_id"] == mission["stream_id"]
                third = await ace(
                    "create_sortie",
                    description="three",
                    mission_id=mission["id"],
                    required_capabilities=["code"],
                )
                lacking = await bee("claim_sortie", mission_id=mission["id"], wait=0.2)
                assert lacking == {"sortie": None}  # bee registered no capabilities
                claimed = (await ace("claim_sortie", mission_id=mission["id"], wait=1))["sortie"]
                assert (claimed["id"], claimed["assigned_to"]) == (third["id"], "ace")
                too_long = await ace.refused("claim_sortie", wait=31)
                assert "wait" in too_long
                assert (await bee("check_inbox", wait=0.2))["total"] == 0
                unknown = await ace.refused("checkpoint_mission", mission_id="nope")
                assert "404 Not found" in unknown
                invalid = await ace.refused("query_events", type="nonsense")
                assert "422 Validation failed" in invalid and "valid types" in invalid

                events = await ace("query_events", correlation_id="ace-session", limit=1000)
                types = [e["event_type"] for e in events["events"]]
                assert types[0] == "specialist_registered" and "lock_acquired" in types
                assert {e["metadata"].get("actor") for e in events["events"]} == {"ace"}
                assert "lock_conflict" not in types  # bee's, under bee's correlation
                theirs = await ace(
                    "query_events", correlation_id="bee-session", type="lock_conflict"
                )
                assert theirs["total"] == 1

        anyio.run(scenario)
    finally:
        session.close()
        other.close()


def test_heartbeats_run_until_the_session_closes(sqlite_env: dict[str, str]) -> None:
    fleet = Fleet(env=sqlite_env)
    session = AgentSession(fleet, "ace", "beats")
    failures: list[Exception] = []
    session.register("Ace", None)
    session.start_heartbeats(0.05, failures.append)
    deadline = time.monotonic() + 10
    while fleet.get_specialist("ace")["version"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    session.close()  # stops the beats, then closes the store
    check = Fleet(env=sqlite_env)
    try:
        beats, total = check.events(type="specialist_active", correlation_id="beats")
        assert total >= 2 and failures == []
        assert {e["metadata"].get("actor") for e in beats} == {"ace"}
        time.sleep(0.2)
        assert check.events(type="specialist_active")[1] == total  # no beat after close
    finally:
        check.close()
