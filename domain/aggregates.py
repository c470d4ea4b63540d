"""Every aggregate type of the domain, in one place for the application to register."""

from __future__ import annotations

from domain.base import FleetAggregate
from domain.checkpoint import Checkpoint, FleetLog
from domain.cursor import Cursor
from domain.lock import FileLock
from domain.mailbox import Mailbox
from domain.mission import Mission
from domain.sortie import Sortie
from domain.specialist import Specialist

AGGREGATE_TYPES: tuple[type[FleetAggregate], ...] = (
    Specialist,
    Mission,
    Sortie,
    Checkpoint,
    FleetLog,
    Mailbox,
    Cursor,
    FileLock,
)
