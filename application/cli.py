"""``fleet``: replay and inspect the event log, run and rebuild projections.

Settings come from the environment, as for the server (``PERSISTENCE_MODULE``,
``SQLITE_DBNAME``, ``POSTGRES_*``).
"""

from __future__ import annotations

import json
import signal
import threading
from datetime import datetime
from typing import Any
from uuid import UUID

import click
from tqdm import tqdm

from application.errors import FleetError
from application.fleet import Fleet
from application.resources import jsonable


def _dump(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2, sort_keys=True)


def _open(external: bool = False) -> Fleet:
    env = {"FLEET_PROJECTOR": "external"} if external else None
    return Fleet(env=env)


@click.group()
def main() -> None:
    """Fleet: event-sourced coordination for fleets of AI agents."""


@main.command()
@click.argument("stream_id")
@click.option("--to-version", type=click.IntRange(min=1), help="Stop after this version.")
@click.option(
    "--as-of", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z"]), help="Stop at this time."
)
def replay(stream_id: str, to_version: int | None, as_of: datetime | None) -> None:
    """Print a stream's events and the aggregate's state after each one."""
    fleet = _open(external=True)
    try:
        stream = UUID(stream_id)
    except ValueError:
        raise click.BadParameter("not a stream id (a UUID)", param_hint="STREAM_ID") from None
    aggregate: Any = None
    count = 0
    event: Any
    for event in fleet.app.events.get(stream, lte=to_version):
        if as_of is not None and event.timestamp > as_of:
            break
        aggregate = event.mutate(aggregate)
        count += 1
        when = event.timestamp.isoformat()
        click.echo(f"--- v{event.originator_version} {type(event).event_type} at {when}")
        click.echo(
            _dump({"correlation_id": event.correlation_id, "causation_id": event.causation_id})
        )
        click.echo(_dump(aggregate.state_dict()))
    if not count:
        raise click.ClickException(f"stream {stream_id} has no events")


@main.command()
@click.option("--type", "types", help="One event type or a comma list.")
@click.option("--stream-id")
@click.option("--correlation-id")
@click.option("--after", type=click.IntRange(min=0), help="Only events after this position.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
def events(
    types: str | None,
    stream_id: str | None,
    correlation_id: str | None,
    after: int | None,
    limit: int,
    offset: int,
) -> None:
    """List events, oldest first, with the same filters as ``Fleet.events``."""
    fleet = _open(external=True)
    try:
        found, total = fleet.events(
            type=types,
            stream_id=stream_id,
            correlation_id=correlation_id,
            after=after,
            limit=limit,
            offset=offset,
        )
    except FleetError as exc:
        raise click.ClickException(str(exc)) from None
    for event in found:
        click.echo(json.dumps(event, sort_keys=True))
    click.echo(f"# {len(found)} of {total}", err=True)


@main.group()
def projections() -> None:
    """Inspect and rebuild the projection tables."""


@projections.command("status")
def projections_status() -> None:
    """Name, version, position and lag of each projection."""
    fleet = _open(external=True)
    for row in fleet.projector.status():
        click.echo(
            "{name:12} v{version} stored v{stored_version} position {position} lag {lag}".format(
                **row
            )
        )


@projections.command("rebuild")
@click.argument("name", required=False)
def projections_rebuild(name: str | None) -> None:
    """Rebuild one projection (or all) from the start of the log, in one transaction each."""
    fleet = _open(external=True)
    names = [name] if name else list(fleet.projector.projections)
    total = fleet.app.recorder.max_notification_id() or 0
    for each in names:
        with tqdm(total=total, desc=each, unit="ev", disable=total < 10_000) as bar:
            try:
                applied = fleet.projector.rebuild(each, progress=bar.update)
            except FleetError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(f"{each}: replayed {applied} events")


@main.command()
def projector() -> None:
    """Run the projections in this process until interrupted (for multi-worker servers)."""
    fleet = _open(external=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo("projector running; Ctrl-C stops it", err=True)
    fleet.projector.run_forever(stop)
    fleet.close()


if __name__ == "__main__":
    main()
