"""``locks_projection``: one row per lock (per acquisition), so ended locks stay listable.

The aggregate is the path: ``lock_paths`` keeps its state for the next event
(folded by ``RowProjection``), and it holds only the path's *current* lock. So a
page is folded in chunks that end before each new acquisition: the lock being
replaced is written out in its final state before the aggregate moves on. Each
row maps a lock id to its path stream, which is how ``/locks/{id}`` finds it;
``expires_at`` (UTC text) is what the sweep selects expired locks by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from application.projections.base import Fold, RowProjection, RowTable, Touched
from application.projections.view import ViewTx
from application.resources import lock_resource, utc_text
from domain.base import FleetRecovered
from domain.lock import FileLock

UPSERT_LOCK = (
    "INSERT INTO locks_projection (id, stream_id, normalized_path, reserved_by, status, "
    "reserved_at, expires_at, version, position, resource) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
    "expires_at = excluded.expires_at, version = excluded.version, "
    "position = excluded.position, resource = excluded.resource"
)


def _replaces_lock(event: Any) -> bool:
    """Events after which the aggregate may hold another lock than before."""
    return isinstance(event, FileLock.Acquired | FleetRecovered)


class LocksProjection(RowProjection):
    name = "locks"
    version = 1
    tables = (
        RowTable(
            table="lock_paths",
            aggregate_type=FileLock,
            public_id=lambda lock: lock.normalized_path,
            columns=lambda lock: {"lock_id": lock.lock_id, "status": lock.status},
            render=lock_resource,
        ),
    )
    owned_tables = ("locks_projection", "lock_paths")

    def replay(self, tx: ViewTx, fold: Fold, events: Sequence[tuple[int, Any]]) -> None:
        """Page by page: a page is cut before each new acquisition (``apply_page``)."""
        self.apply_page(tx, events, new_streams_have_no_rows=True)

    def apply_page(
        self,
        tx: ViewTx,
        events: Sequence[tuple[int, Any]],
        new_streams_have_no_rows: bool = False,
        written: Mapping[UUID, Any] | None = None,
    ) -> None:
        """In chunks that end before each new acquisition (see the module). A write's saved
        aggregates (``written``) hold the path's last lock only: a page of one chunk."""
        chunks: list[list[tuple[int, Any]]] = []
        for item in events:
            if not chunks or _replaces_lock(item[1]):
                chunks.append([])
            chunks[-1].append(item)
        whole = written if len(chunks) == 1 else None
        for chunk in chunks:
            super().apply_page(tx, chunk, new_streams_have_no_rows, whole)

    def after_page(self, tx: ViewTx, changed: list[Touched]) -> None:
        rows = []
        for item in changed:
            lock: FileLock = item.aggregate
            rows.append(
                (
                    lock.lock_id,
                    str(lock.id),
                    lock.normalized_path,
                    lock.specialist_id,
                    lock.status,
                    utc_text(lock.reserved_at),
                    utc_text(lock.expires_at),
                    lock.version,
                    item.position,
                    self.json.resource(lock_resource(lock)),
                )
            )
        tx.executemany(UPSERT_LOCK, rows)
