"""Fill ``fleet_event_index`` and ``fleet_event_counts`` from the stored events.

Migration 0001 creates the index empty. On a store that already holds events (an
upgrade after ``fleet db downgrade --to 0``, or a store made before Fleet indexed
events) the index is rebuilt from the log in the same transaction, so event queries
never miss an event.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import resolve_topic

from application.migrate import MigrationTx
from application.store.archive import Archive
from application.store.history import merge_notifications
from application.store.query import ADD_COUNTS, INSERT_INDEX

PAGE = 1000


def reindex_events(
    tx: MigrationTx,
    mapper: Mapper[Any],
    events_table: str,
    position: str,
    archive: Archive | None = None,
) -> int:
    """Index every stored event (live and archived); returns how many rows were written."""
    if tx.fetchall("SELECT 1 AS x FROM fleet_event_index LIMIT 1"):
        return 0
    stream_types: dict[UUID, str] = {}
    written = 0
    after = 0
    fill = {"index": "fleet_event_index", "counts": "fleet_event_counts", "p": "?"}
    while True:
        rows = tx.fetchall(
            f"SELECT {position} AS position, originator_id, originator_version, topic, state "  # noqa: S608 - fixed names
            f"FROM {events_table} WHERE {position} > ? ORDER BY {position} LIMIT {PAGE}",
            [after],
        )
        live = [
            Notification(
                id=int(r["position"]),
                originator_id=UUID(str(r["originator_id"])),
                originator_version=r["originator_version"],
                topic=r["topic"],
                state=bytes(r["state"]),
            )
            for r in rows
        ]
        archived = archive.select_notifications(after, PAGE) if archive is not None else []
        page = merge_notifications(live, archived, PAGE)
        if not page:
            return written
        index, counts = [], Counter[str]()
        for note in page:
            stream = UUID(str(note.originator_id))
            event: Any = mapper.to_domain_event(note)
            if stream not in stream_types:
                stream_types[stream] = _stream_type(event)
            index.append(
                (
                    note.id,
                    type(event).event_type,
                    str(stream),
                    stream_types[stream],
                    event.correlation_id,
                )
            )
            counts[type(event).event_type] += 1
        tx.executemany(INSERT_INDEX.format(**fill), index)
        tx.executemany(ADD_COUNTS.format(**fill), sorted(counts.items()))
        written += len(index)
        after = page[-1].id


def _stream_type(created: Any) -> str:
    """A stream's type comes from its first event, which names the aggregate class."""
    topic = getattr(created, "originator_topic", None)
    if topic is None:
        raise ValueError(f"stream {created.originator_id} does not start with a created event")
    return str(resolve_topic(topic).STREAM_TYPE)
