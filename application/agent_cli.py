"""``fleet agent``: the commands an agent scripts against a Fleet server.

Every command talks to ``--url`` (``FLEET_URL``) with ``--token`` (``FLEET_API_TOKEN``),
prints the resource (``--json``: the resource dict as JSON, for scripts) and exits with a
code that tells what went wrong, so a shell script can branch without parsing text.
"""

from __future__ import annotations

import functools
import json
import sys
import uuid
from collections.abc import Callable
from typing import Any

import click

from application.agent import AgentSession, open_door, problem_of
from application.errors import (
    Conflict,
    FleetError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from application.waits import MAX_WAIT
from domain.mailbox import MESSAGE_PRIORITIES, MESSAGE_STATUSES
from domain.sortie import REWORK_VERDICTS
from domain.specialist import HEARTBEAT_STATUSES

# Exit codes (2 is click's usage error). Documented in docs/agents.md.
EXIT_CODES: tuple[tuple[type[FleetError], int], ...] = (
    (NotFound, 3),
    (Conflict, 4),
    (PreconditionFailed, 4),
    (Unavailable, 5),
    (ValidationError, 6),
    (Unauthorized, 7),
    (Forbidden, 7),
)
SPECIALIST_ENV = "FLEET_SPECIALIST_ID"
WAIT = click.FloatRange(0, MAX_WAIT)


def exit_code(error: FleetError) -> int:
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), 1)


class JSONParam(click.ParamType[Any, Any]):
    """A JSON value on the command line: ``--content '{"q": 1}'``."""

    name = "json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            self.fail(f"not valid JSON: {exc}", param, ctx)


JSON = JSONParam()


def _summary(value: Any) -> str:
    """One line per resource: its id, status and version, for people reading along."""
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "\n".join(_summary(item) for item in value) or "(none)"
    if not isinstance(value, dict):
        return str(value)
    parts = [str(value.get("id", ""))]
    for key in ("status", "message_type", "sender_id", "reserved_by", "file", "target_stream_id"):
        if value.get(key) is not None:
            parts.append(f"{key}={value[key]}")
    if "content" in value:
        parts.append(f"content={json.dumps(value['content'], sort_keys=True)}")
    if "version" in value:
        parts.append(f"v{value['version']}")
    return " ".join(parts)


def agent_command(group: click.Group, name: str) -> Callable[[Callable[..., Any]], click.Command]:
    """A ``group`` command that gets an ``AgentSession`` as its first argument, prints what
    it returns and turns a refusal into its exit code."""

    def decorate(function: Callable[..., Any]) -> click.Command:
        @group.command(name, help=function.__doc__)
        @click.option(
            "--url", envvar="FLEET_URL", required=True, help="The Fleet server [FLEET_URL]."
        )
        @click.option("--token", envvar="FLEET_API_TOKEN", help="API token [FLEET_API_TOKEN].")
        @click.option(
            "--correlation-id", help="Group the events this command causes (default: a new id)."
        )
        @click.option("--json", "as_json", is_flag=True, help="Print JSON (errors: to stderr).")
        @functools.wraps(function)
        def command(
            url: str, token: str | None, correlation_id: str | None, as_json: bool, **kwargs: Any
        ) -> None:
            correlation = correlation_id or str(uuid.uuid4())
            actor = kwargs.get("specialist_id")
            door = open_door(url, token, correlation_id=correlation, actor=actor)
            session = AgentSession(door, actor or "", correlation)
            try:
                result = function(session, **kwargs)
            except FleetError as error:
                problem = problem_of(error)
                if as_json:
                    click.echo(json.dumps(problem, sort_keys=True), err=True)
                else:
                    click.echo(f"error ({problem['status']} {error.title}): {error}", err=True)
                sys.exit(exit_code(error))
            finally:
                session.close()
            click.echo(
                json.dumps(result, indent=2, sort_keys=True) if as_json else _summary(result)
            )

        return command

    return decorate


def who(option: str, help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The acting specialist, from ``FLEET_SPECIALIST_ID`` unless given."""
    return click.option(
        option,
        "specialist_id",
        envvar=SPECIALIST_ENV,
        required=True,
        help=f"{help_text} [{SPECIALIST_ENV}].",
    )


@click.group()
def agent() -> None:
    """Act as an agent on a Fleet server (--url/FLEET_URL, --token/FLEET_API_TOKEN).

    Exit codes: 0 done, 3 not found, 4 conflict (409, 412), 5 unavailable, 6 invalid input,
    7 unauthorized or forbidden, 1 anything else, 2 bad usage.
    """


@agent_command(agent, "register")
@click.argument("specialist_id", envvar=SPECIALIST_ENV)
@click.option("--name", required=True, help="A display name.")
@click.option("--capabilities", help="Comma-separated, e.g. code,review.")
@click.option("--metadata", type=JSON, help="A JSON object.")
def register(
    session: AgentSession,
    specialist_id: str,
    name: str,
    capabilities: str | None,
    metadata: dict[str, Any] | None,
) -> Any:
    """Register SPECIALIST_ID (again: updates its name and capabilities)."""
    return session.call(
        "register_specialist",
        specialist_id=specialist_id,
        name=name,
        capabilities=_names(capabilities),
        metadata=metadata,
    )


@agent_command(agent, "heartbeat")
@click.argument("specialist_id", envvar=SPECIALIST_ENV)
@click.option("--status", type=click.Choice(HEARTBEAT_STATUSES))
@click.option("--current-sortie", help="The sortie being worked on.")
@click.option("--metrics", type=JSON, help="A JSON object.")
def heartbeat(
    session: AgentSession,
    specialist_id: str,
    status: str | None,
    current_sortie: str | None,
    metrics: dict[str, Any] | None,
) -> Any:
    """Tell Fleet SPECIALIST_ID is alive (and what it is doing)."""
    return session.call(
        "heartbeat",
        specialist_id=specialist_id,
        status=status,
        current_sortie=current_sortie,
        metrics=metrics,
    )


@agent_command(agent, "claim")
@click.argument("specialist_id", envvar=SPECIALIST_ENV)
@click.option("--mission-id", help="Claim only from this mission.")
@click.option("--capabilities", help="Comma-separated; default: those registered.")
@click.option("--wait", type=WAIT, help="Seconds (0-30) to wait for a claimable sortie.")
def claim(
    session: AgentSession,
    specialist_id: str,
    mission_id: str | None,
    capabilities: str | None,
    wait: float | None,
) -> Any:
    """Claim the best claimable sortie for SPECIALIST_ID; it is assigned to it.

    Prints the sortie, or "(none)" (--json: null) when nothing is claimable, exit 0.
    """
    return session.call(
        "claim_sortie",
        specialist_id=specialist_id,
        mission_id=mission_id,
        capabilities=_names(capabilities),
        wait=wait,
    )


@agent_command(agent, "update-sortie")
@click.argument("sortie_id")
@click.option("--status", help="assigned, in_progress, blocked, review, completed, failed...")
@click.option("--assigned-to", help="With --status assigned: the specialist.")
@click.option("--progress", type=click.IntRange(0, 100), help="0-100, while in progress.")
@click.option("--status-message", help="With --progress.")
@click.option("--result", type=JSON, help="A JSON object, when completing or failing.")
@click.option("--reason", help="Why it is blocked or cancelled.")
@click.option("--error", help="Why it failed.")
@click.option("--reviewer-id", help="With --status review.")
@click.option("--verdict", type=click.Choice(REWORK_VERDICTS))
@click.option("--feedback", help="Review feedback.")
@click.option("--resolution", help="How a block was resolved.")
@click.option(
    "--field",
    "extra",
    multiple=True,
    metavar="NAME=JSON",
    help="Any other PATCH field, e.g. --field priority='\"high\"'.",
)
@click.option("--if-match", "expected_version", type=int, help="Only if at this version (412).")
def update_sortie(
    session: AgentSession,
    sortie_id: str,
    status: str | None,
    expected_version: int | None,
    extra: tuple[str, ...],
    **fields: Any,
) -> Any:
    """Change SORTIE_ID: one status change and/or fields, as PATCH /sorties/{id}."""
    for item in extra:
        name, _, raw = item.partition("=")
        if not name or not raw:
            raise click.BadParameter(f"{item!r} is not NAME=JSON", param_hint="--field")
        fields[name.replace("-", "_")] = JSON.convert(raw, None, None)
    return session.call(
        "update_sortie",
        sortie_id=sortie_id,
        status=status,
        expected_version=expected_version,
        **fields,
    )


@agent_command(agent, "send")
@click.argument("mailbox_id")
@click.option("--type", "message_type", required=True, help="What kind of message.")
@click.option("--content", type=JSON, required=True, help="A JSON object.")
@who("--sender-id", "Who sends it")
@click.option("--thread-id", help="Group a conversation.")
@click.option("--priority", type=click.Choice(MESSAGE_PRIORITIES))
def send(
    session: AgentSession,
    mailbox_id: str,
    message_type: str,
    content: dict[str, Any],
    specialist_id: str,
    thread_id: str | None,
    priority: str | None,
) -> Any:
    """Send a message to MAILBOX_ID (an agent's mailbox id is its specialist id)."""
    return session.call(
        "send_message",
        mailbox_id=mailbox_id,
        message_type=message_type,
        content=content,
        sender_id=specialist_id,
        thread_id=thread_id,
        priority=priority,
    )


@agent_command(agent, "inbox")
@click.argument("mailbox_id", envvar=SPECIALIST_ENV)
@click.option("--status", type=click.Choice(MESSAGE_STATUSES))
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--wait", type=WAIT, help="Seconds (0-30) to wait for a message when none matches.")
def inbox(
    session: AgentSession,
    mailbox_id: str,
    status: str | None,
    limit: int,
    offset: int,
    wait: float | None,
) -> Any:
    """List MAILBOX_ID's messages, oldest first (default: FLEET_SPECIALIST_ID's)."""
    messages, _ = session.call(
        "list_messages",
        mailbox_id=mailbox_id,
        status=status,
        limit=limit,
        offset=offset,
        wait=wait,
    )
    return messages


@agent_command(agent, "ack")
@click.argument("message_id")
@who("--acker-id", "Who acknowledges it")
@click.option("--response", type=JSON, help="A JSON object back to the sender.")
def ack(
    session: AgentSession, message_id: str, specialist_id: str, response: dict[str, Any] | None
) -> Any:
    """Acknowledge MESSAGE_ID (a pending one is marked read first)."""
    return session.acknowledge(message_id, response)


@agent.group()
def lock() -> None:
    """File locks: one holder per normalised path."""


@agent_command(lock, "acquire")
@click.argument("file")
@who("--specialist-id", "The holder")
@click.option("--timeout-ms", type=click.IntRange(min=1), help="How long it holds.")
@click.option("--purpose", help="Why, for whoever is refused.")
def lock_acquire(
    session: AgentSession,
    file: str,
    specialist_id: str,
    timeout_ms: int | None,
    purpose: str | None,
) -> Any:
    """Lock FILE (exit 4, naming the holder, when someone else holds it)."""
    return session.call(
        "acquire_lock",
        file=file,
        specialist_id=specialist_id,
        timeout_ms=timeout_ms,
        purpose=purpose,
    )


@agent_command(lock, "release")
@click.argument("lock_id")
@who("--specialist-id", "The holder")
@click.option("--force", is_flag=True, help="Release another's lock.")
def lock_release(session: AgentSession, lock_id: str, specialist_id: str, force: bool) -> Any:
    """Release LOCK_ID."""
    return session.call("release_lock", lock_id=lock_id, specialist_id=specialist_id, force=force)


@agent_command(agent, "checkpoint")
@click.argument("stream_id")
@click.option("--description", help="What this point is.")
def checkpoint(session: AgentSession, stream_id: str, description: str | None) -> Any:
    """Checkpoint STREAM_ID (a mission's stream id, or fleet for every open mission)."""
    return session.call("create_checkpoint", stream_id=stream_id, description=description)


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]
