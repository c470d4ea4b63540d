"""Shared pieces of the event data schemas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from domain.base import PRIORITIES

ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
PRIORITY = validate.OneOf(PRIORITIES)


class EventSchema(Schema):
    """Event data: unknown fields are refused, every message names its field."""

    class Meta:
        unknown = RAISE

    @pre_load
    def refuse_nul(self, data: Any, **_: Any) -> Any:
        """NUL fits no text column of PostgreSQL; refuse it anywhere in the data."""
        if isinstance(data, Mapping):
            bad = sorted(str(k) for k, v in data.items() if _has_nul(k) or _has_nul(v))
            if bad:
                raise ValidationError({key: ["must not contain NUL characters"] for key in bad})
        return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def text(min_len: int = 1, max_len: int | None = None, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=min_len, max=max_len), **kwargs)


def optional_text(max_len: int | None = None, min_len: int = 0) -> fields.String:
    return fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=min_len, max=max_len)
    )


def identifier(*also: validate.Validator, **kwargs: Any) -> fields.String:
    """An id chosen by a client: 1-128 characters of ``[A-Za-z0-9_.:-]`` (and ``also``)."""
    return fields.String(
        validate=[
            validate.Length(min=1, max=128),
            validate.Regexp(ID_PATTERN, error="must use only letters, digits and _ . : -"),
            *also,
        ],
        **kwargs,
    )


def json_object(**kwargs: Any) -> fields.Dict:
    return fields.Dict(keys=fields.String(), **kwargs)


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"field.sub": [...]}``."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field_name, texts in flatten_errors(value, name).items():
                flat.setdefault(field_name, []).extend(texts)
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_schema": list(messages)}
    return {prefix or "_schema": [str(messages)]}


def load(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``data``; raise the application's ValidationError with flat field messages."""
    from application.errors import ValidationError as FleetValidationError

    try:
        return dict(schema.load(data))
    except ValidationError as exc:
        raise FleetValidationError(flatten_errors(exc.messages)) from None
