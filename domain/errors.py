"""Domain errors: what a rule says, in words a client can act on."""

from __future__ import annotations

from collections.abc import Iterable


class DomainError(Exception):
    """A command broke a rule of the domain."""


class TransitionError(DomainError):
    """A lifecycle forbids the requested status change."""

    def __init__(self, kind: str, current: str, target: str, allowed: Iterable[str]):
        self.kind = kind
        self.current = current
        self.target = target
        self.allowed = sorted(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none (final status)"
        super().__init__(
            f"{kind} cannot go from '{current}' to '{target}'; "
            f"allowed next statuses: {allowed_text}"
        )


class RuleError(DomainError):
    """A rule other than a plain status transition was broken."""
