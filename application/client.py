"""``FleetClient``: the ``Fleet`` interface over HTTP, so a caller switches doors by constructor.

Every method has the name, keyword arguments, result and exceptions of its ``Fleet``
counterpart: the server's problem+json answers are turned back into the
``application.errors`` the in-process services raise, with the same messages.

Writes carry an ``Idempotency-Key`` made once per logical call and reused by its retries;
connection failures, timeouts, 503 and the "idempotency key in flight" 409 are retried with a
bounded, jittered backoff. A server that honours the key runs each call exactly once; one that
does not yet ignores the unknown header.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from application.errors import (
    Conflict,
    FleetError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from application.waits import MAX_WAIT
from domain.mission import OPEN_MISSION_STATUSES

API = "/api/v1"
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 5
MAX_BACKOFF = 5.0  # seconds: the longest single pause, whatever Retry-After asks
IN_FLIGHT = "idempotency-key-in-flight"
CORE_MEMBERS = frozenset({"type", "title", "status", "detail", "errors"})
Page = tuple[list[dict[str, Any]], int]


def _given(**values: Any) -> dict[str, Any]:
    """Arguments the caller actually passed: ``None`` means "not given", as in ``Fleet``."""
    return {key: value for key, value in values.items() if value is not None}


def _query(**values: Any) -> dict[str, Any]:
    """Query parameters, datetimes as ISO-8601 (no query of the API takes a boolean)."""
    query: dict[str, Any] = {}
    for key, value in _given(**values).items():
        if isinstance(value, datetime):
            value = value.isoformat()
        query[key] = value
    return query


class FleetClient:
    """A Fleet server's API as ``Fleet`` methods.

    >>> fleet = FleetClient("http://127.0.0.1:8000", token="s3cret")   # doctest: +SKIP

    ``correlation_id`` (sent as ``X-Correlation-ID``) groups every event this client causes;
    ``actor`` (``X-Fleet-Actor``) names who acts. ``retries`` bounds the retries of one call.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        correlation_id: str | None = None,
        actor: str | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.1,
    ) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if correlation_id:
            headers["X-Correlation-ID"] = correlation_id
        if actor:
            headers["X-Fleet-Actor"] = actor
        self.base_url = base_url.rstrip("/")
        self.correlation_id = correlation_id
        self.retries = retries
        self.backoff = backoff
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> FleetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        answer_errors: bool = False,
        idempotency_key: str | None = None,
        wait: float | None = None,
    ) -> httpx.Response:
        """Send one logical call, retrying what is safe to retry; raise its problem.

        A call that asks the server to ``wait`` gets that long on top of the usual timeout,
        so a long poll is not mistaken for a dead server.
        """
        headers: dict[str, str] = {}
        if method != "GET":
            # one per call, kept across retries; the caller's own key when it gives one
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        if expected_version is not None:
            headers["If-Match"] = f'"{expected_version}"'
        url = path if path.startswith("/health") else API + path
        attempt = 0
        while True:
            try:
                response = self.http.request(
                    method,
                    url,
                    json=dict(body) if body is not None else None,
                    params=dict(query or {}),
                    headers=headers,
                    timeout=self._timeout(wait),
                )
            except httpx.TransportError as exc:  # refused, reset, timed out: try again
                if attempt >= self.retries:
                    raise Unavailable(f"{self.base_url} did not answer: {exc}") from exc
                self._pause(attempt, None)
                attempt += 1
                continue
            if self._retryable(response) and attempt < self.retries:
                self._pause(attempt, response.headers.get("Retry-After"))
                attempt += 1
                continue
            if response.is_success or answer_errors:
                return response
            raise self._error(response, expected_version)

    def _timeout(self, wait: float | None) -> httpx.Timeout:
        base = self.http.timeout
        if not isinstance(wait, int | float) or isinstance(wait, bool) or wait <= 0:
            return base  # a bad wait is the server's to refuse, with its own message
        read = None if base.read is None else base.read + wait
        return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)

    @staticmethod
    def _retryable(response: httpx.Response) -> bool:
        if response.status_code == 503:
            return True
        if response.status_code == 409:
            return str(_problem(response).get("type", "")).endswith(IN_FLIGHT)
        return False

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * 2**attempt
        if retry_after is not None:
            with suppress(ValueError):  # an HTTP date: keep our own backoff
                delay = max(delay, float(retry_after))
        delay = min(delay, MAX_BACKOFF)
        time.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not a secret

    @staticmethod
    def _error(response: httpx.Response, expected_version: int | None) -> FleetError:
        """The ``application.errors`` exception a problem+json answer stands for."""
        problem = _problem(response)
        status = response.status_code
        detail = str(problem.get("detail") or response.reason_phrase or f"HTTP {status}")
        if status in (400, 413, 422):
            errors = problem.get("errors")
            if not isinstance(errors, dict) or not errors:
                errors = {"_request": [detail]}
            return ValidationError(errors, detail)
        if status == 401:
            return Unauthorized(detail)
        if status == 403:
            return Forbidden(detail)
        if status in (404, 405):
            return NotFound(detail)
        if status == 409:
            extra = {k: v for k, v in problem.items() if k not in CORE_MEMBERS}
            return Conflict(detail, **extra)
        if status == 412:
            current = problem.get("current_version")
            return PreconditionFailed(
                expected_version if expected_version is not None else -1,
                current if isinstance(current, int) else 0,
            )
        if status == 503:
            return Unavailable(detail)
        error = FleetError(f"HTTP {status}: {detail}")
        error.status = status
        return error

    def _get(self, path: str, **query: Any) -> Any:
        wait = query.get("wait")
        return self._request("GET", path, query=_query(**query), wait=wait).json()

    def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        return self._request(
            method,
            path,
            body=body,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
        ).json()

    @staticmethod
    def _page(answer: Mapping[str, Any], key: str) -> Page:
        return list(answer[key]), int(answer["total"])

    # Specialists

    def register_specialist(
        self,
        specialist_id: str,
        name: str,
        capabilities: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        spawned_by: str | None = None,
        mission_id: str | None = None,
        sortie_id: str | None = None,
        config: dict[str, Any] | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _given(
            specialist_id=specialist_id,
            name=name,
            capabilities=capabilities,
            metadata=metadata,
            spawned_by=spawned_by,
            mission_id=mission_id,
            sortie_id=sortie_id,
            config=config,
        )
        answer = self._send(
            "POST", "/specialists/register", body, expected_version, idempotency_key=idempotency_key
        )
        return dict(answer["specialist"])

    def heartbeat(
        self,
        specialist_id: str,
        status: str | None = None,
        current_sortie: str | None = None,
        metrics: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _given(
            status=status, current_sortie=current_sortie, metrics=metrics, metadata=metadata
        )
        path = f"/specialists/{_seg(specialist_id)}/heartbeat"
        return dict(
            self._send("PATCH", path, body, expected_version, idempotency_key=idempotency_key)[
                "specialist"
            ]
        )

    def complete_specialist(
        self,
        specialist_id: str,
        reason: str,
        summary: str | None = None,
        final_checkpoint_id: str | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _given(reason=reason, summary=summary, final_checkpoint_id=final_checkpoint_id)
        path = f"/specialists/{_seg(specialist_id)}/complete"
        return dict(
            self._send("POST", path, body, expected_version, idempotency_key=idempotency_key)[
                "specialist"
            ]
        )

    def fail_specialist(
        self,
        specialist_id: str,
        error: str,
        details: dict[str, Any] | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _given(error=error, details=details)
        path = f"/specialists/{_seg(specialist_id)}/fail"
        return dict(
            self._send("POST", path, body, expected_version, idempotency_key=idempotency_key)[
                "specialist"
            ]
        )

    def deregister_specialist(
        self,
        specialist_id: str,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        path = f"/specialists/{_seg(specialist_id)}"
        return dict(
            self._send("DELETE", path, None, expected_version, idempotency_key=idempotency_key)[
                "specialist"
            ]
        )

    def get_specialist(
        self, specialist_id: str, version: int | None = None, as_of: datetime | None = None
    ) -> dict[str, Any]:
        answer = self._get(f"/specialists/{_seg(specialist_id)}", version=version, as_of=as_of)
        return dict(answer["specialist"])

    def list_specialists(
        self,
        status: str | None = None,
        capability: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
    ) -> Page:
        answer = self._get(
            "/specialists",
            status=status,
            capability=capability,
            limit=limit,
            offset=offset,
            min_position=min_position,
        )
        return self._page(answer, "specialists")

    # Missions

    def create_mission(
        self,
        title: str,
        description: str | None = None,
        goals: list[str] | None = None,
        priority: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _given(
            title=title, description=description, goals=goals, priority=priority, metadata=metadata
        )
        return dict(
            self._send("POST", "/missions", body, idempotency_key=idempotency_key)["mission"]
        )

    def get_mission(
        self, mission_id: str, version: int | None = None, as_of: datetime | None = None
    ) -> dict[str, Any]:
        return dict(self._mission(mission_id, version, as_of)["mission"])

    def mission_sorties(
        self, mission_id: str, version: int | None = None, as_of: datetime | None = None
    ) -> list[dict[str, Any]]:
        return list(self._mission(mission_id, version, as_of)["sorties"])

    def _mission(
        self, mission_id: str, version: int | None, as_of: datetime | None
    ) -> dict[str, Any]:
        answer: dict[str, Any] = self._get(
            f"/missions/{_seg(mission_id)}", version=version, as_of=as_of
        )
        return answer

    def update_mission(
        self,
        mission_id: str,
        status: str | None = None,
        result: dict[str, Any] | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
        **changes: Any,
    ) -> dict[str, Any]:
        body = _given(status=status, result=result, reason=reason, **changes)
        path = f"/missions/{_seg(mission_id)}"
        return dict(
            self._send("PATCH", path, body, expected_version, idempotency_key=idempotency_key)[
                "mission"
            ]
        )

    def list_missions(
        self,
        status: str | None = None,
        priority: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
    ) -> Page:
        answer = self._get(
            "/missions",
            status=status,
            priority=priority,
            limit=limit,
            offset=offset,
            min_position=min_position,
        )
        return self._page(answer, "missions")

    def list_missions_open(self) -> tuple[list[str], int]:
        """Ids of every mission not yet final (pending or in progress)."""
        ids: list[str] = []
        for status in OPEN_MISSION_STATUSES:
            offset = 0
            while True:
                page, total = self.list_missions(status=status, limit=1000, offset=offset)
                ids += [m["id"] for m in page]
                offset += len(page)
                if offset >= total or not page:
                    break
        return ids, len(ids)

    # Sorties

    def create_sortie(
        self,
        description: str,
        mission_id: str | None = None,
        title: str | None = None,
        priority: str | None = None,
        dependencies: list[str] | None = None,
        assigned_to: str | None = None,
        metadata: dict[str, Any] | None = None,
        estimate_minutes: int | None = None,
        required_capabilities: list[str] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _given(
            description=description,
            mission_id=mission_id,
            title=title,
            priority=priority,
            dependencies=dependencies,
            assigned_to=assigned_to,
            metadata=metadata,
            estimate_minutes=estimate_minutes,
            required_capabilities=required_capabilities,
        )
        return dict(self._send("POST", "/sorties", body, idempotency_key=idempotency_key)["sortie"])

    def get_sortie(
        self, sortie_id: str, version: int | None = None, as_of: datetime | None = None
    ) -> dict[str, Any]:
        answer = self._get(f"/sorties/{_seg(sortie_id)}", version=version, as_of=as_of)
        return dict(answer["sortie"])

    def update_sortie(
        self,
        sortie_id: str,
        status: str | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        body = _given(status=status, **fields)
        path = f"/sorties/{_seg(sortie_id)}"
        return dict(
            self._send("PATCH", path, body, expected_version, idempotency_key=idempotency_key)[
                "sortie"
            ]
        )

    def list_sorties(
        self,
        mission_id: str | None = None,
        status: str | None = None,
        assigned_to: str | None = None,
        priority: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
    ) -> Page:
        answer = self._get(
            "/sorties",
            mission_id=mission_id,
            status=status,
            assigned_to=assigned_to,
            priority=priority,
            limit=limit,
            offset=offset,
            min_position=min_position,
        )
        return self._page(answer, "sorties")

    def claim_sortie(
        self,
        specialist_id: str,
        mission_id: str | None = None,
        capabilities: Sequence[str] | None = None,
        wait: float | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any] | None:
        """The sortie assigned to ``specialist_id``, or None (204) when none is claimable."""
        body = _given(
            specialist_id=specialist_id,
            mission_id=mission_id,
            capabilities=None if capabilities is None else list(capabilities),
        )
        response = self._request(
            "POST",
            "/sorties/claim",
            body=body,
            query=_query(wait=wait),
            idempotency_key=idempotency_key,
            wait=wait,
        )
        if response.status_code == 204:
            return None
        return dict(response.json()["sortie"])

    # Checkpoints and compaction

    def create_checkpoint(
        self, stream_id: str, description: str | None = None, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        body = _given(stream_id=stream_id, description=description)
        return dict(
            self._send("POST", "/checkpoints", body, idempotency_key=idempotency_key)["checkpoint"]
        )

    def get_checkpoint(self, checkpoint_id: str) -> dict[str, Any]:
        return dict(self._get(f"/checkpoints/{_seg(checkpoint_id)}")["checkpoint"])

    def restore_checkpoint(
        self,
        checkpoint_id: str,
        confirm: bool = False,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        path = f"/checkpoints/{_seg(checkpoint_id)}/restore"
        answer = self._send(
            "POST", path, {"confirm": confirm}, expected_version, idempotency_key=idempotency_key
        )
        return dict(answer["checkpoint"])

    def list_checkpoints(
        self,
        stream_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
    ) -> Page:
        answer = self._get(
            "/checkpoints",
            stream_id=stream_id,
            limit=limit,
            offset=offset,
            min_position=min_position,
        )
        return self._page(answer, "checkpoints")

    def compact(
        self, stream_id: str | None = None, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        return dict(
            self._send(
                "POST", "/compaction", _given(stream_id=stream_id), idempotency_key=idempotency_key
            )
        )

    # Messages

    def send_message(
        self,
        mailbox_id: str,
        message_type: str,
        content: dict[str, Any],
        sender_id: str | None = None,
        thread_id: str | None = None,
        priority: str | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _given(
            message_type=message_type,
            content=content,
            sender_id=sender_id,
            thread_id=thread_id,
            priority=priority,
        )
        path = f"/mailboxes/{_seg(mailbox_id)}/messages"
        return dict(
            self._send("POST", path, body, expected_version, idempotency_key=idempotency_key)[
                "message"
            ]
        )

    def list_messages(
        self,
        mailbox_id: str,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
        wait: float | None = None,
    ) -> Page:
        answer = self._get(
            f"/mailboxes/{_seg(mailbox_id)}/messages",
            status=status,
            limit=limit,
            offset=offset,
            min_position=min_position,
            wait=wait,
        )
        return self._page(answer, "messages")

    def wait_for_messages(
        self,
        mailbox_id: str,
        status: str | None = None,
        wait: float = MAX_WAIT,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The mailbox's messages (with ``status``), waiting up to ``wait`` s for one."""
        messages, _ = self.list_messages(mailbox_id, status, limit, offset, wait=wait)
        return messages

    def get_message(self, message_id: str) -> dict[str, Any]:
        return dict(self._get(f"/messages/{_seg(message_id)}")["message"])

    def read_message(
        self,
        message_id: str,
        reader_id: str,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        return self._on_message(
            message_id,
            "read",
            {"reader_id": reader_id},
            expected_version,
            idempotency_key=idempotency_key,
        )

    def ack_message(
        self,
        message_id: str,
        acker_id: str,
        response: dict[str, Any] | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _given(acker_id=acker_id, response=response)
        return self._on_message(
            message_id, "ack", body, expected_version, idempotency_key=idempotency_key
        )

    def archive_message(
        self,
        message_id: str,
        archived_by: str,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = {"archived_by": archived_by}
        return self._on_message(
            message_id, "archive", body, expected_version, idempotency_key=idempotency_key
        )

    def requeue_message(
        self,
        message_id: str,
        reason: str | None = None,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        return self._on_message(
            message_id,
            "requeue",
            _given(reason=reason),
            expected_version,
            idempotency_key=idempotency_key,
        )

    def _on_message(
        self,
        message_id: str,
        move: str,
        body: dict[str, Any],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        path = f"/messages/{_seg(message_id)}/{move}"
        return dict(
            self._send("POST", path, body, expected_version, idempotency_key=idempotency_key)[
                "message"
            ]
        )

    # Cursors

    def advance_cursor(
        self,
        consumer_id: str,
        stream_id: str,
        position: int,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = {"consumer_id": consumer_id, "stream_id": stream_id, "position": position}
        return dict(
            self._send(
                "POST", "/cursors/advance", body, expected_version, idempotency_key=idempotency_key
            )["cursor"]
        )

    def reset_cursor(
        self,
        consumer_id: str,
        stream_id: str,
        position: int = 0,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = {"consumer_id": consumer_id, "stream_id": stream_id, "position": position}
        return dict(
            self._send(
                "POST", "/cursors/reset", body, expected_version, idempotency_key=idempotency_key
            )["cursor"]
        )

    def get_cursor(self, cursor_id: str) -> dict[str, Any]:
        return dict(self._get(f"/cursors/{_seg(cursor_id)}")["cursor"])

    # Locks

    def acquire_lock(
        self,
        file: str,
        specialist_id: str,
        timeout_ms: int | None = None,
        purpose: str | None = None,
        checksum: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = _given(
            file=file,
            specialist_id=specialist_id,
            timeout_ms=timeout_ms,
            purpose=purpose,
            checksum=checksum,
        )
        return dict(
            self._send("POST", "/locks/acquire", body, idempotency_key=idempotency_key)["lock"]
        )

    def release_lock(
        self,
        lock_id: str,
        specialist_id: str,
        force: bool = False,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body = {"specialist_id": specialist_id, "force": force}
        path = f"/locks/{_seg(lock_id)}/release"
        return dict(
            self._send("POST", path, body, expected_version, idempotency_key=idempotency_key)[
                "lock"
            ]
        )

    def get_lock(self, lock_id: str) -> dict[str, Any]:
        return dict(self._get(f"/locks/{_seg(lock_id)}")["lock"])

    def list_locks(
        self,
        status: str | None = "active",
        specialist_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
    ) -> Page:
        answer = self._get(
            "/locks",
            status="all" if status is None else status,
            specialist_id=specialist_id,
            limit=limit,
            offset=offset,
            min_position=min_position,
        )
        return self._page(answer, "locks")

    # Events and health

    def events(
        self,
        type: str | Sequence[str] | None = None,  # noqa: A002 - the contract's name
        stream_id: str | None = None,
        correlation_id: str | None = None,
        after: int | None = None,
        limit: int = 100,
        offset: int = 0,
        min_position: int | None = None,
        wait: float | None = None,
    ) -> Page:
        answer = self._get(
            "/events",
            type=_types(type),
            stream_id=stream_id,
            correlation_id=correlation_id,
            after=after,
            limit=limit,
            offset=offset,
            min_position=min_position,
            wait=wait,
        )
        return self._page(answer, "events")

    def follow(
        self,
        after: int = 0,
        type: str | Sequence[str] | None = None,  # noqa: A002 - the contract's name
        stream_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Iterator[dict[str, Any] | None]:
        """The events past ``after`` matching the filters, then each new one as it comes.

        Read from ``GET /events/stream``: event dicts in position order, with None for each
        keep-alive the server sends while idle. A dropped connection is reopened with
        ``Last-Event-ID`` (the last position received), so nothing is missed or repeated;
        ``Unavailable`` once ``retries`` reconnections in a row fail. Bad filters raise
        here, before anything is read. Close the iterator to stop following.
        """
        query = _query(
            after=after, type=_types(type), stream_id=stream_id, correlation_id=correlation_id
        )
        return _Feed(self, query, self._open_stream(query, after))

    def subscribe(
        self,
        after: int = 0,
        type: str | Sequence[str] | None = None,  # noqa: A002 - the contract's name
        stream_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every event past ``after`` matching the filters, following the live feed (and
        resuming it after a dropped connection) until the caller stops iterating."""
        feed = self.follow(after, type, stream_id, correlation_id)
        try:
            for event in feed:
                if event is not None:
                    yield event
        finally:
            close = getattr(feed, "close", None)
            if close is not None:
                close()

    def _open_stream(self, query: Mapping[str, Any], last: int) -> httpx.Response:
        """The live feed's response from just past ``last``, retried like any call."""
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last)}
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                request = self.http.build_request(
                    "GET", API + "/events/stream", params=dict(query), headers=headers
                )
                response = self.http.send(request, stream=True)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise Unavailable(f"{self.base_url} did not answer: {exc}") from exc
            else:
                if response.is_success:
                    return response
                response.read()
                response.close()
                if not self._retryable(response) or attempt >= self.retries:
                    raise self._error(response, None)
            self._pause(attempt, response.headers.get("Retry-After") if response else None)
            attempt += 1

    def get_event(self, position: int) -> dict[str, Any]:
        return dict(self._get(f"/events/{int(position)}")["event"])

    def stream_events(
        self,
        stream_id: str,
        from_sequence: int | None = None,
        to_sequence: int | None = None,
    ) -> list[dict[str, Any]]:
        answer = self._get(
            f"/streams/{_seg(stream_id)}/events",
            from_sequence=from_sequence,
            to_sequence=to_sequence,
        )
        return list(answer["events"])

    def health(self) -> dict[str, Any]:
        """The server's ``/health`` report; an unhealthy server's 503 report is answered too."""
        response = self._request("GET", "/health", answer_errors=True)
        if response.status_code not in (200, 503):
            raise self._error(response, None)
        report: dict[str, Any] = response.json()
        return report

    def head_position(self) -> int:
        report = self.health()
        if "position" not in report:
            raise Unavailable(f"{self.base_url} cannot read its store: {report}")
        return int(report["position"])


class _Feed:
    """The iterator of ``FleetClient.follow``: parses Server-Sent Events, reconnects."""

    def __init__(self, client: FleetClient, query: Mapping[str, Any], response: httpx.Response):
        self.client = client
        self.query = query
        self.last = int(query.get("after", 0))
        self.response: httpx.Response | None = response
        self.lines: Iterator[str] = response.iter_lines()
        self.closed = False

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> dict[str, Any] | None:
        data: list[str] = []
        while not self.closed:
            try:
                line = next(self.lines)
            except (StopIteration, httpx.TransportError):
                self._reconnect()  # dropped or ended: resume after the last event received
                data = []
                continue
            if line.startswith(":"):
                if "keep-alive" in line:
                    return None
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif not line and data:
                event: dict[str, Any] = json.loads("\n".join(data))
                self.last = int(event["id"])
                return event
        raise StopIteration

    def _reconnect(self) -> None:
        if self.response is not None:
            self.response.close()
            self.response = None
        self.response = self.client._open_stream(self.query, self.last)
        self.lines = self.response.iter_lines()

    def close(self) -> None:
        self.closed = True
        if self.response is not None:
            self.response.close()
            self.response = None


def _types(type: str | Sequence[str] | None) -> str | None:  # noqa: A002 - the contract's name
    return type if type is None or isinstance(type, str) else ",".join(type)


def _seg(value: str) -> str:
    """One path segment: ids are percent-encoded, so ``a/b`` cannot reach another route."""
    return quote(str(value), safe="")


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
