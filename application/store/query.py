"""The event index's queries, written once for both backends.

Templates name tables as ``{index}``, ``{events}``, ``{counts}`` and ``{blocks}`` and the
events table's position column as ``{pos}``; each recorder fills them in its
own way (plain names on SQLite, schema-qualified identifiers on PostgreSQL).
Values are always bound parameters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

EVENT_INDEX_TABLE = "fleet_event_index"
EVENT_COUNTS_TABLE = "fleet_event_counts"
EVENT_BLOCKS_TABLE = "fleet_event_blocks"

# Events per type and block of BLOCK positions (migration 0007), kept beside the per-type
# counters: the total past ``after=`` is the blocks after its block plus a count of at most
# BLOCK - 1 index entries, at any depth. Counting the index past ``after`` instead walked every
# later entry of the type (40 ms for a common type near the start of a 1M-event log).
BLOCK = 4096

INSERT_INDEX = (
    "INSERT INTO {index} (position, event_type, stream_id, stream_type, correlation_id) "
    "VALUES ({p}, {p}, {p}, {p}, {p})"
)
ADD_COUNTS = (
    "INSERT INTO {counts} (event_type, n) VALUES ({p}, {p}) "
    "ON CONFLICT (event_type) DO UPDATE SET n = {counts}.n + excluded.n"
)
ADD_BLOCKS = (
    "INSERT INTO {blocks} (event_type, block, n) VALUES ({p}, {p}, {p}) "
    "ON CONFLICT (event_type, block) DO UPDATE SET n = {blocks}.n + excluded.n"
)


def index_statement(events: int, types: int, blocks: int) -> str:
    """``INSERT_INDEX``, ``ADD_COUNTS`` and ``ADD_BLOCKS`` as one statement (two
    data-modifying CTEs and the blocks' insert), for ``events`` index rows, ``types``
    counter rows and ``blocks`` block rows: the parameters are those of the three, in
    that order. One statement instead of three executemany calls, each a pass through the
    driver's pipeline machinery on PostgreSQL (SQLite runs the three, in C)."""
    insert_index = _rows_of(INSERT_INDEX, events)
    add_counts = _rows_of(ADD_COUNTS, types)
    add_blocks = _rows_of(ADD_BLOCKS, blocks)
    return f"WITH indexed AS ({insert_index}), counted AS ({add_counts}) {add_blocks}"


def _rows_of(insert: str, rows: int) -> str:
    """A one-row ``INSERT ... VALUES ({p}, ...)`` template made to insert ``rows`` rows."""
    one = "(" + insert.partition(" VALUES (")[2].partition(")")[0] + ")"
    if not one.startswith("({p}"):
        raise ValueError(f"not a one-row VALUES insert: {insert}")
    return insert.replace(one, ", ".join([one] * rows), 1)


@dataclass(frozen=True)
class EventFilter:
    """Which events to list: each given criterion narrows the result."""

    types: Sequence[str] = ()
    stream_id: str | None = None
    correlation_id: str | None = None
    after: int | None = None
    position: int | None = None
    from_sequence: int | None = None
    to_sequence: int | None = None

    @property
    def needs_join(self) -> bool:
        """Sequence bounds live on the events table, not the index."""
        return self.from_sequence is not None or self.to_sequence is not None

    @property
    def _types_and_after_only(self) -> bool:
        return (
            not self.needs_join
            and self.stream_id is None
            and self.correlation_id is None
            and self.position is None
        )

    @property
    def by_type_only(self) -> bool:
        """Totals of type-only filters come from the per-type counters."""
        return self._types_and_after_only and self.after is None

    @property
    def by_type_after(self) -> bool:
        """Totals past ``after`` with no other filter than types come from the blocks."""
        return self._types_and_after_only and self.after is not None

    def where(self, p: str) -> tuple[str, list[object]]:
        """A WHERE clause over the index (alias ``i``) and events (alias ``e``)."""
        clauses: list[str] = []
        params: list[object] = []

        def add(clause: str, value: object) -> None:
            clauses.append(clause)
            params.append(value)

        if self.types:
            clauses.append(f"i.event_type IN ({', '.join([p] * len(self.types))})")
            params.extend(self.types)
        if self.stream_id is not None:
            add(f"i.stream_id = {p}", self.stream_id)
        if self.correlation_id is not None:
            add(f"i.correlation_id = {p}", self.correlation_id)
        if self.after is not None:
            add(f"i.position > {p}", self.after)
        if self.position is not None:
            add(f"i.position = {p}", self.position)
        if self.from_sequence is not None:
            add(f"e.originator_version >= {p}", self.from_sequence)
        if self.to_sequence is not None:
            add(f"e.originator_version <= {p}", self.to_sequence)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


# The index rows past a position, for waking waiters (``application.waits``): the index
# alone, no join and no count.
INDEX_AFTER = (
    "SELECT position, event_type, stream_id, correlation_id FROM {index} "
    "WHERE position > {p} ORDER BY position LIMIT {p}"
)


@dataclass(frozen=True)
class LogRead:
    """What a decision read of state derived from the log (a projection's rows), complete
    up to ``position``: it still holds while no event of one of ``event_types``, nor of
    one of ``streams``, has been recorded after it. Its write confirms that in its own
    transaction (``IndexingRecorder.events_inserted``), else ``StaleReads``.

    More than ``NAMED_STREAMS`` streams are checked as every stream of ``stream_type``
    (each named stream is a bound parameter; the drivers bound how many a statement has).
    """

    position: int
    event_types: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()
    stream_type: str = ""

    NAMED_STREAMS: ClassVar[int] = 1000


def recorded_since_query(reads: Sequence[LogRead], before: int, p: str) -> tuple[str, list[object]]:
    """One row: column ``c<n>`` is true when an event ``reads[n]`` did not see has been
    recorded since (at a position below ``before``, the write's first: its own events are
    not news to its decision). Each reads only index rows past its read's position: the few
    recorded while the command decided."""
    columns: list[str] = []
    params: list[object] = []
    for number, read in enumerate(reads):
        matches: list[str] = []
        params += [read.position, before]
        if read.event_types:
            matches.append(f"event_type IN ({', '.join([p] * len(read.event_types))})")
            params += read.event_types
        if len(read.streams) > LogRead.NAMED_STREAMS:
            matches.append(f"stream_type = {p}")
            params.append(read.stream_type)
        elif read.streams:
            matches.append(f"stream_id IN ({', '.join([p] * len(read.streams))})")
            params += read.streams
        columns.append(
            f"EXISTS (SELECT 1 FROM {{index}} WHERE position > {p} AND position < {p} "  # noqa: S608 - placeholders only
            f"AND ({' OR '.join(matches) or 'FALSE'})) AS c{number}"
        )
    return f"SELECT {', '.join(columns)}", params  # fixed fragments; values are parameters


def page_query(flt: EventFilter, p: str) -> tuple[str, list[object]]:
    """One page of events: page the index alone first, then join only that page."""
    where, params = flt.where(p)
    join = " JOIN {events} e ON e.{pos} = i.position" if flt.needs_join else ""
    # Fixed fragments only; every value is a bound parameter.
    sql = (
        "SELECT i.position, i.event_type, i.stream_type, i.correlation_id, "  # noqa: S608
        "e.originator_id, e.originator_version, e.topic, e.state "
        f"FROM (SELECT i.position FROM {{index}} i{join}{where} "
        f"ORDER BY i.position LIMIT {p} OFFSET {p}) page "
        "JOIN {index} i ON i.position = page.position "
        "LEFT JOIN {events} e ON e.{pos} = page.position ORDER BY page.position"
    )  # LEFT: an archived event keeps its index row; its body comes from the archive
    return sql, params


def count_query(flt: EventFilter, p: str) -> tuple[str, list[object]]:
    """The total matching ``flt``: from the counters when only types filter."""
    if flt.by_type_only:
        if not flt.types:
            return "SELECT COALESCE(SUM(n), 0) AS n FROM {counts}", []
        marks = ", ".join([p] * len(flt.types))
        return (
            f"SELECT COALESCE(SUM(n), 0) AS n FROM {{counts}} WHERE event_type IN ({marks})",  # noqa: S608
            list(flt.types),
        )
    if flt.by_type_after:
        return blocks_count_query(flt, p)
    where, params = flt.where(p)
    join = " JOIN {events} e ON e.{pos} = i.position" if flt.needs_join else ""
    return f"SELECT COUNT(*) AS n FROM {{index}} i{join}{where}", params  # noqa: S608


def blocks_count_query(flt: EventFilter, p: str) -> tuple[str, list[object]]:
    """The total past ``flt.after``: whole blocks from the counters, the rest of its own
    block (fewer than BLOCK positions) from the index."""
    assert flt.after is not None  # noqa: S101 - by_type_after says so
    block = flt.after // BLOCK
    of_type = ""
    if flt.types:
        of_type = f"event_type IN ({', '.join([p] * len(flt.types))}) AND "
    sql = (
        f"SELECT (SELECT COALESCE(SUM(n), 0) FROM {{blocks}} WHERE {of_type}block > {p}) "  # noqa: S608 - placeholders only
        f"+ (SELECT COUNT(*) FROM {{index}} WHERE {of_type}position > {p} AND position < {p}) "
        "AS n"
    )
    types = list(flt.types)
    return sql, [*types, block, *types, flt.after, (block + 1) * BLOCK]


@dataclass(frozen=True)
class IndexedEvent:
    """A stored event with its global position and the index's columns."""

    notification: Notification
    event_type: str
    stream_type: str
    correlation_id: str


@dataclass
class EventPage:
    events: list[IndexedEvent] = field(default_factory=list)
    total: int = 0


@dataclass(frozen=True)
class IndexRow:
    """What the recorder writes to the event index for one stored event."""

    event_type: str
    stream_type: str
    correlation_id: str


def index_params(
    positions: Sequence[int], stored_events: Sequence[StoredEvent], rows: Sequence[IndexRow]
) -> list[tuple[object, ...]]:
    return [
        (
            position,
            row.event_type,
            str(UUID(str(event.originator_id))),
            row.stream_type,
            row.correlation_id,
        )
        for position, event, row in zip(positions, stored_events, rows, strict=True)
    ]


def count_params(rows: Sequence[IndexRow]) -> list[tuple[object, ...]]:
    return sorted(Counter(row.event_type for row in rows).items())


def block_params(positions: Sequence[int], rows: Sequence[IndexRow]) -> list[tuple[object, ...]]:
    blocks = Counter(
        (row.event_type, position // BLOCK) for position, row in zip(positions, rows, strict=True)
    )
    return [(event_type, block, n) for (event_type, block), n in sorted(blocks.items())]


class EventIndexReader(Protocol):
    """What both Fleet recorders offer beyond the library's ApplicationRecorder."""

    def select_event_page(self, flt: EventFilter, limit: int, offset: int = 0) -> EventPage: ...


ARCHIVED_TOPIC = ""  # the placeholder topic of an index row whose event is archived


def archived_placeholder(position: int) -> Notification:
    return Notification(
        id=position, originator_id=UUID(int=0), originator_version=0, topic=ARCHIVED_TOPIC,
        state=b"",
    )  # fmt: skip


class ArchivedEvents(Protocol):
    def select_positions(self, positions: Sequence[int]) -> dict[int, Notification]: ...


class ArchiveAwareIndex:
    """Index pages with the archived events' bodies read from the archive."""

    def __init__(self, reader: EventIndexReader, archive: ArchivedEvents | None):
        self.reader = reader
        self.archive = archive

    def select_event_page(self, flt: EventFilter, limit: int, offset: int = 0) -> EventPage:
        page = self.reader.select_event_page(flt, limit, offset)
        missing = [e.notification.id for e in page.events if e.notification.topic == ARCHIVED_TOPIC]
        if not missing:
            return page
        found = self.archive.select_positions(missing) if self.archive is not None else {}
        events = [
            replace(e, notification=found[e.notification.id])
            if e.notification.topic == ARCHIVED_TOPIC
            else e
            for e in page.events
            if e.notification.topic != ARCHIVED_TOPIC or e.notification.id in found
        ]
        return EventPage(events, page.total)
