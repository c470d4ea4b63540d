"""The library's own aggregate style, with a payload like Fleet's registration: what the
in-process writes (``bench.writes``) and the HTTP ceiling (``bench.ceiling``) save with the
library alone, next to Fleet."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event


class BareSpecialist(Aggregate):
    @event("Registered")
    def __init__(self, specialist_id: str, name: str, capabilities: list[str]) -> None:
        self.specialist_id = specialist_id
        self.name = name
        self.capabilities = capabilities
