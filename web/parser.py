"""Request parsing: the JSON body rules of the contract, on top of webargs.

- An empty body counts as ``{}``.
- A body that is not JSON, or not a JSON object, or nested deeper than ``MAX_DEPTH``
  levels, is a 400 (whatever its Content-Type: ``curl -d`` sends form encoding by default).
- A NUL character in any body string, or in a query parameter the operation reads,
  is a 422 naming the field: PostgreSQL text cannot hold it.
- A number no JSON reader can hold (``1e400`` overflows a double to infinity; an integer
  of more than ``MAX_DIGITS`` digits) is a 422 naming the field: stored, it would come
  back as ``Infinity``, which is not JSON, and break every later read of the log.
- Field errors are webargs' 422, flattened by ``web.problems``.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, NoReturn

import flask
import marshmallow as ma
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest

# Deep enough for any real metadata; shallow enough that every recursive walk over the
# data (validation, NUL checks, the store's JSON encoder) stays far from Python's limit.
MAX_DEPTH = 64
MAX_DIGITS = sys.get_int_max_str_digits() or 4300
NUL_MESSAGE = "must not contain NUL characters"
RANGE_MESSAGE = f"number out of range: it must be finite and have at most {MAX_DIGITS} digits"
TOO_DEEP = f"The request body nests deeper than {MAX_DEPTH} levels."


class OutOfRange:
    """A number literal that cannot be represented; reported as a field error."""

    def __init__(self, literal: str):
        self.literal = literal


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _float(literal: str) -> float | OutOfRange:
    value = float(literal)
    return value if math.isfinite(value) else OutOfRange(literal)


def _int(literal: str) -> int | OutOfRange:
    if len(literal.lstrip("-")) > MAX_DIGITS:
        return OutOfRange(literal)
    return int(literal)


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in a decoded JSON value (iterative: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def parse_body(raw: bytes) -> dict[str, Any]:
    """Decode a request body into a JSON object, or raise ``BadRequest``."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(
            raw.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except RecursionError:
        raise BadRequest(TOO_DEEP) from None
    except (ValueError, UnicodeError):
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    if depth(data) > MAX_DEPTH:
        raise BadRequest(TOO_DEEP)
    try:  # Lone surrogates ("\ud800") decode but can never be stored as UTF-8.
        json.dumps(data, ensure_ascii=False, default=lambda _: None).encode("utf-8")
    except UnicodeError:
        raise BadRequest("The request body is not valid JSON.") from None
    return data


def bad_values(value: Any, path: str = "") -> dict[str, str]:
    """Where a decoded JSON value holds what no store keeps: NUL characters, unreadable numbers.

    Maps each such place (dotted, like the schemas' field errors) to its message.
    """
    found: dict[str, str] = {}
    if isinstance(value, str):
        if "\x00" in value:
            found[path or "_schema"] = NUL_MESSAGE
    elif isinstance(value, OutOfRange):
        found[path or "_schema"] = RANGE_MESSAGE
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                found[name] = NUL_MESSAGE
            else:
                found.update(bad_values(item, name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.update(bad_values(item, f"{path}.{i}"))
    return found


class Parser(FlaskParser):
    """webargs' Flask parser with Fleet's body rules."""

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        return parse_body(req.get_data(cache=True))

    def pre_load(
        self, location_data: Any, *, schema: ma.Schema, req: flask.Request, location: str
    ) -> Any:
        if location in ("query", "querystring"):
            names = {field.data_key or name for name, field in schema.fields.items()}
            bad = {
                k: NUL_MESSAGE for k, v in req.args.items(multi=True) if k in names and "\x00" in v
            }
        else:
            bad = bad_values(location_data)
        if bad:
            raise ma.ValidationError({name: [bad[name]] for name in sorted(bad)})
        return location_data
