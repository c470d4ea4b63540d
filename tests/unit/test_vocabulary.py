"""Each vocabulary is defined once, in domain/, and every door spells it the same.

The event schemas, the HTTP schemas (so the OpenAPI document), the agent CLI, the MCP tools
and the console all take their enums from the domain's tuples; these tests hold them to it,
and fail on an enum that names no domain vocabulary (a copy spelled out again).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from marshmallow import Schema, fields, validate

from application import mcp_server
from application.agent_cli import agent
from application.event_schemas import EVENT_SCHEMAS
from application.services.locks import LOCK_STATUS_FILTERS
from domain.base import PRIORITIES
from domain.checkpoint import CHECKPOINT_TRIGGERS
from domain.lock import LOCK_PURPOSES, LOCK_RELEASE_REASONS, LOCK_STATUSES
from domain.mailbox import MESSAGE_PRIORITIES, MESSAGE_STATUSES
from domain.mission import MISSION_STATUSES
from domain.sortie import (
    BLOCKER_TYPES,
    PATCH_STATUSES,
    RELEASABLE,
    REVIEW_TYPES,
    REWORK_VERDICTS,
    SORTIE_RELEASE_REASONS,
    SORTIE_STATUSES,
    VERDICTS,
)
from domain.specialist import (
    COMPLETION_REASONS,
    HEARTBEAT_STATUSES,
    INACTIVE_REASONS,
    SPECIALIST_STATUSES,
)
from tests.api.support import API, make_app
from web import get_fleet
from web.ui.draw import STATUS_COLOURS

# Every enum of the OpenAPI document: a component's member, or an operation's query parameter.
OPENAPI_ENUMS: dict[str, tuple[Any, ...]] = {
    "Specialist.status": SPECIALIST_STATUSES,
    "Heartbeat.status": HEARTBEAT_STATUSES,
    "Complete.reason": COMPLETION_REASONS,
    "Mission.priority": PRIORITIES,
    "Mission.status": MISSION_STATUSES,
    "MissionCreate.priority": PRIORITIES,
    "MissionPatch.status": MISSION_STATUSES,
    "MissionPatch.priority": PRIORITIES,
    "Blocker.blocker_type": BLOCKER_TYPES,
    "Review.review_type": REVIEW_TYPES,
    "Review.verdict": (*VERDICTS, None),  # null while the review is open
    "Sortie.priority": PRIORITIES,
    "Sortie.status": SORTIE_STATUSES,
    "SortieCreate.priority": PRIORITIES,
    "SortiePatch.status": PATCH_STATUSES,
    "SortiePatch.verdict": REWORK_VERDICTS,
    "SortiePatch.blocker_type": BLOCKER_TYPES,
    "SortiePatch.review_type": REVIEW_TYPES,
    "SortiePatch.priority": PRIORITIES,
    "Message.priority": MESSAGE_PRIORITIES,
    "Message.status": MESSAGE_STATUSES,
    "Send.priority": MESSAGE_PRIORITIES,
    "Lock.purpose": LOCK_PURPOSES,
    "Lock.status": LOCK_STATUSES,
    "Acquire.purpose": LOCK_PURPOSES,
    "GET /specialists ?status": SPECIALIST_STATUSES,
    "GET /missions ?status": MISSION_STATUSES,
    "GET /missions ?priority": PRIORITIES,
    "GET /sorties ?status": SORTIE_STATUSES,
    "GET /sorties ?priority": PRIORITIES,
    "GET /mailboxes/{mailbox_id}/messages ?status": MESSAGE_STATUSES,
    "GET /locks ?status": LOCK_STATUS_FILTERS,
}

# Every OneOf of the event data schemas, nested ``changes`` included.
EVENT_CHOICES: dict[str, tuple[str, ...]] = {
    "specialist_active.status": HEARTBEAT_STATUSES,
    "specialist_inactive.reason": INACTIVE_REASONS,
    "specialist_completed.reason": COMPLETION_REASONS,
    "mission_created.priority": PRIORITIES,
    "mission_updated.changes.priority": PRIORITIES,
    "sortie_created.priority": PRIORITIES,
    "sortie_updated.changes.priority": PRIORITIES,
    "sortie_released.reason": SORTIE_RELEASE_REASONS,
    "sortie_released.previous_status": RELEASABLE,
    "sortie_blocked.blocker_type": BLOCKER_TYPES,
    "review_started.review_type": REVIEW_TYPES,
    "review_completed.verdict": VERDICTS,
    "fleet_checkpointed.trigger": CHECKPOINT_TRIGGERS,
    "squawk_sent.priority": MESSAGE_PRIORITIES,
    "lock_acquired.purpose": LOCK_PURPOSES,
    "lock_released.reason": LOCK_RELEASE_REASONS,
}

# The MCP tools' Literal types (their enums), each with the tuple it spells out.
MCP_LITERALS: dict[str, tuple[str, ...]] = {
    "Priority": PRIORITIES,
    "MessagePriority": MESSAGE_PRIORITIES,
    "MessageStatus": MESSAGE_STATUSES,
    "SortieStatus": PATCH_STATUSES,
    "Verdict": REWORK_VERDICTS,
    "LockStatusFilter": LOCK_STATUS_FILTERS,
}

# The agent CLI's choices: "command --option".
CLI_CHOICES: dict[str, tuple[str, ...]] = {
    "heartbeat --status": HEARTBEAT_STATUSES,
    "update-sortie --verdict": REWORK_VERDICTS,
    "send --priority": MESSAGE_PRIORITIES,
    "inbox --status": MESSAGE_STATUSES,
}


def openapi_enums(document: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Each enum of the document's components and query parameters, by where it is."""
    found: dict[str, tuple[Any, ...]] = {}
    for name, schema in document["components"]["schemas"].items():
        for member, spec in schema.get("properties", {}).items():
            if isinstance(spec.get("enum"), list) and spec["enum"] not in ([True],):
                found[f"{name}.{member}"] = tuple(spec["enum"])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and "enum" in parameter.get("schema", {}):
                    key = f"{method.upper()} {path.removeprefix(API)} ?{parameter['name']}"
                    found[key] = tuple(parameter["schema"]["enum"])
    return found


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    store = Path(tmp_path_factory.mktemp("vocabulary")) / "fleet.db"
    app = make_app({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    try:
        response = app.test_client().get(f"{API}/openapi.json")
        assert response.status_code == 200
        yield response.get_json()
    finally:
        get_fleet(app).close()


def test_the_openapi_enums_are_the_domain_tuples_in_their_order(
    document: dict[str, Any],
) -> None:
    assert openapi_enums(document) == OPENAPI_ENUMS


def one_of_choices(schema: Schema, prefix: str) -> Iterator[tuple[str, tuple[str, ...]]]:
    for name, field in schema.fields.items():
        for validator in field.validators:
            if isinstance(validator, validate.OneOf):
                yield f"{prefix}.{name}", tuple(validator.choices)
        if isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
            yield from one_of_choices(field.schema, f"{prefix}.{name}")


def test_the_event_schemas_choices_are_the_domain_tuples() -> None:
    found = {
        key: choices
        for event_type, schema in EVENT_SCHEMAS.items()
        for key, choices in one_of_choices(schema(), event_type)
    }
    assert found == EVENT_CHOICES


def test_the_mcp_tools_literals_spell_out_the_domain_tuples() -> None:
    found = {
        name: typing.get_args(value)
        for name, value in vars(mcp_server).items()
        if typing.get_origin(value) is typing.Literal
    }
    assert found == MCP_LITERALS


def test_the_agent_cli_choices_are_the_domain_tuples() -> None:
    found = {
        f"{name} --{param.name}": tuple(param.type.choices)
        for name, command in agent.commands.items()
        for param in command.params
        if isinstance(param.type, click.Choice)
    }
    assert found == CLI_CHOICES


def test_the_console_colours_every_sortie_status_in_the_lifecycles_order() -> None:
    assert tuple(STATUS_COLOURS) == SORTIE_STATUSES


def test_the_status_tuples_keep_the_order_clients_see() -> None:
    """The tuples come from the lifecycles' tables, whose order is the API's enum order."""
    assert SORTIE_STATUSES == (
        "pending", "assigned", "in_progress", "blocked", "review", "completed", "failed",
        "cancelled",
    )  # fmt: skip
    assert PATCH_STATUSES == (
        "assigned", "in_progress", "blocked", "review", "completed", "failed", "cancelled"
    )  # fmt: skip
    assert MISSION_STATUSES == ("pending", "in_progress", "completed", "failed", "cancelled")
    assert SPECIALIST_STATUSES == ("active", "busy", "idle", "inactive", "completed", "failed")
    assert MESSAGE_STATUSES == ("pending", "read", "acked", "archived")
    assert LOCK_STATUSES == ("active", "released", "expired", "force_released")
