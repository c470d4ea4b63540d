"""The invariants a reliability run must keep, checked after the servers are stopped.

Load and faults only prove something through what is checked afterwards: every
acknowledged write is in the log (once), nothing refused or read wrote anything, no
request got a 5xx, every event is explained by a request or a sweep, the projections the
servers left equal the same projections rebuilt from the log, and the SQLite file is
intact. ``audit`` matches the journal against the log; ``compare_with_rebuild`` checks the
projections; ``assert_nothing_lost`` is the verdict every run under load must pass.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from application.fleet import Fleet
from application.projections import PROJECTIONS
from tests.reliability.harness.journal import Journal, Record
from tests.reliability.harness.store import LoggedEvent, offline_fleet

# Events a liveness sweep records under a correlation id of its own (no request caused them).
# sortie_released: the sorties a silenced specialist held, in the same save.
SWEEP_EVENTS = frozenset({"lock_timeout", "specialist_inactive", "sortie_released"})


@dataclass
class Audit:
    """Requests against the log: what was acknowledged, what landed, what must not have."""

    figures: dict[str, Any]
    problems: list[str]


def audit(
    journal: Journal, events: list[LoggedEvent], allowed_5xx: frozenset[int] = frozenset()
) -> Audit:
    """Match requests with events. A status in ``allowed_5xx`` (the 503 of a store busy past
    its timeout) counts as a refusal: such a write must have written nothing."""
    by_request: dict[str | None, list[LoggedEvent]] = defaultdict(list)
    for event in events:
        by_request[event.request_id].append(event)
    problems: list[str] = []
    statuses: Counter[str] = Counter()
    figures: Counter[str] = Counter()
    # Always reported, so a 0 reads as checked rather than missing.
    for key in (
        "requests_sent",
        "acknowledged_writes",
        "acknowledged_found",
        "acknowledged_lost",
        "duplicated_writes",
        "unacknowledged_in_log",
        "events_of_no_request",
        "http_5xx",
        "connection_refused",
        "no_response",
        "no_response_landed",
        "no_response_not_landed",
        "retried",
        "retried_replayed",
        "retried_ran",
        "retried_unanswered",
    ):
        figures[key] = 0
    known: set[str] = set()
    for record in journal.records:
        known.add(record.correlation_id)
        mine = by_request.get(record.correlation_id, [])
        figures["requests_sent"] += 1
        figures["writes_sent" if record.write else "reads_sent"] += 1
        statuses[str(record.status) if record.status is not None else "no_response"] += 1
        if record.status is not None and record.status >= 500:
            if record.status in allowed_5xx:
                figures[f"http_{record.status}_allowed"] += 1
            else:
                figures["http_5xx"] += 1
                problems.append(
                    f"5xx: {record.method} {record.path} -> {record.status} {record.answer}"
                )
        if record.retried:
            # The first attempt got no answer; the retry (same key) replays it if it landed,
            # else runs it now: either way the request must be in the log exactly once.
            figures["retried"] += 1
            _count_unanswered(record, record.replayed, figures, problems)
            if record.status is None:
                figures["retried_unanswered"] += 1
                problems.append(f"a retried write got no answer again: {record.correlation_id}")
                continue
            figures["retried_replayed" if record.replayed else "retried_ran"] += 1
        elif record.status is None:
            _count_unanswered(record, bool(mine), figures, problems)
            continue
        if not record.write:
            if mine:
                problems.append(f"a read wrote events: {record.method} {record.path}")
            continue
        if record.acknowledged:
            figures["acknowledged_writes"] += 1
            if not mine:
                figures["acknowledged_lost"] += 1
                problems.append(
                    f"acknowledged but not in the log: {record.op} {record.path} "
                    f"{record.status} position={record.position}"
                )
                continue
            figures["acknowledged_found"] += 1
            if record.position != mine[-1].position:
                problems.append(
                    f"X-Fleet-Position {record.position} of {record.correlation_id} is not its "
                    f"last event ({mine[-1].position})"
                )
            pairs = Counter((e.stream_id, e.event_type) for e in mine)
            if duplicated := [pair for pair, n in pairs.items() if n > 1]:
                figures["duplicated_writes"] += 1
                problems.append(f"{record.correlation_id} wrote {duplicated} more than once")
            continue
        figures["rejected_writes"] += 1
        allowed = (
            {"lock_conflict"} if record.op == "acquire_lock" and record.status == 409 else set()
        )
        if stray := [e for e in mine if e.event_type not in allowed]:
            figures["unacknowledged_in_log"] += 1
            problems.append(
                f"{record.op} answered {record.status} but wrote "
                f"{[e.event_type for e in stray]}: {record.answer}"
            )
    for request_id, mine in by_request.items():
        if request_id in known:
            continue
        for event in mine:
            if event.source == "sweep" and event.event_type in SWEEP_EVENTS:
                figures["sweep_events"] += 1
            else:
                figures["events_of_no_request"] += 1
                problems.append(f"an event no request or sweep explains: {event}")
    figures["events_in_log"] = len(events)
    return Audit(
        figures={**{k: figures[k] for k in sorted(figures)}, "statuses": dict(statuses)},
        problems=problems,
    )


def _count_unanswered(
    record: Record, landed: bool, figures: Counter[str], problems: list[str]
) -> None:
    """A request whose (first) attempt got no answer: refused before it reached a server,
    so it must not have ``landed``, or cut off, when it may have (counted either way)."""
    if record.refused:
        figures["connection_refused"] += 1
        if landed:
            how = "its retry was replayed" if record.retried else "it wrote events"
            problems.append(f"a refused request had landed ({how}): {record.correlation_id}")
    else:
        figures["no_response"] += 1
        figures["no_response_landed" if landed else "no_response_not_landed"] += 1


def projection_rows(fleet: Fleet) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projection table, in a stable order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with fleet.projector.read() as tx:
        for projection in PROJECTIONS:
            for table in projection.owned_tables:
                rows = tx.fetchall(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
                tables[table] = sorted((_row(row) for row in rows), key=repr)
    return tables


def _row(row: Any) -> tuple[Any, ...]:
    values = row.values() if isinstance(row, dict) else tuple(row)  # psycopg dict / sqlite3.Row
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in values)


def compare_with_rebuild(store: dict[str, str]) -> dict[str, Any]:
    """Rows as the servers left them, against the same projections replayed from scratch.

    Run with every server stopped: ``Fleet`` here only catches up with (nothing left, as the
    caller waited for lag 0), reads the rows, rebuilds each projection in one transaction
    and reads them again.
    """
    with offline_fleet(store) as fleet:
        head = fleet.app.recorder.max_notification_id() or 0
        positions = {row["name"]: row["position"] for row in fleet.projector.status()}
        before = projection_rows(fleet)
        for projection in PROJECTIONS:
            fleet.projector.rebuild(projection.name)
        after = projection_rows(fleet)
    differing = {
        table: {
            "served_only": len(set(before[table]) - set(after[table])),
            "rebuilt_only": len(set(after[table]) - set(before[table])),
        }
        for table in before
        if before[table] != after[table]
    }
    return {
        "head": head,
        "positions_behind_head": {n: head - p for n, p in positions.items() if p != head},
        "rows": sum(len(rows) for rows in before.values()),
        "tables_differing": differing,
    }


def assert_nothing_lost(
    result: Audit, server_errors: list[str], rebuild: dict[str, Any], integrity: str | None
) -> None:
    """The invariants every run under load must keep, whatever it did to the server."""
    assert result.problems == []
    assert server_errors == []
    assert rebuild["tables_differing"] == {}
    assert rebuild["positions_behind_head"] == {}
    assert integrity in (None, "ok")
