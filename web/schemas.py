"""Schemas every resource shares: bodies, paging, time travel, problems, envelopes."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar, TypeVar

import marshmallow as ma
from flask import current_app
from marshmallow import fields, validate

from application.seams import declared_fields, set_declared_fields
from domain.base import PRIORITIES

MAX_INT = 2**63 - 1  # the largest integer either database stores
NON_NEGATIVE = validate.Range(min=0, max=MAX_INT)
POSITIVE = validate.Range(min=1, max=MAX_INT)


class BodySchema(ma.Schema):
    """A JSON request body: unknown fields are a 422 that names them."""

    class Meta:
        unknown = ma.RAISE


class StatusPatchSchema(BodySchema):
    """A PATCH body whose ``status`` decides which other fields it needs or may carry.

    ``STATUS_RULE`` (the domain's ``patch_field_errors``) runs even when fields have
    errors of their own, so one 422 names every invalid field at once.
    """

    STATUS_RULE: Callable[[str | None, Collection[str]], dict[str, str]]
    OPENAPI: ClassVar = {"minProperties": 1}  # an empty PATCH changes nothing: a 422

    @ma.validates_schema(pass_original=True, skip_on_field_errors=False)
    def fields_go_with_status(self, data: Any, original_data: Any, **kwargs: Any) -> None:
        if not isinstance(original_data, Mapping):
            return
        status = original_data.get("status")
        choices = getattr(self.fields["status"].validate, "choices", ())
        if status is not None and status not in choices:
            return  # the status is named; which fields go with it is moot
        named = [k for k, v in original_data.items() if v is not None and k in self.fields]
        found = type(self).STATUS_RULE(status, [k for k in named if k != "status"])
        if found:
            raise ma.ValidationError({name: [message] for name, message in found.items()})


class QuerySchema(ma.Schema):
    """Query parameters: unknown ones are ignored."""

    class Meta:
        unknown = ma.EXCLUDE


class StrictBoolean(fields.Boolean):
    """Only JSON ``true``/``false``; marshmallow's Boolean would also take 1, "yes", ..."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def timestamp(**kwargs: Any) -> fields.String:
    """An ISO-8601 UTC time, as the resources carry it."""
    return fields.String(metadata={"format": "date-time"}, **kwargs)


def nullable_timestamp() -> fields.String:
    return timestamp(allow_none=True)


def nullable_text() -> fields.String:
    return fields.String(allow_none=True)


def json_object(**kwargs: Any) -> fields.Dict:
    return fields.Dict(keys=fields.String(), **kwargs)


def priority(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(PRIORITIES), **kwargs)


class ResourceSchema(ma.Schema):
    """The members every resource object has; subclasses add theirs (see ``resource``)."""

    id = fields.String(required=True)
    stream_id = fields.String(required=True)
    version = fields.Integer(required=True)
    created_at = timestamp(required=True)
    updated_at = timestamp(required=True)


COMMON = ("stream_id", "version", "created_at", "updated_at")
S = TypeVar("S", bound=type[ma.Schema])


def resource(cls: S) -> S:
    """Order a resource's members as the services do: ``id``, its own, then the common ones."""
    declared = declared_fields(cls)
    own = {k: v for k, v in declared.items() if k not in ("id", *COMMON)}
    set_declared_fields(cls, {"id": declared["id"], **own, **{k: declared[k] for k in COMMON}})
    return cls


def wait_seconds(description: str) -> fields.Float:
    """``?wait=``: seconds (0-30, decimals allowed) a read may wait for something to answer."""
    return fields.Float(
        validate=validate.Range(min=0, max=30),
        metadata={"description": description + " An expired wait answers as without one."},
    )


class WaitQuerySchema(QuerySchema):
    wait = wait_seconds("Wait up to this many seconds (0-30) for a claimable sortie.")


class PagingSchema(QuerySchema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=NON_NEGATIVE)


class PageQuerySchema(PagingSchema):
    """Paging of a list read from the projections, which may lag behind the log."""

    min_position = fields.Integer(
        validate=NON_NEGATIVE,
        metadata={
            "description": "Wait (up to FLEET_MIN_POSITION_TIMEOUT, default 5 s) until the "
            "answer reflects every event up to this global position (X-Fleet-Position of a "
            "write); 503 with Retry-After if it does not in time. A position beyond the log's "
            "head names no event yet: 422 at once, naming min_position."
        },
    )


class TimeTravelQuerySchema(QuerySchema):
    version = fields.Integer(
        validate=POSITIVE,
        metadata={"description": "Answer the resource as it was at this version."},
    )
    as_of = fields.AwareDateTime(
        metadata={"description": "Answer the resource as it was at this time (with a timezone)."}
    )

    @ma.validates_schema
    def one_of_them(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "version" in data and "as_of" in data:
            raise ma.ValidationError("give version or as_of, not both", "as_of")


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details; ``errors`` maps each invalid field to its messages."""

    class Meta:
        unknown = ma.INCLUDE

    type = fields.String(required=True, metadata={"example": "urn:fleet:problem:not-found"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class AnswerSchema(ma.Schema):
    """A response schema: it documents an answer the services already shape.

    The services return the contract's shapes (plain JSON values, documented key order),
    so dumping them again through marshmallow only copied them: half the time of a 50-item
    list page. ``dump`` passes the answer through unchanged. Under ``TESTING`` the real
    dump still runs and must give the same JSON, key order included, so a service that
    drifts from the documented schema fails the API tests instead of being reshaped
    silently. ``Blueprint.response`` takes only these (``web.extensions``).
    """

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        if current_app.testing:
            dumped = super().dump(obj, many=many)
            if json.dumps(dumped) != json.dumps(obj):
                raise AssertionError(
                    f"{type(self).__name__} reshapes this answer:\n{obj!r}\n{dumped!r}"
                )
        return obj


def envelope(
    name: str, key: str, schema: type[ma.Schema], **extra: fields.Field
) -> type[ma.Schema]:
    """``{key: <schema>}``: the shape of single-resource answers."""
    return AnswerSchema.from_dict({key: fields.Nested(schema, required=True), **extra}, name=name)


def page(name: str, key: str, schema: type[ma.Schema]) -> type[ma.Schema]:
    """``{key: [...], total, limit, offset}``: the shape of list answers."""
    return AnswerSchema.from_dict(
        {
            key: fields.List(fields.Nested(schema), required=True),
            "total": fields.Integer(required=True),
            "limit": fields.Integer(required=True),
            "offset": fields.Integer(required=True),
        },
        name=name,
    )
