"""Idempotent writes: a retried command with the same ``Idempotency-Key`` never records twice.

A key is remembered in the same database transaction as the events of the write it names
(``fleet_idempotency``, written by the recorder beside the event index), so the write and
its key commit or fail together: a crash after the commit still finds the key, and of two
concurrent writes with one key the second one's transaction fails as a whole on the key's
primary key, leaving none of its events, and it then answers the first one's result.

What is remembered is the command's result as it was computed before the commit (the
resource right after the write), the global position of the write's last event, and
whether a registration created its specialist. A repeat gets exactly these back; the HTTP
layer builds its answer from them the same way it builds a first answer.

The HTTP layer names a request by method, path and parsed body (``keyed``); a Python call
by the command's name and arguments (``idempotent``). The scope is a hash of the caller's
token, so one caller cannot replay another's answers.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Protocol, TypeVar, cast

from application.errors import Conflict, FleetError, ValidationError

DEFAULT_TTL = 86400.0  # seconds: FLEET_IDEMPOTENCY_TTL
KEY = re.compile(r"[ -~]{1,255}")  # printable ASCII, space included; no control characters


class KeyReused(FleetError):
    """The key was used before for another request (method, path, body or arguments)."""

    status = 422
    title = "Idempotency key reused"
    problem_type = "urn:fleet:problem:idempotency-key-reused"


class KeyInFlight(Conflict):
    """The key's first request holds it but its answer cannot be read yet: retry soon."""

    title = "Idempotency key in flight"
    problem_type = "urn:fleet:problem:idempotency-key-in-flight"
    retry_after = 1


def check_key(key: object, field_name: str = "idempotency_key") -> str:
    """The key, if it is 1-255 printable ASCII characters; else a ``ValidationError``."""
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ValidationError(
            {field_name: ["must be 1-255 printable ASCII characters (no control characters)"]}
        )
    return key


def ttl_of(env: Mapping[str, str]) -> float:
    """``FLEET_IDEMPOTENCY_TTL``: seconds a key is remembered (positive)."""
    raw = env.get("FLEET_IDEMPOTENCY_TTL") or str(DEFAULT_TTL)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ValueError(f"FLEET_IDEMPOTENCY_TTL must be a positive number of seconds, not {raw!r}")
    return seconds


def digest(value: object) -> str:
    """A stable hash of a JSON value: key order and spacing do not matter."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def token_scope(token: str | None) -> str:
    """The scope of a caller's keys: a hash of its token, never the token itself."""
    return "" if token is None else "token:" + hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Claim:
    """One keyed command in flight: what names it, and what its write recorded."""

    key: str
    fingerprint: str
    scope: str = ""
    taken: bool = False  # a command has taken the key (nested commands run plainly)
    recorded: bool = False  # the key went in with the write's events
    wrote: bool = False  # the command recorded events (in one or several writes)
    result: Any = None


@dataclass(frozen=True)
class KeyRecord:
    """The row ``fleet_idempotency`` gets beside a write's events (``position`` is the last)."""

    scope: str
    key: str
    fingerprint: str
    answer: str  # JSON: {"result": ..., "created": ...}
    created_at: float
    stale_before: float  # an expired row of the same key is replaced, not a conflict
    # A refusal's write (a lock_conflict): the key is inserted and deleted again in its
    # transaction, so that it fails if a twin holds the key, and leaves nothing behind.
    probe: bool = False

    def key_params(self) -> list[object]:
        return [self.scope, self.key]

    def stale_params(self) -> list[object]:
        return [self.scope, self.key, self.stale_before]

    def insert_params(self, position: int) -> list[object]:
        return [self.scope, self.key, self.fingerprint, position, self.answer, self.created_at]


@dataclass(frozen=True)
class Remembered:
    """A remembered write, as a repeat gets it back."""

    fingerprint: str
    position: int
    result: Any
    created: bool | None
    created_at: float = field(default=0.0)


def remembered_from(row: Mapping[str, Any]) -> Remembered:
    answer = json.loads(row["answer"])
    return Remembered(
        fingerprint=row["fingerprint"],
        position=int(row["position"]),
        result=answer["result"],
        created=answer.get("created"),
        created_at=float(row["created_at"]),
    )


def key_record(
    claim: Claim, result: Any, created: bool | None, ttl: float, probe: bool = False
) -> KeyRecord:
    now = time.time()
    return KeyRecord(
        probe=probe,
        scope=claim.scope,
        key=claim.key,
        fingerprint=claim.fingerprint,
        answer=json.dumps({"result": result, "created": created}, default=str),
        created_at=now,
        stale_before=now - ttl,
    )


class KeyStore(Protocol):
    """What a recorder offers for keys (both backends' recorders implement it)."""

    def select_key(self, scope: str, key: str, since: float) -> Remembered | None: ...

    def insert_key(self, record: KeyRecord, position: int) -> None: ...

    def purge_keys(self, before: float) -> int: ...


# The key of the command running in this context (set by ``idempotent``), and the key an
# HTTP request brought (set by ``keyed``; the first command of the request takes it).
_active: ContextVar[Claim | None] = ContextVar("fleet_idempotency_active", default=None)
_requested: ContextVar[Claim | None] = ContextVar("fleet_idempotency_requested", default=None)


def active_claim() -> Claim | None:
    return _active.get()


@contextmanager
def keyed(key: str, fingerprint: str, scope: str = "") -> Iterator[Claim]:
    """Commands run here answer to ``key`` (the request's fingerprint names them)."""
    claim = Claim(check_key(key), fingerprint, scope)
    token = _requested.set(claim)
    try:
        yield claim
    finally:
        _requested.reset(token)


@contextmanager
def running(claim: Claim) -> Iterator[Claim]:
    token = _active.set(claim)
    try:
        yield claim
    finally:
        _active.reset(token)


F = TypeVar("F", bound=Callable[..., Any])


class KeyedRunner(Protocol):
    def _idempotently(self, claim: Claim, run: Callable[[], Any], look_first: bool) -> Any: ...


def idempotent_across_writes(method: F) -> F:
    """``idempotent`` for a command of several transactions (compaction, the sweep).

    Its key cannot go in with its events, so it is looked up before the command runs and
    remembered after it, in a transaction of its own.
    """
    return _idempotent(method, look_first=True)


def idempotent(method: F) -> F:
    """Make a ``Fleet`` command honour its ``idempotency_key`` parameter.

    The command declares ``idempotency_key: str | None = None`` (keyword-only) and never
    reads it: this wrapper does. With a key, a repeat with the same arguments returns the
    first call's result without running; other arguments are a ``KeyReused``. Without a
    key, the key of a keyed HTTP request (``keyed``) applies to its first command.

    A repeat is found when its write meets the key in the database (the command's checks
    may run again, but nothing of it is written), or before it runs, if it wrote nothing.
    """
    return _idempotent(method, look_first=False)


def _idempotent(method: F, look_first: bool) -> F:
    signature = inspect.signature(method)
    declared = signature.parameters.get("idempotency_key")
    if declared is None or declared.kind is not inspect.Parameter.KEYWORD_ONLY:
        raise TypeError(f"{method.__qualname__} must declare *, idempotency_key=None")
    name = method.__name__

    @wraps(method)
    def command(self: KeyedRunner, *args: Any, **kwargs: Any) -> Any:
        key = kwargs.pop("idempotency_key", None)
        claim = _requested.get()
        if key is not None:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = list(bound.arguments.items())[1:]  # not ``self``
            fingerprint = digest(
                ["python", name, {k: v for k, v in arguments if k != "idempotency_key"}]
            )
            claim = Claim(check_key(key), fingerprint)
        elif claim is None or claim.taken or _active.get() is not None:
            return method(self, *args, **kwargs)
        return self._idempotently(claim, lambda: method(self, *args, **kwargs), look_first)

    return cast(F, command)
