"""What a command returns: the resource it wrote, and what the write did."""

from __future__ import annotations

from typing import Any


class Written(dict[str, Any]):
    """A command's answer: the resource as the contract shapes it, plus what happened.

    To a Python caller it is the plain dict ``Fleet`` documents. The HTTP layer also
    reads ``position`` (the log position of the write's last event, or the head when the
    command had nothing to write: the answer's ``X-Fleet-Position``), ``created`` (the
    write began a new stream: a registration answers 201, not 200) and ``replayed`` (a
    repeat of an idempotency key got the first call's answer: ``Idempotent-Replayed``).
    """

    __slots__ = ("created", "position", "replayed")

    def __init__(
        self,
        resource: dict[str, Any],
        position: int,
        *,
        created: bool = False,
        replayed: bool = False,
    ) -> None:
        super().__init__(resource)
        self.position = position
        self.created = created
        self.replayed = replayed

    def __reduce__(self) -> Any:
        """Copies and pickles keep what happened, not only the resource."""
        return (
            _rebuild,
            (dict(self), self.position, self.created, self.replayed),
        )


def _rebuild(resource: dict[str, Any], position: int, created: bool, replayed: bool) -> Written:
    return Written(resource, position, created=created, replayed=replayed)
