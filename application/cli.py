"""``fleet``: replay and inspect the event log, run and rebuild projections; act as an agent
(``fleet agent``, ``fleet mcp``).

Settings come from the environment, as for the server (``PERSISTENCE_MODULE``,
``SQLITE_DBNAME``, ``POSTGRES_*``).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click
from tqdm import tqdm

from application import logs
from application.agent_cli import agent
from application.errors import FleetError
from application.mcp_cli import mcp_command

if TYPE_CHECKING:
    from application.fleet import Fleet
    from application.migrate import Migrator

# The commands that open the store import it when they run: `fleet agent`, an HTTP client
# that agents start for every step, then loads neither the store nor the event-sourcing
# library (half of `fleet`'s start-up).

log = logging.getLogger("fleet.cli")


def _dump(value: Any) -> str:
    from application.resources import jsonable

    return json.dumps(jsonable(value), indent=2, sort_keys=True)


def _open(external: bool = False, env: dict[str, str] | None = None) -> Fleet:
    from application.fleet import Fleet

    return Fleet(env={**(env or {}), **({"FLEET_PROJECTOR": "external"} if external else {})})


@click.group()
def main() -> None:
    """Fleet: event-sourced coordination for fleets of AI agents.

    Log lines go to stderr as JSON (FLEET_LOG_FORMAT=text for plain lines; FLEET_LOG_LEVEL);
    results go to stdout.
    """
    try:
        logs.configure()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


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


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _report(counts: dict[str, int]) -> None:
    if any(counts.values()):
        click.echo(json.dumps(counts, sort_keys=True))


SECONDS = click.FloatRange(min=0, min_open=True)


@main.command()
@click.option("--sweep-every", type=SECONDS, metavar="SECONDS", help="Also run the liveness sweep.")
def projector(sweep_every: float | None) -> None:
    """Run the projections in this process until interrupted (for multi-worker servers)."""
    fleet = _open(external=True)
    stop = _stop_on_signals()
    sweeper = None
    if sweep_every is not None:
        sweeper = fleet.start_sweeper(sweep_every, report=_report)
    log.info(
        "projector running; Ctrl-C stops it",
        extra={"backend": fleet.backend, "sweep_every": sweep_every},
    )
    fleet.projector.run_forever(stop)  # ends after the page under way
    if sweeper is not None:
        # A pass under way may be waiting for the projections to reach its own write (a
        # silent specialist's sorties are found in them), and this process is what moves
        # them: keep catching up until the pass has ended, then once more for its last
        # write, so the sweeps' own writes are never left behind a stop.
        fleet.stop_sweeper(timeout=0)
        while sweeper.is_alive():
            fleet.projector.catch_up()
            sweeper.join(0.01)
        fleet.projector.catch_up()
    fleet.close()
    log.info("projector stopped")


@main.command()
@click.option(
    "--every", type=SECONDS, metavar="SECONDS", help="Sweep again every SECONDS until interrupted."
)
def sweep(every: float | None) -> None:
    """Expire overdue locks and mark silent specialists inactive; prints the counts.

    One pass prints its counts as JSON; with --every, each pass that recorded something.
    """
    fleet = _open()
    try:
        if every is None:
            click.echo(json.dumps(fleet.sweep(), sort_keys=True))
            return
        log.info("sweeping every %g s; Ctrl-C stops it", every, extra={"every": every})
        fleet.sweep_forever(_stop_on_signals(), every, report=_report)
    except (FleetError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        fleet.close()


@main.command()
@click.option("--stream-id", help="Compact this stream (if it has events since its snapshot).")
@click.option(
    "--archive",
    is_flag=True,
    help="Then move events behind each snapshot, older than FLEET_ARCHIVE_AFTER_DAYS, "
    "to the archive.",
)
def compact(stream_id: str | None, archive: bool) -> None:
    """Snapshot the streams past FLEET_COMPACTION_THRESHOLD, record context_compacted on
    each, prune old snapshots (FLEET_SNAPSHOT_KEEP / _KEEP_DAYS); prints the report as JSON."""
    fleet = _open()
    try:
        report = fleet.compact(stream_id=stream_id, archive=archive)
    except (FleetError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        fleet.close()
    click.echo(json.dumps(report, indent=2, sort_keys=True))
    click.echo(
        f"# {report['streams_compacted']} of {report['streams_examined']} streams compacted, "
        f"{report['snapshots_pruned']} snapshots pruned, {report['events_archived']} events "
        f"archived in {report['duration_ms']} ms",
        err=True,
    )


@main.group()
def db() -> None:
    """Upgrade, downgrade and inspect Fleet's own tables (migrations/)."""


@contextmanager
def _migrator() -> Iterator[Migrator]:
    """The store's migration runner; no start-up upgrade, no projector."""
    from application.app import FleetApplication
    from application.migrate import MigrationError
    from application.settings import build_env
    from application.store.startup import startup_lock

    settings = build_env({"FLEET_AUTO_MIGRATE": "0"})
    with startup_lock(settings, create_schema=True):
        app = FleetApplication(settings)
        try:
            yield app.migrator()
        except MigrationError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            app.close()


@db.command("status")
def db_status() -> None:
    """Each migration: version, name, applied_at and ok/changed/pending/missing."""
    with _migrator() as migrator:
        report = migrator.status()
        applied = [row.version for row in report if row.state != "pending"]
    for row in report:
        click.echo(f"{row.version:04d}  {row.name:24} {row.state:8} {row.applied_at or '-'}")
    pending = [f"{row.version:04d}" for row in report if row.state == "pending"]
    click.echo(
        f"version {max(applied, default=0):04d}; pending: {', '.join(pending) or 'none'}", err=True
    )
    if any(row.state in ("changed", "missing") for row in report):
        raise click.ClickException("applied migrations differ from the files (changed or missing)")


@db.command("upgrade")
@click.option("--to", "to", type=click.IntRange(min=0), help="Stop at this version.")
def db_upgrade(to: int | None) -> None:
    """Apply pending migrations (up to --to), one transaction each."""
    with _migrator() as migrator:
        done = migrator.upgrade(to=to)
        version = migrator.current_version()
    for each in done:
        click.echo(f"applied {each:04d}")
    click.echo(f"schema at version {version:04d}" + ("" if done else " (nothing to do)"))


@db.command("downgrade")
@click.option("--to", "to", type=click.IntRange(min=0), help="Undo every migration above this.")
@click.option("--steps", type=click.IntRange(min=1), help="Undo this many, newest first.")
def db_downgrade(to: int | None, steps: int | None) -> None:
    """Undo applied migrations newest first (--to 0 removes them all), one transaction each."""
    if (to is None) == (steps is None):
        raise click.UsageError("give exactly one of --to and --steps")
    with _migrator() as migrator:
        done = migrator.downgrade(to=to, steps=steps)
        version = migrator.current_version()
    for each in done:
        click.echo(f"reverted {each:04d}")
    click.echo(f"schema at version {version:04d}" + ("" if done else " (nothing to do)"))


@db.command("grant")
@click.argument("role")
def db_grant(role: str) -> None:
    """Give an existing PostgreSQL ROLE what web workers and the projector need.

    Run it as the schema's owner, after ``fleet db upgrade`` (and again after each
    upgrade). The role may append events but never UPDATE or DELETE them; run the
    servers as that role with FLEET_AUTO_MIGRATE=0 and CREATE_TABLE=no.
    """
    from application.settings import POSTGRES, build_env
    from application.store.archive import PostgresArchive
    from application.store.roles import grant_app_role

    settings = build_env({"FLEET_PROJECTOR": "external"})
    if settings["PERSISTENCE_MODULE"] != POSTGRES:
        raise click.ClickException("roles are a PostgreSQL feature (PERSISTENCE_MODULE)")
    fleet = _open(env=settings)  # creates every table the role will use, projections' too
    try:
        archive = fleet.app.archive
        grant_app_role(
            fleet.app.recorder.datastore,  # type: ignore[attr-defined]
            fleet.app.recorder.events_table_name,  # type: ignore[attr-defined]
            role,
            archive.schema if isinstance(archive, PostgresArchive) else None,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        fleet.close()
    click.echo(f"granted {role}: append-only on the event log, read-write on projections")


main.add_command(agent)
main.add_command(mcp_command)


if __name__ == "__main__":
    main()
