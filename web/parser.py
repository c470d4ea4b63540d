"""Request parsing: the JSON body rules of the contract, on top of webargs.

- An empty body counts as ``{}``.
- A body that is not JSON, or not a JSON object, is a 400 (whatever its Content-Type:
  ``curl -d`` sends form encoding by default).
- A NUL character in any body string, or in a query parameter the operation reads,
  is a 422 naming the field: PostgreSQL text cannot hold it.
- Field errors are webargs' 422, flattened by ``web.problems``.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import flask
import marshmallow as ma
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(raw: bytes) -> dict[str, Any]:
    """Decode a request body into a JSON object, or raise ``BadRequest``."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        # Lone surrogates ("\ud800") decode but can never be stored as UTF-8.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    return data


def nul_paths(value: Any, path: str = "") -> list[str]:
    """Where in a decoded JSON value a string (or object key) holds a NUL character."""
    if isinstance(value, str):
        return [path or "_schema"] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            found += [name] if "\x00" in str(key) else nul_paths(item, name)
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in nul_paths(item, f"{path}.{i}")]
    return []


class Parser(FlaskParser):
    """webargs' Flask parser with Fleet's body rules."""

    def load_json(self, req: flask.Request, schema: ma.Schema) -> Any:
        return parse_body(req.get_data(cache=True))

    def pre_load(
        self, location_data: Any, *, schema: ma.Schema, req: flask.Request, location: str
    ) -> Any:
        if location in ("query", "querystring"):
            names = {field.data_key or name for name, field in schema.fields.items()}
            bad = sorted({k for k, v in req.args.items(multi=True) if k in names and "\x00" in v})
        else:
            bad = nul_paths(location_data)
        if bad:
            raise ma.ValidationError({name: ["must not contain NUL characters"] for name in bad})
        return location_data
