"""The library's own aggregate style, with a payload like Fleet's registration: what the
in-process writes (``bench.writes``) and the HTTP ceiling (``bench.ceiling``) save with the
library alone, next to Fleet; and ``library_register``, a registration command done with the
library alone (a lookup, then the save)."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event


class BareSpecialist(Aggregate):
    @event("Registered")
    def __init__(self, specialist_id: str, name: str, capabilities: list[str]) -> None:
        self.specialist_id = specialist_id
        self.name = name
        self.capabilities = capabilities


class NamedBareSpecialist(BareSpecialist):
    """A ``BareSpecialist`` with one stream per name, as Fleet's specialists have, so that a
    registration can find an earlier one."""

    @staticmethod
    def create_id(specialist_id: str, **_: Any) -> UUID:
        return uuid5(NAMESPACE_URL, f"bare-specialist:{specialist_id}")

    @event("Reregistered")
    def reregister(self, name: str, capabilities: list[str]) -> None:
        self.name = name
        self.capabilities = capabilities


def library_register(
    app: Application[Any], specialist_id: str, name: str, capabilities: list[str]
) -> NamedBareSpecialist:
    """The least a registration command does with the library alone: look the stream up
    (Fleet's register must, to tell a new specialist from a known one), then record and save
    one event. No validation, index row or projection."""
    try:
        specialist: NamedBareSpecialist = app.repository.get(
            NamedBareSpecialist.create_id(specialist_id)
        )
    except AggregateNotFoundError:
        specialist = NamedBareSpecialist(specialist_id, name, capabilities)
    else:
        specialist.reregister(name, capabilities)
    app.save(specialist)
    return specialist
