"""What the agent CLI and the MCP server share: the door to Fleet, one agent's identity
under its own correlation id, and refusals told as problems."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from application.client import FleetClient
from application.errors import FleetError, PreconditionFailed

if TYPE_CHECKING:
    from application.fleet import Fleet


def open_door(
    url: str | None,
    token: str | None = None,
    store: str | None = None,
    *,
    correlation_id: str | None = None,
    actor: str | None = None,
) -> Fleet | FleetClient:
    """A ``FleetClient`` for a server at ``url``, or a ``Fleet`` on the SQLite file ``store``."""
    if (url is None) == (store is None):
        raise ValueError("give the URL of a Fleet server or the path of a local store, not both")
    if url is not None:
        return FleetClient(url, token, correlation_id=correlation_id, actor=actor)
    # Imported here: an agent that talks HTTP (most do, from a shell) starts without the
    # store, the library and the web of dependencies behind them (half its start-up).
    from application.fleet import Fleet

    return Fleet(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})


@dataclass
class AgentSession:
    """One agent talking to Fleet: every call it makes is its own and under its correlation id.

    Over HTTP the client sends the correlation id with each request; in process each call
    runs inside ``Fleet.context``, so both doors record the same metadata.
    """

    door: Fleet | FleetClient
    specialist_id: str
    correlation_id: str
    _stop: threading.Event = field(default_factory=threading.Event)
    _beats: threading.Thread | None = None

    @contextmanager
    def _scope(self) -> Iterator[None]:
        if isinstance(self.door, FleetClient):  # it sends the ids with each request
            yield
        else:
            with self.door.context(
                correlation_id=self.correlation_id, actor=self.specialist_id, source="agent"
            ):
                yield

    def call(self, method: str, **kwargs: Any) -> Any:
        """Run one ``Fleet`` method (same name on both doors) as this agent."""
        with self._scope():
            return getattr(self.door, method)(**kwargs)

    def register(self, name: str, capabilities: list[str] | None) -> dict[str, Any]:
        specialist: dict[str, Any] = self.call(
            "register_specialist",
            specialist_id=self.specialist_id,
            name=name,
            capabilities=capabilities,
        )
        return specialist

    def start_heartbeats(self, every: float, on_error: Callable[[Exception], None]) -> None:
        """Heartbeat every ``every`` seconds until ``close``; a failed beat is reported, not
        fatal (the next one may get through before the lease runs out)."""

        def beat() -> None:
            while not self._stop.wait(every):
                try:
                    self.call("heartbeat", specialist_id=self.specialist_id)
                except FleetError as exc:
                    on_error(exc)

        self._beats = threading.Thread(target=beat, name="fleet-heartbeat", daemon=True)
        self._beats.start()

    def acknowledge(
        self, message_id: str, response: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Ack a message as this agent, reading it first while it is still pending (the
        lifecycle acks only read messages; an agent that answers has read it)."""
        if self.call("get_message", message_id=message_id)["status"] == "pending":
            self.call("read_message", message_id=message_id, reader_id=self.specialist_id)
        acked: dict[str, Any] = self.call(
            "ack_message", message_id=message_id, acker_id=self.specialist_id, response=response
        )
        return acked

    def close(self) -> None:
        self._stop.set()
        if self._beats is not None:
            self._beats.join(timeout=30)
        self.door.close()


def problem_of(error: FleetError) -> dict[str, Any]:
    """A refusal as the API tells it: status, title, detail, field errors, the holder..."""
    problem: dict[str, Any] = {
        "status": error.status,
        "title": error.title,
        "detail": str(error),
    }
    errors = getattr(error, "errors", None)
    if errors:
        problem["errors"] = errors
    problem.update(getattr(error, "extra", None) or {})
    if isinstance(error, PreconditionFailed) and error.actual is not None:
        problem["current_version"] = error.actual
    return problem
