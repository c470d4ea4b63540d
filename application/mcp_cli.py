"""``fleet mcp``: serve Fleet's agent tools (``application.mcp_server``) as one agent.

The command lives apart from the server so that the other ``fleet`` commands start without
importing the MCP SDK, which is most of a ``fleet`` start (about a second); ``fleet mcp``
imports it when it builds the server.
"""

from __future__ import annotations

import logging
import uuid

import click

from application.agent import AgentSession, open_door
from application.errors import FleetError

log = logging.getLogger("fleet.mcp")


def _bind(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{value!r} is not HOST:PORT", param_hint="--http")
    return host.strip("[]"), int(port)


@click.command("mcp")
@click.option("--url", envvar="FLEET_URL", help="A Fleet server to talk to [FLEET_URL].")
@click.option("--token", envvar="FLEET_API_TOKEN", help="Its API token [FLEET_API_TOKEN].")
@click.option(
    "--store",
    type=click.Path(dir_okay=False),
    help="Or: a local SQLite store, used in this process.",
)
@click.option(
    "--specialist-id",
    envvar="FLEET_SPECIALIST_ID",
    required=True,
    help="This agent's id, also its mailbox id [FLEET_SPECIALIST_ID].",
)
@click.option("--name", help="Its display name (default: the specialist id).")
@click.option("--capabilities", help="Comma-separated, e.g. code,review.")
@click.option(
    "--http",
    "http_bind",
    metavar="HOST:PORT",
    help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.",
)
@click.option(
    "--heartbeat-every",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Seconds between heartbeats (keep it under FLEET_HEARTBEAT_TIMEOUT).",
)
@click.option(
    "--correlation-id",
    help="The correlation id of this session's events (default: a new one).",
)
def mcp_command(
    url: str | None,
    token: str | None,
    store: str | None,
    specialist_id: str,
    name: str | None,
    capabilities: str | None,
    http_bind: str | None,
    heartbeat_every: float,
    correlation_id: str | None,
) -> None:
    """Serve Fleet's agent tools over MCP (stdio by default) as ONE agent.

    It registers --specialist-id at start and heartbeats while it runs; every tool acts as
    that agent. Talk to a server (--url) or to a local store in process (--store).
    """
    bind = _bind(http_bind) if http_bind else None
    correlation = correlation_id or f"mcp-{specialist_id}-{uuid.uuid4().hex[:12]}"
    try:
        door = open_door(url, token, store, correlation_id=correlation, actor=specialist_id)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    session = AgentSession(door, specialist_id, correlation)
    try:
        names = [c.strip() for c in capabilities.split(",") if c.strip()] if capabilities else None
        try:
            session.register(name or specialist_id, names)
        except FleetError as exc:
            raise click.ClickException(f"could not register {specialist_id!r}: {exc}") from None
        session.start_heartbeats(
            heartbeat_every,
            lambda exc: log.warning("heartbeat of %s failed: %s", specialist_id, exc),
        )
        from application.mcp_server import build_server  # the MCP SDK: only here

        server = build_server(session)
        if bind is None:
            server.run("stdio")
        else:
            server.run("streamable-http", host=bind[0], port=bind[1])
    finally:
        session.close()
