"""Fleet as Model Context Protocol tools, for one agent per session (``fleet mcp``).

The server is one agent: it registers its specialist at start and heartbeats while it
runs, and every tool acts as that agent (the sender of its messages, the holder of its
locks, the assignee when it takes a sortie). Each tool answers the resource dicts of the
HTTP API as JSON; a refused command is a tool error whose text is the problem's detail.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from application.agent import AgentSession, problem_of
from application.errors import FleetError
from domain.lock import LOCK_PURPOSES

INSTRUCTIONS = """\
Fleet coordinates a fleet of AI agents through an event-sourced log. You are the agent
{specialist_id!r}: messages you send come from you, locks you take are yours, and your
mailbox id is your specialist id. Typical loop: claim_sortie (wait=30 to wait for work)
takes the best sortie you can do and assigns it to you; update_sortie(status="in_progress"),
acquire_lock before editing a file and release_lock after, send_message/check_inbox (wait=30
to wait for mail) to talk to other agents, and update_sortie(status="completed",
result={{...}}) when done; then claim again.
A refused command is a tool error naming the reason (e.g. who holds a lock)."""

# The tools' enums. A Literal gives the tool schema its enum and pydantic its check, but
# cannot be built from a tuple for the type checker, so each spells the domain's words out
# and tests/unit/test_vocabulary.py holds it equal to its tuple (named beside it).
Priority = Literal["low", "medium", "high", "critical"]  # domain.base.PRIORITIES
MessagePriority = Literal["low", "normal", "high", "urgent"]  # domain.mailbox.MESSAGE_PRIORITIES
MessageStatus = Literal["pending", "read", "acked", "archived"]  # domain.mailbox.MESSAGE_STATUSES
SortieStatus = Literal[  # domain.sortie.PATCH_STATUSES
    "assigned", "in_progress", "blocked", "review", "completed", "failed", "cancelled"
]
Verdict = Literal["rejected", "needs_changes"]  # domain.sortie.REWORK_VERDICTS
# application.services.locks.LOCK_STATUS_FILTERS
LockStatusFilter = Literal["active", "released", "expired", "force_released", "all"]
JSONObject = dict[str, Any]
Limit = Annotated[int, Field(ge=1, le=1000, description="Page size (1-1000).")]
Offset = Annotated[int, Field(ge=0, description="How many to skip.")]
Wait = Annotated[
    float | None,
    Field(ge=0, le=30, description="When there is nothing yet, wait up to this many seconds."),
]


def refusal(error: FleetError) -> ToolError:
    """The tool error for a refused command: the problem's detail first, then its members."""
    problem = problem_of(error)
    text = f"{problem.pop('status')} {problem.pop('title')}: {problem.pop('detail')}"
    if problem:
        text += "\n" + json.dumps(problem, sort_keys=True, default=str)
    return ToolError(text)


def build_server(session: AgentSession) -> MCPServer[Any]:
    """The MCP server whose tools act as ``session``'s agent."""
    me = session.specialist_id
    server: MCPServer[Any] = MCPServer(
        "fleet", instructions=INSTRUCTIONS.format(specialist_id=me), version="1"
    )

    def run(method: str, **kwargs: Any) -> Any:
        try:
            return session.call(method, **kwargs)
        except FleetError as error:
            raise refusal(error) from error

    @server.tool()
    def create_mission(
        title: Annotated[str, Field(description="What the mission achieves (1-200 chars).")],
        description: str | None = None,
        goals: list[str] | None = None,
        priority: Priority | None = None,
        metadata: JSONObject | None = None,
    ) -> JSONObject:
        """Create a mission (status pending); answers the mission, whose id sorties name."""
        mission: JSONObject = run(
            "create_mission",
            title=title,
            description=description,
            goals=goals,
            priority=priority,
            metadata=metadata,
        )
        return mission

    @server.tool()
    def create_sortie(
        description: Annotated[str, Field(description="The work to do.")],
        mission_id: Annotated[str | None, Field(description="The mission it belongs to.")] = None,
        title: str | None = None,
        priority: Priority | None = None,
        dependencies: Annotated[
            list[str] | None,
            Field(description="Ids of sorties that must be completed before this one starts."),
        ] = None,
        assigned_to: Annotated[
            str | None, Field(description="A registered specialist to assign it to now.")
        ] = None,
        metadata: JSONObject | None = None,
        estimate_minutes: Annotated[int | None, Field(ge=0)] = None,
        required_capabilities: Annotated[
            list[str] | None,
            Field(description="Only an agent with all of these capabilities may claim it."),
        ] = None,
    ) -> JSONObject:
        """Create a sortie (a unit of work); answers the sortie with its blocked_by list."""
        sortie: JSONObject = run(
            "create_sortie",
            description=description,
            mission_id=mission_id,
            title=title,
            priority=priority,
            dependencies=dependencies,
            assigned_to=assigned_to,
            metadata=metadata,
            estimate_minutes=estimate_minutes,
            required_capabilities=required_capabilities,
        )
        return sortie

    @server.tool()
    def claim_sortie(
        mission_id: Annotated[
            str | None, Field(description="Claim only from this mission.")
        ] = None,
        capabilities: Annotated[
            list[str] | None,
            Field(description="Your capabilities for this claim; default: those you registered."),
        ] = None,
        wait: Wait = None,
    ) -> JSONObject:
        """Take the best claimable sortie (pending, unassigned, dependencies completed, your
        capabilities cover its required ones; highest priority, then oldest): it is assigned to
        you. Answers {"sortie": the sortie}, or {"sortie": null} when none is claimable."""
        sortie: JSONObject | None = run(
            "claim_sortie",
            specialist_id=me,
            mission_id=mission_id,
            capabilities=capabilities,
            wait=wait,
        )
        return {"sortie": sortie}

    @server.tool()
    def get_mission(mission_id: str) -> JSONObject:
        """A mission with its progress, and all its sorties (status, assignee, blocked_by)."""
        mission = run("get_mission", mission_id=mission_id)
        return {"mission": mission, "sorties": run("mission_sorties", mission_id=mission_id)}

    @server.tool()
    def update_sortie(
        sortie_id: str,
        status: Annotated[
            SortieStatus | None,
            Field(
                description="At most one status change: assigned (to you unless assigned_to), "
                "in_progress (start; from blocked: resolution; from review: verdict), blocked "
                "(reason), review (reviewer_id), completed (result), failed (error), cancelled."
            ),
        ] = None,
        assigned_to: Annotated[
            str | None, Field(description="With status assigned; default: you.")
        ] = None,
        progress: Annotated[
            int | None, Field(ge=0, le=100, description="While in_progress.")
        ] = None,
        status_message: str | None = None,
        result: JSONObject | None = None,
        reason: str | None = None,
        error: str | None = None,
        blocker_type: str | None = None,
        blocker_id: str | None = None,
        resolution: str | None = None,
        reviewer_id: str | None = None,
        review_type: str | None = None,
        verdict: Verdict | None = None,
        feedback: str | None = None,
        title: str | None = None,
        description: str | None = None,
        priority: Priority | None = None,
        metadata: JSONObject | None = None,
        dependencies: list[str] | None = None,
        expected_version: Annotated[
            int | None, Field(description="Refuse (412) unless the sortie is at this version.")
        ] = None,
    ) -> JSONObject:
        """Change a sortie: a status change and/or fields and progress, in one step.

        A change the lifecycle forbids is refused with the allowed next statuses.
        """
        if status == "assigned" and assigned_to is None:
            assigned_to = me
        sortie: JSONObject = run(
            "update_sortie",
            sortie_id=sortie_id,
            status=status,
            expected_version=expected_version,
            assigned_to=assigned_to,
            progress=progress,
            status_message=status_message,
            result=result,
            reason=reason,
            error=error,
            blocker_type=blocker_type,
            blocker_id=blocker_id,
            resolution=resolution,
            reviewer_id=reviewer_id,
            review_type=review_type,
            verdict=verdict,
            feedback=feedback,
            title=title,
            description=description,
            priority=priority,
            metadata=metadata,
            dependencies=dependencies,
        )
        return sortie

    @server.tool()
    def send_message(
        mailbox_id: Annotated[
            str, Field(description="The recipient's mailbox: an agent's is its specialist id.")
        ],
        message_type: Annotated[str, Field(description="What kind, e.g. question, handoff.")],
        content: JSONObject,
        thread_id: str | None = None,
        priority: MessagePriority | None = None,
    ) -> JSONObject:
        """Send a message from you to a mailbox; answers the message (status pending)."""
        message: JSONObject = run(
            "send_message",
            mailbox_id=mailbox_id,
            message_type=message_type,
            content=content,
            sender_id=me,
            thread_id=thread_id,
            priority=priority,
        )
        return message

    @server.tool()
    def check_inbox(
        mailbox_id: Annotated[str | None, Field(description="Default: your own mailbox.")] = None,
        status: MessageStatus | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
        wait: Wait = None,
    ) -> JSONObject:
        """List a mailbox's messages, oldest first, with the total that match (with wait:
        waiting for one when none matches yet)."""
        messages, total = run(
            "list_messages",
            mailbox_id=mailbox_id or me,
            status=status,
            limit=limit,
            offset=offset,
            wait=wait,
        )
        return {"messages": messages, "total": total}

    @server.tool()
    def ack_message(message_id: str, response: JSONObject | None = None) -> JSONObject:
        """Acknowledge a message as handled by you (reading it first if still pending)."""
        try:
            return session.acknowledge(message_id, response)
        except FleetError as error:
            raise refusal(error) from error

    @server.tool()
    def acquire_lock(
        file: Annotated[
            str, Field(description="The path to lock (normalised: a//b/./c is a/b/c).")
        ],
        timeout_ms: Annotated[
            int | None, Field(ge=1, description="How long it holds (default: the server's).")
        ] = None,
        purpose: Annotated[
            str | None,
            Field(
                description=f"One of {', '.join(LOCK_PURPOSES)} (default edit).",
                json_schema_extra={"enum": [*LOCK_PURPOSES, None]},
            ),
        ] = None,
        checksum: str | None = None,
    ) -> JSONObject:
        """Lock a file for you; refused while another agent holds it (the error names them)."""
        lock: JSONObject = run(
            "acquire_lock",
            file=file,
            specialist_id=me,
            timeout_ms=timeout_ms,
            purpose=purpose,
            checksum=checksum,
        )
        return lock

    @server.tool()
    def release_lock(
        lock_id: str,
        force: Annotated[bool, Field(description="Release another agent's lock.")] = False,
    ) -> JSONObject:
        """Release a lock you hold (or, with force, anyone's)."""
        lock: JSONObject = run("release_lock", lock_id=lock_id, specialist_id=me, force=force)
        return lock

    @server.tool()
    def list_locks(
        status: LockStatusFilter = "active",
        specialist_id: Annotated[str | None, Field(description="Only this holder's.")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> JSONObject:
        """List file locks, oldest first (active ones by default), with the total."""
        locks, total = run(
            "list_locks", status=status, specialist_id=specialist_id, limit=limit, offset=offset
        )
        return {"locks": locks, "total": total}

    @server.tool()
    def checkpoint_mission(mission_id: str, description: str | None = None) -> JSONObject:
        """Checkpoint a mission and its sorties, so it can be restored to this point."""
        mission = run("get_mission", mission_id=mission_id)
        checkpoint: JSONObject = run(
            "create_checkpoint", stream_id=mission["stream_id"], description=description
        )
        return checkpoint

    @server.tool()
    def query_events(
        type: Annotated[  # noqa: A002 - the API's name
            str | None, Field(description="An event type, or a comma-separated list.")
        ] = None,
        stream_id: str | None = None,
        correlation_id: str | None = None,
        after: Annotated[int | None, Field(ge=0, description="Only past this position.")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> JSONObject:
        """Read the event log, oldest first: what happened, to which stream, caused by whom."""
        events, total = run(
            "events",
            type=type,
            stream_id=stream_id,
            correlation_id=correlation_id,
            after=after,
            limit=limit,
            offset=offset,
        )
        return {"events": events, "total": total}

    return server
