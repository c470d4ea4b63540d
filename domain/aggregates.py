"""Every aggregate type of the domain, in one place for the application to register."""

from __future__ import annotations

from domain.base import FleetAggregate
from domain.specialist import Specialist

AGGREGATE_TYPES: tuple[type[FleetAggregate], ...] = (Specialist,)
