"""Leases: the sorties a specialist holds return to the queue when it stops.

A specialist that becomes ``inactive`` (its heartbeats stopped, or it deregistered) or
``failed`` will not finish its ``assigned``, ``in_progress`` or ``blocked`` sorties; each
records ``sortie_released`` and is ``pending`` with no assignee, claimable again. The
releases are saved in the same transaction as the specialist's own event, so they happen
exactly when it stops: two sweepers racing to silence one specialist collide on its
stream, and the loser's retry finds it inactive already and records nothing.
"""

from __future__ import annotations

import logging
from uuid import UUID

from application.app import FleetApplication
from application.errors import Unavailable
from application.projections import Projector
from domain.sortie import RELEASABLE, Sortie

log = logging.getLogger(__name__)

# Why a specialist stopped -> the reason its sorties are released with.
RELEASE_REASON = {
    "heartbeat_timeout": "heartbeat_timeout",
    "deregistered": "deregistered",
    "failed": "specialist_failed",
}


def held_sorties(
    app: FleetApplication, projector: Projector, specialist_id: str, timeout: float
) -> list[Sortie]:
    """The sorties ``specialist_id`` holds, loaded fresh.

    Candidates come from the work projection, once it has caught up with the log (a
    projection that cannot within ``timeout`` gives what it has: the write of the
    specialist's end must not wait on a stopped projector). Each is then checked on its
    aggregate, which the save's optimistic concurrency protects.
    """
    try:
        projector.wait_for(app.recorder.max_notification_id() or 0, timeout)
    except Unavailable as exc:
        log.warning("releasing %s's sorties from a lagging projection: %s", specialist_id, exc)
    marks = ", ".join("?" * len(RELEASABLE))
    with projector.read() as tx:
        rows = tx.fetchall(
            f"SELECT stream_id FROM sorties_projection WHERE assigned_to = ? "  # noqa: S608 - placeholders only
            f"AND status IN ({marks}) ORDER BY created_at, id",
            [specialist_id, *RELEASABLE],
        )
    held = []
    for row in rows:
        sortie = app.get(UUID(row["stream_id"]))
        if isinstance(sortie, Sortie) and sortie.held_by(specialist_id):
            held.append(sortie)
    return held


def release_held(
    app: FleetApplication, projector: Projector, specialist_id: str, why: str, timeout: float
) -> list[Sortie]:
    """Release every sortie ``specialist_id`` holds; the caller saves them with its event."""
    sorties = held_sorties(app, projector, specialist_id, timeout)
    for sortie in sorties:
        sortie.release(RELEASE_REASON[why])
    return sorties
